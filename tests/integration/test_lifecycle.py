#!/usr/bin/python3
"""Process lifecycle: signals, drain, many connections, config errors, reload, sd_notify.

Run: /usr/bin/python3 tests/integration/test_lifecycle.py --binary build/ringcast --backend epoll
"""

import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (OP_BINARY, OP_CLOSE, OP_TEXT, Closed, HandshakeFailed,  # noqa: E402
                     RawWebSocket, build_frame, build_request, upgrade_headers, ws_key)

# Both the server (inherits it) and this client need > 2,000 descriptors.
NOFILE = harness.raise_nofile_limit(20000)

N_CONCURRENT = 2000


class LifecycleCase(harness.ProcessTestCase):

    def stop_ok(self, srv, sig=signal.SIGTERM):
        grace = srv.drain_timeout + 2.0
        t0 = time.monotonic()
        self.assertTrue(srv.alive(), "server died before the stop (rc %r)" % srv.proc.poll())
        srv.send_signal(sig)
        rc = srv.wait_exit(grace)
        if rc is None:
            srv.kill()
            self.fail("no exit within drain_timeout_ms + 2 s of %s" % sig.name)
        self.assertEqual(rc, 0, "exit code after %s" % sig.name)
        return time.monotonic() - t0

    def open_ws(self, srv, n, path="/echo"):
        socks = []
        for i in range(n):
            ws = RawWebSocket(srv.port, path)
            self.addCleanup(ws.close)
            socks.append(ws)
        for i, ws in enumerate(socks):  # every one is fully up
            self.assertEqual(ws.echo(OP_TEXT, b"hi %d" % i), (OP_TEXT, b"hi %d" % i))
        return socks


class SignalTest(LifecycleCase):

    def shutdown_with(self, sig, answer_close):
        srv = self.new_server(config={"limits": {"drain_timeout_ms": 2000}})
        socks = self.open_ws(srv, 20)
        t0 = time.monotonic()
        srv.send_signal(sig)
        for i, ws in enumerate(socks):
            try:
                code, reason = ws.read_close(timeout=srv.drain_timeout + 2.0)
            except (Closed, socket.timeout) as e:
                self.fail("websocket %d got no close frame after %s: %r" % (i, sig.name, e))
            self.assertEqual((code, reason), (1001, "server shutting down"), "websocket %d" % i)
            if answer_close:
                try:
                    ws.send_close(1001)
                except (BrokenPipeError, ConnectionResetError):
                    pass
        remaining = srv.drain_timeout + 2.0 - (time.monotonic() - t0)
        rc = srv.wait_exit(max(0.0, remaining))
        if rc is None:
            srv.kill()
            self.fail("process still running drain_timeout_ms + 2 s after %s" % sig.name)
        self.assertEqual(rc, 0, "exit code after %s" % sig.name)
        for i, ws in enumerate(socks):
            self.assertTrue(ws.is_closed_within(1.0), "websocket %d TCP still open after exit" % i)
        return time.monotonic() - t0

    def test_sigterm_sends_1001_and_exits_0(self):
        self.shutdown_with(signal.SIGTERM, answer_close=True)

    def test_sigint_sends_1001_and_exits_0(self):
        self.shutdown_with(signal.SIGINT, answer_close=True)

    def test_sigterm_with_unresponsive_clients_exits_within_drain(self):
        self.shutdown_with(signal.SIGTERM, answer_close=False)

    def test_sigterm_idle_server_exits_0(self):
        srv = self.new_server()
        self.assertLess(self.stop_ok(srv), 5.0 + 2.0)

    def test_listeners_closed_during_drain(self):
        srv = self.new_server(config={"limits": {"drain_timeout_ms": 3000}})
        socks = self.open_ws(srv, 1)  # unresponsive to the close: keeps the drain going
        srv.send_signal(signal.SIGTERM)
        self.assertEqual(socks[0].read_close()[0], 1001)

        def refused():
            try:
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=1)
            except ConnectionRefusedError:
                return True
            s.close()
            return False
        harness.wait_until(refused, timeout=1.5, what="WebSocket port to refuse connections")
        rc = srv.wait_exit(3.0 + 2.0)
        if rc is None:
            srv.kill()
        self.assertEqual(rc, 0)


