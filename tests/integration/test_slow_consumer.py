#!/usr/bin/python3
"""Slow consumers: a client of a busy `/raw/<room>` that stops reading must not hold up the others
nor make the server's memory grow. `[limits] outbound_cap` bounds its queue; with the default
policy ("close") it is closed (1013), with "drop_oldest" it stays and loses old messages.

Run: /usr/bin/python3 tests/integration/test_slow_consumer.py --binary build/ringcast --backend epoll
"""

import asyncio
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import OP_CLOSE, OP_BINARY, OP_PING, OP_PONG, Closed, RawConn, RawWebSocket  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

NOFILE = harness.raise_nofile_limit(20000)

MSG_SIZE = 4096
N_MSGS = 2000
N_SUBS = 20
N_STALLED = int(os.environ.get("NSTALL", "4"))          # more than one, so that (most likely) both workers have a stalled client
RSS_LIMIT_KB = 200 * 1024
ROOM = "/raw/busy"


def payload(i):
    return struct.pack("!I", i) + bytes([i % 251]) * (MSG_SIZE - 4)


def index_of(data):
    return struct.unpack("!I", data[:4])[0]


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


class StalledClient(RawWebSocket):
    """Raw WebSocket whose receive buffer is shrunk before connecting; the test never reads it
    until the end."""

    def __init__(self, port, path, rcvbuf=4096):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(harness.IO_TIMEOUT)
        s.connect(("127.0.0.1", port))
        RawConn.__init__(self, port, sock=s)
        self.controls = []
        self.handshake_response = None
        try:
            self.handshake(path)
        except BaseException:
            self.close()
            raise


class Sub:
    """websockets subscriber that checks every payload as it arrives (keeps only the indexes)."""

    def __init__(self, ws, name):
        self.ws = ws
        self.name = name
        self.indexes = []
        self.synced = False
        self.bad = []
        self.closed_code = None
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self):
        try:
            async for m in self.ws:
                if isinstance(m, str):
                    if m.startswith("S|"):
                        self.synced = True
                    else:
                        self.bad.append("text %r" % m[:40])
                    continue
                i = index_of(m)
                if m != payload(i) and len(self.bad) < 5:
                    self.bad.append("payload of %d differs (len %d)" % (i, len(m)))
                self.indexes.append(i)
        except websockets.ConnectionClosed:
            pass
        self.closed_code = self.ws.close_code if self.ws.close_code is not None else -1

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 3)
        except Exception:  # noqa: BLE001 - best effort
            pass
        self.reader.cancel()


async def connect(port, path, name):
    ws = await websockets.connect("ws://127.0.0.1:%d%s" % (port, path), ping_interval=None, compression=None,
                                  max_size=1 << 20, max_queue=None, open_timeout=10, close_timeout=3)
    return Sub(ws, name)


async def await_cond(pred, timeout, what, interval=0.01):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        await asyncio.sleep(interval)


class SlowConsumerCase(harness.ServerTestCase):

    WINDOW = 150       # publisher stays at most this many messages ahead of the slowest normal subscriber

    def slow_stats(self):
        return self.server.health()["slow_consumers"]

    def raw_conns(self):
        return self.server.health()["connections"]["per_path"].get("/raw/*")

    def run_room(self):
        """Stalled clients + 20 subscribers + a publisher (echo=0) sending N_MSGS x 4 KiB.
        Returns (stalled clients, max server RSS in kB seen)."""
        base = self.raw_conns()
        stalled = [StalledClient(self.port, ROOM) for _ in range(N_STALLED)]
        for s in stalled:
            self.addCleanup(s.close)
        pid = self.server.proc.pid
        peak = [rss_kb(pid)]

        async def scenario():
            subs = []
            for i in range(N_SUBS):
                subs.append(await connect(self.port, ROOM, "sub%d" % i))
            pub = await connect(self.port, ROOM + "?echo=0", "pub")
            try:
                self.assertEqual(self.raw_conns(), base + N_STALLED + N_SUBS + 1)
                pt = self.server.health()["connections"]["per_thread"]
                self.assertTrue(len(pt) == 2 and min(pt) >= 3, "connections not on both workers: %r" % pt)
                for k in range(100):      # barrier: every subscriber is in the room
                    await pub.ws.send("S|%d" % k)
                    await asyncio.sleep(0.03)
                    if all(s.synced for s in subs):
                        break
                self.assertTrue(all(s.synced for s in subs), "subscribers never joined the room")
                await asyncio.sleep(0.1)  # the stalled clients joined long before (connected first)
                for i in range(N_MSGS):
                    if i % 50 == 0:
                        peak[0] = max(peak[0], rss_kb(pid))
                        try:
                            await await_cond(lambda: min(len(s.indexes) for s in subs) >= i - self.WINDOW, 30,
                                             "normal subscribers to keep up (message %d)" % i)
                        except AssertionError as e:
                            raise AssertionError("%s: received per subscriber %r, closed %r; health %r"
                                                 % (e, [len(s.indexes) for s in subs],
                                                    [s.closed_code for s in subs if s.closed_code is not None],
                                                    self.server.health()))
                    await pub.ws.send(payload(i))
                await await_cond(lambda: all(len(s.indexes) >= N_MSGS for s in subs), 30,
                                 "every subscriber to get all %d messages" % N_MSGS)
                peak[0] = max(peak[0], rss_kb(pid))
                await asyncio.sleep(0.3)
                for s in subs:
                    self.assertEqual(s.bad, [], s.name)
                    self.assertIsNone(s.closed_code, "%s (a reading subscriber) was closed" % s.name)
                    self.assertEqual(s.indexes, list(range(N_MSGS)), "%s: missing, duplicate or reordered" % s.name)
            finally:
                await asyncio.gather(*(s.close() for s in subs + [pub]))

        asyncio.run(asyncio.wait_for(scenario(), 90))
        return stalled, base, peak[0]


