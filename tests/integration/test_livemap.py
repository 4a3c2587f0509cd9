#!/usr/bin/python3
"""livemap profile (seed 002, the Arma Reforger Live Map) on /map: markers and player positions as
retained state (insertion order, synced on connect, durable across restarts), broadcasts to every
client but the sender, chat forwarding, ping/pong, and the close codes for bad input
(docs/profiles/livemap.md).

Run: /usr/bin/python3 tests/integration/test_livemap.py --binary build/ringcast --backend epoll

Clients act as the seed's desktop client does: websockets.connect, json.dumps of dicts, markers
with an ISO-8601 timestamp string from datetime.now(). Expected marker ids are computed with
Python itself (f"{user_id}_{timestamp}" on json.loads of the text sent), exactly as the real
server builds them.
"""

import asyncio
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
from ws_inbox import WsInbox  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

NOFILE = harness.raise_nofile_limit(20000)
PATH = "/map"


# --------------------------------------------------------------------------
# client
# --------------------------------------------------------------------------

class MapClient(WsInbox):
    """A /map connection; a reader task appends every message (parsed JSON) to `inbox`, and the
    frame as received to `raw`."""

    def __init__(self, ws, name):
        self.raw = []
        super().__init__(ws, name, decode=self._decode)

    def _decode(self, m):
        self.raw.append(m)
        try:
            return json.loads(m)
        except (ValueError, TypeError):
            return {"type": "<unparseable>", "text": m}

    async def wait_count(self, n, timeout=5.0):
        await self.wait_for(lambda box: len(box) >= n, timeout, "%d messages" % n)
        return self.inbox[:n]

    async def barrier(self, tag=None):
        """ping -> pong: everything the server sent this client before the pong is in the inbox."""
        tag = tag or "b-%f" % time.monotonic()
        await self.send({"type": "ping", "timestamp": tag})
        await self.wait_for(lambda box: any(m.get("type") == "pong" and m.get("timestamp") == tag
                                            for m in box if isinstance(m, dict)), 5.0, "pong %s" % tag)
        i = next(i for i, m in enumerate(self.inbox)
                 if isinstance(m, dict) and m.get("type") == "pong" and m.get("timestamp") == tag)
        del self.inbox[i]

    async def wait_closed(self, timeout=5.0):
        await super().wait_closed(timeout)
        return self.close_code

    def of_type(self, t):
        return [m for m in self.inbox if isinstance(m, dict) and m.get("type") == t]


def _short(obj, limit=800):
    s = repr(obj)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


async def connect(port, name="c", path=PATH):
    ws = await websockets.connect("ws://127.0.0.1:%d%s" % (port, path), ping_interval=None,
                                  compression=None, max_size=8 << 20, max_queue=None,
                                  open_timeout=10, close_timeout=3)
    return MapClient(ws, name)


async def connect_synced(port, name="c", n_sync=0):
    """Connect and wait for the n_sync sync messages (0: barrier only)."""
    c = await connect(port, name)
    if n_sync:
        await c.wait_count(n_sync)
    await c.barrier()
    return c


def run_async(coro, timeout):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def iso_now(i=0):
    # what the desktop client sends: datetime.now().isoformat()
    return "2026-01-01T12:00:%02d.%06d" % (i % 60, 123456 + i)


def desktop_marker(user_id, ts, kind="enemy", x=500.5, y=300.2, description="Enemy spotted"):
    return {"type": kind, "x": x, "y": y, "user_id": user_id, "description": description,
            "timestamp": ts}


def python_marker(text):
    """What the real server stores and sends for a marker_add text: json.loads, then id."""
    data = json.loads(text)
    marker = data["marker"]
    marker["id"] = f"{marker['user_id']}_{marker['timestamp']}"
    return marker


def marker_add_text(marker):
    return json.dumps({"type": "marker_add", "marker": marker})


def position(user_id, x, y, username=None, team="blue", ts=None):
    return {"type": "position_update",
            "player": {"user_id": user_id, "username": username or "P%s" % user_id, "x": x, "y": y,
                       "team": team, "timestamp": ts or iso_now()}}


async def all_of(*aws):
    return await asyncio.gather(*aws)


async def quiet(clients, seconds=0.3):
    """Let anything in flight arrive, then barrier each client."""
    await asyncio.sleep(seconds)
    for c in clients:
        await c.barrier()


class LivemapCase(harness.ProcessTestCase):
    """Each test starts its own server(s): retained state is the point of most tests."""

    def make_data_dir(self):
        d = tempfile.mkdtemp(prefix="ringcast-livemap-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def server(self, data_dir=None, extra=""):
        text = ""
        if data_dir:
            text += "[server]\ndata_dir = %s\n\n" % json.dumps(data_dir)
        text += extra
        return self.new_server(config_text=text or None)

    def stop_clean(self, srv):
        rc = srv.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, "ringcast did not stop cleanly (exit code %r)\n%s"
                         % (rc, srv.stderr_text()))

    def assert_alive(self, srv):
        self.assertTrue(srv.alive(), "ringcast died\n%s" % srv.stderr_text())

    async def sync_of(self, port, name="probe"):
        """A new client's sync messages (everything before its first pong), then closed."""
        c = await connect(port, name)
        try:
            await c.barrier()
            return list(c.inbox)
        finally:
            await c.close()

    def assert_sync(self, msgs, markers, positions):
        want = []
        if markers:
            want.append({"type": "markers_sync", "markers": markers})
        if positions:
            want.append({"type": "positions_sync", "positions": positions})
        self.assertEqual(msgs, want, "sync on connect")
        for m in msgs:   # key order of every item as the real server's dicts keep it
            items = m.get("markers") or m.get("positions")
            wants = markers if m["type"] == "markers_sync" else positions
            for got, exp in zip(items, wants):
                self.assertEqual(list(got), list(exp), "field order of %r" % (got,))


