#!/usr/bin/env bash
# The HTTP benchmark of bench/http.sh with wrk (Debian's package, C, epoll) as the load generator
# instead of api/examples/loadgen.rs, to check that loadgen's figures are not an artefact of our own
# client (measured here, wrk costs about as much CPU per request: 13-22 us against 15-26). Same server, same
# 10-Pass state machine, same AWS JSON protocol requests; for STANDARD, it then waits until every
# execution has finished and checks from /metrics that every accepted start SUCCEEDED.
#
#   bench/wrk.sh                       # 3 runs x 2 modes, 10 s each, 64 connections, medians
#   RUNS=5 DURATION=20 bench/wrk.sh
#
# Knobs (environment): RUNS (3), DURATION seconds (10), WARMUP seconds (1), CONCURRENCY (64),
# THREADS (wrk threads, 1), MODES ("sync-express start-standard"), SERVER_RUST_LOG (as in http.sh),
# SKIP_BUILD=1 to use what is built.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/server.sh
THREADS=${THREADS:-1}

if ! command -v wrk >/dev/null; then
  echo "==> installing wrk (Debian's package)" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q wrk >&2
fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "==> cargo build --release -p stepyard-api --bin stepyard" >&2
  cargo build --release -p stepyard-api --bin stepyard >&2
fi
SERVER="$TARGET_DIR/release/stepyard"

WORK=$(mktemp -d -t stepyard-wrk-XXXXXX)
trap 'stop_server; rm -rf "$WORK"' EXIT

# The helper: creates the state machine, and after a STANDARD run waits for and checks its executions.
cat >"$WORK/helper.py" <<'PY'
import json, sys, time, urllib.request

def call(url, target, body):
    req = urllib.request.Request(url + "/", data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AWSStepFunctions." + target})
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)

