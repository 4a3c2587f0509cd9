#!/usr/bin/python3
"""bridge profile (seed 000, WizzyWorks) on `/`: docs/profiles/bridge.md.

Run: /usr/bin/python3 tests/integration/test_bridge.py --binary build/ringcast --backend epoll

Clients act as the seed's real ones: the web app sends {"type":"connection","origin":..,
"userAgent":..} and then its fireworks payload with its own id; the bridge sends exactly
{"type":"bridge"} and answers {"id": N, "data": {"id": N, "status": "ready"}}. With --threads 2
the many connections of each scenario land on both workers, so routing crosses cores.
"""

import asyncio
import base64
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HandshakeFailed, RawWebSocket  # noqa: E402
from ws_inbox import WsInbox  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

RECV_TIMEOUT = 5.0
QUIET = 0.3  # how long "nothing arrives" is watched


class Client(WsInbox):
    """A websockets connection whose reader task appends every message, as received, to `inbox`."""

    async def quiet(self, t=QUIET):
        return await self.drain(t)


def payload(cid, n_fireworks=2, png_bytes=100):
    """The web app's message: its id and up to 9 fireworks with base64 PNG drawings."""
    png = base64.b64encode(os.urandom(png_bytes)).decode()
    return {"id": cid, "fireworks": [{
        "outer_layer": "circle", "outer_layer_color": [255, 0, 0],
        "outer_layer_second_color": [0, 0, 255], "path_speed": 1.5, "path_wobble": 0.2,
        "outer_layer_specialfx": "sparkle", "inner_layer": "data:image/png;base64," + png,
    } for _ in range(n_fireworks)]}


