//! A function's manifest (`FUNCTION.toml`) and the duration and size values it and the matching flags hold:
//! `cli/src/manifest.rs` and `cli/src/units.rs` themselves, included as they are (the cli is a binary crate).
//!
//! Invariants: durations and sizes that are accepted are more than zero and within the caps (a year; 1 TiB),
//! durations are usable as deadlines, and a plain number means seconds or bytes exactly; every value of an
//! accepted manifest's [limits] either parses or gets a message; the connection names it grants go through the
//! same check as `--allow-connection`.

#![no_main]

#[path = "../../cli/src/manifest.rs"]
mod manifest;
#[path = "../../cli/src/units.rs"]
mod units;

use libfuzzer_sys::fuzz_target;

fn check_duration(s: &str) {
    match units::parse_duration(s) {
        Ok(d) => {
            assert!(!d.is_zero(), "a zero duration accepted: {s:?}");
            // Callers make deadlines (`Instant::now() + d`) and expiry sums in i64 seconds from it.
            assert!(d <= units::MAX_DURATION && std::time::Instant::now().checked_add(d).is_some(), "`{s}`: {d:?}");
            if let Ok(n) = s.trim().parse::<u64>() {
                assert_eq!(d.as_secs(), n, "a plain number is seconds: {s:?}");
            }
        }
        Err(message) => assert!(!message.is_empty()),
    }
}

fn check_size(s: &str) {
    match units::parse_size(s) {
        Ok(v) => {
            assert!(v > 0 && v <= units::MAX_SIZE, "`{s}` parsed as {v}");
            if let Ok(n) = s.trim().parse::<u64>() {
                assert_eq!(v, n, "a plain number is bytes: {s:?}");
            }
        }
        Err(message) => assert!(!message.is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The same strings come from the command line (--timeout, --max-memory, ...).
    check_duration(text);
    check_size(text);
    let Ok(m) = manifest::parse(text) else { return };
    for d in [&m.limits.timeout, &m.limits.refresh_margin].into_iter().flatten() {
        check_duration(d);
    }
    for s in [&m.limits.max_memory, &m.limits.max_output, &m.limits.max_log].into_iter().flatten() {
        check_size(s);
    }
    // Host patterns are parsed by the host crate (wasmtime), which this crate does not build.
    let _ = &m.grants.hosts;
    for name in m.grants.connections.iter().filter(|n| *n != "*") {
        let _ = wasm_host_store::validate_name(name);
    }
});
