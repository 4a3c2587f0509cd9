#!/usr/bin/python3
"""Durable store: persistent rooms (`[store] persistent_rooms`) keep their history, sequence numbers
and retained state across restarts and crashes; strict durability acknowledges and delivers only
what is committed; a failing disk refuses writes (`store_failed`) without hurting anything else;
a corrupt store file stops start-up and is left alone.

Run: /usr/bin/python3 tests/integration/test_store.py --binary build/ringcast --backend epoll

Every test uses its own data_dir (tempfile.mkdtemp) and restarts the server on it.
"""

import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from ws_inbox import WsInbox, json_decoder  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

NOFILE = harness.raise_nofile_limit(20000)

TOKENS_TOML = """
[tokens]
"tok-a" = { user_id = "u1", nickname = "Alice" }
"tok-b" = { user_id = "u2", nickname = "Bob" }
"""

_next_id = [0]


def new_id():
    _next_id[0] += 1
    return _next_id[0]


def store_config(data_dir, persistent=("keep-*",), durability=None, history=None, extra=""):
    lines = ["[server]", "data_dir = %s" % json.dumps(data_dir), "",
             "[store]", "persistent_rooms = %s" % harness.toml_value(list(persistent))]
    if durability is not None:
        lines.append("durability = %s" % json.dumps(durability))
    lines.append("")
    if history is not None:
        lines += ["[hub]", "history = %d" % history, ""]
    return "\n".join(lines) + "\n" + extra


def db_path(data_dir):
    return os.path.join(data_dir, "ringcast.db")


def file_size(path):
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def file_stamp(path):
    try:
        st = os.stat(path)
        return (st.st_size, st.st_mtime_ns)
    except FileNotFoundError:
        return None


# --------------------------------------------------------------------------
# /ws client
# --------------------------------------------------------------------------

