#!/usr/bin/python3
"""Cluster over Redis, endpoints and identities across nodes: the bridge profile's client ids and
its bridge, the native protocol's endpoints (register / attach / relay), and direct sends (native
`send`, chatroom `!pm`) to members of other nodes. Each test
starts its own redis-server (redis_harness) and nodes with --threads 2.

Run: /usr/bin/python3 tests/integration/test_cluster_endpoints.py --binary build/ringcast --backend epoll
"""

import asyncio
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from redis_harness import ClusterTestCase, wait_cluster  # noqa: E402

import websockets  # noqa: E402


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def connect(srv, path):
    return await websockets.connect("ws://127.0.0.1:%d%s" % (srv.port, path), ping_interval=None,
                                    open_timeout=10, close_timeout=3)


async def recv_json(ws, timeout=5):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_type(ws, t, timeout=5):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        m = await recv_json(ws, max(0.01, deadline - loop.time()))
        if m.get("type") == t:
            return m


async def bridge_client(srv):
    ws = await connect(srv, "/")
    await ws.send(json.dumps({"type": "connection", "origin": "test"}))
    reply = await recv_json(ws)
    return ws, reply["data"]["id"]


class ClusterCase(ClusterTestCase):
    def bridge_health(self, srv):
        h = srv.health()
        return int(h["connected_clients"]), h["bridge_connected"] in (True, "true")


class BridgeClusterTest(ClusterCase):
    def test_smallest_free_id_across_nodes_and_bridge_anywhere(self):
        a, b = self.nodes(2)

        async def scenario():
            # Ids interleave over the nodes: one sequence for the cluster.
            c1, i1 = await bridge_client(a)
            c2, i2 = await bridge_client(b)
            c3, i3 = await bridge_client(a)
            self.assertEqual([i1, i2, i3], [1, 2, 3])
            # The smallest free id is reused, whichever node freed it and whichever asks.
            await c2.close()
            await asyncio.sleep(0)
            for _ in range(100):
                if self.bridge_health(a)[0] == 2 and self.bridge_health(b)[0] == 2:
                    break
                await asyncio.sleep(0.05)
            c4, i4 = await bridge_client(a)
            self.assertEqual(i4, 2)
            # The bridge on node b; clients on node a reach it, and it reaches them by id.
            br = await connect(b, "/")
            await br.send(json.dumps({"type": "bridge"}))
            for _ in range(100):
                if all(self.bridge_health(s) == (3, True) for s in (a, b)):
                    break
                await asyncio.sleep(0.05)
            for s in (a, b):
                self.assertEqual(self.bridge_health(s), (3, True), "node %d" % s.port)
            for ws, i in ((c1, i1), (c3, i3), (c4, i4)):
                text = json.dumps({"id": i, "fireworks": [{"outer_layer": "circle"}]})
                await ws.send(text)
                self.assertEqual(await asyncio.wait_for(br.recv(), 5), text)
            for ws, i in ((c1, i1), (c4, i4)):
                text = json.dumps({"id": i, "data": {"id": i, "status": "ready"}})
                await br.send(text)
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), text)
            # The bridge goes: every node knows at once.
            await br.close()
            for _ in range(100):
                if not any(self.bridge_health(s)[1] for s in (a, b)):
                    break
                await asyncio.sleep(0.05)
            for s in (a, b):
                self.assertFalse(self.bridge_health(s)[1], "node %d still has a bridge" % s.port)
            for ws in (c1, c3, c4):
                await ws.close()

        run(scenario())

    def test_killed_node_frees_its_ids_and_bridge(self):
        a, b = self.nodes(2, node_ttl_ms=2000)

        async def scenario():
            c1, i1 = await bridge_client(a)
            c2, i2 = await bridge_client(b)
            br = await connect(b, "/")
            await br.send(json.dumps({"type": "bridge"}))
            for _ in range(100):
                if self.bridge_health(a) == (2, True):
                    break
                await asyncio.sleep(0.05)
            self.assertEqual(self.bridge_health(a), (2, True))
            b.kill()
            # Within node_ttl_ms (+ a heartbeat) node a frees b's id and forgets its bridge.
            for _ in range(120):
                if self.bridge_health(a) == (1, False):
                    break
                await asyncio.sleep(0.05)
            self.assertEqual(self.bridge_health(a), (1, False))
            c3, i3 = await bridge_client(a)
            self.assertEqual(i3, i2, "the dead node's id is free again")
            for ws in (c1, c3):
                await ws.close()

        run(scenario())

    def test_redis_down_refuses_new_clients_with_1013(self):
        (a,) = self.nodes(1)

        async def scenario():
            c1, i1 = await bridge_client(a)
            self.assertEqual(i1, 1)
            self.r.stop()
            wait_cluster(a, "degraded", lambda c: c["redis"] == "degraded", timeout=10)
            ws = await connect(a, "/")
            await ws.send(json.dumps({"type": "connection"}))
            with self.assertRaises(websockets.ConnectionClosed) as cm:
                await asyncio.wait_for(ws.recv(), 5)
            self.assertEqual(cm.exception.rcvd.code, 1013)
            await c1.close()

        run(scenario())


