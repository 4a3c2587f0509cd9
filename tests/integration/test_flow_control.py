#!/usr/bin/python3
"""Flow control and per-connection order (issue: hardening).

- `slow_consumer = "pace"` on a /raw room: one publisher bursting 400 x 64 KiB into a room with four
  readers that read continuously and one that never reads. The readers get all 25 MiB in order,
  the stalled one is closed after `stall_timeout_ms`, the publisher stays, server RSS grows little.
- One-to-one relays pace by default: several bridge-profile phones upload ~1 MB drawings at once to
  a bridge that reads slowly; the bridge gets every drawing and is not disconnected.
- Join snapshots are not slow-consumer backlog: a live map whose markers_sync is larger than
  `outbound_cap`, and a native join replaying more history than the cap, reach a new client whole,
  after its 101.
- A connection's later message never overtakes the effect of an earlier durable write (strict
  durability): live map marker_add, marker_add, ping pipelined, then a new client connecting on the
  pong sees both markers in its sync; game chat message + history pipelined: the history has it.

Run: /usr/bin/python3 tests/integration/test_flow_control.py --binary build/ringcast --backend epoll
"""

import asyncio
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import OP_BINARY, OP_CLOSE, OP_TEXT, Closed, RawConn, RawWebSocket  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

NOFILE = harness.raise_nofile_limit(20000)


def numbered(i, size):
    return struct.pack("!I", i) + bytes([i % 251]) * (size - 4)


class Preconnected(RawWebSocket):
    """A TCP connection opened now whose WebSocket handshake is sent later (upgrade())."""

    def __init__(self, port):
        RawConn.__init__(self, port)
        self.controls = []
        self.handshake_response = None

    def upgrade(self, path):
        self.handshake(path)


def read_until_closed(case, conn, what, timeout=15):
    """Reads `conn` until the server ends it; returns the close codes seen (may be none if the
    stream was cut)."""
    codes = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            f = conn.read_frame(timeout=max(0.01, deadline - time.monotonic()))
            if f.opcode == OP_CLOSE:
                codes.append(f.close_code)
    except Closed:
        return codes
    except harness.ProtocolError:
        return codes
    except socket.timeout:
        pass
    case.fail("%s: still open %d s later" % (what, timeout))


async def ws_connect(port, path, **kw):
    return await websockets.connect("ws://127.0.0.1:%d%s" % (port, path), ping_interval=None,
                                    compression=None, max_queue=None, open_timeout=10,
                                    close_timeout=3, **kw)


# --------------------------------------------------------------------------
# pace: raw rooms
# --------------------------------------------------------------------------

