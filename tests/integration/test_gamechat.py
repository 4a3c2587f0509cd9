#!/usr/bin/python3
"""The game-chat seed profile on `/chat` (docs/profiles/gamechat.md, Heavenland chat server): login by
token table and HS256 JWT with every error text of the seed, the chat object (field order, channel
stringification, server fields win), broadcast to every logged-in connection on both workers,
history (newest first, limit/offset rules, bound, survives reconnects and restarts), a refused
store write, bad input, and the HTTP /api endpoints on both ports.

Run: /usr/bin/python3 tests/integration/test_gamechat.py --binary build/ringcast --backend epoll

The clients act like the seed's game clients: connect, send {"action":"login","token":...}, wait for
{"info":"connected"}, then send messages and history requests as JSON text frames.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from ws_inbox import WsInbox, json_decoder, short  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

NOFILE = harness.raise_nofile_limit(20000)

SECRET = "gamechat-test-secret"

TOKENS_TOML = """
[tokens]
"tok-a" = { user_id = "HL1", nickname = "Alice" }
"tok-b" = { user_id = "HL2", nickname = "Bob" }
"tok-c" = { user_id = "HL3", nickname = "Carol" }
"tok-nonick" = { user_id = "HL4" }
"""

CONNECTED = {"info": "connected"}
AUTH_FIRST = {"error": "you need to authenticate first"}
NO_CREDS = {"error": "username and password or token have to be provided with action of type login"}
BAD_CREDS = {"error": "invalid credentials"}
TOKEN_INVALID = {"error": "the access token is expired or invalid"}


def config(secret=SECRET, history_limit=None, persistent=None, extra=""):
    lines = ["[profiles.gamechat]", "hs256_secret = %s" % json.dumps(secret)]
    if history_limit is not None:
        lines.append("history_limit = %d" % history_limit)
    if persistent is not None:
        lines.append("persistent = %s" % ("true" if persistent else "false"))
    return "\n".join(lines) + "\n" + TOKENS_TOML + extra


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims, secret=SECRET, header=None):
    header = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(sig)


class GClient(WsInbox):
    """A /chat connection; a reader task parses every frame into `inbox` in arrival order."""

    def __init__(self, ws, name):
        super().__init__(ws, name, decode=json_decoder(lambda m: {"<unparseable>": m}),
                         ensure_ascii=False)

    async def quiet(self, seconds=0.3):
        """Asserts nothing arrives within `seconds`."""
        await asyncio.sleep(seconds)
        if self.inbox:
            raise AssertionError("%s: expected silence, got %s" % (self.name, short(self.inbox)))

    async def login(self, token="tok-a"):
        await self.send({"action": "login", "token": token})
        r = await self.next(what="the login reply")
        if r != CONNECTED:
            raise AssertionError("%s: login with %s: %s" % (self.name, short(token), short(r)))

    async def chat(self, **fields):
        """Sends a message and returns its echo (the broadcast chat object)."""
        msg = {"action": "message"}
        msg.update(fields)
        await self.send(msg)
        return await self.next(what="the echo of %s" % short(fields))

    async def history(self, timeout=5.0, **fields):
        req = {"action": "history"}
        req.update(fields)
        await self.send(req)
        r = await self.next(timeout, "the history reply to %s" % short(fields))
        return r



async def gconnect(port, name="c", path="/chat"):
    ws = await websockets.connect("ws://127.0.0.1:%d%s" % (port, path), ping_interval=None,
                                  compression=None, max_size=256 << 20, max_queue=None,
                                  open_timeout=10, close_timeout=3)
    return GClient(ws, name)


def run_async(coro, timeout=40):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class ChatCase(harness.ProcessTestCase):
    """Each test starts its own server(s): the chat's history is global."""

    def setUp(self):
        super().setUp()
        self._clients = []

    def tearDown(self):
        # Every server still running stops cleanly on SIGTERM; none died on its own (a -9 is a
        # test's own kill); no sanitizer report in any server's output.
        for srv in self._servers:
            if srv.proc is None:
                continue
            if srv.alive():
                rc = srv.stop(signal.SIGTERM)
                self.assertEqual(rc, 0, "ringcast did not stop cleanly (%r)\n%s" % (rc, srv.stderr_text()))
            elif srv.returncode is None:
                self.assertEqual(srv.proc.returncode, -signal.SIGKILL,
                                 "ringcast died (%r)\n%s" % (srv.proc.returncode, srv.stderr_text()))
            text = srv.stderr_text()
            for marker in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
                self.assertNotIn(marker, text, text)
        super().tearDown()

    def start(self, config_text=None, **kw):
        return self.new_server(config_text=config_text if config_text is not None else config(), **kw)

    async def client(self, srv, name="c", path="/chat"):
        c = await gconnect(srv.port, name, path)
        self._clients.append(c)
        return c

    async def logged_in(self, srv, name="c", token="tok-a"):
        c = await self.client(srv, name)
        await c.login(token)
        return c

    def scenario(self, fn, timeout=40):
        async def wrapped():
            try:
                await fn()
            finally:
                await asyncio.gather(*(c.close() for c in self._clients))
                self._clients = []
        run_async(wrapped(), timeout)

    async def spread(self, srv, n_per_worker, token="tok-a"):
        """Logged-in clients with at least n_per_worker on each of the 2 workers (by /health
        per_thread, which also counts the /health request itself); needs an idle server."""
        harness.wait_until(lambda: srv.health()["connections"]["total"] == 1, timeout=5,
                           what="an idle server")
        out = []
        while len(out) < 40:
            out.append(await self.logged_in(srv, "c%d" % len(out), token))
            if len(out) >= 2 * n_per_worker and \
                    min(srv.health()["connections"]["per_thread"]) >= n_per_worker + 2:
                return out
        raise AssertionError("40 clients did not spread over both workers: %r"
                             % srv.health()["connections"]["per_thread"])

    def assert_chat(self, obj, user_id, nickname, fields, t0, t1):
        """obj is the chat object: user_id, timestamp, the fields in order, nickname last."""
        self.assertIsInstance(obj, dict, obj)
        keys = list(obj)
        self.assertEqual(keys, ["user_id", "timestamp"] + list(fields) + ["nickname"], obj)
        self.assertEqual(obj["user_id"], user_id)
        self.assertEqual(obj["nickname"], nickname)
        self.assertIs(type(obj["timestamp"]), int, obj)
        self.assertTrue(int(t0) - 1 <= obj["timestamp"] <= int(t1) + 1,
                        "timestamp %r not within [%r, %r]" % (obj["timestamp"], t0, t1))
        for k, v in fields.items():
            self.assertEqual(obj[k], v, "field %r of %r" % (k, obj))


