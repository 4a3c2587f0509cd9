#!/usr/bin/env bash
# Cross-node broadcast next to a single node, in one session: starts a private redis-server (its
# own free port and directory), then for each room kind runs ringcast-load's broadcast scenario
#   single: one node with --threads 2, every subscriber and the publisher on it;
#   cluster: two nodes with --threads 1 each (the same two worker threads in all), subscribers
#            spread over both, the publisher on the second: half the deliveries cross nodes,
# and prints one Markdown table (delivery latency overall, same node, other node; throughput).
# Then relay round trips (ringcast-load relay on /raw): pairs A and B on one node, against A and B
# of every pair on different nodes, so each round trip crosses nodes twice.
#
#   tools/cluster-latency.sh                                  # 1000 subscribers, 100 msg/s, 10 s
#   tools/cluster-latency.sh --subs 1000 --rate 100 --duration 10 --size 64 --backend io_uring
#   tools/cluster-latency.sh --pairs 50 --relay-rate 5000      # relay: 50 pairs, 5,000 round trips/s
#
# Room kinds: raw (/raw/bench: direct fan-out through Redis pub/sub) and native (/ws, room bench:
# sequenced, one Redis script per message). Needs redis-server (tools/dev.sh installs it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${RINGCAST_BUILD_DIR:-$ROOT/build}"
SERVER_BIN="$BUILD/ringcast"
LOAD_BIN="$BUILD/tools/ringcast-load"
SUBS=1000
RATE=100
SIZE=64
DURATION=10
BACKEND=io_uring
PAIRS=50
RELAY_RATE=5000
while [ $# -gt 0 ]; do
  case "$1" in
    --subs) SUBS="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --size) SIZE="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --backend) BACKEND="$2"; shift 2 ;;
    --pairs) PAIRS="$2"; shift 2 ;;
    --relay-rate) RELAY_RATE="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
for b in "$SERVER_BIN" "$LOAD_BIN"; do
  [ -x "$b" ] || { echo "missing $b (build first)" >&2; exit 1; }
