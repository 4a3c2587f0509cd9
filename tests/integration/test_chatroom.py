#!/usr/bin/python3
"""Chatroom profile (seed 001): the plain-text seed version on /chatroom and the later JSON version
on /chatroom/json (docs/profiles/chatroom.md).

Run: /usr/bin/python3 tests/integration/test_chatroom.py --binary build/ringcast --backend epoll

Clients act like the seed's browser clients: they send plain-text frames and read whatever
arrives. Every scenario opens several connections, so with --threads 2 they land on both workers.
Everything a session is sent because of its own requests arrives in request order, so a "!ping"
answered by "pong!" as the very next frame proves nothing else was sent to it before.
"""

import asyncio
import datetime
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from ws_inbox import WsInbox  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

TEXT = "/chatroom"
JSON = "/chatroom/json"
NAME_RE = re.compile(r"^[A-Z][a-z]+(?:-[a-z]+)*[A-Z][a-z]+$")
GREETING_RE = re.compile(r'^Welcome, (\S+) \(hint: type "!help" for help\)$')
SENT_AT_RE = re.compile(r"^\d\d/\d\d/\d{4}, \d\d:\d\d:\d\d$")
TEXT_HELP = "Here are some commands you can use:\n\t!help, !about, !setname, !who, !env, !ping"
JSON_HELP = TEXT_HELP + ", !pm"
ABOUT = ("This is a websocket-based, in-memory, chatroom created by Rafi Bayer "
         "(github.com/rafibayer)")
GOODBYE = "Server is shutting down... goodbye."


def run(coro, timeout=40):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Client(WsInbox):
    """One chatroom connection; a reader task queues every frame. For the JSON version every frame
    is checked for the exact shape (body, origin, sentAt) when it is taken."""

    def __init__(self, ws, path, json_version):
        super().__init__(ws, name=None)
        self.path = path
        self.json = json_version

    def decode(self, m):
        """(body, origin); origin is None for the text version."""
        if not self.json:
            assert isinstance(m, str), "binary frame from the server: %r" % (m,)
            return m, None
        d = json.loads(m)
        assert isinstance(d, dict) and sorted(d) == ["body", "origin", "sentAt"], m
        assert all(isinstance(v, str) for v in d.values()), m
        assert d["origin"] in ("SERVER", "USER", "SELF", "PRIVATE"), m
        assert SENT_AT_RE.match(d["sentAt"]), m
        sent = datetime.datetime.strptime(d["sentAt"], "%m/%d/%Y, %H:%M:%S")
        assert abs((datetime.datetime.now() - sent).total_seconds()) < 30, (m, "not local time")
        return d["body"], d["origin"]

    async def next(self, timeout=5.0):
        return self.decode(await super().next(timeout))

    async def expect(self, body, origin="SERVER", timeout=5.0):
        got = await self.next(timeout)
        want = (body, origin if self.json else None)
        assert got == want, "%s: expected %r, got %r" % (self.name, want, got)

    async def quiet(self):
        """Nothing was sent to this client before: the next frame answers our !ping."""
        await self.send("!ping")
        await self.expect("pong!")

    async def who(self):
        await self.send("!who")
        body, _ = await self.next()
        assert body.startswith("Connected Users: "), body
        return body[len("Connected Users: "):].split(", ")

    async def closed(self, timeout=5.0):
        """Frames received until the server closed the connection, and the close code."""
        await self.wait_closed(timeout)
        got, self.inbox[:] = list(self.inbox), []
        return [self.decode(m) for m in got], self.close_code


async def connect(port, path, greet=True, json_version=None):
    ws = await websockets.connect("ws://127.0.0.1:%d%s" % (port, path), ping_interval=None,
                                  compression=None, open_timeout=10, close_timeout=3,
                                  max_size=4 << 20)
    c = Client(ws, path, path.endswith("json") if json_version is None else json_version)
    if greet:
        body, origin = await c.next()
        m = GREETING_RE.match(body)
        assert m, body
        assert origin in (None, "SERVER"), origin
        c.name = m.group(1)
        assert NAME_RE.match(c.name), c.name
    return c