# --------------------------------------------------------------------------
# login and everything before it
# --------------------------------------------------------------------------

class LoginTest(ChatCase):

    def test_before_login(self):
        """Nothing on connect; every non-login frame -> authenticate first; nothing broadcast to an
        unauthenticated connection; the connection stays usable."""
        srv = self.start()

        async def run():
            anon = await self.client(srv, "anon")
            await anon.quiet(0.3)
            for m in ({"action": "message", "message": "hi"}, {"action": "history"},
                      {"action": "history", "limit": 5}, {"action": "nope"}, {}, {"message": "x"},
                      {"action": 5}, {"action": None}, {"action": "LOGIN", "token": "tok-a"},
                      {"action": ["login"], "token": "tok-a"}):
                await anon.send(m)
                self.assertEqual(await anon.next(), AUTH_FIRST, m)
            a = await self.logged_in(srv, "a")
            echo = await a.chat(message="not for anon")
            self.assertEqual(echo["message"], "not for anon")
            await anon.quiet(0.4)
            await anon.login("tok-b")
            await a.chat(message="now for both")
            self.assertEqual((await anon.next())["message"], "now for both")
        self.scenario(run)

    def test_missing_credentials_two_errors(self):
        """Login with neither token nor username+password: the missing-fields error, then the
        failed credential login; still usable afterwards."""
        srv = self.start()

        async def run():
            c = await self.client(srv)
            cases = [{}, {"token": ""}, {"token": None}, {"token": 0}, {"token": False},
                     {"username": "u"}, {"password": "p"}, {"username": "", "password": "p"},
                     {"username": "u", "password": ""}, {"username": None, "password": None, "token": None}]
            for extra in cases:
                m = {"action": "login"}
                m.update(extra)
                await c.send(m)
                self.assertEqual(await c.next(), NO_CREDS, extra)
                self.assertEqual(await c.next(), BAD_CREDS, extra)
            await c.quiet(0.2)
            # still unauthenticated
            await c.send({"action": "history"})
            self.assertEqual(await c.next(), AUTH_FIRST)
            await c.login("tok-a")
        self.scenario(run)

    def test_username_password(self):
        """username+password -> exactly one "invalid credentials" (no password backend); a token
        takes precedence over them."""
        srv = self.start()

        async def run():
            c = await self.client(srv)
            await c.send({"action": "login", "username": "hero", "password": "secret"})
            self.assertEqual(await c.next(), BAD_CREDS)
            await c.quiet(0.3)
            await c.send({"action": "login", "username": "hero", "password": "secret", "token": "bogus"})
            self.assertEqual(await c.next(), TOKEN_INVALID)
            await c.send({"action": "login", "username": "hero", "password": "secret", "token": "tok-b"})
            self.assertEqual(await c.next(), CONNECTED)
            echo = await c.chat(message="x")
            self.assertEqual(echo["user_id"], "HL2")
        self.scenario(run)

    def test_bad_tokens(self):
        srv = self.start()
        now = int(time.time())
        good = {"sub": "HL77", "nickname": "Jay", "exp": now + 600}
        parts = make_jwt(good).split(".")
        cases = [
            # Not JWTs at all: the seed's PyJWT raised DecodeError, an InvalidTokenError.
            ("unknown opaque token", "garbage", TOKEN_INVALID),
            ("the seed's example of a non-JWT", "bad-token", TOKEN_INVALID),
            ("token is a number", 12345, TOKEN_INVALID),
            ("token is an object", {"t": 1}, TOKEN_INVALID),
            ("token is a list", ["tok-a"], TOKEN_INVALID),
            ("two segments", parts[0] + "." + parts[1], TOKEN_INVALID),
            ("four segments", make_jwt(good) + ".x", TOKEN_INVALID),
            ("payload not base64url", parts[0] + ".*!*." + parts[2], TOKEN_INVALID),
            ("payload not JSON", parts[0] + "." + b64url(b"not json") + "." + parts[2], TOKEN_INVALID),
            ("payload a JSON list", parts[0] + "." + b64url(b"[1]") + "." + parts[2], TOKEN_INVALID),
            ("header not JSON", b64url(b"{") + "." + parts[1] + "." + parts[2], TOKEN_INVALID),
            ("wrong secret", make_jwt(good, secret="other"), TOKEN_INVALID),
            ("tampered payload", parts[0] + "." + b64url(json.dumps(dict(good, sub="HL1")).encode())
             + "." + parts[2], TOKEN_INVALID),
            ("empty signature", parts[0] + "." + parts[1] + ".", TOKEN_INVALID),
            ("expired", make_jwt(dict(good, exp=now - 5)), TOKEN_INVALID),
            ("exp not a number", make_jwt(dict(good, exp="soon")), TOKEN_INVALID),
            ("not yet valid", make_jwt(dict(good, nbf=now + 600)), TOKEN_INVALID),
            ("alg none", make_jwt(good, header={"alg": "none"}), TOKEN_INVALID),
            ("alg HS512", make_jwt(good, header={"alg": "HS512", "typ": "JWT"}), TOKEN_INVALID),
            ("no sub", make_jwt({"nickname": "Jay"}), TOKEN_INVALID),
            ("sub not a string", make_jwt({"sub": 77}), TOKEN_INVALID),
            ("empty sub", make_jwt({"sub": ""}), TOKEN_INVALID),
        ]

        async def run():
            c = await self.client(srv)
            for label, token, want in cases:
                await c.send({"action": "login", "token": token})
                self.assertEqual(await c.next(), want, label)
                await c.send({"action": "message", "message": "x"})
                self.assertEqual(await c.next(), AUTH_FIRST, "after %s" % label)
            await c.quiet(0.2)
            await c.login(make_jwt(good))
        self.scenario(run)

    def test_jwt_login_identity(self):
        """sub -> user_id, nickname claim -> nickname (null when absent or not a string); exp in
        the future and nbf in the past pass; padding on the segments is tolerated."""
        srv = self.start()
        now = int(time.time())

        async def run():
            for claims, nick in (({"sub": "HL365393213667", "nickname": "Great Hero", "exp": now + 60,
                                   "nbf": now - 60, "iat": now, "aud": "heavenland-api"}, "Great Hero"),
                                 ({"sub": "HL9"}, None),
                                 ({"sub": "HL10", "nickname": None}, None),
                                 ({"sub": "HL11", "nickname": 42}, None)):
                c = await self.logged_in(srv, claims["sub"], make_jwt(claims))
                t0 = time.time()
                echo = await c.chat(message="m")
                self.assert_chat(echo, claims["sub"], nick, {"message": "m"}, t0, time.time())
            # base64 padding on the signature is tolerated (the signed part is what was sent)
            padded = make_jwt({"sub": "HL12", "nickname": "Pad"}) + "="
            c = await self.logged_in(srv, "pad", padded)
            self.assertEqual((await c.chat(message="p"))["nickname"], "Pad")
            # table token without a nickname -> null
            c = await self.logged_in(srv, "nonick", "tok-nonick")
            echo = await c.chat(message="n")
            self.assertEqual((echo["user_id"], echo["nickname"]), ("HL4", None))
        self.scenario(run)

    def test_no_secret_only_table(self):
        """Without hs256_secret a well-formed JWT is "expired or invalid"; the table still works."""
        srv = self.start(config(secret=""))

        async def run():
            c = await self.client(srv)
            await c.send({"action": "login", "token": make_jwt({"sub": "HL1"})})
            self.assertEqual(await c.next(), TOKEN_INVALID)
            await c.send({"action": "login", "token": "x.y"})
            self.assertEqual(await c.next(), TOKEN_INVALID)
            await c.login("tok-c")
            self.assertEqual((await c.chat(message="hi"))["nickname"], "Carol")
        self.scenario(run)

    def test_after_login_ignored(self):
        """After login: login again, unknown actions, no action -> no reply at all."""
        srv = self.start()

        async def run():
            c = await self.logged_in(srv)
            for m in ({"action": "login", "token": "tok-b"}, {"action": "login"},
                      {"action": "login", "username": "a", "password": "b"}, {"action": "dance"},
                      {}, {"message": "no action"}, {"action": None}, {"action": 7},
                      {"action": "Message", "message": "case matters"}):
                await c.send(m)
            await c.quiet(0.5)
            # still the first identity
            self.assertEqual((await c.chat(message="still me"))["user_id"], "HL1")
        self.scenario(run)

    def test_pipelined_login(self):
        """A client that does not wait for "connected": the reply still comes first, then the
        message it sent right behind the login, broadcast to itself and others."""
        srv = self.start()

        async def run():
            other = await self.logged_in(srv, "other", "tok-b")
            for i in range(6):
                c = await self.client(srv, "p%d" % i)
                await c.send('{"action":"login","token":"tok-a"}')
                await c.send({"action": "message", "message": "right behind %d" % i})
                await c.send({"action": "login", "token": "tok-b"})   # ignored once in
                self.assertEqual(await c.next(), CONNECTED)
                echo = await c.next()
                self.assertEqual((echo.get("message"), echo.get("user_id")), ("right behind %d" % i, "HL1"))
                got = await other.next()
                self.assertEqual(got, echo)
                await c.quiet(0.1)
        self.scenario(run)

    def test_token_table_reload(self):
        """SIGHUP reloads the token table: a new token logs in, a removed one no longer does."""
        srv = self.start()

        async def before():
            c = await self.logged_in(srv, "a", "tok-a")
            await c.close()
        self.scenario(before)
        srv.rewrite_config(config() + '"tok-new" = { user_id = "HL99", nickname = "Newbie" }\n')
        srv.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: "configuration reloaded" in srv.stderr_text(), timeout=5,
                           what="the reload")

        async def after():
            c = await self.logged_in(srv, "n", "tok-new")
            self.assertEqual((await c.chat(message="x"))["nickname"], "Newbie")
        self.scenario(after)
        srv.rewrite_config(config(extra='"tok-new" = { user_id = "HL99" }\n').replace(
            '"tok-a" = { user_id = "HL1", nickname = "Alice" }\n', ""))
        srv.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: srv.stderr_text().count("configuration reloaded") >= 2, timeout=5,
                           what="the second reload")

        async def removed():
            c = await self.client(srv)
            await c.send({"action": "login", "token": "tok-a"})
            self.assertEqual(await c.next(), TOKEN_INVALID)
            await c.login("tok-new")
            self.assertIsNone((await c.chat(message="y"))["nickname"])
        self.scenario(removed)


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------

