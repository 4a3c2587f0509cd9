#!/usr/bin/python3
"""Raw rooms: `/raw/<room>` relays every frame verbatim (with its opcode) to every session of the
room on any core, the sender included unless it connected with `?echo=0`.

Run: /usr/bin/python3 tests/integration/test_raw.py --binary build/ringcast --backend epoll

Raw membership has no "joined" reply, so every scenario first runs a barrier: each sender sends
"S|..." sync frames until every receiver has seen one of them (sync frames are ignored afterwards).
"""

import asyncio
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (OP_BINARY, OP_CONT, OP_TEXT, Closed,  # noqa: E402
                     HandshakeFailed, RawWebSocket)
from ws_inbox import WsInbox  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

NOFILE = harness.raise_nofile_limit(20000)

KiB = 1024


# --------------------------------------------------------------------------
# asyncio client (websockets) that records every message it receives
# --------------------------------------------------------------------------

class AClient(WsInbox):
    """A websockets connection whose reader task appends every message to `inbox`: str (text) or
    bytes (binary), in arrival order."""

    def data(self):
        """Messages except sync frames."""
        return [m for m in self.inbox if not _is_sync(m)]

    def synced_from(self, tag):
        want = "S|%s|" % tag
        return any(isinstance(m, str) and m.startswith(want) for m in self.inbox)


def _is_sync(m):
    return isinstance(m, str) and m.startswith("S|")


async def aconnect(port, path, name=None):
    ws = await websockets.connect("ws://127.0.0.1:%d%s" % (port, path), ping_interval=None,
                                  compression=None, max_size=4 << 20, max_queue=None,
                                  open_timeout=10, close_timeout=3)
    return AClient(ws, name or path)


async def aconnect_many(port, path, n, batch=40):
    out = []
    for start in range(0, n, batch):
        out += await asyncio.gather(*(aconnect(port, path, "%s#%d" % (path, start + i))
                                      for i in range(min(batch, n - start))))
    return out


