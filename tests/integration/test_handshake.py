#!/usr/bin/python3
"""WebSocket upgrade handshake on the WebSocket port.

Run: /usr/bin/python3 tests/integration/test_handshake.py --binary build/ringcast --backend epoll
"""

import base64
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (OP_TEXT, HandshakeFailed, RawConn, RawWebSocket, build_request,  # noqa: E402
                     upgrade_headers, ws_accept, ws_key)

ALLOWED = ["http://localhost:3000", "http://localhost:3001", "http://127.0.0.1:8000",
           "http://127.0.0.1:3000", "http://127.0.0.1:3001", "http://localhost:8000",
           "https://wizzyworks-frontend.vercel.app"]
REFUSED = ["https://evil.example.com", "http://localhost:3002", "http://localhost:2999",
           "http://localhost", "https://localhost:3000", "http://127.0.0.1:8001",
           "http://wizzyworks-frontend.vercel.app", "null"]


def upgrade(port, headers, method="GET", path="/echo"):
    """Send an upgrade request; return (RawConn, Response). Caller closes the conn."""
    c = RawConn(port)
    try:
        c.send(build_request(method, path, headers))
        return c, c.read_response(method)
    except BaseException:
        c.close()
        raise


def headers_without(name, **kw):
    return [(k, v) for k, v in upgrade_headers(**kw) if k.lower() != name.lower()]


def headers_with(name, value, **kw):
    return [(k, v if k.lower() != name.lower() else value) for k, v in upgrade_headers(**kw)]


class HandshakeTest(harness.ServerTestCase):

    def assert_status(self, headers, status, method="GET", path="/echo"):
        c, r = upgrade(self.port, headers, method, path)
        with c:
            self.assertEqual(r.status, status, r)
            return r

    def assert_ws_works(self, ws):
        self.assertEqual(ws.echo(OP_TEXT, b"hello"), (OP_TEXT, b"hello"))

    def test_101(self):
        with RawWebSocket(self.port, "/echo") as ws:  # checks Sec-WebSocket-Accept itself
            r = ws.handshake_response
            self.assertEqual(r.status, 101, r)
            self.assertEqual(r.header("Upgrade", "").lower(), "websocket", r)
            self.assertIn("upgrade", [t.strip().lower() for t in r.header("Connection", "").split(",")])
            self.assert_ws_works(ws)

    def test_101_connection_token_list_case_insensitive(self):
        for conn_value in ("keep-alive, Upgrade", "UPGRADE", "upgrade,keep-alive"):
            with self.subTest(connection=conn_value):
                hdrs = headers_with("Connection", conn_value)
                hdrs = [(k, v if k != "Upgrade" else "WebSocket") for k, v in hdrs]
                self.assert_status(hdrs, 101)

    def test_101_query_string_ignored(self):
        with RawWebSocket(self.port, "/echo?token=abc&x=1") as ws:
            self.assert_ws_works(ws)

    def test_400_missing_key(self):
        self.assert_status(headers_without("Sec-WebSocket-Key"), 400)

    def test_400_bad_key(self):
        for key in ("not base64!!", base64.b64encode(os.urandom(15)).decode(),
                    base64.b64encode(os.urandom(17)).decode(), ""):
            with self.subTest(key=key):
                self.assert_status(upgrade_headers(key=key) if key else
                                   headers_with("Sec-WebSocket-Key", ""), 400)

    def test_400_bad_connection(self):
        for value in ("keep-alive", "close", "upgrades"):
            with self.subTest(connection=value):
                self.assert_status(headers_with("Connection", value), 400)
        with self.subTest(connection="missing"):
            self.assert_status(headers_without("Connection"), 400)

    def test_400_bad_upgrade(self):
        # An Upgrade the server does not speak is ignored (RFC 9110): the request is plain HTTP,
        # and there is no HTTP resource at a WebSocket path.
        with self.subTest(upgrade="h2c"):
            self.assert_status(headers_with("Upgrade", "h2c"), 404)

    def test_400_non_get_upgrade(self):
        self.assert_status(upgrade_headers(), 400, method="POST")

    def test_400_headers_that_must_appear_once(self):
        # RFC 6455 §11.3.1/§11.3.5 (one Sec-WebSocket-Key, one Sec-WebSocket-Version) and RFC 7230
        # §5.4 (exactly one Host in HTTP/1.1): a repeated one, same value or not, is refused.
        cases = {
            "key twice": upgrade_headers() + [("Sec-WebSocket-Key", ws_key())],
            "same key twice": (lambda k: upgrade_headers(key=k) + [("Sec-WebSocket-Key", k)])(ws_key()),
            "version twice": upgrade_headers() + [("Sec-WebSocket-Version", "13")],
            "host twice": [("Host", "127.0.0.1"), ("Host", "evil.example.com")] + upgrade_headers(),
        }
        for name, hdrs in cases.items():
            with self.subTest(case=name):
                self.assert_status(hdrs, 400)
        with self.subTest(case="no host"):
            c = RawConn(self.port)
            with c:
                c.send(build_request("GET", "/echo", upgrade_headers(), host=False))
                self.assertEqual(c.read_response("GET").status, 400)
        with self.subTest(case="plain GET with two hosts"):
            c = RawConn(self.port)
            with c:
                c.send(build_request("GET", "/health", [("Host", "a"), ("Host", "b")]))
                self.assertEqual(c.read_response("GET").status, 400)
        # Repeating list-valued headers is fine.
        with self.subTest(case="list headers repeated"):
            self.assert_status(upgrade_headers(extra=[("Connection", "keep-alive"),
                                                      ("Upgrade", "websocket")]), 101)

    def test_426_wrong_version(self):
        for version in ("8", "12", "14"):
            with self.subTest(version=version):
                r = self.assert_status(upgrade_headers(version=version), 426)
                self.assertEqual(r.header("Sec-WebSocket-Version"), "13", r)

    def test_404_unknown_path(self):
        # "/" is the bridge profile's mount; a path below an exact mount is not that mount.
        for path in ("/nope", "/echo/extra", "/relay/extra", "/index.html"):
            with self.subTest(path=path):
                self.assert_status(upgrade_headers(), 404, path=path)

    def test_403_refused_origin(self):
        for origin in REFUSED:
            with self.subTest(origin=origin):
                self.assert_status(upgrade_headers(origin=origin), 403)

    def test_allowed_origins(self):
        for origin in ALLOWED:
            with self.subTest(origin=origin):
                with RawWebSocket(self.port, "/echo", origin=origin) as ws:
                    self.assert_ws_works(ws)

    def test_no_origin_allowed(self):
        with RawWebSocket(self.port, "/echo") as ws:
            self.assert_ws_works(ws)

    def test_handshake_split_across_writes(self):
        key = ws_key()
        req = build_request("GET", "/echo", upgrade_headers(key=key))
        with RawConn(self.port) as c:
            for i in range(0, len(req), 7):
                c.send(req[i:i + 7])
                time.sleep(0.002)
            r = c.read_response()
            self.assertEqual(r.status, 101, r)
            self.assertEqual(r.header("Sec-WebSocket-Accept"), ws_accept(key))

    def test_websockets_library_client(self):
        import asyncio
        import websockets

        async def go():
            async with websockets.connect("ws://127.0.0.1:%d/echo" % self.port,
                                          origin="http://localhost:3000", ping_interval=None,
                                          open_timeout=5, close_timeout=5) as ws:
                await ws.send("library hello")
                return await asyncio.wait_for(ws.recv(), 5)

        self.assertEqual(asyncio.run(asyncio.wait_for(go(), 15)), "library hello")


