#!/usr/bin/env bash
# `wasm-host serve` measured side by side with `wasmtime serve` (the CLI of the same wasmtime, 48.0.8) and a
# native hyper server answering the same bytes (the ceiling). Every server is pinned to core 0 and the load
# generator to core 1; the cases take turns within each round, so a change in the machine's speed touches them
# all alike. Prints one Markdown table (median, min and max over the rounds) and the ratios; BENCHMARKS.md's
# serve rows come from it. Needs 2 cores, wrk and h2load (Debian's wrk and nghttp2-client, installed here when
# missing) and, unless BENCH_SMOKE=1, wasmtime-cli 48.0.8 (installed into target/bench-tools when missing: a long
# release build).
#
#   bash scripts/bench-serve.sh                  # 5 rounds, 10 s per case and round, 50 connections
#   BENCH_ROUNDS=7 BENCH_DURATION=20 BENCH_CONNECTIONS=100 bash scripts/bench-serve.sh
#   BENCH_WASMTIME=off bash scripts/bench-serve.sh   # without the wasmtime serve rows (and their install)
#   BENCH_SMOKE=1 bash scripts/bench-serve.sh    # CI: one 1 s round of every case but wasmtime serve, on the
#                                                # debug build `cargo test` made; it shows the script runs, and
#                                                # its figures mean nothing
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SMOKE=${BENCH_SMOKE:-0}
ROUNDS=${BENCH_ROUNDS:-5}
DURATION=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-50}
PROFILE=release
if [ "$SMOKE" = 1 ]; then ROUNDS=1; DURATION=1; PROFILE=debug; fi
DURATION=${DURATION%s}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in wrk h2load; do
  command -v "$tool" >/dev/null && continue
  package=$tool; [ "$tool" = h2load ] && package=nghttp2-client
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
done
if [ "$(nproc)" -ge 2 ]; then SERVER_CPU="taskset -c 0"; LOAD_CPU="taskset -c 1"; else SERVER_CPU=""; LOAD_CPU=""; fi

if [ "$PROFILE" = release ]; then
  cargo build --release --locked -p wasm-host -p wasm-host-server --bins --example native-trivial
else
  # Exactly what `cargo test --workspace` builds (the binary and the examples with it): nothing to do after it.
  cargo test --workspace --locked --no-run
fi
# The whole guest workspace, as tests/build.rs builds it: nothing to do after the tests either.
cargo build --release --locked --target wasm32-wasip2 --manifest-path tests/guests/Cargo.toml --target-dir "$TARGET/guests"
BIN=$TARGET/$PROFILE/wasm-host
NATIVE=$TARGET/$PROFILE/examples/native-trivial
GUESTS=$TARGET/guests/wasm32-wasip2/release

WASMTIME=""
if [ "$SMOKE" != 1 ] && [ "${BENCH_WASMTIME:-}" != off ]; then
  WASMTIME=$(command -v wasmtime || true)
  if [ -z "$WASMTIME" ] || ! "$WASMTIME" --version | grep -q '^wasmtime 48\.0\.8'; then
    WASMTIME=$TARGET/bench-tools/bin/wasmtime
    # Only what `wasmtime serve` uses (the pooling allocator as its default has it): the default features add
    # wasi-nn, wizer, winch, GC and more, and double a build that is long already.
    [ -x "$WASMTIME" ] || cargo install wasmtime-cli --version 48.0.8 --locked --root "$TARGET/bench-tools" \
      --no-default-features --features run,serve,component-model-async,cranelift,pooling-allocator,parallel-compilation,cache,clap/default
  fi
fi

export HOME=$WORK/home XDG_DATA_HOME=$WORK/data XDG_CONFIG_HOME=$WORK/config XDG_CACHE_HOME=$WORK/cache
mkdir -p "$WORK/functions" "$WORK/many" "$WORK/samples"

# Starts a server in the background (pinned), waits for its "http://ADDR:PORT" line; sets URL and PID.
start() {
  local out=$WORK/out.$RANDOM
  : >"$out"; : >"$out.err"
  $SERVER_CPU "$@" >"$out" 2>"$out.err" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1 600); do
    URL=$(cat "$out" "$out.err" | grep -o 'http://[0-9.:]*[0-9]' | head -1 || true)
    [ -n "$URL" ] && return 0
    kill -0 "$PID" 2>/dev/null || { cat "$out.err" >&2; echo "server exited: $*" >&2; exit 1; }
    sleep 0.1
  done
  echo "no listening line from $*" >&2; exit 1
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# A wrk latency ("850.00us", "1.23ms", "1.01s") in milliseconds.
ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.3f", n }'; }

