#!/usr/bin/python3
"""systemd integration checks for ringcast.

Run as:
    /usr/bin/python3 tests/integration/test_systemd.py --binary BUILD/ringcast --source-dir REPO

Covers: the unit file passes `systemd-analyze verify`; the sd_notify protocol (READY=1,
WATCHDOG=1, STOPPING=1) over a path and an abstract NOTIFY_SOCKET; the example config passes
`--check-config` and matches the defaults in docs/engine-contract.md.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import unittest

BINARY = None
SOURCE_DIR = None

READY_TIMEOUT = 10.0
WATCHDOG_USEC = 400000
WATCHDOG_TIMEOUT = 2.0
STOPPING_TIMEOUT = 5.0
# drain_timeout_ms defaults to 5000; the contract allows "a small grace" on top. Worst case
# for the whole file stays under the 120 s CTest timeout.
EXIT_TIMEOUT = 12.0


def free_ports(n):
    """Ports the kernel handed out for port 0; all held open together so they differ."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def clean_env():
    env = dict(os.environ)
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
              "LISTEN_FDNAMES", "STATE_DIRECTORY", "CONFIGURATION_DIRECTORY"):
        env.pop(k, None)
    return env


class NotifyListener:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, abstract, tmpdir):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "ringcast-test-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            path = os.path.join(tmpdir, "notify.sock")
            self.sock.bind(path)
            self.env_value = path
        self.messages = []  # every datagram received, decoded, in order

    def close(self):
        self.sock.close()

    def wait_for(self, assignment, timeout, start_index=0):
        """Wait until a datagram at index >= start_index carries the line `assignment`.

        Returns the index of that datagram, or None on timeout.
        """
        deadline = time.monotonic() + timeout
        idx = start_index
        while True:
            while idx < len(self.messages):
                if assignment in self.messages[idx].split("\n"):
                    return idx
                idx += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            self.messages.append(data.decode("utf-8", "replace"))


class ServerProcess:
    def __init__(self, args, env, cwd):
        self.stderr_path = os.path.join(cwd, "server.stderr")
        self.stdout_path = os.path.join(cwd, "server.stdout")
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen([BINARY] + args, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err)

    def output(self):
        self._err.flush()
        self._out.flush()
        with open(self.stderr_path, "rb") as f:
            err = f.read().decode("utf-8", "replace")
        with open(self.stdout_path, "rb") as f:
            out = f.read().decode("utf-8", "replace")
        return "--- server stderr ---\n%s--- server stdout ---\n%s---" % (err, out)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._err.close()
        self._out.close()


def require_binary(tc):
    if not BINARY:
        tc.fail("--binary was not given")
    if not (os.path.isfile(BINARY) and os.access(BINARY, os.X_OK)):
        tc.fail("binary %s does not exist or is not executable" % BINARY)


class UnitFileTest(unittest.TestCase):
    def test_systemd_analyze_verify(self):
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.skipTest("systemd-analyze not found; cannot verify systemd/ringcast.service.in")
        require_binary(self)
        # The unit template; the install step fills in ExecStart's directory, replaced here anyway.
        unit_src = os.path.join(SOURCE_DIR, "systemd", "ringcast.service.in")
        with open(unit_src, encoding="utf-8") as f:
            text = f.read()
        binary = os.path.abspath(BINARY)
        text, n = re.subn(r"(?m)^ExecStart=\S+", lambda m: "ExecStart=" + binary, text)
        self.assertEqual(n, 1, "expected exactly one ExecStart= line in %s" % unit_src)
        with tempfile.TemporaryDirectory(prefix="rc-unit-") as d:
            unit = os.path.join(d, "ringcast.service")
            with open(unit, "w", encoding="utf-8") as f:
                f.write(text)
            env = clean_env()
            env["SYSTEMD_PAGER"] = ""
            env["SYSTEMD_LOG_COLOR"] = "0"
            r = subprocess.run([analyze, "verify", unit], env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=30)
            lines = (r.stderr + r.stdout).splitlines()
            ours = [l for l in lines if "ringcast.service" in l]
            if ours:
                self.fail("systemd-analyze verify complained about the unit (rc=%d):\n%s"
                          "\n--- full output ---\n%s"
                          % (r.returncode, "\n".join(ours), "\n".join(lines)))


