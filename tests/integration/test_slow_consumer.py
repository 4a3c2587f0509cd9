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
from harness import OP_CLOSE, OP_BINARY, OP_PING, OP_PONG, Closed, RawWebSocket  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

NOFILE = harness.raise_nofile_limit(20000)

MSG_SIZE = 4096
N_MSGS = 2000
N_SUBS = 20
MIN_STALLED = 4        # stalled clients: at least this many, and at least one on each worker
MAX_STALLED = 16
RSS_LIMIT_KB = 200 * 1024
ROOM = "/raw/busy"


def payload(i):
    return struct.pack("!I", i) + bytes([i % 251]) * (MSG_SIZE - 4)


def index_of(data):
    return struct.unpack("!I", data[:4])[0]


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


def open_on_both_workers(case, factory, min_n, max_n, per_worker):
    """Open connections (factory()) until there are at least min_n and at least per_worker on each
    worker, judged from /health per_thread on an otherwise idle server: that count includes the
    /health request's own connection and possibly the previous one not yet reaped (+2 at most)."""
    out = []
    while len(out) < max_n:
        c = factory()
        case.addCleanup(c.close)
        out.append(c)
        if len(out) >= min_n and min(case.server.health()["connections"]["per_thread"]) >= per_worker + 2:
            return out
    case.fail("%d connections did not spread over both workers (per_thread %r)"
              % (len(out), case.server.health()["connections"]["per_thread"]))


class SlowConsumerCase(harness.ServerTestCase):

    # The publisher sends STEP messages (20 KiB) at a time and waits until every normal subscriber
    # has them, so a reading subscriber never has more than 20 KiB outstanding however slowly
    # this Python process drains its 20 sockets (see BurstTest for bursts larger than the cap).
    STEP = 5

    def slow_stats(self):
        return self.server.health()["slow_consumers"]

    def raw_conns(self):
        return self.server.health()["connections"]["per_path"].get("/raw/*")

    def run_room(self):
        """Stalled clients + 20 subscribers + a publisher (echo=0) sending N_MSGS x 4 KiB.
        Returns (stalled clients, max server RSS in kB seen)."""
        harness.wait_until(lambda: self.server.health()["connections"]["total"] == 1, timeout=5,
                           what="an idle server (only the /health request's own connection)")
        base = self.raw_conns()
        stalled = open_on_both_workers(self, lambda: harness.StalledWebSocket(self.port, ROOM), MIN_STALLED, MAX_STALLED, 1)
        n_stalled = len(stalled)
        pid = self.server.proc.pid
        peak = [harness.rss_kb(pid)]
        queued = []

        async def scenario():
            subs = []
            for i in range(N_SUBS):
                subs.append(await connect(self.port, ROOM, "sub%d" % i))
            pub = await connect(self.port, ROOM + "?echo=0", "pub")
            try:
                self.assertEqual(self.raw_conns(), base + n_stalled + N_SUBS + 1)
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
                    if i % self.STEP == 0:
                        peak[0] = max(peak[0], harness.rss_kb(pid))
                        if i % 100 == 0:
                            queued.append(self.slow_stats()["queued_bytes"])
                        try:
                            await await_cond(lambda: min(len(s.indexes) for s in subs) >= i, 30,
                                             "normal subscribers to keep up (message %d)" % i, interval=0.002)
                        except AssertionError as e:
                            raise AssertionError("%s: received per subscriber %r, closed %r; health %r"
                                                 % (e, [len(s.indexes) for s in subs],
                                                    [s.closed_code for s in subs if s.closed_code is not None],
                                                    self.server.health()))
                    await pub.ws.send(payload(i))
                await await_cond(lambda: all(len(s.indexes) >= N_MSGS for s in subs), 30,
                                 "every subscriber to get all %d messages" % N_MSGS)
                peak[0] = max(peak[0], harness.rss_kb(pid))
                await asyncio.sleep(0.3)
                for s in subs:
                    self.assertEqual(s.bad, [], s.name)
                    self.assertIsNone(s.closed_code, "%s (a reading subscriber) was closed" % s.name)
                    self.assertEqual(s.indexes, list(range(N_MSGS)), "%s: missing, duplicate or reordered" % s.name)
            finally:
                await asyncio.gather(*(s.close() for s in subs + [pub]))

        asyncio.run(asyncio.wait_for(scenario(), 90))
        # every session's queue is bounded by outbound_cap (or one message when it is empty)
        per_session = max(self.CONFIG["limits"]["outbound_cap"], MSG_SIZE + 14)
        bound = (n_stalled + N_SUBS + 1) * per_session
        self.assertLessEqual(max(queued), bound, "/health slow_consumers.queued_bytes samples %r" % queued)
        return stalled, base, peak[0]


