//! A function's grants and limits in one reviewable file beside it: `FUNCTION.toml` next to `FUNCTION.wasm`
//! (or `--manifest PATH`). Flags given on the command line override what it says.
//!
//! ```toml
//! route = "/userinfo"          # serve only
//!
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
//! The limits are kept as written and parsed by `crate::units`, as the flags are, so both accept the same forms
//! and give the same messages.
//!
//! This file uses serde, toml and std only, never `crate::`: the fuzz target `fuzz/fuzz_targets/manifest.rs`
//! includes it as it is (`#[path]`), so what is fuzzed is what runs. Reading the file is `commands::run`'s.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `serve`: the path the function answers, `/NAME` by default (a JSON function: `POST` to exactly this
    /// path; an HTTP function: every path under it).
    pub route: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests() {
        let m = parse("[grants]\nconnections = [\"google\"]\n[limits]\ntimeout = \"30s\"\nmax-memory = \"1GiB\"\n").unwrap();
        assert_eq!(m.grants.connections, vec!["google".to_string()]);
        assert_eq!(m.limits.timeout.as_deref(), Some("30s"));
        assert!(parse("[limits]\ntimeuot = \"30s\"\n").unwrap_err().to_string().contains("unknown field"));
        assert_eq!(parse("route = \"/hello\"\n[grants]\n").unwrap().route.as_deref(), Some("/hello"));
    }
}
