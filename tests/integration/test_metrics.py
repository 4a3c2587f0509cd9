#!/usr/bin/python3
"""GET /metrics: the Prometheus text format (parsed with Debian's python3-prometheus-client), on
both ports, and counters that move by exactly what the test does: WebSocket messages in and out,
connections per path, a broadcast's fan-out latency, refused upgrades by reason, close codes, a
rate-limit close, a slow-consumer close, durable store commits, process memory and CPU.

Run: /usr/bin/python3 tests/integration/test_metrics.py --binary build/ringcast --backend epoll
"""

import asyncio
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets 10.4)
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402


def scrape(port):
    r = harness.http_request(port, "GET", "/metrics")
    if r.status != 200:
        raise AssertionError("/metrics returned %s: %r" % (r.status, r.body[:200]))
    samples = []
    families = {}
    for fam in text_string_to_metric_families(r.body.decode()):
        families[fam.name] = fam.type
        for s in fam.samples:
            samples.append((s.name, dict(s.labels), s.value))
    return Scrape(samples, families, r)


class Scrape:
    def __init__(self, samples, families, response):
        self.samples = samples
        self.families = families
        self.response = response

    def get(self, name, **labels):
        """Sum of the samples called `name` whose labels include `labels`."""
        found = [v for n, lab, v in self.samples
                 if n == name and all(lab.get(k) == v2 for k, v2 in labels.items())]
        if not found:
            raise AssertionError("no sample %s%r" % (name, labels))
        return sum(found)