class BadInputTest(ChatCase):

    def test_not_json_not_object_binary(self):
        """Each gets an error object and the connection stays open, before and after login."""
        srv = self.start()

        async def run():
            c = await self.client(srv)
            b = await self.logged_in(srv, "b", "tok-b")
            for phase in ("before", "after"):
                for text in ("not json", "", " ", "{", '{"action":"login"', "[1, 2]", '"login"', "42",
                             "null", "true", '{"a":1} trailing', "{'action': 'login'}"):
                    await c.send(text)
                    r = await c.next(what="the reply to %r (%s login)" % (text, phase))
                    self.assertEqual(list(r), ["error"], r)
                    self.assertIn("invalid JSON", r["error"], (text, r))
                await c.send(b'{"action":"login","token":"tok-a"}')
                r = await c.next()
                self.assertEqual(list(r), ["error"], r)
                self.assertIn("binary", r["error"])
                await c.send(b"")
                self.assertIn("binary", (await c.next())["error"])
                if phase == "before":
                    await c.login("tok-a")
            echo = await c.chat(message="still fine")
            self.assertEqual(echo["message"], "still fine")
            self.assertEqual(await b.next(), echo)
            await b.quiet(0.2)   # nothing of the bad input reached anyone else
        self.scenario(run)

    def test_deep_nesting_and_huge(self):
        """JSON nested 100k deep is refused without harm; 200 deep passes through; a 600 KiB
        message is broadcast intact."""
        srv = self.start()

        async def run():
            c = await self.logged_in(srv)
            b = await self.logged_in(srv, "b", "tok-b")
            await c.send('{"action":"message","message":' + "[" * 100000 + "]" * 100000 + "}")
            r = await c.next()
            self.assertIn("invalid JSON", r.get("error", ""), r)
            await c.send("[" * 300000)
            self.assertIn("invalid JSON", (await c.next()).get("error", ""))
            deep = json.loads("[" * 200 + "]" * 200)
            echo = await c.chat(message=deep)
            self.assertEqual(echo["message"], deep)
            self.assertEqual((await b.next())["message"], deep)
            big = "é" * (300 * 1024)
            echo = await c.chat(message=big, channel="big")
            self.assertEqual(echo["message"], big)
            self.assertEqual(await b.next(), echo)
            h = await c.history(limit=1)
            self.assertEqual(h, {"history": [echo]})
        self.scenario(run)


