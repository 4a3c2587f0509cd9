#!/usr/bin/python3
"""Server API (docs/server-api.md): POST /api/publish, /api/broadcast, /api/disconnect and
GET /api/rooms, /api/rooms/<room>/presence, /api/rooms/<room>/history, with `[api] keys`.

Subscribers sit on both workers; publishes keep the order of one API connection's requests
(pipelined in one write), get the room's sequence numbers and history, and under strict
durability answer only once the message is stored (it survives a restart). Every bad request gets
a 4xx with a JSON error and the server carries on.

Run: /usr/bin/python3 tests/integration/test_api.py --binary build/ringcast --backend epoll
"""

import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_livemap import run_async  # noqa: E402
from test_native import NativeCase, TOKENS_TOML, worker_of  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

KEY = "test-key-0123456789abcdef"
AUTH = [("Authorization", "apikey " + KEY)]


def api(port, method, path, body=None, headers=AUTH):
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    hdrs = list(headers) + ([("Content-Type", "application/json")] if data else [])
    r = harness.http_request(port, method, path, headers=hdrs, body=data)
    return r, (r.json() if r.body else None)


class ApiCase(NativeCase):
    CONFIG_TEXT = ('[hub]\nhistory = 500\n[api]\nkeys = ["%s", "second-key-0123456789"]\n'
                   'max_body_bytes = 16384\n[store]\npersistent_rooms = ["keep*"]\n'
                   'durability = "strict"\n' % KEY) + TOKENS_TOML

    def test_keys(self):
        r, j = api(self.http_port, "GET", "/api/rooms", headers=[])
        self.assertEqual(r.status, 401, r)
        self.assertIn("error", j)
        self.assertEqual(r.header("WWW-Authenticate"), "apikey")
        r, j = api(self.http_port, "GET", "/api/rooms", headers=[("Authorization", "apikey nope")])
        self.assertEqual(r.status, 401, r)
        for key in (KEY, "second-key-0123456789"):
            r, j = api(self.http_port, "GET", "/api/rooms",
                       headers=[("Authorization", "apikey " + key)])
            self.assertEqual(r.status, 200, r)
        # The WebSocket port answers the API too (requests without Upgrade).
        r, j = api(self.port, "GET", "/api/rooms")
        self.assertEqual(r.status, 200, r)
        # The seed's /api and /api/version are untouched and need no key.
        r, _ = api(self.http_port, "GET", "/api/version", headers=[])
        self.assertEqual(r.status, 200, r)

    def test_publish_fans_out_in_order_with_history(self):
        async def scenario():
            groups = await self.spread(2)
            members = [c for g in groups for c in g]
            for c in members:
                r = await c.req("join", room="news")
                self.assertEqual(r["type"], "joined", r)
            # 400 publishes pipelined in one write on one keep-alive connection (more than
            # head + body limits, so reads pause while answers are pending): answers and
            # deliveries keep the request order.
            n = 400
            reqs = b"".join(harness.build_request(
                "POST", "/api/publish", AUTH + [("Content-Type", "application/json")],
                json.dumps({"room": "news", "data": {"i": i}, "user": "backend"}).encode())
                for i in range(n))

            def pipelined():
                with harness.RawConn(self.http_port) as conn:
                    conn.send(reqs)
                    return [conn.read_response("POST") for _ in range(n)]
            answers = await asyncio.get_running_loop().run_in_executor(None, pipelined)
            seqs = [a.json()["seq"] for a in answers]
            self.assertTrue(all(a.status == 200 for a in answers), answers[:3])
            self.assertEqual(seqs, list(range(seqs[0], seqs[0] + n)), seqs)
            for c in members:
                got = []
                for _ in range(n):
                    m = await c.take_type("message", room="news")
                    got.append(m)
                self.assertEqual([m["data"]["i"] for m in got], list(range(n)), c.name)
                self.assertEqual([m["seq"] for m in got], seqs, c.name)
                self.assertTrue(all(m["user"] == "backend" for m in got))
            r, j = api(self.http_port, "GET", "/api/rooms/news/history?limit=3")
            self.assertEqual(r.status, 200, r)
            self.assertEqual([m["seq"] for m in j["messages"]], seqs[-1:-4:-1], j)
            self.assertEqual(j["messages"][0]["data"], {"i": n - 1})
            r, j = api(self.http_port, "GET", "/api/rooms/news/history?since=%d" % seqs[-3])
            self.assertEqual([m["seq"] for m in j["messages"]], seqs[-2:], j)
            # A native client's history sees the same records.
            h = await members[0].req("history", room="news", since=seqs[-3])
            self.assertEqual([m["seq"] for m in h["messages"]], seqs[-2:], h)
        self.run_scenario(scenario)

    def test_broadcast_and_raw(self):
        async def scenario():
            groups = await self.spread(1)
            a, b = groups[0][0], groups[1][0]
            await a.req("join", room="b1")
            await b.req("join", room="b2")
            r, j = api(self.http_port, "POST", "/api/broadcast",
                       {"rooms": ["b1", "b2", "b3"], "data": "hello"})
            self.assertEqual(r.status, 200, r)
            self.assertEqual([x["room"] for x in j["results"]], ["b1", "b2", "b3"], j)
            self.assertTrue(all(isinstance(x["seq"], int) for x in j["results"]), j)
            self.assertEqual((await a.take_type("message", room="b1"))["data"], "hello")
            self.assertEqual((await b.take_type("message", room="b2"))["data"], "hello")
            # Raw rooms: subscribers on both workers get the text as sent (strings) or JSON.
            raws = []
            for _ in range(12):
                raws.append(await websockets.connect(
                    "ws://127.0.0.1:%d/raw/ticker" % self.port, open_timeout=5))
            try:
                await asyncio.sleep(0.2)  # joins of /raw rooms complete with the upgrade
                r, j = api(self.http_port, "POST", "/api/publish",
                           {"room": "ticker", "kind": "raw", "data": "tick 1"})
                self.assertEqual(r.status, 200, r)
                self.assertEqual(j, {"room": "ticker"})
                r, j = api(self.http_port, "POST", "/api/publish",
                           {"room": "ticker", "kind": "raw", "data": {"tick": 2}})
                self.assertEqual(r.status, 200, r)
                for ws in raws:
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "tick 1")
                    self.assertEqual(json.loads(await asyncio.wait_for(ws.recv(), 5)), {"tick": 2})
                r, j = api(self.http_port, "GET", "/api/rooms")
                row = [x for x in j["rooms"] if x["room"] == "ticker"]
                self.assertEqual(len(row), 1, j)
                self.assertEqual(row[0]["members"], 12, row)
                self.assertEqual(sum(row[0]["members_per_core"]), 12, row)
                self.assertEqual(len(row[0]["members_per_core"]), 2, row)
            finally:
                for ws in raws:
                    await ws.close()
        self.run_scenario(scenario)

    def test_presence_and_disconnect(self):
        async def scenario():
            groups = await self.spread(2)
            alice = [groups[0][0], groups[1][0]]      # u1 on both workers
            bob = groups[0][1]
            for c in alice:
                self.assertEqual((await c.req("auth", token="tok-a"))["type"], "authed")
            await bob.req("auth", token="tok-b")
            for c in alice + [bob]:
                await c.req("join", room="lounge", presence=True)
            r, j = api(self.http_port, "GET", "/api/rooms/lounge/presence")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(sorted(m["user_id"] for m in j["members"]), ["u1", "u1", "u2"], j)
            r, j = api(self.http_port, "GET", "/api/rooms/nowhere/presence")
            self.assertEqual(j, {"room": "nowhere", "members": []})
            # By session, with a code of the application's own.
            bob_sid = await bob.whoami()
            r, j = api(self.http_port, "POST", "/api/disconnect",
                       {"session": bob_sid, "code": 4001, "reason": "bye"})
            self.assertEqual(j, {"disconnected": 1}, r)
            await asyncio.wait_for(bob.ws.wait_closed(), 5)
            self.assertEqual(bob.ws.close_code, 4001)
            # By user: every session of u1, on both workers.
            r, j = api(self.http_port, "POST", "/api/disconnect", {"user": "u1"})
            self.assertEqual(j, {"disconnected": 2}, r)
            for c in alice:
                await asyncio.wait_for(c.ws.wait_closed(), 5)
                self.assertEqual(c.ws.close_code, 1008)
            r, j = api(self.http_port, "POST", "/api/disconnect", {"user": "u1"})
            self.assertEqual(j, {"disconnected": 0}, r)
        self.run_scenario(scenario)

    def test_strict_publish_is_stored(self):
        r, j = api(self.http_port, "POST", "/api/publish", {"room": "keep-1", "data": {"v": 1}})
        self.assertEqual(r.status, 200, r)
        seq = j["seq"]
        # Acknowledged = committed: the record is in the durable store (restart and read it).
        srv = type(self).server
        srv.stop()
        srv.start()
        r, j = api(self.http_port, "GET", "/api/rooms/keep-1/history")
        self.assertEqual([m["seq"] for m in j["messages"]], [seq], j)
        self.assertEqual(j["messages"][0]["data"], {"v": 1})

    def test_bad_requests(self):
        port = self.http_port
        cases = [
            ("POST", "/api/publish", b"{", 400),
            ("POST", "/api/publish", b"[1]", 400),
            ("POST", "/api/publish", b"[" * 300 + b"]" * 300, 400),
            ("POST", "/api/publish", {"room": "x"}, 400),
            ("POST", "/api/publish", {"room": "", "data": 1}, 400),
            ("POST", "/api/publish", {"room": "x" * 129, "data": 1}, 400),
            ("POST", "/api/publish", {"room": "a\u202eb", "data": 1}, 400),
            ("POST", "/api/publish", {"room": "x", "data": 1, "kind": "sse"}, 400),
            ("POST", "/api/publish", {"room": "gamechat:global", "data": 1}, 403),
            ("POST", "/api/broadcast", {"rooms": [], "data": 1}, 400),
            ("POST", "/api/broadcast", {"rooms": ["a"] * 1001, "data": 1}, 400),
            ("POST", "/api/disconnect", {"session": "1", "user": "u"}, 400),
            ("POST", "/api/disconnect", {"session": 5}, 400),
            ("POST", "/api/disconnect", {"user": "u", "code": 1006}, 400),
            ("GET", "/api/publish", None, 405),
            ("POST", "/api/rooms", {}, 405),
            ("GET", "/api/nothing", None, 404),
            ("GET", "/api/rooms/x/history?limit=abc", None, 400),
            ("GET", "/api/rooms/%zz/history", None, 400),
        ]
        for method, path, body, status in cases:
            with self.subTest(path=path, body=str(body)[:40]):
                r, j = api(port, method, path, body)
                self.assertEqual(r.status, status, r)
                self.assertIsInstance(j.get("error"), str, r)
        # Over [api] max_body_bytes: 413 before the body is read, and the connection closes.
        with harness.RawConn(port) as c:
            r = c.request("POST", "/api/publish", AUTH + [("Content-Length", "20000")], b"")
            self.assertEqual(r.status, 413, r)
            self.assertEqual(r.header("Connection"), "close", r)
        # Chunked bodies are refused with 411.
        with harness.RawConn(port) as c:
            r = c.request("POST", "/api/publish", AUTH + [("Transfer-Encoding", "chunked")],
                          b"")
            self.assertEqual(r.status, 411, r)
        # The server still answers.
        r, j = api(port, "POST", "/api/publish", {"room": "after", "data": 1})
        self.assertEqual(r.status, 200, r)


class ApiOffCase(harness.ServerTestCase):
    def test_off_without_keys(self):
        r, j = api(self.http_port, "POST", "/api/publish", {"room": "x", "data": 1})
        self.assertEqual(r.status, 404, r)
        self.assertIn("off", j["error"])


if __name__ == "__main__":
    harness.main()
