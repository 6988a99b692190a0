#!/usr/bin/env bash
# The main job, end to end, on this machine: build wasm-host and the `userinfo` function, register a
# connection (its client secret sealed in the store), give it a token, and run the function against a local
# API that accepts only that token. Everything lives in a temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null
echo "== building wasm-host (release) and the userinfo function"
cargo build --release --locked -p wasm-host
cargo build --release --locked --target wasm32-wasip2 --manifest-path guest-examples/Cargo.toml
bin=$PWD/target/release/wasm-host
fn=$PWD/guest-examples/target/wasm32-wasip2/release/userinfo.wasm

work=$(mktemp -d)
api_pid=
cleanup() { [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export WASM_HOST_STORE=$work/store.redb WASM_HOST_IDENTITY=$work/identity.txt WASM_HOST_CACHE_DIR=$work/cache

token=demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
python3 scripts/demo_api.py "$token" > "$work/api.out" &
api_pid=$!
for _ in $(seq 50); do grep -q listening "$work/api.out" 2>/dev/null && break; sleep 0.1; done
port=$(awk '/listening/ {print $2}' "$work/api.out")

echo "== create a connection (the client secret goes in on stdin and is stored encrypted)"
printf '%s' 'demo-client-secret' | "$bin" authconnection create --name demo --type TYPE_OAUTH2 \
  --provider-url http://127.0.0.1:$port/ --client-id demo-client --client-secret-stdin
echo "== store a token for it"
printf '{"access_token":"%s","expires_in":3600,"scope":"openid email"}' "$token" | "$bin" authconnection import-token demo
"$bin" authconnection list
echo "== run the userinfo function (first run compiles, second loads the cache)"
input="{\"connection\":\"demo\",\"url\":\"http://127.0.0.1:$port/userinfo\"}"
time "$bin" run "$fn" --allow-connection demo --input "$input"
time "$bin" run "$fn" --allow-connection demo --input "$input"
echo "== without --allow-connection the function is refused the token"
"$bin" run "$fn" --input "$input" || echo "(exit $?, as expected)"
if grep -qa "$token" "$WASM_HOST_STORE" || grep -qa demo-client-secret "$WASM_HOST_STORE"; then
  echo "a secret was found in plaintext in the store" >&2; exit 1
fi
echo "== no secret appears in plaintext in $WASM_HOST_STORE"
