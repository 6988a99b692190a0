//! Precompiled components on disk, so a function is compiled once and later runs only load it.
//!
//! Entries are keyed by the component's SHA-256 and the engine's compatibility hash (wasmtime version and every
//! setting that changes code). wasmtime trusts what it deserializes, so each entry ends with a SHA-256 of its
//! body: a damaged or truncated entry is recompiled, never loaded.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const TRAILER_MAGIC: &[u8; 8] = b"wh-cwasm";
const TRAILER_LEN: usize = 32 + TRAILER_MAGIC.len();

/// Where a component came from on this run, for messages and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a valid cache entry.
    Hit,
    /// Compiled now (no entry), and stored.
    Compiled,
    /// An entry existed but failed its check; compiled now and replaced.
    Repaired,
    /// Compiled now; no cache in use.
    Uncached,
}

#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry path for `wasm` under `engine`.
    pub fn entry_path(&self, engine: &Engine, wasm: &[u8]) -> PathBuf {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        let digest = hex::encode(Sha256::digest(wasm));
        self.dir.join(format!("{digest}-{:016x}.cwasm", h.finish()))
    }

    /// Loads the entry at `path` if it is whole; `None` when missing or damaged.
    pub(crate) fn load(&self, engine: &Engine, path: &Path) -> Option<Result<Component, ()>> {
        let bytes = fs::read(path).ok()?;
        let Some(body_len) = bytes.len().checked_sub(TRAILER_LEN) else { return Some(Err(())) };
        let (body, trailer) = bytes.split_at(body_len);
        if &trailer[32..] != TRAILER_MAGIC || trailer[..32] != Sha256::digest(body)[..] {
            return Some(Err(()));
        }
        // SAFETY: the body is exactly what `Component::serialize` wrote for an engine with this compatibility
        // hash (the file name), and its SHA-256 matches, so it was not altered since.
        Some(unsafe { Component::deserialize(engine, body) }.map_err(|_| ()))
    }

    /// Holds the right to compile the entry at `path` until dropped: a second process starting the same
    /// component cold waits here, then finds the entry the first one wrote, so a component is compiled once, not
    /// once per process. `None` when no lock can be taken (the cache is then only slower, never wrong).
    pub(crate) fn compile_lock(&self, path: &Path) -> Option<fs::File> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).ok()?;
        let lock = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path.with_extension("lock"))
            .ok()?;
        lock.lock().ok()?;
        Some(lock)
    }

    /// Writes an entry atomically (temporary file, then rename), so readers never see a partial one.
    pub(crate) fn store(&self, path: &Path, serialized: &[u8]) -> std::io::Result<()> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(serialized)?;
        f.write_all(&Sha256::digest(serialized))?;
        f.write_all(TRAILER_MAGIC)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    }
}
