#!/usr/bin/python3
"""Sequenced rooms over a cluster ([cluster], issue 11): native /ws rooms with presence, history and
state, and the chatroom, gamechat and livemap profiles, with clients spread over 2-3 nodes that
share a private redis-server (redis_harness). Every node runs --threads 2.

Run: /usr/bin/python3 tests/integration/test_cluster_rooms.py --binary build/ringcast --backend epoll

What is checked (the "one hub" promise of the issue for sequenced rooms):
  - one order: every member on every node sees every message once, with the same seq sequence;
  - since/offset recovery and history queries answer the same on every node;
  - presence is cluster-wide, and a node killed with SIGKILL loses its members within the TTL;
  - retained state crosses nodes and keeps insertion order;
  - the seed profiles' cross-node flows in the seeds' formats;
  - Redis restarted: publishes are refused meanwhile, joins still work, delivery resumes after;
  - acknowledged history survives a node's SIGKILL.

Tests whose comment starts with "Regression" guard a defect an earlier version had; the comment
says what it did.
"""

import asyncio
import json
import os
import signal
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from redis_harness import Redis, cluster_node  # noqa: E402
from test_chatroom import GREETING_RE, JSON as CHAT_JSON, TEXT as CHAT_TEXT, connect as chat_connect  # noqa: E402
from test_native import NClient, run_async, worker_of  # noqa: E402
from ws_inbox import Binary, WsInbox  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

NODE_TTL_S = 3.0  # cluster_node()'s node_ttl_ms

TOKENS = [("tok-%d" % i, "u%d" % i, "User%d" % i) for i in range(16)]
TOKENS_TOML = "[tokens]\n" + "".join('"%s" = { user_id = "%s", nickname = "%s" }\n' % t for t in TOKENS)
HUB_TOML = "[hub]\nhistory = 500\n"


async def nconnect(port, name):
    ws = await websockets.connect("ws://127.0.0.1:%d/ws" % port, ping_interval=None, compression=None,
                                  max_size=16 << 20, max_queue=None, open_timeout=10, close_timeout=3)
    return NClient(ws, name)


def msg_key(m):
    """What identifies a message for every observer: seq, ts, user and data (`from` is a session
    id, local to the node that names it)."""
    return (m["seq"], m.get("ts"), m.get("user"), json.dumps(m.get("data"), sort_keys=True))


class ClusterCase(harness.ProcessTestCase):
    REDIS_KW = {}

    def _track(self, c):
        self._clients.append(c)
        return c

    async def gamechat_login(self, srv, tok):
        c = self._track(await ws_open(srv.port, "/chat", jdecode, tok))
        await c.send({"action": "login", "token": tok})
        self.assertEqual(await c.next(10), {"info": "connected"})
        return c

    def setUp(self):
        super().setUp()
        self.redis = Redis(**self.REDIS_KW).start()
        self.addCleanup(self.redis.cleanup)
        self._clients = []
        self._tok = 0

    def nodes(self, n, extra=""):
        out = [cluster_node(self, self.redis, "node%d" % i, extra) for i in range(n)]
        for srv in out:
            harness.wait_until(lambda: srv.health()["cluster"]["nodes_seen"] >= n, timeout=10,
                               what="%d nodes seen by %s" % (n, srv.port))
            self.assertEqual(srv.health()["cluster"]["redis"], "ok")
        return out

    def run_scenario(self, fn, timeout=60):
        async def wrapped():
            try:
                await fn()
            finally:
                await asyncio.gather(*(c.close() for c in self._clients))
        run_async(wrapped(), timeout)

    async def client(self, srv, name, auth=True):
        c = await nconnect(srv.port, name)
        self._clients.append(c)
        if auth:
            tok, uid, nick = TOKENS[self._tok % len(TOKENS)]
            self._tok += 1
            r = await c.req("auth", token=tok)
            self.assertEqual(r.get("type"), "authed", r)
            c.sid, c.uid, c.nick = r["session"], uid, nick
        return c

    async def spread(self, srv, per_worker, tag):
        """Clients of `srv` with at least `per_worker` on each of its 2 workers (bounded)."""
        by = {}
        for i in range(40):
            c = await self.client(srv, "%s-%d" % (tag, i))
            by.setdefault(worker_of(c.sid), []).append(c)
            if len(by) >= 2 and all(len(v) >= per_worker for v in by.values()):
                break
        self.assertGreaterEqual(len(by), 2, "40 connections of %s all on one worker" % tag)
        out = []
        for w in sorted(by):
            out += by[w][:per_worker]
        return out

    async def publish_ok(self, c, room, data, timeout=5.0, **kw):
        r = await c.req("publish", room=room, data=data, timeout=timeout, **kw)
        self.assertEqual(r.get("type"), "ack", "%s: publish %r: %r" % (c.name, data, r))


