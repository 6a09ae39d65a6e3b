# Sourced by bench/http.sh and bench/wrk.sh: their common knobs, the header they print, and starting
# and stopping one `stepyard serve` on a fresh data folder (the functions need SERVER, the binary,
# and WORK, a scratch folder; SERVER_RUST_LOG optionally sets the server's RUST_LOG).
# shellcheck shell=bash

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
CONCURRENCY=${CONCURRENCY:-64}
MODES=${MODES:-"sync-express start-standard"}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

print_header() { # $1: what to add to the commit line (the load generator)
  echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB, $(. /etc/os-release && echo "$PRETTY_NAME"); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit: ${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (+ uncommitted changes)')}${1:+; $1}"
}

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 1 300); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

start_server() { # $1: a name for its folder; sets SERVER_PID and URL
  local dir="$WORK/$1"
  mkdir -p "$dir"
  if [ -n "${SERVER_RUST_LOG:-}" ]; then
    # The listening line is logged at info: keep it whatever the level asked for.
    RUST_LOG="$SERVER_RUST_LOG,stepyard_api::server=info" "$SERVER" serve --listen 127.0.0.1:0 --data-dir "$dir/data" 2>"$dir/server.log" &
  else
    env -u RUST_LOG "$SERVER" serve --listen 127.0.0.1:0 --data-dir "$dir/data" 2>"$dir/server.log" &
  fi
  SERVER_PID=$!
  URL=""
  for _ in $(seq 1 300); do
    URL=$(grep -o 'listening on http://[0-9.:]*' "$dir/server.log" | head -1 | sed 's/listening on //') || true
    [ -n "$URL" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/server.log" >&2; echo "server exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "server did not print its listening line" >&2
  exit 1
}