# --------------------------------------------------------------------------
# connect and sync
# --------------------------------------------------------------------------

class SyncTest(LivemapCase):

    def test_fresh_server_sends_nothing(self):
        srv = self.server()

        async def go():
            cs = [await connect(srv.port, "c%d" % i) for i in range(4)]
            try:
                await asyncio.sleep(0.3)
                for c in cs:
                    self.assertEqual(c.inbox, [], "%s got something on a fresh server" % c.name)
                    await c.barrier("fresh")
                    self.assertEqual(c.inbox, [])
            finally:
                for c in cs:
                    await c.close()
        run_async(go(), 20)
        self.stop_clean(srv)

    def test_sync_order_and_only_non_empty(self):
        srv = self.server()

        async def go():
            a = await connect_synced(srv.port, "a")
            try:
                # positions only -> only positions_sync
                p1 = position(11, 1.0, 2.0)
                await a.send(p1)
                await quiet([a])
                self.assert_sync(await self.sync_of(srv.port), [], [p1["player"]])
                # markers too -> markers_sync, then positions_sync
                t = marker_add_text(desktop_marker(1, iso_now(1)))
                await a.send(t)
                await asyncio.sleep(0.3)
                self.assert_sync(await self.sync_of(srv.port), [python_marker(t)], [p1["player"]])
            finally:
                await a.close()
        run_async(go(), 20)
        self.stop_clean(srv)

    def test_markers_only(self):
        srv = self.server()

        async def go():
            a = await connect_synced(srv.port, "a")
            b = await connect_synced(srv.port, "b")
            try:
                t = marker_add_text(desktop_marker(3, iso_now(3)))
                await a.send(t)
                await b.wait_count(1)
                self.assert_sync(await self.sync_of(srv.port), [python_marker(t)], [])
                # a pong asked for right after connecting never comes before the syncs
                for i in range(6):
                    c = await connect(srv.port, "fast%d" % i)
                    try:
                        await c.send({"type": "ping", "timestamp": i})
                        await c.wait_count(2)
                        self.assertEqual(c.inbox[0]["type"], "markers_sync", c.inbox)
                        self.assertEqual(c.inbox[1], {"type": "pong", "timestamp": i})
                    finally:
                        await c.close()
            finally:
                await a.close()
                await b.close()
        run_async(go(), 20)
        self.stop_clean(srv)

    def test_reconnect_storm_and_changed_state(self):
        """Many clients connecting at once get the same sync; every change (a replaced position
        too) shows in the sync of the next ones."""
        srv = self.server()

        async def go():
            a = await connect_synced(srv.port, "a")
            try:
                t = marker_add_text(desktop_marker(1, iso_now(1)))
                await a.send(t)
                p = position("u1", 1, 1)
                await a.send(p)
                await asyncio.sleep(0.3)
                markers, players = [python_marker(t)], [p["player"]]
                for round_ in range(3):
                    syncs = await asyncio.gather(*[self.sync_of(srv.port, "s%d" % i) for i in range(30)])
                    for s in syncs:
                        self.assert_sync(s, markers, players)
                    p = position("u1", 10 + round_, 0)           # replaced in place
                    await a.send(p)
                    await a.barrier()
                    await asyncio.sleep(0.1)
                    players = [p["player"]]
                    self.assert_sync(await self.sync_of(srv.port), markers, players)
            finally:
                await a.close()
        run_async(go(), 30)
        self.stop_clean(srv)

    def test_insertion_order_with_replacement_and_removal(self):
        srv = self.server()

        async def go():
            a = await connect_synced(srv.port, "a")
            b = await connect_synced(srv.port, "b")
            try:
                # keys that sort differently from insertion order
                texts = [marker_add_text(desktop_marker(uid, ts, description="d%d" % i))
                         for i, (uid, ts) in enumerate([("zed", "t1"), (5, "t0"), ("alpha", "t9"),
                                                        (2, 1704110400), ("mid", 1.5)])]
                for t in texts:
                    await a.send(t)
                await b.wait_count(len(texts))
                markers = [python_marker(t) for t in texts]
                self.assertEqual([m["marker"] for m in b.inbox], markers, "marker_added, in order")
                # same id again: replaced, keeps its place
                again = marker_add_text(desktop_marker(5, "t0", kind="friendly", description="new"))
                await a.send(again)
                await b.wait_count(len(texts) + 1)
                self.assertEqual(b.inbox[-1], {"type": "marker_added", "marker": python_marker(again)})
                markers[1] = python_marker(again)
                # removed, then added again: goes to the end
                await a.send({"type": "marker_remove", "marker_id": markers[0]["id"]})
                await b.wait_count(len(texts) + 2)
                self.assertEqual(b.inbox[-1], {"type": "marker_removed", "marker_id": "zed_t1"})
                await a.send(texts[0])
                await b.wait_count(len(texts) + 3)
                markers = markers[1:] + [python_marker(texts[0])]
                # positions: replaced in place, never removed
                ps = [position(uid, i, i) for i, uid in enumerate(["u9", "u1", 7, "u5"])]
                for p in ps:
                    await a.send(p)
                await b.wait_count(len(texts) + 3 + len(ps))
                newer = position("u1", 100, 200, team="red")
                await a.send(newer)
                await b.wait_count(len(texts) + 4 + len(ps))
                players = [p["player"] for p in ps]
                players[1] = newer["player"]
                self.assert_sync(await self.sync_of(srv.port), markers, players)
            finally:
                await a.close()
                await b.close()
        run_async(go(), 20)
        self.stop_clean(srv)