done
command -v redis-server >/dev/null || { echo "redis-server not installed (tools/dev.sh deps)" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 1 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" --save "" --appendonly no \
  --daemonize no --logfile "$WORK/redis.log" &
PIDS+=($!)
wait_port "$REDIS_PORT"

start_node() {  # threads port [cluster]
  local conf="$WORK/node-$2.toml"
  : > "$conf"
  if [ "${3:-}" = cluster ]; then
    printf '[cluster]\nredis = "redis://127.0.0.1:%s/0"\nnode_id = "bench-%s"\n' "$REDIS_PORT" "$2" > "$conf"
  fi
  "$SERVER_BIN" --config "$conf" --threads "$1" --backend "$BACKEND" --host 127.0.0.1 --port "$2" \
    --http-port 0 --data-dir "$WORK/data-$2" --log-level error &
  PIDS+=($!)
  wait_port "$2"
}
stop_nodes() {
  for p in "${PIDS[@]:1}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:1}"; do wait "$p" 2>/dev/null || true; done
  PIDS=("${PIDS[0]}")
}

run_load() {  # name urls...
  local name="$1"
  shift
  "$LOAD_BIN" broadcast --subscribers "$SUBS" --publishers 1 --rate "$RATE" --size "$SIZE" \
    --duration "$DURATION" --json "$WORK/$name.json" "$@" > "$WORK/$name.txt" 2>&1 || true
}

for kind in raw native; do
  path=/raw/bench
  extra=()
  if [ "$kind" = native ]; then
    path=/ws
    extra=(--flow native --room bench)
  fi
  p=$(free_port)
  start_node 2 "$p"
  run_load "$kind-single" "${extra[@]}" "ws://127.0.0.1:$p$path"
  stop_nodes
  p1=$(free_port)
  p2=$(free_port)
  start_node 1 "$p1" cluster
  start_node 1 "$p2" cluster
  sleep 1  # both nodes in the node set
  run_load "$kind-cluster" "${extra[@]}" "ws://127.0.0.1:$p1$path" "ws://127.0.0.1:$p2$path"
  stop_nodes
done

for setup in single cluster; do
  if [ "$setup" = single ]; then
    p=$(free_port)
    start_node 2 "$p"
    urls=("ws://127.0.0.1:$p/raw")
  else
    p1=$(free_port)
    p2=$(free_port)
    start_node 1 "$p1" cluster
    start_node 1 "$p2" cluster
    sleep 1
    urls=("ws://127.0.0.1:$p1/raw" "ws://127.0.0.1:$p2/raw")
  fi
  "$LOAD_BIN" relay --pairs "$PAIRS" --rate "$RELAY_RATE" --size "$SIZE" --duration "$DURATION" \
    --json "$WORK/relay-$setup.json" "${urls[@]}" > "$WORK/relay-$setup.txt" 2>&1 || true
  stop_nodes
done

python3 - "$WORK" "$SUBS" "$RATE" "$SIZE" "$DURATION" "$BACKEND" "$PAIRS" "$RELAY_RATE" <<'PY'
import json, os, sys
work, subs, rate, size, duration, backend, pairs, relay_rate = sys.argv[1:]
print("broadcast, %s subscribers, 1 publisher at %s msg/s, %s-byte messages, %s s, backend %s"
      % (subs, rate, size, duration, backend))
print()
print("| room | setup | deliveries/s | p50 µs | p99 µs | same node p50 / p99 | other node p50 / p99 | loss | result |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for kind in ("raw", "native"):
    for setup in ("single", "cluster"):
        path = os.path.join(work, "%s-%s.json" % (kind, setup))
        if not os.path.exists(path):
            txt = open(os.path.join(work, "%s-%s.txt" % (kind, setup))).read()
            print("| %s | %s | run failed: %s |" % (kind, setup, txt.strip().splitlines()[-1:]))
            continue
        d = json.load(open(path))
        lats = d.get("latency_us", {})
        def pp(k):
            h = lats.get(k)
            return "{:,.0f} / {:,.0f}".format(h["p50"], h["p99"]) if h and h.get("count") else "-"
        tot = lats.get("delivery", {})
        m = d.get("metrics", {})
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            kind, "2 nodes x 1 thread" if setup == "cluster" else "1 node x 2 threads",
            "{:,.0f}".format(m.get("delivery_rate_per_s", 0)),
            "{:,.0f}".format(tot.get("p50", 0)), "{:,.0f}".format(tot.get("p99", 0)),
            pp("delivery_same_node") if setup == "cluster" else "-",
            pp("delivery_cross_node") if setup == "cluster" else "-",
            d.get("loss", "-"), "PASS" if d.get("passed") else "FAIL: " + "; ".join(d.get("failures", []))))
print()
print("relay, %s pairs (A and B in /raw/pair-<i>), %s round trips/s in all, %s-byte messages, %s s"
      % (pairs, relay_rate, size, duration))
print()
print("| setup | round trips/s | p50 µs | p99 µs | loss | result |")
print("| --- | --- | --- | --- | --- | --- |")
for setup in ("single", "cluster"):
    path = os.path.join(work, "relay-%s.json" % setup)
    if not os.path.exists(path):
        txt = open(os.path.join(work, "relay-%s.txt" % setup)).read()
        print("| %s | run failed: %s |" % (setup, txt.strip().splitlines()[-1:]))
        continue
    d = json.load(open(path))
    rt = d.get("latency_us", {}).get("round_trip", {})
    m = d.get("metrics", {})
    print("| %s | %s | %s | %s | %s | %s |" % (
        "A and B on different nodes (2 x 1 thread)" if setup == "cluster" else "1 node x 2 threads",
        "{:,.0f}".format(m.get("throughput_msg_per_s", 0)),
        "{:,.0f}".format(rt.get("p50", 0)), "{:,.0f}".format(rt.get("p99", 0)),
        d.get("loss", "-"), "PASS" if d.get("passed") else "FAIL: " + "; ".join(d.get("failures", []))))
PY