class SlowConsumerCloseTest(SlowConsumerCase):
    CONFIG = {"limits": {"outbound_cap": 65536}}

    def test_stalled_client_closed_others_unaffected(self):
        stalled, base, peak = self.run_room()
        self.assertLess(peak, RSS_LIMIT_KB, "server RSS peaked at %d kB" % peak)
        harness.wait_until(lambda: self.slow_stats()["closed"] >= len(stalled), timeout=5,
                           what="slow_consumers.closed >= %d (got %r)" % (len(stalled), self.slow_stats()))
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
        self.assertEqual(self.slow_stats()["closed"], len(stalled), "only the stalled clients were closed")
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
        self.assertEqual(self.raw_conns(), base + len(stalled), "stalled clients must stay connected")
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


class BurstTest(harness.ServerTestCase):
    """Subscribers that read as fast as they can are not slow consumers, even when one publisher
    write carries more than outbound_cap bytes (the kernel socket buffers have room for it)."""
    CONFIG = {"limits": {"outbound_cap": 65536}}

    def test_burst_over_cap_to_reading_subscribers(self):
        import threading
        harness.wait_until(lambda: self.server.health()["connections"]["total"] == 1, timeout=5,
                           what="an idle server")
        subs = open_on_both_workers(self, lambda: RawWebSocket(self.port, "/raw/burst"), 6, 30, 2)
        pub = RawWebSocket(self.port, "/raw/burst?echo=0")
        self.addCleanup(pub.close)
        synced = set()
        for k in range(100):      # barrier
            pub.send_frame(harness.OP_TEXT, b"S|%d" % k)
            for n, c in enumerate(subs):
                if n in synced:
                    continue
                try:
                    c.read_message(0.03)
                    synced.add(n)
                except socket.timeout:
                    pass
            if len(synced) == len(subs):
                break
        self.assertEqual(len(synced), len(subs), "barrier")
        time.sleep(0.2)
        for c in subs:            # drop the remaining sync frames
            while True:
                try:
                    c.read_message(0.05)
                except socket.timeout:
                    break
        n_msgs = 20               # 80 KiB in one write, cap 64 KiB
        got = [[] for _ in subs]
        errors = [None] * len(subs)

        def reader(n):
            try:
                while len(got[n]) < n_msgs:
                    op, data = subs[n].read_message(3)
                    if op == OP_BINARY:
                        got[n].append(index_of(data))
            except Exception as e:  # noqa: BLE001 - reported below
                errors[n] = e
        threads = [threading.Thread(target=reader, args=(n,), daemon=True) for n in range(len(subs))]
        for t in threads:
            t.start()
        time.sleep(0.1)           # every reader is blocked in recv
        pub.send(b"".join(harness.build_frame(OP_BINARY, payload(i)) for i in range(n_msgs)))
        for t in threads:
            t.join(15)
        for n in range(len(subs)):
            self.assertIsNone(errors[n], "reading subscriber %d: %r (got %d of %d messages; health %r)"
                              % (n, errors[n], len(got[n]), n_msgs, self.server.health()["slow_consumers"]))
            self.assertEqual(got[n], list(range(n_msgs)), "subscriber %d" % n)
        # The readers have every byte, but the server counts a write as taken only once its loop
        # has seen the completion, which can come a moment after the reader read it.
        harness.wait_until(lambda: self.server.health()["slow_consumers"]["queued_bytes"] == 0,
                           timeout=5, what="the burst's queued bytes taken by the kernel")
        self.assertEqual(self.server.health()["slow_consumers"], {"closed": 0, "dropped_messages": 0,
                                                                  "queued_bytes": 0})


class BurstDropOldestTest(BurstTest):
    CONFIG = {"limits": {"outbound_cap": 65536, "slow_consumer": "drop_oldest"}}


if __name__ == "__main__":
    harness.main()
