"""A private redis-server for cluster tests: its own free port and directory, started and stopped
by the test (never a Redis that happens to be running). Debian's redis-server is installed by
tools/dev.sh."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from harness import ProcessTestCase, Server, free_port, wait_until

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class Redis:
    def __init__(self, password=None, unix_socket=False, appendonly=False):
        self.dir = tempfile.mkdtemp(prefix="ringcast-redis-")
        self.port = free_port()
        self.password = password
        self.unix_path = os.path.join(self.dir, "redis.sock") if unix_socket else None
        self.appendonly = appendonly
        self.proc = None

    def url(self, db=0, user=None, password=None, tcp=False):
        """The [cluster] redis URL: over the unix socket if it has one (unless tcp), with this
        server's password unless user/password are given (ACL users, wrong passwords)."""
        password = self.password if password is None else password
        if self.unix_path and not tcp:
            q = "?db=%d" % db
            if user:
                q += "&user=" + user
            if password:
                q += "&password=" + password
            return "unix:" + self.unix_path + q
        auth = "%s:%s@" % (user or "", password) if password else ""
        return "redis://%s127.0.0.1:%d/%d" % (auth, self.port, db)

    @property
    def pid(self):
        return self.proc.pid

    def start(self, timeout=10.0):
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--appendonly", "yes" if self.appendonly else "no",
                "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log")]
        if self.appendonly:
            args += ["--appendfsync", "always"]
        if self.password:
            args += ["--requirepass", self.password]
        if self.unix_path:
            args += ["--unixsocket", self.unix_path, "--unixsocketperm", "700"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, timeout=timeout, what="redis-server to answer PING")
        return self

    def command(self, *args, timeout=2.0):
        """One command over a fresh connection (RESP, minimal reply reading for tests)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            parts = []
            if self.password:
                parts.append(("AUTH", self.password))
            parts.append(args)
            out = b""
            for cmd in parts:
                out += b"*%d\r\n" % len(cmd)
                for a in cmd:
                    a = a if isinstance(a, bytes) else str(a).encode()
                    out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            replies = [_read_reply(f) for _ in parts]
            return replies[-1]
        finally:
            s.close()

    def ping(self):
        return self.proc.poll() is None and self.command("PING") == "PONG"

    def stop(self):
        """kill -9 (works on a paused server too): the nodes see the connection drop."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, timeout=10.0):
        """Killed and started again on the same port and directory (an operator's restart)."""
        self.stop()
        return self.start(timeout=timeout)

    def pause(self):
        """SIGSTOP: the TCP connections stay up but nothing is read or answered."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, True)


def _read_reply(f):
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        return RuntimeError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise ValueError("bad reply %r" % line)


def cluster_node(test, redis, node_id, extra_config="", threads=2, url=None, node_ttl_ms=3000,
                 **kw):
    """A ringcast node of `redis`'s cluster, cleaned up with the test (ProcessTestCase).
    `url` replaces redis.url(); extra_config goes into [cluster] (then other sections)."""
    text = '[cluster]\nredis = "%s"\nnode_id = "%s"\nnode_ttl_ms = %d\n%s' % (
        url or redis.url(), node_id, node_ttl_ms, extra_config)
    return test.new_server(config_text=text, threads=threads, **kw)


def wait_cluster(srv, what, predicate, timeout=10.0):
    return wait_until(lambda: predicate(srv.health()["cluster"]), timeout=timeout, what=what)


class ClusterTestCase(ProcessTestCase):
    """A test with its own redis-server (self.r; redis_options() for Redis's arguments) and
    cluster nodes started by nodes(), each waited for until it sees all the others."""

    def redis_options(self):
        return {}

    def setUp(self):
        super().setUp()
        self.r = Redis(**self.redis_options())
        self.addCleanup(self.r.cleanup)
        self.r.start()

    def nodes(self, n, **kw):
        out = [cluster_node(self, self.r, "n%d" % i, **kw) for i in range(n)]
        for srv in out:
            wait_cluster(srv, "every node connected",
                         lambda c: c["redis"] == "ok" and c["nodes_seen"] == n, timeout=10)
        return out
