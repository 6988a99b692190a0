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

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;

use crate::exit::usage;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub grants: Grants,
    #[serde(default)]
    pub limits: Limits,
}

#[derive(Debug, Default, Deserialize)]
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
    pub refresh_margin: Option<String>,
}

/// The manifest for `component`: the explicit one, else `<stem>.toml` beside it when present.
pub fn load(component: &Path, explicit: Option<&Path>) -> Result<(Manifest, Option<PathBuf>)> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let beside = component.with_extension("toml");
            if !beside.exists() {
                return Ok((Manifest::default(), None));
            }
            beside
        }
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| usage(format!("cannot read the manifest {}: {e}", path.display())))?;
    let manifest: Manifest = toml::from_str(&text)
        .map_err(|e| usage(format!("the manifest {} is not valid: {e}", path.display())))?;
    Ok((manifest, Some(path)))
}
