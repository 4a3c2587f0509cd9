#!/usr/bin/python3
"""Cluster over Redis: the relayer profile (/relay, seed 004) with booths and scanners on different
nodes. Registration, attachment, relays both ways, take-over, disconnect notices, a killed node and
Redis going away — each as the seed does it on one server. Each test starts its own redis-server
(redis_harness) and nodes with --threads 2.

Run: /usr/bin/python3 tests/integration/test_cluster_relayer.py --binary build/ringcast --backend epoll
"""

import asyncio
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from redis_harness import ClusterTestCase, wait_cluster  # noqa: E402

import websockets  # noqa: E402

UNAVAILABLE = ("The booth directory is unavailable right now (the cluster cannot reach Redis); "
               "try again")


def run(coro, timeout=90):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Peer:
    """A /relay connection whose messages a reader task collects, each with the time it came."""

    def __init__(self, ws, name):
        self.ws, self.name = ws, name
        self.inbox = asyncio.Queue()
        self.task = asyncio.ensure_future(self._read())

    async def _read(self):
        try:
            async for text in self.ws:
                self.inbox.put_nowait(json.loads(text))
        except websockets.ConnectionClosed:
            pass

    async def send(self, **msg):
        await self.ws.send(json.dumps(msg))

    async def next(self, timeout=5):
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def expect(self, type_, timeout=5, **fields):
        m = await self.next(timeout)
        assert m["type"] == type_, (self.name, type_, m)
        for k, v in fields.items():
            assert m[k] == v, (self.name, k, v, m)
        return m

    async def quiet(self, t=0.4):
        try:
            m = await asyncio.wait_for(self.inbox.get(), t)
        except asyncio.TimeoutError:
            return
        raise AssertionError("%s: unexpected %r" % (self.name, m))

    async def close(self):
        await self.ws.close()
        self.task.cancel()


async def peer(srv, name):
    ws = await websockets.connect("ws://127.0.0.1:%d/relay" % srv.port, ping_interval=None,
                                  open_timeout=10, close_timeout=3)
    return Peer(ws, name)


def ts(m):
    return datetime.datetime.fromisoformat(m["timestamp"])


