//! A function's grants and limits: its manifest, then the flags that replace the manifest's values. Shared by
//! `run` (one function, flags allowed) and `serve` (many functions, manifests only).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use wasm_host_runtime::{ConnectionGrants, HostPattern, InvocationSettings, OriginBinding, OriginBindings};
use wasm_host_store::Store;

use crate::exit::{coded, usage, Exit};
use crate::manifest::{self, Manifest};

/// Defaults of the limits a manifest or a flag may set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_MEMORY: usize = 256 << 20;
pub const DEFAULT_MAX_OUTPUT: usize = 6 << 20;

/// Values given on the command line, already parsed by their flags; each replaces the manifest's, so the
/// command line always says what runs.
#[derive(Default)]
pub struct Overrides<'a> {
    /// The grants as the operator decided them (crate::grants), used as they are, empty lists included: `None`
    /// takes the manifest's `[grants]`.
    pub grants: Option<Grants<'a>>,
    pub timeout: Option<Duration>,
    pub max_memory: Option<usize>,
    pub max_output: Option<usize>,
    pub max_log: Option<usize>,
    pub refresh_margin: Option<Duration>,
}

/// Granted connections, hosts and origin bindings.
pub struct Grants<'a> {
    pub connections: &'a [String],
    pub hosts: &'a [String],
    pub binds: &'a [String],
}

/// The settings of function `name` from `manifest` and `flags`, and its refresh margin. The manifest's values
/// are checked even where a flag replaces them, so a broken manifest is said; errors name the manifest's key or
/// the flag.
pub fn resolve(name: String, manifest: &Manifest, flags: &Overrides) -> Result<(InvocationSettings, Duration)> {
    let from_manifest = Grants {
        connections: &manifest.grants.connections,
        hosts: &manifest.grants.hosts,
        binds: &manifest.grants.bind,
    };
    let Grants { connections, hosts, binds } = flags.grants.as_ref().unwrap_or(&from_manifest);
    let limits = &manifest.limits;
    let duration = crate::units::parse_duration;
    let size = crate::units::parse_size_usize;
    let timeout = flags.timeout.or(limit("timeout", &limits.timeout, duration)?).unwrap_or(DEFAULT_TIMEOUT);
    let max_memory = flags.max_memory.or(limit("max-memory", &limits.max_memory, size)?).unwrap_or(DEFAULT_MAX_MEMORY);
    let max_output = flags.max_output.or(limit("max-output", &limits.max_output, size)?).unwrap_or(DEFAULT_MAX_OUTPUT);
    let max_log =
        flags.max_log.or(limit("max-log", &limits.max_log, size)?).unwrap_or(wasm_host_runtime::DEFAULT_MAX_LOG);
    let margin = flags
        .refresh_margin
        .or(limit("refresh-margin", &limits.refresh_margin, duration)?)
        .unwrap_or(wasm_host_runtime::DEFAULT_REFRESH_MARGIN);
    let (allowed_hosts, bindings) = parse_grants(connections, hosts, binds)?;
    let settings = InvocationSettings {
        grants: ConnectionGrants::from_names(connections.iter().cloned()),
        allowed_hosts,
        bindings,
        name,
        timeout,
        max_memory,
        max_output,
        max_log,
        // Resource table, header-map and open-request limits: the host's defaults.
        ..InvocationSettings::default()
    };
    Ok((settings, margin))
}

/// A manifest's `[limits]` value, parsed as its flag is; the message names the manifest's key.
fn limit<T>(key: &str, value: &Option<String>, parse: fn(&str) -> Result<T, String>) -> Result<Option<T>> {
    value.as_deref().map(|v| parse(v).map_err(|e| usage(format!("the manifest's [limits] {key}: {e}")))).transpose()
}

/// Checks granted connection names and parses the host patterns and origin bindings, each error naming its flag.
pub fn parse_grants(connections: &[String], hosts: &[String], binds: &[String]) -> Result<(Vec<HostPattern>, OriginBindings)> {
    for name in connections {
        if name != "*" {
            wasm_host_store::validate_name(name).context("--allow-connection")?;
        }
    }
    let allowed_hosts = hosts
        .iter()
        .map(|h| h.parse::<HostPattern>().map_err(|e| usage(format!("--allow-host: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let bindings = binds
        .iter()
        .map(|b| {
            let binding = b.parse::<OriginBinding>().map_err(|e| usage(format!("--bind: {e}")))?;
            wasm_host_store::validate_name(&binding.connection).context("--bind")?;
            Ok(binding)
        })
        .collect::<Result<Vec<_>>>()?;
    let bindings = OriginBindings::new(bindings).map_err(|e| usage(format!("--bind: {e}")))?;
    Ok((allowed_hosts, bindings))
}

/// A binding to a connection that does not exist is a typo: say so now, not at the function's first request.
pub fn check_bindings(store: &Store, settings: &InvocationSettings) -> Result<()> {
    for binding in settings.bindings.iter() {
        if store.get(&binding.connection)?.is_none() {
            return Err(coded(
                Exit::NotFound,
                format!(
                    "--bind: no connection named `{}`; `wasm-host authconnection list` shows them",
                    binding.connection
                ),
            ));
        }
    }
    Ok(())
}

/// The manifest for `component`: the explicit one, else `<stem>.toml` beside it when present.
pub fn load_manifest(component: &Path, explicit: Option<&Path>) -> Result<(Manifest, Option<PathBuf>)> {
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
    let parsed = manifest::parse(&text).map_err(|e| usage(format!("the manifest {} is not valid: {e}", path.display())))?;
    Ok((parsed, Some(path)))
}

/// Where compiled components are cached: `WASM_HOST_CACHE_DIR`, else the XDG cache directory.
pub fn cache_dir() -> Result<PathBuf> {
    Ok(match std::env::var_os("WASM_HOST_CACHE_DIR") {
        Some(dir) if !dir.is_empty() => dir.into(),
        _ => crate::paths::default_cache()?,
    })
}