async def op(ws, **req):
    await ws.send(json.dumps(req))


class NativeEndpointClusterTest(ClusterCase):
    def test_register_attach_relay_across_nodes(self):
        a, b = self.nodes(2)

        async def scenario():
            owner = await connect(a, "/ws")
            await op(owner, op="register", name="booth-1", id=1)
            self.assertEqual(await recv_json(owner), {"type": "registered", "id": 1, "name": "booth-1"})
            # The name is the cluster's: another node cannot take it.
            other = await connect(b, "/ws")
            await op(other, op="register", name="booth-1", id="x")
            m = await recv_json(other)
            self.assertEqual((m["type"], m["code"], m["id"]), ("error", "name_taken", "x"), m)
            # Peers on both nodes; each learns the owner's id as its node knows it, and the owner
            # learns each peer's id as node a knows it.
            far = await connect(b, "/ws")
            await op(far, op="attach", name="booth-1", id=2)
            att_far = await recv_json(far)
            self.assertEqual((att_far["type"], att_far["id"], att_far["name"]), ("attached", 2, "booth-1"))
            ev = await recv_type(owner, "peer")
            self.assertEqual((ev["event"], ev["name"]), ("attached", "booth-1"), ev)
            far_id = ev["peer"]
            self.assertEqual(int(far_id) >> 48, 0xFFFF, "a member of another node")
            near = await connect(a, "/ws")
            await op(near, op="attach", name="booth-1")
            att_near = await recv_json(near)
            near_id = (await recv_type(owner, "peer"))["peer"]
            self.assertNotEqual(int(near_id) >> 48, 0xFFFF)
            self.assertNotEqual(att_far["endpoint"], att_near["endpoint"])
            # Peer -> endpoint, from either node; "from" is the id the owner knows.
            await op(far, op="relay", data={"n": 1})
            got = await recv_type(owner, "relay")
            self.assertEqual((got["from"], got["data"]), (far_id, {"n": 1}))
            await op(near, op="relay", data={"n": 2})
            self.assertEqual((await recv_type(owner, "relay"))["from"], near_id)
            # Owner -> one peer (by the id it was told) and -> all; each peer sees the owner as the
            # endpoint id its attach returned.
            await op(owner, op="relay", name="booth-1", to=far_id, data="one")
            got = await recv_type(far, "relay")
            self.assertEqual((got["from"], got["name"], got["data"]),
                             (att_far["endpoint"], "booth-1", "one"))
            await op(owner, op="relay", name="booth-1", data="all")
            for ws, att in ((far, att_far), (near, att_near)):
                got = await recv_type(ws, "relay")
                self.assertEqual((got["from"], got["data"]), (att["endpoint"], "all"))
            # The far peer goes: the owner is told; the owner goes: the near peer is told, and the
            # name is free for anyone.
            await far.close()
            ev = await recv_type(owner, "peer")
            self.assertEqual((ev["event"], ev["peer"]), ("detached", far_id))
            await owner.close()
            ev = await recv_type(near, "endpoint")
            self.assertEqual((ev["event"], ev["name"]), ("gone", "booth-1"))
            await op(other, op="register", name="booth-1")
            self.assertEqual((await recv_json(other))["type"], "registered")
            await op(near, op="attach", name="nobody")
            self.assertEqual((await recv_json(near))["code"], "no_such_endpoint")
            for ws in (other, near):
                await ws.close()

        run(scenario())

    def test_killed_owner_node_frees_the_name(self):
        a, b = self.nodes(2, node_ttl_ms=2000)

        async def scenario():
            owner = await connect(a, "/ws")
            await op(owner, op="register", name="svc")
            await recv_type(owner, "registered")
            peer = await connect(b, "/ws")
            await op(peer, op="attach", name="svc")
            await recv_type(peer, "attached")
            a.kill()
            ev = await recv_type(peer, "endpoint", timeout=10)
            self.assertEqual((ev["event"], ev["name"]), ("gone", "svc"))
            again = await connect(b, "/ws")
            await op(again, op="register", name="svc")
            await recv_type(again, "registered")
            for ws in (peer, again):
                await ws.close()

        run(scenario())

    def test_redis_down_refuses_endpoint_changes(self):
        (a,) = self.nodes(1)

        async def scenario():
            ws = await connect(a, "/ws")
            self.r.stop()
            wait_cluster(a, "degraded", lambda c: c["redis"] == "degraded", timeout=10)
            await op(ws, op="register", name="later", id=5)
            m = await recv_json(ws)
            self.assertEqual((m["type"], m["code"], m["id"]), ("error", "store_failed", 5), m)
            await op(ws, op="ping", id=6)
            self.assertEqual((await recv_json(ws))["type"], "pong")
            await ws.close()

        run(scenario())


