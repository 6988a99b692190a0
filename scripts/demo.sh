#!/usr/bin/env bash
# The main job, end to end, on this machine: a real OpenID provider on 127.0.0.1 (npm oidc-provider), a
# connection registered with its client secret sealed in the store, the authorization-code flow through the
# loopback callback (a cookie-keeping curl plays the browser), the `userinfo` function calling the provider's
# userinfo endpoint with the host-held token, an automatic refresh when the token expires, and a revoke.
# Everything lives in a temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null
command -v node >/dev/null || { apt-get update && apt-get install -y nodejs npm; }
npm ci --prefix tests/provider --no-audit --no-fund --silent
echo "== building wasm-host (release) and the userinfo function"
cargo build --release --locked -p wasm-host
cargo build --release --locked --target wasm32-wasip2 --manifest-path guest-examples/Cargo.toml
bin=$PWD/target/release/wasm-host
fn=$PWD/guest-examples/target/wasm32-wasip2/release/userinfo.wasm

work=$(mktemp -d)
provider_pid=
cleanup() { [ -n "$provider_pid" ] && kill "$provider_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export WASM_HOST_STORE=$work/store.redb WASM_HOST_IDENTITY=$work/identity.txt WASM_HOST_CACHE_DIR=$work/cache
secret='demo p@ss+w/rd=:%&?~'

echo "== starting the OpenID provider (access tokens live 5 s, refresh tokens rotate)"
PORT=0 ACCESS_TTL=5 CLIENT_ID=demo-client CLIENT_SECRET="$secret" node tests/provider/provider.mjs \
  > "$work/provider.out" 2>/dev/null &
provider_pid=$!
for _ in $(seq 100); do grep -q '^ready ' "$work/provider.out" 2>/dev/null && break; sleep 0.1; done
issuer=$(awk '/^ready /{print $2}' "$work/provider.out")
echo "provider: $issuer"

echo "== create the connection (the client secret goes in on stdin, sealed with age in the store)"
printf '%s' "$secret" | "$bin" authconnection create --name demo --type TYPE_OAUTH2 \
  --provider-url "$issuer" --client-id demo-client --client-secret-stdin

echo "== authorize: PKCE, state, nonce; curl follows the login as a browser would"
"$bin" authconnection authorize demo --no-browser --port 0 --timeout 60s > "$work/url" &
authorize_pid=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.1; done
curl -sS -L -c "$work/jar" -b "$work/jar" -o /dev/null "$(head -n1 "$work/url")"
wait "$authorize_pid"
"$bin" authconnection list

input="{\"connection\":\"demo\",\"url\":\"$issuer/me\"}"
echo "== run userinfo: the function asks for the token by name; the host holds the secrets"
"$bin" run "$fn" --allow-connection demo --allow-host 127.0.0.1 --input "$input" --refresh-margin 1s
echo "== wait for the access token to expire, run again: the host refreshes it first"
sleep 5
"$bin" run "$fn" --allow-connection demo --allow-host 127.0.0.1 --input "$input" --refresh-margin 1s
echo "provider counted: $(curl -sS "$issuer/test/stats")"
echo "== revoke at the provider; the function is then told the connection needs authorization"
"$bin" authconnection revoke demo
"$bin" run "$fn" --allow-connection demo --allow-host 127.0.0.1 --input "$input" || echo "(exit $?, as expected)"
if grep -qa "$secret" "$WASM_HOST_STORE"; then echo "the client secret is in the store in plaintext" >&2; exit 1; fi
echo "== done: no secret appears in plaintext in $WASM_HOST_STORE"
