#!/usr/bin/python3
"""relayer profile (seed 004, EEG booth relayer) on `/relay`: docs/profiles/relayer.md.

Run: /usr/bin/python3 tests/integration/test_relayer.py --binary build/ringcast --backend epoll

Booths act as client_examples.py's booth (register, answer scanner_connected with a relay), scanners
as its scanner (connect_scanner, wait 1 s without reading, relay) and as the React scanner (relay on
connection_success). With --threads 2 the many connections of each scenario land on both workers,
so booths and scanners meet across cores.
"""

import asyncio
import datetime
import itertools
import json
import os
import re
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import RawWebSocket  # noqa: E402
from ws_inbox import WsInbox  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

RECV_TIMEOUT = 5.0
QUIET = 0.3
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$")
_ids = itertools.count(1)


def uid(prefix="booth"):
    return "%s_%03d_%d" % (prefix, next(_ids), os.getpid())


class Client(WsInbox):
    """A /relay connection; a reader task parses every message into `inbox`; `next` checks each
    message's shape."""

    def __init__(self, ws, test):
        super().__init__(ws, decode=json.loads, check=test.check_shape)
        self.test = test

    async def expect(self, type_, **fields):
        m = await self.next()
        self.test.assertEqual(m["type"], type_, m)
        for k, v in fields.items():
            self.test.assertEqual(m[k], v, m)
            self.test.assertIs(type(m[k]), type(v), m)
        return m

    async def error(self, text):
        m = await self.expect("error", message=text)
        self.test.assertEqual(set(m), {"type", "message", "timestamp"}, m)
        return m

    async def quiet(self, t=QUIET):
        return await self.drain(t)

    async def ping(self):
        """A relayer-level ping: its pong proves every earlier message was handled."""
        await self.send({"type": "ping"})
        m = await self.next()
        self.test.assertEqual(m["type"], "pong", m)


SHAPES = {
    "registration_success": {"type", "booth_id", "timestamp"},
    "scanner_connected": {"type", "booth_id", "timestamp"},
    "connection_success": {"type", "booth_id", "timestamp"},
    "booth_disconnected": {"type", "booth_id", "timestamp"},
    "scanner_disconnected": {"type", "booth_id", "timestamp"},
    "message_from_scanner": {"type", "data", "original_type", "timestamp"},
    "message_from_booth": {"type", "data", "original_type", "booth_id", "timestamp"},
    "error": {"type", "message", "timestamp"},
    "pong": {"type", "timestamp"},
}