class MetricsTest(harness.ServerTestCase):
    CONFIG = {
        "limits": {"max_messages_per_second": 500, "message_burst": 500, "outbound_cap": 65536},
    }

    def delta(self, before, name, **labels):
        return scrape(self.port).get(name, **labels) - before.get(name, **labels)

    def wait_delta(self, before, name, want, what, **labels):
        harness.wait_until(lambda: self.delta(before, name, **labels) == want, timeout=10,
                           what="%s (%s%r moved by %s)" % (what, name, labels, want))

    def test_format_and_both_ports(self):
        for port in (self.port, self.http_port):
            m = scrape(port)
            ctype = m.response.header("Content-Type")
            self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
            self.assertEqual(m.families["ringcast_messages_received"], "counter")
            self.assertEqual(m.families["ringcast_fanout_seconds"], "histogram")
            self.assertEqual(m.families["ringcast_store_commit_seconds"], "histogram")
            self.assertEqual(m.families["ringcast_store_commit_batch_size"], "histogram")
            self.assertEqual(m.families["ringcast_websocket_connections_by_path"], "gauge")
            # One sample per worker for the per-core series.
            for name in ("ringcast_connections", "ringcast_mailbox_depth",
                         "ringcast_worker_cpu_seconds_total", "ringcast_messages_received_total"):
                workers = sorted(lab["worker"] for n, lab, _ in m.samples if n == name)
                self.assertEqual(workers, ["0", "1"], name)
            self.assertGreater(m.get("process_resident_memory_bytes"), 1 << 20)
            self.assertGreater(m.get("process_cpu_seconds_total"), 0)
            self.assertGreater(m.get("process_open_fds"), 0)
            self.assertGreater(m.get("process_start_time_seconds"), time.time() - 3600)
            self.assertEqual(m.get("ringcast_build_info", backend=harness.BACKEND), 1)
            # No room names in label values: only the mounted paths.
            paths = {lab["path"] for n, lab, _ in m.samples
                     if n == "ringcast_websocket_connections_by_path"}
            self.assertIn("/raw/*", paths)
            self.assertIn("/echo", paths)

    def test_echo_counts_messages_bytes_and_closes(self):
        before = scrape(self.port)

        async def go():
            conns = [await websockets.connect("ws://127.0.0.1:%d/echo" % self.port)
                     for _ in range(3)]
            for ws in conns:
                for i in range(10):
                    await ws.send("m%d" % i)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "m%d" % i)
            during = scrape(self.port)
            self.assertEqual(during.get("ringcast_websocket_connections_by_path", path="/echo")
                             - before.get("ringcast_websocket_connections_by_path", path="/echo"), 3)
            for ws in conns:
                await ws.close()

        asyncio.run(go())
        self.wait_delta(before, "ringcast_messages_received_total", 30, "30 messages in")
        # 30 echoes and the 3 close frames answering the clients' closes.
        self.wait_delta(before, "ringcast_messages_sent_total", 33, "33 frames out")
        self.wait_delta(before, "ringcast_closes_sent_total", 3, "three 1000 closes", code="1000")
        self.assertGreaterEqual(self.delta(before, "ringcast_received_bytes_total"), 30 * 8)
        self.assertGreaterEqual(self.delta(before, "ringcast_sent_bytes_total"), 30 * 4)
        self.wait_delta(before, "ringcast_websocket_connections_by_path", 0, "sessions gone",
                        path="/echo")

    def test_broadcast_counts_fanout(self):
        before = scrape(self.port)
        room = "ws://127.0.0.1:%d/raw/metrics-bcast" % self.port

        async def go():
            subs = [await websockets.connect(room) for _ in range(4)]
            pub = await websockets.connect(room + "?echo=0")
            # Every member joined: a message reaches all of them.
            harness.wait_until(
                lambda: self.delta(before, "ringcast_websocket_connections_by_path",
                                   path="/raw/*") == 5, timeout=10, what="5 raw sessions")
            for i in range(5):
                await pub.send(b"x%d" % i)
            for ws in subs:
                for i in range(5):
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 10), b"x%d" % i)
            self.assertEqual(self.delta(before, "ringcast_messages_received_total"), 5)
            self.assertEqual(self.delta(before, "ringcast_messages_sent_total"), 20)
            # The last recipient's send has completed (it was received): sampled, at least one.
            harness.wait_until(lambda: self.delta(before, "ringcast_fanout_seconds_count") >= 1,
                               timeout=10, what="a fan-out latency sample")
            after = scrape(self.port)
            self.assertGreater(after.get("ringcast_fanout_seconds_sum"),
                               before.get("ringcast_fanout_seconds_sum"))
            self.assertEqual(after.get("ringcast_fanout_seconds_bucket", le="+Inf"),
                             after.get("ringcast_fanout_seconds_count"))
            for ws in subs + [pub]:
                await ws.close()

        asyncio.run(go())

    def test_refused_upgrades_by_reason(self):
        before = scrape(self.port)
        r = harness.http_request(self.port, "GET", "/no-such-endpoint",
                                 headers=harness.upgrade_headers())
        self.assertEqual(r.status, 404)
        r = harness.http_request(self.port, "GET", "/echo",
                                 headers=harness.upgrade_headers(version="8"))
        self.assertEqual(r.status, 426)
        r = harness.http_request(self.port, "GET", "/echo",
                                 headers=harness.upgrade_headers(origin="https://evil.example"))
        self.assertEqual(r.status, 403)
        after = scrape(self.port)
        for reason, n in (("no_route", 1), ("unsupported_version", 1), ("origin", 1),
                          ("bad_request", 0), ("connection_limit", 0)):
            self.assertEqual(after.get("ringcast_upgrades_refused_total", reason=reason)
                             - before.get("ringcast_upgrades_refused_total", reason=reason), n,
                             reason)

    def test_rate_limit_close(self):
        before = scrape(self.port)
        ws = harness.RawWebSocket(self.port, "/echo")
        try:
            frames = b"".join(harness.build_frame(harness.OP_TEXT, b"r") for _ in range(2000))
            try:
                ws.send(frames)
            except OSError:
                pass  # closed while we were still writing
            self.wait_delta(before, "ringcast_rate_limit_closes_total", 1, "a rate-limit close")
            self.wait_delta(before, "ringcast_closes_sent_total", 1, "a 1008", code="1008")
        finally:
            ws.close()

    def test_slow_consumer_close(self):
        before = scrape(self.port)
        room = "/raw/metrics-slow"
        stalled = harness.StalledWebSocket(self.port, room)
        try:
            async def go():
                pub = await websockets.connect("ws://127.0.0.1:%d%s?echo=0" % (self.port, room),
                                               max_size=None)
                blob = b"s" * 60000
                for _ in range(300):
                    await pub.send(blob)
                    if self.delta(before, "ringcast_slow_consumer_closes_total") >= 1:
                        break
                    await asyncio.sleep(0.003)  # under the rate limit
                await pub.close()

            asyncio.run(go())
            self.wait_delta(before, "ringcast_slow_consumer_closes_total", 1, "a slow-consumer close")
            self.wait_delta(before, "ringcast_closes_sent_total", 1, "a 1013", code="1013")
        finally:
            stalled.close()

    def test_store_commits(self):
        before = scrape(self.port)

        async def go():
            ws = await websockets.connect("ws://127.0.0.1:%d/map" % self.port)
            await ws.send(json.dumps({"type": "marker_add", "marker": {
                "type": "enemy", "x": 1.5, "y": 2.5, "user_id": 7, "timestamp": 1704110400}}))
            await ws.close()

        asyncio.run(go())
        harness.wait_until(lambda: self.delta(before, "ringcast_store_commit_seconds_count") >= 1,
                           timeout=10, what="a store commit observed")
        self.assertGreaterEqual(self.delta(before, "ringcast_store_commit_batch_size_sum"), 1)
        self.assertGreater(self.delta(before, "ringcast_store_commit_seconds_sum"), 0)

    def test_mailbox_and_cpu_present(self):
        m = scrape(self.http_port)
        self.assertGreaterEqual(m.get("ringcast_mailbox_depth"), 0)
        self.assertGreaterEqual(m.get("ringcast_worker_cpu_seconds_total"), 0)