# wrk (one thread, on core 1) against URL with an optional Lua script for SECONDS; appends requests/s, p50 and
# p99 (ms) to the samples of CASE. Any non-2xx answer or socket error fails the run.
wrk_load() {
  local case=$1 url=$2 seconds=$3 script=${4:-}
  local args=(-t1 "-c$CONNS" "-d${seconds}s" --latency)
  [ -n "$script" ] && args+=(-s "$script")
  $LOAD_CPU wrk "${args[@]}" "$url" >"$WORK/wrk.txt"
  if grep -Eq 'Non-2xx|Socket errors' "$WORK/wrk.txt"; then cat "$WORK/wrk.txt" >&2; echo "wrk saw errors ($case)" >&2; exit 1; fi
  [ -z "$case" ] && return 0
  awk '/^Requests\/sec/ {print $2}' "$WORK/wrk.txt" >>"$WORK/samples/$case.rps"
  ms "$(awk '$1=="50%" {print $2}' "$WORK/wrk.txt")" >>"$WORK/samples/$case.p50"; echo >>"$WORK/samples/$case.p50"
  ms "$(awk '$1=="99%" {print $2}' "$WORK/wrk.txt")" >>"$WORK/samples/$case.p99"; echo >>"$WORK/samples/$case.p99"
}

# h2load over HTTP/1.1 (one thread, on core 1), the second generator: requests/s only (it reports no
# percentiles). Every request must succeed.
h2_load() {
  local case=$1 url=$2 seconds=$3
  $LOAD_CPU h2load --h1 -t1 "-c$CONNS" -D "$seconds" "$url/" >"$WORK/h2load.txt"
  local failed
  # "requests: N total, ... N failed, N errored, N timeout" and "status codes: N 2xx, N 3xx, N 4xx, N 5xx".
  failed=$(awk '/^(requests|status codes):/ { for (i = 1; i < NF; i++) if ($(i+1) ~ /^(failed|errored|timeout|[345]xx),?$/) s += $i }
    END { print s + 0 }' "$WORK/h2load.txt")
  if [ "$failed" != 0 ]; then cat "$WORK/h2load.txt" >&2; echo "h2load saw errors ($case)" >&2; exit 1; fi
  awk '/^finished in/ {gsub(",", "", $4); print $4}' "$WORK/h2load.txt" >>"$WORK/samples/$case.rps"
}

# "median (min–max)" of a samples file.
stat() {
  [ -s "$WORK/samples/$1" ] || { echo "—"; return; }
  sort -g "$WORK/samples/$1" | awk -v d="$2" '{ v[NR] = $1 } END { printf "%." d "f (%." d "f–%." d "f)", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
median() { sort -g "$WORK/samples/$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# The servers, all started before the first round and left running: idle ones cost nothing.
start "$NATIVE" 127.0.0.1:0
NATIVE_URL=$URL

cp "$GUESTS/http_trivial.wasm" "$WORK/functions/trivial-http.wasm"
echo 'route = "/"' >"$WORK/functions/trivial-http.toml"
start "$BIN" serve --listen 127.0.0.1:0 "$WORK/functions/trivial-http.wasm"
HOST_URL=$URL

WASMTIME_URL=""
if [ -n "$WASMTIME" ]; then
  # -S cli: the component imports wasi:cli (std links it), which `serve` leaves out unless asked.
  start "$WASMTIME" serve --addr 127.0.0.1:0 -S cli "$GUESTS/http_trivial.wasm"
  WASMTIME_URL=$URL
fi

# JSON functions: the trivial one (it echoes its input), and one that reads a token and returns it as JSON
# (imported, no expiry: no provider involved).
cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"connection":"bench"}'
wrk.headers["Content-Type"] = "application/json"
LUA
# The target's fair form: the same token component, the same route and input but for `call`, answering the
# same small JSON either way: with the call it reads the token (broker, record lifted into the guest) and
# returns its length; without, it returns 0. The two run back to back in every round.
for call in true false; do
  cat >"$WORK/summary-$call.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"connection":"bench","summary":true,"call":$call}'
wrk.headers["Content-Type"] = "application/json"
LUA
done
printf 's' | "$BIN" authconnection create --name bench --type TYPE_OAUTH2 --provider-url http://127.0.0.1:9/ \
  --client-id bench --client-secret-stdin >/dev/null
echo '{"access_token":"bench-token","token_type":"Bearer"}' | "$BIN" authconnection import-token bench >/dev/null
cp "$GUESTS/trivial.wasm" "$WORK/functions/echo.wasm"
cp "$GUESTS/token_probe.wasm" "$WORK/functions/token.wasm"
echo $'[grants]\nconnections = ["bench"]' >"$WORK/functions/token.toml"
start "$BIN" serve --listen 127.0.0.1:0 "$WORK/functions/echo.wasm" "$WORK/functions/token.wasm"
JSON_URL=$URL

# Memory: 100 Rust functions loaded (the same component under 100 names and routes), idle and under load.
args=()
for i in $(seq 1 100); do args+=("f$i=$GUESTS/trivial.wasm"); done
start "$BIN" serve --listen 127.0.0.1:0 "${args[@]}"
MANY_URL=$URL MANY_PID=$PID
IDLE_KIB=$(rss_kib "$MANY_PID")
cat >"$WORK/many.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "1"
request = function() return wrk.format(nil, "/f" .. math.random(1, 100)) end
LUA

# Each case: a name and the load it takes. A short unrecorded warm-up first, then the rounds.
run_case() {
  local case=$1 seconds=$2
  case $case in
    native) wrk_load "$3" "$NATIVE_URL/" "$seconds" ;;
    native-h2load) h2_load "$3" "$NATIVE_URL" "$seconds" ;;
    host) wrk_load "$3" "$HOST_URL/" "$seconds" ;;
    host-h2load) h2_load "$3" "$HOST_URL" "$seconds" ;;
    wasmtime) wrk_load "$3" "$WASMTIME_URL/" "$seconds" ;;
    wasmtime-h2load) h2_load "$3" "$WASMTIME_URL" "$seconds" ;;
    echo) wrk_load "$3" "$JSON_URL/echo" "$seconds" "$WORK/post.lua" ;;
    token) wrk_load "$3" "$JSON_URL/token" "$seconds" "$WORK/post.lua" ;;
    token-call) wrk_load "$3" "$JSON_URL/token" "$seconds" "$WORK/summary-true.lua" ;;
    token-skip) wrk_load "$3" "$JSON_URL/token" "$seconds" "$WORK/summary-false.lua" ;;
    many)
      # RSS sampled half-way through the load.
      ( sleep "$(awk -v s="$seconds" 'BEGIN { print s / 2 }')"; rss_kib "$MANY_PID" >>"$WORK/samples/many.rss" ) &
      local sampler=$!
      wrk_load "$3" "$MANY_URL" "$seconds" "$WORK/many.lua"
      wait "$sampler"
      [ -n "$3" ] || : >"$WORK/samples/many.rss"
      ;;
  esac
}
CASES=(native native-h2load host host-h2load)
[ -n "$WASMTIME_URL" ] && CASES+=(wasmtime wasmtime-h2load)
CASES+=(echo token token-call token-skip many)
[ "$SMOKE" = 1 ] || for case in "${CASES[@]}"; do run_case "$case" 1 ""; done
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  for case in "${CASES[@]}"; do
    # The pair in alternating order, so that neither always runs first in a round.
    if [ $((round % 2)) = 0 ] && [ "$case" = token-call ]; then case=token-skip
    elif [ $((round % 2)) = 0 ] && [ "$case" = token-skip ]; then case=token-call; fi
    run_case "$case" "$DURATION" "$case"
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

