"""Shared helpers for the ringcast engine integration tests.

Every test file is run as

    /usr/bin/python3 tests/integration/test_X.py --binary /path/to/ringcast --backend io_uring|epoll

`main()` strips those two options from sys.argv and runs unittest, which exits
non-zero on any failure or error.

Only the standard library is used here (the websockets package is used by some
test files directly).
"""

import atexit
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))

BINARY = os.environ.get("RINGCAST_BINARY", os.path.join(_REPO, "build", "ringcast"))
BACKEND = os.environ.get("RINGCAST_BACKEND", "epoll")

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Default socket timeout for one blocking operation in the raw clients.
IO_TIMEOUT = 5.0


def parse_args(argv=None):
    """Remove --binary/--backend (both `--x v` and `--x=v`) from argv; set globals."""
    global BINARY, BACKEND
    argv = list(sys.argv if argv is None else argv)
    rest = [argv[0]]
    i = 1
    while i < len(argv):
        a = argv[i]
        if a in ("--binary", "--backend"):
            if i + 1 >= len(argv):
                sys.exit("missing value for %s" % a)
            val = argv[i + 1]
            i += 2
        elif a.startswith("--binary=") or a.startswith("--backend="):
            a, val = a.split("=", 1)
            i += 1
        else:
            rest.append(a)
            i += 1
            continue
        if a == "--binary":
            BINARY = os.path.abspath(val)
        else:
            BACKEND = val
    if BACKEND not in ("io_uring", "epoll", "auto"):
        sys.exit("bad --backend %r" % BACKEND)
    return rest


def main():
    rest = parse_args()
    if not (os.path.isfile(BINARY) and os.access(BINARY, os.X_OK)):
        sys.stderr.write("ringcast binary not found or not executable: %s\n" % BINARY)
        sys.exit(1)
    sys.stderr.write("binary=%s backend=%s\n" % (BINARY, BACKEND))
    unittest.main(argv=rest, verbosity=2)


# --------------------------------------------------------------------------
# misc
# --------------------------------------------------------------------------

def free_port():
    """A port that was free a moment ago (bind port 0 on 127.0.0.1, then close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def two_free_ports():
    a = free_port()
    for _ in range(50):
        b = free_port()
        if b != a:
            return a, b
    raise RuntimeError("could not find two distinct free ports")


def wait_until(predicate, timeout=5.0, interval=0.05, what="condition"):
    """Poll `predicate` until it returns a truthy value (returned) or fail with AssertionError.

    Exceptions raised by predicate count as "not yet"; the last one is reported.
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    last_val = None
    while True:
        try:
            last_val = predicate()
            if last_val:
                return last_val
        except Exception as e:  # noqa: BLE001 - reported below
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last value %r, last error %r)"
                                 % (timeout, what, last_val, last_exc))
        time.sleep(interval)


