#!/usr/bin/python3
"""HTTP behaviour of both ports (WebSocket port without Upgrade, and the health port).

Run: /usr/bin/python3 tests/integration/test_http.py --binary build/ringcast --backend epoll
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import RawConn, RawWebSocket, http_request  # noqa: E402

ALLOWED_ORIGIN = "http://localhost:3000"
REFUSED_ORIGIN = "https://evil.example.com"


def comma_tokens(value):
    return [t.strip().lower() for t in (value or "").split(",") if t.strip()]


class HttpTest(harness.ServerTestCase):

    def ports(self):
        return [("ws-port", self.port), ("http-port", self.http_port)]

    # -- /health ------------------------------------------------------------

    def check_health(self, r):
        self.assertEqual(r.status, 200, r)
        self.assertIn("application/json", (r.header("Content-Type") or "").lower())
        self.assertEqual(int(r.header("Content-Length")), len(r.body))
        h = r.json()
        self.assertEqual(h["status"], "healthy")
        self.assertEqual(h["version"], "0.1.0")
        self.assertIsInstance(h["uptime_seconds"], (int, float))
        self.assertGreaterEqual(h["uptime_seconds"], 0)
        self.assertEqual(h["backend"], harness.BACKEND if harness.BACKEND != "auto" else h["backend"])
        self.assertEqual(h["threads"], 2)
        c = h["connections"]
        for k in ("total", "websocket"):
            self.assertIsInstance(c[k], int, k)
            self.assertGreaterEqual(c[k], 0, k)
        self.assertIsInstance(c["per_path"], dict)
        self.assertIsInstance(c["per_thread"], list)
        self.assertEqual(len(c["per_thread"]), 2)
        for n in c["per_thread"]:
            self.assertIsInstance(n, int)
            self.assertGreaterEqual(n, 0)
        return h

    def test_health_fields_both_ports(self):
        for name, port in self.ports():
            with self.subTest(port=name):
                self.check_health(http_request(port, "GET", "/health"))

    def test_health_counts_websocket(self):
        with RawWebSocket(self.port, "/echo") as ws:
            # the websocket is open (101 received); its count must show up
            h = harness.wait_until(
                lambda: (lambda h: h if h["connections"]["websocket"] == 1 else None)(
                    self.check_health(http_request(self.http_port, "GET", "/health"))),
                timeout=3, what="websocket == 1 in /health")
            c = h["connections"]
            self.assertEqual(c["per_path"].get("/echo"), 1, c)
            self.assertGreaterEqual(c["total"], 1, c)
            self.assertGreaterEqual(sum(c["per_thread"]), 1, c)
            # still works after
            self.assertEqual(ws.echo(harness.OP_TEXT, b"x"), (harness.OP_TEXT, b"x"))
            ws.send_close(1000)
            self.assertEqual(ws.read_close()[0], 1000)
        harness.wait_until(lambda: self.server.health()["connections"]["websocket"] == 0, timeout=3,
                           what="websocket == 0 after close")

    def test_health_per_thread_counts_http_connections(self):
        # Open idle keep-alive connections on the ws port: per_thread (which counts HTTP
        # connections too) must grow by at least that many.
        # (Not "base + 6": a connection of an earlier test may still be lingering in its close
        # handshake when the base is read, and leave in between.)
        conns = [RawConn(self.port) for _ in range(6)]
        try:
            for c in conns:  # make sure each one is accepted and served
                self.assertEqual(c.request("GET", "/api").status, 200)
            harness.wait_until(
                lambda: sum(self.server.health()["connections"]["per_thread"]) >= 6 + 1,
                timeout=3, what="per_thread sum to include 6 idle HTTP connections + this request")
        finally:
            for c in conns:
                c.close()

    # -- /api ---------------------------------------------------------------

    def test_api(self):
        for name, port in self.ports():
            with self.subTest(port=name):
                # Game-chat seed: 200, empty body, open CORS, with or without the slash.
                for path in ("/api", "/api/"):
                    r = http_request(port, "GET", path)
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.body, b"", r)
                    self.assertEqual(r.header("Access-Control-Allow-Origin"), "*", r)

    def test_api_version(self):
        for name, port in self.ports():
            with self.subTest(port=name):
                r = http_request(port, "GET", "/api/version")
                self.assertEqual(r.status, 200, r)
                j = r.json()
                self.assertEqual(j, {"api": "v1.0.1", "env": "PRODUCTION",
                                     "desc": "Websocket Server Python"})
                self.assertEqual(r.header("Access-Control-Allow-Origin"), "*", r)

    def test_query_string_ignored_for_routing(self):
        r = http_request(self.http_port, "GET", "/health?x=1&y=2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "healthy")
        r = http_request(self.port, "GET", "/api/version?v=2")
        self.assertEqual(r.status, 200, r)
        self.assertIsInstance(r.json().get("api"), str, r)

    # -- errors -------------------------------------------------------------

    def test_404_json(self):
        for name, port in self.ports():
            with self.subTest(port=name):
                r = http_request(port, "GET", "/no/such/path")
                self.assertEqual(r.status, 404, r)
                self.assertEqual(r.json(), {"error": "not found"})

    def test_405_other_methods(self):
        for name, port in self.ports():
            for method, path in (("POST", "/health"), ("PUT", "/api"), ("DELETE", "/api/version"),
                                 ("PATCH", "/health")):
                with self.subTest(port=name, method=method, path=path):
                    r = http_request(port, method, path, body=b"{}",
                                     headers=[("Content-Type", "application/json")])
                    self.assertEqual(r.status, 405, r)

    def test_head(self):
        for name, port in self.ports():
            for path in ("/health", "/api", "/api/version"):
                with self.subTest(port=name, path=path), RawConn(port) as c:
                    r = c.request("HEAD", path)
                    self.assertEqual(r.status, 200, r)
                    self.assertIn("application/json", (r.header("Content-Type") or "").lower())
                    # No body must follow: the next response on the same connection must
                    # start right away with a status line.
                    r2 = c.request("GET", "/health")
                    self.assertEqual(r2.status, 200, r2)
                    self.assertEqual(r2.json()["status"], "healthy")

    def test_head_unknown_path_404(self):
        with RawConn(self.http_port) as c:
            r = c.request("HEAD", "/nope")
            self.assertEqual(r.status, 404, r)
            self.assertEqual(c.request("GET", "/api").status, 200)

    # -- connection management ---------------------------------------------

    def test_keep_alive_two_requests(self):
        for name, port in self.ports():
            with self.subTest(port=name), RawConn(port) as c:
                r1 = c.request("GET", "/health")
                self.assertEqual(r1.status, 200, r1)
                self.assertNotIn("close", comma_tokens(r1.header("Connection")))
                r2 = c.request("GET", "/api/version")
                self.assertEqual(r2.status, 200, r2)
                self.assertIsInstance(r2.json().get("api"), str, r2)

    def test_keep_alive_pipelined(self):
        with RawConn(self.http_port) as c:
            c.send(harness.build_request("GET", "/api") + harness.build_request("GET", "/nope")
                   + harness.build_request("GET", "/api/version"))
            self.assertEqual(c.read_response().status, 200)
            self.assertEqual(c.read_response().status, 404)
            self.assertEqual(c.read_response().status, 200)

    def test_connection_close(self):
        for name, port in self.ports():
            with self.subTest(port=name), RawConn(port) as c:
                r = c.request("GET", "/health", headers=[("Connection", "close")])
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["status"], "healthy")
                self.assertEqual(c.wait_closed(3.0), b"", "data after the response")

    def test_http10_closes(self):
        with RawConn(self.http_port) as c:
            r = c.request("GET", "/api", version="HTTP/1.0")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(c.wait_closed(3.0), b"")

    def test_http10_keep_alive_stays_open(self):
        with RawConn(self.http_port) as c:
            r = c.request("GET", "/api", version="HTTP/1.0", headers=[("Connection", "keep-alive")])
            self.assertEqual(r.status, 200, r)
            r2 = c.request("GET", "/api", version="HTTP/1.0", headers=[("Connection", "keep-alive")])
            self.assertEqual(r2.status, 200, r2)

    def test_garbage_400_and_close(self):
        for name, port in self.ports():
            for raw in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nno colon header\r\n\r\n",
                        b"\x00\x01\x02\x03 nonsense\r\n\r\n"):
                with self.subTest(port=name, raw=raw), RawConn(port) as c:
                    c.send(raw)
                    r = c.read_response()
                    self.assertEqual(r.status, 400, r)
                    c.wait_closed(3.0)

    def test_huge_head_431_and_close(self):
        for name, port in self.ports():
            with self.subTest(port=name), RawConn(port) as c:
                req = harness.build_request("GET", "/health", [("X-Big", "a" * 9000)])
                c.send(req)
                r = c.read_response()
                self.assertEqual(r.status, 431, r)
                c.wait_closed(3.0)

    def test_head_just_under_limit_ok(self):
        # 8192 is the default max_header_bytes; a ~7 KB head is fine.
        r = http_request(self.http_port, "GET", "/api", headers=[("X-Big", "a" * 7000)])
        self.assertEqual(r.status, 200, r)

    # -- CORS ---------------------------------------------------------------

    # /api and /api/version always answer "*" (the game-chat seed's public API), so the
    # origin-reflecting rules are checked on the other endpoints.
    CORS_PATHS = ("/health", "/")

    def test_cors_allowed_origin(self):
        for name, port in self.ports():
            for path in self.CORS_PATHS:
                for origin in (ALLOWED_ORIGIN, "http://localhost:3001", "http://127.0.0.1:8000",
                               "https://wizzyworks-frontend.vercel.app"):
                    with self.subTest(port=name, path=path, origin=origin):
                        r = http_request(port, "GET", path, headers=[("Origin", origin)])
                        self.assertEqual(r.status, 200, r)
                        self.assertEqual(r.headers_named("Access-Control-Allow-Origin"), [origin], r)
                        self.assertIn("origin", comma_tokens(", ".join(r.headers_named("Vary"))), r)

    def test_cors_refused_origin(self):
        # A refused Origin must not be granted access: no Access-Control-Allow-Origin at all
        # (neither the origin nor "*").
        for name, port in self.ports():
            for path in self.CORS_PATHS:
                for origin in (REFUSED_ORIGIN, "http://localhost:3002"):
                    with self.subTest(port=name, path=path, origin=origin):
                        r = http_request(port, "GET", path, headers=[("Origin", origin)])
                        self.assertEqual(r.status, 200, r)
                        self.assertEqual(r.headers_named("Access-Control-Allow-Origin"), [], r)

    def test_no_origin_no_cors_header(self):
        r = http_request(self.http_port, "GET", "/health")
        self.assertIsNone(r.header("Access-Control-Allow-Origin"), r)

    def test_options_preflight_allowed(self):
        for name, port in self.ports():
            with self.subTest(port=name, case="request-headers echoed"):
                r = http_request(port, "OPTIONS", "/anything/at/all", headers=[
                    ("Origin", ALLOWED_ORIGIN), ("Access-Control-Request-Method", "GET"),
                    ("Access-Control-Request-Headers", "X-Custom-Header, Content-Type")])
                self.assertEqual(r.status, 204, r)
                self.assertEqual(r.header("Access-Control-Allow-Origin"), ALLOWED_ORIGIN, r)
                self.assertEqual(r.header("Access-Control-Allow-Methods"), "GET, HEAD, OPTIONS", r)
                self.assertEqual(comma_tokens(r.header("Access-Control-Allow-Headers")),
                                 ["x-custom-header", "content-type"], r)
                self.assertEqual(r.header("Access-Control-Max-Age"), "86400", r)
                self.assertEqual(r.body, b"")
            with self.subTest(port=name, case="default allow-headers"):
                r = http_request(port, "OPTIONS", "/health", headers=[("Origin", ALLOWED_ORIGIN)])
                self.assertEqual(r.status, 204, r)
                self.assertEqual(comma_tokens(r.header("Access-Control-Allow-Headers")),
                                 ["content-type"], r)
                self.assertEqual(r.header("Access-Control-Max-Age"), "86400", r)

    def test_options_keeps_connection_usable(self):
        with RawConn(self.http_port) as c:
            r = c.request("OPTIONS", "/api", headers=[("Origin", ALLOWED_ORIGIN)])
            self.assertEqual(r.status, 204, r)
            self.assertEqual(c.request("GET", "/api").status, 200)

    def test_options_refused_origin_403(self):
        for name, port in self.ports():
            for origin in (REFUSED_ORIGIN, "http://localhost:3002"):
                with self.subTest(port=name, origin=origin):
                    r = http_request(port, "OPTIONS", "/api", headers=[
                        ("Origin", origin), ("Access-Control-Request-Method", "GET")])
                    self.assertEqual(r.status, 403, r)
                    self.assertIsNone(r.header("Access-Control-Allow-Origin"), r)

    def test_upgrade_on_health_port_is_plain_http(self):
        r = http_request(self.http_port, "GET", "/health", headers=harness.upgrade_headers())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "healthy")


class HttpIdleTimeoutTest(harness.ServerTestCase):
    """idle_timeout_ms closes an idle keep-alive connection."""

    CONFIG = {"limits": {"idle_timeout_ms": 700}}

    def test_idle_keep_alive_closed(self):
        # 4 connections per port so that both workers' timers are exercised.
        for name, port in (("ws-port", self.port), ("http-port", self.http_port)):
            with self.subTest(port=name):
                conns = [RawConn(port) for _ in range(4)]
                try:
                    for c in conns:
                        r = c.request("GET", "/health")
                        self.assertEqual(r.status, 200, r)
                    t0 = time.monotonic()
                    for i, c in enumerate(conns):
                        try:
                            c.wait_closed(max(0.01, t0 + 0.7 + 3.0 - time.monotonic()))
                        except socket.timeout:
                            self.fail("idle keep-alive connection %d not closed within idle_timeout_ms + 3 s"
                                      % i)
                        self.assertGreaterEqual(time.monotonic() - t0, 0.3,
                                                "connection %d closed long before idle_timeout_ms" % i)
                finally:
                    for c in conns:
                        c.close()

    def test_idle_timeout_counts_from_last_request_after_idle_period(self):
        # The idle deadline must be measured from the end of the last request even when the
        # worker was blocked in its poll for longer than idle_timeout_ms before it arrived.
        time.sleep(1.5)  # precondition: server idle for 2 x idle_timeout_ms, no assertion
        conns = [RawConn(self.port) for _ in range(4)]
        try:
            for c in conns:
                self.assertEqual(c.request("GET", "/health").status, 200)
            t0 = time.monotonic()
            for i, c in enumerate(conns):
                try:
                    c.wait_closed(max(0.01, t0 + 0.7 + 3.0 - time.monotonic()))
                except socket.timeout:
                    self.fail("idle keep-alive connection %d not closed within idle_timeout_ms + 3 s" % i)
                self.assertGreaterEqual(time.monotonic() - t0, 0.3,
                                        "connection %d closed long before idle_timeout_ms" % i)
        finally:
            for c in conns:
                c.close()

    def test_active_connection_not_closed(self):
        # Requests every 200 ms for ~1.6 s (> 2 x idle timeout) keep the connection alive.
        with RawConn(self.http_port) as c:
            for _ in range(8):
                r = c.request("GET", "/api")
                self.assertEqual(r.status, 200, r)
                time.sleep(0.2)
            self.assertEqual(c.request("GET", "/api").status, 200)


if __name__ == "__main__":
    harness.main()
