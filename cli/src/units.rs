//! Durations and sizes as people write them, on the command line and in manifests: `1h30m`, `1.5s`, `2d`,
//! `500ms`, `90` (seconds); `1.5GiB`, `256MiB`, `1MB` (10^6 bytes), `4096` (bytes).
//!
//! Parsed by `humantime` (durations) and `bytesize` (sizes); this file adds what they leave to the caller: plain
//! numbers, the caps, and messages that say what to write instead. It uses humantime, bytesize and std only,
//! never `crate::`: the fuzz target `fuzz/fuzz_targets/manifest.rs` includes it as it is (`#[path]`).

use std::time::Duration;

/// The longest duration accepted: a deadline this far ahead is still a valid `Instant`, and as seconds it fits
/// the `i64` that expiry arithmetic uses.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The largest size accepted, 1 TiB: more than any limit here can use, and far from overflowing a `usize`.
pub const MAX_SIZE: u64 = 1 << 40;

/// A duration: humantime's forms (`1h30m`, `1h 30m`, `1.5s`, `2d`, `500ms`, `3min`) or a plain number of
/// seconds; more than zero and at most a year (8760h). The error is the message for the user.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let parsed = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        // humantime wants a unit; a plain number is seconds, as `sleep` and `timeout` read it.
        t.parse::<u64>().map(Duration::from_secs).map_err(|_| humantime::DurationError::NumberOverflow)
    } else {
        humantime::parse_duration(t)
    };
    match parsed {
        Ok(d) if d.is_zero() => Err(format!("`{t}`: the duration must be more than zero")),
        Ok(d) if d > MAX_DURATION => Err(format!("`{t}` is longer than a year; give at most 8760h")),
        Ok(d) => Ok(d),
        Err(humantime::DurationError::NumberOverflow) => {
            Err(format!("`{t}` is longer than a year; give at most 8760h"))
        }
        Err(e) => Err(format!("`{t}` is not a duration ({e}); write e.g. 500ms, 1.5s, 90s, 5m, 1h30m or 2d")),
    }
}

/// A size: bytesize's forms, binary (`64KiB`, `256MiB`, `1.5GiB`) or decimal (`1MB` = 1,000,000 bytes, `1kB`),
/// or a plain number of bytes; more than zero and at most 1 TiB. The error is the message for the user.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = |why: String| format!("`{t}` is not a size ({why}); write e.g. 64MiB, 1.5GiB or 500MB");
    let bytes = t.parse::<bytesize::ByteSize>().map_err(bad)?.as_u64();
    // bytesize saturates instead of failing: anything at the cap or past it is refused, never wrapped.
    if bytes > MAX_SIZE {
        return Err(format!("`{t}` is larger than the largest size accepted, 1TiB"));
    }
    if bytes == 0 {
        return Err(format!("`{t}`: the size must be more than zero"));
    }
    Ok(bytes)
}

/// [`parse_size`] as a `usize`, for limits held in memory.
pub fn parse_size_usize(s: &str) -> Result<usize, String> {
    parse_size(s).and_then(|b| usize::try_from(b).map_err(|_| format!("`{}` is too large for this machine", s.trim())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_people_write_them() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 90s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86400)));
        assert_eq!(parse_duration("8760h"), Ok(MAX_DURATION));
    }

    #[test]
    fn bad_durations_say_what_to_write() {
        assert!(parse_duration("0s").unwrap_err().contains("more than zero"));
        assert!(parse_duration("0").unwrap_err().contains("more than zero"));
        for s in ["-5s", "5 parsecs", "", "s", "1.5.5s"] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains("not a duration") && e.contains("1h30m"), "{s}: {e}");
        }
    }

    /// Found by review while writing the fuzz target: multiplying by the unit overflowed (a panic in debug
    /// builds, a wrapped, wrong duration in release), and a duration past what `Instant` can add panicked later
    /// in `authorize --timeout`.
    #[test]
    fn huge_durations_are_refused_not_overflowed() {
        for s in [
            "307445734561825861m",
            "5124095576030432h",
            "18446744073709551615s",
            "18446744073709551615",
            "18446744073709551616s",
            "99999999999999999999999",
            "8761h",
            "366d",
            "1y",
        ] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains("longer than a year"), "{s}: {e}");
        }
    }

    #[test]
    fn sizes_binary_and_decimal() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("1gb"), Ok(1_000_000_000));
        assert_eq!(parse_size("1 KiB"), Ok(1024));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("1TiB"), Ok(MAX_SIZE));
        assert_eq!(parse_size_usize("6MiB"), Ok(6 << 20));
    }

    #[test]
    fn bad_sizes_say_what_to_write() {
        assert!(parse_size("0MiB").unwrap_err().contains("more than zero"));
        assert!(parse_size("2TiB").unwrap_err().contains("largest size"));
        assert!(parse_size("18446744073709551615GiB").unwrap_err().contains("largest size"));
        for s in ["1 parsec", "-5MiB", "MiB", "", "1e3"] {
            let e = parse_size(s).unwrap_err();
            assert!(e.contains("not a size") && e.contains("64MiB"), "{s}: {e}");
        }
    }
}