class SlowConsumerCloseTest(SlowConsumerCase):
    CONFIG = {"limits": {"outbound_cap": 65536}}

    def test_stalled_client_closed_others_unaffected(self):
        stalled, base, peak = self.run_room()
        self.assertLess(peak, RSS_LIMIT_KB, "server RSS peaked at %d kB" % peak)
        harness.wait_until(lambda: self.slow_stats()["closed"] >= N_STALLED, timeout=5,
                           what="slow_consumers.closed >= %d (got %r)" % (N_STALLED, self.slow_stats()))
        harness.wait_until(lambda: self.raw_conns() == base, timeout=5,
                           what="stalled connections gone from /health (now %r)" % self.raw_conns())
        # Each stalled socket ends (EOF/RST) once read; if the close frame made it, it says 1013.
        for n, s in enumerate(stalled):
            codes = []
            deadline = time.monotonic() + 15
            try:
                while time.monotonic() < deadline:
                    f = s.read_frame(timeout=max(0.01, deadline - time.monotonic()))
                    if f.opcode == OP_CLOSE:
                        codes.append(f.close_code)
                    elif f.opcode == OP_BINARY and codes:
                        self.fail("stalled client %d: data after the close frame" % n)
            except Closed:
                pass
            except socket.timeout:
                self.fail("stalled client %d: connection still open 15 s after the flood" % n)
            except harness.ProtocolError:
                pass   # the stream may be cut inside a frame by the reset
            self.assertTrue(s.eof, "stalled client %d: no EOF/RST" % n)
            for c in codes:
                self.assertEqual(c, 1013, "stalled client %d close code" % n)
        self.assertEqual(self.slow_stats()["closed"], N_STALLED, "only the stalled clients were closed")
        # the room still works after the drops
        a = RawWebSocket(self.port, ROOM)
        self.addCleanup(a.close)
        a.send_frame(OP_BINARY, b"after")
        self.assertEqual(a.read_message(), (OP_BINARY, b"after"))


class SlowConsumerDropOldestTest(SlowConsumerCase):
    CONFIG = {"limits": {"outbound_cap": 65536, "slow_consumer": "drop_oldest"}}

    def test_stalled_client_keeps_newest(self):
        stalled, base, peak = self.run_room()
        self.assertLess(peak, RSS_LIMIT_KB, "server RSS peaked at %d kB" % peak)
        stats = self.slow_stats()
        self.assertGreater(stats["dropped_messages"], 0, stats)
        self.assertEqual(stats["closed"], 0, "drop_oldest must not close: %r" % stats)
        self.assertEqual(self.raw_conns(), base + N_STALLED, "stalled clients must stay connected")
        for n, s in enumerate(stalled):
            got = []
            deadline = time.monotonic() + 15
            try:
                while not got or got[-1] != N_MSGS - 1:
                    op, data = s.read_message(timeout=max(0.01, deadline - time.monotonic()))
                    if op == OP_BINARY:
                        self.assertEqual(data, payload(index_of(data)), "stalled client %d: corrupt message" % n)
                        got.append(index_of(data))
            except socket.timeout:
                self.fail("stalled client %d: the newest message never arrived (got %d messages, last %r)"
                          % (n, len(got), got[-1:]))
            except harness.ConnectionClosedByServer as e:
                self.fail("stalled client %d was closed (%r) under drop_oldest" % (n, e.code))
            except Closed:
                self.fail("stalled client %d: connection dropped under drop_oldest" % n)
            self.assertEqual(got, sorted(set(got)), "stalled client %d: messages reordered/duplicated" % n)
            self.assertLess(len(got), N_MSGS, "stalled client %d: nothing was dropped" % n)
            # still a working connection
            s.send_frame(OP_PING, b"still here")
            deadline = time.monotonic() + 5
            while True:
                f = s.read_frame(timeout=max(0.01, deadline - time.monotonic()))
                if f.opcode == OP_PONG:
                    self.assertEqual(f.payload, b"still here")
                    break
                self.assertNotEqual(f.opcode, OP_CLOSE, "stalled client %d closed" % n)
        self.assertEqual(self.slow_stats()["closed"], 0)


if __name__ == "__main__":
    harness.main()