# --------------------------------------------------------------------------
# the chat object and its broadcast
# --------------------------------------------------------------------------

class MessageTest(ChatCase):

    def test_chat_object(self):
        srv = self.start()

        async def run():
            a = await self.logged_in(srv, "a", "tok-a")
            b = await self.logged_in(srv, "b", "tok-b")
            cases = [
                # (client fields after action, expected fields between timestamp and nickname)
                ({"message": "hello", "channel": "General"}, {"message": "hello", "channel": "General"}),
                ({"message": "no channel"}, {"message": "no channel"}),
                ({"channel": 5, "message": "int"}, {"channel": "5", "message": "int"}),
                ({"message": "neg", "channel": -12}, {"message": "neg", "channel": "-12"}),
                ({"message": "big", "channel": 18446744073709551615}, {"message": "big", "channel": "18446744073709551615"}),
                ({"message": "float", "channel": 2.5}, {"message": "float", "channel": "2.5"}),
                ({"message": "whole float", "channel": 3.0}, {"message": "whole float", "channel": "3.0"}),
                ({"message": "tiny", "channel": 1.5e-7}, {"message": "tiny", "channel": "1.5e-07"}),
                ({"message": "huge", "channel": 1e16}, {"message": "huge", "channel": "1e+16"}),
                ({"message": "bool", "channel": True}, {"message": "bool", "channel": "True"}),
                ({"message": "null", "channel": None}, {"message": "null", "channel": None}),
                ({"message": "list", "channel": [1, "a"]}, {"message": "list", "channel": "[1, 'a']"}),
                ({"message": "dict", "channel": {"k": None, "q": "it's"}}, {"message": "dict", "channel": "{'k': None, 'q': \"it's\"}"}),
                ({}, {}),
                ({"message": 42}, {"message": 42}),
                ({"message": None, "extra": {"x": [1, 2]}, "z": True},
                 {"message": None, "extra": {"x": [1, 2]}, "z": True}),
                ({"message": "ünïcødé ✓ \u0000 😀"}, {"message": "ünïcødé ✓ \u0000 😀"}),
                # the server's user_id, timestamp and nickname win (nickname stays last)
                ({"user_id": "forged", "message": "m", "timestamp": 1, "nickname": "Mallory", "channel": 1},
                 {"message": "m", "channel": "1"}),
            ]
            for sent, want in cases:
                t0 = time.time()
                echo = await a.chat(**sent)
                t1 = time.time()
                self.assert_chat(echo, "HL1", "Alice", want, t0, t1)
                self.assertEqual(list((await b.next()).items()), list(echo.items()))
            # numbers become what Python's str() makes of them
            for v in (0.0001, 1e-05, -0.0, 1234.5678, 1e22, 123456789012345678.0, 0.1 + 0.2,
                      1e15, 9999999999999998.0, -2.5e-300, 5e-324, 1.7976931348623157e308,
                      0, -1, 2 ** 63, -2 ** 63, False):
                echo = await a.chat(message="n", channel=v)
                self.assertEqual(echo["channel"], str(v), v)
                self.assertEqual(await b.next(), echo)
            # the action may come anywhere; fields keep the client's order
            await b.send('{"z": 1, "message": "order", "action": "message", "a": 2}')
            echo = await b.next()
            self.assertEqual(list(echo), ["user_id", "timestamp", "z", "message", "a", "nickname"])
            self.assertEqual(await a.next(), echo)
            # a repeated key counts once, with its last value, at its first position
            await a.send('{"action":"message","message":"first","channel":1,"message":"last","action":"message"}')
            echo = await a.next()
            self.assertEqual([(k, echo[k]) for k in list(echo)[2:]],
                             [("message", "last"), ("channel", "1"), ("nickname", "Alice")])
            self.assertEqual(await b.next(), echo)
            await a.quiet(0.2)
            await b.quiet(0.01)
        self.scenario(run)

    def test_broadcast_both_workers_same_order(self):
        """Clients on both workers, several senders at once: every logged-in client (senders
        included) gets every message once, all in the same order, each sender's in its order;
        the history is that order reversed."""
        srv = self.start()

        async def run():
            clients = await self.spread(srv, 3)
            anon = await self.client(srv, "anon")
            senders = clients[:4]
            per = 15
            t0 = time.time()

            async def send_all(i, c):
                for k in range(per):
                    await c.send({"action": "message", "message": "s%d-%d" % (i, k), "channel": i})
            await asyncio.gather(*(send_all(i, c) for i, c in enumerate(senders)))
            total = per * len(senders)
            seqs = []
            for c in clients:
                got = [await c.next(10, "message %d" % n) for n in range(total)]
                seqs.append(got)
            t1 = time.time()
            first = seqs[0]
            for c, got in zip(clients, seqs):
                self.assertEqual(got, first, "%s saw another order" % c.name)
            for i in range(len(senders)):
                mine = [m["message"] for m in first if m["channel"] == str(i)]
                self.assertEqual(mine, ["s%d-%d" % (i, k) for k in range(per)])
            for m in first:
                self.assert_chat(m, "HL1", "Alice", {"message": m["message"], "channel": m["channel"]}, t0, t1)
            for c in clients:
                await c.quiet(0.05)
            await anon.quiet(0.1)
            h = await clients[-1].history(limit=0)
            self.assertEqual(h, {"history": list(reversed(first))})
        self.scenario(run)

    def test_disconnects_harm_nothing(self):
        """Clients vanishing (with and without a close handshake, mid-login) leave the rest working;
        nothing is announced."""
        srv = self.start()

        async def run():
            a = await self.logged_in(srv, "a")
            for i in range(10):
                c = await gconnect(srv.port, "gone%d" % i)
                await c.send({"action": "login", "token": "tok-b"})
                if i % 3 == 0:
                    await c.send({"action": "message", "message": "bye %d" % i})
                if i % 2:
                    c.ws.transport.abort()
                    c.reader.cancel()
                else:
                    await c.close()
            # messages sent by clients that left may or may not have gone out; nothing else did
            await asyncio.sleep(0.5)
            for m in a.inbox:
                self.assertTrue(m.get("message", "").startswith("bye "), m)
            a.inbox.clear()
            echo = await a.chat(message="after")
            self.assertEqual(echo["message"], "after")
            harness.wait_until(lambda: srv.health()["connections"]["per_path"].get("/chat") == 1,
                               timeout=5, what="only one /chat connection left")
        self.scenario(run)


