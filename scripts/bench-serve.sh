#!/usr/bin/env bash
# `wasm-host serve` measured side by side with `wasmtime serve` (the CLI of the same wasmtime, 48.0.8) and a
# native hyper server answering the same bytes (the ceiling), each pinned to core 0 with wrk pinned to core 1.
# Prints one table; BENCHMARKS.md's serve rows come from it. Needs 2 cores, wrk (installed here when missing) and,
# unless BENCH_SMOKE=1, wasmtime-cli 48.0.8 (installed into target/bench-tools when missing: a long build).
#
#   bash scripts/bench-serve.sh                 # 10 s per case, 50 connections
#   BENCH_DURATION=30s BENCH_CONNECTIONS=100 bash scripts/bench-serve.sh
#   BENCH_SMOKE=1 bash scripts/bench-serve.sh   # every case for 1 s, without wasmtime serve: the script still runs
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SMOKE=${BENCH_SMOKE:-0}
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-50}
[ "$SMOKE" = 1 ] && DURATION=1s
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
if [ "$(nproc)" -ge 2 ]; then SERVER_CPU="taskset -c 0"; LOAD_CPU="taskset -c 1"; else SERVER_CPU=""; LOAD_CPU=""; fi

cargo build --release --locked -p wasm-host -p wasm-host-server --example native-trivial
(cd tests/guests && cargo build --release --locked --target wasm32-wasip2 -p http-trivial -p trivial -p token-probe \
  --target-dir "$TARGET/guests")
BIN=$TARGET/release/wasm-host
GUESTS=$TARGET/guests/wasm32-wasip2/release

WASMTIME=""
if [ "$SMOKE" != 1 ]; then
  WASMTIME=$(command -v wasmtime || true)
  if [ -z "$WASMTIME" ] || ! "$WASMTIME" --version | grep -q '^wasmtime 48\.0\.8'; then
    WASMTIME=$TARGET/bench-tools/bin/wasmtime
    [ -x "$WASMTIME" ] || cargo install wasmtime-cli --version 48.0.8 --locked --root "$TARGET/bench-tools"
  fi
fi

export HOME=$WORK/home XDG_DATA_HOME=$WORK/data XDG_CONFIG_HOME=$WORK/config XDG_CACHE_HOME=$WORK/cache
mkdir -p "$WORK/functions"

# Starts a server in the background (pinned), waits for its "listening on URL" line; sets URL and PID.
start() {
  local out=$WORK/out.$RANDOM
  $SERVER_CPU "$@" >"$out" 2>"$out.err" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1 600); do
    URL=$(cat "$out" "$out.err" | grep -o 'http://[0-9.:]*[0-9]' | head -1 || true)
    [ -n "$URL" ] && return 0
    kill -0 "$PID" 2>/dev/null || { cat "$out.err" >&2; echo "server exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "no listening line from $*" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; }

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# wrk against URL (with an optional Lua script); prints "requests/s p50 p99".
load() {
  local url=$1 script=${2:-}
  local args=(-t1 "-c$CONNS" "-d$DURATION" --latency)
  [ -n "$script" ] && args+=(-s "$script")
  $LOAD_CPU wrk "${args[@]}" "$url" >"$WORK/wrk.txt"
  local rps p50 p99
  rps=$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk.txt")
  p50=$(awk '$1=="50%" {print $2}' "$WORK/wrk.txt")
  p99=$(awk '$1=="99%" {print $2}' "$WORK/wrk.txt")
  local errors
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$WORK/wrk.txt")
  [ -z "$errors" ] || { cat "$WORK/wrk.txt" >&2; echo "wrk saw errors" >&2; exit 1; }
  echo "$rps $p50 $p99"
}

row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4"; }
echo "| case | requests/s | p50 | p99 |"
echo "|---|---|---|---|"

start "$TARGET/release/examples/native-trivial" 127.0.0.1:0
read -r rps p50 p99 < <(load "$URL/")
row "native hyper server, same bytes (ceiling)" "$rps" "$p50" "$p99"
stop

cp "$GUESTS/http_trivial.wasm" "$WORK/functions/trivial-http.wasm"
echo 'route = "/"' >"$WORK/functions/trivial-http.toml"
start "$BIN" serve --listen 127.0.0.1:0 --max-concurrent 100 "$WORK/functions/trivial-http.wasm"

read -r rps p50 p99 < <(load "$URL/")
row "wasm-host serve, trivial wasi:http component" "$rps" "$p50" "$p99"
stop

if [ -n "$WASMTIME" ]; then
  start "$WASMTIME" serve --addr 127.0.0.1:0 -S cli "$GUESTS/http_trivial.wasm"
  read -r rps p50 p99 < <(load "$URL/")
  row "wasmtime serve 48.0.8, same component" "$rps" "$p50" "$p99"
  stop
fi

# JSON functions: the trivial one, and one that reads a token (imported, no expiry: no provider involved).
cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"connection":"bench"}'
wrk.headers["Content-Type"] = "application/json"
LUA
printf 's' | "$BIN" authconnection create --name bench --type TYPE_OAUTH2 --provider-url http://127.0.0.1:9/ \
  --client-id bench --client-secret-stdin >/dev/null 2>&1
echo '{"access_token":"bench-token","token_type":"Bearer"}' | "$BIN" authconnection import-token bench >/dev/null
cp "$GUESTS/trivial.wasm" "$WORK/functions/echo.wasm"
cp "$GUESTS/token_probe.wasm" "$WORK/functions/token.wasm"
echo $'[grants]\nconnections = ["bench"]' >"$WORK/functions/token.toml"
start "$BIN" serve --listen 127.0.0.1:0 "$WORK/functions/echo.wasm" "$WORK/functions/token.wasm"
read -r rps p50 p99 < <(load "$URL/echo" "$WORK/post.lua")
row "wasm-host serve, trivial JSON function" "$rps" "$p50" "$p99"
read -r rps p50 p99 < <(load "$URL/token" "$WORK/post.lua")
row "wasm-host serve, JSON function reading a token" "$rps" "$p50" "$p99"
stop

# Memory: 100 Rust functions loaded (the same component under 100 names and routes), idle and under load.
mkdir -p "$WORK/many"
args=()
for i in $(seq 1 100); do args+=("f$i=$GUESTS/trivial.wasm"); done
start "$BIN" serve --listen 127.0.0.1:0 "${args[@]}"
idle=$(rss_kib "$PID")
# Sampled half-way through the load.
half=$(( ${DURATION%s} / 2 )); [ "$half" -ge 1 ] || half=1
( sleep "$half"; rss_kib "$PID" >"$WORK/rss-loaded" ) &
SAMPLER=$!
cat >"$WORK/many.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "1"
request = function() return wrk.format(nil, "/f" .. math.random(1, 100)) end
LUA
read -r rps p50 p99 < <(load "$URL" "$WORK/many.lua")
wait "$SAMPLER"
loaded=$(cat "$WORK/rss-loaded")
row "wasm-host serve, 100 Rust functions, random routes" "$rps" "$p50" "$p99"
stop
echo
echo "RSS with 100 Rust functions: idle $((idle / 1024)) MiB, under load $((loaded / 1024)) MiB"
echo "($CONNS connections, $DURATION per case, wrk -t1 on core 1, server on core 0; $(nproc) cores)"