def raise_nofile_limit(cap=20000):
    """Raise RLIMIT_NOFILE soft limit up to min(hard, cap). Returns the new soft limit."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError("unsupported TOML value %r" % (v,))


def toml_text(sections):
    """{"limits": {"max_connections": 3}, "origins": {...}} -> TOML text."""
    out = []
    for sec, kv in sections.items():
        out.append("[%s]" % sec)
        for k, v in kv.items():
            out.append("%s = %s" % (k, toml_value(v)))
        out.append("")
    return "\n".join(out)


def write_temp(text, suffix=".toml"):
    fd, path = tempfile.mkstemp(prefix="ringcast-test-", suffix=suffix)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def run_binary(args, timeout=10.0, env=None):
    """Run the binary to completion (for --check-config, bad flags...). Returns CompletedProcess."""
    return subprocess.run([BINARY] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, env=env)


# --------------------------------------------------------------------------
# server process
# --------------------------------------------------------------------------

class Server:
    """One ringcast process on free ports of 127.0.0.1."""

    def __init__(self, config=None, config_text=None, threads=2, extra_args=(), env=None,
                 http_port=True, nofile=None):
        self.port, hp = two_free_ports()
        self.http_port = hp if http_port else 0
        self.threads = threads
        self.config_path = None
        if config_text is None and config:
            config_text = toml_text(config)
        if config_text is not None:
            self.config_path = write_temp(config_text)
        self.extra_args = list(extra_args)
        self.env = env
        self.nofile = nofile        # RLIMIT_NOFILE (soft and hard) for the server process
        self.proc = None
        self.stderr_path = None
        self._stderr_file = None
        self.returncode = None
        self._data_dir = None

    @property
    def drain_timeout(self):
        """drain_timeout_ms (seconds) as configured (default 5 s)."""
        if self.config_path:
            with open(self.config_path) as f:
                for line in f:
                    k, _, v = line.partition("=")
                    if k.strip() == "drain_timeout_ms":
                        return int(v.split("#")[0].strip()) / 1000.0
        return 5.0

    def args(self):
        a = [BINARY, "--threads", str(self.threads), "--backend", BACKEND, "--host", "127.0.0.1",
             "--port", str(self.port), "--http-port", str(self.http_port)]
        if self.config_path:
            a += ["--config", self.config_path]
        if "--data-dir" not in self.extra_args and not self._config_sets("data_dir"):
            # The seed profiles keep durable rooms by default: give each server its own store.
            if self._data_dir is None:
                self._data_dir = tempfile.mkdtemp(prefix="ringcast-data-")
                atexit.register(shutil.rmtree, self._data_dir, True)
            a += ["--data-dir", self._data_dir]
        return a + self.extra_args

    def _config_sets(self, key):
        if not self.config_path:
            return False
        with open(self.config_path) as f:
            return any(line.split("=")[0].strip() == key for line in f)

    def start(self, ready_timeout=10.0):
        fd, self.stderr_path = tempfile.mkstemp(prefix="ringcast-stderr-", suffix=".log")
        self._stderr_file = os.fdopen(fd, "wb")
        preexec = None
        if self.nofile is not None:
            import resource
            limit = self.nofile

            def preexec():
                # Hard limit too: the server raises its soft limit to the hard one at start.
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
        self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL, stdout=self._stderr_file,
                                     stderr=self._stderr_file, env=self.env, preexec_fn=preexec)
        self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout=10.0):
        """Wait until GET /health answers 200 on the http port (or the ws port if http is disabled)."""
        port = self.http_port or self.port
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("ringcast exited with %s during startup\n%s"
                                     % (self.proc.returncode, self.stderr_text()))
            try:
                r = http_request(port, "GET", "/health", timeout=1.0)
                if r.status == 200:
                    return
                last = "status %s" % r.status
            except (OSError, ProtocolError) as e:
                last = repr(e)
            time.sleep(0.05)
        self.kill()
        raise AssertionError("ringcast not ready after %.1fs (last: %s)\n%s"
                             % (timeout, last, self.stderr_text()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """Wait up to timeout for exit; returns the exit code or None if still running."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Signal and wait; returns exit code (None if it had to be SIGKILLed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            self.returncode = self.proc.returncode
            return self.returncode
        if timeout is None:
            timeout = self.drain_timeout + 3.0
        self.proc.send_signal(sig)
        rc = self.wait_exit(timeout)
        if rc is None:
            self.kill()
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def stderr_text(self, limit=20000):
        if not self.stderr_path:
            return ""
        try:
            if self._stderr_file:
                self._stderr_file.flush()
            with open(self.stderr_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        if len(data) > limit:
            data = b"...(truncated)...\n" + data[-limit:]
        return data.decode("utf-8", "replace")

    def cleanup(self):
        self.kill()
        if self._stderr_file:
            self._stderr_file.close()
            self._stderr_file = None
        for p in (self.stderr_path, self.config_path):
            if p:
                try:
                    os.unlink(p)
                except OSError:
                    pass

    def rewrite_config(self, text):
        with open(self.config_path + ".tmp", "w") as f:
            f.write(text)
        os.replace(self.config_path + ".tmp", self.config_path)

    def health(self, port=None):
        r = http_request(port or self.http_port or self.port, "GET", "/health")
        if r.status != 200:
            raise AssertionError("/health returned %s" % r.status)
        return json.loads(r.body)


class _StderrOnFailure:
    """Mixin: prints the server's stderr when a test of this case fails."""

    def _servers_for_log(self):
        return []

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            for srv in self._servers_for_log():
                if srv is not None and srv.stderr_path:
                    text = srv.stderr_text()
                    if getattr(srv, "_printed", None) == text:
                        sys.stderr.write("\n(ringcast stderr unchanged since it was last printed)\n")
                        continue
                    srv._printed = text
                    sys.stderr.write("\n----- ringcast stderr (%s, ports %s/%s) -----\n%s\n"
                                     "----- end of ringcast stderr -----\n"
                                     % (self.id(), srv.port, srv.http_port, text))
        return out


class ServerTestCase(_StderrOnFailure, unittest.TestCase):
    """One server per test class. Set CONFIG (dict for toml_text) or CONFIG_TEXT for non-defaults.

    tearDownClass stops it with SIGTERM and asserts exit code 0 within drain timeout + 3 s.
    Each test asserts the server is still running afterwards.
    """

    CONFIG = None
    CONFIG_TEXT = None
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server(config=cls.CONFIG, config_text=cls.CONFIG_TEXT)
        try:
            cls.server.start()
        except BaseException:
            sys.stderr.write(cls.server.stderr_text())
            cls.server.cleanup()
            raise
        cls.port = cls.server.port
        cls.http_port = cls.server.http_port

    @classmethod
    def tearDownClass(cls):
        srv = cls.server
        if srv is None:
            return
        try:
            was_alive = srv.alive()
            t0 = time.monotonic()
            rc = srv.stop(signal.SIGTERM)
            elapsed = time.monotonic() - t0
            if not was_alive or rc != 0:
                raise AssertionError("ringcast %s (exit code %r after %.2fs)\n%s"
                                     % ("had died" if not was_alive else "did not stop cleanly on SIGTERM",
                                        rc, elapsed, srv.stderr_text()))
        finally:
            srv.cleanup()

    def _servers_for_log(self):
        return [type(self).server]

    died_in = None

    def setUp(self):
        srv = type(self).server
        if srv is not None and not srv.alive():
            self.fail("ringcast is not running: it died during %s (exit code %r)"
                      % (type(self).died_in, srv.proc.returncode))

    def tearDown(self):
        srv = type(self).server
        if srv is not None and not srv.alive() and type(self).died_in is None:
            type(self).died_in = self.id()
            self.fail("ringcast died during %s (exit code %r)" % (self.id(), srv.proc.returncode))


class ProcessTestCase(_StderrOnFailure, unittest.TestCase):
    """Tests that manage their own server(s): call self.new_server(...); cleaned up automatically."""

    def setUp(self):
        self._servers = []

    def new_server(self, start=True, **kw):
        srv = Server(**kw)
        self._servers.append(srv)
        self.addCleanup(srv.kill)   # files are removed in run(), after a failure was reported
        if start:
            srv.start()
        return srv

    def _servers_for_log(self):
        return getattr(self, "_servers", [])

    def run(self, result=None):
        try:
            return super().run(result)
        finally:
            for srv in getattr(self, "_servers", []):
                srv.cleanup()


# --------------------------------------------------------------------------
# raw HTTP
# --------------------------------------------------------------------------

class ProtocolError(Exception):
    pass


class Closed(Exception):
    """Peer closed the TCP connection (EOF or RST) before the expected data."""


class Response:
    def __init__(self, status, reason, version, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.version = version
        self.header_list = headers            # [(name, value)] in order
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.header_list:
            if k.lower() == name:
                return v
        return default

    def headers_named(self, name):
        name = name.lower()
        return [v for k, v in self.header_list if k.lower() == name]

    def has_header(self, name):
        return self.header(name) is not None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %s %r headers=%r body=%r>" % (self.status, self.reason, self.header_list,
                                                        self.body[:200])


class RawConn:
    """A blocking TCP connection with a read buffer; tolerant of RST after data."""

    def __init__(self, port, host="127.0.0.1", timeout=IO_TIMEOUT, sock=None):
        if sock is None:
            sock = socket.create_connection((host, port), timeout=timeout)
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def settimeout(self, t):
        self.sock.settimeout(t)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline=None):
        """Read more data into buf. Returns False on EOF/RST. Raises socket.timeout on timeout."""
        if self.eof:
            return False
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("deadline reached")
            self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(262144)
        except ConnectionResetError:
            self.eof = True
            self.reset = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_exact(self, n, deadline=None):
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise Closed("connection closed with %d of %d bytes buffered" % (len(self.buf), n))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_until(self, marker, limit=1 << 20, deadline=None):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = bytes(self.buf[:i + len(marker)])
                del self.buf[:i + len(marker)]
                return out
            if len(self.buf) > limit:
                raise ProtocolError("marker %r not found in %d bytes" % (marker, len(self.buf)))
            if not self._fill(deadline):
                raise Closed("connection closed before %r (buffered %r)" % (marker, bytes(self.buf[:200])))

    def wait_closed(self, timeout=IO_TIMEOUT):
        """Read (and discard) until EOF/RST; returns discarded bytes. socket.timeout if still open."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def is_closed_within(self, timeout):
        try:
            self.wait_closed(timeout)
            return True
        except socket.timeout:
            return False

    # -- HTTP --------------------------------------------------------------

    def read_response(self, method="GET", timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        head = self.read_until(b"\r\n\r\n", deadline=deadline)
        lines = head[:-4].split(b"\r\n")
        try:
            version, status, *reason = lines[0].decode("latin-1").split(" ", 2)
            status = int(status)
        except ValueError:
            raise ProtocolError("bad status line %r" % lines[0])
        headers = []
        for ln in lines[1:]:
            k, sep, v = ln.decode("latin-1").partition(":")
            if not sep:
                raise ProtocolError("bad header line %r" % ln)
            headers.append((k.strip(), v.strip()))
        resp = Response(status, reason[0] if reason else "", version, headers, b"", head)
        if method == "HEAD" or status in (101, 204, 304) or 100 <= status < 200:
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if te and "chunked" in te.lower():
            body = bytearray()
            while True:
                size_line = self.read_until(b"\r\n", deadline=deadline)
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    self.read_until(b"\r\n", deadline=deadline)  # (no trailers expected)
                    break
                body += self.read_exact(size, deadline)
                self.read_exact(2, deadline)
            resp.body = bytes(body)
        elif cl is not None:
            resp.body = self.read_exact(int(cl), deadline)
        else:
            # read to EOF
            try:
                while self._fill(deadline):
                    pass
            except socket.timeout:
                raise ProtocolError("response without Content-Length did not end with close")
            resp.body = bytes(self.buf)
            self.buf.clear()
        return resp

    def request(self, method, path, headers=None, body=b"", version="HTTP/1.1", host=True,
                timeout=IO_TIMEOUT):
        self.send(build_request(method, path, headers, body, version, host))
        return self.read_response(method, timeout)


def build_request(method, path, headers=None, body=b"", version="HTTP/1.1", host=True):
    lines = ["%s %s %s" % (method, path, version)]
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if host and not any(k.lower() == "host" for k, _ in hdrs):
        lines.append("Host: 127.0.0.1")
    for k, v in hdrs:
        lines.append("%s: %s" % (k, v))
    if body and not any(k.lower() == "content-length" for k, _ in hdrs):
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def http_request(port, method, path, headers=None, body=b"", version="HTTP/1.1", timeout=IO_TIMEOUT):
    """One request on a fresh connection (closed afterwards)."""
    with RawConn(port, timeout=timeout) as c:
        return c.request(method, path, headers, body, version, timeout=timeout)


def get_json(port, path, headers=None):
    r = http_request(port, "GET", path, headers)
    return r, json.loads(r.body.decode("utf-8"))


# --------------------------------------------------------------------------
# raw WebSocket
# --------------------------------------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def ws_key():
    return base64.b64encode(os.urandom(16)).decode()


def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def upgrade_headers(key=None, origin=None, version="13", extra=None):
    h = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
         ("Sec-WebSocket-Key", key or ws_key()), ("Sec-WebSocket-Version", version)]
    if origin is not None:
        h.append(("Origin", origin))
    h += list(extra or [])
    return h


def build_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, mask_key=None, length=None):
    """Encode a frame. rsv: 3-bit value (4=RSV1, 2=RSV2, 1=RSV3). length overrides the declared length."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return hdr + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return hdr + key + mask_bytes(payload, key)