class Client(WsInbox):
    """A /ws connection. A reader task parses every text frame; `hook(obj)` (if set) sees it first
    and swallows it by returning True, everything else goes to `inbox`."""

    def __init__(self, ws, name):
        self.hook = None
        self.last_id = None
        super().__init__(ws, name, decode=json_decoder(
            lambda m: {"type": "<unparseable>", "text": m},
            binary=lambda m: {"type": "<binary>", "len": len(m)}),
            on_message=lambda obj: self.hook is not None and self.hook(obj))

    async def req(self, op, timeout=5.0, **fields):
        rid = new_id()
        self.last_id = rid
        msg = {"op": op, "id": rid}
        msg.update(fields)
        await self.send(msg)
        return await self.take(lambda m: isinstance(m, dict) and m.get("id") == rid, timeout,
                               "reply to %s id %d" % (op, rid))

    async def join(self, room, **fields):
        r = await self.req("join", room=room, **fields)
        if r.get("type") != "joined":
            raise AssertionError("%s: join %s failed: %r" % (self.name, room, r))
        return r

    def messages(self, room):
        return [m for m in self.inbox if isinstance(m, dict) and m.get("type") == "message"
                and m.get("room") == room]

    async def wait_messages(self, room, n, timeout=5.0):
        """Wait until at least n message events of room are in the inbox; returns them (kept)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.messages(room)
            if len(got) >= n:
                return got
            if self.closed or time.monotonic() >= deadline:
                raise AssertionError("%s: %d of %d message events of %s within %.1fs; inbox tail %r"
                                     % (self.name, len(got), n, room, timeout, _short(self.inbox[-5:])))
            await asyncio.sleep(0.02)


def _short(obj, limit=600):
    s = repr(obj)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


async def connect(port, name="c"):
    ws = await websockets.connect("ws://127.0.0.1:%d/ws" % port, ping_interval=None, compression=None,
                                  max_size=64 << 20, max_queue=None, open_timeout=10, close_timeout=3)
    return Client(ws, name)


def run_async(coro, timeout):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def as_history_item(ev):
    """A `message` event -> the shape of an entry of a `history` reply."""
    out = {k: ev[k] for k in ("seq", "ts", "from", "data")}
    if "user" in ev:
        out["user"] = ev["user"]
    return out


def sample_data(i):
    """Varied JSON payloads (objects, unicode strings, numbers, arrays)."""
    kind = i % 5
    if kind == 0:
        return {"i": i, "text": "hello %d" % i, "nested": {"a": [1, 2, {"b": None}], "ok": True}}
    if kind == 1:
        return "caf\u00e9 \u2713 \U0001F600 #%d \"quoted\" \\ back" % i
    if kind == 2:
        return i * 1000 + 7
    if kind == 3:
        return [i, "x", 1.5, False, None, {"deep": [[i]]}]
    return {"i": i, "empty": {}, "list": [], "s": ""}


# --------------------------------------------------------------------------
# base class
# --------------------------------------------------------------------------

class StoreCase(harness.ProcessTestCase):

    def make_data_dir(self):
        d = tempfile.mkdtemp(prefix="ringcast-store-")
        self.addCleanup(shutil.rmtree, d, True)   # runs after the servers are killed (LIFO)
        return d

    def stop_clean(self, srv):
        rc = srv.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, "ringcast did not stop cleanly on SIGTERM (exit code %r)\n%s"
                         % (rc, srv.stderr_text()))

    def assert_alive(self, srv):
        self.assertTrue(srv.alive(), "ringcast died (exit code %r)\n%s"
                        % (srv.proc.returncode if srv.proc else None, srv.stderr_text()))

    async def publish_acked(self, c, room, data, **fields):
        r = await c.req("publish", room=room, data=data, **fields)
        self.assertEqual(r, {"type": "ack", "id": c.last_id}, "publish to %s: %r" % (room, r))
        return r

    async def history_all(self, c, room, expect_max=1000000):
        """Every recorded message of room, newest first, paged with limit/offset (bounded)."""
        out = []
        seq = None
        for page in range(expect_max // 1000 + 3):
            r = await c.req("history", room=room, limit=1000, offset=len(out), timeout=10)
            self.assertEqual(r.get("type"), "history", r)
            if seq is None:
                seq = r["seq"]
            self.assertEqual(r["seq"], seq, "room seq changed while paging history")
            out += r["messages"]
            if len(r["messages"]) < 1000:
                return seq, out
        self.fail("history of %s did not end after %d pages" % (room, page + 1))


# --------------------------------------------------------------------------
# 1. restart keeps history, sequence numbers and retained state
# --------------------------------------------------------------------------

class RestartTest(StoreCase):

    def test_restart_restores_history_seq_and_state(self):
        d = self.make_data_dir()
        cfg = store_config(d, persistent=("keep-*", "exact-room")) + TOKENS_TOML
        srv = self.new_server(config_text=cfg)
        K = 30
        R1, R2, RS, EX = "keep-r1", "keep-r2", "keep-state-only", "exact-room"
        TEMPS = ("temp-r1", "keepx", "exact-room2", "keep")   # none matches a pattern
        unicode_key = "k\u00e9\u2713"
        want_state = {"k1": {"x": 2}, "k3": "v3", unicode_key: {"deep": {"a": [1, 2, 3]}}}
        rec = {}

        async def phase1():
            a = await connect(srv.port, "a")
            b = await connect(srv.port, "b")
            try:
                r = await a.req("auth", token="tok-a")
                self.assertEqual(r.get("type"), "authed", r)
                sid = r["session"]
                for room in (R1, R2, RS, EX) + TEMPS:
                    await a.join(room)
                await b.join(R1)
                for i in range(K):
                    await self.publish_acked(a, R1, sample_data(i))
                evs = await a.wait_messages(R1, K)
                self.assertEqual([e["seq"] for e in evs], list(range(1, K + 1)))
                self.assertEqual([e["data"] for e in evs], [sample_data(i) for i in range(K)])
                for e in evs:
                    self.assertEqual((e["from"], e.get("user")), (sid, "u1"), e)
                bevs = await b.wait_messages(R1, K)
                self.assertEqual(bevs, evs, "member b saw the same events as the publisher")
                rec["r1"] = evs
                # retained state: sets, an overwrite and a delete
                for key, value in (("k1", {"x": 1}), ("k2", [1, 2]), ("k3", "v3"),
                                   (unicode_key, {"deep": {"a": [1, 2, 3]}}), ("k1", {"x": 2})):
                    r = await a.req("state.set", room=R1, key=key, value=value)
                    self.assertEqual(r, {"type": "ack", "id": a.last_id}, r)
                r = await a.req("state.del", room=R1, key="k2")
                self.assertEqual(r, {"type": "ack", "id": a.last_id}, r)
                j = await b.req("history", room=R1, limit=1)
                self.assertEqual(j["seq"], K)
                for i in range(3):
                    await self.publish_acked(a, R2, "r2-%d" % i)
                rec["r2"] = await a.wait_messages(R2, 3)
                r = await a.req("state.set", room=RS, key="s", value=1)
                self.assertEqual(r, {"type": "ack", "id": a.last_id}, r)
                for i in range(2):
                    await self.publish_acked(a, EX, {"ex": i})
                rec["ex"] = await a.wait_messages(EX, 2)
                # non-persistent rooms cost no store write at all: the files do not change
                await asyncio.sleep(0.6)   # let an idle checkpoint of the writes above happen
                paths = [db_path(d), db_path(d) + "-wal"]
                before = [file_stamp(p) for p in paths]
                self.assertIsNotNone(before[0], "no %s after persistent writes" % paths[0])
                for room in TEMPS:
                    for i in range(5):
                        await self.publish_acked(a, room, {"t": room, "i": i})
                    r = await a.req("state.set", room=room, key="t", value=1)
                    self.assertEqual(r, {"type": "ack", "id": a.last_id}, r)
                    self.assertEqual([e["seq"] for e in await a.wait_messages(room, 5)], [1, 2, 3, 4, 5])
                await asyncio.sleep(0.4)
                after = [file_stamp(p) for p in paths]
                self.assertEqual(after, before, "publishes/state in rooms matching no pattern touched "
                                 "the store files (size, mtime_ns) of %r" % paths)
            finally:
                await a.close()
                await b.close()

        run_async(phase1(), 40)
        self.stop_clean(srv)

        srv2 = self.new_server(config_text=cfg)

        async def phase2():
            cs = []
            try:
                r1 = rec["r1"]
                # join with history: joined (seq, state) then the last messages, oldest first
                c1 = await connect(srv2.port, "c1")
                cs.append(c1)
                j = await c1.join(R1, history=1000)
                self.assertEqual((j["seq"], j["state"]), (K, want_state), j)
                await c1.wait_messages(R1, K)
                await asyncio.sleep(0.2)
                self.assertEqual(c1.messages(R1), r1,
                                 "join history=1000 after restart replays exactly the stored events")
                c2 = await connect(srv2.port, "c2")
                cs.append(c2)
                j = await c2.join(R1, since=K - 7)
                self.assertEqual((j["seq"], j["state"]), (K, want_state), j)
                await c2.wait_messages(R1, 7)
                await asyncio.sleep(0.2)
                self.assertEqual(c2.messages(R1), r1[K - 7:], "join since=%d after restart" % (K - 7))
                c3 = await connect(srv2.port, "c3")
                cs.append(c3)
                await c3.join(R1, history=5)
                await c3.wait_messages(R1, 5)
                await asyncio.sleep(0.2)
                self.assertEqual(c3.messages(R1), r1[-5:], "join history=5 after restart")
                # history op: newest first, and since
                h = await c3.req("history", room=R1, limit=1000)
                self.assertEqual((h["type"], h["room"], h["seq"]), ("history", R1, K))
                self.assertEqual(h["messages"], [as_history_item(e) for e in reversed(r1)])
                h = await c3.req("history", room=R1, limit=7, offset=3)
                self.assertEqual(h["messages"], [as_history_item(e) for e in reversed(r1)][3:10])
                h = await c3.req("history", room=R1, since=10)
                self.assertEqual(h["messages"], [as_history_item(e) for e in r1[10:]])
                # a new publish continues the sequence
                p = await connect(srv2.port, "p")
                cs.append(p)
                await p.join(R1)
                counts = {c: len(c.messages(R1)) for c in (p, c1, c2, c3)}
                await self.publish_acked(p, R1, "after-restart")
                for c in (p, c1, c2, c3):
                    ev = (await c.wait_messages(R1, counts[c] + 1))[-1]
                    self.assertEqual((ev["seq"], ev["data"]), (K + 1, "after-restart"), c.name)
                # the other stored rooms
                j = await p.join(R2, history=10)
                self.assertEqual((j["seq"], j["state"]), (3, {}), j)
                await p.wait_messages(R2, 3)
                await asyncio.sleep(0.1)
                self.assertEqual(p.messages(R2), rec["r2"])
                j = await p.join(RS)
                self.assertEqual((j["seq"], j["state"]), (0, {"s": 1}), "state-only room: %r" % j)
                h = await p.req("history", room=RS)
                self.assertEqual((h["seq"], h["messages"]), (0, []))
                j = await p.join(EX, history=10)
                self.assertEqual((j["seq"], j["state"]), (2, {}), j)
                await p.wait_messages(EX, 2)
                await asyncio.sleep(0.1)
                self.assertEqual(p.messages(EX), rec["ex"])
                await self.publish_acked(p, R2, "r2-next")
                self.assertEqual((await p.wait_messages(R2, 4))[-1]["seq"], 4)
                # rooms matching no pattern were not kept: they start over
                for room in TEMPS:
                    h = await p.req("history", room=room)
                    self.assertEqual((h["seq"], h["messages"]), (0, []),
                                     "non-persistent room %s restored: %r" % (room, h))
                    j = await p.join(room, history=100)
                    self.assertEqual((j["seq"], j["state"]), (0, {}),
                                     "non-persistent room %s restored: %r" % (room, j))
                    await self.publish_acked(p, room, "fresh")
                    await p.wait_messages(room, 1)
                    await asyncio.sleep(0.1)
                    self.assertEqual([(e["seq"], e["data"]) for e in p.messages(room)], [(1, "fresh")],
                                     "non-persistent room %s" % room)
            finally:
                for c in cs:
                    await c.close()

        run_async(phase2(), 40)
        self.stop_clean(srv2)


# --------------------------------------------------------------------------
# 2. the history bound holds on disk
# --------------------------------------------------------------------------

class HistoryBoundTest(StoreCase):

    def test_history_bound_on_disk(self):
        d = self.make_data_dir()
        cfg = store_config(d, persistent=("keep-*",), history=5)
        room = "keep-bound"
        srv = self.new_server(config_text=cfg)
        rec = {}

        async def publish(port, datas):
            c = await connect(port, "p")
            try:
                await c.join(room)
                for x in datas:
                    await self.publish_acked(c, room, x)
                evs = await c.wait_messages(room, len(datas))
                h = await c.req("history", room=room, limit=100)
                return evs, h
            finally:
                await c.close()

        async def check(port, first, last, label):
            c = await connect(port, "c")
            try:
                j = await c.join(room, history=1000)
                self.assertEqual(j["seq"], last, "%s: joined %r" % (label, j))
                await c.wait_messages(room, last - first + 1)
                await asyncio.sleep(0.2)
                got = c.messages(room)
                self.assertEqual([(e["seq"], e["data"]) for e in got],
                                 [(s, {"n": s}) for s in range(first, last + 1)], label)
                self.assertEqual(got, rec["events"][first - 1:last], label + ": same events as live")
                h = await c.req("history", room=room, since=0)
                self.assertEqual([m["seq"] for m in h["messages"]], list(range(first, last + 1)), label)
                h = await c.req("history", room=room, limit=1000)
                self.assertEqual([m["seq"] for m in h["messages"]], list(range(last, first - 1, -1)), label)
                self.assertEqual(h["seq"], last)
            finally:
                await c.close()

        async def phase1():
            evs, h = await publish(srv.port, [{"n": n} for n in range(1, 13)])
            self.assertEqual([e["seq"] for e in evs], list(range(1, 13)))
            self.assertEqual([m["seq"] for m in h["messages"]], [12, 11, 10, 9, 8], "live history bound")
            rec["events"] = evs

        run_async(phase1(), 20)
        self.stop_clean(srv)
        srv2 = self.new_server(config_text=cfg)

        async def phase2():
            await check(srv2.port, 8, 12, "after restart")
            evs, _ = await publish(srv2.port, [{"n": 13}])
            self.assertEqual(evs[-1]["seq"], 13, "the next publish after restart")
            rec["events"] = rec["events"] + evs

        run_async(phase2(), 20)
        self.stop_clean(srv2)
        srv3 = self.new_server(config_text=cfg)
        run_async(check(srv3.port, 9, 13, "after a second restart"), 20)
        self.stop_clean(srv3)


# --------------------------------------------------------------------------
# 3. kill -9 under a persistent write load
# --------------------------------------------------------------------------

class CrashTest(StoreCase):
    ROOM = "keep-crash"
    CLIENTS = 4
    WINDOW = 20
    LOAD_SECONDS = 2.0
    MAX_PER_CLIENT = 50000
    DURABILITY = None     # default: strict

    async def load_and_kill(self, srv, rnd, record):
        """CLIENTS clients publish pipelined (<= WINDOW in flight each) to ROOM; after LOAD_SECONDS
        the server gets SIGKILL while the load runs. Fills record:
          acked: {(rnd, ci, n)}           publishes whose ack arrived
          seen: {(rnd, ci, n): seq}       every message event any member saw
          sent_last_300ms, inflight_at_kill: ints (liveness of the load at the kill)"""
        room = self.ROOM
        stop = [False]
        clients = []
        sent = [0] * self.CLIENTS
        replies = [0] * self.CLIENTS
        problems = []
        sems = [asyncio.Semaphore(self.WINDOW) for _ in range(self.CLIENTS)]

        def make_hook(ci, c):
            last_seq = [0]

            def hook(m):
                t = m.get("type")
                if t == "ack" and isinstance(m.get("id"), str) and m["id"].startswith("L"):
                    _, r, cc, n = m["id"].split("-")
                    key = (int(r), int(cc), int(n))
                    if key in record["acked"] or int(cc) != ci:
                        problems.append("%s: unexpected ack %r" % (c.name, m))
                    record["acked"].add(key)
                    replies[ci] += 1
                    sems[ci].release()
                    return True
                if t == "error":
                    problems.append("%s: error during load %r" % (c.name, m))
                    replies[ci] += 1
                    sems[ci].release()
                    return True
                if t == "message" and m.get("room") == room:
                    dd = m.get("data")
                    key = (dd["r"], dd["c"], dd["n"])
                    if m["seq"] <= last_seq[0]:
                        problems.append("%s: seq %d after %d" % (c.name, m["seq"], last_seq[0]))
                    last_seq[0] = m["seq"]
                    old = record["seen"].setdefault(key, m["seq"])
                    if old != m["seq"]:
                        problems.append("%s: %r seen with seq %d and %d" % (c.name, key, old, m["seq"]))
                    return True
                return False
            return hook

        async def sender(ci, c):
            n = 0
            try:
                while not stop[0] and n < self.MAX_PER_CLIENT and not c.closed:
                    try:
                        await asyncio.wait_for(sems[ci].acquire(), 0.5)
                    except asyncio.TimeoutError:
                        continue
                    if stop[0]:
                        break
                    await c.send({"op": "publish", "room": room, "id": "L-%d-%d-%d" % (rnd, ci, n),
                                  "data": {"r": rnd, "c": ci, "n": n, "pad": "x" * (n % 200)}})
                    sent[ci] += 1
                    n += 1
            except websockets.ConnectionClosed:
                pass

        try:
            for ci in range(self.CLIENTS):
                c = await connect(srv.port, "load%d" % ci)
                clients.append(c)
                await c.join(room)
                c.hook = make_hook(ci, c)
            tasks = [asyncio.ensure_future(sender(ci, c)) for ci, c in enumerate(clients)]
            await asyncio.sleep(self.LOAD_SECONDS - 0.3)
            sent_before = sum(sent)
            await asyncio.sleep(0.3)
            for t in tasks:
                self.assertFalse(t.done(), "a load sender stopped before the kill: %r" % (t,))
            record["sent_last_300ms"] = sum(sent) - sent_before
            record["inflight_at_kill"] = sum(sent) - sum(replies)
            record["acked_at_kill"] = len(record["acked"])
            os.kill(srv.proc.pid, signal.SIGKILL)
            stop[0] = True
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
            for c in clients:   # the server is gone: every reader ends (after what the kernel had)
                await asyncio.wait_for(c.reader, 5)
        finally:
            for c in clients:
                await c.close()
        self.assertEqual(srv.wait_exit(5), -signal.SIGKILL)
        self.assertEqual(problems[:10], [], "during the load")

    async def verify(self, srv, record):
        c = await connect(srv.port, "verify")
        try:
            seq, newest_first = await self.history_all(c, self.ROOM)
            hist = list(reversed(newest_first))
            seqs = [m["seq"] for m in hist]
            self.assertEqual(seqs, sorted(set(seqs)), "history seqs are unique and increasing")
            self.assertTrue(hist, "nothing restored")
            self.assertEqual(seq, seqs[-1], "restored room seq vs newest restored message")
            by_key = {}
            for m in hist:
                dd = m["data"]
                key = (dd["r"], dd["c"], dd["n"])
                self.assertNotIn(key, by_key, "message %r stored twice" % (key,))
                by_key[key] = m["seq"]
            missing_acked = sorted(k for k in record["acked"] if k not in by_key)
            self.assertEqual(missing_acked[:20], [], "%d of %d acknowledged messages lost by the crash"
                             % (len(missing_acked), len(record["acked"])))
            bad = sorted((k, s, by_key.get(k)) for k, s in record["seen"].items() if by_key.get(k) != s)
            self.assertEqual(bad[:20], [], "%d of %d delivered messages (key, seq delivered, seq restored) "
                             "missing or renumbered after the crash (strict: delivered => committed)"
                             % (len(bad), len(record["seen"])))
            acked_without_event = [k for k in record["acked"] if k not in record["seen"]]
            self.assertLessEqual(len(acked_without_event), self.CLIENTS * self.WINDOW,
                                 "acks whose message event never reached the publisher")
            # join with since replays the same stored messages
            tail = hist[-300:]
            j = await c.join(self.ROOM, since=tail[0]["seq"] - 1)
            self.assertEqual(j["seq"], seq)
            await c.wait_messages(self.ROOM, len(tail), timeout=10)
            await asyncio.sleep(0.2)
            self.assertEqual([as_history_item(e) for e in c.messages(self.ROOM)], tail)
            return seq, hist
        finally:
            await c.close()

    def test_kill_9_during_persistent_load(self):
        d = self.make_data_dir()
        cfg = store_config(d, persistent=("keep-*",), history=1000000, durability=self.DURABILITY,
                           extra="[limits]\noutbound_cap = 67108864\n")
        record = {"acked": set(), "seen": {}}
        srv = self.new_server(config_text=cfg)
        prev_seq = 0
        for rnd in range(2):
            run_async(self.load_and_kill(srv, rnd, record), 30)
            sys.stderr.write("\n  round %d: %d acked (%d at kill), %d in flight at kill, %d events seen\n"
                             % (rnd, len(record["acked"]), record["acked_at_kill"],
                                record["inflight_at_kill"], len(record["seen"])))
            self.assertGreater(record["sent_last_300ms"], 0, "the load was not running at the kill")
            self.assertGreaterEqual(sum(1 for k in record["acked"] if k[0] == rnd), 100,
                                    "round %d: too few acks to mean anything" % rnd)
            srv = self.new_server(config_text=cfg)
            seq, hist = run_async(self.verify(srv, record), 60)
            self.assertGreaterEqual(seq, prev_seq, "restored seq went backwards")
            round_seqs = [m["seq"] for m in hist if m["data"]["r"] == rnd]
            self.assertTrue(round_seqs and min(round_seqs) > prev_seq,
                            "round %d reused sequence numbers of round %d (restored seq %d)"
                            % (rnd, rnd - 1, prev_seq))
            prev_seq = seq

        async def next_publish():
            c = await connect(srv.port, "next")
            try:
                await c.join(self.ROOM)
                await self.publish_acked(c, self.ROOM, {"r": 9, "c": 0, "n": 0})
                return (await c.wait_messages(self.ROOM, 1))[0]["seq"]
            finally:
                await c.close()
        self.assertEqual(run_async(next_publish(), 10), prev_seq + 1,
                         "the first publish after the crash continues the restored sequence")
        self.stop_clean(srv)


# --------------------------------------------------------------------------
# 4. full disk (RLIMIT_FSIZE)
# --------------------------------------------------------------------------

class FullDiskTest(StoreCase):

    def test_full_disk_refuses_then_recovers(self):
        d = self.make_data_dir()
        # (the 256 KiB state value below must reach the store: above the 64 KiB default limit)
        cfg = store_config(d, persistent=("keep-*",), extra="[limits]\noutbound_cap = 67108864\n"
                           "[hub]\nmax_state_value_bytes = 1048576\n")
        room, temp = "keep-full", "temp-full"
        srv = self.new_server(config_text=cfg)
        pid = srv.proc.pid
        self.addCleanup(self._unlimit, pid)
        blob = "b" * (64 * 1024)
        ok, failed = [], []      # tags
        fail_ids = []
        info = {}

        async def publish_tag(a, tag, big=True):
            data = {"tag": tag, "blob": blob} if big else {"tag": tag}
            r = await a.req("publish", room=room, data=data, timeout=15)
            if r == {"type": "ack", "id": a.last_id}:
                ok.append(tag)
                return True
            self.assertEqual((r.get("type"), r.get("code")), ("error", "store_failed"),
                             "publish %s: neither an ack nor store_failed: %r" % (tag, r))
            self.assertEqual(set(r), {"type", "id", "code", "message"}, r)
            self.assertEqual(r["id"], a.last_id)
            self.assertIsInstance(r["message"], str)
            failed.append(tag)
            fail_ids.append(a.last_id)
            return False

        def tags_of(c, rm):
            return [e["data"]["tag"] for e in c.messages(rm)]

        async def scenario():
            a = await connect(srv.port, "a")
            b = await connect(srv.port, "b")
            try:
                for c in (a, b):
                    await c.join(room)
                    await c.join(temp)
                for i in range(5):
                    self.assertTrue(await publish_tag(a, "small-%d" % i, big=False))
                await b.wait_messages(room, 5)
                await asyncio.sleep(0.5)
                sizes = {p: file_size(p) for p in (db_path(d), db_path(d) + "-wal")}
                limit = sum(sizes.values()) + 256 * 1024
                # only the soft limit: raising a hard limit again needs CAP_SYS_RESOURCE, which a
                # container's root may lack; the soft limit is what makes writes fail
                hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, hard))
                info["limit"] = (sizes, limit)
                # publish big payloads until the store refuses three in a row (bounded)
                streak = 0
                for i in range(60):
                    if await publish_tag(a, "big-%d" % i):
                        streak = 0
                    else:
                        streak += 1
                        if streak >= 3:
                            break
                self.assertGreaterEqual(streak, 3, "no store_failed after %d publishes of 64 KiB with "
                                        "RLIMIT_FSIZE %d (files %r)" % (i + 1, limit, sizes))
                self.assert_alive(srv)
                # retained state is refused the same way
                r = await a.req("state.set", room=room, key="huge", value="h" * (256 * 1024), timeout=15)
                self.assertEqual((r.get("type"), r.get("code"), r.get("id")), ("error", "store_failed", a.last_id),
                                 "state.set while the disk is full: %r" % (r,))
                # everything else keeps working
                self.assertEqual(srv.health()["status"], "healthy")
                with harness.RawWebSocket(srv.port, "/echo") as e:
                    self.assertEqual(e.echo(harness.OP_TEXT, b"still here"), (harness.OP_TEXT, b"still here"))
                r = await a.req("publish", room=temp, data={"tag": "temp-0"})
                self.assertEqual(r, {"type": "ack", "id": a.last_id}, "non-persistent publish: %r" % (r,))
                await b.wait_messages(temp, 1)
                self.assertEqual(tags_of(b, temp), ["temp-0"])
                r = await a.req("ping")
                self.assertEqual(r.get("type"), "pong")
                # still refusing persistent writes
                self.assertFalse(await publish_tag(a, "big-still-full"), "publish accepted while still full")
                await asyncio.sleep(0.5)
                for c in (a, b):
                    leaked = [t for t in tags_of(c, room) if t in failed]
                    self.assertEqual(leaked, [], "%s received message events of refused publishes" % c.name)
                    self.assertEqual([m for m in c.inbox if m.get("type") == "state" and m.get("key") == "huge"],
                                     [], "%s received the refused state.set" % c.name)
                acks = [m for m in a.inbox if m.get("type") == "ack" and m.get("id") in fail_ids]
                self.assertEqual(acks, [], "acks for refused publishes")
                self.assertEqual(tags_of(b, room), ok, "b got exactly the accepted publishes")
                h = await b.req("history", room=room, limit=1000)
                self.assertEqual([m["data"]["tag"] for m in reversed(h["messages"])], ok,
                                 "live history holds exactly the accepted publishes")
                # the disk recovers: persistent publishes work again within a few seconds
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))
                deadline = time.monotonic() + 5
                n = 0
                while True:
                    if await publish_tag(a, "after-%d" % n):
                        break
                    n += 1
                    self.assertLess(time.monotonic(), deadline,
                                    "persistent publishes still refused 5 s after the limit was lifted")
                    await asyncio.sleep(0.2)
                for i in range(3):
                    self.assertTrue(await publish_tag(a, "later-%d" % i), "refused after recovery")
                r = await a.req("state.set", room=room, key="after", value={"ok": 1})
                self.assertEqual(r, {"type": "ack", "id": a.last_id}, r)
                await b.wait_messages(room, len(ok), timeout=10)
                await asyncio.sleep(0.3)
                self.assertEqual(tags_of(b, room), ok, "b after recovery")
                self.assertEqual(tags_of(a, room), ok, "a (echo) after recovery")
                bseqs = [e["seq"] for e in b.messages(room)]
                self.assertEqual(bseqs, sorted(set(bseqs)))
                info["events"] = {e["data"]["tag"]: e["seq"] for e in b.messages(room)}
            finally:
                await a.close()
                await b.close()

        run_async(scenario(), 120)
        sys.stderr.write("\n  limit %r: %d accepted, %d refused\n" % (info.get("limit"), len(ok), len(failed)))
        self.stop_clean(srv)
        srv2 = self.new_server(config_text=cfg)

        async def after_restart():
            c = await connect(srv2.port, "c")
            try:
                h = await c.req("history", room=room, since=0)
                got = [(m["data"]["tag"], m["seq"]) for m in h["messages"]]
                self.assertEqual(got, [(t, info["events"][t]) for t in ok],
                                 "after restart: exactly the accepted publishes, with their seqs")
                j = await c.join(room)
                self.assertEqual(j["state"], {"after": {"ok": 1}})
                self.assertEqual(j["seq"], h["seq"])
                self.assertGreaterEqual(j["seq"], info["events"][ok[-1]])
            finally:
                await c.close()

        run_async(after_restart(), 30)
        self.stop_clean(srv2)

    @staticmethod
    def _unlimit(pid):
        try:
            hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))
        except (OSError, ProcessLookupError):
            pass


# --------------------------------------------------------------------------
# 5. a corrupt or unreadable store stops start-up and is left alone
# --------------------------------------------------------------------------

class CorruptStoreTest(StoreCase):

    def start_must_fail(self, d, label):
        srv = self.new_server(start=False, config_text=store_config(d))
        path = db_path(d)
        t0 = time.monotonic()
        try:
            p = subprocess.run(srv.args(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=10)
        except subprocess.TimeoutExpired as e:
            self.fail("%s: ringcast still running 10 s after start on a bad store\n%s"
                      % (label, (e.stderr or b"").decode("utf-8", "replace")))
        err = (p.stdout + p.stderr).decode("utf-8", "replace")
        self.assertGreater(p.returncode, 0, "%s: exit code %r (want a non-zero exit, not a signal)\n%s"
                           % (label, p.returncode, err))
        self.assertIn(path, err, "%s: the message does not name the store file\n%s" % (label, err))
        self.assertNotIn("listening on", err, "%s: it started listening\n%s" % (label, err))
        self.assertLess(time.monotonic() - t0, 10)
        return err

    def check_file_kept(self, d, content, label):
        with open(db_path(d), "rb") as f:
            self.assertTrue(f.read() == content, "%s: the store file was modified or replaced" % label)

    def test_garbage_file(self):
        d = self.make_data_dir()
        content = os.urandom(8192)
        with open(db_path(d), "wb") as f:
            f.write(content)
        self.start_must_fail(d, "8 KiB of random bytes")
        self.check_file_kept(d, content, "random bytes")

    def test_sqlite_header_then_garbage(self):
        d = self.make_data_dir()
        content = b"SQLite format 3\x00" + b"\x10\x00\x01\x01\x00\x40\x20\x20" + os.urandom(4096 * 4 - 24)
        with open(db_path(d), "wb") as f:
            f.write(content)
        self.start_must_fail(d, "SQLite header + garbage")
        self.check_file_kept(d, content, "SQLite header + garbage")

    def test_real_store_with_damaged_pages(self):
        d = self.make_data_dir()
        cfg = store_config(d)
        srv = self.new_server(config_text=cfg)

        async def fill():
            c = await connect(srv.port, "c")
            try:
                await c.join("keep-x")
                for i in range(20):
                    await self.publish_acked(c, "keep-x", {"i": i, "pad": "p" * 500})
                r = await c.req("state.set", room="keep-x", key="k", value=1)
                self.assertEqual(r.get("type"), "ack")
            finally:
                await c.close()
        run_async(fill(), 20)
        self.stop_clean(srv)
        if file_size(db_path(d) + "-wal") > 0:
            self.skipTest("the WAL was not folded back on a clean stop; cannot damage pages reliably")
        with open(db_path(d), "rb") as f:
            good = f.read()
        self.assertGreaterEqual(len(good), 3 * 4096, "store file unexpectedly small")
        content = good[:4096] + os.urandom(len(good) - 4096)   # keep page 1, destroy every other page
        with open(db_path(d), "wb") as f:
            f.write(content)
        self.start_must_fail(d, "a real store with pages 2.. overwritten")
        self.check_file_kept(d, content, "damaged real store")

    def test_store_path_is_a_directory(self):
        d = self.make_data_dir()
        os.mkdir(db_path(d))
        with open(os.path.join(db_path(d), "keepme"), "wb") as f:
            f.write(b"x")
        self.start_must_fail(d, "ringcast.db is a directory")
        self.assertTrue(os.path.isdir(db_path(d)) and os.listdir(db_path(d)) == ["keepme"],
                        "the directory in the store's place was changed")


# --------------------------------------------------------------------------
# 6. relaxed durability still persists across a clean restart
# --------------------------------------------------------------------------

class RelaxedTest(StoreCase):

    def test_relaxed_survives_clean_restart(self):
        d = self.make_data_dir()
        cfg = store_config(d, persistent=("keep-*",), durability="relaxed", history=1000)
        room = "keep-relaxed"
        N = 300
        srv = self.new_server(config_text=cfg)
        rec = {}

        async def phase1():
            c = await connect(srv.port, "p")
            try:
                await c.join(room)
                r = await c.req("state.set", room=room, key="s1", value={"v": 1})
                self.assertEqual(r, {"type": "ack", "id": c.last_id})
                for i in range(N - 1):      # pipelined, no ids
                    await c.send({"op": "publish", "room": room, "data": sample_data(i)})
                await self.publish_acked(c, room, sample_data(N - 1))
                await c.send({"op": "state.set", "room": room, "key": "s2", "value": [2]})
                await c.send({"op": "state.del", "room": room, "key": "s1"})
                r = await c.req("ping")
                self.assertEqual(r.get("type"), "pong")
                rec["events"] = await c.wait_messages(room, N, timeout=10)
            finally:
                await c.close()

        run_async(phase1(), 30)
        self.assertEqual([e["seq"] for e in rec["events"]], list(range(1, N + 1)))
        self.stop_clean(srv)   # straight away: write-behind must be flushed by the clean stop
        srv2 = self.new_server(config_text=cfg)

        async def phase2():
            c = await connect(srv2.port, "c")
            try:
                j = await c.join(room, history=1000)
                self.assertEqual((j["seq"], j["state"]), (N, {"s2": [2]}), _short(j))
                await c.wait_messages(room, N, timeout=10)
                await asyncio.sleep(0.2)
                self.assertEqual(c.messages(room), rec["events"], "relaxed: events after a clean restart")
                await self.publish_acked(c, room, "next")
                self.assertEqual((await c.wait_messages(room, N + 1))[-1]["seq"], N + 1)
            finally:
                await c.close()

        run_async(phase2(), 30)
        self.stop_clean(srv2)


if __name__ == "__main__":
    harness.main()