class PaceRawRoomTest(harness.ServerTestCase):
    N_MSGS = 400
    SIZE = 64 * 1024
    CONFIG = {"limits": {"slow_consumer": "pace", "stall_timeout_ms": 2000}}

    def test_burst_paced_stalled_reader_closed(self):
        room = "/raw/pace"
        harness.wait_until(lambda: self.server.health()["connections"]["total"] == 1, timeout=5,
                           what="an idle server")
        stalled = harness.StalledWebSocket(self.port, room)
        self.addCleanup(stalled.close)
        pid = self.server.proc.pid
        results = {}

        async def scenario():
            readers, got, closed = [], [], []
            for attempt in range(8):
                # Four readers and the publisher, with both workers holding some of them (the
                # cross-core path is the point); reconnect the set if the kernel put all on one.
                readers = [await ws_connect(self.port, room, max_size=1 << 20) for _ in range(4)]
                pub = await ws_connect(self.port, room + "?echo=0", max_size=1 << 20)
                per_thread = self.server.health()["connections"]["per_thread"]
                if min(per_thread) >= 2:
                    break
                for w in readers + [pub]:
                    await w.close()
            else:
                self.fail("connections never spread over both workers: %r" % per_thread)
            # barrier: every reader is in the room
            await pub.send(b"sync")
            for r in readers:
                self.assertEqual(await asyncio.wait_for(r.recv(), 5), b"sync")
            rss0 = harness.rss_kb(pid)
            peak = [rss0]
            got = [[] for _ in readers]
            closed = [None] * len(readers)

            async def read(n):
                try:
                    while len(got[n]) < self.N_MSGS:
                        m = await readers[n].recv()
                        i = struct.unpack("!I", m[:4])[0]
                        if m != numbered(i, self.SIZE):
                            raise AssertionError("reader %d: corrupt message %d" % (n, i))
                        got[n].append(i)
                except websockets.ConnectionClosed as e:
                    closed[n] = e.code

            async def sample():
                while True:
                    peak[0] = max(peak[0], harness.rss_kb(pid))
                    await asyncio.sleep(0.05)

            tasks = [asyncio.ensure_future(read(n)) for n in range(len(readers))]
            sampler = asyncio.ensure_future(sample())
            t0 = time.monotonic()
            for i in range(self.N_MSGS):  # as fast as TCP lets us
                await pub.send(numbered(i, self.SIZE))
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
            results["seconds"] = time.monotonic() - t0
            sampler.cancel()
            results["growth_kb"] = peak[0] - rss0
            for n in range(len(readers)):
                self.assertIsNone(closed[n], "reading member %d closed with %r after %d messages"
                                  % (n, closed[n], len(got[n])))
                self.assertEqual(got[n], list(range(self.N_MSGS)), "reader %d: order" % n)
            # the publisher is fine, and the room still works
            await pub.send(b"after")
            for r in readers:
                self.assertEqual(await asyncio.wait_for(r.recv(), 5), b"after")
            for w in readers + [pub]:
                await w.close()

        asyncio.run(asyncio.wait_for(scenario(), 120))
        sys.stderr.write("pace: %d x %d KiB to 4 readers in %.2f s (one stalled reader), server RSS +%d kB\n"
                         % (self.N_MSGS, self.SIZE // 1024, results["seconds"], results["growth_kb"]))
        if not harness.sanitized():
            self.assertLess(results["growth_kb"], 64 * 1024, "server RSS grew by %d kB" % results["growth_kb"])
        codes = read_until_closed(self, stalled, "the stalled reader")
        for c in codes:
            self.assertEqual(c, 1013)
        self.assertGreaterEqual(self.server.health()["slow_consumers"]["closed"], 1)


# --------------------------------------------------------------------------
# pace: one-to-one relays (bridge profile)
# --------------------------------------------------------------------------

class PaceBridgeTest(harness.ServerTestCase):
    CONFIG = {"limits": {"stall_timeout_ms": 5000}}
    PHONES = 4
    DRAWINGS = 3
    SIZE = 1000 * 1000

    def test_phones_upload_to_slow_bridge(self):
        async def scenario():
            bridge = await ws_connect(self.port, "/", max_size=2 << 20)
            await bridge.send(json.dumps({"type": "bridge"}))
            phones = []
            for n in range(self.PHONES):
                p = await ws_connect(self.port, "/", max_size=2 << 20)
                await p.send(json.dumps({"type": "connection"}))
                phones.append(p)
            await asyncio.sleep(0.3)  # every phone has its id

            async def upload(n, p):
                for k in range(self.DRAWINGS):
                    body = {"type": "drawing", "phone": n, "k": k, "data": "x" * self.SIZE}
                    await p.send(json.dumps(body))

            uploads = asyncio.ensure_future(asyncio.gather(*(upload(n, p) for n, p in enumerate(phones))))
            seen = {n: [] for n in range(self.PHONES)}
            total = self.PHONES * self.DRAWINGS
            for _ in range(total):
                m = json.loads(await asyncio.wait_for(bridge.recv(), 30))
                if m.get("type") != "drawing":
                    continue
                self.assertEqual(len(m["data"]), self.SIZE)
                seen[m["phone"]].append(m["k"])
                await asyncio.sleep(0.15)  # a slow link: the bridge takes its time with each
            await asyncio.wait_for(uploads, 30)
            for n in range(self.PHONES):
                self.assertEqual(seen[n], list(range(self.DRAWINGS)), "phone %d" % n)
            self.assertIsNone(bridge.close_code, "the bridge was disconnected")
            for w in phones + [bridge]:
                await w.close()

        asyncio.run(asyncio.wait_for(scenario(), 120))
        self.assertEqual(self.server.health()["slow_consumers"]["closed"], 0)


# --------------------------------------------------------------------------
# join snapshots are not backlog
# --------------------------------------------------------------------------

class SnapshotOverCapTest(harness.ServerTestCase):
    CONFIG = {"limits": {"outbound_cap": 32768}, "hub": {"history": 1000}}

    def test_livemap_sync_larger_than_cap(self):
        n = 150
        markers = {}

        async def scenario():
            a = await ws_connect(self.port, "/map", max_size=1 << 20)
            for i in range(n):
                m = {"type": "enemy", "x": i, "y": 1.5, "user_id": 7, "timestamp": "t%d" % i,
                     "description": "d" * 600}
                await a.send(json.dumps({"type": "marker_add", "marker": m}))
            await a.send(json.dumps({"type": "ping", "timestamp": "done"}))
            while True:
                m = json.loads(await asyncio.wait_for(a.recv(), 10))
                if m.get("type") == "pong":
                    break
            for round_ in range(3):  # several joiners, each gets the whole map after its 101
                b = await ws_connect(self.port, "/map", max_size=1 << 20)
                m = json.loads(await asyncio.wait_for(b.recv(), 10))
                self.assertEqual(m["type"], "markers_sync")
                self.assertEqual(len(m["markers"]), n)
                markers[round_] = len(json.dumps(m))
                await b.close()
            await a.close()

        asyncio.run(asyncio.wait_for(scenario(), 60))
        self.assertGreater(markers[0], 32768 * 2, "the sync must be well over the cap for this test")
        self.assertEqual(self.server.health()["slow_consumers"]["closed"], 0)

    def test_native_history_replay_larger_than_cap(self):
        async def scenario():
            a = await ws_connect(self.port, "/ws", max_size=1 << 20)
            await a.send(json.dumps({"op": "join", "room": "replay-big", "id": 1}))
            self.assertEqual(json.loads(await asyncio.wait_for(a.recv(), 5))["type"], "joined")
            for i in range(300):  # read each echo as it comes: the publisher is no slow consumer
                await a.send(json.dumps({"op": "publish", "room": "replay-big", "data": {"i": i, "pad": "p" * 500}}))
                while json.loads(await asyncio.wait_for(a.recv(), 10)).get("type") != "message":
                    pass
            b = await ws_connect(self.port, "/ws", max_size=1 << 20)
            await b.send(json.dumps({"op": "join", "room": "replay-big", "history": 300, "id": 2}))
            self.assertEqual(json.loads(await asyncio.wait_for(b.recv(), 5))["type"], "joined")
            seen = []
            while len(seen) < 300:
                m = json.loads(await asyncio.wait_for(b.recv(), 10))
                self.assertEqual(m.get("type"), "message", m)
                seen.append(m["data"]["i"])
            self.assertEqual(seen, list(range(300)))
            await a.close()
            await b.close()

        asyncio.run(asyncio.wait_for(scenario(), 60))
        self.assertEqual(self.server.health()["slow_consumers"]["closed"], 0)


class HandshakeFirstTest(harness.ServerTestCase):
    """A member that joins a flooded room with a tiny outbound cap may be closed as a slow consumer
    at once, but its 101 always comes first: a close frame never precedes the HTTP response."""
    CONFIG = {"limits": {"outbound_cap": 4096}}

    def test_101_before_any_frame(self):
        import threading
        stop = threading.Event()
        errors = []

        def flood():
            # One publisher (echo=0: it receives nothing), as fast as TCP lets it.
            try:
                pubs = [RawWebSocket(self.port, "/raw/flood?echo=0")]
                body = b"".join(harness.build_frame(OP_BINARY, b"f" * 4000) for _ in range(16))
                deadline = time.monotonic() + 30
                while not stop.is_set() and time.monotonic() < deadline:
                    for p in pubs:
                        p.send(body)
                for p in pubs:
                    p.close()
            except OSError as e:  # noqa: PERF203
                if not stop.is_set():
                    errors.append(e)

        t = threading.Thread(target=flood, daemon=True)
        t.start()
        try:
            time.sleep(0.2)
            for i in range(300):
                c = RawWebSocket(self.port, "/raw/flood", handshake=False)
                try:
                    c.handshake("/raw/flood")  # raises unless the first bytes are the 101
                finally:
                    c.close()
        finally:
            stop.set()
            t.join(10)
        self.assertEqual(errors, [])


# --------------------------------------------------------------------------
# per-connection order under strict durability
# --------------------------------------------------------------------------

def text_frame(obj):
    return harness.build_frame(OP_TEXT, json.dumps(obj).encode())


def read_json_until(conn, pred, what, timeout=10):
    """JSON messages read from conn up to and including the first matching pred."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out waiting for %s; got %r" % (what, out[-5:]))
        op, data = conn.read_message(timeout=left)
        if op != OP_TEXT:
            continue
        m = json.loads(data)
        out.append(m)
        if pred(m):
            return out


class OrderTest(harness.ServerTestCase):
    REPS = 40
    CONFIG_TEXT = """
[store]
durability = "strict"
[tokens]
"tok-a" = { user_id = "HL1", nickname = "Alice" }
"""

    def test_livemap_marker_add_then_ping(self):
        a = RawWebSocket(self.port, "/map")
        self.addCleanup(a.close)
        a.send(text_frame({"type": "ping", "timestamp": "start"}))
        read_json_until(a, lambda m: m.get("type") == "pong", "the first pong")
        for i in range(self.REPS):
            b = Preconnected(self.port)
            self.addCleanup(b.close)
            m1 = {"type": "ally", "x": i, "y": 0, "user_id": 1, "timestamp": "a%d" % i}
            m2 = {"type": "ally", "x": i, "y": 1, "user_id": 1, "timestamp": "b%d" % i}
            a.send(text_frame({"type": "marker_add", "marker": m1}) +
                   text_frame({"type": "marker_add", "marker": m2}) +
                   text_frame({"type": "ping", "timestamp": "p%d" % i}))
            read_json_until(a, lambda m: m.get("type") == "pong" and m.get("timestamp") == "p%d" % i,
                            "pong %d" % i)
            # A new client arriving right after the pong sees both markers in its sync.
            b.upgrade("/map")
            b.send(text_frame({"type": "ping", "timestamp": "q"}))
            msgs = read_json_until(b, lambda m: m.get("type") == "pong", "the new client's pong")
            syncs = [m for m in msgs if m.get("type") == "markers_sync"]
            self.assertEqual(len(syncs), 1, msgs[:3])
            ids = {mk["id"] for mk in syncs[0]["markers"]}
            self.assertIn("1_a%d" % i, ids, "rep %d: first marker missing from the sync" % i)
            self.assertIn("1_b%d" % i, ids, "rep %d: second marker missing from the sync" % i)
            late = [m for m in msgs if m.get("type") == "marker_added"]
            self.assertEqual(late, [], "rep %d: markers arrived after the sync" % i)
            b.close()

    def test_livemap_pipelined_mix_keeps_order(self):
        """Marker writes (waiting for their commit) and positions (written behind) pipelined in one
        write reach another client in the order they were sent; the sender's pong comes last."""
        a = RawWebSocket(self.port, "/map")
        c = RawWebSocket(self.port, "/map")
        self.addCleanup(a.close)
        self.addCleanup(c.close)
        for conn, tag in ((a, "a0"), (c, "c0")):
            conn.send(text_frame({"type": "ping", "timestamp": tag}))
            read_json_until(conn, lambda m: m.get("type") == "pong", "pong " + tag)
        for i in range(self.REPS // 4):
            frames, want = b"", []
            for k in range(6):
                if k % 2 == 0:
                    mk = {"type": "enemy", "x": k, "y": i, "user_id": 2, "timestamp": "m%d-%d" % (i, k)}
                    frames += text_frame({"type": "marker_add", "marker": mk})
                    want.append(("marker_added", "2_m%d-%d" % (i, k)))
                else:
                    pos = {"type": "position_update",
                           "player": {"user_id": "p%d" % k, "x": i, "y": k, "timestamp": "t"}}
                    frames += text_frame(pos)
                    want.append(("position_update", "p%d" % k))
            a.send(frames + text_frame({"type": "ping", "timestamp": "done%d" % i}))
            read_json_until(a, lambda m: m.get("type") == "pong" and m.get("timestamp") == "done%d" % i,
                            "pong done%d" % i)
            # a's pong says a's messages were handled; their fan-out to c may still be on its way
            # (another core): read c up to the last one.
            last = want[-1][1]
            got = read_json_until(c, lambda m: m.get("type") == "position_update"
                                  and m["player"]["user_id"] == last and m["player"]["x"] == i,
                                  "c's copy of the last position of rep %d" % i)
            seen = [(m["type"], m["marker"]["id"] if m["type"] == "marker_added" else m["player"]["user_id"])
                    for m in got if m.get("type") in ("marker_added", "position_update")]
            self.assertEqual(seen, want, "rep %d" % i)

    def test_gamechat_message_then_history(self):
        a = RawWebSocket(self.port, "/chat")
        self.addCleanup(a.close)
        a.send(text_frame({"action": "login", "token": "tok-a"}))
        read_json_until(a, lambda m: m.get("info") == "connected", "login")
        for i in range(self.REPS):
            a.send(text_frame({"action": "message", "message": "m%d" % i}) +
                   text_frame({"action": "history", "limit": 1}))
            msgs = read_json_until(a, lambda m: "history" in m, "history %d" % i)
            hist = msgs[-1]["history"]
            self.assertEqual(len(hist), 1, msgs)
            self.assertEqual(hist[0]["message"], "m%d" % i,
                             "rep %d: the history answered before the message was in it" % i)
            # the echo came first, as the seed (sequential) sends it
            self.assertEqual(msgs[0].get("message"), "m%d" % i, msgs)


if __name__ == "__main__":
    harness.main()
