//! A function's manifest (`FUNCTION.toml`) and the duration and size values it and the matching flags hold:
//! `cli/src/manifest.rs` itself, included as it is (the cli is a binary crate).
//!
//! Invariants: durations and sizes that are accepted are more than zero and exactly the number times its unit
//! (no overflow, no wrap), and durations are usable as deadlines; every value of an accepted manifest's [limits] either parses or gets a message; the
//! connection names it grants go through the same check as `--allow-connection`.

#![no_main]

#[path = "../../cli/src/manifest.rs"]
mod manifest;

use libfuzzer_sys::fuzz_target;

/// The number and unit of `s` as `parse_duration` and `parse_size` split it, or `None`.
fn split(s: &str) -> Option<(u128, String)> {
    let t = s.trim();
    let at = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    Some((t[..at].parse().ok()?, t[at..].to_owned()))
}

fn check_duration(s: &str) {
    if let Ok(d) = manifest::parse_duration(s) {
        let (n, unit) = split(s).expect("an accepted duration has a number");
        let ms: u128 = match unit.as_str() {
            "ms" => n,
            "" | "s" => n * 1000,
            "m" => n * 60_000,
            "h" => n * 3_600_000,
            other => panic!("unit {other:?} accepted"),
        };
        assert!(ms > 0, "a zero duration accepted");
        assert_eq!(d.as_millis(), ms, "`{s}` parsed as {d:?}");
        // Callers make deadlines (`Instant::now() + d`) and expiry sums in i64 seconds from it.
        assert!(d <= manifest::MAX_DURATION && std::time::Instant::now().checked_add(d).is_some(), "`{s}`: {d:?}");
    }
}

fn check_size(s: &str) {
    if let Ok(v) = manifest::parse_size(s) {
        let (n, unit) = split(s).expect("an accepted size has a number");
        let factor: u128 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            other => panic!("unit {other:?} accepted"),
        };
        assert!(v > 0, "a zero size accepted");
        assert_eq!(v as u128, n * factor, "`{s}` parsed as {v}");
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
    for s in [&m.limits.max_memory, &m.limits.max_output].into_iter().flatten() {
        check_size(s);
    }
    // Host patterns are parsed by the host crate (wasmtime), which this crate does not build.
    let _ = &m.grants.hosts;
    for name in m.grants.connections.iter().filter(|n| *n != "*") {
        let _ = wasm_host_store::validate_name(name);
    }
});
