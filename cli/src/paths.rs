//! Where files live when no flag says otherwise: the XDG base directories, as on every Linux desktop and server.

use std::env;
use std::path::PathBuf;

use anyhow::{bail, Result};

fn home() -> Result<PathBuf> {
    match env::var_os("HOME") {
        Some(h) if !h.is_empty() => Ok(PathBuf::from(h)),
        _ => bail!("HOME is not set, so no default path can be chosen: pass --store and --identity explicitly"),
    }
}

fn xdg(var: &str, fallback: &str) -> Result<PathBuf> {
    match env::var_os(var) {
        // The spec says relative values are to be ignored.
        Some(v) if PathBuf::from(&v).is_absolute() => Ok(PathBuf::from(v).join("wasm-host")),
        _ => Ok(home()?.join(fallback).join("wasm-host")),
    }
}

/// `$XDG_DATA_HOME/wasm-host/store.redb`
pub fn default_store() -> Result<PathBuf> {
    Ok(xdg("XDG_DATA_HOME", ".local/share")?.join("store.redb"))
}

/// `$XDG_CONFIG_HOME/wasm-host/identity.txt`
pub fn default_identity() -> Result<PathBuf> {
    Ok(xdg("XDG_CONFIG_HOME", ".config")?.join("identity.txt"))
}

/// `$XDG_CACHE_HOME/wasm-host/`
pub fn default_cache() -> Result<PathBuf> {
    xdg("XDG_CACHE_HOME", ".cache")
}