API_KEY = "cluster-key-0123456789abcdef"
API_CONFIG = ('[api]\nkeys = ["%s"]\n[tokens]\n"tok-a" = { user_id = "u1", nickname = "Alice" }\n'
              '"tok-b" = { user_id = "u2", nickname = "Bob" }\n' % API_KEY)


def api(srv, method, path, body=None):
    data = b"" if body is None else json.dumps(body).encode()
    hdrs = [("Authorization", "apikey " + API_KEY)]
    if data:
        hdrs.append(("Content-Type", "application/json"))
    r = harness.http_request(srv.port, method, path, headers=hdrs, body=data)
    return r, (r.json() if r.body else None)


async def closed_with(ws, timeout=5):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None


class ApiClusterTest(ClusterCase):
    def api_nodes(self, n, **kw):
        return self.nodes(n, extra_config=API_CONFIG, **kw)

    def test_rooms_and_disconnect_cover_the_cluster(self):
        a, b = self.api_nodes(2)

        async def authed(srv, token):
            ws = await connect(srv, "/ws")
            await op(ws, op="auth", token=token)
            await recv_type(ws, "authed")
            return ws

        async def scenario():
            x1 = await authed(a, "tok-a")
            x2 = await authed(b, "tok-a")
            y = await authed(b, "tok-b")
            for ws in (x1, x2, y):
                await op(ws, op="join", room="lobby", presence=True)
                await recv_type(ws, "joined")
            raw = await connect(b, "/raw/only-on-b")
            # Every node's rooms, from either node.
            for srv, me in ((a, "n0"), (b, "n1")):
                r, j = api(srv, "GET", "/api/rooms")
                self.assertEqual(r.status, 200, j)
                self.assertEqual((j["node"], sorted(j["nodes"]), j["nodes_missing"]),
                                 (me, ["n0", "n1"], 0), j)
                rooms = {row["room"]: row for row in j["rooms"]}
                self.assertEqual(rooms["lobby"]["members"], 3, rooms)
                self.assertEqual(rooms["lobby"]["members_per_node"], {"n0": 1, "n1": 2})
                self.assertEqual(rooms["only-on-b"]["members"], 1, rooms)
            # A user's sessions on every node.
            r, j = api(a, "POST", "/api/disconnect", {"user": "u1", "code": 4003, "reason": "ban"})
            self.assertEqual(r.status, 200, j)
            self.assertEqual((j["disconnected"], j["nodes_missing"]), (2, 0), j)
            self.assertEqual(await closed_with(x1), 4003)
            self.assertEqual(await closed_with(x2), 4003)
            # A session of the other node, by the id this node knows it by (its presence list).
            r, j = api(a, "GET", "/api/rooms/lobby/presence")
            remote = [m["session"] for m in j["members"] if m.get("user_id") == "u2"]
            self.assertEqual(len(remote), 1, j)
            self.assertEqual(int(remote[0]) >> 48, 0xFFFF, j)
            r, j = api(a, "POST", "/api/disconnect", {"session": remote[0]})
            self.assertEqual(j["disconnected"], 1, j)
            self.assertEqual(await closed_with(y), 1008)
            await raw.close()

        run(scenario())

    def test_a_stalled_node_is_reported_missing(self):
        a, b = self.api_nodes(2, node_ttl_ms=10000)
        b.send_signal(signal.SIGSTOP)
        self.addCleanup(lambda: b.alive() and b.send_signal(signal.SIGCONT))
        t0 = time.monotonic()
        r, j = api(a, "GET", "/api/rooms")
        took = time.monotonic() - t0
        b.send_signal(signal.SIGCONT)
        self.assertEqual(r.status, 200, j)
        self.assertEqual((j["nodes"], j["nodes_missing"]), (["n0"], 1), j)
        self.assertLess(took, 6, "answered at the time limit, not later")