# --------------------------------------------------------------------------
# markers
# --------------------------------------------------------------------------

class MarkerTest(LivemapCase):

    def test_marker_add_goes_to_others_not_sender(self):
        srv = self.server()

        async def go():
            cs = [await connect_synced(srv.port, "c%d" % i) for i in range(5)]
            try:
                for i, sender in enumerate(cs):
                    t = marker_add_text(desktop_marker(i + 1, iso_now(i)))
                    await sender.send(t)
                    want = {"type": "marker_added", "marker": python_marker(t)}
                    for c in cs:
                        if c is not sender:
                            got = await c.wait_for(lambda box: want in box, 5, "marker_added %d" % i)
                            self.assertTrue(got)
                await quiet(cs)
                for i, c in enumerate(cs):
                    got = c.of_type("marker_added")
                    self.assertEqual(len(got), len(cs) - 1, "%s: %s" % (c.name, _short(c.inbox)))
                    self.assertNotIn(i + 1, [m["marker"]["user_id"] for m in got],
                                     "%s got its own marker back" % c.name)
                    self.assertEqual(len(c.inbox), len(cs) - 1)
                # every field as the desktop client sent it, id last
                m = cs[1].of_type("marker_added")[0]["marker"]
                self.assertEqual(list(m), ["type", "x", "y", "user_id", "description", "timestamp", "id"])
                self.assertEqual(m["id"], "1_" + iso_now(0))
            finally:
                for c in cs:
                    await c.close()
        run_async(go(), 30)
        self.stop_clean(srv)

    def test_marker_ids_are_python_str(self):
        srv = self.server()
        values = ["1704110400", "1704110400.5", "1.5", "1e16", "1E16", "2.0", "-0.0", "0.1", "1e-05",
                  "1.2345678901234568e+29", "18446744073709551615", "-7", "0", "true", "false",
                  "null", '"2026-01-01T12:00:00.123456"', '"caf\\u00e9 \\u2713"', '""', '"a_b"',
                  '[1, "x", null, 2.5, true]', '{"k": "it\'s", "n": [1.0]}', '"tab\\tq\\"s\'"',
                  '["tab\\tq\\"s\'", "\\u0001"]', "3.141592653589793", "1e300", "5e-324"]

        async def go():
            a = await connect_synced(srv.port, "a")
            b = await connect_synced(srv.port, "b")
            try:
                texts = []
                for i, v in enumerate(values):
                    uid = values[(i * 7 + 3) % len(values)]
                    t = '{"type": "marker_add", "marker": {"type": "t", "x": 1, "y": 2, ' \
                        '"user_id": %s, "timestamp": %s}}' % (uid, v)
                    texts.append(t)
                    await a.send(t)
                await b.wait_count(len(texts), timeout=10)
                for t, got in zip(texts, b.inbox):
                    self.assertEqual(got["marker"]["id"], python_marker(t)["id"], "for %s" % t)
                    self.assertEqual(got["marker"], python_marker(t))
            finally:
                await a.close()
                await b.close()
        run_async(go(), 30)
        self.stop_clean(srv)

    def test_zero_with_a_large_exponent_is_zero(self):
        # Found by fuzzing: RapidJSON 1.1.0 read 0e196 as a garbage number (so the marker id was
        # "1_4.78e+52", not Python's "1_0.0") and refused 0e400 as too big (closing with 1007).
        srv = self.server()
        values = ["0e196", "-0.000e100", "0E+400", "0.0e-400", "0e22", "0e23", "10e5"]

        async def go():
            a = await connect_synced(srv.port, "a")
            b = await connect_synced(srv.port, "b")
            try:
                texts = ['{"type": "marker_add", "marker": {"type": "t", "x": 0e300, "y": 2, '
                         '"user_id": 1, "timestamp": %s}}' % v for v in values]
                for t in texts:
                    await a.send(t)
                await b.wait_count(len(texts), timeout=10)
                for t, got in zip(texts, b.inbox):
                    self.assertEqual(got["marker"], python_marker(t), "for %s" % t)
            finally:
                await a.close()
                await b.close()
        run_async(go(), 30)
        self.stop_clean(srv)

    def test_client_id_overwritten_in_place_extra_fields_kept_type_optional(self):
        srv = self.server()

        async def go():
            a = await connect_synced(srv.port, "a")
            b = await connect_synced(srv.port, "b")
            try:
                t1 = json.dumps({"type": "marker_add",
                                 "marker": {"id": "client-chosen", "type": "enemy", "x": 1, "y": 2,
                                            "user_id": 4, "timestamp": "ts", "extra": {"a": [1, 2]},
                                            "color": "#ff0000"}})
                t2 = json.dumps({"type": "marker_add", "note": "top-level extra",
                                 "marker": {"x": 3, "y": 4, "user_id": "u", "timestamp": 7}})
                for t in (t1, t2):
                    await a.send(t)
                await b.wait_count(2)
                for t, got in zip((t1, t2), b.inbox):
                    want = python_marker(t)
                    self.assertEqual(got, {"type": "marker_added", "marker": want})
                    self.assertEqual(list(got["marker"]), list(want), "field order")
                self.assertEqual(b.inbox[0]["marker"]["id"], "4_ts")
                self.assertEqual(b.inbox[1]["marker"]["id"], "u_7")
                self.assert_sync(await self.sync_of(srv.port), [python_marker(t1), python_marker(t2)], [])
            finally:
                await a.close()
                await b.close()
        run_async(go(), 20)
        self.stop_clean(srv)

    def test_marker_remove(self):
        srv = self.server()

        async def go():
            a = await connect_synced(srv.port, "a")
            b = await connect_synced(srv.port, "b")
            c = await connect_synced(srv.port, "c")
            try:
                t = marker_add_text(desktop_marker(1, "ts-1"))
                await a.send(t)
                await b.wait_count(1)
                await c.wait_count(1)
                # unknown id, non-string id: nothing at all
                for mid in ("nope", "1_ts-2", 5, None, 1.5, True):
                    await b.send({"type": "marker_remove", "marker_id": mid})
                await quiet([a, b, c])
                self.assertEqual(a.inbox, [])
                self.assertEqual(len(b.inbox), 1)
                self.assertEqual(len(c.inbox), 1)
                # the id the server gave: removed, everyone else hears it (here b removes a's)
                await b.send({"type": "marker_remove", "marker_id": "1_ts-1"})
                want = {"type": "marker_removed", "marker_id": "1_ts-1"}
                await a.wait_for(lambda box: want in box, 5, "marker_removed")
                await c.wait_for(lambda box: want in box, 5, "marker_removed")
                # again: already gone, nothing
                await b.send({"type": "marker_remove", "marker_id": "1_ts-1"})
                await quiet([a, b, c])
                self.assertEqual(a.inbox, [want])
                self.assertEqual(b.inbox, [{"type": "marker_added", "marker": python_marker(t)}])
                self.assertEqual(c.inbox, [{"type": "marker_added", "marker": python_marker(t)}, want])
                self.assertEqual(await self.sync_of(srv.port), [])
                # add and remove back to back: the remove is never lost behind the add's commit
                for i in range(20):
                    t = marker_add_text(desktop_marker(9, "quick-%d" % i))
                    await a.send(t)
                    await a.send({"type": "marker_remove", "marker_id": "9_quick-%d" % i})
                await c.wait_count(2 + 40, timeout=10)
                self.assertEqual([m["type"] for m in c.inbox[2:]], ["marker_added", "marker_removed"] * 20)
                self.assertEqual(await self.sync_of(srv.port), [])
            finally:
                for x in (a, b, c):
                    await x.close()
        run_async(go(), 30)
        self.stop_clean(srv)