class ChatCase(harness.ServerTestCase):
    """One server for the class; each test cleans up its clients and starts from a room where it
    sees only its own connections (earlier tests' disconnects are flushed by settle())."""

    def setUp(self):
        super().setUp()
        self.clients = []

    def run_test(self, coro_fn, timeout=40):
        async def wrapper():
            try:
                await coro_fn()
            finally:
                await asyncio.gather(*(c.close() for c in self.clients))
        run(wrapper(), timeout)

    async def connect(self, path, greet=True):
        c = await connect(self.port, path, greet)
        self.clients.append(c)
        return c

    async def settle(self, clients):
        """Waits until !who lists exactly `clients` (in this order) and drops whatever each of them
        received before that reply (connect notices, earlier tests' disconnect notices)."""
        want = [c.name for c in clients]
        for c in clients:
            deadline = time.monotonic() + 5
            while True:
                await c.send("!who")
                while True:
                    body, _ = await c.next()
                    if body.startswith("Connected Users: "):
                        break
                if body == "Connected Users: " + ", ".join(want):
                    break
                assert time.monotonic() < deadline, "room never settled: %r, want %r" % (body, want)
                await asyncio.sleep(0.05)

    async def group(self, path, n, spread=False):
        """n connected clients (a sole probe first, so no stale member is left), settled. With
        spread, more (up to 16 extra) until both workers have connections."""
        cs = []
        for _ in range(n):
            cs.append(await self.connect(path))
            if len(cs) == 1:
                await self.settle(cs)
        while spread and len(cs) < n + 16 and not self.both_workers_used():
            cs.append(await self.connect(path))
        # Generated names may repeat: tests tell clients apart by name, so rename repeats.
        seen = set()
        for i, c in enumerate(cs):
            if c.name in seen:
                c.name = "%s%d" % (c.name, i)
                await c.send("!setname " + c.name)
            seen.add(c.name)
        await self.settle(cs)
        return cs

    def own_per_thread(self):
        """Connections per worker, once the server counts exactly this test's open ones (an
        earlier test's may still be closing). The counts include the /health request's own
        connection, on either worker: CI once saw [1, 8] while spreading, taken as both workers
        used, and [0, 9] at the check. So a worker surely has one of ours only at 2 or more."""
        mine = sum(1 for c in self.clients if c.closed_code is None)
        harness.wait_until(lambda: self.server.health()["connections"]["websocket"] == mine,
                           timeout=5, what="the server counts this test's %d connections" % mine)
        return self.server.health()["connections"]["per_thread"]

    def both_workers_used(self):
        # Two of ours on each while spreading, so that the check below holds wherever /health's
        # own connection lands then.
        pt = self.own_per_thread()
        return len(pt) == 2 and all(n >= 3 for n in pt)

    def assert_both_workers_used(self):
        pt = self.own_per_thread()
        self.assertEqual(len(pt), 2, pt)
        self.assertTrue(all(n >= 2 for n in pt), "connections per thread %r" % (pt,))


# ==================================================================================================
# behaviour common to both versions, run against each
# ==================================================================================================

