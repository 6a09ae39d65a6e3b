# Sourced by bench/http.sh and bench/wrk.sh: start and stop one `stepyard serve` on a fresh data folder.
# Needs SERVER (the binary) and WORK (a scratch folder); SERVER_RUST_LOG optionally sets its RUST_LOG.
# shellcheck shell=bash

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
