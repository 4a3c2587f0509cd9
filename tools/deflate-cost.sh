#!/usr/bin/env bash
# What permessage-deflate costs and saves on a broadcast: the live-map flow of ringcast-load
# (position_update fan-out on /map) with S subscribers, once without and once with --deflate,
# against one ringcast whose [compression] is enabled (so only the negotiation differs). Prints a
# Markdown table: deliveries, server CPU per delivery (from /proc/PID/stat), bytes on the wire per
# delivery, delivery latency.
#
#   tools/deflate-cost.sh                                   # 1000 subscribers, 100 publishes/s, 10 s
#   tools/deflate-cost.sh --subs 1000 --rate 100 --size 256 --duration 10 --backend epoll
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${RINGCAST_BUILD_DIR:-$ROOT/build}"
SUBS=1000
RATE=100
SIZE=256
DURATION=10
BACKEND=auto
PORT=18790
while [ $# -gt 0 ]; do
  case "$1" in
    --subs) SUBS="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --size) SIZE="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --backend) BACKEND="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
printf '[compression]\nenabled = true\n[profiles.livemap]\npersistent = false\n' > "$work/r.toml"
"$BUILD/ringcast" --config "$work/r.toml" --host 127.0.0.1 --port "$PORT" --http-port 0 \
  --threads 2 --backend "$BACKEND" --data-dir "$work/data" > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
hz=$(getconf CLK_TCK)

echo "| permessage-deflate | deliveries | server CPU per delivery | wire bytes per delivery | p50 | p99 |"
echo "| --- | --- | --- | --- | --- | --- |"
for mode in off on; do
  flag=()
  [ "$mode" = on ] && flag=(--deflate)
  before=$(ticks)
  "$BUILD/tools/ringcast-load" broadcast --flow livemap "${flag[@]}" --subscribers "$SUBS" \
    --rate "$RATE" --size "$SIZE" --duration "$DURATION" --quiet --json "$work/$mode.json" \
    "ws://127.0.0.1:$PORT/map" > "$work/$mode.txt"
  after=$(ticks)
  /usr/bin/python3 - "$work/$mode.json" "$mode" "$before" "$after" "$hz" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
mode, before, after, hz = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
m = r["metrics"]
d = m["deliveries"]
cpu_us = (after - before) * 1e6 / hz
dl = r["latency_us"]["delivery"]
if not r["passed"]:
    sys.exit("run %s failed: %s" % (mode, r["failures"]))
print("| %s | %d | %.2f µs | %.0f B | %.0f µs | %.0f µs |" % (
    mode, d, cpu_us / d, m["bytes_received"] / d, dl["p50"], dl["p99"]))
EOF
done