class CommonMixin:
    PATH = None

    def o(self, origin):
        return origin

    def test_greeting_and_connect_notices_in_order(self):
        async def t():
            first = await self.connect(self.PATH)
            await self.settle([first])
            rest = [await self.connect(self.PATH) for _ in range(5)]
            everyone = [first] + rest
            # Each client hears about every later one, in connection order, and never about itself.
            for i, c in enumerate(everyone):
                for later in everyone[i + 1:]:
                    await c.expect("%s has connected!" % later.name)
                await c.quiet()
            self.assertEqual(await first.who(), [c.name for c in everyone])
            self.assertEqual(await rest[-1].who(), [c.name for c in everyone])
        self.run_test(t)

    def test_names_are_generated(self):
        async def t():
            cs = [await self.connect(self.PATH) for _ in range(8)]
            names = [c.name for c in cs]
            for n in names:
                self.assertRegex(n, NAME_RE)
                self.assertNotIn(" ", n)
            self.assertGreater(len(set(names)), 1, names)
        self.run_test(t)

    def test_disconnect_notice_and_who(self):
        async def t():
            a, b, c, d = await self.group(self.PATH, 4)
            await b.close()
            for x in (a, c, d):
                await x.expect("%s has disconnected!" % b.name)
                await x.quiet()
            self.assertEqual(await d.who(), [a.name, c.name, d.name])
        self.run_test(t)

    def test_sender_only_replies(self):
        async def t():
            a, b, c = await self.group(self.PATH, 3)
            help_text = JSON_HELP if self.PATH != TEXT else TEXT_HELP
            cases = [
                ("!help", help_text),
                ("!about", ABOUT),
                ("!env", "Enviornment: PROD"),
                ("!ping", "pong!"),
                ("!ping with args", "pong!"),
                ("!ping   ", "pong!"),
                ("!ping\u3000", "pong!"),      # Python's strip() removes Unicode whitespace
                ("!help \t me", help_text),
                ("!   ", '"!" is not a valid command (Syntax)'),
                ("!\t\u00a0", '"!" is not a valid command (Syntax)'),
                ("!nope", '"!nope" is not a valid command (Doesn\'t exist)'),
                ("!nope a  b", '"!nope a  b" is not a valid command (Doesn\'t exist)'),
                ("!p\ning", '"!p\ning" is not a valid command (Doesn\'t exist)'),
                ("!who's there?", '"!who\'s there?" is not a valid command (Doesn\'t exist)'),
                ("!pingpong", '"!pingpong" is not a valid command (Doesn\'t exist)'),
                ("!\u00e9t\u00e9  ", '"!\u00e9t\u00e9" is not a valid command (Doesn\'t exist)'),
            ]
            for text, want in cases:
                await b.send(text)
                await b.expect(want)
            # Sent back to back: the replies come in request order.
            for text, _ in cases:
                await b.send(text)
            for _, want in cases:
                await b.expect(want)
            await b.quiet()
            await a.quiet()
            await c.quiet()
        self.run_test(t)

    def test_not_commands_are_chat(self):
        async def t():
            a, b, c = await self.group(self.PATH, 3)
            for text in ["!", "  !ping", "\n!ping", "!\nping", "hello !ping", "", " ", "ping!",
                         "\u00e9\u2713 \U0001d11e"]:
                await a.send(text)
                for x in (b, c):
                    await x.expect("%s: %s" % (a.name, text), "USER")
                if self.PATH != TEXT:
                    await a.expect("%s: %s" % (a.name, text), "SELF")
            await a.quiet()
        self.run_test(t)

    def test_setname(self):
        async def t():
            a, b, c = await self.group(self.PATH, 3)
            old = b.name
            await b.send("!setname Big Bird")
            for x in (a, b, c):
                await x.expect('"%s" has changed their name to "BigBird"' % old)
            b.name = "BigBird"
            self.assertEqual(await a.who(), [a.name, "BigBird", c.name])  # same place in the list
            await b.send("hi")
            for x in (a, c):
                await x.expect("BigBird: hi", "USER")
            if self.PATH != TEXT:
                await b.expect("BigBird: hi", "SELF")
            # A name already taken is allowed; names may contain '-' and any non-space characters.
            await c.send("!setname BigBird")
            for x in (a, b, c):
                await x.expect('"%s" has changed their name to "BigBird"' % c.name)
            c.name = "BigBird"
            await a.send("!setname   Dr.\u00a0Who-Knows \u00e9 ")
            for x in (a, b, c):
                await x.expect('"%s" has changed their name to "Dr.Who-Knows\u00e9"' % a.name)
            a.name = "Dr.Who-Knows\u00e9"
            self.assertEqual(await b.who(), [a.name, "BigBird", "BigBird"])
            # Notice, then the replies to what followed it, in request order.
            await b.send("!setname Zed")
            await b.send("!ping")
            await b.send("!who")
            await b.expect('"BigBird" has changed their name to "Zed"')
            await b.expect("pong!")
            await b.expect("Connected Users: %s, Zed, BigBird" % a.name)
            for x in (a, c):
                await x.expect('"BigBird" has changed their name to "Zed"')
                await x.quiet()
            await b.close()
            for x in (a, c):
                await x.expect("Zed has disconnected!")
        self.run_test(t)

    def test_setname_usage(self):
        async def t():
            a, b = await self.group(self.PATH, 2)
            usage = ('!setname usage: "!setname <new name>"' if self.PATH != TEXT
                     else '!setname usage is "!setname <new name>"')
            await a.send("!setname")
            await a.expect(usage)
            await a.send("!setname \u3000 ")
            await a.expect(usage)
            await b.quiet()
            self.assertEqual(await b.who(), [a.name, b.name])
        self.run_test(t)

    def test_message_cut_to_1000_code_points(self):
        async def t():
            a, b = await self.group(self.PATH, 2)
            for unit in ("x", "\u00e9", "\u2713", "\U0001d11e"):
                exact = unit * 1000
                await a.send(exact)
                await b.expect("%s: %s" % (a.name, exact), "USER")
                await a.send(unit * 1001 + "TAIL")
                await b.expect("%s: %s" % (a.name, exact), "USER")
                if self.PATH != TEXT:
                    await a.expect("%s: %s" % (a.name, exact), "SELF")
                    await a.expect("%s: %s" % (a.name, exact), "SELF")
            # 1 MiB of text: still only the first 1000 characters.
            await a.send("y" * (1 << 20))
            await b.expect("%s: %s" % (a.name, "y" * 1000), "USER")
            if self.PATH != TEXT:
                await a.expect("%s: %s" % (a.name, "y" * 1000), "SELF")
            # The cut happens before the command is read: "!setname " is 9 characters.
            await a.send("!setname " + "n" * 5000)
            for x in (a, b):
                await x.expect('"%s" has changed their name to "%s"' % (a.name, "n" * 991))
            await a.quiet()
        self.run_test(t)

    def test_binary_frame_closes_1003(self):
        async def t():
            a, b, c = await self.group(self.PATH, 3)
            await b.ws.send(b"\x00\x01binary")
            got, code = await b.closed()
            self.assertEqual(got, [])
            self.assertEqual(code, 1003)
            for x in (a, c):
                await x.expect("%s has disconnected!" % b.name)
                await x.quiet()
            self.assertEqual(await a.who(), [a.name, c.name])
        self.run_test(t)

    def test_send_before_greeting(self):
        async def t():
            a = await self.connect(self.PATH)
            await self.settle([a])
            b = await self.connect(self.PATH, greet=False)
            await b.send("!ping")
            await b.send("!who")
            await b.send("early")
            body, _ = await b.next()
            m = GREETING_RE.match(body)
            self.assertTrue(m, body)
            b.name = m.group(1)
            await b.expect("pong!")
            await b.expect("Connected Users: %s, %s" % (a.name, b.name))
            if self.PATH != TEXT:
                await b.expect("%s: early" % b.name, "SELF")
            await a.expect("%s has connected!" % b.name)
            await a.expect("%s: early" % b.name, "USER")
            await a.quiet()
        self.run_test(t)

    def test_many_clients_across_cores(self):
        async def t():
            cs = await self.group(self.PATH, 8, spread=True)
            self.assert_both_workers_used()
            n = 25

            async def blast(c):
                for i in range(n):
                    await c.send("m %s %d" % (c.name, i))
            await asyncio.gather(*(blast(c) for c in cs))

            async def check(c):
                seen = {o.name: 0 for o in cs}
                total = n * (len(cs) - 1) + (n if self.PATH != TEXT else 0)
                for _ in range(total):
                    body, origin = await c.next()
                    name, _, rest = body.partition(": ")
                    m, who, i = rest.split(" ")
                    self.assertEqual((m, who), ("m", name))
                    if self.PATH != TEXT:
                        self.assertEqual(origin, "SELF" if name == c.name else "USER")
                    else:
                        self.assertNotEqual(name, c.name, "the sender got its own chat back")
                    self.assertEqual(int(i), seen[name], "order of %s's messages" % name)
                    seen[name] += 1
                await c.quiet()
            await asyncio.gather(*(check(c) for c in cs))
        self.run_test(t, timeout=60)


