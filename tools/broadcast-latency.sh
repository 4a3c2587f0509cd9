#!/usr/bin/env bash
# The broadcast-latency job: starts ringcast (or targets another server's URL), runs the broadcast
# scenario of ringcast-load at several subscriber counts, and writes a Markdown table, the JSON
# results and one SVG latency plot per run into a results folder.
#
#   tools/broadcast-latency.sh                       # ringcast, --threads 1 and 2, 100/1k/10k subs
#   tools/broadcast-latency.sh --threads "2" --subs "1000" --rate 100 --duration 10
#   tools/broadcast-latency.sh --url ws://127.0.0.1:9001/broadcast --label uws   # any other server
#
# Options: --threads "LIST" (server worker counts), --subs "LIST", --publishers N (1), --rate R
# (publishes/s, 100), --size BYTES (64), --duration SEC (10), --server-cpus LIST (taskset list for
# the server; default its first T CPUs), --client-cpus LIST (default: the CPUs the server leaves,
# or all of them when it takes every CPU),
# --url URL (skip starting ringcast), --label NAME, --out DIR (default results/broadcast-<date>).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${RINGCAST_BUILD_DIR:-$ROOT/build}"
SERVER_BIN="$BUILD/ringcast"
LOAD_BIN="$BUILD/tools/ringcast-load"
THREADS="1 2"
SUBS="100 1000 10000"
PUBLISHERS=1
RATE=100
SIZE=64
DURATION=10
URL=""
LABEL="ringcast"
NCPU=$(nproc)
SERVER_CPUS=""
CLIENT_CPUS=""
OUT="$ROOT/results/broadcast-$(date -u +%Y%m%dT%H%M%SZ)"

while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS="$2"; shift 2 ;;
    --subs) SUBS="$2"; shift 2 ;;
    --publishers) PUBLISHERS="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --size) SIZE="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --server-cpus) SERVER_CPUS="$2"; shift 2 ;;
    --client-cpus) CLIENT_CPUS="$2"; shift 2 ;;
    --url) URL="$2"; shift 2 ;;
    --label) LABEL="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n 2,15p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

# Default placement: the server on its first T CPUs, the load tool on the rest (or on all of
# them when the server takes every CPU; the table says so).
server_cpus_for() {
  if [ -n "$SERVER_CPUS" ]; then echo "$SERVER_CPUS"; return; fi
  local t=$1; [ "$t" -gt "$NCPU" ] && t=$NCPU
  echo "0-$((t - 1))"
}
client_cpus_for() {
  if [ -n "$CLIENT_CPUS" ]; then echo "$CLIENT_CPUS"; return; fi
  local t=$1; [ "$t" = "-" ] && t=0
  if [ "$t" -lt "$NCPU" ]; then echo "$t-$((NCPU - 1))"; else echo "0-$((NCPU - 1))"; fi
}
[ -x "$LOAD_BIN" ] || { echo "build first: $LOAD_BIN missing (tools/dev.sh build)" >&2; exit 1; }
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap stop_server EXIT

run_one() {  # label threads subs url
  local label="$1" threads="$2" subs="$3" url="$4"
  local name="${label}-t${threads}-s${subs}"
  # More subscribers than one source address has ports for: spread over 127.0.0.x.
  local sources=$(( subs / 20000 + 1 ))
  local ccpus; ccpus=$(client_cpus_for "$threads")
  echo "== $name: $subs subscribers, $PUBLISHERS publisher(s), $RATE msg/s, ${SIZE} B, ${DURATION}s, load on CPUs $ccpus" >&2
  echo "$ccpus" > "$OUT/$name.cpus"
  taskset -c "$ccpus" "$LOAD_BIN" broadcast --subscribers "$subs" --publishers "$PUBLISHERS" \
    --rate "$RATE" --size "$SIZE" --duration "$DURATION" --source-addrs "$sources" --quiet \
    --json "$OUT/$name.json" --plot "$OUT/$name.svg" "$url" > "$OUT/$name.txt" 2>&1 || true
  tail -n 6 "$OUT/$name.txt" >&2
}

if [ -n "$URL" ]; then
  for s in $SUBS; do run_one "$LABEL" "-" "$s" "$URL"; done
else
  for t in $THREADS; do
    for s in $SUBS; do
      port=$(free_port)
      taskset -c "$(server_cpus_for "$t")" "$SERVER_BIN" --threads "$t" --host 127.0.0.1 --port "$port" \
        --http-port 0 --log-level warn &
      SERVER_PID=$!
      for _ in $(seq 50); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
        sleep 0.1
      done
      run_one "$LABEL" "$t" "$s" "ws://127.0.0.1:$port/raw/bench"
      stop_server
    done
  done
fi

python3 - "$OUT" "$(uname -r)" "$NCPU" <<'PY'
import glob, json, os, sys
out, kernel, ncpu = sys.argv[1:]
rows = []
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    name = os.path.basename(path)[:-5]
    label, t, s = name.rsplit("-", 2)
    with open(path) as f:
        d = json.load(f)
    m, lat = d["metrics"], d["latency_us"]
    dl, last = lat["delivery"], lat["last_subscriber"]
    cpus_path = path[:-5] + ".cpus"
    cpus = open(cpus_path).read().strip() if os.path.exists(cpus_path) else "?"
    rows.append((label, t[1:], int(s[1:]), cpus, m["deliveries"] / max(m["duration_s"], 1e-9),
                 dl["p50"], dl["p99"], last["p50"], last["p99"], last["max"], d["loss"],
                 d["errors_total"], "PASS" if d["passed"] else "FAIL", name))
rows.sort(key=lambda r: (r[0], r[1], r[2]))
lines = ["# Broadcast latency", "",
         "Machine: %s CPUs, kernel %s. The server with T threads runs on CPUs 0..T-1; the load "
         "tool on the CPUs listed. Latency is publish to receipt in µs, measured from the intended "
         "send time; 'last-sub' is the last subscriber of each message." % (ncpu, kernel), "",
         "| server | threads | subscribers | load CPUs | deliveries/s | p50 | p99 | last-sub p50 | last-sub p99 | last-sub max | loss | errors | result | plot |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    lines.append("| %s | %s | %d | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %d | %d | %s | [%s.svg](%s.svg) |"
                 % (r[:13] + (r[13], r[13])))
with open(os.path.join(out, "README.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "results in $OUT" >&2
