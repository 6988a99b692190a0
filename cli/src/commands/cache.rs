//! `wasm-host cache list|clean`: the compiled components kept so a function is compiled once per machine, and
//! the cap on their total size (`WASM_HOST_CACHE_MAX`, least recently used entries removed first).

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context as _, Result};
use wasm_host_runtime::{CompileCache, DEFAULT_CACHE_MAX};

use crate::args::{CacheCleanArgs, CacheListArgs};
use crate::exit::{usage, Exit};
use crate::output::{self, note};
use crate::{paths, units};

/// The compile cache `run` uses: `WASM_HOST_CACHE_DIR` (else `$XDG_CACHE_HOME/wasm-host`), capped at
/// `WASM_HOST_CACHE_MAX` (a size such as `2GiB`; else 1 GiB).
pub fn compile_cache() -> Result<CompileCache> {
    let dir: PathBuf = match std::env::var_os("WASM_HOST_CACHE_DIR") {
        Some(dir) if !dir.is_empty() => dir.into(),
        _ => paths::default_cache()?,
    };
    let max = match std::env::var("WASM_HOST_CACHE_MAX") {
        Ok(v) if !v.trim().is_empty() => units::parse_size(&v).map_err(|e| usage(format!("WASM_HOST_CACHE_MAX: {e}")))?,
        _ => DEFAULT_CACHE_MAX,
    };
    Ok(CompileCache::new(dir).with_max_size(max))
}

/// `cache list --json`.
#[derive(serde::Serialize)]
struct Listing {
    dir: PathBuf,
    /// The cap, in bytes.
    max_bytes: u64,
    /// The entries' total, in bytes.
    total_bytes: u64,
    /// Most recently used first.
    entries: Vec<Entry>,
}

#[derive(serde::Serialize)]
struct Entry {
    /// The entry's file name: the component's SHA-256, then the engine settings' hash.
    file: String,
    bytes: u64,
    /// RFC 3339, UTC.
    last_used: String,
}

/// `cache clean --json`.
#[derive(serde::Serialize)]
struct Cleaned {
    dir: PathBuf,
    removed: usize,
    freed_bytes: u64,
}

pub fn list(args: CacheListArgs) -> Result<Exit> {
    let cache = compile_cache()?;
    let entries = cache.entries().with_context(|| format!("reading the compile cache {}", cache.dir().display()))?;
    let listing = Listing {
        dir: cache.dir().to_path_buf(),
        max_bytes: cache.max_size(),
        total_bytes: entries.iter().map(|e| e.size).sum(),
        entries: entries
            .iter()
            .map(|e| Entry {
                file: e.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                bytes: e.size,
                last_used: rfc3339(e.last_used),
            })
            .collect(),
    };
    if args.out.json {
        output::json(&listing)?;
        return Ok(Exit::Ok);
    }
    let rows: Vec<[String; 3]> = listing
        .entries
        .iter()
        .map(|e| [e.last_used.clone(), bytesize::ByteSize(e.bytes).to_string(), e.file.clone()])
        .collect();
    if !rows.is_empty() {
        output::table(["LAST USED", "SIZE", "ENTRY"], &rows);
    }
    note!(
        "{} entries, {} of at most {} (WASM_HOST_CACHE_MAX), in {}",
        rows.len(),
        bytesize::ByteSize(listing.total_bytes),
        bytesize::ByteSize(listing.max_bytes),
        listing.dir.display()
    );
    Ok(Exit::Ok)
}

pub fn clean(args: CacheCleanArgs) -> Result<Exit> {
    let cache = compile_cache()?;
    let (removed, freed_bytes) =
        cache.clean().with_context(|| format!("emptying the compile cache {}", cache.dir().display()))?;
    if args.out.json {
        output::json(&Cleaned { dir: cache.dir().to_path_buf(), removed, freed_bytes })?;
    }
    note!("removed {removed} compiled components ({}) from {}", bytesize::ByteSize(freed_bytes), cache.dir().display());
    Ok(Exit::Ok)
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    wasm_host_store::rfc3339(secs)
}