class TextVersion(CommonMixin, ChatCase):
    PATH = TEXT

    def test_sender_gets_nothing_for_its_chat(self):
        async def t():
            a, b, c = await self.group(TEXT, 3)
            await a.send("hello world")
            await b.expect("%s: hello world" % a.name)
            await c.expect("%s: hello world" % a.name)
            await a.quiet()
        self.run_test(t)

    def test_command_word_is_lower_cased(self):
        async def t():
            a, b = await self.group(TEXT, 2)
            await a.send("!HELP")
            await a.expect(TEXT_HELP)
            await a.send("!PiNg")
            await a.expect("pong!")
            await a.send("!SetName  Mr  Blue ")
            await a.expect('"%s" has changed their name to "MrBlue"' % a.name)
            await b.expect('"%s" has changed their name to "MrBlue"' % a.name)
            # !pm is not a command of the seed version.
            await a.send("!pm %s hi" % b.name)
            await a.expect('"!pm %s hi" is not a valid command (Doesn\'t exist)' % b.name)
            await b.quiet()
        self.run_test(t)

    def test_frames_are_plain_text(self):
        async def t():
            a, b = await self.group(TEXT, 2)
            await a.send('{"body": "x"}')
            await b.expect('%s: {"body": "x"}' % a.name)
            await b.send("!ping")
            await b.expect("pong!")  # not JSON
        self.run_test(t)

    def test_versions_are_separate_rooms(self):
        async def t():
            a = await self.connect(TEXT)
            await self.settle([a])
            j = await self.connect(JSON)
            await j.send("from json")
            await j.expect("%s: from json" % j.name, "SELF")
            await a.send("from text")
            await a.quiet()
            self.assertEqual(await a.who(), [a.name])
            self.assertNotIn(a.name, await j.who())
        self.run_test(t)


