#!/usr/bin/python3
"""Bounded retained state: the hub's exact per-room key limits and value sizes, checked on the
room's home core (docs/engine-contract.md [hub], docs/profiles/livemap.md, docs/native-protocol.md).

- livemap: markers ([profiles.livemap] max_markers) under strict durability, with writers on both
  workers racing past the limit, pipelined remove-then-add at the limit, and add/remove of the same
  ids racing across cores; player positions ([profiles.livemap] max_positions, max_position_bytes)
  with the seed-shaped error reply, kept across a restart, and a full default map whose
  positions_sync a default client (1 MiB max_size) still accepts.
- native: [hub] max_state_keys and max_state_value_bytes, error code state_limit, in memory and in
  a persistent room, with writers on both workers racing past the limit.

In every race the final count is exact: never more than the limit, and every refusal accounted.

Run: /usr/bin/python3 tests/integration/test_state_limits.py --binary build/ringcast --backend epoll
"""

import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_livemap import connect, run_async  # noqa: E402
from test_native import NativeCase, _ids, worker_of  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

MiB = 1 << 20


def marker(user_id, ts, description="x"):
    return {"type": "enemy", "x": 1, "y": 2, "user_id": user_id, "description": description,
            "timestamp": ts}


def add(m):
    return {"type": "marker_add", "marker": m}


def player(user_id, name=None, pad=""):
    return {"user_id": user_id, "username": name or "P%s" % user_id, "x": 450, "y": 320,
            "team": "blue", "note": pad}


def pos(p):
    return {"type": "position_update", "player": p}


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def player_of_size(user_id, size):
    p = player(user_id)
    p["note"] = "n" * (size - len(compact(p).encode()))
    assert len(compact(p).encode()) == size
    return p


async def harness_wait(pred, timeout, what):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        await asyncio.sleep(0.02)