class DirectSendClusterTest(ClusterCase):
    def test_native_send_to_a_member_of_another_node_and_back(self):
        a, b = self.nodes(2)

        async def scenario():
            x = await connect(a, "/ws")
            y = await connect(b, "/ws")
            await x.send(json.dumps({"op": "join", "room": "dm", "presence": True}))
            await recv_type(x, "joined")
            await y.send(json.dumps({"op": "join", "room": "dm", "presence": True}))
            joined = await recv_type(y, "joined")
            seen_by_x = (await recv_type(x, "presence"))["member"]["session"]
            x_for_y = [m["session"] for m in joined["members"] if int(m["session"]) >> 48 == 0xFFFF]
            self.assertEqual(len(x_for_y), 1, joined)
            await x.send(json.dumps({"op": "send", "to": seen_by_x, "data": {"n": 1}}))
            got = await recv_type(y, "direct")
            self.assertEqual(got["data"], {"n": 1})
            # The sender shows as the id the receiver knows it by: a reply finds it.
            self.assertEqual(got["from"], x_for_y[0])
            await y.send(json.dumps({"op": "send", "to": got["from"], "data": {"n": 2}}))
            back = await recv_type(x, "direct")
            self.assertEqual(back["data"], {"n": 2})
            self.assertEqual(back["from"], seen_by_x)
            await x.close()
            await y.close()

        run(scenario())

    def test_chatroom_pm_reaches_a_user_on_another_node(self):
        a, b = self.nodes(2)

        async def scenario():
            async def name_of(ws):
                m = await recv_json(ws)
                # {"body": "Welcome, <name> (hint: ...)", "origin": "SERVER", ...}
                return m["body"].split(",", 1)[1].split("(", 1)[0].strip()

            # In a cluster a connection is in the room once its greeting arrives (its join is an
            # event Redis orders): u2 connects after that, so u1 is told of u2. (Connecting u2
            # first let u2's join come first once in CI, and u1 was told nothing.)
            u1 = await connect(a, "/chatroom/json")
            n1 = await name_of(u1)
            u2 = await connect(b, "/chatroom/json")
            n2 = await name_of(u2)
            # u1 hears u2 arrive: u2 is in the cluster's presence.
            m = await recv_json(u1)
            self.assertIn(n2, m["body"])
            await u1.send("!pm %s hello there" % n2)
            got = await recv_json(u2)
            self.assertEqual((got["body"], got["origin"]), ("PM <- %s: hello there" % n1, "PRIVATE"), got)
            self.assertEqual((await recv_json(u1))["body"], "PM -> %s: hello there" % n2)
            await u1.close()
            await u2.close()

        run(scenario())


if __name__ == "__main__":
    harness.main()