class MaxConnectionsTest(harness.ServerTestCase):
    CONFIG = {"limits": {"max_connections": 3}}

    def test_503_over_max_connections(self):
        socks = []
        try:
            for i in range(3):
                socks.append(RawWebSocket(self.port, "/echo"))
            c, r = upgrade(self.port, upgrade_headers())
            with c:
                self.assertEqual(r.status, 503, r)
            # the open ones still work
            for ws in socks:
                self.assertEqual(ws.echo(OP_TEXT, b"still here"), (OP_TEXT, b"still here"))
            # closing one frees a slot (bounded retry: the server may need a moment)
            ws = socks.pop()
            ws.send_close(1000)
            self.assertEqual(ws.read_close()[0], 1000)
            ws.wait_closed(3.0)
            ws.close()

            def try_open():
                try:
                    n = RawWebSocket(self.port, "/echo")
                except HandshakeFailed as e:
                    if e.response.status == 503:
                        return None
                    raise
                socks.append(n)
                return n
            harness.wait_until(try_open, timeout=3, what="a slot after closing one websocket")
            self.assertEqual(socks[-1].echo(OP_TEXT, b"new"), (OP_TEXT, b"new"))
        finally:
            for ws in socks:
                ws.close()


class HandshakeTimeoutTest(harness.ServerTestCase):
    CONFIG = {"limits": {"handshake_timeout_ms": 500}}

    # 4 connections each, so that (with 2 workers) both workers' timers are exercised.
    def assert_all_closed_after_timeout(self, conns):
        t0 = time.monotonic()
        for i, c in enumerate(conns):
            try:
                c.wait_closed(max(0.01, t0 + 0.5 + 3.0 - time.monotonic()))
            except socket.timeout:
                self.fail("connection %d still open %.1fs after handshake_timeout_ms=500"
                          % (i, time.monotonic() - t0))
            self.assertGreaterEqual(time.monotonic() - t0, 0.25,
                                    "connection %d closed much earlier than handshake_timeout_ms=500" % i)

    def conns(self, n=4):
        # opened together; t0 in assert_all_closed_after_timeout is taken right after
        cs = [RawConn(self.port) for _ in range(n)]
        for c in cs:
            self.addCleanup(c.close)
        return cs

    def test_silent_connection_closed(self):
        self.assert_all_closed_after_timeout(self.conns())

    def test_incomplete_request_closed(self):
        cs = self.conns()
        for c in cs:
            c.send(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        self.assert_all_closed_after_timeout(cs)

    def test_timeout_counts_from_accept_after_idle_period(self):
        # The deadline must be measured from the accept, even when the worker has been idle
        # (blocked in its poll) for longer than the timeout before the connection arrives.
        time.sleep(1.0)  # precondition: server idle for 2 x handshake_timeout_ms, no assertion
        self.assert_all_closed_after_timeout(self.conns())

    def test_slow_trickle_closed(self):
        # A request that keeps dribbling bytes must still complete within the timeout.
        with RawConn(self.port) as c:
            c.send(b"GET /echo HTTP/1.1\r\n")
            t0 = time.monotonic()
            closed = False
            for i in range(40):  # up to ~4 s
                try:
                    c.send(b"X-H%d: v\r\n" % i)
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                if c.is_closed_within(0.1):
                    closed = True
                    break
            self.assertTrue(closed, "trickling request never timed out")
            self.assertLess(time.monotonic() - t0, 0.5 + 3.0)

    def test_prompt_handshake_ok(self):
        with RawWebSocket(self.port, "/echo") as ws:
            # an upgraded websocket is no longer subject to the handshake timeout
            self.assertFalse(ws.is_closed_within(1.0), "websocket closed by the handshake timer")
            self.assertEqual(ws.echo(OP_TEXT, b"ok"), (OP_TEXT, b"ok"))


if __name__ == "__main__":
    harness.main()
