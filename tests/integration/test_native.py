#!/usr/bin/python3
"""Native JSON protocol on `/ws` (docs/native-protocol.md): every op, its replies and error codes,
fan-out ordering over both cores, presence, history, retained state, reconnect recovery,
endpoints/relay, direct sends and binary frames.

Run: /usr/bin/python3 tests/integration/test_native.py --binary build/ringcast --backend epoll

Session ids' top 16 bits (id >> 48) name the worker, so cross-core scenarios pick their clients
from the ids the server reports.
"""

import asyncio
import itertools
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from ws_inbox import Binary, WsInbox, json_decoder  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

NOFILE = harness.raise_nofile_limit(20000)

TOKENS_TOML = """
[tokens]
"tok-a" = { user_id = "u1", nickname = "Alice" }
"tok-b" = { user_id = "u2", nickname = "Bob" }
"""

_ids = itertools.count(1)


def worker_of(sid):
    return int(sid) >> 48


class NClient(WsInbox):
    """A /ws connection. A reader task parses every text frame into `inbox` (binary frames as
    Binary); `take` removes and returns the first message matching a predicate."""

    def __init__(self, ws, name):
        self.nmsg = 0                 # "message" events received so far
        self.sid = None
        super().__init__(ws, name, on_message=self._count,
                         decode=json_decoder(lambda m: {"type": "<unparseable>", "text": m}))

    def _count(self, m):
        if isinstance(m, dict) and m.get("type") == "message":
            self.nmsg += 1

    # -- sending ----------------------------------------------------------

    async def req(self, op, timeout=5.0, **fields):
        """Send {"op":op, "id":<unique>, **fields}; return the reply carrying that id."""
        rid = next(_ids)
        self.last_id = rid
        msg = {"op": op, "id": rid}
        msg.update(fields)
        await self.send(msg)
        return await self.take(lambda m: isinstance(m, dict) and m.get("id") == rid, timeout,
                               "reply to %s id %d" % (op, rid))

    # -- receiving --------------------------------------------------------

    async def take_type(self, typ, timeout=5.0, **match):
        def pred(m):
            return isinstance(m, dict) and m.get("type") == typ and all(m.get(k) == v for k, v in match.items())
        return await self.take(pred, timeout, "%s %r" % (typ, match))

    def pop_all(self, pred):
        out, keep = [], []
        for m in self.inbox:
            try:
                ok = pred(m)
            except (KeyError, TypeError, AttributeError):
                ok = False
            (out if ok else keep).append(m)
        self.inbox[:] = keep
        return out

    def messages(self, room):
        return [m for m in self.inbox if isinstance(m, dict) and m.get("type") == "message" and m.get("room") == room]

    async def quiet(self, pred, seconds=0.3):
        """Assert no message matching pred arrives within `seconds` (returns the matches)."""
        await asyncio.sleep(seconds)
        return [m for m in self.inbox if _safe(pred, m)]

    # -- helpers ----------------------------------------------------------

    async def join(self, room, **fields):
        r = await self.req("join", room=room, **fields)
        if r.get("type") != "joined":
            raise AssertionError("%s: join %s failed: %r" % (self.name, room, r))
        return r

    async def whoami(self):
        """Own session id, from the members list of a private presence room."""
        if self.sid is None:
            room = "who-" + uuid.uuid4().hex
            r = await self.join(room, presence=True)
            mem = r.get("members")
            if not (isinstance(mem, list) and len(mem) == 1):
                raise AssertionError("members of a fresh presence room: %r" % (mem,))
            self.sid = mem[0]["session"]
            left = await self.req("leave", room=room)
            if left.get("type") != "left":
                raise AssertionError("leave: %r" % left)
        return self.sid

    async def drop(self):
        """Abrupt disconnect: TCP closed without a close handshake."""
        self.ws.transport.abort()
        try:
            await asyncio.wait_for(self.reader, 3)
        except Exception:  # noqa: BLE001
            pass


def _safe(pred, m):
    try:
        return pred(m)
    except (KeyError, TypeError, AttributeError):
        return False


async def nconnect(port, name="c"):
    ws = await websockets.connect("ws://127.0.0.1:%d/ws" % port, ping_interval=None, compression=None,
                                  max_size=16 << 20, max_queue=None, open_timeout=10, close_timeout=3)
    return NClient(ws, name)