# --------------------------------------------------------------------------
# positions, chat, ping, ignored types
# --------------------------------------------------------------------------

class StreamTest(LivemapCase):

    def test_position_update_forwards_whole_message(self):
        srv = self.server()

        async def go():
            cs = [await connect_synced(srv.port, "c%d" % i) for i in range(4)]
            try:
                msg = {"type": "position_update", "seq": 1, "meta": {"src": "game", "v": [1, 2.5]},
                       "player": {"user_id": 1, "username": "Player1", "x": 450.0, "y": 320.0,
                                  "team": "blue", "timestamp": "2026-01-01T12:00:00", "hp": 97}}
                await cs[0].send(msg)
                for c in cs[1:]:
                    await c.wait_count(1)
                    self.assertEqual(c.inbox[0], msg)
                    self.assertEqual(list(c.inbox[0]), list(msg))
                await quiet(cs)
                self.assertEqual(cs[0].inbox, [], "the sender got its own position back")
                self.assert_sync(await self.sync_of(srv.port), [], [msg["player"]])
            finally:
                for c in cs:
                    await c.close()
        run_async(go(), 20)
        self.stop_clean(srv)

    def test_falsy_user_id_stores_and_sends_nothing(self):
        srv = self.server()

        async def go():
            a = await connect_synced(srv.port, "a")
            b = await connect_synced(srv.port, "b")
            try:
                for uid in (None, 0, 0.0, "", False, [], {}):
                    await a.send({"type": "position_update", "player": {"user_id": uid, "x": 1}})
                await a.send({"type": "position_update", "player": {"x": 1}})
                await a.send({"type": "position_update"})           # player defaults to {}
                await a.send({"type": "position_update", "player": {}})
                await quiet([a, b])
                self.assertEqual(b.inbox, [])
                self.assertEqual(a.inbox, [])
                self.assertEqual(await self.sync_of(srv.port), [])
            finally:
                await a.close()
                await b.close()
        run_async(go(), 20)
        self.stop_clean(srv)

    def test_position_keys_follow_python_dict_equality(self):
        srv = self.server()

        async def go():
            a = await connect_synced(srv.port, "a")
            b = await connect_synced(srv.port, "b")
            try:
                seq = [(1, "a"), ("1", "b"), (2.5, "c"), (1.0, "d"), (True, "e"), ("x", "f"), (2.5, "g"),
                       (-3, "h"), (18446744073709551615, "i")]
                for uid, tag in seq:
                    await a.send({"type": "position_update", "player": {"user_id": uid, "tag": tag}})
                await b.wait_count(len(seq))
                self.assertEqual([m["player"]["tag"] for m in b.inbox], [t for _, t in seq])
                # what Python's dict does with these keys
                d = {}
                for uid, tag in seq:
                    d[uid] = {"user_id": uid, "tag": tag}
                self.assert_sync(await self.sync_of(srv.port), [], list(d.values()))
            finally:
                await a.close()
                await b.close()
        run_async(go(), 20)
        self.stop_clean(srv)

    def test_chat_ping_and_ignored_types(self):
        srv = self.server()

        async def go():
            a = await connect_synced(srv.port, "a")
            b = await connect_synced(srv.port, "b")
            c = await connect_synced(srv.port, "c")
            try:
                chat = {"type": "chat_message", "username": "Alice", "message": "hello \u2713",
                        "extra": [1, {"x": None}]}
                await a.send(chat)
                for x in (b, c):
                    await x.wait_count(1)
                    self.assertEqual(x.inbox[0], chat)
                # pongs: only to the sender, the timestamp value as sent, null when absent
                for ts in ("2026-01-01T12:00:00", 1704110400, 1.5, {"k": [1]}, None, [], "\u00e9"):
                    await a.send({"type": "ping", "timestamp": ts})
                await a.send({"type": "ping"})
                await a.wait_count(8)
                self.assertEqual(a.inbox, [{"type": "pong", "timestamp": ts} for ts in
                                           ("2026-01-01T12:00:00", 1704110400, 1.5, {"k": [1]}, None, [],
                                            "\u00e9", None)])
                a.inbox.clear()
                # unknown or missing type: ignored, the connection stays open
                for m in ({"type": "teleport"}, {"no_type": 1}, {"type": 5}, {"type": None}, {},
                          {"type": "MARKER_ADD", "marker": 1}, {"type": "markers_sync"}):
                    await a.send(m)
                await quiet([a, b, c])
                self.assertEqual(a.inbox, [])
                self.assertEqual(b.inbox, [chat])
                self.assertEqual(c.inbox, [chat])
                self.assertFalse(a.closed)
                # chat is not stored
                self.assertEqual(await self.sync_of(srv.port), [])
                # a 1 MiB chat message is forwarded whole
                big = {"type": "chat_message", "username": "B", "message": "x" * (1024 * 1024 - 100)}
                await b.send(big)
                await a.wait_count(1, timeout=10)
                self.assertEqual(a.inbox[0], big)
                # binary frames carrying JSON are handled like text (json.loads takes bytes)
                await b.send(json.dumps({"type": "chat_message", "message": "bin"}).encode())
                await a.wait_count(2)
                self.assertEqual(a.inbox[1], {"type": "chat_message", "message": "bin"})
                self.assertIsInstance(a.raw[-1], str, "forwarded as a text frame")
            finally:
                for x in (a, b, c):
                    await x.close()
        run_async(go(), 30)
        self.stop_clean(srv)


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------