class MapCase(harness.ProcessTestCase):
    def data_dir(self):
        d = tempfile.mkdtemp(prefix="ringcast-state-limits-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def start(self, livemap="", data_dir=None):
        text = ""
        if data_dir:
            text += "[server]\ndata_dir = %s\n" % json.dumps(data_dir)
        text += "[profiles.livemap]\n" + livemap
        return self.new_server(config_text=text)

    async def spread(self, srv, n, prefix="c"):
        """n /map clients (more if needed, bounded) with at least 2 on each worker."""
        clients = []
        for i in range(n + 30):
            clients.append(await connect(srv.port, "%s%d" % (prefix, i)))
            await clients[-1].barrier()
            if len(clients) >= n:
                per_thread = srv.health()["connections"]["per_thread"]
                # /health itself may count as a connection on one worker while it is answered.
                if min(per_thread) >= 3:
                    return clients
        self.fail("clients never spread over both workers: %r"
                  % srv.health()["connections"]["per_thread"])

    @staticmethod
    def errors(c):
        return [m for m in c.inbox if m.get("type") == "error"]

    async def barrier_all(self, clients, tag):
        for i, c in enumerate(clients):
            await c.barrier("%s-%d" % (tag, i))

    async def sync_of(self, port):
        probe = await connect(port, "probe")
        try:
            await probe.barrier()
            return {m["type"]: m for m in probe.inbox}
        finally:
            await probe.close()


class MarkerRaceTest(MapCase):
    def test_strict_writers_on_both_workers_stop_exactly_at_the_limit(self):
        # Durable map, strict durability: marker writes are applied after their group commit, so
        # many are in flight at once when the limit is reached; the pending ones must count.
        data_dir = self.data_dir()
        srv = self.start("max_markers = 40\n", data_dir)

        async def go():
            adders = await self.spread(srv, 8, "adder")
            observer = await connect(srv.port, "observer")
            await observer.barrier()
            # 8+ connections on both workers race 15 new ids each, all pipelined: 40 fit.
            await asyncio.gather(*(a.send(add(marker(k, i))) for i in range(15)
                                   for k, a in enumerate(adders)))
            await self.barrier_all(adders, "done")
            refused = [e for a in adders for e in self.errors(a)]
            self.assertEqual(len(refused), len(adders) * 15 - 40, refused[:3])
            for e in refused:
                self.assertEqual(e, {"type": "error", "message": "marker_add: the map already holds "
                                     "the maximum of 40 markers; remove one first (the marker was "
                                     "not added)"})
            await observer.wait_for(lambda box: len(box) >= 40, 10, "40 marker_added")
            await observer.barrier("obs")
            self.assertEqual(len(observer.of_type("marker_added")), 40)
            sync = await self.sync_of(srv.port)
            ids = [m["id"] for m in sync["markers_sync"]["markers"]]
            self.assertEqual(len(ids), 40)
            self.assertEqual(sorted(ids), sorted(m["marker"]["id"]
                                                 for m in observer.of_type("marker_added")))
            for c in adders + [observer]:
                await c.close()
            return ids

        ids = run_async(go(), 90)
        self.assertEqual(srv.stop(signal.SIGTERM), 0, srv.stderr_text())
        # The count comes back from the store: still full after a restart.
        srv = self.start("max_markers = 40\n", data_dir)

        async def after():
            sync = await self.sync_of(srv.port)
            self.assertEqual([m["id"] for m in sync["markers_sync"]["markers"]], ids)
            c = await connect(srv.port, "late")
            await c.barrier()
            c.inbox.clear()
            await c.send(add(marker(99, 99)))
            await c.barrier()
            self.assertEqual(len(self.errors(c)), 1, c.inbox)
            await c.close()

        run_async(after(), 30)

    def test_pipelined_remove_then_add_at_the_limit(self):
        # A client that removes one marker and adds another without waiting (as the seed, being
        # sequential, allows) finds room: the remove in flight counts as done for the add.
        srv = self.start("max_markers = 3\n", self.data_dir())

        async def go():
            c = await connect(srv.port, "c")
            observer = await connect(srv.port, "observer")
            for c_ in (c, observer):
                await c_.barrier()
            for i in range(3):
                await c.send(add(marker(1, i)))
            await observer.wait_for(lambda box: len(box) >= 3, 10, "3 marker_added")
            stored = ["1_0", "1_1", "1_2"]
            for r in range(10):   # each round removes the oldest marker and adds a new one
                await c.send({"type": "marker_remove", "marker_id": stored.pop(0)})
                await c.send(add(marker(1, 100 + r)))
                stored.append("1_%d" % (100 + r))
            await c.barrier("done")
            self.assertEqual(self.errors(c), [])
            sync = await self.sync_of(srv.port)
            self.assertEqual([m["id"] for m in sync["markers_sync"]["markers"]],
                             ["1_107", "1_108", "1_109"])
            for c_ in (c, observer):
                await c_.close()

        run_async(go(), 60)

    def test_add_and_remove_of_the_same_ids_racing_across_workers(self):
        # Removers and re-adders of the same ids on both workers, and adders of new ids, all at
        # once: whatever order the home core sees them in, the map never holds more than 10.
        srv = self.start("max_markers = 10\n", self.data_dir())

        async def go():
            clients = await self.spread(srv, 6, "w")
            seeder = clients[0]
            for i in range(10):
                await seeder.send(add(marker(1, i)))
            await self.barrier_all(clients, "seeded")
            for rnd in range(8):
                sends = []
                for k, c in enumerate(clients):
                    if k % 3 == 0:
                        sends += [c.send({"type": "marker_remove", "marker_id": "1_%d" % i})
                                  for i in range(10)]
                    elif k % 3 == 1:
                        sends += [c.send(add(marker(1, i))) for i in range(10)]
                    else:
                        sends += [c.send(add(marker(k, 1000 * rnd + i))) for i in range(5)]
                await asyncio.gather(*sends)
                await self.barrier_all(clients, "round%d" % rnd)
                sync = await self.sync_of(srv.port)
                n = len(sync.get("markers_sync", {"markers": []})["markers"])
                self.assertLessEqual(n, 10, "round %d" % rnd)
            for c in clients:
                await c.close()

        run_async(go(), 120)


class PositionsTest(MapCase):
    def test_max_positions_is_exact_across_workers_and_kept_over_a_restart(self):
        data_dir = self.data_dir()
        srv = self.start("max_positions = 30\n", data_dir)

        async def go():
            writers = await self.spread(srv, 8, "writer")
            observer = await connect(srv.port, "observer")
            await observer.barrier()
            # 8+ connections on both workers race 10 new players each: 30 fit.
            await asyncio.gather(*(w.send(pos(player("%d-%d" % (k, i)))) for i in range(10)
                                   for k, w in enumerate(writers)))
            # Regression: a refusal (from the room's home core) could trail the writer's next
            # pong. It is now in order with the writer's replies: every refusal is in by the pong.
            expected = len(writers) * 10 - 30
            await self.barrier_all(writers, "done")
            refused = [e for w in writers for e in self.errors(w)]
            self.assertEqual(len(refused), expected, refused[:3])
            for e in refused:
                self.assertEqual(e, {"type": "error", "message": "position_update: the map already "
                                     "holds the maximum of 30 player positions; a new player's "
                                     "position is not stored or sent"})
            await observer.wait_for(lambda box: len(box) >= 30, 10, "30 position_update")
            await asyncio.sleep(0.3)
            await observer.barrier("obs")
            forwarded = [m["player"]["user_id"] for m in observer.of_type("position_update")]
            self.assertEqual(len(forwarded), 30)
            sync = await self.sync_of(srv.port)
            stored = [p["user_id"] for p in sync["positions_sync"]["positions"]]
            self.assertEqual(sorted(stored), sorted(forwarded))
            # A stored player still moves on a full map, with no error.
            uid = stored[0]
            mover = writers[int(uid.split("-")[0])]
            before = len(self.errors(mover))
            observer.inbox.clear()
            await mover.send(pos(dict(player(uid), x=1)))
            got = await observer.take(lambda m: m.get("type") == "position_update", 5, "the move")
            self.assertEqual((got["player"]["user_id"], got["player"]["x"]), (uid, 1))
            await asyncio.sleep(0.3)
            await mover.barrier("moved")
            self.assertEqual(len(self.errors(mover)), before)
            for c in writers + [observer]:
                await c.close()
            return stored

        stored = run_async(go(), 90)
        self.assertEqual(srv.stop(signal.SIGTERM), 0, srv.stderr_text())
        srv = self.start("max_positions = 30\n", data_dir)

        async def after():
            sync = await self.sync_of(srv.port)
            self.assertEqual([p["user_id"] for p in sync["positions_sync"]["positions"]], stored)
            c = await connect(srv.port, "late")
            await c.barrier()
            c.inbox.clear()
            for k in range(20):  # refused, then the pong: in that order every time
                await c.send(pos(player("newcomer-%d" % k)))
                await c.send({"type": "ping", "timestamp": k})
            got = await c.wait_for(lambda box: box if len(box) >= 40 else None, 10, "40 replies")
            self.assertEqual([m["type"] for m in got], ["error", "pong"] * 20)
            self.assertIn("maximum of 30 player positions", got[0]["message"])
            await c.close()

        run_async(after(), 30)

    def test_oversize_position_is_refused_and_changes_nothing(self):
        srv = self.start("persistent = false\nmax_position_bytes = 200\n")

        async def go():
            writer = await connect(srv.port, "writer")
            observer = await connect(srv.port, "observer")
            for c in (writer, observer):
                await c.barrier()
            await writer.send(pos(player_of_size(1, 200)))       # exactly the limit: fine
            await observer.take(lambda m: m.get("type") == "position_update", 5, "the 200-byte one")
            await writer.send(pos(player_of_size(2, 201)))       # one byte over: refused
            err = await writer.take(lambda m: m.get("type") == "error", 5, "the error reply")
            self.assertEqual(err, {"type": "error", "message": "position_update: the player record "
                                   "is 201 bytes of JSON, more than the 200 allowed; not stored or "
                                   "sent"})
            # Nor may a stored player's record grow past it.
            await writer.send(pos(player_of_size(1, 5000)))
            err = await writer.take(lambda m: m.get("type") == "error", 5, "the second error")
            self.assertIn("5000 bytes", err["message"])
            await self.barrier_all([writer, observer], "after")
            self.assertEqual(observer.of_type("position_update"), [])
            sync = await self.sync_of(srv.port)
            self.assertEqual(sync["positions_sync"]["positions"], [player_of_size(1, 200)])
            for c in (writer, observer):
                await c.close()

        run_async(go(), 60)

    def test_full_map_with_defaults_syncs_positions_within_one_mib(self):
        srv = self.start("persistent = false\n")   # defaults: 2000 positions of up to 512 bytes

        async def go():
            writer = await connect(srv.port, "writer")
            await writer.barrier()
            for i in range(2000):
                await writer.send(pos(player_of_size("u%04d" % i, 512)))
            await writer.send(pos(player("one-too-many")))
            err = await writer.take(lambda m: m.get("type") == "error", 30, "the error for 2001")
            self.assertIn("maximum of 2000 player positions", err["message"])
            self.assertEqual(self.errors(writer), [], writer.inbox[:3])
            # A client with websockets' default max_size (1 MiB), as the seed's clients connect.
            ws = await websockets.connect("ws://127.0.0.1:%d/map" % srv.port, ping_interval=None,
                                          open_timeout=10, close_timeout=3)
            try:
                raw = await asyncio.wait_for(ws.recv(), 20)
            finally:
                await ws.close()
            self.assertLessEqual(len(raw.encode()), MiB)
            self.assertEqual(len(raw.encode()), 40 + 2000 * 512 + 1999)  # the documented worst case
            sync = json.loads(raw)
            self.assertEqual(sync["type"], "positions_sync")
            self.assertEqual(len(sync["positions"]), 2000)
            await writer.close()

        run_async(go(), 120)


class NativeStateLimitsTest(NativeCase):
    CONFIG_TEXT = ("[hub]\nmax_state_keys = 25\nmax_state_value_bytes = 100\n"
                   "[store]\npersistent_rooms = [\"durable-*\"]\n")

    async def race(self, room):
        (a1, a2, a3), (b1, b2, b3) = await self.spread(3)
        writers = [a1, a2, a3, b1, b2, b3]
        self.assertEqual(len({worker_of(await w.whoami()) for w in writers}), 2)
        for w in writers:
            await w.join(room)
        # 6 connections on both workers race 10 new keys each, pipelined: 25 of 60 fit.
        rids = {}
        sends = []
        for k, w in enumerate(writers):
            for i in range(10):
                rid = next(_ids)
                rids[rid] = w
                sends.append(w.send({"op": "state.set", "id": rid, "room": room,
                                     "key": "k%d-%d" % (k, i), "value": i}))
        await asyncio.gather(*sends)
        replies = []
        for rid, w in rids.items():
            replies.append(await w.take(lambda m, rid=rid: isinstance(m, dict) and m.get("id") == rid,
                                        10, "reply %d" % rid))
        acks = [r for r in replies if r["type"] == "ack"]
        refused = [r for r in replies if r["type"] == "error"]
        self.assertEqual((len(acks), len(refused)), (25, 35), replies[:3])
        for r in refused:
            self.assertEqual(r["code"], "state_limit", r)
            self.assertIn("max_state_keys", r["message"])
        probe = await self.client("probe")
        j = await probe.join(room)
        self.assertEqual(len(j["state"]), 25)
        # At the limit: replacing a key works, a new key does not, and after a delete one fits.
        key = sorted(j["state"])[0]
        self.assertEqual((await a1.req("state.set", room=room, key=key, value="new"))["type"], "ack")
        r = await b1.req("state.set", room=room, key="one-more", value=1)
        self.assertEqual((r["type"], r["code"]), ("error", "state_limit"), r)
        self.assertEqual((await b1.req("state.del", room=room, key=key))["type"], "ack")
        self.assertEqual((await b1.req("state.set", room=room, key="one-more", value=1))["type"],
                         "ack")
        j = await (await self.client("probe2")).join(room)
        self.assertEqual(len(j["state"]), 25)
        self.assertIn("one-more", j["state"])
        self.assertNotIn(key, j["state"])

    def test_keys_per_room_exact_across_workers_in_memory(self):
        self.run_scenario(lambda: self.race("mem-room"), 60)

    def test_keys_per_room_exact_across_workers_persistent(self):
        self.run_scenario(lambda: self.race("durable-room"), 60)

    def test_value_size(self):
        async def t():
            c = await self.client("c")
            for room in ("mem-size", "durable-size"):
                await c.join(room)
                ok = await c.req("state.set", room=room, key="k", value="v" * 98)  # 100 bytes
                self.assertEqual(ok["type"], "ack", ok)
                r = await c.req("state.set", room=room, key="k", value="v" * 99)  # 101 bytes
                self.assertEqual((r["type"], r["code"]), ("error", "state_limit"), r)
                self.assertIn("101 bytes", r["message"])
                self.assertIn("max_state_value_bytes", r["message"])
                r = await c.req("state.set", room=room, key="k2", value="v" * 5000)
                self.assertEqual((r["type"], r["code"]), ("error", "state_limit"), r)
                # Without an id the refusal still comes, without one.
                await c.send({"op": "state.set", "room": room, "key": "k3", "value": "v" * 200})
                r = await c.take_type("error")
                self.assertEqual((r["code"], "id" in r), ("state_limit", False), r)
                j = await (await self.client("probe-" + room)).join(room)
                self.assertEqual(j["state"], {"k": "v" * 98})
                await self.assert_alive(c)
        self.run_scenario(t)


class NativeStateDefaultsTest(NativeCase):
    """The defaults bound state without any config: 1000 keys per room, 64 KiB per value."""

    def test_default_limits(self):
        async def t():
            c = await self.client("c")
            room = "defaults"
            await c.join(room)
            r = await c.req("state.set", room=room, key="big", value="v" * 65534)  # 65536 bytes
            self.assertEqual(r["type"], "ack", r)
            r = await c.req("state.set", room=room, key="big", value="v" * 65535)
            self.assertEqual((r["type"], r.get("code")), ("error", "state_limit"), r)
            for i in range(999):   # pipelined, then every reply
                await c.send({"op": "state.set", "room": room, "key": "k%d" % i, "value": i})
            r = await c.req("state.set", room=room, key="one-too-many", value=1, timeout=20)
            self.assertEqual((r["type"], r.get("code")), ("error", "state_limit"), r)
            self.assertIn("maximum of 1000 state keys", r["message"])
            j = await (await self.client("probe")).join(room)
            self.assertEqual(len(j["state"]), 1000)
        self.run_scenario(t, 60)


if __name__ == "__main__":
    harness.main()