def counter(url, name, machine, status=None):
    text = urllib.request.urlopen(url + "/metrics").read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and f'state_machine="{machine}"' in line and (
                status is None or f'status="{status}"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)

cmd, url = sys.argv[1], sys.argv[2]
if cmd == "create":
    kind = sys.argv[3]
    states = {}
    for i in range(10):
        s = {"Type": "Pass", "Result": {"step": i}, "ResultPath": f"$.p{i}"}
        if i < 9: s["Next"] = f"P{i + 1}"
        else: s["End"] = True
        states[f"P{i}"] = s
    definition = {"Comment": "wrk: 10 Pass states", "StartAt": "P0", "States": states}
    out = call(url, "CreateStateMachine", {"name": "wrk-" + kind.lower(), "type": kind,
        "definition": json.dumps(definition), "roleArn": "arn:aws:iam::123456789012:role/wrk"})
    print(out["stateMachineArn"])
elif cmd == "check":
    machine, accepted, last_start = sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    while True:
        started = counter(url, "stepyard_executions_started_total", machine)
        finished = counter(url, "stepyard_executions_finished_total", machine)
        if finished >= started:
            break
        time.sleep(0.05)
    succeeded = counter(url, "stepyard_executions_finished_total", machine, "SUCCEEDED")
    print(json.dumps({"started": started, "succeeded": succeeded, "accepted": accepted,
        "drain_seconds": round(time.time() - last_start, 2)}))
PY

# Per run: wrk's summary, the CPU counters and the STANDARD check, as one JSON line.
cat >"$WORK/run.py" <<'PY'
import json, sys
kv = dict(x.split("=") for x in sys.stdin.read().split())
tck, s0, s1 = (float(x) for x in sys.argv[2:5])
warm = dict(x.split("=") for x in open(sys.argv[5]).read().split("WRK_RESULT ")[-1].split())
client = sum(float(x) for f in sys.argv[6:8] for x in open(f).read().split())
check = json.loads(sys.argv[8])
requests = int(kv["requests"]) + int(warm["requests"])
r = {"mode": sys.argv[1], "rps": int(kv["requests"]) / (int(kv["duration_us"]) / 1e6),
     "p50_ms": int(kv["p50_us"]) / 1e3, "p90_ms": int(kv["p90_us"]) / 1e3, "p99_ms": int(kv["p99_us"]) / 1e3,
     "errors": int(kv["errors"]) + int(warm["errors"]),
     "server_cpu_us_per_request": (s1 - s0) / tck * 1e6 / requests,
     "client_cpu_us_per_request": client * 1e6 / requests, **check}
print(f"  {r['rps']:.0f} req/s  p50 {r['p50_ms']:.2f} ms  p90 {r['p90_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  errors {r['errors']}", file=sys.stderr)
print(f"  CPU per request: server {r['server_cpu_us_per_request']:.0f} us, wrk {r['client_cpu_us_per_request']:.0f} us", file=sys.stderr)
if check:
    print(f"  STANDARD: {check['accepted']} accepted, {check['started']} started, {check['succeeded']} SUCCEEDED, drain {check['drain_seconds']} s", file=sys.stderr)
print(json.dumps(r))
PY

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
print_header "$(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
for run in $(seq 1 "$RUNS"); do
  for mode in $MODES; do
    start_server "$mode-$run"
    if [ "$mode" = sync-express ]; then kind=EXPRESS; op=StartSyncExecution; else kind=STANDARD; op=StartExecution; fi
    arn=$(python3 "$WORK/helper.py" create "$URL" "$kind")
    export WRK_TARGET="AWSStepFunctions.$op" WRK_BODY="{\"stateMachineArn\":\"$arn\",\"input\":\"{\\\"n\\\":1}\"}"
    server_cpu0=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
    TIMEFORMAT="%U %S"
    { time wrk -t"$THREADS" -c"$CONCURRENCY" -d"${WARMUP}s" -s bench/wrk.lua "$URL/" >"$WORK/warm" 2>&1; } 2>"$WORK/time0"
    { time wrk -t"$THREADS" -c"$CONCURRENCY" -d"${DURATION}s" --timeout 10s -s bench/wrk.lua "$URL/" >"$WORK/out" 2>&1; } 2>"$WORK/time1"
    last_start=$(date +%s.%N)
    check="{}"
    if [ "$kind" = STANDARD ]; then
      accepted=$(sed -n 's/^WRK_RESULT requests=\([0-9]*\).*errors=\([0-9]*\).*/\1 \2/p' "$WORK/warm" "$WORK/out" | awk '{a += $1 - $2} END {print a}')
      check=$(python3 "$WORK/helper.py" check "$URL" "wrk-standard" "$accepted" "$last_start")
    fi
    server_cpu1=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
    stop_server
    echo "run $run $mode (load $(cut -d' ' -f1 /proc/loadavg)):"
    sed -n 's/^WRK_RESULT //p' "$WORK/out" | python3 "$WORK/run.py" "$mode" "$(getconf CLK_TCK)" "$server_cpu0" "$server_cpu1" "$WORK/warm" "$WORK/time0" "$WORK/time1" "$check" >>"$RESULTS"
  done
done

python3 - "$RESULTS" "$RUNS" "$CONCURRENCY" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print(f"\nmedians over {sys.argv[2]} runs:")
for mode in dict.fromkeys(r["mode"] for r in rows):
    rs = [r for r in rows if r["mode"] == mode]
    med = lambda key: statistics.median(r[key] for r in rs)
    line = (f"  {mode:15} {med('rps'):8.0f} req/s   p50 {med('p50_ms'):.2f} ms   p90 {med('p90_ms'):.2f} ms"
            f"   p99 {med('p99_ms'):.2f} ms   errors {sum(r['errors'] for r in rs)}"
            f"\n  {'':15} CPU per request: server {med('server_cpu_us_per_request'):.0f} us, wrk {med('client_cpu_us_per_request'):.0f} us")
    if mode == "start-standard":
        # wrk drops the requests in flight when its time is up: the server may have started up to
        # one per connection and run more than wrk counted as accepted.
        ok = all(r["succeeded"] == r["started"] and r["accepted"] <= r["started"] <= r["accepted"] + 2 * int(sys.argv[3])
                 for r in rs)
        line += f"\n  {'':15} every accepted start SUCCEEDED: {ok}; drain after the last start {med('drain_seconds'):.2f} s"
    print(line)
PY