class NotifyTest(unittest.TestCase):
    def run_notify_protocol(self, abstract):
        require_binary(self)
        tmpdir = tempfile.mkdtemp(prefix="rc-notify-")
        self.addCleanup(shutil.rmtree, tmpdir, True)
        listener = NotifyListener(abstract, tmpdir)
        self.addCleanup(listener.close)

        port, http_port = free_ports(2)
        env = clean_env()
        env["NOTIFY_SOCKET"] = listener.env_value
        env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
        args = ["--threads", "2", "--host", "127.0.0.1", "--port", str(port),
                "--http-port", str(http_port)]
        server = ServerProcess(args, env, tmpdir)
        self.addCleanup(server.kill)

        def check(cond, what):
            if not cond:
                msgs = listener.messages
                shown = repr(msgs) if len(msgs) <= 20 else "%d, last 20: %r" % (len(msgs), msgs[-20:])
                self.fail("%s\nNOTIFY_SOCKET=%s, args=%s\ndatagrams received: %s\n%s"
                          % (what, listener.env_value, " ".join(args), shown, server.output()))

        ready = listener.wait_for("READY=1", READY_TIMEOUT)
        check(ready is not None,
              "no READY=1 within %.0f s (exit code %r)" % (READY_TIMEOUT, server.proc.poll()))
        check(server.proc.poll() is None, "server exited after READY=1")

        # WATCHDOG_USEC=400000 -> a ping every 200 ms; demand two to see it is periodic.
        t0 = time.monotonic()
        wd1 = listener.wait_for("WATCHDOG=1", WATCHDOG_TIMEOUT, ready)
        check(wd1 is not None, "no WATCHDOG=1 within %.1f s of READY=1 (WATCHDOG_USEC=%d)"
              % (WATCHDOG_TIMEOUT, WATCHDOG_USEC))
        wd2 = listener.wait_for("WATCHDOG=1", max(0.0, WATCHDOG_TIMEOUT - (time.monotonic() - t0)),
                                wd1 + 1)
        # Reported after the stop checks so one run shows every problem.
        deferred = None
        if wd2 is None:
            deferred = ("only one WATCHDOG=1 within %.1f s of READY=1 (WATCHDOG_USEC=%d: the "
                        "contract wants one every %d ms while the workers are alive, idle or not)"
                        % (WATCHDOG_TIMEOUT, WATCHDOG_USEC, WATCHDOG_USEC // 2000))
        check(server.proc.poll() is None, "server exited while sending watchdog pings")

        stop_index = len(listener.messages)
        server.proc.send_signal(signal.SIGTERM)
        stopping = listener.wait_for("STOPPING=1", STOPPING_TIMEOUT, stop_index)
        check(stopping is not None, "no STOPPING=1 within %.0f s of SIGTERM" % STOPPING_TIMEOUT)
        try:
            rc = server.proc.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc is not None, "server still running %.0f s after SIGTERM" % EXIT_TIMEOUT)
        check(rc == 0, "server exited with %r after SIGTERM, expected 0" % rc)
        check(deferred is None, "%s\n(STOPPING=1 and exit 0 after SIGTERM were fine)" % deferred)

    def test_notify_path_socket(self):
        self.run_notify_protocol(abstract=False)

    def test_notify_abstract_socket(self):
        self.run_notify_protocol(abstract=True)


def contract_defaults():
    """The TOML block of the 'Config file' section of docs/engine-contract.md, parsed."""
    path = os.path.join(SOURCE_DIR, "docs", "engine-contract.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"```toml\n(.*?)```", text, re.S)
    if m is None:
        raise AssertionError("no ```toml block in %s" % path)
    return tomllib.loads(m.group(1))


class ExampleConfigTest(unittest.TestCase):
    def example_path(self):
        return os.path.join(SOURCE_DIR, "systemd", "ringcast.toml")

    def test_example_matches_contract_defaults(self):
        with open(self.example_path(), "rb") as f:
            example = tomllib.load(f)
        expected = contract_defaults()
        problems = []
        for section in sorted(set(expected) | set(example)):
            want, got = expected.get(section), example.get(section)
            if not isinstance(want, dict) or not isinstance(got, dict):
                if want != got:
                    problems.append("[%s]: contract %r, example %r" % (section, want, got))
                continue
            for key in sorted(set(want) | set(got)):
                if key not in got:
                    problems.append("%s.%s missing (contract default %r)" % (section, key, want[key]))
                elif key not in want:
                    problems.append("%s.%s is not in the contract" % (section, key))
                elif want[key] != got[key] or type(want[key]) is not type(got[key]):
                    problems.append("%s.%s = %r, contract default %r"
                                    % (section, key, got[key], want[key]))
        if problems:
            self.fail("systemd/ringcast.toml must list every contract key with its default:\n"
                      + "\n".join(problems))

    def test_check_config_accepts_example(self):
        require_binary(self)
        with tempfile.TemporaryDirectory(prefix="rc-check-") as d:
            r = subprocess.run([BINARY, "--check-config", "--config", self.example_path()],
                               env=clean_env(), cwd=d, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=15)
        out = "--- stdout ---\n%s--- stderr ---\n%s---" % (r.stdout, r.stderr)
        self.assertEqual(r.returncode, 0, "--check-config rejected the example config\n" + out)
        self.assertIn("config ok", r.stdout + r.stderr, "--check-config did not print 'config ok'\n"
                      + out)


def main():
    global BINARY, SOURCE_DIR
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--binary")
    parser.add_argument("--source-dir",
                        default=os.path.dirname(os.path.dirname(os.path.dirname(
                            os.path.abspath(__file__)))))
    opts, rest = parser.parse_known_args()
    BINARY = os.path.abspath(opts.binary) if opts.binary else None
    SOURCE_DIR = os.path.abspath(opts.source_dir)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