class ManyConnectionsTest(LifecycleCase):

    def test_2000_concurrent_echo_connections(self):
        # client and server are separate processes: each needs N_CONCURRENT + some descriptors
        self.assertGreater(NOFILE, N_CONCURRENT + 200, "RLIMIT_NOFILE too low for this test (%s)" % NOFILE)
        srv = self.new_server(config={"limits": {"drain_timeout_ms": 3000}})
        port = srv.port

        async def one(i):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(build_request("GET", "/echo?c=%d" % i, upgrade_headers(key=ws_key())))
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 101"):
                    raise AssertionError("connection %d: %r" % (i, head[:100]))
                msg = b"conn-%d" % i
                writer.write(build_frame(OP_TEXT, msg))
                await writer.drain()
                hdr = await reader.readexactly(2)
                if hdr[0] != 0x81 or hdr[1] != len(msg):
                    raise AssertionError("connection %d: frame header %r" % (i, hdr))
                data = await reader.readexactly(len(msg))
                if data != msg:
                    raise AssertionError("connection %d: echoed %r" % (i, data))
                return writer
            except BaseException:
                writer.close()
                raise

        async def run():
            writers = []
            try:
                for start in range(0, N_CONCURRENT, 200):
                    batch = [one(i) for i in range(start, min(N_CONCURRENT, start + 200))]
                    results = await asyncio.wait_for(asyncio.gather(*batch, return_exceptions=True), 30)
                    errors = [r for r in results if isinstance(r, BaseException)]
                    writers += [r for r in results if not isinstance(r, BaseException)]
                    if errors:
                        raise AssertionError("%d of batch %d failed, first: %r"
                                             % (len(errors), start // 200, errors[0]))

                def enough():
                    h = srv.health()
                    c = h["connections"]
                    return h if c["websocket"] >= N_CONCURRENT else None
                h = await asyncio.to_thread(harness.wait_until, enough, 10, 0.1,
                                            "/health websocket >= %d" % N_CONCURRENT)
                return h
            finally:
                for w in writers:
                    w.close()
                await asyncio.sleep(0)

        h = asyncio.run(asyncio.wait_for(run(), 90))
        c = h["connections"]
        self.assertEqual(h["threads"], 2)
        self.assertEqual(len(c["per_thread"]), 2, c)
        self.assertTrue(all(n > 0 for n in c["per_thread"]), "per_thread %r" % c["per_thread"])
        self.assertGreaterEqual(sum(c["per_thread"]), N_CONCURRENT, c)
        self.assertGreaterEqual(c["total"], N_CONCURRENT, c)
        self.assertGreaterEqual(c["per_path"].get("/echo", 0), N_CONCURRENT, c)
        # all closed by the clients: counts go back down
        harness.wait_until(lambda: srv.health()["connections"]["websocket"] == 0, timeout=10,
                           what="websocket count back to 0 after the clients closed")
        self.stop_ok(srv)


class ConfigTest(LifecycleCase):

    def base_args(self):
        port, http_port = harness.two_free_ports()
        return ["--threads", "2", "--backend", harness.BACKEND, "--host", "127.0.0.1",
                "--port", str(port), "--http-port", str(http_port)]

    def bad_config(self, text, key, line):
        path = harness.write_temp(text)
        self.addCleanup(os.unlink, path)
        for mode in ("start", "check-config"):
            with self.subTest(key=key, mode=mode):
                args = ["--config", path] + (["--check-config"] if mode == "check-config" else [])
                p = harness.run_binary(self.base_args() + args, timeout=10)
                err = p.stderr.decode("utf-8", "replace")
                self.assertEqual(p.returncode, 2, err)
                self.assertIn(key, err)
                self.assertIn("%s:%d" % (os.path.basename(path), line), err)

    def test_unknown_key(self):
        self.bad_config("[server]\nport = 8765\n\nbogus_key = 5\n", "bogus_key", 4)
        self.bad_config("[limits]\nmax_connections = 10\nmax_conections = 5\n", "max_conections", 3)

    def test_wrong_type(self):
        self.bad_config("[server]\nhost = \"127.0.0.1\"\nthreads = \"two\"\n", "threads", 3)
        self.bad_config("# comment\n[limits]\nmax_connections = \"lots\"\n", "max_connections", 3)
        self.bad_config("[origins]\ncheck = \"yes\"\n", "check", 2)

    def test_unparseable_toml(self):
        path = harness.write_temp("[server\nport = = 1\n")
        self.addCleanup(os.unlink, path)
        p = harness.run_binary(self.base_args() + ["--config", path], timeout=10)
        self.assertEqual(p.returncode, 2, p.stderr)

    def test_check_config_good(self):
        path = harness.write_temp(harness.toml_text({
            "server": {"port": 9001, "threads": 2, "backend": "epoll", "log_level": "debug"},
            "limits": {"max_connections": 10, "ping_interval_ms": 1000},
            "origins": {"check": True, "allowed": ["http://localhost:3000-3001"]}}))
        self.addCleanup(os.unlink, path)
        p = harness.run_binary(["--config", path, "--check-config"], timeout=10)
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("config ok", out)

    def test_missing_config_file(self):
        p = harness.run_binary(self.base_args() + ["--config", "/nonexistent/ringcast.toml"], timeout=10)
        self.assertEqual(p.returncode, 2, p.stderr)

    def test_bad_flags_exit_2(self):
        for extra in (["--no-such-flag"], ["--threads", "abc"], ["--backend", "kqueue"],
                      ["--port", "70000"], ["--log-level", "loud"]):
            with self.subTest(flags=extra):
                p = harness.run_binary(self.base_args() + extra, timeout=10)
                self.assertEqual(p.returncode, 2, p.stderr)

    def test_port_in_use_exit_1(self):
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        self.addCleanup(holder.close)
        busy = holder.getsockname()[1]
        _, http_port = harness.two_free_ports()
        p = harness.run_binary(["--threads", "2", "--backend", harness.BACKEND, "--host", "127.0.0.1",
                                "--port", str(busy), "--http-port", str(http_port)], timeout=10)
        self.assertEqual(p.returncode, 1, p.stderr)

    def test_second_server_on_same_port_exit_1(self):
        # Both would use SO_REUSEPORT, which the kernel lets a second process join silently and
        # then share connections with: the second one must refuse to start instead.
        first = self.new_server()
        for port in (first.port, first.http_port):
            with self.subTest(port=port):
                other = harness.two_free_ports()[0]
                ws_port, http_port = (port, other) if port == first.port else (other, port)
                p = harness.run_binary(["--threads", "2", "--backend", harness.BACKEND, "--host",
                                        "127.0.0.1", "--port", str(ws_port), "--http-port",
                                        str(http_port)], timeout=10)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn(b"already in use", p.stderr)
        self.assertTrue(first.alive())
        self.stop_ok(first)

    def test_startup_log_line(self):
        srv = self.new_server()
        want = ("listening on 127.0.0.1:%d (http 127.0.0.1:%d), 2 threads, backend %s"
                % (srv.port, srv.http_port, harness.BACKEND))
        harness.wait_until(lambda: want in srv.stderr_text(), timeout=3, what=repr(want))
        self.assertIn("ringcast 0.1.0 listening", srv.stderr_text())
        self.stop_ok(srv)


class ReloadTest(LifecycleCase):

    CONF = ("[limits]\ndrain_timeout_ms = 2000\n\n[origins]\ncheck = true\nallowed = [%s]\n")

    def origin_status(self, srv, origin):
        try:
            with RawWebSocket(srv.port, "/echo", origin=origin) as ws:
                self.assertEqual(ws.echo(OP_TEXT, b"o"), (OP_TEXT, b"o"))
                return 101
        except HandshakeFailed as e:
            return e.response.status

    def test_sighup_applies_new_origins(self):
        srv = self.new_server(config_text=self.CONF % '"http://localhost:3000"')
        self.assertEqual(self.origin_status(srv, "http://localhost:5555"), 403)
        self.assertEqual(self.origin_status(srv, "http://localhost:3000"), 101)
        existing = self.open_ws(srv, 1)[0]
        pid = srv.proc.pid

        srv.rewrite_config(self.CONF % '"http://localhost:3000", "http://localhost:5000-5999"')
        srv.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: self.origin_status(srv, "http://localhost:5555") == 101, timeout=5,
                           what="previously refused Origin accepted after SIGHUP")
        self.assertEqual(self.origin_status(srv, "http://localhost:3000"), 101)
        self.assertEqual(self.origin_status(srv, "http://localhost:6000"), 403)
        self.assertTrue(srv.alive())
        self.assertEqual(srv.proc.pid, pid)
        # an already open connection survives the reload
        self.assertEqual(existing.echo(OP_TEXT, b"survivor"), (OP_TEXT, b"survivor"))

        # A bad file on SIGHUP is logged and the old config kept.
        srv.rewrite_config(self.CONF % '"http://localhost:3000"' + "bogus_reload_key = 1\n")
        srv.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: "bogus_reload_key" in srv.stderr_text(), timeout=5,
                           what="the bad reload to be logged (naming the key)")
        self.assertTrue(srv.alive(), "server died on a bad SIGHUP reload")
        self.assertEqual(self.origin_status(srv, "http://localhost:5555"), 101, "old config not kept")
        self.assertEqual(existing.echo(OP_TEXT, b"still"), (OP_TEXT, b"still"))
        existing.close()
        self.stop_ok(srv)

    def test_sighup_applies_limits(self):
        srv = self.new_server(config={"limits": {"max_message_size": 100000, "drain_timeout_ms": 2000}})
        ws = self.open_ws(srv, 1)[0]
        self.assertEqual(ws.echo(OP_BINARY, b"x" * 2000), (OP_BINARY, b"x" * 2000))
        ws.close()
        srv.rewrite_config(harness.toml_text({"limits": {"max_message_size": 1000,
                                                         "drain_timeout_ms": 2000}}))
        srv.send_signal(signal.SIGHUP)

        def closes_1009():
            with RawWebSocket(srv.port, "/echo") as w:
                w.send_frame(OP_BINARY, b"x" * 2000)
                f = w.read_frame()
                if f.opcode == OP_CLOSE:
                    return f.close_code == 1009
                return False
        harness.wait_until(closes_1009, timeout=5, what="max_message_size=1000 applied by SIGHUP")
        self.stop_ok(srv)

    def test_sighup_warns_only_about_real_restart_changes(self):
        # The file disagrees with every flag the harness passes (host, port, http port, threads,
        # backend, data dir): the flags win at start, and they still win on reload, so nothing
        # that needs a restart has changed.
        other_port, other_http = harness.two_free_ports()
        data_dir = tempfile.mkdtemp(prefix="ringcast-data-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        server_section = {"host": "0.0.0.0", "port": other_port, "http_port": other_http,
                          "threads": 3, "data_dir": "/nonexistent/ringcast",
                          "backend": "epoll" if harness.BACKEND == "io_uring" else "io_uring"}
        conf = {"server": server_section, "limits": {"drain_timeout_ms": 2000}}
        srv = self.new_server(config=conf, extra_args=["--data-dir", data_dir])
        reloads = lambda: srv.stderr_text().count("configuration reloaded")  # noqa: E731
        srv.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: reloads() == 1, timeout=5, what="the first reload")
        self.assertNotIn("restart", srv.stderr_text())

        # A real change to a restart-only setting is still reported, by name.
        conf["store"] = {"durability": "relaxed"}
        srv.rewrite_config(harness.toml_text(conf))
        srv.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: reloads() == 2, timeout=5, what="the second reload")
        text = srv.stderr_text()
        self.assertIn("restart", text)
        self.assertIn("store.durability", text)
        self.assertNotIn("server.port", text)
        self.stop_ok(srv)


