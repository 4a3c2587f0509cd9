#!/usr/bin/python3
"""What the durable store costs: persistent vs in-memory rooms, side by side in one server run.

Starts ringcast (or uses --url), puts S subscribers in a persistent room and S in an in-memory
room, and runs the same publish load on both at once through the native protocol: a fixed rate
(latency, measured from the intended send time) and then a closed loop (publishes/s, each publisher
keeping --inflight acks outstanding). Prints a table with the ratios.

  tools/store-latency.py --build build --rate 500 --duration 5
Needs Debian's python3-websockets (/usr/bin/python3).
"""
import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import websockets


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100.0 * len(values)))]


async def fixed_rate(url, room, subs, rate, duration, out):
    subscribers = []
    for _ in range(subs):
        ws = await websockets.connect(url, max_queue=None)
        await ws.send(json.dumps({"op": "join", "room": room}))
        json.loads(await ws.recv())
        subscribers.append(ws)
    pub = await websockets.connect(url)
    await pub.send(json.dumps({"op": "join", "room": room}))
    await pub.recv()
    lat = []
    total = int(rate * duration)

    async def reader(ws):
        got = 0
        deadline = time.monotonic() + duration + 10
        while got < total and time.monotonic() < deadline:
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), 5))
            except asyncio.TimeoutError:
                break
            if m.get("type") == "message":
                lat.append((time.monotonic() - m["data"]["t"]) * 1e6)
                got += 1
        return got

    readers = [asyncio.create_task(reader(ws)) for ws in subscribers]
    start = time.monotonic()
    for i in range(total):
        intended = start + i / rate
        delay = intended - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        # The timestamp is the intended send time, so a stall cannot hide behind it.
        await pub.send(json.dumps({"op": "publish", "room": room, "echo": False,
                                   "data": {"t": intended, "i": i}}))
    got = await asyncio.gather(*readers)
    out["deliveries"] = sum(got)
    out["expected"] = total * subs
    out["p50"], out["p99"], out["max"] = pct(lat, 50), pct(lat, 99), max(lat) if lat else 0
    for ws in subscribers + [pub]:
        await ws.close()


async def closed_loop(url, room, pubs, inflight, duration, out):
    count = 0

    async def publisher():
        nonlocal count
        ws = await websockets.connect(url)
        await ws.send(json.dumps({"op": "join", "room": room}))
        await ws.recv()
        end = time.monotonic() + duration
        outstanding = 0
        i = 0
        while time.monotonic() < end or outstanding:
            while outstanding < inflight and time.monotonic() < end:
                await ws.send(json.dumps({"op": "publish", "room": room, "echo": False, "id": i,
                                          "data": {"i": i}}))
                i += 1
                outstanding += 1
            m = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if m.get("type") == "ack":
                outstanding -= 1
                count += 1
            elif m.get("type") == "error":
                raise RuntimeError(m)
        await ws.close()

    t0 = time.monotonic()
    await asyncio.gather(*[publisher() for _ in range(pubs)])
    out["acked"] = count
    out["rate"] = count / (time.monotonic() - t0)


async def main(args, url):
    rows = {}
    for phase in ("latency", "throughput"):
        results = {"persistent": {}, "memory": {}}
        if phase == "latency":
            await asyncio.gather(
                fixed_rate(url, "keep-bench", args.subscribers, args.rate, args.duration, results["persistent"]),
                fixed_rate(url, "mem-bench", args.subscribers, args.rate, args.duration, results["memory"]))
        else:
            await asyncio.gather(
                closed_loop(url, "keep-bench", args.publishers, args.inflight, args.duration, results["persistent"]),
                closed_loop(url, "mem-bench", args.publishers, args.inflight, args.duration, results["memory"]))
        rows[phase] = results
    p, m = rows["latency"]["persistent"], rows["latency"]["memory"]
    tp, tm = rows["throughput"]["persistent"], rows["throughput"]["memory"]
    print("| room | deliveries | p50 µs | p99 µs | max µs | acked publishes/s (closed loop) |")
    print("|---|---|---|---|---|---|")
    for name, r, t in (("persistent (strict)", p, tp), ("in-memory", m, tm)):
        print("| %s | %d/%d | %.0f | %.0f | %.0f | %.0f |" % (name, r["deliveries"], r["expected"], r["p50"],
                                                          r["p99"], r["max"], t["rate"]))
    print("\nadded latency p50 %+.0f µs, p99 %+.0f µs; throughput ratio persistent/in-memory %.2f"
          % (p["p50"] - m["p50"], p["p99"] - m["p99"], tp["rate"] / max(tm["rate"], 1e-9)))
    ok = p["deliveries"] == p["expected"] and m["deliveries"] == m["expected"]
    return 0 if ok else 1


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--url", help="an already running server's /ws URL (its config must make keep-* persistent)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--subscribers", type=int, default=10)
    ap.add_argument("--publishers", type=int, default=4)
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--duration", type=float, default=5)
    args = ap.parse_args()
    proc = None
    data = None
    url = args.url
    if not url:
        data = tempfile.mkdtemp(prefix="ringcast-store-bench-")
        conf = os.path.join(data, "bench.toml")
        with open(conf, "w") as f:
            f.write('[server]\ndata_dir = "%s"\n[store]\npersistent_rooms = ["keep-*"]\n' % data)
        port = free_port()
        proc = subprocess.Popen([os.path.join(args.build, "ringcast"), "--config", conf, "--threads",
                                 str(args.threads), "--host", "127.0.0.1", "--port", str(port),
                                 "--http-port", "0", "--log-level", "warn"])
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        url = "ws://127.0.0.1:%d/ws" % port
    try:
        rc = asyncio.run(main(args, url))
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
        if data:
            shutil.rmtree(data, ignore_errors=True)
    sys.exit(rc)
