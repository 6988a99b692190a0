//! A function's grants and limits in one reviewable file beside it: `FUNCTION.toml` next to `FUNCTION.wasm`
//! (or `--manifest PATH`). Flags given on the command line override what it says.
//!
//! ```toml
//! [grants]
//! connections = ["google"]
//! hosts = ["*.googleapis.com"]
//! bind = ["google=https://www.googleapis.com"]
//!
//! [limits]
//! timeout = "30s"
//! max-memory = "256MiB"
//! max-output = "6MiB"
//! ```
//!
//! This file uses serde, toml and std only, never `crate::`: the fuzz target `fuzz/fuzz_targets/manifest.rs`
//! includes it as it is (`#[path]`), so what is fuzzed is what runs. Reading the file is `commands::run`'s.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub grants: Grants,
    #[serde(default)]
    pub limits: Limits,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    #[serde(default)]
    pub connections: Vec<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    /// `CONNECTION=ORIGIN`, as `--bind` takes them.
    #[serde(default)]
    pub bind: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    pub timeout: Option<String>,
    pub max_memory: Option<String>,
    pub max_output: Option<String>,
    pub max_log: Option<String>,
    pub refresh_margin: Option<String>,
}

/// Parses a manifest's text.
pub fn parse(text: &str) -> Result<Manifest, toml::de::Error> {
    toml::from_str(text)
}

/// The longest duration accepted: a deadline this far ahead is still a valid `Instant`, and as seconds it fits
/// the `i64` that expiry arithmetic uses.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// `500ms`, `90s`, `5m`, `1h` or plain seconds; more than zero, at most a year. The error is the message for
/// the user.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let bad = || format!("`{s}` is not a duration; use e.g. 500ms, 90s, 5m or 1h");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    let d = n.checked_mul(millis_per_unit).map(Duration::from_millis).filter(|d| *d <= MAX_DURATION);
    match d {
        None => Err(format!("`{s}` is longer than a year; give at most 8760h")),
        Some(d) if d.is_zero() => Err(format!("`{s}`: the duration must be more than zero")),
        Some(d) => Ok(d),
    }
}

/// `512KiB`, `256MiB`, `1GiB`, `1MB`, or plain bytes; more than zero. The error is the message for the user.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("`{s}` is not a size; use e.g. 64MiB or 1GiB"))?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return Err(format!("`{s}` is not a size; use e.g. 64MiB or 1GiB")),
    };
    n.checked_mul(factor).filter(|v| *v > 0).ok_or_else(|| format!("`{s}` is not a usable size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 90s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("8760h"), Ok(MAX_DURATION));
        assert!(parse_duration("0s").unwrap_err().contains("more than zero"));
        assert!(parse_duration("5 m").unwrap_err().contains("not a duration"));
        assert!(parse_duration("-5s").unwrap_err().contains("not a duration"));
    }

    /// Found by review while writing the fuzz target (its runs never reached such numbers): `n * 60` and
    /// `n * 3600` overflowed (a panic in debug builds, a wrapped, wrong duration in release), and a duration
    /// past what `Instant` can add panicked later in `authorize --timeout`.
    #[test]
    fn huge_durations_are_refused_not_overflowed() {
        for s in ["307445734561825861m", "5124095576030432h", "18446744073709551615s", "18446744073709551615ms", "8761h"] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains("longer than a year"), "{s}: {e}");
        }
        assert!(parse_duration("18446744073709551616s").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1gb"), Ok(1 << 30));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("0MiB").unwrap_err().contains("not a usable size"));
        assert!(parse_size("18446744073709551615GiB").unwrap_err().contains("not a usable size"));
        assert!(parse_size("1TiB").unwrap_err().contains("not a size"));
    }

    #[test]
    fn manifests() {
        let m = parse("[grants]\nconnections = [\"google\"]\n[limits]\ntimeout = \"30s\"\nmax-memory = \"1GiB\"\n").unwrap();
        assert_eq!(m.grants.connections, vec!["google".to_string()]);
        assert_eq!(m.limits.timeout.as_deref(), Some("30s"));
        assert!(parse("[limits]\ntimeuot = \"30s\"\n").unwrap_err().to_string().contains("unknown field"));
    }
}