class StrictFanoutTest(harness.ServerTestCase):
    """A sequenced room's fan-out latency runs from the publish received on the publisher's core:
    under strict durability the commit is part of what the members wait for, so a sampled
    fan-out is never shorter than the commit it waited for."""
    CONFIG_TEXT = '[store]\npersistent_rooms = ["durable*"]\ndurability = "strict"\n'

    def test_fanout_includes_the_commit(self):
        before = scrape(self.port)

        async def go():
            member = await websockets.connect("ws://127.0.0.1:%d/ws" % self.port)
            pub = await websockets.connect("ws://127.0.0.1:%d/ws" % self.port)
            for ws in (member, pub):
                await ws.send(json.dumps({"op": "join", "room": "durable-1", "id": 1}))
                self.assertEqual(json.loads(await ws.recv())["type"], "joined")
            for i in range(8):
                # One at a time, a few ms apart: each is its own commit and its own sample.
                await pub.send(json.dumps({"op": "publish", "room": "durable-1", "data": i,
                                           "echo": False}))
                while json.loads(await asyncio.wait_for(member.recv(), 10)).get("data") != i:
                    pass
                await asyncio.sleep(0.005)
            await member.close()
            await pub.close()

        asyncio.run(go())
        harness.wait_until(lambda: self.delta(before, "ringcast_fanout_seconds_count") >= 8,
                           timeout=10, what="8 fan-out samples")
        n_commit = self.delta(before, "ringcast_store_commit_seconds_count")
        self.assertGreaterEqual(n_commit, 8)
        # Each publish's sampled fan-out contains its commit, so the fan-out samples add up to at
        # least the commits (other, shorter fan-outs may be sampled too; a publish that shared
        # its millisecond with another sample is not: hence the margin). Timed from the home
        # core instead, they added up to about a fifth of the commits.
        fan = self.delta(before, "ringcast_fanout_seconds_sum")
        commit = self.delta(before, "ringcast_store_commit_seconds_sum")
        self.assertGreaterEqual(fan, 0.8 * commit, "fan-out samples %.0f us in all < commits "
                                "%.0f us in all" % (fan * 1e6, commit * 1e6))

    def delta(self, before, name, **labels):
        return scrape(self.port).get(name, **labels) - before.get(name, **labels)


if __name__ == "__main__":
    harness.main()