class RelayerTest(harness.ServerTestCase):

    def check_shape(self, m):
        self.assertIn(m.get("type"), SHAPES, m)
        self.assertEqual(set(m), SHAPES[m["type"]], m)
        self.assertRegex(m["timestamp"], TS)
        # server local time, like datetime.now().isoformat()
        ts = datetime.datetime.fromisoformat(m["timestamp"])
        self.assertLess(abs((ts - datetime.datetime.now()).total_seconds()), 30, m)
        if "original_type" in m:
            self.assertEqual(m["original_type"], "relay_message", m)

    async def connect(self, path="/relay"):
        ws = await websockets.connect("ws://127.0.0.1:%d%s" % (self.port, path), ping_interval=None,
                                      compression=None, max_size=8 << 20, max_queue=None,
                                      open_timeout=10, close_timeout=3)
        return Client(ws, self)

    async def booth(self, booth_id=None):
        booth_id = booth_id if booth_id is not None else uid()
        b = await self.connect()
        await b.send({"type": "register_booth", "booth_id": booth_id,
                      "timestamp": datetime.datetime.now().isoformat()})
        await b.expect("registration_success", booth_id=booth_id)
        return b

    async def scanner(self, booth_id, booth=None):
        s = await self.connect()
        await s.send({"type": "connect_scanner", "booth_id": booth_id})
        if booth is not None:
            await booth.expect("scanner_connected", booth_id=booth_id)
        await s.expect("connection_success", booth_id=booth_id)
        return s

    def run_async(self, coro, timeout=50):
        asyncio.run(asyncio.wait_for(coro, timeout))

    async def close_all(self, *cs):
        await asyncio.gather(*(c.close() for c in cs))

    # ---- registration ---------------------------------------------------------------------------

    def test_register_booth(self):
        async def go():
            bid = uid()
            b = await self.connect()
            await b.send({"type": "register_booth", "booth_id": bid})
            m = await b.expect("registration_success", booth_id=bid)
            self.assertEqual(m["type"], "registration_success")
            self.assertEqual(await b.quiet(), [])
            await b.close()
        self.run_async(go())

    def test_register_errors(self):
        async def go():
            c = await self.connect()
            for bad in [{}, {"booth_id": None}, {"booth_id": ""}, {"booth_id": 0},
                        {"booth_id": 0.0}, {"booth_id": False}, {"booth_id": []},
                        {"booth_id": {}}]:
                await c.send(dict({"type": "register_booth"}, **bad))
                await c.error("Missing booth_id in registration")
            for bad in [[1], ["a"], {"a": 1}]:  # unhashable: the seed's handler fails
                await c.send({"type": "register_booth", "booth_id": bad})
                await c.error("Internal server error")
            # none of these registered anything: relays from c are ignored
            await c.send({"type": "relay_message", "data": 1})
            await c.ping()
            await c.close()
        self.run_async(go())

    def test_booth_ids_per_connection_are_capped(self):
        # The seed never releases a connection's extra ids, so one client registering ids forever
        # would grow the directory without bound: at most 64 per connection.
        async def go():
            c = await self.connect()
            ids = [uid() for _ in range(64)]
            for bid in ids:
                await c.send({"type": "register_booth", "booth_id": bid})
                await c.expect("registration_success", booth_id=bid)
            await c.send({"type": "register_booth", "booth_id": uid()})
            await c.error("Too many booth ids: one connection may register at most 64")
            # Registering one of its own ids again is not a new id.
            await c.send({"type": "register_booth", "booth_id": ids[3]})
            await c.expect("registration_success", booth_id=ids[3])
            # Another connection has its own allowance.
            d = await self.connect()
            bid = uid()
            await d.send({"type": "register_booth", "booth_id": bid})
            await d.expect("registration_success", booth_id=bid)
            await c.close()
            await d.close()
        self.run_async(go())

    # ---- scanners -------------------------------------------------------------------------------

    def test_connect_scanner_errors(self):
        async def go():
            s = await self.connect()
            for bad in [{}, {"booth_id": None}, {"booth_id": ""}, {"booth_id": 0}, {"booth_id": []},
                        {"booth_id": False}]:
                await s.send(dict({"type": "connect_scanner"}, **bad))
                await s.error("Missing booth_id for scanner connection")
            for bid, text in [("nope_%d" % os.getpid(), "nope_%d" % os.getpid()), (5, "5"),
                              (2.5, "2.5"), (True, "True"), (1e16, "1e+16"), (1e-05, "1e-05"),
                              (123456789.0, "123456789.0"), ("it's", "it's"), (-7, "-7")]:
                await s.send({"type": "connect_scanner", "booth_id": bid})
                await s.error("Booth %s is not available" % text)
            for bad in [[1], {"a": "b"}]:
                await s.send({"type": "connect_scanner", "booth_id": bad})
                await s.error("Internal server error")
            # not attached: its relays are ignored
            await s.send({"type": "relay_message", "data": {"x": 1}})
            await s.ping()
            await s.close()
        self.run_async(go())

    def test_booth_hears_before_scanner_across_cores(self):
        """scanner_connected is on the booth's socket before connection_success reaches the
        scanner (raw sockets, read without an event loop in between)."""
        pairs = []
        try:
            for k in range(10):
                bid = uid()
                b = RawWebSocket(self.port, path="/relay")
                b.send_text(json.dumps({"type": "register_booth", "booth_id": bid}))
                self.assertEqual(json.loads(b.read_message()[1])["type"], "registration_success")
                s = RawWebSocket(self.port, path="/relay")
                pairs.append((b, s, bid))
            pt = self.server.health()["connections"]["per_thread"]
            self.assertTrue(min(pt) >= 3, "connections not spread over both workers: %r" % pt)
            for b, s, bid in pairs:
                s.send_text(json.dumps({"type": "connect_scanner", "booth_id": bid}))
                m = json.loads(s.read_message()[1])
                self.assertEqual((m["type"], m["booth_id"]), ("connection_success", bid))
                readable, _, _ = select.select([b.sock], [], [], 0)
                self.assertTrue(readable or b.buf, "booth not told before the scanner (%s)" % bid)
                m = json.loads(b.read_message()[1])
                self.assertEqual((m["type"], m["booth_id"]), ("scanner_connected", bid))
        finally:
            for b, s, _ in pairs:
                b.close()
                s.close()

    def test_replies_keep_order_after_connect_scanner(self):
        async def go():
            bids = [uid() for _ in range(8)]
            booths = [await self.booth(bid) for bid in bids]
            scanners = []
            for b, bid in zip(booths, bids):
                s = await self.connect()
                # pipelined: connect_scanner, a ping and an unknown type, without waiting
                await s.send({"type": "connect_scanner", "booth_id": bid})
                await s.send({"type": "ping"})
                await s.send({"type": "hello"})
                await s.send({"type": "connect_scanner", "booth_id": "missing"})
                await s.expect("connection_success", booth_id=bid)
                await s.expect("pong")
                await s.error("Unknown message type: hello")
                await s.error("Booth missing is not available")
                await b.expect("scanner_connected", booth_id=bid)
                scanners.append(s)
            await self.close_all(*booths, *scanners)
        self.run_async(go())

    # ---- relaying -------------------------------------------------------------------------------

    def test_scanner_to_booth_and_back(self):
        async def go():
            bid = uid()
            b = await self.booth(bid)
            s = await self.scanner(bid, b)
            # client_examples.py: the booth greets on scanner_connected
            await b.send({"type": "relay_message", "data": {"message": "Welcome to Booth %s!" % bid,
                                                              "status": "ready"}})
            m = await s.expect("message_from_booth", booth_id=bid)
            self.assertEqual(m["data"], {"message": "Welcome to Booth %s!" % bid, "status": "ready"})
            await s.send({"type": "relay_message", "target": "scanner",
                          "data": {"message": "Hello from scanner!", "action": "start_scan"}})
            m = await b.expect("message_from_scanner")
            self.assertEqual(m["data"], {"message": "Hello from scanner!", "action": "start_scan"})
            self.assertNotIn("booth_id", m)
            # data of any JSON type, or missing (null); unicode survives
            for data in [None, 1, 2.5, "text", [1, {"a": None}], {"ü": "é✓"}, True, {}]:
                await s.send({"type": "relay_message", "data": data})
                self.assertEqual((await b.expect("message_from_scanner"))["data"], data)
                await b.send({"type": "relay_message", "data": data})
                self.assertEqual((await s.expect("message_from_booth"))["data"], data)
            await s.send({"type": "relay_message"})
            self.assertIsNone((await b.expect("message_from_scanner"))["data"])
            await b.send({"type": "relay_message", "target": "booth"})
            self.assertIsNone((await s.expect("message_from_booth"))["data"])
            # no acknowledgement to the sender
            self.assertEqual(await s.quiet(0.1), [])
            self.assertEqual(await b.quiet(0.1), [])
            await self.close_all(b, s)
        self.run_async(go())

    def test_relay_pairs_across_cores(self):
        async def go():
            bids = [uid() for _ in range(12)]
            booths = await asyncio.gather(*(self.booth(bid) for bid in bids))
            scanners = []
            for b, bid in zip(booths, bids):
                scanners.append(await self.scanner(bid, b))
            pt = self.server.health()["connections"]["per_thread"]
            self.assertTrue(min(pt) >= 4, "connections not spread over both workers: %r" % pt)
            for n in range(20):
                for s, bid in zip(scanners, bids):
                    await s.send({"type": "relay_message", "data": {"bid": bid, "n": n}})
                for b, bid in zip(booths, bids):
                    await b.send({"type": "relay_message", "data": {"bid": bid, "n": n}})
            for b, s, bid in zip(booths, scanners, bids):
                for n in range(20):
                    self.assertEqual((await b.expect("message_from_scanner"))["data"],
                                     {"bid": bid, "n": n})
                    m = await s.expect("message_from_booth", booth_id=bid)
                    self.assertEqual(m["data"], {"bid": bid, "n": n})
            await self.close_all(*booths, *scanners)
        self.run_async(go())

    def test_booth_relays_to_first_attached_scanner_only(self):
        async def go():
            bid = uid()
            b = await self.booth(bid)
            await b.send({"type": "relay_message", "data": "anyone?"})
            await b.error("No scanner connected")
            s1 = await self.scanner(bid, b)
            s2 = await self.scanner(bid, b)
            s3 = await self.scanner(bid, b)
            await b.send({"type": "relay_message", "data": "hi"})
            self.assertEqual((await s1.expect("message_from_booth", booth_id=bid))["data"], "hi")
            self.assertEqual(await s2.quiet(0.1) + await s3.quiet(0.1), [])
            # every scanner reaches the booth
            for s in (s1, s2, s3):
                await s.send({"type": "relay_message", "data": "from"})
                await b.expect("message_from_scanner")
            # the first one leaves: the booth hears it (others remain), the next in order is first
            await s1.close()
            await b.expect("scanner_disconnected", booth_id=bid)
            await b.send({"type": "relay_message", "data": "next"})
            self.assertEqual((await s2.expect("message_from_booth"))["data"], "next")
            self.assertEqual(await s3.quiet(0.1), [])
            await s2.close()
            await b.expect("scanner_disconnected", booth_id=bid)
            await s3.close()
            await b.expect("scanner_disconnected", booth_id=bid)
            await b.send({"type": "relay_message", "data": "gone"})
            await b.error("No scanner connected")
            await b.close()
        self.run_async(go())

    def test_scanner_moves_keeps_its_place(self):
        async def go():
            a, c = uid(), uid()
            ba = await self.booth(a)
            bc = await self.booth(c)
            s1 = await self.scanner(a, ba)
            s2 = await self.scanner(c, bc)
            # s1 moves to c: it was attached first, so it is c's first scanner now
            await s1.send({"type": "connect_scanner", "booth_id": c})
            await bc.expect("scanner_connected", booth_id=c)
            await s1.expect("connection_success", booth_id=c)
            await bc.send({"type": "relay_message", "data": 1})
            await s1.expect("message_from_booth", booth_id=c)
            self.assertEqual(await s2.quiet(0.1), [])
            await ba.send({"type": "relay_message", "data": 2})
            await ba.error("No scanner connected")
            # a failed connect_scanner leaves it where it was
            await s1.send({"type": "connect_scanner", "booth_id": uid()})
            await s1.expect("error")
            await s1.send({"type": "relay_message", "data": 3})
            self.assertEqual((await bc.expect("message_from_scanner"))["data"], 3)
            # its disconnect is told to c only
            await s1.close()
            await bc.expect("scanner_disconnected", booth_id=c)
            self.assertEqual(await ba.quiet(0.1), [])
            await self.close_all(ba, bc, s2)
        self.run_async(go())

    def test_neither_booth_nor_scanner_relay_ignored(self):
        async def go():
            c = await self.connect()
            await c.send({"type": "relay_message", "data": {"x": 1}, "target": "booth"})
            await c.ping()  # the pong is the first thing it gets
            await c.close()
        self.run_async(go())

    def test_connection_both_booth_and_scanner_relays_as_scanner(self):
        async def go():
            a, x = uid(), uid()
            bx = await self.booth(x)
            both = await self.booth(a)
            await both.send({"type": "connect_scanner", "booth_id": x})
            await bx.expect("scanner_connected", booth_id=x)
            await both.expect("connection_success", booth_id=x)
            await both.send({"type": "relay_message", "data": "as scanner"})
            self.assertEqual((await bx.expect("message_from_scanner"))["data"], "as scanner")
            # it still holds a: scanners of a talk to it
            sa = await self.scanner(a, both)
            await sa.send({"type": "relay_message", "data": "to a"})
            self.assertEqual((await both.expect("message_from_scanner"))["data"], "to a")
            await both.close()
            await sa.expect("booth_disconnected", booth_id=a)
            await bx.expect("scanner_disconnected", booth_id=x)
            await self.close_all(bx, sa)
        self.run_async(go())

    def test_own_scanner(self):
        async def go():
            x = uid()
            c = await self.booth(x)
            await c.send({"type": "connect_scanner", "booth_id": x})
            await c.expect("scanner_connected", booth_id=x)
            await c.expect("connection_success", booth_id=x)
            await c.send({"type": "relay_message", "data": "me"})
            self.assertEqual((await c.expect("message_from_scanner"))["data"], "me")
            await c.ping()
            await c.close()
        self.run_async(go())

    # ---- other messages -------------------------------------------------------------------------

    def test_ping_and_unknown_types(self):
        async def go():
            c = await self.connect()
            await c.send({"type": "ping", "timestamp": "x", "extra": [1]})
            m = await c.expect("pong")
            self.assertEqual(set(m), {"type", "timestamp"})
            for msg, text in [({"type": "hello"}, "hello"), ({}, "None"), ({"type": None}, "None"),
                              ({"type": 5}, "5"), ({"type": 1.0}, "1.0"), ({"type": True}, "True"),
                              ({"type": ["a", 1, None]}, "['a', 1, None]"),
                              ({"type": {"k": "it's", "n": False}}, "{'k': \"it's\", 'n': False}"),
                              ({"type": "PING"}, "PING"), ({"type": ""}, ""),
                              ({"type": "é"}, "é")]:
                await c.send(msg)
                await c.error("Unknown message type: %s" % text)
            await c.send('{"type": "ping", "type": "nope"}')  # last key wins, as in json.loads
            await c.error("Unknown message type: nope")
            await c.close()
        self.run_async(go())

    def test_bad_json(self):
        async def go():
            c = await self.connect()
            for text in ["not json", "", "   ", "{'type': 'ping'}", '{"type": "ping"', "{} {}",
                         '{"type": "ping",}']:
                await c.send(text)
                await c.error("Invalid JSON message")
            for text in ["[]", "[1, 2]", "42", '"ping"', "null", "true", '[{"type": "ping"}]']:
                await c.send(text)
                await c.error("Internal server error")
            await c.send("[" * 5000 + "]" * 5000)  # deeper than Python's json.loads goes
            await c.error("Internal server error")
            await c.send('{"type": "ping", "n": NaN, "i": -Infinity}')  # Python accepts these
            await c.expect("pong")
            await c.ping()  # still open and answering
            self.assertIsNone(c.closed_code)
            await c.close()
        self.run_async(go())

    def test_large_relay(self):
        async def go():
            bid = uid()
            b = await self.booth(bid)
            s = await self.scanner(bid, b)
            blob = "A" * (700 * 1024)
            await s.send({"type": "relay_message", "data": {"eeg": blob}})
            self.assertEqual((await b.expect("message_from_scanner"))["data"], {"eeg": blob})
            await b.send({"type": "relay_message", "data": [blob]})
            self.assertEqual((await s.expect("message_from_booth"))["data"], [blob])
            await self.close_all(b, s)
        self.run_async(go())

    # ---- disconnects ----------------------------------------------------------------------------

    def test_booth_disconnect_and_reconnect(self):
        async def go():
            bid = uid()
            b = await self.booth(bid)
            s1 = await self.scanner(bid, b)
            s2 = await self.scanner(bid, b)
            await b.close()
            await s1.expect("booth_disconnected", booth_id=bid)
            await s2.expect("booth_disconnected", booth_id=bid)
            # scanners stay attached; their relays are refused while the booth is away
            await s1.send({"type": "relay_message", "data": 1})
            await s1.error("Booth is no longer available")
            # new scanners cannot attach meanwhile
            s3 = await self.connect()
            await s3.send({"type": "connect_scanner", "booth_id": bid})
            await s3.error("Booth %s is not available" % bid)
            # the booth comes back: relays reach it without the scanners reconnecting, and it is
            # not told about them
            b2 = await self.booth(bid)
            self.assertEqual(await b2.quiet(0.1), [])
            await s2.send({"type": "relay_message", "data": "back"})
            self.assertEqual((await b2.expect("message_from_scanner"))["data"], "back")
            await b2.send({"type": "relay_message", "data": "hello again"})
            self.assertEqual((await s1.expect("message_from_booth", booth_id=bid))["data"],
                             "hello again")
            await s1.close()
            await b2.expect("scanner_disconnected", booth_id=bid)
            await self.close_all(b2, s2, s3)
        self.run_async(go())

    def test_replaced_booth(self):
        async def go():
            bid = uid()
            old = await self.booth(bid)
            s = await self.scanner(bid, old)
            new = await self.booth(bid)  # takes the id over; old is not told
            self.assertEqual(await old.quiet(0.1), [])
            # scanners already attached now talk to the new holder
            await s.send({"type": "relay_message", "data": "x"})
            self.assertEqual((await new.expect("message_from_scanner"))["data"], "x")
            self.assertEqual(await old.quiet(0.1), [])
            await new.send({"type": "relay_message", "data": "y"})
            self.assertEqual((await s.expect("message_from_booth", booth_id=bid))["data"], "y")
            # the old connection's relays are ignored (no reply)
            await old.send({"type": "relay_message", "data": "z"})
            await old.ping()
            self.assertEqual(await s.quiet(0.1), [])
            # new scanners reach the new holder
            s2 = await self.scanner(bid, new)
            # the old one closing notifies nobody and keeps the id registered
            await old.close()
            self.assertEqual(await s.quiet(0.2) + await s2.quiet(0.05), [])
            s3 = await self.scanner(bid, new)
            await s.close()
            await new.expect("scanner_disconnected", booth_id=bid)
            await new.close()
            await s2.expect("booth_disconnected", booth_id=bid)
            await s3.expect("booth_disconnected", booth_id=bid)
            await self.close_all(s2, s3)
        self.run_async(go())

    def test_ids_use_python_equality(self):
        async def go():
            n = 900000 + os.getpid() % 90000
            b = await self.booth(n)
            # 1.0 == 1 == True as dict keys; "1" is another key
            s = await self.connect()
            await s.send({"type": "connect_scanner", "booth_id": float(n)})
            await b.expect("scanner_connected", booth_id=float(n))
            await s.expect("connection_success", booth_id=float(n))
            await s.send({"type": "connect_scanner", "booth_id": str(n)})
            await s.error("Booth %d is not available" % n)
            # registering n.0 replaces the holder, but the id keeps its first spelling
            b2 = await self.booth(float(n))
            await b2.send({"type": "relay_message", "data": 0})
            m = await s.expect("message_from_booth", booth_id=n)
            self.assertIs(type(m["booth_id"]), int)
            await b2.close()
            m = await s.expect("booth_disconnected", booth_id=n)
            await self.close_all(b, s)
        self.run_async(go())

    def test_booth_with_several_ids(self):
        async def go():
            a, c = uid(), uid()
            b = await self.booth(a)
            await b.send({"type": "register_booth", "booth_id": c})
            await b.expect("registration_success", booth_id=c)
            sa = await self.scanner(a, b)
            sc = await self.scanner(c, b)
            # it relays as its first id
            await b.send({"type": "relay_message", "data": "q"})
            await sa.expect("message_from_booth", booth_id=a)
            self.assertEqual(await sc.quiet(0.1), [])
            # only the first id is released when it goes (the seed's quirk)
            await b.close()
            await sa.expect("booth_disconnected", booth_id=a)
            self.assertEqual(await sc.quiet(0.1), [])
            s2 = await self.connect()
            await s2.send({"type": "connect_scanner", "booth_id": c})
            await s2.expect("connection_success", booth_id=c)
            await self.close_all(sa, sc, s2)
        self.run_async(go())

    def test_client_examples_flow(self):
        """client_examples.py: the scanner sends connect_scanner, waits 1 s without reading, then
        relays; the booth answers scanner_connected with a welcome relay."""
        async def go():
            bid = uid()
            b = await self.booth(bid)
            s = await self.connect()
            await s.send({"type": "connect_scanner", "booth_id": bid})
            await b.expect("scanner_connected", booth_id=bid)
            await b.send({"type": "relay_message",
                          "data": {"message": "Welcome to Booth %s!" % bid, "status": "ready"}})
            await asyncio.sleep(1.0)
            await s.send({"type": "relay_message",
                          "data": {"message": "Hello from scanner!", "action": "start_scan"}})
            await s.expect("connection_success", booth_id=bid)
            m = await s.expect("message_from_booth", booth_id=bid)
            self.assertEqual(m["data"]["status"], "ready")
            m = await b.expect("message_from_scanner")
            self.assertEqual(m["data"]["action"], "start_scan")
            await self.close_all(b, s)
        self.run_async(go())


if __name__ == "__main__":
    harness.main()