# --------------------------------------------------------------------------
# history
# --------------------------------------------------------------------------

class HistoryTest(ChatCase):

    def test_limit_offset_rules(self):
        srv = self.start()

        async def run():
            a = await self.logged_in(srv, "a")
            self.assertEqual(await a.history(), {"history": []})
            sent = []
            for i in range(25):
                sent.append(await a.chat(message="m%d" % i))
            newest = list(reversed(sent))
            b = await self.logged_in(srv, "b", "tok-b")   # joined later: history, not live
            self.assertEqual(await b.history(), {"history": newest[:10]})          # default 10
            self.assertEqual(await b.history(limit=1), {"history": newest[:1]})
            self.assertEqual(await b.history(limit=7), {"history": newest[:7]})
            self.assertEqual(await b.history(limit=25), {"history": newest})
            self.assertEqual(await b.history(limit=1000), {"history": newest})
            self.assertEqual(await b.history(limit=2 ** 63), {"history": newest})
            self.assertEqual(await b.history(limit=0), {"history": newest})         # everything
            self.assertEqual(await b.history(limit=-3), {"history": newest})
            self.assertEqual(await b.history(limit=-2 ** 63), {"history": newest})
            self.assertEqual(await b.history(offset=0), {"history": newest[:10]})
            self.assertEqual(await b.history(offset=None), {"history": newest[:10]})
            self.assertEqual(await b.history(limit=5, offset=3), {"history": newest[3:8]})
            self.assertEqual(await b.history(limit=0, offset=20), {"history": newest[20:]})
            self.assertEqual(await b.history(offset=24), {"history": newest[24:]})
            self.assertEqual(await b.history(offset=25), {"history": []})
            self.assertEqual(await b.history(limit=3, offset=2 ** 63 + 5), {"history": []})
            self.assertEqual(await b.history(limit=5, extra="ignored"), {"history": newest[:5]})
            # a repeated key: the last one counts
            await b.send('{"action":"history","limit":1,"limit":2}')
            self.assertEqual(await b.next(), {"history": newest[:2]})
            for bad in (None, "5", 2.5, 1e2, True, [], {}, 2 ** 70):
                r = await b.history(limit=bad)
                self.assertEqual(list(r), ["error"], (bad, r))
                self.assertIn("limit", r["error"])
            for bad in (-1, "1", 1.5, True, [1]):
                r = await b.history(limit=2, offset=bad)
                self.assertEqual(list(r), ["error"], (bad, r))
                self.assertIn("offset", r["error"])
            # history goes to the requester only
            await a.quiet(0.2)
            await b.quiet(0.01)
        self.scenario(run)

    def test_history_bound_and_items_are_broadcasts(self):
        """history_limit = 5: only the newest 5 are kept; items are exactly the broadcast objects;
        the history survives the sender's reconnect."""
        srv = self.start(config(history_limit=5))

        async def run():
            a = await self.logged_in(srv, "a")
            b = await self.logged_in(srv, "b", "tok-b")
            seen = []
            for i in range(8):
                c = a if i % 2 else b
                await c.send({"action": "message", "message": "n%d" % i, "channel": i, "k": [i]})
                seen.append(await a.next())
                self.assertEqual(await b.next(), seen[-1])
            await a.close()
            a2 = await self.logged_in(srv, "a2")
            newest = list(reversed(seen))
            for limit in (0, 5, 6, 100, -1):
                self.assertEqual(await a2.history(limit=limit), {"history": newest[:5]}, limit)
            self.assertEqual(await a2.history(limit=2, offset=1), {"history": newest[1:3]})
            self.assertEqual(await a2.history(limit=3, offset=4), {"history": newest[4:5]})
        self.scenario(run)