class RelayerClusterTest(ClusterTestCase):
    def redis_options(self):
        # Redis keeps its data over a restart (the relayer's directory lives there).
        return {"appendonly": self._testMethodName == "test_redis_away_and_back"}

    async def booth(self, srv, booth_id, name="booth"):
        b = await peer(srv, name)
        await b.send(type="register_booth", booth_id=booth_id)
        await b.expect("registration_success", booth_id=booth_id)
        return b

    async def scanner(self, srv, booth, booth_id, name="scanner"):
        """Attaches a scanner; the booth hears of it before the scanner is told (by the servers'
        own clocks: both nodes run on this machine)."""
        s = await peer(srv, name)
        await s.send(type="connect_scanner", booth_id=booth_id)
        told = await booth.expect("scanner_connected", booth_id=booth_id)
        ok = await s.expect("connection_success", booth_id=booth_id)
        self.assertLessEqual(ts(told), ts(ok), "the booth is told first, as the seed does")
        return s

    def test_pairing_and_relays_across_nodes(self):
        a, b = self.nodes(2)

        async def scenario():
            booth = await self.booth(a, "booth_001")
            s1 = await self.scanner(b, booth, "booth_001", "s1")
            s2 = await self.scanner(a, booth, "booth_001", "s2")
            s3 = await self.scanner(b, booth, "booth_001", "s3")
            # Scanner -> its booth, from either node; the sender hears nothing back.
            for i, s in enumerate((s1, s2, s3)):
                await s.send(type="relay_message", data={"n": i, "text": "héllo"}, target="x")
                m = await booth.expect("message_from_scanner", data={"n": i, "text": "héllo"},
                                       original_type="relay_message")
                self.assertNotIn("booth_id", m)
            # Booth -> the first attached scanner only (on the other node).
            for i in range(20):
                await booth.send(type="relay_message", data=[i])
            for i in range(20):
                await s1.expect("message_from_booth", data=[i], booth_id="booth_001")
            await s2.quiet(0.2)
            await s3.quiet(0.2)
            # The first scanner goes: the booth is told, and s2 (attached next) is the first now.
            await s1.close()
            await booth.expect("scanner_disconnected", booth_id="booth_001")
            await booth.send(type="relay_message", data="to s2")
            await s2.expect("message_from_booth", data="to s2")
            # An id nobody holds, on any node.
            s4 = await peer(b, "s4")
            await s4.send(type="connect_scanner", booth_id=7)
            await s4.expect("error", message="Booth 7 is not available")
            # The booth goes: every scanner on every node is told; they stay attached to the id.
            await booth.close()
            await s2.expect("booth_disconnected", booth_id="booth_001")
            await s3.expect("booth_disconnected", booth_id="booth_001")
            await s3.send(type="relay_message", data=1)
            await s3.expect("error", message="Booth is no longer available")
            # A booth registers the id again, on the other node: the scanners reach it without
            # reconnecting, and it is not told of them (the seed's behaviour).
            again = await self.booth(b, "booth_001", "again")
            # A relay reads its own node's mirror, which hears of the new holder a moment later
            # (docs/cluster.md, Limits). A scanner connecting on node a is answered once node a's
            # mirror has that connect, and so the registration before it.
            probe = await self.scanner(a, again, "booth_001", "probe")
            await s2.send(type="relay_message", data="back")
            await again.expect("message_from_scanner", data="back")
            await again.send(type="relay_message", data="hi")
            await s2.expect("message_from_booth", data="hi")
            for p in (s2, s3, s4, probe, again):
                await p.close()

        run(scenario())

    def test_take_over_from_another_node(self):
        a, b = self.nodes(2)

        async def scenario():
            old = await self.booth(a, "b9")
            s = await self.scanner(a, old, "b9")
            # Registered again on node b: the old holder is not told, the scanner talks to the
            # new one, and the old one's relays are ignored.
            new = await self.booth(b, "b9", "new")
            await old.quiet(0.2)
            await s.send(type="relay_message", data=1)
            await new.expect("message_from_scanner", data=1)
            await old.quiet(0.2)
            await new.send(type="relay_message", data=2)
            await s.expect("message_from_booth", data=2)
            await old.send(type="relay_message", data=3)
            await s.quiet(0.3)
            await old.quiet(0.1)
            # The replaced holder closing tells nobody.
            await old.close()
            await s.quiet(0.3)
            await new.quiet(0.1)
            # A scanner re-sending connect_scanner moves, keeping one attachment.
            await self.booth(a, "b10", "other")
            await s.send(type="connect_scanner", booth_id="b10")
            await s.expect("connection_success", booth_id="b10")
            await s.close()
            await new.quiet(0.3)
            await new.close()

        run(scenario())

    def test_booth_and_scanner_on_one_connection(self):
        a, _b = self.nodes(2)

        async def scenario():
            both = await self.booth(a, "self")
            await both.send(type="connect_scanner", booth_id="self")
            await both.expect("scanner_connected", booth_id="self")
            await both.expect("connection_success", booth_id="self")
            await both.send(type="ping")
            await both.expect("pong")
            await both.close()

        run(scenario())

    def test_replies_keep_their_order(self):
        a, b = self.nodes(2)

        async def scenario():
            booth = await self.booth(b, "ord")
            s = await peer(a, "s")
            # Sent at once: each is answered in turn, the relay after the attachment.
            await s.ws.send(json.dumps({"type": "ping"}))
            await s.ws.send(json.dumps({"type": "connect_scanner", "booth_id": "ord"}))
            await s.ws.send(json.dumps({"type": "relay_message", "data": "first"}))
            await s.ws.send(json.dumps({"type": "connect_scanner", "booth_id": "none"}))
            await s.ws.send(json.dumps({"type": "ping"}))
            await s.expect("pong")
            await s.expect("connection_success", booth_id="ord")
            await s.expect("error", message="Booth none is not available")
            await s.expect("pong")
            await booth.expect("scanner_connected")
            await booth.expect("message_from_scanner", data="first")
            # The failed connect_scanner left it attached to "ord".
            await s.send(type="relay_message", data="second")
            await booth.expect("message_from_scanner", data="second")
            await s.close()
            await booth.close()

        run(scenario())

    def test_killed_node_is_cleaned_up(self):
        a, b, c = self.nodes(3, node_ttl_ms=2000)

        async def scenario():
            booth = await self.booth(a, "k1")
            sb = await self.scanner(b, booth, "k1", "sb")
            sc = await self.scanner(c, booth, "k1", "sc")
            # Node c dies with its scanner: the booth is told within the TTL.
            c.kill()
            await booth.expect("scanner_disconnected", timeout=10, booth_id="k1")
            # Node a dies with the booth: node b's scanner is told, and the id is free.
            a.kill()
            await sb.expect("booth_disconnected", timeout=10, booth_id="k1")
            await sb.send(type="relay_message", data=1)
            await sb.expect("error", message="Booth is no longer available")
            fresh = await self.booth(b, "k1", "fresh")
            await sb.send(type="relay_message", data=2)
            await fresh.expect("message_from_scanner", data=2)
            del sc
            await sb.close()
            await fresh.close()

        run(scenario())

    def test_redis_away_and_back(self):
        a, b = self.nodes(2)

        async def scenario():
            booth = await self.booth(a, "r1")
            s = await self.scanner(b, booth, "r1")
            self.r.stop()
            for srv in (a, b):
                wait_cluster(srv, "degraded", lambda c: c["redis"] == "degraded", timeout=10)
            # The directory cannot change: a clear answer, and the connection goes on.
            late = await peer(a, "late")
            await late.send(type="register_booth", booth_id="r2")
            await late.expect("error", message=UNAVAILABLE)
            await late.send(type="ping")
            await late.expect("pong")
            # The scanner closes meanwhile: its node tells the cluster once Redis is back.
            await s.close()
            self.r.start()
            for srv in (a, b):
                wait_cluster(srv, "ok again", lambda c: c["redis"] == "ok", timeout=15)
            await booth.expect("scanner_disconnected", timeout=10, booth_id="r1")
            await late.send(type="register_booth", booth_id="r2")
            await late.expect("registration_success", booth_id="r2")
            s2 = await self.scanner(b, late, "r2")
            await s2.send(type="relay_message", data="after")
            await late.expect("message_from_scanner", data="after")
            for p in (booth, late, s2):
                await p.close()

        run(scenario())


if __name__ == "__main__":
    harness.main()
