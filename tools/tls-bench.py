#!/usr/bin/python3
"""What TLS costs: the same ringcast-load runs against a plaintext server and a TLS server
(user-space TLS where the kernel has no `tls` module, kernel TLS where it has) started side by
side with the same settings, alternating so both see the same machine load.

  tools/tls-bench.py --build build --duration 5 --subscribers 1000 --rate 1000

Certificates come from a throwaway CA made with the openssl CLI (as tests/integration/test_tls.py
does); the load tool verifies the server with it (--tls-ca).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
import test_tls  # noqa: E402


def load(build, args, url, ca):
    cmd = [os.path.join(build, "tools", "ringcast-load")] + args + ["--quiet"]
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    if url.startswith("wss://"):
        cmd += ["--tls-ca", ca]
    subprocess.run(cmd + ["--json", path, url], check=True, stdout=subprocess.DEVNULL)
    with open(path) as f:
        r = json.load(f)
    os.unlink(path)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--backend", default="io_uring")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--duration", default="5")
    ap.add_argument("--connections", default="50")
    ap.add_argument("--subscribers", default="1000")
    ap.add_argument("--rate", default="1000")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", choices=["echo", "broadcast"])
    a = ap.parse_args()
    harness.BINARY = os.path.abspath(os.path.join(a.build, "ringcast"))
    harness.BACKEND = a.backend
    pki = test_tls.Pki()
    pki.install("srv1", pki.path("live.pem"), pki.path("live.key"))
    plain = harness.Server(threads=a.threads, config_text="[limits]\nmax_connections_per_ip = 0\n")
    # Default limits (the tests' tls_config shortens handshake_timeout_ms).
    tls = harness.Server(threads=a.threads, config_text="[tls]\ncert = %s\nkey = %s\n" % (
        json.dumps(pki.path("live.pem")), json.dumps(pki.path("live.key"))))
    try:
        plain.start()
        tls.start()
        runs = [
            ("echo", ["echo", "--connections", a.connections, "--duration", a.duration], "/echo"),
            ("broadcast", ["broadcast", "--subscribers", a.subscribers, "--rate", a.rate,
                           "--duration", a.duration], "/raw/bench"),
        ]
        print("backend %s, server threads %d, %d rounds each, alternating"
              % (a.backend, a.threads, a.rounds))
        print("%-10s %-10s %16s %10s %10s %10s" % ("scenario", "transport", "msgs|deliveries/s",
                                                    "p50 us", "p99 us", "wire MiB"))
        for name, args, path in runs:
            if a.only and name != a.only:
                continue
            for rnd in range(a.rounds):
                for label, srv, scheme in (("plain", plain, "ws"), ("tls", tls, "wss")):
                    url = "%s://localhost:%d%s" % (scheme, srv.port, path)
                    r = load(a.build, args, url, pki.ca)
                    m = r["metrics"]
                    lat = next(iter(r["latency_us"].values()))  # round trip / delivery
                    rate = m.get("throughput_msg_per_s", m.get("delivery_rate_per_s", 0))
                    print("%-10s %-10s %16.0f %10.1f %10.1f %10.1f"
                          % (name, label, rate, lat["p50"], lat["p99"],
                             (m.get("bytes_sent", 0) + m.get("bytes_received", 0)) / 2**20),
                          flush=True)
        print("tls sessions:", tls.health()["tls"])
    finally:
        for s in (plain, tls):
            s.stop()
            s.cleanup()
        pki.cleanup()


if __name__ == "__main__":
    main()