# --------------------------------------------------------------------------
# persistence: restarts, crashes, a failing disk
# --------------------------------------------------------------------------

class PersistenceTest(ChatCase):

    def data_dir(self):
        d = tempfile.mkdtemp(prefix="ringcast-gamechat-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def test_history_survives_restart_and_kill(self):
        d = self.data_dir()
        cfg = config(history_limit=30)
        srv = self.start(cfg, extra_args=["--data-dir", d])
        sent = []

        async def first():
            a = await self.logged_in(srv, "a")
            b = await self.logged_in(srv, "b", "tok-b")
            for i in range(40):
                c = a if i % 3 else b
                await c.send({"action": "message", "message": "r%d" % i, "channel": "c%d" % (i % 4),
                              "extra": {"i": i, "s": "ü"}})
                sent.append(await a.next())
                self.assertEqual(await b.next(), sent[-1])
        self.scenario(first)
        self.assertEqual(srv.stop(), 0, srv.stderr_text())
        srv2 = self.start(cfg, extra_args=["--data-dir", d])
        newest = list(reversed(sent))

        async def second():
            c = await self.logged_in(srv2, "c", "tok-c")
            self.assertEqual(await c.history(), {"history": newest[:10]})
            self.assertEqual(await c.history(limit=0), {"history": newest[:30]})
            self.assertEqual(await c.history(limit=5, offset=28), {"history": newest[28:30]})
            # new messages continue after the restored ones
            for i in range(3):
                sent.append(await c.chat(message="after restart %d" % i))
            self.assertEqual(await c.history(limit=4), {"history": list(reversed(sent))[:4]})
        self.scenario(second)
        # strict durability: what was broadcast is committed, so it survives kill -9 too
        srv2.kill()
        srv3 = self.start(cfg, extra_args=["--data-dir", d])

        async def third():
            c = await self.logged_in(srv3, "c", "tok-c")
            self.assertEqual(await c.history(limit=0), {"history": list(reversed(sent))[:30]})
        self.scenario(third)

    def test_not_persistent(self):
        """persistent = false: history lives in memory only."""
        d = self.data_dir()
        cfg = config(persistent=False)
        srv = self.start(cfg, extra_args=["--data-dir", d])

        async def first():
            a = await self.logged_in(srv)
            await a.chat(message="gone after restart")
            self.assertEqual(len((await a.history())["history"]), 1)
        self.scenario(first)
        self.assertEqual(srv.stop(), 0)
        srv2 = self.start(cfg, extra_args=["--data-dir", d])

        async def second():
            a = await self.logged_in(srv2)
            self.assertEqual(await a.history(), {"history": []})
        self.scenario(second)

    def test_store_failure(self):
        """A message the store refuses reaches nobody: the sender gets an error object, nothing is
        broadcast or kept; other traffic keeps working and writes succeed again once the disk does."""
        d = self.data_dir()
        srv = self.start(config(extra="[limits]\noutbound_cap = 67108864\n"), extra_args=["--data-dir", d])
        pid = srv.proc.pid
        hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]

        def unlimit():
            try:
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))
            except (OSError, ProcessLookupError):
                pass
        self.addCleanup(unlimit)
        blob = "b" * (64 * 1024)
        accepted, refused = [], []

        async def send(a, b, tag):
            await a.send({"action": "message", "message": tag, "blob": blob})
            r = await a.next(15, "echo or error for %s" % tag)
            if "error" in r:
                self.assertEqual(list(r), ["error"], r)
                self.assertIsInstance(r["error"], str)
                refused.append(tag)
                return False
            self.assertEqual(r["message"], tag)
            self.assertEqual(await b.next(), r)
            accepted.append(tag)
            return True

        async def run():
            a = await self.logged_in(srv, "a")
            b = await self.logged_in(srv, "b", "tok-b")
            for i in range(3):
                self.assertTrue(await send(a, b, "ok-%d" % i))
            await asyncio.sleep(0.3)
            size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
                       if f.startswith("ringcast.db"))
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (size + 256 * 1024, hard))
            streak = 0
            for i in range(60):
                if await send(a, b, "big-%d" % i):
                    streak = 0
                else:
                    streak += 1
                    if streak >= 3:
                        break
            self.assertGreaterEqual(streak, 3, "the store never refused a write")
            await b.quiet(0.3)   # nothing of the refused ones
            # everything else still works: login, history (only the accepted ones)
            c = await self.logged_in(srv, "c", "tok-c")
            h = await c.history(limit=0)
            self.assertEqual([m["message"] for m in reversed(h["history"])], accepted)
            self.assertEqual(srv.health()["status"], "healthy")
            unlimit()
            deadline = time.monotonic() + 5
            n = 0
            while not await send(a, b, "after-%d" % n):
                n += 1
                self.assertLess(time.monotonic(), deadline, "still refused 5 s after the disk recovered")
                await asyncio.sleep(0.2)
            live = await c.next()
            self.assertEqual(live["message"], accepted[-1])
            await c.quiet(0.1)
            h = await c.history(limit=0)
            self.assertEqual([m["message"] for m in reversed(h["history"])], accepted)
        self.scenario(run, 60)


