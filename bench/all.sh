#!/usr/bin/env bash
# Every benchmark behind BENCHMARKS.md, one after the other, in release mode. Each prints its own
# results (JSON lines or tables); compare them with BENCHMARKS.md, which records the machine, date
# and median of several runs. Takes about 15 minutes on two cores; no network.
#
#   bench/all.sh            # everything
#   ONLY="engine bus" bench/all.sh
#
# Needs: Docker and busybox-static for `containers`, the test venv (./scripts/test makes it) for
# `functions`.
set -euo pipefail
cd "$(dirname "$0")/.."
ONLY=${ONLY:-"engine bus patterns statelang functions containers http"}
want() { [[ " $ONLY " == *" $1 "* ]]; }
say() { printf '\n==> %s\n' "$*" >&2; }

if want engine; then
  say "engine: durable STANDARD, EXPRESS, parked, recovery"
  cargo build --release -q -p stepyard-engine --example bench
  target/release/examples/bench standard 30000 256
  target/release/examples/bench standard 5000 8
  target/release/examples/bench express 300000 4
  target/release/examples/bench parked 100000 500
  target/release/examples/bench recovery 100000
fi
if want bus; then
  say "event bus: PutEvents durable, event → execution"
  cargo build --release -q -p stepyard-engine --example bus_bench
  target/release/examples/bus_bench 5000 4 100
  target/release/examples/bus_bench 20000 64 100
fi
if want patterns; then
  say "event patterns: matching with 1 to 10,000 rules, beside quamina"
  cargo run --release -q -p stepyard-engine --example pattern_bench
fi
if want statelang; then
  say "statelang: one state's data flow (criterion)"
  cargo bench -q -p stepyard-statelang --bench evaluate
fi
if want functions; then
  say "functions: warm overhead, cold start, invocations/s"
  cargo build --release -q -p stepyard-api --example functions_bench
  STEPYARD_PYTHON=${STEPYARD_PYTHON:-$PWD/.venv/bin/python} target/release/examples/functions_bench
fi
if want containers; then
  say "containers: overhead over a bare container lifecycle, concurrent jobs"
  cargo run --release -q -p stepyard-workers --example container_bench 50 8
fi
if want http; then
  say "HTTP: StartSyncExecution and StartExecution over loopback"
  bench/http.sh
fi