class BadInputTest(LivemapCase):

    def test_close_codes_and_nothing_stored(self):
        srv = self.server()
        cases = [
            ("not json", 1007), ("{\"type\": \"ping\"", 1007), ("", 1007), ("{} {}", 1007),
            ("NaN", 1007),
            ("[1, 2]", 1003), ("\"marker_add\"", 1003), ("42", 1003), ("null", 1003),
            ('{"type": "marker_add"}', 1008),
            ('{"type": "marker_add", "marker": "m"}', 1008),
            ('{"type": "marker_add", "marker": null}', 1008),
            ('{"type": "marker_add", "marker": [1]}', 1008),
            ('{"type": "marker_add", "marker": {"type": "x", "timestamp": 1}}', 1008),
            ('{"type": "marker_add", "marker": {"type": "x", "user_id": 1}}', 1008),
            ('{"type": "marker_remove"}', 1008),
            ('{"type": "marker_remove", "marker_id": ["1_1"]}', 1008),
            ('{"type": "marker_remove", "marker_id": {"a": 1}}', 1008),
            ('{"type": "position_update", "player": "p"}', 1008),
            ('{"type": "position_update", "player": null}', 1008),
            ('{"type": "position_update", "player": [1]}', 1008),
            ('{"type": "position_update", "player": {"user_id": [1]}}', 1008),
            ('{"type": "position_update", "player": {"user_id": {"a": 1}}}', 1008),
            ('{"type": "chat_message", "deep": ' + "[" * 100000 + "]" * 100000 + "}", 1008),
        ]

        async def go():
            watcher = await connect_synced(srv.port, "watcher")
            try:
                for i, (text, code) in enumerate(cases):
                    c = await connect_synced(srv.port, "bad%d" % i)
                    await c.send(text)
                    got = await c.wait_closed()
                    self.assertEqual(got, code, "%r: close code %r" % (text[:80], got))
                await quiet([watcher])
                self.assertEqual(watcher.inbox, [], "bad input reached others")
                self.assertEqual(await self.sync_of(srv.port), [], "bad input stored something")
                # everyone else kept working
                other = await connect_synced(srv.port, "other")
                try:
                    await other.send(position("ok", 1, 2))
                    await watcher.wait_count(1)
                finally:
                    await other.close()
            finally:
                await watcher.close()
        run_async(go(), 40)
        self.assert_alive(srv)
        self.stop_clean(srv)

    def test_marker_without_type_after_good_traffic(self):
        srv = self.server()

        async def go():
            a = await connect_synced(srv.port, "a")
            b = await connect_synced(srv.port, "b")
            try:
                t = '{"type": "marker_add", "marker": {"x": 1, "y": 2, "user_id": 1, "timestamp": 2}}'
                await a.send(t)
                await b.wait_count(1)
                self.assertEqual(b.inbox[0], {"type": "marker_added", "marker": python_marker(t)})
                await a.barrier()   # a is still connected
                self.assertFalse(a.closed)
            finally:
                await a.close()
                await b.close()
        run_async(go(), 20)
        self.stop_clean(srv)


