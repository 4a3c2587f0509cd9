#!/usr/bin/python3
"""Room lifetime and bounded memory: rooms nobody is in and that keep nothing are freed, queries do
not create rooms, what clients can create is limited ([hub] max_rooms, max_rooms_per_connection),
in-memory history expires ([hub] history_ttl_s), and memory taken by a cross-core burst goes back.

Run: /usr/bin/python3 tests/integration/test_room_lifetime.py --binary build/ringcast --backend epoll
RINGCAST_ROOMS_N sets how many rooms each trigger creates per round (default 50000).
"""

import json
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import RawWebSocket  # noqa: E402

NOFILE = harness.raise_nofile_limit(20000)

N_ROOMS = int(os.environ.get("RINGCAST_ROOMS_N", "50000"))
CONNS = 4          # connections each trigger spreads its requests over
BATCH = 500        # requests written at once per connection before reading the replies
RSS_SLACK_KB = 6 * 1024


def masked_text(obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    return harness.build_frame(harness.OP_TEXT, data, mask_key=b"\x01\x02\x03\x04")


class Pipe:
    """A /ws connection that writes requests in batches and parses replies in bulk."""

    def __init__(self, port):
        self.ws = RawWebSocket(port, "/ws", timeout=30)
        self.sock = self.ws.sock
        self.buf = bytearray(self.ws.buf)  # whatever followed the 101

    def frames(self, deadline):
        """Reads whatever is there (at least one chunk) and yields the text payloads parsed."""
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise AssertionError("server closed the connection")
        self.buf += chunk
        out = []
        while len(self.buf) >= 2:
            b1 = self.buf[1] & 0x7F
            pos = 2
            if b1 == 126:
                if len(self.buf) < 4:
                    break
                n = struct.unpack("!H", self.buf[2:4])[0]
                pos = 4
            elif b1 == 127:
                if len(self.buf) < 10:
                    break
                n = struct.unpack("!Q", self.buf[2:10])[0]
                pos = 10
            else:
                n = b1
            if len(self.buf) < pos + n:
                break
            out.append((self.buf[0] & 0x0F, bytes(self.buf[pos:pos + n])))
            del self.buf[:pos + n]
        return out

    def run(self, requests, done_type, per_request, timeout=120):
        """Sends every request (a list of dicts), BATCH at a time, and waits for `per_request` replies
        of type done_type per request. Returns the other replies seen (errors included)."""
        other = []
        deadline = time.monotonic() + timeout
        for i in range(0, len(requests), BATCH):
            batch = requests[i:i + BATCH]
            self.sock.sendall(b"".join(masked_text(r) for r in batch))
            want = len(batch) * per_request
            while want > 0:
                if time.monotonic() > deadline:
                    raise AssertionError("replies did not arrive in %ds" % timeout)
                for op, payload in self.frames(deadline):
                    msg = json.loads(payload)
                    if msg.get("type") == done_type:
                        want -= 1
                    elif msg.get("type") != "joined":
                        other.append(msg)
        return other

    def close(self):
        self.ws.close()


def spread(n, k):
    return [list(range(i, n, k)) for i in range(k)]


def in_threads(fns):
    errors = []

    def wrap(fn):
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    if errors:
        raise errors[0]


class RoomLifetimeTest(harness.ServerTestCase):
    CONFIG_TEXT = "[hub]\nhistory = 100\n"

    def rooms(self):
        return self.server.health()["rooms"]

    def settle(self, baseline, what):
        harness.wait_until(lambda: self.rooms() == baseline, timeout=60, interval=0.1,
                           what="%s: /health rooms back to %d (now %r)" % (what, baseline, self.rooms()))

    # ---- the three ways a client used to leave a room behind ----

    def native_join_leave(self, tag):
        def one(idx):
            p = Pipe(self.port)
            try:
                reqs = []
                for i in idx:
                    room = "jl-%s-%d" % (tag, i)
                    reqs.append({"op": "join", "room": room})
                    reqs.append({"op": "leave", "room": room})
                # Every leave answers "left"; a join's "joined" only if it took effect first.
                other = p.run(reqs, "left", 0.5)
                self.assertEqual(other, [])
            finally:
                p.close()
        in_threads([lambda idx=idx: one(idx) for idx in spread(N_ROOMS, CONNS)])

    def native_queries(self, tag):
        def one(idx):
            p = Pipe(self.port)
            try:
                hist = [{"op": "history", "room": "hq-%s-%d" % (tag, i)} for i in idx[0::2]]
                pres = [{"op": "presence", "room": "pq-%s-%d" % (tag, i)} for i in idx[1::2]]
                self.assertEqual(p.run(hist, "history", 1), [])
                self.assertEqual(p.run(pres, "presence", 1), [])
            finally:
                p.close()
        in_threads([lambda idx=idx: one(idx) for idx in spread(N_ROOMS, CONNS)])

    def raw_open_close(self, tag):
        def one(idx):
            for i in idx:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
                try:
                    key = harness.ws_key()
                    s.sendall(("GET /raw/rr-%s-%d HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                               "Sec-WebSocket-Version: 13\r\n\r\n" % (tag, i, key)).encode())
                    head = b""
                    while b"\r\n\r\n" not in head:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        head += chunk
                    if not head.startswith(b"HTTP/1.1 101"):
                        raise AssertionError("upgrade refused: %r" % head[:80])
                    # Reset (no TIME_WAIT on our side: 50k closes would use up the ephemeral ports).
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                finally:
                    s.close()
        in_threads([lambda idx=idx: one(idx) for idx in spread(N_ROOMS, CONNS)])

    def test_abandoned_rooms_are_freed(self):
        pid = self.server.proc.pid
        baseline = self.rooms()
        triggers = [("native join+leave", self.native_join_leave),
                    ("native history/presence of never-joined rooms", self.native_queries),
                    ("open+close /raw/<unique>", self.raw_open_close)]
        start_kb = harness.rss_kb(pid)
        for name, fn in triggers:  # warm-up: the allocator's arenas reach their working size
            t0 = time.monotonic()
            fn("w")
            self.settle(baseline, name)
            sys.stderr.write("warm-up %s: %d rooms in %.1fs, RSS %d -> %d kB\n"
                             % (name, N_ROOMS, time.monotonic() - t0, start_kb, harness.rss_kb(pid)))
        for name, fn in triggers:
            before = harness.rss_kb(pid)
            t0 = time.monotonic()
            fn("m")
            self.settle(baseline, name)
            after = harness.rss_kb(pid)
            sys.stderr.write("%s: %d rooms in %.1fs, RSS %d -> %d kB\n"
                             % (name, N_ROOMS, time.monotonic() - t0, before, after))
            if not harness.sanitized():
                self.assertLess(after - before, RSS_SLACK_KB,
                                "%s: %d abandoned rooms kept %d kB" % (name, N_ROOMS, after - before))


class RoomLimitTest(harness.ServerTestCase):
    CONFIG_TEXT = "[hub]\nmax_rooms = 30\nmax_rooms_per_connection = 3\nhistory_ttl_s = 1\n"

    def rooms(self):
        return self.server.health()["rooms"]

    def ask(self, ws, req):
        ws.send_text(json.dumps(req))
        while True:
            m = json.loads(ws.read_message(timeout=10)[1])
            if m.get("id") == req.get("id"):
                return m

    def test_queries_for_unknown_rooms_answer_empty_and_create_nothing(self):
        base = self.rooms()
        with RawWebSocket(self.port, "/ws") as ws:
            h = self.ask(ws, {"op": "history", "room": "never-seen", "id": 1})
            self.assertEqual(h, {"type": "history", "id": 1, "room": "never-seen", "seq": 0,
                                 "messages": []})
            p = self.ask(ws, {"op": "presence", "room": "never-seen", "id": 2})
            self.assertEqual(p, {"type": "presence", "id": 2, "room": "never-seen", "members": []})
            self.assertEqual(self.rooms(), base)

    def test_rooms_per_connection(self):
        base = self.rooms()
        with RawWebSocket(self.port, "/ws") as ws:
            for i in range(3):
                self.assertEqual(self.ask(ws, {"op": "join", "room": "pc-%d" % i, "id": i})["type"],
                                 "joined")
            e = self.ask(ws, {"op": "join", "room": "pc-3", "id": 3})
            self.assertEqual((e["type"], e["code"]), ("error", "room_limit"), e)
            self.assertEqual(self.ask(ws, {"op": "leave", "room": "pc-0", "id": 4})["type"], "left")
            self.assertEqual(self.ask(ws, {"op": "join", "room": "pc-3", "id": 5})["type"], "joined")
        harness.wait_until(lambda: self.rooms() == base, timeout=10, what="rooms freed on close")

    def test_global_room_limit_native_and_raw(self):
        base = self.rooms()
        free = 30 - base
        self.assertGreater(free, 3)
        conns = []
        try:
            for i in range(free):
                ws = RawWebSocket(self.port, "/raw/gl-%d" % i)
                conns.append(ws)
            harness.wait_until(lambda: self.rooms() == 30, timeout=10, what="30 rooms")
            # A new room: raw closes with 1008, native answers room_limit.
            over = RawWebSocket(self.port, "/raw/gl-over")
            code, reason = over.read_close(timeout=10)
            over.close()
            self.assertEqual((code, reason), (1008, "room limit reached"))
            with RawWebSocket(self.port, "/ws") as ws:
                e = self.ask(ws, {"op": "join", "room": "gl-new", "id": 1})
                self.assertEqual((e["type"], e["code"]), ("error", "room_limit"), e)
                # An existing room can still be joined.
                self.assertEqual(self.ask(ws, {"op": "join", "room": "gl-0", "id": 2})["type"],
                                 "joined")
            # Another room is allowed once one is freed.
            conns.pop().close()
            harness.wait_until(lambda: self.rooms() < 30, timeout=10, what="a room freed")
            ok = RawWebSocket(self.port, "/raw/gl-after")
            conns.append(ok)
            ok.send_text("hi")
            self.assertEqual(ok.read_message(timeout=10), (harness.OP_TEXT, b"hi"))
        finally:
            for c in conns:
                c.close()
        harness.wait_until(lambda: self.rooms() == base, timeout=10, what="rooms freed on close")

    def test_history_of_an_abandoned_room_expires(self):
        base = self.rooms()
        with RawWebSocket(self.port, "/ws") as ws:
            self.assertEqual(self.ask(ws, {"op": "join", "room": "ttl", "id": 1})["type"], "joined")
            self.assertEqual(self.ask(ws, {"op": "publish", "room": "ttl", "data": 7, "id": 2})["type"],
                             "ack")
            self.assertEqual(self.ask(ws, {"op": "leave", "room": "ttl", "id": 3})["type"], "left")
            h = self.ask(ws, {"op": "history", "room": "ttl", "id": 4})
            self.assertEqual([m["data"] for m in h["messages"]], [7], "kept while fresh")
            self.assertEqual(self.rooms(), base + 1, "a room with history outlives its members")
            harness.wait_until(lambda: self.rooms() == base, timeout=15, what="history expired")
            h = self.ask(ws, {"op": "history", "room": "ttl", "id": 5})
            self.assertEqual(h["messages"], [])



class BurstMemoryTest(harness.ServerTestCase):
    """A burst of 16 KiB messages fanned out across cores, with stalled readers, then everyone
    leaves: the buffers the consumer core collected must go back (pools capped and trimmed)."""

    CONFIG_TEXT = '[limits]\nslow_consumer = "close"\n'
    N_MSGS = 3000
    SIZE = 16 * 1024
    WIRE = SIZE + 4          # server frame: 2-byte header + 2-byte extended length
    FAST = 6
    STALLED = 2

    def open_raw(self, path, rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(30)
        s.connect(("127.0.0.1", self.port))
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                   % (path, harness.ws_key())).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(1)  # byte by byte: nothing after the head may be consumed here
            if not chunk:
                raise AssertionError("closed during the handshake")
            head += chunk
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head[:60])
        self.addCleanup(s.close)
        return s

    def spread_over_workers(self, conns, factory):
        """Opens more connections until both workers have some (per_thread also counts the /health
        request's own connection, and perhaps the previous one's)."""
        while True:
            pt = self.server.health()["connections"]["per_thread"]
            if min(pt) >= 3:
                return
            self.assertLess(len(conns), 40, "connections not on both workers: %r" % pt)
            conns.append(factory())

    def fill_receive_buffers(self):
        """io_uring's provided receive buffers (1024 x 16 KiB per worker) are a fixed region that
        stays resident once the kernel has written to every buffer: cycle them on both workers
        (into rooms nobody else is in) so the baseline already includes them."""
        conns = [self.open_raw("/raw/sink-%d?echo=0" % i) for i in range(4)]
        self.spread_over_workers(conns, lambda: self.open_raw("/raw/sink-%d?echo=0" % len(conns)))
        mib = harness.build_frame(harness.OP_BINARY, b"\0" * self.SIZE, mask_key=b"\0\0\0\0") * 64
        for c in conns:
            for _ in range(20):
                c.sendall(mib)

    def burst(self, room, n):
        for _ in range(self.STALLED):
            self.open_raw("/raw/" + room, rcvbuf=4096)
        pub = self.open_raw("/raw/%s?echo=0" % room)
        fast = [self.open_raw("/raw/" + room) for _ in range(self.FAST)]
        self.spread_over_workers(fast, lambda: self.open_raw("/raw/" + room))
        got = [0] * len(fast)

        def reader(k):
            while got[k] < n * self.WIRE:
                chunk = fast[k].recv(1 << 20)
                if not chunk:
                    raise AssertionError("fast reader %d closed after %d bytes" % (k, got[k]))
                got[k] += len(chunk)

        threads = [threading.Thread(target=reader, args=(k,), daemon=True) for k in range(len(fast))]
        for t in threads:
            t.start()
        frame = harness.build_frame(harness.OP_BINARY, b"\x5a" * self.SIZE, mask_key=b"\0\0\0\0")
        deadline = time.monotonic() + 120
        for i in range(n):
            # Readers stay within 32 messages (512 KiB, under outbound_cap) of the publisher.
            while min(got) < (i - 32) * self.WIRE:
                self.assertLess(time.monotonic(), deadline, "readers stalled at %r" % got)
                time.sleep(0.001)
            pub.sendall(frame)
        for t in threads:
            t.join(max(1, deadline - time.monotonic()))
        self.assertEqual(got, [n * self.WIRE] * len(fast))

    def test_memory_returns_after_a_cross_core_burst(self):
        pid = self.server.proc.pid
        self.fill_receive_buffers()
        self.burst("warm", 200)
        self.doCleanups()  # close every connection
        harness.wait_until(lambda: self.server.health()["connections"]["websocket"] == 0,
                           timeout=10, what="connections gone")
        time.sleep(3)  # the warm-up's own pooled buffers are trimmed too
        base = harness.rss_kb(pid)
        self.burst("burst", self.N_MSGS)
        peak = harness.rss_kb(pid)
        self.doCleanups()
        harness.wait_until(lambda: self.server.health()["connections"]["websocket"] == 0,
                           timeout=10, what="connections gone")
        t0 = time.monotonic()
        try:
            if not harness.sanitized():
                harness.wait_until(lambda: harness.rss_kb(pid) - base < RSS_SLACK_KB, timeout=10,
                                   interval=0.2, what="RSS back near %d kB" % base)
        finally:
            sys.stderr.write("burst of %d x %d B: RSS %d kB before, %d kB at the end of it, %d kB "
                             "%.1fs after everyone left\n"
                             % (self.N_MSGS, self.SIZE, base, peak, harness.rss_kb(pid),
                                time.monotonic() - t0))


if __name__ == "__main__":
    harness.main()