class NativeClusterTest(ClusterCase):
    def test_one_order_on_every_member_of_two_nodes(self):
        a, b = self.nodes(2, HUB_TOML + TOKENS_TOML)
        room = "order-" + uuid.uuid4().hex[:8]
        per_pub = 40

        async def scenario():
            ca = await self.spread(a, 2, "a")
            cb = await self.spread(b, 2, "b")
            members = ca + cb
            for c in members:
                r = await c.join(room, presence=True, history=20)
                self.assertEqual(r.get("seq"), 0, r)
            # Publishers on both nodes and both workers; one of them with echo:false.
            pubs = [ca[0], ca[-1], cb[0], cb[-1]]
            quiet = cb[-1]

            async def publish_all(c):
                for i in range(per_pub):
                    await c.send({"op": "publish", "room": room, "id": "%s-%d" % (c.name, i),
                                  "data": {"p": c.name, "i": i}, "echo": c is not quiet})

            await asyncio.gather(*(publish_all(c) for c in pubs))
            total = per_pub * len(pubs)
            for c in pubs:
                for i in range(per_pub):
                    r = await c.take(lambda m, rid="%s-%d" % (c.name, i): m.get("id") == rid, 20,
                                     "ack %s-%d" % (c.name, i))
                    self.assertEqual(r.get("type"), "ack", "%s: %r" % (c.name, r))
            for c in members:
                want = total - (per_pub if c is quiet else 0)
                await c.wait_for(lambda inbox: len([m for m in inbox if m.get("type") == "message"]) >= want,
                                 20, "%d messages" % want)
            await asyncio.sleep(0.3)  # a duplicate would arrive by now
            reference = None
            for c in members:
                got = [m for m in c.inbox if m.get("type") == "message"]
                seqs = [m["seq"] for m in got]
                if c is quiet:
                    self.assertEqual(len(got), total - per_pub, c.name)
                    self.assertFalse([m for m in got if m["data"]["p"] == quiet.name],
                                     "echo:false publisher got its own message")
                    self.assertEqual(seqs, sorted(set(seqs)), "%s: not increasing: %r" % (c.name, seqs))
                    continue
                self.assertEqual(seqs, list(range(1, total + 1)),
                                 "%s (%s): seq not 1..%d in order" % (c.name, c.sid, total))
                order = [(m["seq"], m["data"]["p"], m["data"]["i"]) for m in got]
                if reference is None:
                    reference = order
                self.assertEqual(order, reference, "%s saw another order" % c.name)
                for p in pubs:  # per-publisher order
                    mine = [i for _, who, i in order if who == p.name]
                    self.assertEqual(mine, list(range(per_pub)), "%s: order of %s" % (c.name, p.name))
            # The quiet one's view is the reference minus its own messages.
            qv = [(m["seq"], m["data"]["p"], m["data"]["i"]) for m in quiet.inbox if m.get("type") == "message"]
            self.assertEqual(qv, [x for x in reference if x[1] != quiet.name])

        self.run_scenario(scenario, 90)

    def test_since_and_history_same_on_every_node(self):
        nodes = self.nodes(3, HUB_TOML + TOKENS_TOML)
        room = "hist-" + uuid.uuid4().hex[:8]
        n, k = 30, 17

        async def scenario():
            pa = await self.client(nodes[0], "pa")
            pb = await self.client(nodes[1], "pb")
            await pa.join(room)
            await pb.join(room)
            for i in range(n // 2):
                await self.publish_ok(pa, room, {"i": 2 * i}, echo=False)
                await self.publish_ok(pb, room, {"i": 2 * i + 1}, echo=False)
            late = await self.client(nodes[2], "late")
            r = await late.join(room, since=k)
            self.assertEqual(r.get("seq"), n, r)
            await late.wait_for(lambda inbox: len([m for m in inbox if m.get("type") == "message"]) >= n - k,
                                10, "%d replayed messages" % (n - k))
            await asyncio.sleep(0.3)
            got = [m for m in late.inbox if m.get("type") == "message"]
            self.assertEqual([m["seq"] for m in got], list(range(k + 1, n + 1)))
            self.assertEqual([m["data"]["i"] for m in got], list(range(k, n)))
            # history with limit/offset/since gives one answer on every node (asked by a
            # non-member on each node too).
            askers = [pa, pb, late]
            for q in ({"limit": 10, "offset": 0}, {"limit": 7, "offset": 5}, {"limit": 50},
                      {"limit": 5, "offset": 28}, {"since": 22}):
                answers = []
                for c in askers:
                    r = await c.req("history", room=room, **q)
                    self.assertEqual(r.get("type"), "history", r)
                    self.assertEqual(r.get("seq"), n, r)
                    answers.append([msg_key(m) for m in r["messages"]])
                for c, ans in zip(askers[1:], answers[1:]):
                    self.assertEqual(ans, answers[0], "history %r on %s differs" % (q, c.name))
                if "since" in q:
                    self.assertEqual([x[0] for x in answers[0]], list(range(q["since"] + 1, n + 1)))
                else:
                    top = n - q.get("offset", 0)
                    self.assertEqual([x[0] for x in answers[0]],
                                     list(range(top, max(top - q["limit"], 0), -1)), q)

        self.run_scenario(scenario, 60)

    def test_remote_sender_id_is_the_same_on_every_other_node(self):
        # docs/cluster.md "Ids": a member keeps its own session id on its node and is known by one
        # derived id on every other node (in `from` and in presence lists).
        nodes = self.nodes(3, HUB_TOML + TOKENS_TOML)
        room = "from-" + uuid.uuid4().hex[:8]

        async def scenario():
            cs = [await self.client(srv, "c%d" % i) for i, srv in enumerate(nodes)]
            for c in cs:
                await c.join(room, presence=True)
            await self.publish_ok(cs[0], room, {"x": 1})
            froms = [(await c.take_type("message", 10))["from"] for c in cs]
            self.assertEqual(froms[0], cs[0].sid)
            self.assertEqual(froms[1], froms[2], "nodes B and C name node A's sender differently")
            self.assertNotEqual(froms[1], cs[0].sid)
            for c in cs[1:]:
                r = await c.req("presence", room=room)
                ids = {m.get("user_id"): m["session"] for m in r["members"]}
                self.assertEqual(ids[cs[0].uid], froms[1], "presence id of A's member on %s" % c.name)
                self.assertEqual(ids[c.uid], c.sid)

        self.run_scenario(scenario, 30)

    def test_binary_frames_cross_nodes_in_order_with_messages(self):
        a, b = self.nodes(2, HUB_TOML + TOKENS_TOML)
        room = "bin-" + uuid.uuid4().hex[:8]

        async def scenario():
            ca = await self.client(a, "ca")
            cb = await self.client(b, "cb")
            cb2 = await self.client(b, "cb2")
            await ca.join(room, presence=True)
            await cb.join(room, presence=True)
            await cb2.join(room)
            h0 = await cb.req("history", room=room)
            sent = []
            blobs = [os.urandom(1), os.urandom(70000), b"\xff\xfe{not json", b""]
            for i in range(20):
                blob = blobs[i % len(blobs)] if i < len(blobs) else b"n%d" % i
                await ca.send(blob)
                sent.append(("bin", blob))
                await ca.send({"op": "publish", "room": room, "data": {"i": i}})
                sent.append(("msg", i))

            def seen(c):
                out = []
                for m in c.inbox:
                    if isinstance(m, Binary):
                        out.append(("bin", m.data))
                    elif m.get("type") == "message":
                        out.append(("msg", m["data"]["i"]))
                return out

            for c in (cb, cb2):
                await c.wait_for(lambda inbox, c=c: len(seen(c)) >= len(sent), 10, "binary and messages")
            await asyncio.sleep(0.2)
            for c in (cb, cb2):
                self.assertEqual(seen(c), sent, "%s: order of binary frames and messages" % c.name)
            h1 = await cb.req("history", room=room)
            self.assertEqual(len(h1["messages"]), len(h0["messages"]) + 20, "binary frames are not history")
            self.assertEqual([m for m in ca.inbox if isinstance(m, dict) and m.get("type") == "error"], [])

        self.run_scenario(scenario, 30)

    def test_queries_on_a_node_without_members(self):
        # Regression: a node that did not mirror the room answered `history` and `presence` from
        # its own empty registry (seq 0, no messages, no members).
        a, b = self.nodes(2, HUB_TOML + TOKENS_TOML)
        room = "q-" + uuid.uuid4().hex[:8]

        async def scenario():
            ca = await self.client(a, "ca")
            await ca.join(room, presence=True)
            for i in range(5):
                await self.publish_ok(ca, room, {"i": i}, echo=False)
            cb = await self.client(b, "cb")
            ra = await ca.req("history", room=room, limit=3, offset=1)
            rb = await cb.req("history", room=room, limit=3, offset=1)
            self.assertEqual(ra.get("seq"), 5, ra)
            self.assertEqual((rb.get("seq"), [msg_key(m) for m in rb["messages"]]),
                             (ra.get("seq"), [msg_key(m) for m in ra["messages"]]),
                             "history asked on a node without members of the room")
            pb = await cb.req("presence", room=room)
            self.assertEqual([m.get("user_id") for m in pb["members"]], [ca.uid], pb)

        self.run_scenario(scenario, 30)

    def test_presence_across_nodes_and_node_kill(self):
        a, b = self.nodes(2, HUB_TOML + TOKENS_TOML)
        room = "pres-" + uuid.uuid4().hex[:8]

        async def scenario():
            wa = await self.client(a, "wa")
            wb = await self.client(b, "wb")
            await wa.join(room, presence=True)
            r = await wb.join(room, presence=True)
            self.assertEqual(sorted(m["user_id"] for m in r["members"]), sorted([wa.uid, wb.uid]), r)
            ev = await wa.take(lambda m: m.get("type") == "presence" and m.get("event") == "join", 10,
                               "join event of wb on node A")
            self.assertEqual(ev["member"].get("user_id"), wb.uid, ev)
            # Members on node B, on both workers.
            bs = await self.spread(b, 2, "bm")
            for c in bs:
                await c.join(room, presence=True)
            everyone = {wa.uid, wb.uid} | {c.uid for c in bs}
            await wa.wait_for(lambda inbox: {m["member"].get("user_id") for m in inbox
                                             if m.get("type") == "presence" and m.get("event") == "join"}
                              >= {c.uid for c in bs}, 10, "join events of node B's members")

            async def listing(c):
                r = await c.req("presence", room=room)
                return sorted((m.get("user_id") or "", m.get("nickname") or "") for m in r["members"])

            la, lb = await listing(wa), await listing(wb)
            self.assertEqual(la, lb, "presence lists differ between nodes")
            self.assertEqual({u for u, _ in la}, everyone)
            # One leaves on B: A hears it.
            left = bs[0]
            await left.req("leave", room=room)
            ev = await wa.take(lambda m: m.get("type") == "presence" and m.get("event") == "leave", 10,
                               "leave event on node A")
            self.assertEqual(ev["member"].get("user_id"), left.uid, ev)
            self.assertEqual(await listing(wa), await listing(wb))
            # Node B dies: its members leave on A within the TTL (+3 s).
            wa.pop_all(lambda m: m.get("type") == "presence")
            gone = {wb.uid} | {c.uid for c in bs[1:]}
            t0 = time.monotonic()
            b.proc.send_signal(signal.SIGKILL)
            b.proc.wait(5)
            await wa.wait_for(lambda inbox: {m["member"].get("user_id") for m in inbox
                                             if m.get("type") == "presence" and m.get("event") == "leave"}
                              >= gone, NODE_TTL_S + 3.0, "leave events of the killed node's members")
            elapsed = time.monotonic() - t0
            self.assertEqual(await listing(wa), [(wa.uid, wa.nick)])
            harness.wait_until(lambda: a.health()["cluster"]["nodes_seen"] == 1, timeout=5,
                               what="node A sees only itself")
            sys.stderr.write("(node B's members left on node A %.2fs after SIGKILL)\n" % elapsed)

        self.run_scenario(scenario, 60)

    def test_state_across_nodes(self):
        a, b = self.nodes(2, HUB_TOML + TOKENS_TOML)
        room = "state-" + uuid.uuid4().hex[:8]

        async def scenario():
            ca = await self.client(a, "ca")
            cb = await self.client(b, "cb")
            await ca.join(room)
            await cb.join(room)
            keys = ["k%d" % i for i in (5, 1, 9, 3, 7)]
            for i, k in enumerate(keys):
                r = await ca.req("state.set", room=room, key=k, value={"v": i})
                self.assertEqual(r.get("type"), "ack", r)
            for i, k in enumerate(keys):
                ev = await cb.take(lambda m, k=k: m.get("type") == "state" and m.get("key") == k, 10,
                                   "state event %s on node B" % k)
                self.assertEqual(ev.get("value"), {"v": i}, ev)
            # A key set again keeps its place; a deleted one set again comes last.
            await ca.req("state.set", room=room, key="k1", value={"v": "again"})
            r = await cb.req("state.del", room=room, key="k9")
            self.assertEqual(r.get("type"), "ack", r)
            ev = await ca.take(lambda m: m.get("type") == "state" and m.get("key") == "k9"
                               and m.get("deleted"), 10, "state delete on node A")
            self.assertTrue(ev.get("deleted"), ev)
            await cb.req("state.set", room=room, key="k5", value={"v": "b"})
            await cb.req("state.del", room=room, key="k3")
            await cb.req("state.set", room=room, key="k3", value={"v": "last"})
            want = [("k5", {"v": "b"}), ("k1", {"v": "again"}), ("k7", {"v": 4}), ("k3", {"v": "last"})]
            await ca.take(lambda m: m.get("type") == "state" and m.get("key") == "k3"
                          and m.get("value") == {"v": "last"}, 10, "last state event on node A")
            for srv in (b, a):
                late = await self.client(srv, "late-%d" % srv.port)
                r = await late.join(room)
                self.assertEqual(list(r["state"].items()), want, "snapshot on %d" % srv.port)
                # raw JSON order, not just dict order
                self.assertEqual(list(r["state"].keys()), [k for k, _ in want])

        self.run_scenario(scenario, 40)



async def ws_open(port, path, decode=None, name="c"):
    ws = await websockets.connect("ws://127.0.0.1:%d%s" % (port, path), ping_interval=None,
                                  compression=None, open_timeout=10, close_timeout=3, max_size=4 << 20)
    return WsInbox(ws, name, decode=decode)


def jdecode(m):
    return json.loads(m) if isinstance(m, str) else {"<binary>": m}


class ProfileClusterTest(ClusterCase):
    def test_chatroom_notices_and_chat_cross_nodes(self):
        a, b = self.nodes(2)

        async def chat(srv, path, name):
            c = self._track(await chat_connect(srv.port, path))
            c.name = c.name or name
            return c

        async def scenario():
            for path in (CHAT_TEXT, CHAT_JSON):
                js = path == CHAT_JSON
                u1 = await chat(a, path, "u1")
                u2 = await chat(b, path, "u2")
                await u1.expect("%s has connected!" % u2.name)
                u3 = await chat(b, path, "u3")
                await u1.expect("%s has connected!" % u3.name)
                await u2.expect("%s has connected!" % u3.name)
                # chat from A reaches both users on B; the sender gets nothing (text) or SELF (json)
                await u1.send("hello from A")
                await u2.expect("%s: hello from A" % u1.name, "USER")
                await u3.expect("%s: hello from A" % u1.name, "USER")
                if js:
                    await u1.expect("%s: hello from A" % u1.name, "SELF")
                await u3.send("hi from B")
                await u1.expect("%s: hi from B" % u3.name, "USER")
                await u2.expect("%s: hi from B" % u3.name, "USER")
                if js:
                    await u3.expect("%s: hi from B" % u3.name, "SELF")
                # !who is the cluster's users, in connection order, on either node
                self.assertEqual(await u1.who(), [u1.name, u2.name, u3.name])
                self.assertEqual(await u2.who(), [u1.name, u2.name, u3.name])
                # a rename on B reaches everyone
                old = u2.name
                await u2.send("!setname Renamed%s" % ("J" if js else "T"))
                for c in (u1, u2, u3):
                    await c.expect('"%s" has changed their name to "Renamed%s"' % (old, "J" if js else "T"))
                u2.name = "Renamed%s" % ("J" if js else "T")
                # u3 (on B) disconnects: u1 on A hears it
                await u3.close()
                await u1.expect("%s has disconnected!" % u3.name)
                await u2.expect("%s has disconnected!" % u3.name)
                self.assertEqual(await u1.who(), [u1.name, u2.name])
                await u1.quiet()
                await u2.quiet()
                await u1.close()
                await u2.expect("%s has disconnected!" % u1.name)
                await u2.close()

        self.run_scenario(scenario, 60)

    def test_chatroom_pm_to_a_user_on_another_node(self):
        # Regression: the sender was told "PM -> <user>: ..." but the user on the other node
        # received nothing (direct sends did not cross nodes).
        a, b = self.nodes(2)

        async def scenario():
            u1 = self._track(await chat_connect(a.port, CHAT_JSON))
            u2 = self._track(await chat_connect(b.port, CHAT_JSON))
            await u1.expect("%s has connected!" % u2.name)
            await u1.send("!pm %s hello" % u2.name)
            body, origin = await u1.next()
            if body == "!pm error: user %s not found" % u2.name:
                return  # refused honestly: acceptable until PMs cross nodes
            self.assertEqual((body, origin), ("PM -> %s: hello" % u2.name, "PRIVATE"))
            await u2.expect("PM <- %s: hello" % u1.name, "PRIVATE")

        self.run_scenario(scenario, 30)

    def test_chatroom_node_kill_disconnect_notices(self):
        a, b = self.nodes(2)

        async def scenario():
            t1 = self._track(await chat_connect(a.port, CHAT_TEXT))
            t2 = self._track(await chat_connect(b.port, CHAT_TEXT))
            t3 = self._track(await chat_connect(b.port, CHAT_TEXT))
            await t1.expect("%s has connected!" % t2.name)
            await t1.expect("%s has connected!" % t3.name)
            b.proc.send_signal(signal.SIGKILL)
            b.proc.wait(5)
            got = [await t1.next(NODE_TTL_S + 3.0) for _ in range(2)]
            self.assertEqual(sorted(body for body, _ in got),
                             sorted("%s has disconnected!" % c.name for c in (t2, t3)))
            self.assertEqual(await t1.who(), [t1.name])

        self.run_scenario(scenario, 30)

    def test_gamechat_login_chat_history_cross_nodes(self):
        a, b = self.nodes(2, TOKENS_TOML)

        async def scenario():
            ga = await self.gamechat_login(a, "tok-1")
            gb = await self.gamechat_login(b, "tok-2")
            sent = []
            for i, (c, uid, nick) in enumerate([(ga, "u1", "User1"), (gb, "u2", "User2"), (ga, "u1", "User1")]):
                await c.send({"action": "message", "message": "m%d" % i, "channel": i})
                got = []
                for r in (ga, gb):
                    m = await r.next(10)
                    self.assertEqual(list(m), ["user_id", "timestamp", "message", "channel", "nickname"], m)
                    self.assertEqual((m["user_id"], m["message"], m["channel"], m["nickname"]),
                                     (uid, "m%d" % i, str(i), nick), m)
                    got.append(m)
                self.assertEqual(got[0], got[1], "the chat object differs between nodes")
                sent.append(got[0])
            for c in (ga, gb):
                await c.send({"action": "history", "limit": 0})
                h = await c.next(10)
                self.assertEqual(h, {"history": sent[::-1]})
                await c.send({"action": "history", "limit": 1, "offset": 1})
                self.assertEqual(await c.next(10), {"history": [sent[1]]})
            # a player logging in on B later reads the same history
            late = await self.gamechat_login(b, "tok-3")
            await late.send({"action": "history", "limit": 2})
            self.assertEqual(await late.next(10), {"history": sent[::-1][:2]})

        self.run_scenario(scenario, 40)

    def test_gamechat_and_livemap_concurrent_writers_agree(self):
        # Writers on both nodes at once: every gamechat player sees one order (the history's),
        # and the map's markers_sync is the same on both nodes, in the order of the events.
        a, b = self.nodes(2, TOKENS_TOML)
        per = 25

        async def scenario():
            ga = await self.gamechat_login(a, "tok-1")
            gb = await self.gamechat_login(b, "tok-2")
            gw = await self.gamechat_login(b, "tok-3")  # a reader on B

            async def chat(c, tag):
                for i in range(per):
                    await c.send({"action": "message", "message": "%s%d" % (tag, i)})

            await asyncio.gather(chat(ga, "a"), chat(gb, "b"))
            views = []
            for c in (ga, gb, gw):
                got = [(await c.next(10))["message"] for _ in range(2 * per)]
                views.append(got)
            self.assertEqual(views[1], views[0], "gamechat order differs between nodes")
            self.assertEqual(views[2], views[0])
            self.assertEqual([m for m in views[0] if m[0] == "a"], ["a%d" % i for i in range(per)])
            await gw.send({"action": "history", "limit": 0})
            h = await gw.next(10)
            self.assertEqual([m["message"] for m in h["history"]][::-1], views[0])

            ma = self._track(await ws_open(a.port, "/map", jdecode, "ma"))
            mb = self._track(await ws_open(b.port, "/map", jdecode, "mb"))
            watch = self._track(await ws_open(a.port, "/map", jdecode, "watch"))

            async def mark(c, uid):
                for i in range(per):
                    await c.send({"type": "marker_add", "marker": {"user_id": uid, "timestamp": i}})

            # A join takes effect asynchronously (after the room's snapshot from Redis): the
            # watcher is a member once it sees a probe marker (re-sent as the same id, 9_0).
            probe = {"type": "marker_add", "marker": {"user_id": 9, "timestamp": 0}}
            for _ in range(50):
                await ma.send(probe)
                try:
                    await watch.next(0.3)
                    break
                except AssertionError:
                    continue
            while True:  # later copies of the probe, if any
                try:
                    await watch.next(0.3)
                except AssertionError:
                    break
            await asyncio.gather(mark(ma, 1), mark(mb, 2))
            events = [await watch.next(10) for _ in range(2 * per)]
            order = ["9_0"] + [e["marker"]["id"] for e in events]
            self.assertEqual(sorted(order[1:]), sorted(["%d_%d" % (u, i) for u in (1, 2) for i in range(per)]))
            for srv in (a, b):
                late = self._track(await ws_open(srv.port, "/map", jdecode, "late"))
                sync = await late.next(10)
                self.assertEqual([m["id"] for m in sync["markers"]], order, "markers_sync on %d" % srv.port)

        self.run_scenario(scenario, 40)

    def test_livemap_markers_positions_chat_cross_nodes(self):
        a, b = self.nodes(2)

        async def scenario():
            ma = self._track(await ws_open(a.port, "/map", jdecode, "ma"))
            mb = self._track(await ws_open(b.port, "/map", jdecode, "mb"))
            await ma.send({"type": "ping", "timestamp": 1})
            self.assertEqual(await ma.next(10), {"type": "pong", "timestamp": 1}, "fresh map sends nothing")
            await mb.send({"type": "ping", "timestamp": 2})
            self.assertEqual(await mb.next(10), {"type": "pong", "timestamp": 2})
            m1 = {"type": "enemy", "x": 1.5, "user_id": 1, "timestamp": "t1"}
            m2 = {"type": "ally", "x": 2, "user_id": 2, "timestamp": 7}
            await ma.send({"type": "marker_add", "marker": m1})
            r = await mb.next(10)
            self.assertEqual(r, {"type": "marker_added", "marker": dict(m1, id="1_t1")})
            await mb.send({"type": "marker_add", "marker": m2})
            r = await ma.next(10)
            self.assertEqual(r, {"type": "marker_added", "marker": dict(m2, id="2_7")})
            p1 = {"type": "position_update", "player": {"user_id": 5, "username": "P5", "x": 1.0, "y": 2.0}}
            p2 = {"type": "position_update", "player": {"user_id": 6, "username": "P6", "x": 3.0, "y": 4.0}}
            await mb.send(p1)
            self.assertEqual(await ma.next(10), p1)
            await ma.send(p2)
            self.assertEqual(await mb.next(10), p2)
            p1b = {"type": "position_update", "player": {"user_id": 5, "username": "P5", "x": 9.0, "y": 9.0}}
            await ma.send(p1b)
            self.assertEqual(await mb.next(10), p1b)
            chat = {"type": "chat_message", "username": "Alice", "message": "hi"}
            await mb.send(chat)
            self.assertEqual(await ma.next(10), chat)
            # the senders got nothing of their own
            for c, t in ((ma, 3), (mb, 4)):
                await c.send({"type": "ping", "timestamp": t})
                self.assertEqual(await c.next(10), {"type": "pong", "timestamp": t})
            # A replaced marker keeps its place; a removed one goes; a newcomer on either node
            # gets the same syncs.
            m1b = dict(m1, x=99)
            await mb.send({"type": "marker_add", "marker": m1b})
            self.assertEqual(await ma.next(10), {"type": "marker_added", "marker": dict(m1b, id="1_t1")})
            m3 = {"type": "obj", "user_id": 3, "timestamp": 3}
            await ma.send({"type": "marker_add", "marker": m3})
            self.assertEqual((await mb.next(10))["type"], "marker_added")
            await ma.send({"type": "marker_remove", "marker_id": "2_7"})
            self.assertEqual(await mb.next(10), {"type": "marker_removed", "marker_id": "2_7"})
            want_markers = [dict(m1b, id="1_t1"), dict(m3, id="3_3")]
            want_pos = [p1b["player"], p2["player"]]
            for srv in (a, b):
                late = self._track(await ws_open(srv.port, "/map", jdecode, "late"))
                self.assertEqual(await late.next(10), {"type": "markers_sync", "markers": want_markers},
                                 "markers_sync on %d" % srv.port)
                self.assertEqual(await late.next(10), {"type": "positions_sync", "positions": want_pos},
                                 "positions_sync on %d" % srv.port)

        self.run_scenario(scenario, 40)



    def test_first_replies_wait_for_the_join(self):
        # Regression (CI, stop 18): a livemap client on the node that did not mirror the map yet
        # got its pong before the join (a Redis round trip) was in effect, then `markers_sync`
        # instead of the `marker_added` a marker added after that pong should bring. The join now
        # holds the connection's input: the seed's order (sync, then replies) on every node.
        a, b = self.nodes(2)

        async def scenario():
            ma = self._track(await ws_open(a.port, "/map", jdecode, "ma"))
            added = []
            for i in range(12):
                # Alone on node b: each connection makes node b load the map from Redis again.
                harness.wait_until(lambda: b.health()["cluster"]["rooms_subscribed"] == 0, timeout=10,
                                   what="node b left the map's channel")
                mb = await ws_open(b.port, "/map", jdecode, "mb%d" % i)
                await mb.send({"type": "ping", "timestamp": i})
                first = await mb.next(10)
                if added:
                    self.assertEqual(first, {"type": "markers_sync", "markers": added},
                                     "round %d: the sync first" % i)
                    first = await mb.next(10)
                self.assertEqual(first, {"type": "pong", "timestamp": i}, "round %d" % i)
                m = {"type": "t", "user_id": 1, "timestamp": i}
                await ma.send({"type": "marker_add", "marker": m})
                added.append(dict(m, id="1_%d" % i))
                self.assertEqual(await mb.next(10), {"type": "marker_added", "marker": added[-1]},
                                 "round %d: a marker added after the pong" % i)
                await mb.close()

            for path in (CHAT_TEXT, CHAT_JSON):
                u1 = self._track(await chat_connect(a.port, path))
                for i in range(8):
                    harness.wait_until(lambda: b.health()["cluster"]["rooms_subscribed"] == 0,
                                       timeout=10, what="node b left the chatroom's channel")
                    c = await chat_connect(b.port, path, greet=False)
                    await c.send("!ping")
                    await c.send("!who")
                    body, _ = await c.next(10)
                    m = GREETING_RE.match(body)
                    self.assertTrue(m, "round %d, %s: the greeting first, got %r" % (i, path, body))
                    await c.expect("pong!")
                    body, _ = await c.next(10)
                    self.assertEqual(body, "Connected Users: %s, %s" % (u1.name, m.group(1)))
                    await u1.expect("%s has connected!" % m.group(1))
                    await c.close()
                    await u1.expect("%s has disconnected!" % m.group(1))

        self.run_scenario(scenario, 90)


class FaultClusterTest(ClusterCase):
    REDIS_KW = {"appendonly": True}  # what survives a Redis restart is what Redis wrote to disk

    def wait_redis(self, nodes, state, timeout=15.0):
        for srv in nodes:
            harness.wait_until(lambda: srv.health()["cluster"]["redis"] == state, timeout=timeout,
                               what="redis %s on node %d" % (state, srv.port))

    def test_redis_restart_publish_refused_join_local_then_resume(self):
        a, b = self.nodes(2, HUB_TOML + TOKENS_TOML)
        room = "rr-" + uuid.uuid4().hex[:8]

        async def scenario():
            ca = await self.client(a, "ca")
            cb = await self.client(b, "cb")
            resumer = await self.client(b, "resumer")
            for c in (ca, cb, resumer):
                await c.join(room, presence=True)
            for i in range(5):
                await self.publish_ok(ca if i % 2 else cb, room, {"i": i})
            await resumer.wait_for(lambda inbox: len([m for m in inbox if m.get("type") == "message"]) >= 5,
                                   10, "5 messages")
            last_seen = max(m["seq"] for m in resumer.inbox if m.get("type") == "message")
            self.assertEqual(last_seen, 5)
            await resumer.close()

            await ca.wait_for(lambda inbox: len([m for m in inbox if m.get("type") == "message"]) >= 5,
                              10, "5 messages")
            ca.pop_all(lambda m: m.get("type") == "message")
            self.redis.stop()
            self.wait_redis((a, b), "degraded")
            # Publishes are refused with an error reply, not silently dropped. Regression: a
            # non-persistent native room got no reply at all. Recorded here and asserted at the
            # end so the rest of the scenario still runs.
            problems = []
            for c in (ca, cb):
                try:
                    r = await c.req("publish", room=room, data={"during": "outage"}, timeout=3)
                except AssertionError as e:
                    problems.append("%s: publish during the outage: %s" % (c.name, str(e)[:120]))
                    continue
                self.assertEqual(r.get("type"), "error", "%s: publish during the outage: %r" % (c.name, r))
                self.assertIsInstance(r.get("code"), str, r)
                self.assertIsInstance(r.get("message"), str, r)
            # Local joins still complete (on a known room and on a new one).
            la = await self.client(a, "la")
            r = await la.join(room, presence=True)
            self.assertEqual(r.get("type"), "joined", r)
            lb = await self.client(b, "lb")
            r = await lb.join("fresh-" + room, presence=True)
            self.assertEqual(r.get("type"), "joined", r)
            self.assertEqual(await ca.quiet(lambda m: m.get("type") == "message", 0.3), [])

            self.redis.start()
            self.wait_redis((a, b), "ok", timeout=20)
            for srv in (a, b):
                self.assertGreaterEqual(srv.health()["cluster"]["reconnects"], 1)
            # Delivery resumes across nodes; the member that joined during the outage was
            # re-announced and receives from the other node too.
            for c in (ca, cb, la):
                c.pop_all(lambda m: m.get("type") == "message")
            for i in range(5, 10):
                await self.publish_ok(ca if i % 2 else cb, room, {"i": i}, timeout=10)
            for c in (ca, cb, la):
                await c.wait_for(lambda inbox: len([m for m in inbox if m.get("type") == "message"]) >= 5,
                                 10, "5 messages after the restart")
                got = [m for m in c.inbox if m.get("type") == "message"]
                self.assertEqual([(m["seq"], m["data"]["i"]) for m in got], [(i + 1, i) for i in range(5, 10)],
                                 c.name)
            want = sorted((c.uid, c.nick) for c in (ca, cb, la))
            for c in (ca, cb):
                for _ in range(100):
                    if await presence_of(c, room) == want:
                        break
                    await asyncio.sleep(0.1)
                self.assertEqual(await presence_of(c, room), want, "presence on %s after the restart" % c.name)
            # A client resuming on the other node with since=<last seen> gets exactly the rest.
            back = await self.client(a, "resumer-back")
            r = await back.join(room, since=last_seen)
            self.assertEqual(r.get("seq"), 10, r)
            await back.wait_for(lambda inbox: len([m for m in inbox if m.get("type") == "message"]) >= 5,
                                10, "resumed messages")
            await asyncio.sleep(0.2)
            self.assertEqual([m["seq"] for m in back.inbox if m.get("type") == "message"], list(range(6, 11)))
            self.assertEqual(problems, [])

        self.run_scenario(scenario, 90)

    def test_acked_history_survives_node_kill(self):
        a, b = self.nodes(2, HUB_TOML + TOKENS_TOML)
        room = "dur-" + uuid.uuid4().hex[:8]

        async def scenario():
            ca = await self.client(a, "ca")
            await ca.join(room)
            n = 50
            for i in range(n):
                await ca.send({"op": "publish", "room": room, "id": "p%d" % i, "data": {"i": i}, "echo": False})
            acked = []
            for i in range(n):
                r = await ca.take(lambda m, i=i: m.get("id") == "p%d" % i, 10, "ack p%d" % i)
                self.assertEqual(r.get("type"), "ack", r)
                acked.append(i)
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait(5)
            # Read on B by a member (a non-member's query is test_queries_on_a_node_without_members).
            cb = await self.client(b, "cb")
            r = await cb.join(room, history=1000)
            self.assertEqual(r.get("seq"), n, r)
            await cb.wait_for(lambda inbox: len([m for m in inbox if m.get("type") == "message"]) >= n, 10,
                              "history replay")
            self.assertEqual([m["data"]["i"] for m in cb.inbox if m.get("type") == "message"], acked)
            r = await cb.req("history", room=room, limit=1000)
            self.assertEqual(r.get("seq"), n, r)
            self.assertEqual([m["data"]["i"] for m in r["messages"]][::-1], acked)

        self.run_scenario(scenario, 40)


    def test_profiles_during_redis_outage(self):
        a, b = self.nodes(2, HUB_TOML + TOKENS_TOML)
        room = "ps-" + uuid.uuid4().hex[:8]

        async def scenario():
            ga = await self.gamechat_login(a, "tok-1")
            gb = await self.gamechat_login(b, "tok-2")
            ma = self._track(await ws_open(a.port, "/map", jdecode, "ma"))
            mb = self._track(await ws_open(b.port, "/map", jdecode, "mb"))
            ta = self._track(await chat_connect(a.port, CHAT_JSON))
            ca = await self.client(a, "ca")
            await ca.join(room)
            self.redis.stop()
            self.wait_redis((a, b), "degraded")
            problems = []
            # gamechat and livemap answer with their store-failure errors
            await ga.send({"action": "message", "message": "during"})
            self.assertEqual(await ga.next(10), {"error": "the message could not be stored, so it was not sent"})
            await ma.send({"type": "marker_add", "marker": {"user_id": 1, "timestamp": 2}})
            self.assertEqual(await ma.next(10),
                             {"type": "error", "message": "the marker could not be stored; it was not added"})
            # native state.set: Regression (as publish): there was no reply at all
            try:
                r = await ca.req("state.set", room=room, key="k", value=1, timeout=3)
                self.assertEqual(r.get("type"), "error", r)
            except AssertionError as e:
                problems.append("native state.set during the outage: %s" % str(e)[:100])
            # a chatroom user connecting on B meanwhile is announced on A once Redis is back
            tb = self._track(await chat_connect(b.port, CHAT_JSON))
            self.redis.start()
            self.wait_redis((a, b), "ok", timeout=20)
            await ta.expect("%s has connected!" % tb.name, timeout=10)
            self.assertEqual(await ta.who(), [ta.name, tb.name])
            # and everything crosses nodes again
            await ga.send({"action": "message", "message": "after"})
            for c in (ga, gb):
                m = await c.next(10)
                self.assertEqual((m.get("user_id"), m.get("message")), ("u1", "after"), m)
            await mb.send({"type": "marker_add", "marker": {"user_id": 2, "timestamp": 3}})
            self.assertEqual(await ma.next(10),
                             {"type": "marker_added", "marker": {"user_id": 2, "timestamp": 3, "id": "2_3"}})
            await tb.send("back")
            await ta.expect("%s: back" % tb.name, "USER")
            self.assertEqual(problems, [])

        self.run_scenario(scenario, 60)

    def test_state_and_profile_history_survive_node_kill(self):
        a, b = self.nodes(2, HUB_TOML + TOKENS_TOML)
        room = "ks-" + uuid.uuid4().hex[:8]

        async def scenario():
            ca = await self.client(a, "ca")
            await ca.join(room)
            for i in range(3):
                r = await ca.req("state.set", room=room, key="k%d" % i, value={"v": i})
                self.assertEqual(r.get("type"), "ack", r)
            ga = await self.gamechat_login(a, "tok-1")
            for i in range(3):
                await ga.send({"action": "message", "message": "g%d" % i})
                await ga.next(10)
            mwatch = self._track(await ws_open(a.port, "/map", jdecode, "mwatch"))
            ma = self._track(await ws_open(a.port, "/map", jdecode, "ma"))
            for i in range(3):
                await ma.send({"type": "marker_add", "marker": {"user_id": i, "timestamp": 1}})
                await mwatch.next(10)  # seen by others: the marker is in effect
            await ma.send({"type": "position_update", "player": {"user_id": 7, "x": 1}})
            await mwatch.next(10)
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait(5)
            cb = await self.client(b, "cb")
            r = await cb.join(room)
            self.assertEqual(r.get("state"), {"k0": {"v": 0}, "k1": {"v": 1}, "k2": {"v": 2}}, r)
            gb = await self.gamechat_login(b, "tok-2")
            await gb.send({"action": "history", "limit": 0})
            h = await gb.next(10)
            self.assertEqual([m["message"] for m in h["history"]], ["g2", "g1", "g0"], h)
            mb = self._track(await ws_open(b.port, "/map", jdecode, "mb"))
            self.assertEqual(await mb.next(10), {"type": "markers_sync", "markers": [
                {"user_id": i, "timestamp": 1, "id": "%d_1" % i} for i in range(3)]})
            # positions are written behind: the last one may be lost, but sent ones usually arrive
            m = await mb.next(10)
            self.assertEqual(m.get("type"), "positions_sync", m)

        self.run_scenario(scenario, 40)

    def test_stalled_node_comes_back_with_its_members(self):
        # Regression: after a stall longer than node_ttl_ms the node's still-connected members
        # were dropped from presence on every node (its own included) and never came back.
        a, b = self.nodes(2, HUB_TOML + TOKENS_TOML)
        room = "stall-" + uuid.uuid4().hex[:8]

        async def scenario():
            ca = await self.client(a, "ca")
            await ca.join(room, presence=True)
            cb = await self.client(b, "cb")
            await cb.join(room, presence=True)
            want = sorted([(ca.uid, ca.nick), (cb.uid, cb.nick)])
            for _ in range(50):
                if await presence_of(ca, room) == want:
                    break
                await asyncio.sleep(0.1)
            self.assertEqual(await presence_of(ca, room), want)
            ca.pop_all(lambda m: m.get("type") == "presence")
            b.proc.send_signal(signal.SIGSTOP)
            try:
                await ca.take(lambda m: m.get("type") == "presence" and m.get("event") == "leave",
                              NODE_TTL_S + 5, "leave of the stalled node's member")
            finally:
                b.proc.send_signal(signal.SIGCONT)
            harness.wait_until(lambda: b.health()["cluster"]["nodes_seen"] == 2, timeout=10,
                               what="node B back in the cluster")
            # cb is still connected and still gets messages...
            await self.publish_ok(ca, room, {"after": "stall"})
            m = await cb.take_type("message", 10)
            self.assertEqual(m["data"], {"after": "stall"})
            # ...so it must be a member again, on both nodes, and A hears it come back.
            await ca.take(lambda m: m.get("type") == "presence" and m.get("event") == "join", 10,
                          "cb announced again after the stall")
            self.assertEqual(await presence_of(ca, room), want)
            self.assertEqual(await presence_of(cb, room), want)

        self.run_scenario(scenario, 40)

    def test_node_restart_sees_what_happened_meanwhile(self):
        a, b = self.nodes(2, HUB_TOML + TOKENS_TOML)

        async def first():
            ga = await self.gamechat_login(a, "tok-1")
            gb = await self.gamechat_login(b, "tok-2")
            for i in range(3):
                await ga.send({"action": "message", "message": "g%d" % i})
                await ga.next(10)
                await gb.next(10)
            ma = self._track(await ws_open(a.port, "/map", jdecode, "ma"))
            mb = self._track(await ws_open(b.port, "/map", jdecode, "mb"))
            await ma.send({"type": "marker_add", "marker": {"user_id": 1, "timestamp": 1}})
            await mb.next(10)

        async def while_down():
            ga = await self.gamechat_login(a, "tok-1")
            for i in range(3, 5):
                await ga.send({"action": "message", "message": "g%d" % i})
                await ga.next(10)
            ma = self._track(await ws_open(a.port, "/map", jdecode, "ma"))
            await ma.next(10)  # markers_sync
            await ma.send({"type": "marker_remove", "marker_id": "1_1"})
            await ma.send({"type": "marker_add", "marker": {"user_id": 2, "timestamp": 2}})
            await ma.send({"type": "ping", "timestamp": 0})
            self.assertEqual(await ma.next(10), {"type": "pong", "timestamp": 0})

        async def after():
            gb = await self.gamechat_login(b, "tok-2")
            await gb.send({"action": "history", "limit": 0})
            h = await gb.next(10)
            self.assertEqual([m["message"] for m in h["history"]], ["g4", "g3", "g2", "g1", "g0"])
            mb = self._track(await ws_open(b.port, "/map", jdecode, "mb"))
            self.assertEqual(await mb.next(10), {"type": "markers_sync", "markers": [
                {"user_id": 2, "timestamp": 2, "id": "2_2"}]})

        self.run_scenario(first, 30)
        self.assertEqual(b.stop(), 0)
        b._stderr_file.close()  # start() opens a new one
        self._clients = []
        self.run_scenario(while_down, 30)
        self._clients = []
        b.start()
        self.run_scenario(after, 30)


class StalledRedisTest(ClusterCase):
    def test_join_waiting_for_a_stalled_redis_is_served_once_the_node_gives_up(self):
        # Regression: a join waits for the room's snapshot, and holds its connection's input
        # meanwhile. When the node gave up on a stalled Redis (no answer past node_ttl_ms), joins
        # still waiting stayed queued until Redis answered again, so the connection hung. They
        # are now served from the node's mirror, as joins made while Redis is unreachable are.
        a, = self.nodes(1, HUB_TOML + TOKENS_TOML)
        room = "wait-" + uuid.uuid4().hex[:8]

        async def scenario():
            c = await self.client(a, "c")
            self.redis.pause()
            try:
                await c.send({"op": "join", "room": room, "id": "j"})
                await c.send({"op": "ping", "id": "p"})
                r = await c.take(lambda m: m.get("id") == "j", 3 * NODE_TTL_S + 5, "joined")
                self.assertEqual(r.get("type"), "joined", r)
                self.assertEqual((await c.take(lambda m: m.get("id") == "p", 5))["type"], "pong")
                self.assertEqual(a.health()["cluster"]["redis"], "degraded")
            finally:
                self.redis.resume()
            harness.wait_until(lambda: a.health()["cluster"]["redis"] == "ok", timeout=20,
                               what="node a back on Redis")
            r = await c.req("presence", room=room)
            self.assertEqual([m["session"] for m in r["members"]], [c.sid])

        self.run_scenario(scenario, 60)

    def test_stalled_redis_bounds_memory(self):
        # Regression: with Redis stopped (SIGSTOP, connections open) every event was buffered
        # for it without a cap: the node's memory grew with what clients sent.
        a, _ = self.nodes(2, "max_queue_bytes = 1048576\n" + HUB_TOML + TOKENS_TOML)
        room = "stl-" + uuid.uuid4().hex[:8]
        n, size = 12000, 4000

        async def scenario():
            ca = await self.client(a, "ca")
            await ca.join(room)
            rss0 = rss_kb(a.proc.pid)
            self.redis.proc.send_signal(signal.SIGSTOP)
            try:
                big = "x" * size
                for i in range(n):
                    await ca.send({"op": "publish", "room": room, "id": i, "data": big, "echo": False})
                    if i % 1000 == 999:
                        await asyncio.sleep(0.05)
                harness.wait_until(lambda: rss_kb(a.proc.pid) - rss0 > 0, timeout=2)
                await asyncio.sleep(1.0)
                grown = rss_kb(a.proc.pid) - rss0
                answered = len([m for m in ca.inbox if "id" in m])
            finally:
                self.redis.proc.send_signal(signal.SIGCONT)
            # every publish is answered once Redis is back (ack or error, none lost)
            await ca.wait_for(lambda inbox: len([m for m in inbox if "id" in m]) >= n, 30, "%d answers" % n)
            if not harness.sanitized():  # ASan's quarantine keeps freed memory resident
                self.assertLess(grown, 24 * 1024,
                                "RSS grew by %d KB while Redis was stalled and %d KB were published "
                                "(max_queue_bytes = 1 MiB; %d publishes answered meanwhile)"
                                % (grown, n * size // 1024, answered))

        self.run_scenario(scenario, 60)


class ChurnTest(ClusterCase):
    def test_join_leave_churn_on_both_nodes_settles_to_one_presence(self):
        # Members join and leave quickly on both nodes (each node repeatedly dropping to no local
        # member, so its mirror stops and starts again) while messages flow; at the end every
        # node lists exactly the members that stayed, and a member that stayed throughout got
        # every message once, in order.
        a, b = self.nodes(2, HUB_TOML + TOKENS_TOML)
        room = "churn-" + uuid.uuid4().hex[:8]

        async def scenario():
            wa = await self.client(a, "wa")
            await wa.join(room, presence=True)
            churners = []
            for srv, tag in ((a, "a"), (b, "b")):
                for i in range(3):
                    churners.append(await self.client(srv, "ch-%s%d" % (tag, i)))
            pub = churners[3]  # on node B: its mirror comes and goes

            async def churn(c, rounds, stay):
                for r in range(rounds):
                    await c.join(room, presence=True, history=5)
                    await self.publish_ok(c, room, {"who": c.name, "r": r})
                    if r < rounds - 1 or not stay:
                        left = await c.req("leave", room=room)
                        self.assertEqual(left.get("type"), "left", left)

            stayers = {churners[0].name, churners[4].name}
            await asyncio.gather(*(churn(c, 8, c.name in stayers) for c in churners))
            want = sorted([(wa.uid, wa.nick)] + [(c.uid, c.nick) for c in churners if c.name in stayers])
            for c in (wa, pub):
                got = None
                for _ in range(100):
                    got = await presence_of(c, room)
                    if got == want:
                        break
                    await asyncio.sleep(0.1)
                self.assertEqual(got, want, "presence on %s's node after the churn" % c.name)
            # wa's view: every message once, seq 1..N in order (N = 6 churners x 8 rounds).
            n = 6 * 8
            await wa.wait_for(lambda inbox: len([m for m in inbox if m.get("type") == "message"]) >= n,
                              15, "%d messages" % n)
            await asyncio.sleep(0.2)
            self.assertEqual([m["seq"] for m in wa.inbox if m.get("type") == "message"], list(range(1, n + 1)))
            # and its join/leave events add up to the final list
            present = {}
            for m in wa.inbox:
                if m.get("type") == "presence" and m.get("event") in ("join", "leave"):
                    u = m["member"].get("user_id")
                    present[u] = present.get(u, 0) + (1 if m["event"] == "join" else -1)
            self.assertEqual(sorted(u for u, k in present.items() if k), sorted(u for u, _ in want if u != wa.uid),
                             "join/leave events on node A do not add up: %r" % present)
            self.assertTrue(all(k in (0, 1) for k in present.values()), present)

        self.run_scenario(scenario, 60)


class LossyRedisTest(ClusterCase):
    """Redis without persistence (as the harness starts it by default): a restart loses the data."""

    def test_redis_restart_with_data_lost_keeps_seq_increasing(self):
        # Regression: after Redis came back empty the room's seq started again at 1, so members
        # saw seq go backwards and a client resuming with since=<last seen> was silently given
        # nothing.
        a, b = self.nodes(2, HUB_TOML + TOKENS_TOML)
        room = "lossy-" + uuid.uuid4().hex[:8]

        async def scenario():
            ca = await self.client(a, "ca")
            cb = await self.client(b, "cb")
            for c in (ca, cb):
                await c.join(room)
            for i in range(5):
                await self.publish_ok(ca, room, {"i": i})
            await cb.wait_for(lambda inbox: len([m for m in inbox if m.get("type") == "message"]) >= 5,
                              10, "5 messages")
            reconnects = [srv.health()["cluster"]["reconnects"] for srv in (a, b)]
            self.redis.stop()
            self.redis.start()
            for srv, r0 in zip((a, b), reconnects):
                harness.wait_until(lambda: srv.health()["cluster"]["reconnects"] > r0
                                   and srv.health()["cluster"]["redis"] == "ok", timeout=20,
                                   what="node %d back on redis" % srv.port)
            for i in range(5, 8):
                r = await ca.req("publish", room=room, data={"i": i}, timeout=10)
                if r.get("type") != "ack":  # refused is acceptable; a rewound seq is not
                    continue
            await asyncio.sleep(0.5)
            for c in (ca, cb):
                seqs = [m["seq"] for m in c.inbox if m.get("type") == "message"]
                self.assertEqual(seqs, sorted(set(seqs)), "%s: seq went backwards: %r" % (c.name, seqs))
            late = await self.client(b, "late")
            r = await late.join(room, since=5)
            self.assertGreaterEqual(r.get("seq"), 5, "joined after the loss: %r" % r)

        self.run_scenario(scenario, 60)


class JoinRaceTest(ClusterCase):
    def test_join_with_history_while_the_other_node_publishes(self):
        # joined, then the replay, then live messages: no gap and no duplicate at the seam, for
        # joins on a node that has not mirrored the room yet and on one that has. The publisher
        # keeps going until every join is done, so the joins land mid-stream.
        a, b = self.nodes(2, HUB_TOML + TOKENS_TOML)
        room = "race-" + uuid.uuid4().hex[:8]

        async def scenario():
            pub = await self.client(a, "pub")
            await pub.join(room)
            all_joined = asyncio.Event()
            count = [0]

            async def publish():
                i = 0
                while i < 30 or not all_joined.is_set():
                    self.assertLess(i, 3000, "joins did not finish")
                    await pub.send({"op": "publish", "room": room, "id": "r%d" % i, "data": {"i": i},
                                    "echo": False})
                    if i % 5 == 4:
                        await pub.take(lambda m, i=i: m.get("id") == "r%d" % i, 10, "ack r%d" % i)
                    i += 1
                count[0] = i
                if (i - 1) % 5 != 4:
                    await pub.take(lambda m, i=i: m.get("id") == "r%d" % (i - 1), 10, "last ack")

            task = asyncio.ensure_future(publish())
            joiners = []
            for j in range(6):
                await asyncio.sleep(0.05)
                c = await self.client(b, "j%d" % j)
                c.since = None if j % 2 else 3 * j
                r = await (c.join(room, history=1000) if c.since is None else c.join(room, since=c.since))
                c.joined = r
                joiners.append(c)
            all_joined.set()
            await asyncio.wait_for(task, 40)
            total = count[0]
            sys.stderr.write("(joined at seq %s of %d)\n" % ([c.joined["seq"] for c in joiners], total))
            self.assertTrue(any(0 < c.joined["seq"] < total for c in joiners))
            for c in joiners:
                await c.wait_for(lambda inbox: any(m.get("type") == "message" and m.get("seq") == total
                                                   for m in inbox), 15, "the last message")
                await asyncio.sleep(0.1)
                got = [m for m in c.inbox if m.get("type") == "message"]
                # history = 500: what is older has left the history by the join
                first = max(1 if c.since is None else c.since + 1, c.joined["seq"] - 500 + 1)
                self.assertEqual([m["seq"] for m in got], list(range(first, total + 1)),
                                 "%s (joined at seq %d, since %r): gap or duplicate"
                                 % (c.name, c.joined["seq"], c.since))
                self.assertEqual([m["data"]["i"] for m in got], list(range(first - 1, total)))

        self.run_scenario(scenario, 60)

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def presence_of(c, room):
    """The presence list of `room` as c's node has it: sorted [(user_id, nickname)]."""
    r = await c.req("presence", room=room)
    return sorted((m.get("user_id") or "", m.get("nickname") or "") for m in r["members"])

if __name__ == "__main__":
    harness.main()