# --------------------------------------------------------------------------
# cross-core ordering
# --------------------------------------------------------------------------

class OrderingTest(LivemapCase):

    def test_many_clients_both_cores_order_kept(self):
        srv = self.server()
        N = 60

        async def go():
            cs = [await connect_synced(srv.port, "c%d" % i) for i in range(8)]
            try:
                senders = cs[:3]

                async def stream(k, c):
                    for i in range(N):
                        await c.send({"type": "position_update",
                                      "player": {"user_id": "s%d" % k, "i": i, "x": i, "y": -i}})

                await all_of(*[stream(k, c) for k, c in enumerate(senders)])
                for idx, c in enumerate(cs):
                    n = N * (len(senders) - (1 if c in senders else 0))
                    await c.wait_count(n, timeout=10)
                    for k in range(len(senders)):
                        got = [m["player"]["i"] for m in c.inbox if m["player"]["user_id"] == "s%d" % k]
                        if cs[k] is c:
                            self.assertEqual(got, [], "%s got its own updates" % c.name)
                        else:
                            self.assertEqual(got, list(range(N)), "%s: updates of s%d" % (c.name, k))
                sync = await self.sync_of(srv.port)
                self.assertEqual([p["i"] for p in sync[0]["positions"]], [N - 1] * len(senders))
            finally:
                for c in cs:
                    await c.close()
        run_async(go(), 40)
        self.stop_clean(srv)

    def test_joiner_mid_stream_misses_nothing(self):
        """A client connecting while positions stream gets the sync, then exactly the updates the
        sync does not contain (no gap, no duplicate), on either core."""
        srv = self.server()
        N = 400

        async def go():
            streamer = await connect_synced(srv.port, "streamer")
            try:
                async def stream():
                    for i in range(N):
                        await streamer.send({"type": "position_update",
                                             "player": {"user_id": "s", "i": i}})
                        if i % 20 == 0:
                            await asyncio.sleep(0.002)

                task = asyncio.ensure_future(stream())
                joiners = []
                for j in range(8):
                    await asyncio.sleep(0.01)
                    joiners.append(await connect(srv.port, "j%d" % j))
                await task
                for c in joiners:
                    def done(box):
                        if not box:
                            return False
                        last = box[-1]
                        if last.get("type") == "positions_sync":   # connected after the stream
                            return last["positions"][0]["i"] == N - 1
                        return last.get("type") == "position_update" and last["player"]["i"] == N - 1
                    await c.wait_for(done, 10, "the last update")
                    first = c.inbox[0]
                    if first["type"] == "positions_sync":
                        start = first["positions"][0]["i"] + 1
                        rest = c.inbox[1:]
                    else:
                        start, rest = 0, c.inbox
                    self.assertEqual([m["player"]["i"] for m in rest], list(range(start, N)),
                                     "%s: updates after its sync" % c.name)
                    await c.close()
            finally:
                await streamer.close()
        run_async(go(), 40)
        self.stop_clean(srv)


# --------------------------------------------------------------------------
# persistence
# --------------------------------------------------------------------------

