"""TLS (wss://): certificates from a throwaway CA made with the openssl CLI, python's ssl +
websockets clients, on the backend given by --backend, --threads 2.

This machine's kernel has no `tls` ULP, so every session here is user-space TLS; the kTLS
attempt and its fallback run on every handshake (and /health shows ktls: 0).
"""

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import websockets

import harness
from harness import ServerTestCase, ProcessTestCase, Server, wait_until

HANDSHAKE_TIMEOUT_MS = 1500


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Pki:
    """A root CA, an intermediate, server certificates for localhost/127.0.0.1 signed by the
    intermediate (files hold leaf + intermediate: a chain), a client certificate, and an
    unrelated CA."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ringcast-tls-")
        self.ext = self.path("ext.cnf")
        with open(self.ext, "w") as f:
            f.write("[srv]\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
                    "basicConstraints=CA:FALSE\n"
                    "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                    "[cli]\nbasicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
        self.ca = self.self_signed("ca", "ringcast test root")
        self.other_ca = self.self_signed("other", "someone else's root")
        self.signed("inter", "ringcast test intermediate", "ca", "ca")
        self.server("srv1", "rotation one")
        self.server("srv2", "rotation two")
        self.signed("client", "a client", "ca", "cli")

    def path(self, name):
        return os.path.join(self.dir, name)

    def key(self, name):
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", self.path(name + ".key")])

    def self_signed(self, name, cn):
        self.key(name)
        run(["openssl", "req", "-x509", "-new", "-key", self.path(name + ".key"), "-days", "2",
             "-subj", "/CN=" + cn, "-out", self.path(name + ".pem"),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        return self.path(name + ".pem")

    def signed(self, name, cn, issuer, section):
        self.key(name)
        run(["openssl", "req", "-new", "-key", self.path(name + ".key"), "-subj", "/CN=" + cn,
             "-out", self.path(name + ".csr")])
        run(["openssl", "x509", "-req", "-in", self.path(name + ".csr"), "-CA",
             self.path(issuer + ".pem"), "-CAkey", self.path(issuer + ".key"), "-CAcreateserial",
             "-days", "2", "-extfile", self.ext, "-extensions", section,
             "-out", self.path(name + ".pem")])

    def server(self, name, cn):
        self.signed(name, cn, "inter", "srv")
        with open(self.path(name + ".chain.pem"), "w") as out:
            for part in (name, "inter"):
                with open(self.path(part + ".pem")) as f:
                    out.write(f.read())

    def install(self, name, cert_path, key_path):
        """Copies server certificate `name` (chain) and key to the given paths atomically."""
        for src, dst in ((self.path(name + ".chain.pem"), cert_path),
                         (self.path(name + ".key"), key_path)):
            shutil.copyfile(src, dst + ".tmp")
            os.replace(dst + ".tmp", dst)

    def client_ctx(self, ca=None, check_hostname=True, client_cert=False):
        ctx = ssl.create_default_context(cafile=ca or self.ca)
        ctx.check_hostname = check_hostname
        if client_cert:
            ctx.load_cert_chain(self.path("client.pem"), self.path("client.key"))
        return ctx

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def arun(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def peer_cn(port, pki, host="localhost"):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pki.client_ctx().wrap_socket(raw, server_hostname=host) as s:
            cert = s.getpeercert()
            return dict(x[0] for x in cert["subject"])["commonName"]


def client_hello():
    """The bytes of a real TLS ClientHello (python's own), to feed the server slowly."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def tls_config(pki, extra=""):
    return ("[tls]\ncert = %s\nkey = %s\n%s\n[limits]\nhandshake_timeout_ms = %d\n"
            % (json.dumps(pki.path("live.pem")), json.dumps(pki.path("live.key")), extra,
               HANDSHAKE_TIMEOUT_MS))


class TlsTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = Pki()
        cls.pki.install("srv1", cls.pki.path("live.pem"), cls.pki.path("live.key"))
        cls.CONFIG_TEXT = tls_config(cls.pki)
        try:
            super().setUpClass()
        except BaseException:
            cls.pki.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.pki.cleanup()

    def uri(self, path):
        return "wss://localhost:%d%s" % (self.port, path)

    def test_echo_over_wss(self):
        async def go():
            async with websockets.connect(self.uri("/echo"), ssl=self.pki.client_ctx()) as ws:
                for i in range(20):
                    await ws.send("hello %d" % i)
                    self.assertEqual(await ws.recv(), "hello %d" % i)
                await ws.send(b"\x00\x01binary")
                self.assertEqual(await ws.recv(), b"\x00\x01binary")
        arun(go())

    def test_large_and_fragmented_messages(self):
        big = os.urandom(700 * 1024)  # many TLS records each way

        async def go():
            async with websockets.connect(self.uri("/echo"), ssl=self.pki.client_ctx(),
                                          max_size=2 << 20) as ws:
                await ws.send(big)
                self.assertEqual(await ws.recv(), big)
                parts = ["fragment %d " % i * 300 for i in range(40)]
                await ws.send(iter(parts))  # one message, 40 frames
                self.assertEqual(await ws.recv(), "".join(parts))
        arun(go())

    def test_every_profile_over_wss(self):
        # One exchange per mounted protocol: the TLS layer is below all of them.
        async def one(path, send, check):
            async with websockets.connect(self.uri(path), ssl=self.pki.client_ctx()) as ws:
                if send is not None:
                    await ws.send(send)
                check(await asyncio.wait_for(ws.recv(), 10))

        async def go():
            await one("/chatroom", None, lambda m: self.assertTrue(m.startswith("Welcome, "), m))
            await one("/map", json.dumps({"type": "ping", "timestamp": "t1"}),
                      lambda m: self.assertEqual(json.loads(m), {"type": "pong", "timestamp": "t1"}))
            await one("/chat", json.dumps({"action": "history"}),
                      lambda m: self.assertEqual(json.loads(m),
                                                 {"error": "you need to authenticate first"}))
            await one("/relay", json.dumps({"type": "hello"}),
                      lambda m: self.assertEqual(json.loads(m)["message"],
                                                 "Unknown message type: hello"))
            await one("/ws", json.dumps({"op": "ping", "id": 7}),
                      lambda m: self.assertEqual(json.loads(m), {"type": "pong", "id": 7}))
        arun(go())

    def test_load_tool_over_wss(self):
        # ringcast-load's wss:// client (built next to the server), certificate verified.
        tool = os.path.join(os.path.dirname(harness.BINARY), "tools", "ringcast-load")
        if not os.access(tool, os.X_OK):
            self.skipTest("ringcast-load not built")
        r = subprocess.run([tool, "echo", "--connections", "8", "--duration", "1", "--quiet",
                            "--tls-ca", self.pki.ca, self.uri("/echo")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("result: PASS", r.stdout)
        # With a CA that did not sign the server's certificate, every connection fails.
        r = subprocess.run([tool, "echo", "--connections", "2", "--duration", "1", "--quiet",
                            "--connect-timeout", "5", "--tls-ca", self.pki.other_ca,
                            self.uri("/echo")], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("certificate verify failed", r.stderr)

    def test_slow_reader_closed_by_outbound_cap(self):
        # A TLS member that never reads: its queue is judged against outbound_cap as without TLS
        # (the ciphertext in flight is bounded per send), so it is closed and the room goes on.
        before = self.server.health()["slow_consumers"]["closed"]
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck = self.pki.client_ctx().wrap_socket(raw, server_hostname="localhost")
        try:
            stuck.sendall(harness.build_request("GET", "/raw/tls-slow",
                                                harness.upgrade_headers(harness.ws_key())))
            self.assertTrue(stuck.recv(4096).startswith(b"HTTP/1.1 101"))
            chunk = os.urandom(64 * 1024)

            async def go():
                ctx = self.pki.client_ctx()
                async with websockets.connect(self.uri("/raw/tls-slow?echo=0"), ssl=ctx) as pub, \
                        websockets.connect(self.uri("/raw/tls-slow"), ssl=ctx,
                                           max_size=None) as reader:
                    for i in range(160):  # 10 MiB: more than the kernel buffers and the cap
                        await pub.send(chunk)
                        self.assertEqual(await reader.recv(), chunk)
            arun(go(), timeout=60)
            wait_until(lambda: self.server.health()["slow_consumers"]["closed"] > before,
                       timeout=15, what="the non-reading TLS member closed as a slow consumer")
        finally:
            stuck.close()

    def test_broadcast_across_workers(self):
        n = 8

        async def go():
            ctx = self.pki.client_ctx()
            conns = [await websockets.connect(self.uri("/raw/tls-room"), ssl=ctx)
                     for _ in range(n)]
            try:
                per_thread = self.server.health()["connections"]["per_thread"]
                for round_ in range(3):
                    msg = "broadcast %d" % round_
                    await conns[round_].send(msg)
                    got = await asyncio.gather(*(c.recv() for c in conns))
                    self.assertEqual(got, [msg] * n)
                return per_thread
            finally:
                await asyncio.gather(*(c.close() for c in conns))
        per_thread = arun(go())
        # SO_REUSEPORT spreads connections over both workers (not guaranteed, so only reported).
        if min(per_thread) == 0:
            print("note: all TLS connections landed on one worker: %r" % (per_thread,))

    def test_http_over_tls_on_websocket_port(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            with self.pki.client_ctx().wrap_socket(raw, server_hostname="localhost") as s:
                self.assertEqual(s.selected_alpn_protocol(), None)
                s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])
        body = json.loads(data.split(b"\r\n\r\n", 1)[1])
        self.assertIn("tls", body)

    def test_close_handshake_ends_with_close_notify(self):
        # After the close frames the server ends TLS with close_notify before its FIN, so the
        # client sees an orderly end of stream (b""), not a truncation (SSLEOFError).
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            ctx = self.pki.client_ctx()
            ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # python's default forgives truncation
            with ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as s:
                key = harness.ws_key()
                s.sendall(harness.build_request("GET", "/echo", harness.upgrade_headers(key)))
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = s.recv(4096)
                    self.assertTrue(chunk, "closed during the upgrade")
                    head += chunk
                self.assertTrue(head.startswith(b"HTTP/1.1 101"), head[:80])
                s.sendall(harness.build_frame(0x8, harness.close_payload(1000)))
                rest = head.split(b"\r\n\r\n", 1)[1]
                while True:
                    chunk = s.recv(4096)  # raises SSLEOFError on a FIN without close_notify
                    if not chunk:
                        break
                    rest += chunk
                self.assertEqual(rest[:4], b"\x88\x02\x03\xe8")  # the server's close 1000

    def test_alpn_http11(self):
        ctx = self.pki.client_ctx()
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
                self.assertIn(s.version(), ("TLSv1.2", "TLSv1.3"))
        # A client that speaks only h2 is refused (it would misread HTTP/1.1).
        ctx = self.pki.client_ctx()
        ctx.set_alpn_protocols(["h2"])
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            with self.assertRaises(ssl.SSLError):
                ctx.wrap_socket(raw, server_hostname="localhost")

    def test_tls12_and_old_versions(self):
        ctx = self.pki.client_ctx()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                self.assertEqual(s.version(), "TLSv1.2")
                self.assertIn("ECDHE", s.cipher()[0])
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 200"))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.pki.ca)
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            with self.assertRaises(ssl.SSLError):
                ctx.wrap_socket(raw, server_hostname="localhost")

    def test_wrong_ca_refused(self):
        async def go():
            with self.assertRaises(ssl.SSLCertVerificationError):
                await websockets.connect(self.uri("/echo"),
                                         ssl=self.pki.client_ctx(ca=self.pki.other_ca))
        arun(go())

    def test_wrong_sni(self):
        # The server has one certificate and does not refuse unknown names: it answers every
        # SNI with it. A client that checks the host name therefore refuses a name the
        # certificate does not cover; one that does not check connects.
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError) as cm:
                self.pki.client_ctx().wrap_socket(raw, server_hostname="wrong.example")
            self.assertIn("wrong.example", str(cm.exception))
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            ctx = self.pki.client_ctx(check_hostname=False)
            with ctx.wrap_socket(raw, server_hostname="wrong.example") as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 200"))

    def test_plaintext_to_tls_port_refused(self):
        before = self.server.health()["tls"]["handshake_failures"]
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
        # Closed, with at most a TLS alert record (content type 21): never an HTTP answer.
        self.assertTrue(data == b"" or data[0] == 21, data[:50])
        wait_until(lambda: self.server.health()["tls"]["handshake_failures"] > before,
                   what="handshake failure counted")

    def test_slow_and_stuck_handshakes(self):
        hello = client_hello()
        self.assertGreater(len(hello), 100)
        stuck = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        slow = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        t0 = time.monotonic()
        try:
            stuck.sendall(hello[:len(hello) // 2])  # half a ClientHello, then nothing
            # Byte at a time, while other clients are served normally.
            for i in range(0, 60):
                slow.sendall(hello[i:i + 1])
                if i % 20 == 0:
                    self.test_echo_over_wss()
                time.sleep(0.005)
            # Both are closed after handshake_timeout_ms.
            for s in (stuck, slow):
                try:
                    while s.recv(4096):
                        pass
                except ConnectionResetError:
                    pass
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, HANDSHAKE_TIMEOUT_MS / 1000 * 0.8)
            self.assertLess(elapsed, HANDSHAKE_TIMEOUT_MS / 1000 + 5)
        finally:
            stuck.close()
            slow.close()

    def test_health_counts_userspace_sessions(self):
        async def go():
            ctx = self.pki.client_ctx()
            conns = [await websockets.connect(self.uri("/echo"), ssl=ctx) for _ in range(3)]
            try:
                wait_until(lambda: self.server.health()["tls"]["userspace"] >= 3,
                           what="3 user-space TLS sessions")
                tls = self.server.health()["tls"]
                self.assertEqual(tls["ktls"], 0)  # no `tls` ULP on this kernel
            finally:
                await asyncio.gather(*(c.close() for c in conns))
        arun(go())
        wait_until(lambda: self.server.health()["tls"]["userspace"] == 0,
                   what="closed sessions uncounted")
        metrics = harness.http_request(self.http_port, "GET", "/metrics").body.decode()
        self.assertIn('ringcast_tls_sessions{mode="userspace"} 0', metrics)
        self.assertIn('ringcast_tls_sessions{mode="ktls"} 0', metrics)
        self.assertIn("ringcast_tls_handshake_failures_total ", metrics)
        # The kTLS attempt ran (OpenSSL handed the keys to our BIO) and its fallback is logged once.
        log = self.server.stderr_text()
        self.assertIn("no `tls` module", log)
        self.assertEqual(log.count("encrypting in user space"), 1)


def spki_hash(cert):
    """base64(sha256(SubjectPublicKeyInfo)), what --ignore-certificate-errors-spki-list takes."""
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", cert], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, check=True,
                         capture_output=True).stdout
    import base64
    import hashlib
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


class TlsBrowserTest(ProcessTestCase):
    """The fireworks web app's flow (see test_browser.py) with the page opening wss://."""

    def test_fireworks_over_wss(self):
        import test_browser
        pki = Pki()
        self.addCleanup(pki.cleanup)
        pki.install("srv1", pki.path("live.pem"), pki.path("live.key"))
        page = test_browser.PageServer(test_browser.PAGE.replace("ws://", "wss://"))
        self.addCleanup(page.close)
        srv = self.new_server(config_text=tls_config(pki) + "[origins]\nallowed = [%s]\n"
                              % json.dumps(page.origin))
        page.ws_port = srv.port
        ctx = pki.client_ctx()

        async def go():
            bridge = await websockets.connect("wss://localhost:%d/" % srv.port, ssl=ctx,
                                              max_size=None)
            await bridge.send(json.dumps({"type": "bridge"}))
            browser = test_browser.Browser(
                page.origin + "/",
                ["--ignore-certificate-errors-spki-list=" + spki_hash(pki.path("srv1.pem"))])
            try:
                raw = await asyncio.wait_for(bridge.recv(), 30)
                m = json.loads(raw)
                self.assertEqual(len(m["fireworks"]), 3)
                self.assertGreater(len(raw), 900_000, "the drawings arrive whole")
                r = await asyncio.to_thread(page.wait_report, lambda r: r.get("event") == "id", 10)
                self.assertEqual(int(r["id"]), m["id"])
                await bridge.send(json.dumps({"id": m["id"],
                                              "data": {"id": m["id"], "status": "ready"}}))
                r = await asyncio.to_thread(page.wait_report,
                                            lambda r: r.get("event") == "status", 10)
                self.assertEqual(r, {"event": "status", "status": "ready", "id": str(m["id"])})
                self.assertGreaterEqual(srv.health()["tls"]["userspace"], 2)
            finally:
                browser.close()
                await bridge.close()
        arun(go(), timeout=60)
        self.assertEqual(srv.stop(), 0)


class TlsReloadTest(ProcessTestCase):
    def setUp(self):
        super().setUp()
        self.pki = Pki()
        self.addCleanup(self.pki.cleanup)

    def test_sighup_rotates_certificate(self):
        pki = self.pki
        cert, key = pki.path("live.pem"), pki.path("live.key")
        pki.install("srv1", cert, key)
        srv = self.new_server(config_text=tls_config(pki))
        self.assertEqual(peer_cn(srv.port, pki), "rotation one")

        async def go():
            old = await websockets.connect("wss://localhost:%d/echo" % srv.port,
                                           ssl=pki.client_ctx())
            await old.send("before")
            self.assertEqual(await old.recv(), "before")
            pki.install("srv2", cert, key)
            srv.send_signal(signal.SIGHUP)
            wait_until(lambda: peer_cn(srv.port, pki) == "rotation two", timeout=10,
                       what="new certificate on new connections")
            await old.send("after")  # the old connection is untouched
            self.assertEqual(await old.recv(), "after")
            # A bad pair (key of another certificate) keeps the current one, with an error log.
            shutil.copyfile(pki.path("srv1.key"), key)
            srv.send_signal(signal.SIGHUP)
            wait_until(lambda: "keeping the current TLS certificate" in srv.stderr_text(),
                       what="reload error logged")
            self.assertEqual(peer_cn(srv.port, pki), "rotation two")
            await old.send("still")
            self.assertEqual(await old.recv(), "still")
            await old.close()
        arun(go())
        self.assertEqual(srv.stop(), 0)

    def test_client_certificates_required_with_ca(self):
        pki = self.pki
        pki.install("srv1", pki.path("live.pem"), pki.path("live.key"))
        srv = self.new_server(config_text=tls_config(pki, "ca = %s\n" % json.dumps(pki.ca)))

        async def go():
            uri = "wss://localhost:%d/echo" % srv.port
            async with websockets.connect(uri, ssl=pki.client_ctx(client_cert=True)) as ws:
                await ws.send("with cert")
                self.assertEqual(await ws.recv(), "with cert")
            # Without a certificate: the TLS 1.3 handshake looks done to the client, then the
            # server's alert arrives; either way no WebSocket opens.
            with self.assertRaises((ssl.SSLError, OSError, websockets.exceptions.WebSocketException,
                                    asyncio.TimeoutError)):
                async with websockets.connect(uri, ssl=pki.client_ctx(), open_timeout=5) as ws:
                    await ws.send("no cert")
                    await ws.recv()
        arun(go())
        self.assertEqual(srv.stop(), 0)

    def test_health_port_tls(self):
        pki = self.pki
        pki.install("srv1", pki.path("live.pem"), pki.path("live.key"))
        srv = self.new_server(start=False, config_text=tls_config(pki, "http_port_tls = true\n"))
        # wait_ready speaks plain HTTP: start by hand and poll over TLS.
        srv.wait_ready = lambda timeout=10.0: None
        srv.start()

        def https_health():
            with socket.create_connection(("127.0.0.1", srv.http_port), timeout=2) as raw:
                with pki.client_ctx().wrap_socket(raw, server_hostname="localhost") as s:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    data = b""
                    while True:
                        c = s.recv(65536)
                        if not c:
                            return data
                        data += c
        data = wait_until(https_health, timeout=10, what="/health over TLS on the health port")
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:80])
        self.assertEqual(srv.stop(), 0)

    def test_bad_config_refused(self):
        pki = self.pki
        pki.install("srv1", pki.path("live.pem"), pki.path("live.key"))
        cfg = harness.write_temp("[tls]\ncert = %s\n" % json.dumps(pki.path("live.pem")))
        self.addCleanup(os.unlink, cfg)
        r = harness.run_binary(["--config", cfg, "--check-config"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("tls", r.stderr.decode())
        # Mismatched key: start-up fails with OpenSSL's reason.
        shutil.copyfile(pki.path("srv2.key"), pki.path("live.key"))
        srv = self.new_server(start=False, config_text=tls_config(pki))
        with self.assertRaises(AssertionError):
            srv.start(ready_timeout=5)
        self.assertIn("mismatch", srv.stderr_text())


if __name__ == "__main__":
    harness.main()