class BridgeBase(harness.ServerTestCase):

    def url(self, path="/"):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    async def connect(self, path="/", **kw):
        ws = await websockets.connect(self.url(path), ping_interval=None, compression=None,
                                      max_size=8 << 20, max_queue=None, open_timeout=10,
                                      close_timeout=3, **kw)
        return Client(ws)

    async def client(self, **kw):
        """A web-app client; returns (Client, id)."""
        c = await self.connect(**kw)
        await c.send({"type": "connection", "origin": "https://wizzyworks-frontend.vercel.app",
                      "userAgent": "Mozilla/5.0 (iPhone)"})
        m = await c.next()
        reply = json.loads(m)
        self.assertEqual(set(reply), {"code", "data"}, m)
        self.assertEqual(reply["code"], 0, m)
        self.assertEqual(set(reply["data"]), {"id"}, m)
        self.assertIs(type(reply["data"]["id"]), int, m)
        return c, reply["data"]["id"]

    async def bridge(self):
        b = await self.connect()
        await b.send({"type": "bridge"})
        # The seed answers the bridge with nothing; wait until it is the current bridge.
        await self.until(lambda: self.server.health()["bridge_connected"] is True, "bridge registered")
        return b

    async def until(self, pred, what, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            await asyncio.sleep(0.02)
        self.fail("timed out waiting for: %s" % what)

    def clients_count(self, port=None):
        return self.server.health(port)["connected_clients"]

    async def no_clients(self):
        await self.until(lambda: self.clients_count() == 0 and
                         self.server.health()["bridge_connected"] is False,
                         "no clients and no bridge left from an earlier test")

    def run_async(self, coro, timeout=50):
        asyncio.run(asyncio.wait_for(coro, timeout))


class BridgeTest(BridgeBase):

    # ---- first message ------------------------------------------------------------------------

    def test_client_gets_one_id_message_and_nothing_else(self):
        async def go():
            c = await self.connect()
            self.assertEqual(await c.quiet(), [], "the server speaks only after the first message")
            await c.send({"type": "connection", "origin": "http://localhost:3000", "userAgent": "x"})
            m = await c.next()
            self.assertRegex(m, r'^\{"code": ?0, ?"data": ?\{"id": ?\d+\}\}$')
            self.assertEqual(await c.quiet(), [])
            # the client never hears back from its own messages, bridge or not
            b = await self.bridge()
            await c.send(payload(1))
            self.assertEqual(len(await b.quiet()), 1)
            self.assertEqual(await c.quiet(), [])
            await c.close()
            await b.close()
        self.run_async(go())

    def test_bridge_gets_nothing(self):
        async def go():
            b = await self.connect()
            await b.send('{"type": "bridge", "extra": [1, 2]}')
            self.assertEqual(await b.quiet(0.5), [])
            self.assertIsNone(b.closed_code)
            self.assertTrue(self.server.health()["bridge_connected"])
            await b.close()
        self.run_async(go())

    def test_bad_first_messages_close_1000_without_reply(self):
        bad = ["not json", "", "{\"type\": \"connection\"", '{"type": "client"}', '{"kind": "connection"}',
               "{}", '{"type": null}', '{"type": ["connection"]}', '{"type": "Connection"}',
               '[{"type": "connection"}]', '"connection"', "42", "null", "true",
               '{"type": "connection"} trailing',
               '{"type": "connection", "deep": ' + "[" * 5000 + "]" * 5000 + "}"]

        async def go():
            await self.no_clients()  # clients of earlier tests may still be closing
            before = self.clients_count()
            conns = [await self.connect() for _ in bad]
            for c, m in zip(conns, bad):
                await c.send(m)
            for c, m in zip(conns, bad):
                code = await c.wait_closed()
                self.assertIn(code, (1000, 1003) if m[:1] in '["0123456789tn' else (1000,), m)
                self.assertEqual(c.inbox, [], m)
            self.assertEqual(self.clients_count(), before)
        self.run_async(go())

    def test_first_message_extra_fields_and_duplicate_keys(self):
        async def go():
            # json.loads keeps the last of a repeated key
            c = await self.connect()
            await c.send('{"type": "bridge", "type": "connection", "x": {"type": "bridge"}}')
            self.assertIn('"code"', await c.next())
            d = await self.connect()
            await d.send('{"type": "connection", "type": "nope"}')
            self.assertEqual(await d.wait_closed(), 1000)
            await c.close()
        self.run_async(go())

    def test_first_message_timeout(self):
        async def go():
            silent = await self.connect()
            pinger = await self.connect()
            late = await self.connect()
            t0 = time.monotonic()
            await pinger.ws.ping()  # control frames are not the first message
            await asyncio.sleep(3.0)
            await late.send({"type": "connection"})
            self.assertIn('"code"', await late.next())
            self.assertEqual(await silent.wait_closed(4.0), 1000)
            self.assertEqual(await pinger.wait_closed(1.0), 1000)
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 4.5)
            self.assertLess(elapsed, 6.5)
            self.assertEqual(silent.inbox, [])
            await asyncio.sleep(2.5)  # well past 5 s: the client that spoke stays
            self.assertIsNone(late.closed_code)
            await late.close()
        self.run_async(go())

    # ---- ids ----------------------------------------------------------------------------------

    def test_ids_smallest_free_first(self):
        async def go():
            await self.no_clients()
            cs = []
            for _ in range(3):
                cs.append(await self.client())
            self.assertEqual([i for _, i in cs], [1, 2, 3])
            for idx in (1, 2, 0):  # release 2, then 3, then 1
                want = self.clients_count() - 1
                await cs[idx][0].close()
                await self.until(lambda: self.clients_count() == want, "id released")
            again = []
            for _ in range(4):
                again.append(await self.client())
            self.assertEqual([i for _, i in again], [1, 2, 3, 4])
            # a hole in the middle is filled first
            await again[1][0].close()
            await self.until(lambda: self.clients_count() == 3, "id 2 released")
            c, i = await self.client()
            self.assertEqual(i, 2)
            for x, _ in again + [(c, 0)]:
                await x.close()
        self.run_async(go())

    def test_ids_unique_across_cores(self):
        async def go():
            await self.no_clients()
            cs = await asyncio.gather(*(self.client() for _ in range(40)))
            ids = sorted(i for _, i in cs)
            self.assertEqual(ids, list(range(1, 41)))
            pt = self.server.health()["connections"]["per_thread"]
            self.assertTrue(min(pt) >= 5, "clients not spread over both workers: %r" % pt)
            self.assertEqual(self.clients_count(), 40)
            self.assertEqual(self.clients_count(self.port), 40)
            await asyncio.gather(*(c.close() for c, _ in cs))
            await self.until(lambda: self.clients_count() == 0, "all released")
        self.run_async(go())

    # ---- client -> bridge ---------------------------------------------------------------------

    def test_client_messages_reach_bridge_unchanged(self):
        async def go():
            await self.no_clients()
            b = await self.bridge()
            cs = await asyncio.gather(*(self.client() for _ in range(16)))
            sent = []
            for c, i in cs:
                p = payload(i)
                sent.append(p)
                await c.send(p)
            got = [json.loads(await b.next()) for _ in cs]
            self.assertEqual(sorted(got, key=lambda m: m["id"]), sorted(sent, key=lambda m: m["id"]))
            # nothing is added (no sender id), any JSON goes, even a non-object; the sender stays
            c, i = cs[0]
            for m in ['{"no_id": true}', "[1, 2, 3]", "17", '"text"', "null", '{"type": "bridge"}',
                      '{"type": "response", "data": 5}']:
                await c.send(m)
                self.assertEqual(json.loads(await b.next()), json.loads(m))
            # not JSON: ignored, the client stays connected
            await c.send("this is not json")
            await c.send("{'single': 'quotes'}")
            await c.send("[" * 100000 + "]" * 100000)  # deeper than json.loads goes: not JSON
            await c.send(b'\xff\xfe not utf-8')
            await c.send({"after": "garbage"})
            self.assertEqual(json.loads(await b.next()), {"after": "garbage"})
            self.assertEqual(await b.quiet(), [])
            self.assertIsNone(c.closed_code)
            for x, _ in cs:
                self.assertEqual(x.inbox, [], "clients never hear from each other or back")
            await asyncio.gather(*(x.close() for x, _ in cs))
            await b.close()
        self.run_async(go())

    def test_large_messages(self):
        async def go():
            b = await self.bridge()
            c, i = await self.client()
            for png in (60 * 1024, 100 * 1024):
                p = payload(i, n_fireworks=9, png_bytes=png)  # 9 drawings: ~720 KiB and ~1.2 MiB
                text = json.dumps(p)
                if len(text) > 1024 * 1024 - 64:
                    p = payload(i, n_fireworks=7, png_bytes=png)  # stay under the 1 MiB default
                    text = json.dumps(p)
                await c.send(text)
                got = await b.next(10)
                self.assertEqual(json.loads(got), p)
            big = json.dumps({"id": i, "status": "ready", "blob": "x" * (600 * 1024)})
            await b.send(big)
            self.assertEqual(await c.next(10), big)
            await c.close()
            await b.close()
        self.run_async(go())

    def test_no_bridge_drops_then_new_bridge_gets_later_messages(self):
        async def go():
            await self.no_clients()
            c, i = await self.client()
            await c.send(payload(i))  # no bridge: dropped, no error
            self.assertEqual(await c.quiet(), [])
            b = await self.bridge()
            self.assertEqual(await b.quiet(), [], "no queueing while there was no bridge")
            await c.send({"id": i, "n": 2})
            self.assertEqual(json.loads(await b.next()), {"id": i, "n": 2})
            await b.close()
            await self.until(lambda: not self.server.health()["bridge_connected"], "bridge gone")
            await c.send({"id": i, "n": 3})
            self.assertEqual(await c.quiet(), [])
            self.assertIsNone(c.closed_code)
            await c.close()
        self.run_async(go())

    # ---- bridge -> client ---------------------------------------------------------------------

    def test_bridge_routes_by_id_with_python_equality(self):
        async def go():
            await self.no_clients()
            b = await self.bridge()
            (c1, i1), (c2, i2), (c3, i3) = [await self.client() for _ in range(3)]
            self.assertEqual((i1, i2, i3), (1, 2, 3))
            for text, target in [('{"id": 1, "data": {"id": 1, "status": "ready"}}', c1),
                                 ('{"id":2.0,"data":{"status":"launch"}}', c2),
                                 ('{ "id" : true , "x" : 1 }', c1),
                                 ('{"id": 3e0}', c3),
                                 ('{"id": 3, "id": 2}', c2),
                                 ('{"data": {"id": 1}, "id": 3}', c3)]:
                await b.send(text)
                self.assertEqual(await target.next(), text, "the bridge's original text")
                for other in (c1, c2, c3):
                    self.assertEqual(await other.quiet(0.05), [], text)
            # dropped: string id, null, missing, no such client, fractional, false, nested id only
            for text in ['{"id": "1"}', '{"id": null}', '{"status": "ready"}', '{"id": 99}',
                         '{"id": 1.5}', '{"id": false}', '{"id": 0}', '{"id": -1}', '{"id": [1]}',
                         '{"id": {"id": 1}}', '{"data": {"id": 1}}', '{"id": 1, "id": null}',
                         '[{"id": 1}]', "1", '"x"', "not json", '{"id": 1',
                         '{"id": 1, "x": ' + "{\"a\": " * 50000 + "1" + "}" * 50000 + "}"]:
                await b.send(text)
            for c in (c1, c2, c3):
                self.assertEqual(await c.quiet(), [])
            # the bridge is still there and routing
            self.assertIsNone(b.closed_code)
            await b.send('{"id": 2, "ok": 1}')
            self.assertEqual(await c2.next(), '{"id": 2, "ok": 1}')
            for c in (c1, c2, c3):
                await c.close()
            await b.close()
        self.run_async(go())

    def test_bridge_to_clients_across_cores(self):
        async def go():
            await self.no_clients()
            b = await self.bridge()
            cs = await asyncio.gather(*(self.client() for _ in range(24)))
            for c, i in cs:
                await c.send(payload(i, 1))
            for _ in cs:
                m = json.loads(await b.next())
                await b.send(json.dumps({"id": m["id"], "data": {"id": m["id"], "status": "ready"}}))
            for c, i in cs:
                self.assertEqual(json.loads(await c.next()),
                                 {"id": i, "data": {"id": i, "status": "ready"}})
            # a freed id now routes to its new holder only
            old, oid = cs[0]
            await old.close()
            await self.until(lambda: self.clients_count() == len(cs) - 1, "released")
            new, nid = await self.client()
            self.assertEqual(nid, oid)
            await b.send(json.dumps({"id": nid, "status": "launch"}))
            self.assertEqual(json.loads(await new.next()), {"id": nid, "status": "launch"})
            for c, _ in cs[1:]:
                self.assertEqual(await c.quiet(0.05), [])
            await asyncio.gather(*(c.close() for c, _ in cs[1:] + [(new, 0)]))
            await b.close()
        self.run_async(go())

    # ---- bridge replacement ([DECIDE]) ---------------------------------------------------------

    def test_bridge_replacement(self):
        async def go():
            await self.no_clients()
            c, i = await self.client()
            b1 = await self.bridge()
            await c.send({"id": i, "to": "b1"})
            self.assertEqual(json.loads(await b1.next()), {"id": i, "to": "b1"})
            b2 = await self.connect()
            await b2.send({"type": "bridge"})
            await asyncio.sleep(0.2)
            await c.send({"id": i, "to": "b2"})
            self.assertEqual(json.loads(await b2.next()), {"id": i, "to": "b2"})
            self.assertEqual(await b1.quiet(), [], "a replaced bridge gets no client traffic")
            # the old bridge stays connected and its messages still reach clients
            await b1.send(json.dumps({"id": i, "from": "b1"}))
            self.assertEqual(json.loads(await c.next()), {"id": i, "from": "b1"})
            # the old bridge closing does not disconnect the current one
            await b1.close()
            await asyncio.sleep(0.2)
            self.assertTrue(self.server.health()["bridge_connected"])
            await c.send({"id": i, "still": "b2"})
            self.assertEqual(json.loads(await b2.next()), {"id": i, "still": "b2"})
            # the current bridge closing: client messages are dropped
            await b2.close()
            await self.until(lambda: not self.server.health()["bridge_connected"], "no bridge")
            await c.send({"id": i, "to": "nobody"})
            # the server handles frames in order: once the ping is answered, "nobody" was dropped
            await asyncio.wait_for(await c.ws.ping(), 5)
            b3 = await self.bridge()
            await c.send({"id": i, "to": "b3"})
            self.assertEqual(json.loads(await b3.next()), {"id": i, "to": "b3"})
            self.assertEqual(await b3.quiet(), [])
            await c.close()
            await b3.close()
        self.run_async(go())

    def test_bridge_on_another_core_replaced_many_times(self):
        async def go():
            await self.no_clients()
            cs = await asyncio.gather(*(self.client() for _ in range(6)))
            bridges = []
            for k in range(6):
                b = await self.connect()
                await b.send({"type": "bridge"})
                bridges.append(b)
                await asyncio.sleep(0.05)  # registrations on two cores: let each land in turn
            await asyncio.sleep(0.2)
            for c, i in cs:
                await c.send({"id": i})
            last = bridges[-1]
            got = sorted([json.loads(await last.next())["id"] for _ in cs])
            self.assertEqual(got, sorted(i for _, i in cs))
            for b in bridges[:-1]:
                self.assertEqual(await b.quiet(0.05), [])
            await asyncio.gather(*(b.close() for b in bridges[:-1]))
            await asyncio.sleep(0.2)
            self.assertTrue(self.server.health()["bridge_connected"])
            await asyncio.gather(*(c.close() for c, _ in cs))
            await last.close()
        self.run_async(go())

    # ---- health -------------------------------------------------------------------------------

    def test_health_fields_on_both_ports(self):
        async def go():
            await self.no_clients()
            for port in (self.http_port, self.port):
                h = self.server.health(port)
                self.assertEqual(h["status"], "healthy")
                self.assertEqual(h["websocket_port"], self.port)
                self.assertIs(type(h["connected_clients"]), int)
                self.assertIs(h["bridge_connected"], False)
            base = self.clients_count()
            pending = await self.connect()  # no first message yet: not a client
            cs = [await self.client() for _ in range(3)]
            b = await self.bridge()  # the bridge is not counted
            for port in (self.http_port, self.port):
                h = self.server.health(port)
                self.assertEqual(h["connected_clients"], base + 3)
                self.assertIs(h["bridge_connected"], True)
            await cs[0][0].close()
            await self.until(lambda: self.clients_count() == base + 2, "count after a close")
            await b.close()
            await self.until(lambda: self.server.health(self.port)["bridge_connected"] is False,
                             "bridge_connected false")
            for c, _ in cs[1:]:
                await c.close()
            await pending.close()
            await self.until(lambda: self.clients_count() == base, "count back")
        self.run_async(go())

    def test_origins(self):
        for origin in ("https://wizzyworks-frontend.vercel.app", "http://localhost:3000",
                       "http://localhost:3001", "http://127.0.0.1:3000", "http://127.0.0.1:8000"):
            with RawWebSocket(self.port, path="/", origin=origin) as ws:
                ws.send_text('{"type": "connection"}')
                self.assertIn(b'"code"', ws.read_message()[1], origin)
        with self.assertRaises(HandshakeFailed) as cm:
            RawWebSocket(self.port, path="/", origin="https://evil.example.com")
        self.assertEqual(cm.exception.response.status, 403)

    def test_ping_answered(self):
        async def go():
            c, _ = await self.client()
            await asyncio.wait_for(await c.ws.ping(b"hi"), 3)
            await c.close()
        self.run_async(go())


class BridgeShortTimeoutTest(BridgeBase):
    CONFIG = {"profiles.bridge": {"first_message_timeout_ms": 400}}

    def test_configured_timeout(self):
        async def go():
            t0 = time.monotonic()
            c = await self.connect()
            self.assertEqual(await c.wait_closed(3), 1000)
            self.assertLess(time.monotonic() - t0, 2.0)
            ok, _ = await self.client()
            await asyncio.sleep(0.8)
            self.assertIsNone(ok.closed_code)
            await ok.close()
        self.run_async(go())


class BridgeMovedTest(BridgeBase):
    CONFIG = {"profiles.bridge": {"path": "/bridge"}}

    def test_mounted_on_configured_path(self):
        async def go():
            c = await self.connect("/bridge")
            await c.send({"type": "connection"})
            self.assertEqual(json.loads(await c.next()), {"code": 0, "data": {"id": 1}})
            await c.close()
            with self.assertRaises(websockets.InvalidStatusCode):
                await self.connect("/")
        self.run_async(go())


if __name__ == "__main__":
    harness.main()
