#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, then `cargo test --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null
# The OpenID provider the OAuth tests run on 127.0.0.1 (npm oidc-provider, pinned by the lock file).
command -v node >/dev/null || { apt-get update && apt-get install -y nodejs npm; }
npm ci --prefix tests/provider --no-audit --no-fund
# A real browser for the authorize test: Debian's Chromium, driven by playwright-core.
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# A throwaway PostgreSQL cluster for the PostgreSQL backend's tests (scripts/postgres.sh): Debian's postgresql
# installed when missing, WASM_HOST_TEST_POSTGRES exported, the server stopped by PID on any exit.
source scripts/postgres.sh
postgres_start

cargo test --workspace --locked

# Bench smoke: `wasm-host serve` under wrk and h2load for a second per case, on the build the tests just made
# (no wasmtime-cli install, no timing checked), so that scripts/bench-serve.sh cannot rot.
BENCH_SMOKE=1 bash scripts/bench-serve.sh

# Fuzz smoke: every cargo-fuzz target for a few seconds (scripts/fuzz-smoke.sh).
bash scripts/fuzz-smoke.sh
