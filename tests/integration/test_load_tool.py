"""Smoke runs of every ringcast-load scenario against the real server: each must succeed and its
correctness checks (echo payloads, broadcast loss/duplication/order) must pass. Speed is never
asserted here; benchmarks measure that.

Run: /usr/bin/python3 tests/integration/test_load_tool.py --binary build/ringcast \
         --backend io_uring --load-binary build/tools/ringcast-load
"""

import json
import os
import subprocess
import sys
import tempfile

import harness

LOAD_BINARY = None
API_KEY = "load-test-key-0123456789"


def take_load_binary():
    global LOAD_BINARY
    argv = sys.argv
    for i, a in enumerate(list(argv)):
        if a == "--load-binary" and i + 1 < len(argv):
            LOAD_BINARY = argv[i + 1]
            del argv[i:i + 2]
            return
        if a.startswith("--load-binary="):
            LOAD_BINARY = a.split("=", 1)[1]
            del argv[i]
            return
    LOAD_BINARY = os.path.join(harness._REPO, "build", "tools", "ringcast-load")


class LoadRunner:
    def run_load(self, *args, timeout=60):
        out = tempfile.NamedTemporaryFile(prefix="ringcast-load-", suffix=".json", delete=False)
        out.close()
        svg = out.name.replace(".json", ".svg")
        try:
            cmd = [LOAD_BINARY, *args, "--threads", "2", "--quiet", "--json", out.name,
                   "--plot", svg]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            self.assertEqual(p.returncode, 0, "%s\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(cmd), p.stdout[-4000:], p.stderr[-4000:]))
            with open(out.name) as f:
                result = json.load(f)
            with open(svg) as f:
                self.assertIn("<svg", f.read(2000))
            return result, p.stdout
        finally:
            for path in (out.name, svg):
                if os.path.exists(path):
                    os.unlink(path)

    def run_refused(self, *args):
        """A command line the tool must refuse (exit 2) before connecting; returns stderr."""
        cmd = [LOAD_BINARY, *args, "--quiet"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, "%s\n%s%s" % (" ".join(cmd), p.stdout, p.stderr))
        return p.stderr


class LoadToolSmoke(LoadRunner, harness.ServerTestCase):
    # A login token for the game-chat flow.
    CONFIG_TEXT = ('[tokens]\n"load" = { user_id = "load-user", nickname = "Loader" }\n'
                   '[api]\nkeys = ["%s"]\n' % API_KEY)

    def url(self, path):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def test_echo_closed_loop(self):
        result, text = self.run_load("echo", "--connections", "20", "--size", "32", "--duration", "1",
                                     self.url("/echo"))
        self.assertIn("PASS", text)
        self.assertGreater(json.dumps(result).count("round"), 0)

    def test_echo_fixed_rate(self):
        _, text = self.run_load("echo", "--connections", "10", "--rate", "500", "--duration", "1",
                                self.url("/echo"))
        self.assertIn("PASS", text)

    def test_broadcast_checks_loss_dup_order(self):
        _, text = self.run_load("broadcast", "--subscribers", "50", "--publishers", "2", "--rate",
                                "200", "--duration", "1", self.url("/raw/smoke"))
        self.assertIn("PASS", text)
        self.assertIn("last subscriber", text)

    def test_livemap_position_flow(self):
        # position_update fan-out on the live-map profile: every subscriber gets every update of
        # every publisher once and in order (the profile excludes the sender).
        result, text = self.run_load("broadcast", "--flow", "livemap", "--subscribers", "40",
                                     "--publishers", "2", "--rate", "200", "--duration", "1",
                                     "--size", "200", self.url("/map"))
        self.assertIn("PASS", text)
        self.assertIn("last subscriber", text)

    def test_gamechat_message_flow(self):
        # Game-chat messages (logged in with a token, history on): every logged-in subscriber
        # gets every message once and in order.
        _, text = self.run_load("broadcast", "--flow", "gamechat", "--subscribers", "40",
                                "--publishers", "2", "--rate", "200", "--duration", "1",
                                self.url("/chat"))
        self.assertIn("PASS", text)

    def test_gamechat_bad_token_fails(self):
        cmd = [LOAD_BINARY, "broadcast", "--flow", "gamechat", "--token", "wrong", "--subscribers",
               "2", "--rate", "10", "--duration", "1", "--quiet", self.url("/chat")]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("login refused", p.stdout + p.stderr)

    def test_native_publish_flow(self):
        # WebSocket publishers on the native protocol ({"op":"publish"}, echo off): the baseline
        # http-publish is compared with.
        result, text = self.run_load("broadcast", "--flow", "native", "--room", "wsnative",
                                     "--subscribers", "20", "--publishers", "2", "--rate", "200",
                                     "--duration", "1", self.url("/ws"))
        self.assertIn("PASS", text)
        m = result["metrics"]
        self.assertGreater(m["deliveries"], 0)
        self.assertEqual(m["deliveries"], m["expected_deliveries"])

    def test_http_publish_native(self):
        # Publishes through POST /api/publish on keep-alive connections (the WebSocket port
        # answers the API), native subscribers joined to the room: every message reaches every
        # subscriber once and in order, and every API answer is a 200 with increasing seq.
        result, text = self.run_load("http-publish", "--api-key", API_KEY, "--subscribers", "20",
                                     "--publishers", "2", "--rate", "200", "--duration", "1",
                                     "--room", "smoke", self.url("/ws"))
        self.assertIn("PASS", text)
        self.assertIn("API response", text)
        m = result["metrics"]
        self.assertGreater(m["deliveries"], 0)
        self.assertEqual(m["deliveries"], m["expected_deliveries"])
        self.assertEqual(m["api_ok"], m["published"])
        self.assertEqual(m["api_failed"], 0)
        self.assertGreater(result["latency_us"]["api_response"]["count"], 0)

    def test_http_publish_raw_on_health_port(self):
        # Raw room subscribers, the API on the health port.
        result, text = self.run_load("http-publish", "--flow", "raw", "--api-key", API_KEY,
                                     "--api", "http://127.0.0.1:%d" % self.http_port,
                                     "--subscribers", "20", "--rate", "200", "--duration", "1",
                                     "--size", "128", self.url("/raw/apismoke"))
        self.assertIn("PASS", text)
        self.assertGreater(result["metrics"]["deliveries"], 0)
        self.assertEqual(result["metrics"]["api_ok"], result["metrics"]["published"])

    def test_http_publish_wrong_key_fails(self):
        cmd = [LOAD_BINARY, "http-publish", "--api-key", "not-the-key-0123456789",
               "--subscribers", "2", "--rate", "20", "--duration", "0.5", "--drain", "0.5",
               "--quiet", self.url("/ws")]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("answered 401", p.stdout + p.stderr)
        self.assertIn("FAIL", p.stdout)

    def test_relay_pairs(self):
        _, text = self.run_load("relay", "--pairs", "10", "--duration", "1", self.url("/raw"))
        self.assertIn("PASS", text)

    def test_connect_and_hold(self):
        _, text = self.run_load("connect", "--connections", "300", "--hold", "1", self.url("/echo"))
        self.assertIn("PASS", text)

    def test_failure_is_reported(self):
        # A path the server refuses must make the tool fail, not report success.
        cmd = [LOAD_BINARY, "echo", "--connections", "2", "--duration", "1", "--quiet",
               self.url("/no-such-path")]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_broadcast_over_two_urls_splits_latency_by_node(self):
        # Two URLs naming the same server (127.0.0.1 and 127.1) stand for two nodes: subscriber j
        # goes to URL j % 2, the publisher to URL 1, so half the deliveries are "same node" and
        # half "other node"; every message still reaches every subscriber.
        result, text = self.run_load("broadcast", "--subscribers", "10", "--publishers", "1",
                                     "--rate", "200", "--duration", "1", self.url("/raw/split"),
                                     "ws://127.1:%d/raw/split" % self.port)
        self.assertIn("PASS", text)
        self.assertIn("delivery, other node", text)
        m, lat = result["metrics"], result["latency_us"]
        self.assertEqual(m["deliveries"], m["expected_deliveries"])
        published = m["published"]
        self.assertGreater(published, 0)
        self.assertEqual(lat["delivery"]["count"], m["deliveries"])
        self.assertEqual(lat["delivery_same_node"]["count"], 5 * published)
        self.assertEqual(lat["delivery_cross_node"]["count"], 5 * published)
        per_url = result["per_url"]
        self.assertEqual([u["url"] for u in per_url],
                         [self.url("/raw/split"), "ws://127.1:%d/raw/split" % self.port])
        self.assertEqual([u["subscribers"] for u in per_url], [5, 5])
        self.assertEqual([u["publishers"] for u in per_url], [0, 1])
        self.assertEqual([u["opened"] for u in per_url], [5, 6])
        self.assertEqual([u["deliveries"] for u in per_url], [5 * published, 5 * published])

    def test_http_publish_over_two_urls(self):
        # One API per WebSocket URL by default; API connection i posts to API (i + 1) % 2.
        result, text = self.run_load("http-publish", "--api-key", API_KEY, "--subscribers", "6",
                                     "--publishers", "2", "--rate", "100", "--duration", "1",
                                     "--room", "split2", self.url("/ws"),
                                     "ws://127.1:%d/ws" % self.port)
        self.assertIn("PASS", text)
        m, lat = result["metrics"], result["latency_us"]
        self.assertEqual(m["deliveries"], m["expected_deliveries"])
        self.assertEqual(m["api_ok"], m["published"])
        self.assertEqual(lat["delivery_same_node"]["count"] + lat["delivery_cross_node"]["count"],
                         m["deliveries"])
        self.assertGreater(lat["delivery_cross_node"]["count"], 0)
        urls = [u["url"] for u in result["per_url"]]
        self.assertEqual(urls, [self.url("/ws"), "ws://127.1:%d/ws" % self.port,
                                "http://127.0.0.1:%d/" % self.port, "http://127.1:%d/" % self.port])
        self.assertEqual([u["publishers"] for u in result["per_url"]], [0, 0, 1, 1])

    def test_several_urls_must_name_one_room(self):
        err = self.run_refused("broadcast", self.url("/raw/a"), "ws://127.1:%d/raw/b" % self.port)
        self.assertIn("same path", err)
        err = self.run_refused("echo", self.url("/echo"), "wss://127.1:%d/echo" % self.port)
        self.assertIn("same scheme", err)
        err = self.run_refused("echo", self.url("/echo"), self.url("/echo"))
        self.assertIn("given twice", err)
        err = self.run_refused("http-publish", "--api-key", API_KEY, "--api",
                               "http://127.0.0.1:%d/a" % self.port, "--api",
                               "http://127.1:%d/b" % self.port, self.url("/ws"))
        self.assertIn("same path", err)


class LoadToolTwoServers(LoadRunner, harness.ProcessTestCase):
    """Two independent servers as the nodes of one run: the tool's connections spread over both,
    as each server's /health shows."""

    def setUp(self):
        super().setUp()
        self.a = self.new_server()
        self.b = self.new_server()

    def urls(self, path):
        return ["ws://127.0.0.1:%d%s" % (s.port, path) for s in (self.a, self.b)]

    def websockets(self, srv):
        return srv.health()["connections"]["websocket"]

    def test_connect_spreads_over_both_servers(self):
        # 31 connections held idle: 16 on the first URL, 15 on the second, seen by the servers.
        out = tempfile.NamedTemporaryFile(prefix="ringcast-load-", suffix=".json", delete=False)
        out.close()
        self.addCleanup(os.unlink, out.name)
        cmd = [LOAD_BINARY, "connect", "--connections", "31", "--hold", "4", "--threads", "2",
               "--quiet", "--json", out.name, *self.urls("/echo")]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            spread = lambda: (self.websockets(self.a), self.websockets(self.b))
            harness.wait_until(lambda: spread() == (16, 15), timeout=15,
                               what="16 and 15 WebSocket connections on the servers")
            stdout, stderr = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 0, stdout + stderr)
        with open(out.name) as f:
            result = json.load(f)
        self.assertEqual([u["connections"] for u in result["per_url"]], [16, 15])
        self.assertEqual([u["opened"] for u in result["per_url"]], [16, 15])
        self.assertEqual([u["failed"] for u in result["per_url"]], [0, 0])
        self.assertEqual(result["metrics"]["opened"], 31)
        self.assertIn("per URL", stdout)
        # All closed again after the run.
        harness.wait_until(lambda: self.websockets(self.a) + self.websockets(self.b) == 0,
                           timeout=10, what="connections closed")

    def test_echo_over_both_servers(self):
        result, text = self.run_load("echo", "--connections", "10", "--duration", "1",
                                     *self.urls("/echo"))
        self.assertIn("PASS", text)
        per_url = result["per_url"]
        self.assertEqual([u["opened"] for u in per_url], [5, 5])
        for u in per_url:
            self.assertGreater(u["messages_returned"], 0)
        self.assertEqual(sum(u["messages_returned"] for u in per_url),
                         result["metrics"]["messages_returned"])

    def test_relay_pairs_span_both_servers(self):
        # Pair i's A and B sit on different servers, which do not share rooms: B never gets A's
        # message, so nothing comes back and the run fails - proof that the pairs span nodes.
        cmd = [LOAD_BINARY, "relay", "--pairs", "4", "--duration", "0.5", "--drain", "0.5",
               "--threads", "2", "--quiet", *self.urls("/raw")]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("never answered", p.stdout)
        self.assertIn("connections 4, opened 4", p.stdout)


if __name__ == "__main__":
    take_load_binary()
    harness.main()