def mask_bytes(payload, key):
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


class Frame:
    def __init__(self, fin, rsv, opcode, payload, masked):
        self.fin, self.rsv, self.opcode, self.payload, self.masked = fin, rsv, opcode, payload, masked

    @property
    def close_code(self):
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self):
        return self.payload[2:].decode("utf-8", "replace")

    def __repr__(self):
        return "<Frame fin=%d rsv=%d op=%d len=%d %r>" % (self.fin, self.rsv, self.opcode,
                                                          len(self.payload), self.payload[:60])


class ConnectionClosedByServer(Exception):
    def __init__(self, code, reason, frame):
        super().__init__("server sent close %r %r" % (code, reason))
        self.code, self.reason, self.frame = code, reason, frame


class HandshakeFailed(Exception):
    def __init__(self, response):
        super().__init__("handshake failed: %r" % (response,))
        self.response = response


class RawWebSocket(RawConn):
    """Raw client: sends arbitrary frames, reads frames; server frames must be unmasked."""

    def __init__(self, port, path="/echo", origin=None, headers=None, timeout=IO_TIMEOUT,
                 handshake=True):
        super().__init__(port, timeout=timeout)
        self.controls = []          # ping/pong frames seen while reading messages
        self.handshake_response = None
        if handshake:
            try:
                self.handshake(path, origin, headers)
            except BaseException:
                self.close()
                raise

    def handshake(self, path="/echo", origin=None, headers=None):
        key = ws_key()
        self.send(build_request("GET", path, upgrade_headers(key, origin, extra=headers)))
        r = self.read_response("GET")
        self.handshake_response = r
        if r.status != 101:
            raise HandshakeFailed(r)
        if r.header("Sec-WebSocket-Accept") != ws_accept(key):
            raise ProtocolError("bad Sec-WebSocket-Accept %r" % r.header("Sec-WebSocket-Accept"))
        return r

    def send_frame(self, opcode, payload=b"", **kw):
        self.send(build_frame(opcode, payload, **kw))

    def send_text(self, s):
        self.send_frame(OP_TEXT, s.encode("utf-8") if isinstance(s, str) else s)

    def send_binary(self, b):
        self.send_frame(OP_BINARY, b)

    def send_close(self, code=None, reason=b""):
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    def read_frame(self, timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        b0, b1 = self.read_exact(2, deadline)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.read_exact(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.read_exact(8, deadline))[0]
        masked = bool(b1 & 0x80)
        if masked:
            self.read_exact(4, deadline)  # masking key (a server must not mask; reported below)
        payload = self.read_exact(n, deadline)
        if masked:
            raise ProtocolError("server sent a masked frame")
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload, masked)

    def read_message(self, timeout=IO_TIMEOUT):
        """Next data message (opcode, payload); control frames go to self.controls;
        a close frame raises ConnectionClosedByServer."""
        deadline = time.monotonic() + timeout
        opcode, parts = None, []
        while True:
            f = self.read_frame(max(0.0, deadline - time.monotonic()))
            if f.rsv:
                raise ProtocolError("server frame with RSV bits: %r" % f)
            if f.opcode == OP_CLOSE:
                raise ConnectionClosedByServer(f.close_code, f.close_reason, f)
            if f.opcode in (OP_PING, OP_PONG):
                self.controls.append(f)
                continue
            if f.opcode == OP_CONT:
                if opcode is None:
                    raise ProtocolError("server sent continuation without start")
            elif f.opcode in (OP_TEXT, OP_BINARY):
                if opcode is not None:
                    raise ProtocolError("server started a new message inside a fragmented one")
                opcode = f.opcode
            else:
                raise ProtocolError("server sent opcode %d" % f.opcode)
            parts.append(f.payload)
            if f.fin:
                return opcode, b"".join(parts)

    def read_close(self, timeout=IO_TIMEOUT, skip_data=True):
        """Read frames until a close frame; returns (code, reason). Data frames are skipped
        (if skip_data) else raise. Raises Closed if TCP closes first."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(max(0.0, deadline - time.monotonic()))
            if f.opcode == OP_CLOSE:
                return f.close_code, f.close_reason
            if f.opcode in (OP_PING, OP_PONG):
                self.controls.append(f)
                continue
            if not skip_data:
                raise ProtocolError("expected close, got %r" % f)

    def echo(self, opcode, payload, timeout=IO_TIMEOUT):
        self.send_frame(opcode, payload)
        return self.read_message(timeout)


class StalledWebSocket(RawWebSocket):
    """A raw WebSocket whose receive buffer is shrunk before connecting, for a reader that stops
    reading (the test reads it, if at all, only at the end)."""

    def __init__(self, port, path, rcvbuf=4096):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(IO_TIMEOUT)
        s.connect(("127.0.0.1", port))
        RawConn.__init__(self, port, sock=s)
        self.controls = []
        self.handshake_response = None
        try:
            self.handshake(path)
        except BaseException:
            self.close()
            raise


def rss_kb(pid):
    """A process's resident set size in kB (VmRSS)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


_SANITIZED = None


def sanitized():
    """True when the binary under test is built with AddressSanitizer. Its allocator keeps freed
    memory in a quarantine (up to 256 MiB) and never hands it back on a trim, so tests of how much
    memory the server returns measure ASan, not ringcast: they assert RSS in the release suite
    only (everything else they check still runs)."""
    global _SANITIZED
    if _SANITIZED is None:
        with open(BINARY, "rb") as f:
            _SANITIZED = b"__asan_init" in f.read()
    return _SANITIZED