row() {
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$(stat "$2.rps" 0)" "$(stat "$2.p50" 3)" "$(stat "$2.p99" 3)" \
    "$( [ -n "${3:-}" ] && stat "$3.rps" 0 || echo —)"
}
echo "| case | requests/s, wrk | p50 ms | p99 ms | requests/s, h2load |"
echo "|---|---|---|---|---|"
row "native hyper server, same bytes (ceiling)" native native-h2load
row "wasm-host serve, trivial wasi:http component" host host-h2load
[ -n "$WASMTIME_URL" ] && row "wasmtime serve 48.0.8, same component" wasmtime wasmtime-h2load
row "wasm-host serve, trivial JSON function (echo)" echo
row "wasm-host serve, JSON function reading a token" token
row "the same component, summary: calls get-connection-token, returns the token's length" token-call
row "the same component and route, summary without the call (returns 0)" token-skip
row "wasm-host serve, 100 Rust functions, random routes" many
echo
ratio() { awk -v a="$(median "$1")" -v b="$(median "$2")" 'BEGIN { printf "%.2f", a / b }'; }
if [ -n "$WASMTIME_URL" ]; then
  echo "wasm-host serve / wasmtime serve: requests/s $(ratio host.rps wasmtime.rps)× (h2load $(ratio host-h2load.rps wasmtime-h2load.rps)×), p99 $(ratio host.p99 wasmtime.p99)×"
  # The p99 target is judged round by round: the two cases run back to back within a round.
  echo "p99 per round, wasm-host serve / wasmtime serve: $(paste -d' ' "$WORK/samples/host.p99" "$WORK/samples/wasmtime.p99" |
    awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 / $2; if ($1 < $2) lower++ } END { printf " (wasm-host lower in %d of %d rounds)", lower, NR }')"
fi
echo "wasm-host serve / native ceiling: requests/s $(ratio host.rps native.rps)×"
echo "token function / echo: requests/s $(ratio token.rps echo.rps)×, p99 $(ratio token.p99 echo.p99)×"
echo "token call / the same without it: requests/s $(ratio token-call.rps token-skip.rps)×, p99 $(ratio token-call.p99 token-skip.p99)× (target: within 10%)"
echo "RSS with 100 Rust functions: idle $((IDLE_KIB / 1024)) MiB, under load (sampled mid-round) $(awk '{ printf "%d\n", $1 / 1024 }' "$WORK/samples/many.rss" >"$WORK/samples/many.mib"; stat many.mib 0) MiB"
echo "($ROUNDS rounds, $DURATION s per case and round, $CONNS connections, one generator thread on core 1, servers on core 0; $(nproc) cores; $PROFILE build; load average before $LOAD_BEFORE, after $LOAD_AFTER)"