class PersistenceTest(LivemapCase):

    def test_restart_keeps_markers_and_positions_in_insertion_order(self):
        d = self.make_data_dir()
        srv = self.server(d)
        rec = {}

        async def phase1():
            a = await connect_synced(srv.port, "a")
            b = await connect_synced(srv.port, "b")
            try:
                texts = [marker_add_text(desktop_marker(uid, ts, description="d\u00e9%d" % i))
                         for i, (uid, ts) in enumerate([(9, iso_now(9)), ("b", 1.5), (1, iso_now(1)),
                                                        ("a\u2713", "z"), (3, 1e16)])]
                for t in texts:
                    await a.send(t)
                again = marker_add_text(desktop_marker("b", 1.5, kind="friendly", description="v2"))
                await a.send(again)
                await a.send({"type": "marker_remove", "marker_id": python_marker(texts[2])["id"]})
                ps = [position(u, i * 1.5, -i) for i, u in enumerate(["zz", 4, "aa", "m"])]
                for p in ps:
                    await a.send(p)
                newer = position(4, 99.25, 1e-7, team="red")
                await a.send(newer)
                await b.wait_count(len(texts) + 2 + len(ps) + 1, timeout=10)
                markers = [python_marker(t) for t in texts]
                markers[1] = python_marker(again)
                del markers[2]
                players = [p["player"] for p in ps]
                players[1] = newer["player"]
                rec["markers"], rec["players"] = markers, players
                self.assert_sync(await self.sync_of(srv.port), markers, players)
            finally:
                await a.close()
                await b.close()
        run_async(phase1(), 30)
        self.stop_clean(srv)

        srv2 = self.server(d)

        async def phase2():
            self.assert_sync(await self.sync_of(srv2.port), rec["markers"], rec["players"])
            # the restored order continues: a new marker and a new player go last, a replaced
            # position keeps its place
            a = await connect_synced(srv2.port, "a", n_sync=2)
            b = await connect_synced(srv2.port, "b", n_sync=2)
            try:
                t = marker_add_text(desktop_marker(0, "after-restart"))
                await a.send(t)
                p_old = position("zz", 5, 5)
                p_new = position("new", 6, 6)
                await a.send(p_old)
                await a.send(p_new)
                await b.wait_count(2 + 3)
                rec["markers"].append(python_marker(t))
                rec["players"][0] = p_old["player"]
                rec["players"].append(p_new["player"])
                self.assert_sync(await self.sync_of(srv2.port), rec["markers"], rec["players"])
            finally:
                await a.close()
                await b.close()
        run_async(phase2(), 30)
        self.stop_clean(srv2)

        srv3 = self.server(d)
        run_async(self._check(srv3, rec), 20)
        self.stop_clean(srv3)

    async def _check(self, srv, rec):
        self.assert_sync(await self.sync_of(srv.port), rec["markers"], rec["players"])

    def test_marker_seen_by_others_survives_kill9(self):
        """Strict durability: once another client got marker_added, the marker is on disk."""
        d = self.make_data_dir()
        srv = self.server(d)
        rec = {}

        async def phase1():
            a = await connect_synced(srv.port, "a")
            b = await connect_synced(srv.port, "b")
            try:
                texts = [marker_add_text(desktop_marker(i, iso_now(i))) for i in range(10)]
                for t in texts:
                    await a.send(t)
                await b.wait_count(len(texts))
                rec["markers"] = [python_marker(t) for t in texts]
            finally:
                await a.close()
                await b.close()
        run_async(phase1(), 20)
        srv.proc.kill()
        srv.proc.wait(5)
        srv2 = self.server(d)
        self.assertEqual(run_async(self.sync_of(srv2.port), 10),
                         [{"type": "markers_sync", "markers": rec["markers"]}])
        self.stop_clean(srv2)

    def test_store_from_before_the_order_column(self):
        """A store written before retained state kept its order: its keys come back in key order,
        and what is added afterwards goes after them, across restarts."""
        import sqlite3
        d = self.make_data_dir()
        db = sqlite3.connect(os.path.join(d, "ringcast.db"))
        db.executescript(
            "CREATE TABLE rooms(room TEXT PRIMARY KEY, seq INTEGER NOT NULL);"
            "CREATE TABLE messages(room TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,"
            " sender INTEGER NOT NULL, user TEXT NOT NULL, payload BLOB NOT NULL, event BLOB NOT NULL,"
            " PRIMARY KEY(room, seq)) WITHOUT ROWID;"
            "CREATE TABLE state(room TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
            " PRIMARY KEY(room, key)) WITHOUT ROWID;")
        old = {"m:b_1": {"type": "x", "user_id": "b", "timestamp": 1, "id": "b_1"},
               "m:a_1": {"type": "x", "user_id": "a", "timestamp": 1, "id": "a_1"},
               "p:sq": {"user_id": "q", "x": 1}}
        for k, v in old.items():
            db.execute("INSERT INTO state(room, key, value) VALUES(?, ?, ?)",
                       ("livemap:map", k, json.dumps(v)))
        db.commit()
        db.close()
        srv = self.server(d)
        markers = [old["m:a_1"], old["m:b_1"]]
        players = [old["p:sq"]]

        async def go():
            self.assert_sync(await self.sync_of(srv.port), markers, players)
            a = await connect_synced(srv.port, "a", n_sync=2)
            b = await connect_synced(srv.port, "b", n_sync=2)
            try:
                t = marker_add_text(desktop_marker("0", "new"))
                await a.send(t)
                await a.send(position("p", 1, 1))
                await b.wait_count(4)
                markers.append(python_marker(t))
                players.append(position("p", 1, 1)["player"])
            finally:
                await a.close()
                await b.close()
        run_async(go(), 20)
        self.stop_clean(srv)
        srv2 = self.server(d)
        self.assert_sync(run_async(self.sync_of(srv2.port), 10), markers, players)
        self.stop_clean(srv2)

    def test_sender_gone_before_commit_strict_and_relaxed(self):
        """A marker whose sender disconnects straight away still reaches the others and the store;
        under relaxed durability markers too are delivered at once and written behind, and still
        survive a clean restart."""
        for extra in ("", "[store]\ndurability = \"relaxed\"\n"):
            with self.subTest(durability=extra or "strict"):
                self._sender_gone(extra)

    def _sender_gone(self, extra):
        d = self.make_data_dir()
        srv = self.server(d, extra)
        rec = {}

        async def phase1():
            b = await connect_synced(srv.port, "b")
            try:
                texts = []
                for i in range(5):
                    a = await connect_synced(srv.port, "a%d" % i)
                    t = marker_add_text(desktop_marker("gone%d" % i, iso_now(i)))
                    texts.append(t)
                    await a.send(t)
                    await a.send(position("gone%d" % i, i, i))
                    await a.ws.close()   # at once, before any commit
                    a.reader.cancel()
                await b.wait_count(10)
                self.assertEqual([m["marker"] for m in b.of_type("marker_added")],
                                 [python_marker(t) for t in texts])
                rec["markers"] = [python_marker(t) for t in texts]
                rec["players"] = [m["player"] for m in b.of_type("position_update")]
            finally:
                await b.close()
        run_async(phase1(), 20)
        self.stop_clean(srv)
        srv2 = self.server(d, extra)
        self.assert_sync(run_async(self.sync_of(srv2.port), 10), rec["markers"], rec["players"])
        self.stop_clean(srv2)

    def test_not_persistent_when_configured_off(self):
        d = self.make_data_dir()
        extra = "[profiles.livemap]\npersistent = false\n"
        srv = self.server(d, extra)

        async def phase1():
            a = await connect_synced(srv.port, "a")
            try:
                await a.send(marker_add_text(desktop_marker(1, "x")))
                await a.send(position(1, 2, 3))
                await asyncio.sleep(0.3)
                self.assertEqual(len(await self.sync_of(srv.port)), 2)
            finally:
                await a.close()
        run_async(phase1(), 20)
        self.stop_clean(srv)
        srv2 = self.server(d, extra)
        self.assertEqual(run_async(self.sync_of(srv2.port), 10), [])
        self.stop_clean(srv2)

    def test_store_failure_answers_the_sender_only(self):
        d = self.make_data_dir()
        srv = self.server(d, "[limits]\noutbound_cap = 67108864\n")
        pid = srv.proc.pid
        self.addCleanup(self._unlimit, pid)
        rec = {"ok": [], "failed": []}

        async def go():
            a = await connect_synced(srv.port, "a")
            b = await connect_synced(srv.port, "b")
            try:
                first = marker_add_text(desktop_marker("small", "0"))
                await a.send(first)
                await b.wait_count(1)
                rec["ok"].append(python_marker(first))
                await asyncio.sleep(0.5)
                db = os.path.join(d, "ringcast.db")
                size = sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))
                hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (size + 256 * 1024, hard))
                blob = "b" * (64 * 1024)
                streak = 0
                for i in range(60):
                    t = marker_add_text(desktop_marker("big", i, description=blob))
                    n_b, n_a = len(b.inbox), len(a.inbox)
                    await a.send(t)
                    await asyncio.wait_for(self._either(a, n_a, b, n_b), 10)
                    if len(a.inbox) > n_a:
                        err = a.inbox[-1]
                        self.assertEqual(set(err), {"type", "message"}, err)
                        self.assertEqual(err["type"], "error")
                        self.assertIsInstance(err["message"], str)
                        rec["failed"].append(i)
                        streak += 1
                        if streak >= 3:
                            break
                    else:
                        self.assertEqual(b.inbox[-1]["marker"]["description"], blob)
                        rec["ok"].append(python_marker(t))
                        streak = 0
                self.assertGreaterEqual(streak, 3, "the store never refused a marker")
                self.assert_alive(srv)
                # everything else keeps working: positions (written behind) and chat
                await a.send(position("p", 1, 2))
                await a.send({"type": "chat_message", "message": "still here"})
                await b.wait_for(lambda box: box[-1].get("type") == "chat_message", 5, "chat")
                await quiet([a, b])
                got = [m["marker"]["id"] for m in b.of_type("marker_added")]
                self.assertEqual(got, [m["id"] for m in rec["ok"]], "b got exactly the stored markers")
                self.assertEqual(a.of_type("marker_added"), [])
                # the disk recovers
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))
                t = marker_add_text(desktop_marker("after", 1))
                deadline = time.monotonic() + 5
                while True:
                    n_a, n_b = len(a.inbox), len(b.inbox)
                    await a.send(t)
                    await asyncio.wait_for(self._either(a, n_a, b, n_b), 10)
                    if len(b.inbox) > n_b:
                        break
                    self.assertLess(time.monotonic(), deadline, "markers still refused")
                    await asyncio.sleep(0.2)
                rec["ok"].append(python_marker(t))
            finally:
                await a.close()
                await b.close()

        run_async(go(), 60)
        self.stop_clean(srv)
        srv2 = self.server(d)
        sync = run_async(self.sync_of(srv2.port), 10)
        self.assertEqual(sync[0], {"type": "markers_sync", "markers": rec["ok"]},
                         "after restart: exactly the markers that were stored")
        self.stop_clean(srv2)

    @staticmethod
    async def _either(a, n_a, b, n_b):
        while len(a.inbox) == n_a and len(b.inbox) == n_b:
            await asyncio.sleep(0.01)

    @staticmethod
    def _unlimit(pid):
        try:
            hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))
        except (OSError, ProcessLookupError):
            pass


# --------------------------------------------------------------------------
# mounting
# --------------------------------------------------------------------------

class MountTest(LivemapCase):

    def test_disabled_and_moved(self):
        srv = self.server(extra="[profiles.livemap]\nenabled = false\n")
        with self.assertRaises(harness.HandshakeFailed) as ctx:
            harness.RawWebSocket(srv.port, PATH)
        self.assertEqual(ctx.exception.response.status, 404)
        self.stop_clean(srv)
        srv = self.server(extra="[profiles.livemap]\npath = \"/live\"\n")

        async def go():
            a = await connect(srv.port, "a", path="/live")
            b = await connect(srv.port, "b", path="/live")
            try:
                await a.barrier()
                await b.barrier()
                await a.send({"type": "chat_message", "message": "moved"})
                await b.wait_count(1)
            finally:
                await a.close()
                await b.close()
        run_async(go(), 20)
        with self.assertRaises(harness.HandshakeFailed):
            harness.RawWebSocket(srv.port, PATH)
        self.stop_clean(srv)


if __name__ == "__main__":
    harness.main()
