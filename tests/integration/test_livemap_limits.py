#!/usr/bin/python3
"""livemap (/map): the bounds on retained markers, [profiles.livemap] max_markers and
max_marker_bytes (docs/profiles/livemap.md). A marker_add past either limit gets
{"type":"error","message":...}, changes nothing and reaches nobody; with the defaults a full map's
markers_sync stays within 1 MiB, so a default Python websockets client (max_size 1 MiB, as the
seed's clients use it) can still join.

Run: /usr/bin/python3 tests/integration/test_livemap_limits.py --binary build/ringcast --backend epoll
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
from test_livemap import MapClient, connect, run_async  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)

MiB = 1 << 20


def marker(user_id, ts, description="x"):
    return {"type": "enemy", "x": 1.5, "y": 2.5, "user_id": user_id, "description": description,
            "timestamp": ts}


def stored_size(m):
    """Bytes of the marker as the server stores and sends it: compact JSON, id last."""
    m = dict(m, id="%s_%s" % (m["user_id"], m["timestamp"]))
    return len(json.dumps(m, separators=(",", ":"), ensure_ascii=False).encode())


def marker_of_size(user_id, ts, size):
    m = marker(user_id, ts, "")
    m["description"] = "d" * (size - stored_size(m))
    assert stored_size(m) == size
    return m


def add(m):
    return {"type": "marker_add", "marker": m}


class LimitsCase(harness.ProcessTestCase):
    def start(self, extra=""):
        text = "[profiles.livemap]\npersistent = false\n" + extra
        return self.new_server(config_text=text)

    async def settle(self, clients, tag="t"):
        for i, c in enumerate(clients):
            await c.barrier("%s-%d" % (tag, i))

    def errors(self, c):
        return [m for m in c.inbox if m.get("type") == "error"]


class MaxMarkersTest(LimitsCase):
    def test_past_max_markers_is_refused_and_changes_nothing(self):
        srv = self.start("max_markers = 5\n")

        async def go():
            adder = await connect(srv.port, "adder")
            observer = await connect(srv.port, "observer")
            await self.settle([adder, observer])
            for i in range(5):
                await adder.send(add(marker(1, i)))
            await observer.wait_for(lambda box: len([m for m in box if m["type"] == "marker_added"])
                                    == 5, 10, "5 marker_added")
            # The sixth distinct id: an error to the sender only, nothing stored or sent.
            await adder.send(add(marker(1, 99)))
            err = await adder.take(lambda m: m["type"] == "error", 5, "the error reply")
            self.assertEqual(set(err), {"type", "message"}, err)
            self.assertIn("maximum of 5 markers", err["message"])
            # Replacing a stored marker still works on a full map.
            await adder.send(add(marker(1, 0, "edited")))
            await observer.take(lambda m: m["type"] == "marker_added"
                                and m["marker"]["description"] == "edited", 5, "the replacement")
            await self.settle([adder, observer], "after")
            self.assertFalse([m for m in observer.inbox if m["type"] == "marker_added"
                              and m["marker"]["id"] == "1_99"], observer.inbox)
            probe = await connect(srv.port, "probe")
            await probe.barrier()
            sync = probe.of_type("markers_sync")
            self.assertEqual([m["id"] for m in sync[0]["markers"]], ["1_%d" % i for i in range(5)])
            # After a removal there is room again.
            await adder.send({"type": "marker_remove", "marker_id": "1_3"})
            await observer.take(lambda m: m["type"] == "marker_removed", 5, "marker_removed")
            await adder.send(add(marker(1, 100)))
            await observer.take(lambda m: m["type"] == "marker_added"
                                and m["marker"]["id"] == "1_100", 5, "the new marker")
            self.assertEqual(len(self.errors(adder)), 0, adder.inbox)
            for c in (adder, observer, probe):
                await c.close()

        run_async(go(), 60)

    def test_adders_on_both_cores_never_pass_the_limit(self):
        srv = self.start("max_markers = 40\n")

        async def go():
            adders = [await connect(srv.port, "adder%d" % k) for k in range(6)]
            observer = await connect(srv.port, "observer")
            await self.settle(adders + [observer])
            # 6 connections (spread over both workers) race 20 new ids each: 40 fit.
            await asyncio.gather(*(a.send(add(marker(k, i))) for i in range(20)
                                   for k, a in enumerate(adders)))
            await self.settle(adders, "done")
            refused = sum(len(self.errors(a)) for a in adders)
            self.assertEqual(refused, 120 - 40)
            await observer.wait_for(lambda box: len([m for m in box if m["type"] == "marker_added"])
                                    >= 40, 10, "40 marker_added")
            await self.settle([observer], "obs")
            self.assertEqual(len(observer.of_type("marker_added")), 40)
            probe = await connect(srv.port, "probe")
            await probe.barrier()
            self.assertEqual(len(probe.of_type("markers_sync")[0]["markers"]), 40)
            for c in adders + [observer, probe]:
                await c.close()

        run_async(go(), 60)


class PersistentTest(LimitsCase):
    def test_limit_counts_markers_restored_from_the_store(self):
        data_dir = tempfile.mkdtemp(prefix="ringcast-limits-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        text = "[server]\ndata_dir = %s\n[profiles.livemap]\nmax_markers = 3\n" % json.dumps(data_dir)

        async def fill(port):
            adder = await connect(port, "adder")
            observer = await connect(port, "observer")
            await self.settle([adder, observer])
            for i in range(3):
                await adder.send(add(marker(1, i)))
            await observer.wait_for(lambda box: len(box) >= 3, 10, "3 marker_added")
            for c in (adder, observer):
                await c.close()

        async def after_restart(port):
            adder = await connect(port, "adder")
            await adder.barrier()
            self.assertEqual(len(adder.of_type("markers_sync")[0]["markers"]), 3)
            await adder.send(add(marker(1, 3)))
            err = await adder.take(lambda m: m["type"] == "error", 5, "the error reply")
            self.assertIn("maximum of 3 markers", err["message"])
            await adder.send(add(marker(1, 0, "edited")))   # a stored id may still change
            await adder.barrier("after")
            self.assertEqual(self.errors(adder), [])
            await adder.close()

        srv = self.new_server(config_text=text)
        run_async(fill(srv.port), 30)
        self.assertEqual(srv.stop(signal.SIGTERM), 0, srv.stderr_text())
        srv = self.new_server(config_text=text)
        run_async(after_restart(srv.port), 30)


class MaxMarkerBytesTest(LimitsCase):
    def test_oversize_marker_is_refused_and_changes_nothing(self):
        srv = self.start("max_marker_bytes = 300\n")

        async def go():
            adder = await connect(srv.port, "adder")
            observer = await connect(srv.port, "observer")
            await self.settle([adder, observer])
            await adder.send(add(marker_of_size(1, 1, 300)))     # exactly the limit: fine
            await observer.take(lambda m: m["type"] == "marker_added", 5, "the 300-byte marker")
            await adder.send(add(marker_of_size(1, 2, 301)))     # one byte over: refused
            err = await adder.take(lambda m: m["type"] == "error", 5, "the error reply")
            self.assertIn("301 bytes", err["message"])
            self.assertIn("300", err["message"])
            # Nor may a stored marker grow past it.
            await adder.send(add(marker_of_size(1, 1, 1000)))
            await adder.take(lambda m: m["type"] == "error", 5, "the second error reply")
            await self.settle([adder, observer], "after")
            self.assertEqual(observer.of_type("marker_added"), [])
            probe = await connect(srv.port, "probe")
            await probe.barrier()
            markers = probe.of_type("markers_sync")[0]["markers"]
            self.assertEqual([m["id"] for m in markers], ["1_1"])
            self.assertEqual(stored_size(markers[0]), 300)
            for c in (adder, observer, probe):
                await c.close()

        run_async(go(), 60)


class FullMapTest(LimitsCase):
    def test_full_map_with_defaults_syncs_within_one_mib(self):
        srv = self.start()   # the default limits: 1000 markers of up to 1024 bytes

        async def go():
            adder = await connect(srv.port, "adder")
            observer = await connect(srv.port, "observer")
            await self.settle([adder, observer])
            for i in range(1000):
                await adder.send(add(marker_of_size(7, i, 1024)))
            await observer.wait_for(lambda box: len(box) >= 1000, 60, "1000 marker_added")
            await adder.send(add(marker_of_size(7, 5000, 100)))
            err = await adder.take(lambda m: m["type"] == "error", 10, "the error for marker 1001")
            self.assertIn("maximum of 1000 markers", err["message"])
            self.assertEqual(len(self.errors(adder)), 0, adder.inbox[:3])
            # A client with websockets' default max_size (1 MiB), as the seed's clients connect.
            ws = await websockets.connect("ws://127.0.0.1:%d/map" % srv.port, ping_interval=None,
                                          open_timeout=10, close_timeout=3)
            try:
                raw = await asyncio.wait_for(ws.recv(), 20)
            finally:
                await ws.close()
            await observer.close()
            self.assertLessEqual(len(raw.encode()), MiB)
            self.assertEqual(len(raw.encode()), 36 + 1000 * 1024 + 999)  # the documented worst case
            sync = json.loads(raw)
            self.assertEqual(sync["type"], "markers_sync")
            self.assertEqual(len(sync["markers"]), 1000)
            await adder.close()

        run_async(go(), 120)


if __name__ == "__main__":
    harness.main()