class JsonVersion(CommonMixin, ChatCase):
    PATH = JSON

    def test_chat_to_others_then_self(self):
        async def t():
            a, b, c = await self.group(JSON, 3)
            await a.send("hello world")
            await b.expect("%s: hello world" % a.name, "USER")
            await c.expect("%s: hello world" % a.name, "USER")
            await a.expect("%s: hello world" % a.name, "SELF")
            await a.quiet()
            await b.quiet()
        self.run_test(t)

    def test_command_parsing(self):
        async def t():
            a, b = await self.group(JSON, 2)
            # A lone word is matched as typed; with arguments it is lower-cased.
            await a.send("!HELP")
            await a.expect('"!HELP" is not a valid command (Doesn\'t exist)')
            await a.send("!Ping")
            await a.expect('"!Ping" is not a valid command (Doesn\'t exist)')
            await a.send("!HELP me")
            await a.expect(JSON_HELP)
            await a.send("!PING  x")
            await a.expect("pong!")
            await a.send("!SETNAME  a b\tc ")
            await a.expect('"%s" has changed their name to "abc"' % a.name)
            await b.expect('"%s" has changed their name to "abc"' % a.name)
            await a.send("!SETNAME")
            await a.expect('"!SETNAME" is not a valid command (Doesn\'t exist)')
            await b.quiet()
        self.run_test(t)

    def test_pm(self):
        async def t():
            a, b, c, d = await self.group(JSON, 4)
            await a.send("!pm %s  hello   there " % c.name)
            await c.expect("PM <- %s: hello   there" % a.name, "PRIVATE")
            await a.expect("PM -> %s: hello   there" % c.name, "PRIVATE")
            for x in (a, b, c, d):
                await x.quiet()
            # Names with '-' are matched like any other.
            await c.send("!setname Big-heartedLynx")
            for x in (a, b, c, d):
                await x.expect('"%s" has changed their name to "Big-heartedLynx"' % c.name)
            c.name = "Big-heartedLynx"
            await d.send("!pm Big-heartedLynx é✓ x")
            await c.expect("PM <- %s: é✓ x" % d.name, "PRIVATE")
            await d.expect("PM -> Big-heartedLynx: é✓ x", "PRIVATE")
            # To yourself: both lines, "from" first.
            await b.send("!pm %s note to self" % b.name)
            await b.expect("PM <- %s: note to self" % b.name, "PRIVATE")
            await b.expect("PM -> %s: note to self" % b.name, "PRIVATE")
            # Exact, case-sensitive match.
            await a.send("!pm %s hi" % c.name.lower())
            await a.expect("!pm error: user %s not found" % c.name.lower())
            await a.send("!pm %s hi" % c.name[:-1])
            await a.expect("!pm error: user %s not found" % c.name[:-1])
            # Usage.
            for text in ("!pm", "!pm   ", "!pm %s" % c.name, "!pm %s   " % c.name, "!PM x"):
                await a.send(text)
                await a.expect("!pm usage: !pm <user> <message>")
            for x in (a, b, c, d):
                await x.quiet()
            # Duplicate names: the first in connection order gets it.
            for who in (d, b):
                await who.send("!setname Twin")
                for x in (a, b, c, d):
                    await x.expect('"%s" has changed their name to "Twin"' % who.name)
            await a.send("!pm Twin which one?")
            await b.expect("PM <- %s: which one?" % a.name, "PRIVATE")
            await a.expect("PM -> Twin: which one?", "PRIVATE")
            await d.quiet()
            await c.quiet()
            # A renamed user is found by the new name only; a left user not at all.
            await a.send("!pm %s gone?" % d.name)
            await a.expect("!pm error: user %s not found" % d.name)
            await b.close()
            for x in (a, c, d):
                await x.expect("Twin has disconnected!")
            await a.send("!pm Twin now you")
            await d.expect("PM <- %s: now you" % a.name, "PRIVATE")
            await a.expect("PM -> Twin: now you", "PRIVATE")
            await c.quiet()
        self.run_test(t)