async def await_cond(pred, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        await asyncio.sleep(interval)


async def barrier(sender, tag, receivers, max_rounds=100):
    """sender sends "S|tag|k" every 50 ms until every receiver saw one (bounded)."""
    for k in range(max_rounds):
        await sender.ws.send("S|%s|%d" % (tag, k))
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            if all(r.synced_from(tag) for r in receivers):
                return
            await asyncio.sleep(0.01)
    missing = [r.name for r in receivers if not r.synced_from(tag)]
    raise AssertionError("barrier %s: %d receivers never got a sync frame (%s...)"
                         % (tag, len(missing), missing[:5]))


def payload(p, i):
    """The i-th message of publisher p: even i text (non-ASCII UTF-8), odd i binary (not UTF-8)."""
    if i % 2 == 0:
        return "D|%d|%d|h\u00e9llo \u2713 \U0001d11e|%s" % (p, i, "x" * (i % 37))
    return b"\x00D" + struct.pack("!HI", p, i) + b"\xff\xfe\xc0" + bytes(range(256))[: (i * 7) % 256]


def decode(m):
    """(publisher, index) of a data message."""
    if isinstance(m, str):
        _, p, i, _ = m.split("|", 3)
        return int(p), int(i)
    p, i = struct.unpack("!HI", m[2:8])
    return p, i


def run_async(coro, timeout):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# --------------------------------------------------------------------------
# blocking raw-socket helpers
# --------------------------------------------------------------------------

def raw_read_data(ws, timeout=5.0):
    """Next data message that is not a sync frame: (opcode, payload)."""
    deadline = time.monotonic() + timeout
    while True:
        op, data = ws.read_message(max(0.0, deadline - time.monotonic()))
        if op == OP_TEXT and data.startswith(b"S|"):
            continue
        return op, data


def raw_barrier(sender, tag, receivers, max_rounds=60):
    """Blocking barrier over RawWebSocket clients."""
    pending = list(receivers)
    for k in range(max_rounds):
        sender.send_text("S|%s|%d" % (tag, k))
        still = []
        for r in pending:
            got = False
            deadline = time.monotonic() + 0.05
            try:
                while not got:
                    op, data = r.read_message(max(0.0, deadline - time.monotonic()))
                    if op == OP_TEXT and data.startswith(b"S|%s|" % tag.encode()):
                        got = True
                    elif not (op == OP_TEXT and data.startswith(b"S|")):
                        raise AssertionError("data message during the barrier: %r" % data[:80])
            except socket.timeout:
                pass
            if not got:
                still.append(r)
        pending = still
        if not pending:
            return
    raise AssertionError("raw barrier %s: %d receivers never got a sync frame" % (tag, len(pending)))


def raw_expect_silence(ws, seconds):
    """No data message (sync frames aside) arrives within `seconds`; returns what did arrive."""
    got = []
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return got
        try:
            op, data = ws.read_message(remaining)
        except socket.timeout:
            return got
        if not (op == OP_TEXT and data.startswith(b"S|")):
            got.append((op, data))


class RawCase(harness.ServerTestCase):

    def raw(self, path):
        w = RawWebSocket(self.port, path)
        self.addCleanup(w.close)
        return w

    def per_thread(self):
        return self.server.health()["connections"]["per_thread"]

    def assert_both_workers_busy(self, minimum):
        pt = self.per_thread()
        self.assertEqual(len(pt), 2, "per_thread %r" % pt)
        self.assertTrue(all(n >= minimum for n in pt),
                        "connections are not spread over both workers: per_thread %r" % pt)

    async def members_on_both_workers(self, path, min_n, per_worker, max_n=60):
        """Connect members until there are min_n and per_worker on each worker (from /health
        per_thread, which also counts the /health request's own connection and maybe the previous
        one not yet reaped). Needs an otherwise idle server."""
        harness.wait_until(lambda: self.server.health()["connections"]["total"] == 1, timeout=5,
                           what="an idle server")
        out = []
        while len(out) < max_n:
            out.append(await aconnect(self.port, path, "%s#%d" % (path, len(out))))
            if len(out) >= min_n and min(self.per_thread()) >= per_worker + 2:
                return out
        raise AssertionError("%d members did not spread over both workers: %r" % (len(out), self.per_thread()))

    def raw_count(self):
        return self.server.health()["connections"]["per_path"].get("/raw/*")


# --------------------------------------------------------------------------
# fan-out over both cores
# --------------------------------------------------------------------------

class FanoutTest(RawCase):

    N_MEMBERS = 200
    N_PER_PUB = 100

    def test_fanout_exactly_once_in_order_across_cores(self):
        """200 members + 4 publishers (2 with ?echo=0) on both workers; every member gets every
        message exactly once, verbatim, each publisher's in order; echo=0 publishers not their own."""
        room = "/raw/fanout"

        async def scenario():
            members = await aconnect_many(self.port, room, self.N_MEMBERS)
            pubs = []
            echo0 = []
            for p in range(4):
                e0 = p % 2 == 1
                c = await aconnect(self.port, room + ("?echo=0" if e0 else ""), "pub%d%s" % (p, "(echo=0)" if e0 else ""))
                pubs.append(c)
                echo0.append(e0)
            try:
                everyone = members + pubs
                self.assert_both_workers_busy(40)
                for p, c in enumerate(pubs):
                    await barrier(c, "pub%d" % p, [r for r in everyone if not (r is c and echo0[p])])

                async def publish(p):
                    for i in range(self.N_PER_PUB):
                        await pubs[p].ws.send(payload(p, i))
                        if i % 10 == 9:
                            await asyncio.sleep(0)
                await asyncio.gather(*(publish(p) for p in range(4)))

                def expected_count(c):
                    n = 4 * self.N_PER_PUB
                    if c in pubs and echo0[pubs.index(c)]:
                        n -= self.N_PER_PUB
                    return n

                try:
                    await await_cond(lambda: all(len(c.data()) >= expected_count(c) for c in everyone),
                                     45, "every member to receive every message")
                except AssertionError:
                    short = [(c.name, len(c.data()), expected_count(c)) for c in everyone
                             if len(c.data()) < expected_count(c)]
                    raise AssertionError("%d of %d members short of messages, e.g. %r"
                                         % (len(short), len(everyone), short[:8]))
                await asyncio.sleep(0.5)  # duplicates / strays would show up here
                for c in everyone:
                    self.assertIsNone(c.closed_code, "%s was closed (%r)" % (c.name, c.closed_code))
                    got = c.data()
                    self.assertEqual(len(got), expected_count(c),
                                     "%s: %d messages, expected exactly %d" % (c.name, len(got), expected_count(c)))
                    seen = {}
                    for m in got:
                        p, i = decode(m)
                        self.assertEqual(m, payload(p, i), "%s: message not verbatim (or opcode changed)" % c.name)
                        seen.setdefault(p, []).append(i)
                    for p in range(4):
                        if c is pubs[p] and echo0[p]:
                            self.assertNotIn(p, seen, "%s received its own messages" % c.name)
                        else:
                            self.assertEqual(seen.get(p), list(range(self.N_PER_PUB)),
                                             "%s: messages of publisher %d missing, duplicated or out of order"
                                             % (c.name, p))
            finally:
                await asyncio.gather(*(c.close() for c in members + pubs))

        run_async(scenario(), 90)

    def test_echo0_publisher_does_not_get_its_own(self):
        async def scenario():
            listeners = await aconnect_many(self.port, "/raw/echo-test", 20)
            quiet = await aconnect(self.port, "/raw/echo-test?echo=0", "quiet")
            loud = await aconnect(self.port, "/raw/echo-test?echo=1", "loud")
            try:
                await barrier(quiet, "q", listeners + [loud])
                await barrier(loud, "l", listeners + [loud, quiet])
                for i in range(20):
                    await quiet.ws.send(payload(1, i))
                    await loud.ws.send(payload(2, i))
                await await_cond(lambda: all(len(c.data()) >= 40 for c in listeners)
                                 and len(loud.data()) >= 40 and len(quiet.data()) >= 20,
                                 20, "all messages delivered")
                await asyncio.sleep(0.4)
                for c in listeners + [loud]:
                    self.assertEqual(sorted(decode(m) for m in c.data()),
                                     sorted([(1, i) for i in range(20)] + [(2, i) for i in range(20)]), c.name)
                self.assertEqual([decode(m) for m in quiet.data()], [(2, i) for i in range(20)],
                                 "echo=0 sender: exactly the other sender's messages, none of its own")
                self.assertFalse(any(m.startswith("S|q|") for m in quiet.inbox if isinstance(m, str)),
                                 "echo=0 sender received its own sync frames")
            finally:
                await asyncio.gather(*(c.close() for c in listeners + [quiet, loud]))

        run_async(scenario(), 40)


# --------------------------------------------------------------------------
# framing: verbatim payloads, opcode kept
# --------------------------------------------------------------------------

class VerbatimTest(RawCase):

    def test_frames_verbatim_with_opcode(self):
        a = self.raw("/raw/verbatim")
        b = self.raw("/raw/verbatim?echo=0")
        raw_barrier(a, "a", [a, b])
        raw_barrier(b, "b", [a])
        cases = [
            (OP_TEXT, "h\u00e9llo w\u00f6rld \u2713 \U0001d11e".encode()),
            (OP_BINARY, b"\x00\x01\xff\xfe\xc0\x80"),
            (OP_TEXT, b""),
            (OP_BINARY, b""),
            (OP_TEXT, b'{"op":"publish","room":"x"}'),   # JSON is not interpreted on /raw
            (OP_BINARY, os.urandom(125)),
            (OP_BINARY, os.urandom(126)),
            (OP_TEXT, b"t" * 65535),
            (OP_BINARY, os.urandom(65536)),
            (OP_BINARY, os.urandom(100000)),
        ]
        for n, (op, data) in enumerate(cases):
            with self.subTest(case=n, opcode=op, length=len(data)):
                a.send_frame(op, data)
                self.assertEqual(raw_read_data(b), (op, data), "peer copy")
                self.assertEqual(raw_read_data(a), (op, data), "sender's own copy (echo on by default)")
        # b (echo=0) sends: a gets it, b does not
        b.send_frame(OP_BINARY, b"from-b")
        self.assertEqual(raw_read_data(a), (OP_BINARY, b"from-b"))
        self.assertEqual(raw_expect_silence(b, 0.3), [], "echo=0 sender got its own frame")

    def test_fragmented_message_relayed_whole(self):
        a = self.raw("/raw/frag?echo=0")
        b = self.raw("/raw/frag")
        raw_barrier(a, "a", [b])
        parts = [b"abc", "d\u00e9f".encode(), b"ghi"]
        a.send_frame(OP_TEXT, parts[0], fin=False)
        a.send_frame(OP_CONT, parts[1], fin=False)
        a.send_frame(OP_CONT, parts[2], fin=True)
        self.assertEqual(raw_read_data(b), (OP_TEXT, b"".join(parts)))
        data = os.urandom(50000)
        a.send_frame(OP_BINARY, data[:20000], fin=False)
        a.send_frame(OP_CONT, data[20000:], fin=True)
        self.assertEqual(raw_read_data(b), (OP_BINARY, data))

    def test_256k_message(self):
        """A 256 KiB binary and a 256 KiB text message reach members on both workers verbatim."""
        async def scenario():
            members = await self.members_on_both_workers("/raw/big", 20, 5)
            sender = await aconnect(self.port, "/raw/big?echo=0", "sender")
            try:
                await barrier(sender, "s", members)
                blob = os.urandom(256 * KiB)
                text = ("\u00e9" * (128 * KiB))  # 256 KiB of UTF-8
                self.assertEqual(len(text.encode()), 256 * KiB)
                await sender.ws.send(blob)
                await sender.ws.send(text)
                await await_cond(lambda: all(len(c.data()) >= 2 for c in members), 30,
                                 "the 256 KiB messages on every member")
                for c in members:
                    self.assertIsNone(c.closed_code, c.name)
                    got = c.data()
                    self.assertEqual(len(got), 2, c.name)
                    self.assertTrue(isinstance(got[0], bytes) and got[0] == blob, "%s: binary differs" % c.name)
                    self.assertTrue(isinstance(got[1], str) and got[1] == text, "%s: text differs" % c.name)
            finally:
                await asyncio.gather(*(c.close() for c in members + [sender]))

        run_async(scenario(), 60)


# --------------------------------------------------------------------------
# isolation, leaving, room names
# --------------------------------------------------------------------------

class RoomsTest(RawCase):

    def test_rooms_isolated(self):
        names = ["iso-a", "iso-b", "iso-a-b", "ISO-A", "iso-a/x"]

        async def scenario():
            rooms = {}
            for r in names:
                rooms[r] = await aconnect_many(self.port, "/raw/" + r, 8)
            try:
                self.assert_both_workers_busy(8)
                for ri, r in enumerate(names):
                    await barrier(rooms[r][0], r, rooms[r])
                for ri, r in enumerate(names):
                    for i in range(15):
                        await rooms[r][i % 8].ws.send(payload(ri, i))
                await await_cond(lambda: all(len(c.data()) >= 15 for r in names for c in rooms[r]),
                                 20, "every room's messages")
                await asyncio.sleep(0.4)
                for ri, r in enumerate(names):
                    for c in rooms[r]:
                        self.assertEqual(sorted(decode(m) for m in c.data()), [(ri, i) for i in range(15)],
                                         "%s member received foreign/missing/reordered messages" % r)
                        stray = [m for m in c.inbox if _is_sync(m) and not m.startswith("S|%s|" % r)]
                        self.assertEqual(stray, [], "%s member got another room's sync frames" % r)
            finally:
                await asyncio.gather(*(c.close() for r in names for c in rooms[r]))

        run_async(scenario(), 40)

    def test_query_string_not_part_of_room_name(self):
        a = self.raw("/raw/qs?echo=0")
        b = self.raw("/raw/qs")
        c = self.raw("/raw/qs?foo=bar")
        raw_barrier(a, "a", [b, c])
        a.send_frame(OP_TEXT, b"hello qs")
        self.assertEqual(raw_read_data(b), (OP_TEXT, b"hello qs"))
        self.assertEqual(raw_read_data(c), (OP_TEXT, b"hello qs"))

    def test_member_leaves_others_continue(self):
        """Members that close (handshake) or drop TCP stop receiving; the rest keep getting everything."""
        # Connections of earlier tests may still be finishing their close: start from a settled count.
        harness.wait_until(lambda: self.raw_count() == 0, 10, what="earlier /raw connections gone")
        base = 0
        stay = [self.raw("/raw/leave") for _ in range(16)]
        leavers = [self.raw("/raw/leave") for _ in range(8)]
        droppers = [self.raw("/raw/leave") for _ in range(4)]
        pub = self.raw("/raw/leave?echo=0")
        everyone = stay + leavers + droppers
        self.assertEqual(self.raw_count(), base + 29)
        self.assert_both_workers_busy(4)
        raw_barrier(pub, "p", everyone)
        for i in range(10):
            pub.send_frame(OP_TEXT, b"before-%d" % i)
        for c in everyone:
            for i in range(10):
                self.assertEqual(raw_read_data(c), (OP_TEXT, b"before-%d" % i))

        for c in leavers:
            c.send_close(1000)
        for n, c in enumerate(leavers):
            code, _ = c.read_close(timeout=5)   # data frames still in flight are skipped
            self.assertEqual(code, 1000, "leaver %d close echo" % n)
            self.assertEqual(c.wait_closed(3.0), b"", "leaver %d: bytes after the close frame" % n)
        for c in droppers:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
            c.close()
        harness.wait_until(lambda: self.raw_count() == base + 17, timeout=5,
                           what="/raw/* connection count to drop by 12")

        for i in range(30):
            pub.send_frame(OP_BINARY if i % 2 else OP_TEXT, b"after-%d" % i)
        for n, c in enumerate(stay):
            for i in range(30):
                self.assertEqual(raw_read_data(c), (OP_BINARY if i % 2 else OP_TEXT, b"after-%d" % i),
                                 "remaining member %d" % n)
            self.assertEqual(raw_expect_silence(c, 0.05 if n else 0.3), [])

        # a fresh member gets only what is published after it is in (no history on /raw)
        late = self.raw("/raw/leave")
        raw_barrier(pub, "p2", [late] + stay)
        pub.send_frame(OP_TEXT, b"late-1")
        self.assertEqual(raw_read_data(late), (OP_TEXT, b"late-1"))
        for c in stay:
            self.assertEqual(raw_read_data(c), (OP_TEXT, b"late-1"))

    def test_empty_room_name_closes_1008(self):
        for path in ("/raw/", "/raw/?echo=0"):
            with self.subTest(path=path):
                try:
                    ws = self.raw(path)
                except HandshakeFailed as e:
                    self.fail("upgrade to %s refused with HTTP %s; expected 101 then close 1008"
                              % (path, e.response.status))
                try:
                    code, _ = ws.read_close(timeout=5, skip_data=False)
                except Closed:
                    self.fail("TCP closed without a close frame (expected 1008)")
                except socket.timeout:
                    self.fail("no close frame within 5 s (expected 1008)")
                self.assertEqual(code, 1008)
                try:
                    ws.send_close(1008)
                except OSError:
                    pass
                self.assertTrue(ws.is_closed_within(3.0), "TCP not closed after close 1008")
        # the server is fine afterwards
        a = self.raw("/raw/after-empty")
        a.send_frame(OP_TEXT, b"S|x|0")
        self.assertEqual(a.read_message(), (OP_TEXT, b"S|x|0"))

    def test_room_name_256_bytes_ok(self):
        name = "n" * 256
        a = self.raw("/raw/" + name)
        b = self.raw("/raw/" + name + "?echo=0")
        raw_barrier(b, "b", [a])
        b.send_frame(OP_TEXT, b"long name works")
        self.assertEqual(raw_read_data(a), (OP_TEXT, b"long name works"))
        # a 255-byte prefix is another room
        c = self.raw("/raw/" + name[:255])
        raw_barrier(c, "c", [c])
        b.send_frame(OP_TEXT, b"only for 256")
        self.assertEqual(raw_read_data(a), (OP_TEXT, b"only for 256"))
        self.assertEqual(raw_expect_silence(c, 0.3), [])

    def test_room_name_257_bytes_closes_1008(self):
        """Room names are 1-256 bytes; a longer one is refused like the empty one (close 1008)."""
        ws = self.raw("/raw/" + "n" * 257)
        try:
            code, _ = ws.read_close(timeout=5, skip_data=False)
        except Closed:
            self.fail("TCP closed without a close frame (expected 1008)")
        except socket.timeout:
            self.fail("no close frame within 5 s for a 257-byte room name (expected 1008)")
        self.assertEqual(code, 1008)

    def test_profile_room_names_close_1008(self):
        """Rooms of the seed profiles (gamechat:..., livemap:...) are not reachable as raw rooms."""
        for path in ("/raw/gamechat:global", "/raw/livemap:markers"):
            ws = self.raw(path)
            try:
                code, _ = ws.read_close(timeout=5, skip_data=False)
            except (Closed, socket.timeout):
                self.fail("no close frame for %s (expected 1008)" % path)
            self.assertEqual(code, 1008, path)


if __name__ == "__main__":
    harness.main()