# --------------------------------------------------------------------------
# mounting and HTTP
# --------------------------------------------------------------------------

class MountAndHttpTest(ChatCase):

    def test_api_endpoints_both_ports(self):
        srv = self.start()
        for port in (srv.port, srv.http_port):
            for path in ("/api", "/api/", "/api?x=1"):
                r = harness.http_request(port, "GET", path)
                self.assertEqual(r.status, 200, (port, path, r))
                self.assertEqual(r.body, b"", (port, path))
                self.assertEqual(r.header("Access-Control-Allow-Origin"), "*", (port, path, r))
            r = harness.http_request(port, "GET", "/api/version")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")
            self.assertEqual(r.json(), {"api": "v1.0.1", "env": "PRODUCTION", "desc": "Websocket Server Python"})
            self.assertEqual(list(r.json()), ["api", "env", "desc"])
            self.assertIn("application/json", r.header("Content-Type", ""))
            r = harness.http_request(port, "HEAD", "/api/version")
            self.assertEqual((r.status, r.body), (200, b""))
            for method in ("POST", "PUT", "DELETE"):
                r = harness.http_request(port, method, "/api/version")
                self.assertEqual(r.status, 405, (method, r))
            # a plain GET of the chat path is not a WebSocket
            r = harness.http_request(port, "GET", "/chat")
            self.assertIn(r.status, (400, 404, 426), r)

    def test_api_config(self):
        srv = self.start(config() + '[api]\nversion = "v9"\nenv = "LOCAL DEV"\ndesc = "d"\n')
        for port in (srv.port, srv.http_port):
            r = harness.http_request(port, "GET", "/api/version")
            self.assertEqual(r.json(), {"api": "v9", "env": "LOCAL DEV", "desc": "d"})

    def test_disabled_and_moved(self):
        srv = self.start("[profiles.gamechat]\nenabled = false\n" + TOKENS_TOML)

        async def disabled():
            with self.assertRaises(websockets.InvalidStatusCode) as cm:
                await gconnect(srv.port)
            self.assertEqual(cm.exception.status_code, 404)
        self.scenario(disabled)
        srv2 = self.start('[profiles.gamechat]\npath = "/game/chat"\n' + TOKENS_TOML)

        async def moved():
            c = await self.client(srv2, "m", "/game/chat")
            await c.login("tok-a")
            self.assertEqual((await c.chat(message="moved"))["message"], "moved")
            with self.assertRaises(websockets.InvalidStatusCode):
                await gconnect(srv2.port)
            self.assertEqual(srv2.health()["connections"]["per_path"].get("/game/chat"), 1)
        self.scenario(moved)


if __name__ == "__main__":
    harness.main()