# ==================================================================================================
# configuration and lifecycle
# ==================================================================================================

async def expect_404(port, path):
    try:
        ws = await websockets.connect("ws://127.0.0.1:%d%s" % (port, path), open_timeout=5)
    except websockets.InvalidStatusCode as e:
        assert e.status_code == 404, e.status_code
        return
    await ws.close()
    raise AssertionError("%s was mounted" % path)


class Config(harness.ProcessTestCase):

    def test_env_limit_and_paths(self):
        srv = self.new_server(config={"profiles.chatroom": {
            "env": "TEST", "max_message_chars": 10, "path": "/talk", "json_path": "/talk.json"}})

        async def t():
            await expect_404(srv.port, TEXT)
            await expect_404(srv.port, JSON)
            for path in ("/talk", "/talk.json"):
                a = await connect(srv.port, path)
                b = await connect(srv.port, path)
                await a.expect("%s has connected!" % b.name)
                await a.send("!env")
                await a.expect("Enviornment: TEST")
                await a.send("0123456789abc")
                await b.expect("%s: 0123456789" % a.name, "USER")
                if a.json:
                    await a.expect("%s: 0123456789" % a.name, "SELF")
                await b.send("!setname 0123456789")
                for x in (a, b):
                    await x.expect('"%s" has changed their name to "0"' % b.name)
                await a.close()
                await b.close()
        run(t())
        self.assertEqual(srv.stop(), 0)

    def test_json_version_off(self):
        srv = self.new_server(config={"profiles.chatroom": {"json_path": ""}})

        async def t():
            await expect_404(srv.port, JSON)
            a = await connect(srv.port, TEXT)
            await a.send("!ping")
            await a.expect("pong!")
            await a.close()
        run(t())
        self.assertEqual(srv.stop(), 0)

    def test_disabled(self):
        srv = self.new_server(config={"profiles.chatroom": {"enabled": False}})

        async def t():
            await expect_404(srv.port, TEXT)
            await expect_404(srv.port, JSON)
        run(t())
        self.assertEqual(srv.stop(), 0)

    def test_bad_json_path(self):
        path = harness.write_temp(harness.toml_text({"profiles.chatroom": {"json_path": "json"}}))
        self.addCleanup(os.unlink, path)
        r = harness.run_binary(["--config", path, "--check-config"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"profiles.chatroom.json_path", r.stderr)

    def test_graceful_stop_says_goodbye(self):
        srv = self.new_server()

        async def t():
            cs = []
            for path in (TEXT, JSON):
                for _ in range(3):
                    cs.append(await connect(srv.port, path))
            for c in cs:
                await c.send("!ping")
                while (await c.next())[0] != "pong!":
                    pass
            srv.send_signal(signal.SIGTERM)
            for c in cs:
                got, code = await c.closed(timeout=8)
                self.assertTrue(got, "nothing before the close")
                self.assertEqual(got[-1], (GOODBYE, "SERVER" if c.json else None), got)
                self.assertEqual(code, 1001)
            for c in cs:
                await c.close()
        run(t())
        self.assertEqual(srv.wait_exit(10), 0)


if __name__ == "__main__":
    harness.main()