class NotifyTest(LifecycleCase):

    def test_sd_notify_ready_stopping_watchdog(self):
        d = tempfile.mkdtemp(prefix="ringcast-notify-")
        path = os.path.join(d, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        self.addCleanup(lambda: (sock.close(), os.unlink(path), os.rmdir(d)))
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
        env.pop("WATCHDOG_PID", None)
        srv = self.new_server(env=env)
        msgs = []

        def collect(want, timeout):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    data = sock.recv(4096).decode("utf-8", "replace")
                except socket.timeout:
                    break
                msgs.append(data)
                if want(msgs):
                    return True
            return False

        def count(token):
            return sum(1 for m in msgs if token in m.split("\n"))

        self.assertTrue(collect(lambda m: count("READY=1") >= 1, 5), "no READY=1: %r" % msgs)
        # WATCHDOG=1 every 200 ms (half of WATCHDOG_USEC): at least 3 within 2 s
        self.assertTrue(collect(lambda m: count("WATCHDOG=1") >= 3, 2.0),
                        "too few WATCHDOG=1 (%r)" % msgs)
        srv.send_signal(signal.SIGTERM)
        self.assertTrue(collect(lambda m: count("STOPPING=1") >= 1, 5), "no STOPPING=1: %r" % msgs)
        rc = srv.wait_exit(srv.drain_timeout + 2.0)
        self.assertEqual(rc, 0)
        self.assertEqual(count("READY=1"), 1, msgs)


if __name__ == "__main__":
    harness.main()