def run_async(coro, timeout):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def await_cond(pred, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        await asyncio.sleep(interval)


class NativeCase(harness.ServerTestCase):
    CONFIG_TEXT = "[hub]\nhistory = 1200\n" + TOKENS_TOML

    def setUp(self):
        super().setUp()
        self._clients = []

    async def client(self, name="c"):
        c = await nconnect(self.port, name)
        self._clients.append(c)
        return c

    async def close_all(self):
        await asyncio.gather(*(c.close() for c in self._clients))

    async def spread(self, per_worker, names=None):
        """{worker: [clients]} with at least `per_worker` clients on each of 2 workers (bounded)."""
        by = {}
        n = 0
        for _ in range(60):
            c = await self.client("c%d" % n)
            n += 1
            by.setdefault(worker_of(await c.whoami()), []).append(c)
            if len(by) >= 2 and all(len(v) >= per_worker for v in by.values()):
                break
        self.assertGreaterEqual(len(by), 2, "60 connections all landed on one worker: %r" % list(by))
        self.assertTrue(all(len(v) >= per_worker for v in by.values()), {k: len(v) for k, v in by.items()})
        ws = sorted(by)
        out = [by[ws[0]][:per_worker], by[ws[1]][:per_worker]]
        for wi, group in enumerate(out):
            for j, c in enumerate(group):
                c.name = "w%d-%d" % (ws[wi], j)
        return out

    def run_scenario(self, fn, timeout=40):
        async def wrapped():
            try:
                await fn()
            finally:
                await self.close_all()
        run_async(wrapped(), timeout)

    async def assert_alive(self, c):
        r = await c.req("ping")
        self.assertEqual(r.get("type"), "pong", "%s: connection unusable after errors: %r" % (c.name, r))

    async def expect_error(self, c, code, req):
        """Send req (a dict with an id) and return a mismatch description or None."""
        rid = next(_ids)
        req = dict(req)
        req["id"] = rid
        await c.send(req)
        try:
            r = await c.take(lambda m: isinstance(m, dict) and m.get("id") == rid, 3, "reply to %r" % req)
        except AssertionError:
            if c.closed_code is not None:
                raise
            return "%s -> no reply within 3 s (expected error %s)" % (json.dumps(req), code)
        if r.get("type") != "error" or r.get("code") != code or not isinstance(r.get("message"), str):
            return "%s -> %s (expected error %s)" % (json.dumps(req), json.dumps(r), code)
        return None


# --------------------------------------------------------------------------
# ping and error codes
# --------------------------------------------------------------------------

class ErrorsTest(NativeCase):

    def test_ping_copies_id(self):
        async def t():
            c = await self.client()
            for rid in (1, 0, -5, "abc", "", 2 ** 53 + 1, 1.5, True, [1, "x"], {"a": [1, {"b": None}]}):
                await c.send({"op": "ping", "id": rid})
                r = await c.take_type("pong")
                self.assertEqual(r, {"type": "pong", "id": rid})
            await c.send({"op": "ping"})
            self.assertEqual(await c.take_type("pong"), {"type": "pong"})
            await c.send('{"id":null,"op":"ping"}')
            self.assertEqual(await c.take_type("pong"), {"type": "pong", "id": None},
                             "id null is a JSON value and is copied")
        self.run_scenario(t)

    def test_bad_json(self):
        async def t():
            c = await self.client()
            for text in ("garbage", "{", "", '{"op":"ping"', "[1,2", "{'op':'ping'}", '"unterminated',
                         '{"op":"ping"} trailing', '{"op":"ping",}', "\u00e9"):
                await c.send(text)
                r = await c.take_type("error", timeout=5)
                self.assertEqual(r.get("code"), "bad_json", "for %r: %r" % (text, r))
                self.assertIsInstance(r.get("message"), str)
                await self.assert_alive(c)
        self.run_scenario(t)

    def test_deep_nesting_is_refused_not_fatal(self):
        # 400k '[' used to overflow the parser's stack; now a bad_json error, and all is well.
        async def t():
            c = await self.client()
            await c.send('{"op":"ping","id":' + "[" * 400000)
            r = await c.take_type("error", timeout=10)
            self.assertEqual(r.get("code"), "bad_json", r)
            await c.send({"op": "ping", "id": [[[[1]]]]})
            self.assertEqual(await c.take_type("pong"), {"type": "pong", "id": [[[[1]]]]})
            await self.assert_alive(c)
        self.run_scenario(t)

    def test_profile_rooms_are_forbidden(self):
        async def t():
            c = await self.client()
            for room in ("gamechat:global", "livemap:markers", "chatroom:text"):
                e = await self.expect_error(c, "forbidden", {"op": "join", "room": room})
                self.assertIsNone(e, e)
            await self.assert_alive(c)
        self.run_scenario(t)

    def test_bad_request_not_an_object_or_bad_op(self):
        async def t():
            c = await self.client()
            for text in ("[]", "1", '"ping"', "null", "true", '[{"op":"ping"}]'):
                await c.send(text)
                r = await c.take_type("error")
                self.assertEqual(r.get("code"), "bad_request", "for %r: %r" % (text, r))
            bad = []
            for req in ({}, {"op": 1}, {"op": None}, {"op": ["ping"]}, {"op": {"x": 1}}, {"room": "r"}):
                e = await self.expect_error(c, "bad_request", req)
                if e:
                    bad.append(e)
            self.assertEqual(bad, [])
            await self.assert_alive(c)
        self.run_scenario(t)

    def test_bad_request_field_types(self):
        async def t():
            c = await self.client()
            await c.join("br")
            # c owns an endpoint and is attached to another one, so relay errors can only be
            # about the field types
            helper = await self.client("helper")
            self.assertEqual((await c.req("register", name="br-own"))["type"], "registered")
            self.assertEqual((await helper.req("register", name="br-other"))["type"], "registered")
            self.assertEqual((await c.req("attach", name="br-other"))["type"], "attached")
            cases = [
                {"op": "join"}, {"op": "join", "room": 5}, {"op": "join", "room": None},
                {"op": "join", "room": ["r"]}, {"op": "join", "room": ""}, {"op": "join", "room": "x" * 129},
                {"op": "join", "room": "br2", "presence": "yes"}, {"op": "join", "room": "br2", "presence": 1},
                {"op": "join", "room": "br2", "history": -1}, {"op": "join", "room": "br2", "history": "5"},
                {"op": "join", "room": "br2", "history": 1001}, {"op": "join", "room": "br2", "history": 1.5},
                {"op": "join", "room": "br2", "history": True},
                {"op": "join", "room": "br2", "since": -1}, {"op": "join", "room": "br2", "since": "3"},
                {"op": "join", "room": "br2", "since": 2.5},
                {"op": "leave"}, {"op": "leave", "room": 5},
                {"op": "publish", "data": 1}, {"op": "publish", "room": 7, "data": 1},
                {"op": "publish", "room": "br", "data": 1, "echo": "no"},
                {"op": "publish", "room": "br", "data": 1, "echo": 0},
                {"op": "history"}, {"op": "history", "room": 1},
                {"op": "history", "room": "br", "limit": "x"}, {"op": "history", "room": "br", "limit": -1},
                {"op": "history", "room": "br", "offset": "x"}, {"op": "history", "room": "br", "offset": -2},
                {"op": "history", "room": "br", "since": "x"}, {"op": "history", "room": "br", "since": -1},
                {"op": "presence"}, {"op": "presence", "room": 2},
                {"op": "state.set", "key": "k", "value": 1}, {"op": "state.set", "room": 5, "key": "k", "value": 1},
                {"op": "state.set", "room": "br", "value": 1}, {"op": "state.set", "room": "br", "key": "", "value": 1},
                {"op": "state.set", "room": "br", "key": "k" * 257, "value": 1},
                {"op": "state.set", "room": "br", "key": 5, "value": 1},
                {"op": "state.del", "room": "br"}, {"op": "state.del", "room": "br", "key": 7},
                {"op": "state.del", "room": "br", "key": ""}, {"op": "state.del", "key": "k"},
                {"op": "send", "data": 1}, {"op": "send", "to": 281474976710657, "data": 1},
                {"op": "send", "to": None, "data": 1}, {"op": "send", "to": {"a": 1}, "data": 1},
                {"op": "register"}, {"op": "register", "name": 5},
                {"op": "attach"}, {"op": "attach", "name": 5},
                {"op": "relay", "name": 5, "data": 1}, {"op": "relay", "name": "br-own", "to": 5, "data": 1},
                {"op": "relay", "name": "br-own", "to": None, "data": 1},
                {"op": "auth"}, {"op": "auth", "token": 5},
            ]
            bad = []
            for n, req in enumerate(cases):
                if req["op"] == "join" and req.get("room") == "br2":
                    req = dict(req, room="br2-%d" % n)   # a wrongly accepted join has no side effect
                e = await self.expect_error(c, "bad_request", req)
                if e:
                    bad.append(e)
            self.assertEqual(bad, [], "requests not answered with bad_request:\n" + "\n".join(bad))
            await self.assert_alive(c)
            # the boundary values are accepted
            self.assertEqual((await c.req("join", room="y" * 128, history=1000))["type"], "joined")
            self.assertEqual((await c.req("state.set", room="br", key="k" * 256, value=1))["type"], "ack")
        self.run_scenario(t)

    def test_unknown_op(self):
        async def t():
            c = await self.client()
            bad = []
            for op in ("nope", "PING", "Ping", "", "join ", "state", "state.get", "publish2"):
                e = await self.expect_error(c, "unknown_op", {"op": op, "room": "r"})
                if e:
                    bad.append(e)
            self.assertEqual(bad, [])
            await self.assert_alive(c)
        self.run_scenario(t)

    def test_not_joined(self):
        async def t():
            c = await self.client()
            bad = []
            for req in ({"op": "publish", "room": "nj", "data": 1},
                        {"op": "leave", "room": "nj"},
                        {"op": "state.set", "room": "nj", "key": "k", "value": 1},
                        {"op": "state.del", "room": "nj", "key": "k"}):
                e = await self.expect_error(c, "not_joined", req)
                if e:
                    bad.append(e)
            self.assertEqual(bad, [])
            # a binary frame before any join
            await c.send(b"\x00\x01bin")
            r = await c.take_type("error")
            self.assertEqual(r.get("code"), "not_joined", r)
            await self.assert_alive(c)
            # joined another room / left the room
            await c.join("nj-other")
            self.assertIsNone(await self.expect_error(c, "not_joined", {"op": "publish", "room": "nj", "data": 1}))
            await c.join("nj")
            self.assertEqual((await c.req("publish", room="nj", data=1))["type"], "ack")
            self.assertEqual(await c.req("leave", room="nj"), {"type": "left", "room": "nj", "id": c.last_id})
            self.assertIsNone(await self.expect_error(c, "not_joined", {"op": "publish", "room": "nj", "data": 2}))
            self.assertIsNone(await self.expect_error(c, "not_joined", {"op": "leave", "room": "nj"}))
            # history needs no membership
            r = await c.req("history", room="nj")
            self.assertEqual(r.get("type"), "history", r)
            await self.assert_alive(c)
        self.run_scenario(t)

    def test_already_joined(self):
        async def t():
            c = await self.client()
            await c.join("aj")
            self.assertIsNone(await self.expect_error(c, "already_joined", {"op": "join", "room": "aj"}))
            self.assertIsNone(await self.expect_error(c, "already_joined",
                                                      {"op": "join", "room": "aj", "presence": True}))
            # pipelined: the second join arrives while the first is in progress
            for k in range(5):
                room = "aj-pipe-%d" % k
                await c.send({"op": "join", "room": room, "id": "first-%d" % k})
                await c.send({"op": "join", "room": room, "id": "second-%d" % k})
                r1 = await c.take(lambda m: m.get("id") == "first-%d" % k)
                r2 = await c.take(lambda m: m.get("id") == "second-%d" % k)
                self.assertEqual(r1.get("type"), "joined", r1)
                self.assertEqual((r2.get("type"), r2.get("code")), ("error", "already_joined"), r2)
            # after a leave the room can be joined again
            self.assertEqual((await c.req("leave", room="aj"))["type"], "left")
            await c.join("aj")
            await self.assert_alive(c)
        self.run_scenario(t)

    def test_endpoints_per_session_are_capped(self):
        # Each stays until the session closes: at most 64 registered and 64 attached per session.
        async def t():
            a = await self.client("a")
            names = ["cap-%d-%d" % (os.getpid(), i) for i in range(65)]
            for n in names[:64]:
                self.assertEqual((await a.req("register", name=n))["type"], "registered")
            self.assertIsNone(await self.expect_error(a, "endpoint_limit",
                                                      {"op": "register", "name": names[64]}))
            self.assertEqual((await a.req("register", name=names[0]))["type"], "registered")
            p = await self.client("p")
            for n in names[:64]:
                self.assertEqual((await p.req("attach", name=n))["type"], "attached")
            b = await self.client("b")
            self.assertEqual((await b.req("register", name=names[64]))["type"], "registered")
            self.assertIsNone(await self.expect_error(p, "endpoint_limit",
                                                      {"op": "attach", "name": names[64]}))
            self.assertEqual((await p.req("attach", name=names[5]))["type"], "attached")
            await self.close_all()
        self.run_scenario(t)

    def test_endpoint_and_send_errors(self):
        async def t():
            (a, b), (x, y) = await self.spread(2)
            self.assertEqual(await a.req("register", name="err-ep"),
                             {"type": "registered", "name": "err-ep", "id": a.last_id})
            bad = []
            for cl, code, req in (
                    (x, "name_taken", {"op": "register", "name": "err-ep"}),
                    (b, "name_taken", {"op": "register", "name": "err-ep"}),
                    (x, "no_such_endpoint", {"op": "attach", "name": "err-none"}),
                    (x, "not_attached", {"op": "relay", "data": 1}),
                    (x, "not_attached", {"op": "relay", "name": "err-ep", "data": 1}),
                    (a, "not_attached", {"op": "relay", "name": "err-ep", "to": await y.whoami(), "data": 1})):
                e = await self.expect_error(cl, code, req)
                if e:
                    bad.append("%s: %s" % (cl.name, e))
            # relay naming an unknown endpoint from a session that is attached
            self.assertEqual((await x.req("attach", name="err-ep"))["type"], "attached")
            e = await self.expect_error(x, "no_such_endpoint", {"op": "relay", "name": "err-none", "data": 1})
            if e:
                bad.append("%s: %s" % (x.name, e))
            self.assertEqual(bad, [])
            # no_such_session: made-up ids on each worker, on a worker that does not exist,
            # and a session that has just disconnected
            gone = await self.client("gone")
            gone_sid = await gone.whoami()
            await gone.close()
            await asyncio.sleep(0.3)
            targets = [str((worker_of(a.sid) << 48) | 0xFFFFFFF), str((worker_of(x.sid) << 48) | 0xFFFFFFF),
                       str((777 << 48) | 1), gone_sid]
            for src in (a, x):
                for to in targets:
                    await src.send({"op": "send", "to": to, "data": {"n": 1}, "id": "s-" + to})
                    r = await src.take_type("error", code="no_such_session")
                    if "id" in r:
                        self.assertEqual(r["id"], "s-" + to, r)
            for cl in (a, b, x, y):
                await self.assert_alive(cl)
        self.run_scenario(t)


class NoTokensTest(NativeCase):
    """Default config: no [tokens], default history size."""
    CONFIG_TEXT = None

    def test_auth_failed_without_tokens(self):
        async def t():
            c = await self.client()
            for tok in ("tok-a", "secret", "x" * 300):
                self.assertIsNone(await self.expect_error(c, "auth_failed", {"op": "auth", "token": tok}))
            await self.assert_alive(c)
            # still anonymous: no user on its messages
            await c.join("anon")
            await c.req("publish", room="anon", data=1)
            m = await c.take_type("message", room="anon")
            self.assertNotIn("user", m)
        self.run_scenario(t)

    def test_history_keeps_last_100_by_default(self):
        async def t():
            c = await self.client()
            await c.join("h100")
            for i in range(130):
                await c.send({"op": "publish", "room": "h100", "data": {"i": i}, "echo": False})
            await c.req("publish", room="h100", data={"i": 130}, echo=False)
            r = await c.req("history", room="h100", limit=1000)
            self.assertEqual(r["seq"], 131)
            self.assertEqual([m["seq"] for m in r["messages"]], list(range(131, 31, -1)))
            self.assertEqual([m["data"]["i"] for m in r["messages"]], list(range(130, 30, -1)))
            r = await c.req("history", room="h100", since=0)
            self.assertEqual([m["seq"] for m in r["messages"]], list(range(32, 132)))
        self.run_scenario(t)


class AuthTest(NativeCase):

    def test_auth_success_and_identity(self):
        async def t():
            (a, b), (x, y) = await self.spread(2)
            r = await a.req("auth", token="tok-a")
            self.assertEqual(r, {"type": "authed", "id": a.last_id, "session": a.sid, "user_id": "u1",
                                 "nickname": "Alice"})
            self.assertIsNone(await self.expect_error(x, "auth_failed", {"op": "auth", "token": "tok-zzz"}))
            self.assertIsNone(await self.expect_error(x, "auth_failed", {"op": "auth", "token": "TOK-A"}))
            await self.assert_alive(x)
            r = await x.req("auth", token="tok-b")
            self.assertEqual((r["type"], r["session"], r["user_id"], r["nickname"]), ("authed", x.sid, "u2", "Bob"))
            # identity on published messages (seen on both workers) ...
            for c in (a, b, x, y):
                await c.join("auth-room", presence=(c is y))
            await a.req("publish", room="auth-room", data="from alice")
            await b.req("publish", room="auth-room", data="from anon")
            for c in (a, b, x, y):
                m1 = await c.take_type("message", room="auth-room", data="from alice")
                self.assertEqual((m1["from"], m1.get("user")), (a.sid, "u1"), c.name)
                m2 = await c.take_type("message", room="auth-room", data="from anon")
                self.assertEqual(m2["from"], b.sid)
                self.assertNotIn("user", m2, "anonymous sender has no user")
            # ... in presence lists ...
            r = await y.req("presence", room="auth-room")
            members = {m["session"]: m for m in r["members"]}
            self.assertEqual(set(members), {a.sid, b.sid, x.sid, y.sid})
            self.assertEqual(members[a.sid], {"session": a.sid, "user_id": "u1", "nickname": "Alice"})
            self.assertEqual(members[x.sid], {"session": x.sid, "user_id": "u2", "nickname": "Bob"})
            self.assertEqual(members[b.sid], {"session": b.sid})
            # ... and on direct sends across workers
            await a.send({"op": "send", "to": y.sid, "data": {"hi": 1}})
            d = await y.take_type("direct")
            self.assertEqual(d, {"type": "direct", "from": a.sid, "user": "u1", "data": {"hi": 1}})
        self.run_scenario(t)


# --------------------------------------------------------------------------
# publish fan-out over both cores
# --------------------------------------------------------------------------

class FanoutTest(NativeCase):

    N_MEMBERS = 200
    N_PER_PUB = 30

    def test_publish_order_and_exactly_once_200_members(self):
        room = "fan"

        async def t():
            (p0, p1), (p2, p3) = await self.spread(2)
            pubs = [p0, p1, p2, p3]
            echo = [True, False, True, False]     # one echo=false publisher on each worker
            members = []
            for start in range(0, self.N_MEMBERS, 40):
                members += await asyncio.gather(*(self.client("m%d" % (start + i)) for i in range(40)))
            everyone = members + pubs
            joins = []
            for start in range(0, len(everyone), 40):
                joins += await asyncio.gather(*(c.join(room) for c in everyone[start:start + 40]))
            self.assertEqual({j["seq"] for j in joins}, {0}, "seq of a fresh room at join")
            for j in joins:
                self.assertEqual((j["type"], j["room"], j["state"], sorted(j)),
                                 ("joined", room, {}, ["id", "room", "seq", "state", "type"]), j)
            pt = self.server.health()["connections"]["per_thread"]
            self.assertTrue(len(pt) == 2 and min(pt) >= 40, "members not spread over both workers: %r" % pt)

            sent_ids = {p: [] for p in range(4)}

            async def publish(p):
                for i in range(self.N_PER_PUB):
                    rid = "p%d-%d" % (p, i)
                    sent_ids[p].append(rid)
                    msg = {"op": "publish", "room": room, "data": {"p": p, "i": i}, "id": rid}
                    if not echo[p]:
                        msg["echo"] = False
                    await pubs[p].send(msg)
                    if i % 5 == 4:
                        await asyncio.sleep(0)
            await asyncio.gather(*(publish(p) for p in range(4)))
            total = 4 * self.N_PER_PUB

            def want(c):
                return total - (self.N_PER_PUB if c in pubs and not echo[pubs.index(c)] else 0)
            try:
                await await_cond(lambda: all(c.nmsg >= want(c) for c in everyone), 45, "all messages")
            except AssertionError:
                short = [(c.name, c.nmsg, want(c)) for c in everyone if c.nmsg < want(c)]
                raise AssertionError("%d members short: %r" % (len(short), short[:8]))
            await asyncio.sleep(0.5)
            for p in range(4):  # acks, in order
                acks = [m["id"] for m in pubs[p].inbox if m.get("type") == "ack"]
                self.assertEqual(acks, sent_ids[p], "acks of publisher %d" % p)
            ref = members[0].messages(room)
            self.assertEqual([m["seq"] for m in ref], list(range(1, total + 1)), "reference member seqs")
            order = [(m["data"]["p"], m["data"]["i"]) for m in ref]
            for p in range(4):
                self.assertEqual([i for (q, i) in order if q == p], list(range(self.N_PER_PUB)),
                                 "publisher %d order" % p)
            now_ms = time.time() * 1000
            for m in ref:
                p = m["data"]["p"]
                self.assertEqual(m["from"], pubs[p].sid)
                self.assertNotIn("user", m)
                self.assertIsInstance(m["ts"], int)
                self.assertLess(abs(m["ts"] - now_ms), 120000, "ts is wall clock ms")
                self.assertEqual(set(m), {"type", "room", "seq", "from", "ts", "data"}, m)
            for c in everyone:
                got = c.messages(room)
                self.assertEqual(len(got), want(c), "%s: %d messages, expected exactly %d"
                                 % (c.name, len(got), want(c)))
                if c in pubs and not echo[pubs.index(c)]:
                    p = pubs.index(c)
                    exp = [m for m in ref if m["data"]["p"] != p]
                else:
                    exp = ref
                self.assertEqual([(m["seq"], m["data"]["p"], m["data"]["i"], m["from"]) for m in got],
                                 [(m["seq"], m["data"]["p"], m["data"]["i"], m["from"]) for m in exp],
                                 "%s sees a different sequence than the reference member" % c.name)
                self.assertIsNone(c.closed_code, c.name)
        self.run_scenario(t, timeout=100)

    def test_leave_stops_delivery(self):
        """After the `left` reply no message of the room arrives, even while a peer on the other
        worker publishes continuously."""
        async def t():
            (a1, a2, a3), (b1, b2, b3) = await self.spread(3)
            for k, (leaver, pub) in enumerate(((a1, b1), (b2, a2), (a3, b3))):
                room = "leave-%d" % k
                await leaver.join(room)
                await pub.join(room)
                stop = asyncio.Event()
                sent = [0]

                async def spam():
                    while not stop.is_set() and sent[0] < 5000:
                        await pub.send({"op": "publish", "room": room, "data": sent[0], "echo": False})
                        sent[0] += 1
                        if sent[0] % 20 == 0:
                            await asyncio.sleep(0.002)
                task = asyncio.ensure_future(spam())
                await await_cond(lambda: len(leaver.messages(room)) >= 20, 10, "some messages")
                await leaver.send({"op": "leave", "room": room, "id": "lv-%d" % k})
                await await_cond(lambda: any(_safe(lambda m: m.get("id") == "lv-%d" % k, m) for m in leaver.inbox),
                                 5, "left reply")
                sent_at_left = sent[0]
                await asyncio.sleep(0.4)
                stop.set()
                await task
                self.assertGreater(sent[0], sent_at_left + 20, "publisher kept publishing after the leave")
                pos = next(i for i, m in enumerate(leaver.inbox) if _safe(lambda m: m.get("id") == "lv-%d" % k, m))
                self.assertEqual(leaver.inbox[pos], {"type": "left", "room": room, "id": "lv-%d" % k})
                late = [m for m in leaver.inbox[pos + 1:] if _safe(lambda m: m.get("room") == room, m)]
                self.assertEqual(late[:3], [], "%d messages of %s arrived after the left reply" % (len(late), room))
                seqs = [m["seq"] for m in leaver.messages(room)]
                self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
        self.run_scenario(t)


# --------------------------------------------------------------------------
# presence
# --------------------------------------------------------------------------

class PresenceTest(NativeCase):

    def test_presence_events_and_members(self):
        async def t():
            (a, c), (b, d) = await self.spread(2)
            room = "pres"
            r = await a.join(room, presence=True)
            self.assertEqual(r["members"], [{"session": a.sid}])
            self.assertEqual(r["room"], room)
            r = await b.join(room)
            self.assertNotIn("members", r, "members only when presence was asked")
            ev = await a.take_type("presence", room=room, event="join")
            self.assertEqual(ev, {"type": "presence", "room": room, "event": "join", "member": {"session": b.sid}})
            await d.req("auth", token="tok-a")
            r = await d.join(room, presence=True)
            self.assertEqual(sorted(r["members"], key=lambda m: m["session"]),
                             sorted([{"session": a.sid}, {"session": b.sid},
                                     {"session": d.sid, "user_id": "u1", "nickname": "Alice"}],
                                    key=lambda m: m["session"]))
            ev = await a.take_type("presence", room=room, event="join")
            self.assertEqual(ev["member"], {"session": d.sid, "user_id": "u1", "nickname": "Alice"})
            # presence op (by a non-presence member and by a non-member)
            for asker in (b, c):
                r = await asker.req("presence", room=room)
                self.assertEqual(r["type"], "presence")
                self.assertEqual(r["room"], room)
                self.assertEqual({m["session"] for m in r["members"]}, {a.sid, b.sid, d.sid}, asker.name)
            # leave and disconnect
            await b.req("leave", room=room)
            for w in (a, d):
                ev = await w.take_type("presence", room=room, event="leave")
                self.assertEqual(ev["member"]["session"], b.sid, w.name)
            await d.drop()
            ev = await a.take_type("presence", room=room, event="leave")
            self.assertEqual(ev["member"]["session"], d.sid)
            r = await c.req("presence", room=room)
            self.assertEqual([m["session"] for m in r["members"]], [a.sid])
            # b joined without presence: no events at all
            self.assertEqual(b.pop_all(lambda m: m.get("type") == "presence" and "event" in m), [])
            # no duplicate events for a
            self.assertEqual(await a.quiet(lambda m: m.get("type") == "presence"), [])
        self.run_scenario(t)


# --------------------------------------------------------------------------
# history
# --------------------------------------------------------------------------

class HistoryTest(NativeCase):

    def test_history_limit_offset_since(self):
        async def t():
            (p,), (q,) = await self.spread(1)
            room = "hist"
            await p.join(room)
            for i in range(30):
                await p.send({"op": "publish", "room": room, "data": {"i": i}})
            await p.req("ping")
            await await_cond(lambda: len(p.messages(room)) >= 30, 10, "own echoes")
            # q is not a member
            r = await q.req("history", room=room, limit=10)
            self.assertEqual((r["type"], r["room"], r["seq"]), ("history", room, 30))
            self.assertEqual([m["seq"] for m in r["messages"]], list(range(30, 20, -1)))
            for m in r["messages"]:
                self.assertEqual(m["data"], {"i": m["seq"] - 1})
                self.assertEqual(m["from"], p.sid)
                self.assertIsInstance(m["ts"], int)
            live = {m["seq"]: m for m in p.messages(room)}
            self.assertEqual([live[m["seq"]]["ts"] for m in r["messages"]], [m["ts"] for m in r["messages"]],
                             "history ts equals the live message ts")
            cases = [({"limit": 10, "offset": 5}, list(range(25, 15, -1))),
                     ({}, list(range(30, 0, -1))),
                     ({"offset": 28, "limit": 10}, [2, 1]),
                     ({"offset": 100}, []),
                     ({"limit": 1}, [30]),
                     ({"since": 25}, list(range(26, 31))),
                     ({"since": 0}, list(range(1, 31))),
                     ({"since": 30}, []),
                     ({"since": 1000}, [])]
            for fields, want in cases:
                r = await q.req("history", room=room, **fields)
                self.assertEqual([m["seq"] for m in r["messages"]], want, fields)
            r = await q.req("history", room="hist-nobody-" + uuid.uuid4().hex)
            self.assertEqual((r["type"], r["seq"], r["messages"]), ("history", 0, []))
            # join with history replays oldest first after `joined`
            for n, want in ((5, list(range(26, 31))), (0, []), (1000, list(range(1, 31)))):
                c = await self.client("hj%d" % n)
                j = await c.join(room, history=n)
                self.assertEqual(j["seq"], 30)
                await c.req("ping")
                await asyncio.sleep(0.1)
                got = c.messages(room)
                self.assertEqual([m["seq"] for m in got], want, "join history=%d" % n)
                await c.close()
            # limit is capped at 1000
            for i in range(1100):
                await p.send({"op": "publish", "room": room, "data": {"i": 30 + i}, "echo": False})
            await p.req("publish", room=room, data={"i": 1130}, echo=False)
            r = await q.req("history", room=room, limit=5000, timeout=10)
            self.assertEqual(r["seq"], 1131)
            self.assertEqual([m["seq"] for m in r["messages"]], list(range(1131, 131, -1)))
        self.run_scenario(t, timeout=60)

    def test_join_history_order_after_joined(self):
        async def t():
            p = await self.client("p")
            await p.join("hist2")
            for i in range(10):
                await p.send({"op": "publish", "room": "hist2", "data": i, "echo": False})
            await p.req("publish", room="hist2", data=10, echo=False)
            c = await self.client("c")
            await c.send({"op": "join", "room": "hist2", "history": 4, "id": "J"})
            await await_cond(lambda: len(c.inbox) >= 5, 5, "joined + 4 messages")
            self.assertEqual(c.inbox[0].get("type"), "joined", c.inbox[:2])
            self.assertEqual([m.get("seq") for m in c.inbox[1:5]], [8, 9, 10, 11])
            self.assertEqual([m.get("data") for m in c.inbox[1:5]], [7, 8, 9, 10])
        self.run_scenario(t)


    def test_requests_pipelined_behind_a_join_wait_for_it(self):
        # Regression: a publish sent right behind its room's join got `not_joined` whenever the
        # join had not reached the room's home core and come back yet (about 2 in 5 with two
        # workers), and a ping's pong overtook `joined`. A join now holds the connection's input
        # until it is in effect, as the seeds' sequential handling implies.
        async def t():
            groups = await self.spread(2)
            watcher = await self.client("watcher")
            for k in range(30):
                room = "pipe-%d" % k
                await watcher.join(room)
                c = groups[k % 2][k // 2 % 2]
                await c.send({"op": "join", "room": room, "id": "j%d" % k})
                await c.send({"op": "publish", "room": room, "data": k, "echo": False, "id": "p%d" % k})
                await c.send({"op": "ping", "id": "q%d" % k})
                # The sender's own copy (echo) is part of what its publish does: before the pong.
                await c.send({"op": "publish", "room": room, "data": "e%d" % k})
                await c.send({"op": "ping", "id": "r%d" % k})
                ids = {x + str(k) for x in "jpqr"}

                def mine(m):
                    return isinstance(m, dict) and (m.get("id") in ids or m.get("room") == room)
                got = await c.wait_for(lambda inbox: (lambda r: r if len(r) == 5 else None)(
                    [m for m in inbox if mine(m)]), 5)
                c.pop_all(mine)
                self.assertEqual([(g.get("type"), g.get("id", g.get("data"))) for g in got],
                                 [("joined", "j%d" % k), ("ack", "p%d" % k), ("pong", "q%d" % k),
                                  ("message", "e%d" % k), ("pong", "r%d" % k)],
                                 "%s, room %s: %r" % (c.name, room, got))
                m = await watcher.take_type("message", room=room)
                self.assertEqual(m.get("data"), k)
                m = await watcher.take_type("message", room=room)
                self.assertEqual(m.get("data"), "e%d" % k)
        self.run_scenario(t)


# --------------------------------------------------------------------------
# retained state
# --------------------------------------------------------------------------

class StateTest(NativeCase):

    def test_state_set_del_snapshot(self):
        async def t():
            (a, c), (b, d) = await self.spread(2)
            room = "st"
            j = await a.join(room)
            self.assertEqual(j["state"], {})
            await b.join(room)
            r = await a.req("state.set", room=room, key="k1", value={"x": 1})
            self.assertEqual(r, {"type": "ack", "id": a.last_id})
            for w in (a, b):
                ev = await w.take_type("state", room=room, key="k1")
                self.assertEqual(ev, {"type": "state", "room": room, "key": "k1", "value": {"x": 1}, "from": a.sid})
            await b.req("state.set", room=room, key="k2", value=[1, 2])
            await a.req("state.set", room=room, key="k1", value={"x": 2})
            long_key = "K" * 256
            await b.send({"op": "state.set", "room": room, "key": long_key, "value": None})  # no id: no ack
            for w in (a, b):
                await w.take_type("state", room=room, key="k2")
                ev = await w.take_type("state", room=room, key="k1")
                self.assertEqual(ev["value"], {"x": 2})
                ev = await w.take_type("state", room=room, key=long_key)
                self.assertEqual((ev["value"], ev["from"]), (None, b.sid))
            j = await c.join(room)
            self.assertEqual(j["state"], {"k1": {"x": 2}, "k2": [1, 2], long_key: None})
            r = await a.req("state.del", room=room, key="k2")
            self.assertEqual(r, {"type": "ack", "id": a.last_id})
            for w in (a, b, c):
                ev = await w.take_type("state", room=room, key="k2")
                self.assertEqual(ev, {"type": "state", "room": room, "key": "k2", "deleted": True, "from": a.sid})
            j = await d.join(room)
            self.assertEqual(j["state"], {"k1": {"x": 2}, long_key: None})
            self.assertEqual([m for m in b.inbox if m.get("type") == "ack"], [], "ack without id")
            # the room keeps its state when everybody has left
            for w in (a, b, c, d):
                await w.req("leave", room=room)
            e = await self.client("e")
            j = await e.join(room)
            self.assertEqual(j["state"], {"k1": {"x": 2}, long_key: None})
            # state ops need membership
            self.assertIsNone(await self.expect_error(a, "not_joined",
                                                      {"op": "state.set", "room": room, "key": "z", "value": 1}))
        self.run_scenario(t)


# --------------------------------------------------------------------------
# reconnect recovery
# --------------------------------------------------------------------------

class RecoveryTest(NativeCase):

    def test_recovery_missed_then_live(self):
        async def t():
            (pub, r1), (r2, m) = await self.spread(2)
            room = "rec"
            for c in (pub, r1, r2, m):
                await c.join(room)
            for i in range(10):
                await pub.req("publish", room=room, data=i)
            for r in (r1, r2):
                await await_cond(lambda: len(r.messages(room)) >= 10, 5, "first 10")
            last = [r.messages(room)[-1]["seq"] for r in (r1, r2)]
            self.assertEqual(last, [10, 10])
            await r1.close()
            await r2.drop()
            for i in range(10, 25):
                await pub.req("publish", room=room, data=i)
            for k in range(2):
                n = await self.client("again%d" % k)
                j = await n.join(room, since=last[k])
                at_join = j["seq"]
                self.assertEqual(at_join, 25 + 5 * k)
                await await_cond(lambda: len(n.messages(room)) >= at_join - last[k], 5, "missed messages")
                for i in range(5):
                    await pub.req("publish", room=room, data="live-%d-%d" % (k, i))
                await await_cond(lambda: len(n.messages(room)) >= at_join + 5 - last[k], 5, "live messages")
                await asyncio.sleep(0.2)
                got = n.messages(room)
                self.assertEqual([x["seq"] for x in got], list(range(last[k] + 1, at_join + 6)),
                                 "reconnect %d: exactly the missed messages, then the live ones" % k)
                self.assertEqual([x["data"] for x in got[:15]], list(range(10, 25)))
                self.assertEqual([x["data"] for x in got[-5:]], ["live-%d-%d" % (k, i) for i in range(5)])
            got = m.messages(room)
            self.assertEqual([x["seq"] for x in got], list(range(1, 36)), "steady member")
        self.run_scenario(t)

    def test_recovery_while_publishing(self):
        """Clients on both workers drop out, miss messages and rejoin with `since` while a publisher
        keeps publishing: each sees every seq after its last exactly once, in order."""
        async def t():
            (pub, a1, a2, a3), (b1, b2, b3, steady) = await self.spread(4)
            room = "rec-live"
            recs = [a1, a2, a3, b1, b2, b3]
            for c in [pub, steady] + recs:
                await c.join(room)
            for i in range(20):
                await pub.send({"op": "publish", "room": room, "data": i, "echo": False})
            await pub.req("ping")
            await await_cond(lambda: all(len(r.messages(room)) >= 20 for r in recs), 10, "first 20")
            last = []
            for k, r in enumerate(recs):
                last.append(r.messages(room)[-1]["seq"])
                if k % 2:
                    await r.drop()
                else:
                    await r.close()
            self.assertEqual(set(last), {20})
            total = 400
            published = [20]

            async def publisher():
                for i in range(20, total):
                    await pub.send({"op": "publish", "room": room, "data": i, "echo": False})
                    published[0] = i + 1
                    if i % 4 == 0:
                        await asyncio.sleep(0.003)
            task = asyncio.ensure_future(publisher())
            rejoined = []
            for k in range(len(recs)):
                await asyncio.sleep(0.05)
                n = await self.client("re%d" % k)
                j = await n.join(room, since=last[k])
                self.assertGreaterEqual(j["seq"], last[k])
                rejoined.append(n)
            await task
            await pub.req("ping")
            await await_cond(lambda: all(n.nmsg >= total - 20 for n in rejoined), 20, "recovered clients complete")
            await await_cond(lambda: steady.nmsg >= total, 20, "steady complete")
            await asyncio.sleep(0.3)
            for k, n in enumerate(rejoined):
                self.assertEqual([x["seq"] for x in n.messages(room)], list(range(21, total + 1)),
                                 "rejoined client %d: gap, duplicate or reorder" % k)
                self.assertEqual([x["data"] for x in n.messages(room)], list(range(20, total)))
            self.assertEqual([x["seq"] for x in steady.messages(room)], list(range(1, total + 1)))
        self.run_scenario(t, timeout=60)


# --------------------------------------------------------------------------
# endpoints, direct sends, binary frames
# --------------------------------------------------------------------------

class EndpointTest(NativeCase):

    def test_register_attach_relay_across_cores(self):
        async def t():
            (owner, p2), (p1, q) = await self.spread(2)   # p1 on the other worker, p2 on the owner's
            name = "booth-1"
            self.assertEqual(await owner.req("register", name=name), {"type": "registered", "name": name,
                                                                      "id": owner.last_id})
            r = await p1.req("attach", name=name)
            self.assertEqual(r, {"type": "attached", "name": name, "endpoint": owner.sid, "id": p1.last_id})
            ev = await owner.take_type("peer", event="attached")
            self.assertEqual(ev, {"type": "peer", "event": "attached", "name": name, "peer": p1.sid})
            r = await p2.req("attach", name=name)
            self.assertEqual(r["endpoint"], owner.sid)
            ev = await owner.take_type("peer", event="attached")
            self.assertEqual(ev["peer"], p2.sid)
            # peer -> owner
            await p1.send({"op": "relay", "data": {"m": 1}})
            ev = await owner.take_type("relay")
            self.assertEqual((ev["from"], ev["data"]), (p1.sid, {"m": 1}))
            for i in range(50):
                await p1.send({"op": "relay", "data": i})
                await p2.send({"op": "relay", "name": name, "data": 1000 + i})
            await await_cond(lambda: len([m for m in owner.inbox if m.get("type") == "relay"]) >= 100, 5, "relays")
            rel = owner.pop_all(lambda m: m.get("type") == "relay")
            self.assertEqual([m["data"] for m in rel if m["from"] == p1.sid], list(range(50)))
            self.assertEqual([m["data"] for m in rel if m["from"] == p2.sid], list(range(1000, 1050)))
            # owner -> one peer
            await owner.send({"op": "relay", "name": name, "to": p1.sid, "data": "just p1"})
            ev = await p1.take_type("relay")
            self.assertEqual(ev, {"type": "relay", "from": owner.sid, "name": name, "data": "just p1"})
            # owner -> all peers
            await owner.send({"op": "relay", "name": name, "data": "all"})
            for p in (p1, p2):
                ev = await p.take_type("relay")
                self.assertEqual(ev, {"type": "relay", "from": owner.sid, "name": name, "data": "all"}, p.name)
            self.assertEqual(await p2.quiet(lambda m: m.get("type") == "relay"), [], "p2 got p1's relay")
            # a peer attached to two endpoints names the one it means
            await q.req("register", name="booth-2")
            await p1.req("attach", name="booth-2")
            await q.take_type("peer", event="attached")
            await p1.send({"op": "relay", "name": "booth-2", "data": "to q"})
            await p1.send({"op": "relay", "name": name, "data": "to owner"})
            self.assertEqual((await q.take_type("relay"))["data"], "to q")
            self.assertEqual((await owner.take_type("relay"))["data"], "to owner")
            self.assertEqual(await owner.quiet(lambda m: m.get("type") == "relay"), [])
            self.assertEqual([m for m in q.inbox if m.get("type") == "relay"], [])
            # owner relaying to a session that is not its peer
            self.assertIsNone(await self.expect_error(owner, "not_attached",
                                                      {"op": "relay", "name": name, "to": q.sid, "data": 1}))
            # peer gone -> owner notified
            await p2.drop()
            ev = await owner.take_type("peer", event="detached")
            self.assertEqual(ev, {"type": "peer", "event": "detached", "name": name, "peer": p2.sid})
            # owner gone -> peers notified, name free again
            await owner.close()
            ev = await p1.take_type("endpoint")
            self.assertEqual(ev, {"type": "endpoint", "event": "gone", "name": name})
            self.assertEqual(await q.quiet(lambda m: m.get("type") == "endpoint"), [])
            await asyncio.sleep(0.1)
            self.assertIsNone(await self.expect_error(q, "no_such_endpoint", {"op": "attach", "name": name}))
            self.assertEqual((await q.req("register", name=name))["type"], "registered")
            # the second endpoint still works
            await p1.send({"op": "relay", "name": "booth-2", "data": "still"})
            self.assertEqual((await q.take_type("relay"))["data"], "still")
        self.run_scenario(t)


class DirectTest(NativeCase):

    def test_send_across_and_within_cores(self):
        async def t():
            (a, c), (b, d) = await self.spread(2)
            await a.send({"op": "send", "to": b.sid, "data": {"hello": 1}})
            self.assertEqual(await b.take_type("direct"), {"type": "direct", "from": a.sid, "data": {"hello": 1}})
            await b.send({"op": "send", "to": a.sid, "data": [1, "x"]})
            self.assertEqual(await a.take_type("direct"), {"type": "direct", "from": b.sid, "data": [1, "x"]})
            await a.send({"op": "send", "to": c.sid, "data": "same core"})
            self.assertEqual(await c.take_type("direct"), {"type": "direct", "from": a.sid, "data": "same core"})
            await a.send({"op": "send", "to": a.sid, "data": "self"})
            self.assertEqual((await a.take_type("direct"))["data"], "self")
            for i in range(200):
                await a.send({"op": "send", "to": b.sid, "data": i})
                await c.send({"op": "send", "to": b.sid, "data": 1000 + i})
                await d.send({"op": "send", "to": b.sid, "data": 2000 + i})
            await await_cond(lambda: len([m for m in b.inbox if m.get("type") == "direct"]) >= 600, 10, "600 directs")
            got = b.pop_all(lambda m: m.get("type") == "direct")
            for src, base in ((a, 0), (c, 1000), (d, 2000)):
                self.assertEqual([m["data"] for m in got if m["from"] == src.sid], list(range(base, base + 200)),
                                 "direct sends from %s in order, exactly once" % src.name)
            self.assertEqual(await b.quiet(lambda m: m.get("type") == "direct"), [])
            for c_ in (a, b, c, d):
                self.assertEqual([m for m in c_.inbox if m.get("type") == "error"], [], c_.name)
        self.run_scenario(t)


class BinaryTest(NativeCase):

    def test_binary_goes_to_last_joined_room(self):
        async def t():
            (a, c), (b, d) = await self.spread(2)
            await a.join("bin-1")
            await a.join("bin-2")       # binary room of a
            await b.join("bin-2")       # other worker
            await c.join("bin-1")       # same worker as a, other room
            await d.join("bin-2", presence=True)
            h0 = await d.req("history", room="bin-2")
            blobs = [os.urandom(n) for n in (1, 100, 70000)] + [b"\xff\xfe{not json", b""]
            for blob in blobs:
                await a.send(blob)
            for w in (b, d):
                await await_cond(lambda: len([m for m in w.inbox if isinstance(m, Binary)]) >= len(blobs), 5,
                                 "binary frames on %s" % w.name)
                self.assertEqual([m.data for m in w.inbox if isinstance(m, Binary)], blobs, w.name)
            self.assertEqual(await c.quiet(lambda m: isinstance(m, Binary)), [], "other room got binary")
            h1 = await d.req("history", room="bin-2")
            self.assertEqual(h1["messages"], h0["messages"], "binary frames must not be kept in history")
            # no error for a
            self.assertEqual([m for m in a.inbox if isinstance(m, dict) and m.get("type") == "error"], [])
            # joining another room moves the binary room
            await a.join("bin-3")
            await b.join("bin-3")
            b.pop_all(lambda m: isinstance(m, Binary))
            await a.send(b"to-3")
            await b.take(lambda m: isinstance(m, Binary) and m.data == b"to-3")
            self.assertEqual(await d.quiet(lambda m: isinstance(m, Binary) and m.data == b"to-3"), [])
            # many binary frames across cores keep their order
            for i in range(100):
                await a.send(b"n%d" % i)
            await await_cond(lambda: len([m for m in b.inbox if isinstance(m, Binary)]) >= 100, 5, "100 frames")
            self.assertEqual([m.data for m in b.inbox if isinstance(m, Binary)], [b"n%d" % i for i in range(100)])
        self.run_scenario(t)


if __name__ == "__main__":
    harness.main()
