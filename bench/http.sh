#!/usr/bin/env bash
# HTTP benchmark of the api crate on loopback: builds release, then for each run and each mode starts a
# fresh `stepyard serve` on a temporary data folder, drives it with api/examples/loadgen.rs, stops it,
# and prints every run and the medians.
#
#   bench/http.sh                      # 3 runs x 2 modes, 10 s each, concurrency 64
#   RUNS=5 DURATION=20 bench/http.sh
#
# Knobs (environment): RUNS (3), DURATION seconds (10), WARMUP seconds (1), CONCURRENCY (64),
# CONCURRENCY_SYNC / CONCURRENCY_STANDARD (default CONCURRENCY), MODES ("sync-express start-standard"),
# CLIENT (raw | reqwest; raw), SERVER_RUST_LOG (the server's RUST_LOG; default unset = the server's
# default, info, one log line per request, written to a file), SKIP_BUILD=1 to use what is built.
# The server gets no flags beyond --listen/--data-dir: what a user gets by default.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/server.sh
CONCURRENCY_SYNC=${CONCURRENCY_SYNC:-$CONCURRENCY}
CONCURRENCY_STANDARD=${CONCURRENCY_STANDARD:-$CONCURRENCY}
CLIENT=${CLIENT:-raw}

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "==> cargo build --release -p stepyard-api --bin stepyard --example loadgen" >&2
  cargo build --release -p stepyard-api --bin stepyard --example loadgen >&2
fi
SERVER="$TARGET_DIR/release/stepyard"
LOADGEN="$TARGET_DIR/release/examples/loadgen"

WORK=$(mktemp -d -t stepyard-bench-XXXXXX)
trap 'stop_server; rm -rf "$WORK"' EXIT

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
print_header
for run in $(seq 1 "$RUNS"); do
  for mode in $MODES; do
    if [ "$mode" = sync-express ]; then conc=$CONCURRENCY_SYNC; else conc=$CONCURRENCY_STANDARD; fi
    start_server "$mode-$run"
    # CPU seconds of the server (utime + stime from /proc) and of the load generator (bash's `time`)
    # over the whole loadgen run (warm-up and drain included): CPU per request does not depend on
    # what else the machine runs, requests/s does.
    server_cpu0=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
    TIMEFORMAT="%U %S"
    { time "$LOADGEN" --url "$URL" --mode "$mode" --concurrency "$conc" --duration "$DURATION" \
      --warmup "$WARMUP" --client "$CLIENT" >"$WORK/out" 2>"$WORK/err"; } 2>"$WORK/time" \
      || { echo "loadgen failed:"; cat "$WORK/out" "$WORK/err"; }
    server_cpu1=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
    stop_server
    out=$(cat "$WORK/out")
    echo "run $run $mode (load $(cut -d' ' -f1 /proc/loadavg)):"
    echo "$out" | grep -v '^RESULT ' | sed 's/^/  /'
    echo "$out" | sed -n 's/^RESULT //p' | python3 -c '
import json, sys
r = json.load(sys.stdin)
tck, s0, s1 = (float(x) for x in sys.argv[1:4])
client = sum(float(x) for x in open(sys.argv[4]).read().split())
requests = r["ok"] + r["errors"] + r.get("warmup_requests", 0)
r["server_cpu_us_per_request"] = (s1 - s0) / tck * 1e6 / max(requests, 1)
r["client_cpu_us_per_request"] = client * 1e6 / max(requests, 1)
sv, cl = r["server_cpu_us_per_request"], r["client_cpu_us_per_request"]
print(f"  CPU per request: server {sv:.0f} us, load generator {cl:.0f} us", file=sys.stderr)
print(json.dumps(r))
' "$(getconf CLK_TCK)" "$server_cpu0" "$server_cpu1" "$WORK/time" >>"$RESULTS"
  done
done

python3 - "$RESULTS" "$RUNS" <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print(f"\nmedians over {sys.argv[2]} runs:")
for mode in dict.fromkeys(r["mode"] for r in rows):
    rs = [r for r in rows if r["mode"] == mode]
    med = lambda key: statistics.median(r[key] for r in rs if r.get(key) is not None)
    line = (f"  {mode:15} {med('rps'):8.0f} req/s   p50 {med('p50_ms'):.2f} ms   p90 {med('p90_ms'):.2f} ms"
            f"   p99 {med('p99_ms'):.2f} ms   errors {sum(r['errors'] for r in rs)}   (concurrency {rs[0]['concurrency']})"
            f"\n  {'':15} CPU per request: server {med('server_cpu_us_per_request'):.0f} us, load generator {med('client_cpu_us_per_request'):.0f} us")
    if mode == "start-standard":
        line += (f"\n  {'':15} all SUCCEEDED: {all(r.get('succeeded') == r.get('expected') for r in rs)};"
                 f" drain after the last start {med('drain_seconds'):.2f} s; {med('completed_per_s'):.0f} completed/s from the first start to the last completion")
    print(line)
EOF
