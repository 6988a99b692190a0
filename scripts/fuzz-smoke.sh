#!/usr/bin/env bash
# Fuzz smoke (fuzz/FINDINGS.md): every cargo-fuzz target runs briefly from its committed seeds; a
# crash or a broken invariant fails the run, and the input that did it is left in fuzz/artifacts/TARGET/.
# cargo-fuzz passes nightly -Z flags: RUSTC_BOOTSTRAP=1 lets them through on the stable toolchain. The smoke
# builds without AddressSanitizer and at opt-level 1 (overflow checks and debug assertions stay on): the
# targets are safe Rust, and the build is most of the smoke's time. Longer local runs: fuzz/Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
fuzz_work=$(mktemp -d)
trap 'rm -rf "$fuzz_work"' EXIT
export CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=0
# Instrumented builds stay in fuzz/target, never in a target directory shared with the main build.
unset CARGO_TARGET_DIR
for target in $(cargo fuzz list --fuzz-dir fuzz); do
  mkdir -p "$fuzz_work/$target"
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz -s none "$target" "$fuzz_work/$target" "fuzz/seeds/$target" \
      -- -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 >"$fuzz_work/$target.log" 2>&1; then
    grep -m1 -A3 'panicked at' "$fuzz_work/$target.log" || true
    tail -n 25 "$fuzz_work/$target.log"
    echo "fuzz target $target found a problem (input kept in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  echo "fuzz smoke $target: $(grep -o 'number_of_executed_units: [0-9]*' "$fuzz_work/$target.log") in ${FUZZ_SECONDS}s"
done
