#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, then `cargo test --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null

cargo test --workspace --locked
