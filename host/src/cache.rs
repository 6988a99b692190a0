//! Precompiled components on disk, so a function is compiled once and later runs only load it.
//!
//! Entries are keyed by the component's SHA-256 and the engine's compatibility hash (wasmtime version and every
//! setting that changes code). wasmtime trusts what it deserializes and runs it as native code inside the process
//! that holds the identity, so:
//!
//! - the directory must be the user's and writable by nobody else ([`wasm_host_store::check_private_dir`]);
//! - each entry ends with an HMAC-SHA256 (RFC 2104) of its file name and body under the cache's own key, 32
//!   random bytes in `DIR/key` (0600, made on first use): an entry that is damaged, truncated, written by anyone
//!   who cannot read the key, or copied from another component's name is compiled again, never loaded.
//!
//! The cache has a size cap: after writing an entry, the least recently used entries are removed until the total
//! fits. "Used" is the entry's modification time, which a load sets to now: access times are not kept on many
//! mounts (`noatime`, `relatime`), so they cannot tell the order of use.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use zeroize::Zeroizing;
use wasmtime::component::Component;

/// Version 2: the trailer is a keyed HMAC, not a plain SHA-256.
const TRAILER_MAGIC: &[u8; 8] = b"wh-cwas2";
const KEY_FILE: &str = "key";
const KEY_BYTES: usize = 32;
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

/// The default cap on the cache's total size, in bytes (1 GiB): about 30 JavaScript functions (a componentize-js
/// entry is 32-38 MiB) or thousands of Rust ones.
pub const DEFAULT_CACHE_MAX: u64 = 1 << 30;

/// One compiled component in the cache.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    pub path: PathBuf,
    /// Bytes on disk.
    pub size: u64,
    /// When it was last written or loaded.
    pub last_used: SystemTime,
}

#[derive(Clone)]
pub struct CompileCache {
    dir: PathBuf,
    /// Read (or made) by [`CompileCache::open`], once.
    key: std::sync::Arc<std::sync::OnceLock<Zeroizing<[u8; KEY_BYTES]>>>,
    max_size: u64,
}

impl std::fmt::Debug for CompileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompileCache").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// Why the cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Directory(#[from] wasm_host_store::DirError),
    #[error(
        "the compile cache's key file {path} is not one wasm-host made ({reason}); remove the cache directory's \
         contents (they are only compiled code) and run again"
    )]
    BadKey { path: PathBuf, reason: String },
    #[error("cannot make the compile cache's key file {path}: {error}")]
    MakeKey { path: PathBuf, error: std::io::Error },
}

impl CompileCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), key: Default::default(), max_size: DEFAULT_CACHE_MAX }
    }

    /// Caps the entries' total size at `bytes` ([`DEFAULT_CACHE_MAX`] by default). An entry larger than the cap
    /// on its own is still kept (it replaces all the others): the function just compiled is the likeliest to run
    /// again.
    pub fn with_max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// Every entry, most recently used first. A cache directory that does not exist is an empty cache: nothing
    /// is created.
    pub fn entries(&self) -> std::io::Result<Vec<CacheEntry>> {
        let mut entries = Vec::new();
        let dir = match fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(entries),
            Err(e) => return Err(e),
        };
        for item in dir {
            let item = item?;
            let path = item.path();
            if path.extension().is_none_or(|e| e != "cwasm") {
                continue;
            }
            // An entry removed meanwhile (another process evicting) is simply not listed.
            let Ok(meta) = item.metadata() else { continue };
            if meta.is_file() {
                entries.push(CacheEntry { path, size: meta.len(), last_used: meta.modified()? });
            }
        }
        entries.sort_by(|a, b| b.last_used.cmp(&a.last_used).then_with(|| a.path.cmp(&b.path)));
        Ok(entries)
    }

    /// Removes every entry, with the lock files and the temporary files of interrupted writes; other files (the
    /// key) are left alone. Returns how many entries went and how many bytes they held.
    pub fn clean(&self) -> std::io::Result<(usize, u64)> {
        let (mut count, mut bytes) = (0, 0);
        let dir = match fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(e),
        };
        for item in dir {
            let item = item?;
            let name = item.file_name().to_string_lossy().into_owned();
            let Some((stem, ext)) = name.split_once('.') else { continue };
            if !is_entry_stem(stem) || !(ext == "cwasm" || ext == "lock" || ext.starts_with("tmp")) {
                continue;
            }
            let size = item.metadata().map(|m| m.len()).unwrap_or(0);
            match fs::remove_file(item.path()) {
                Ok(()) if ext == "cwasm" => {
                    count += 1;
                    bytes += size;
                }
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok((count, bytes))
    }

    /// Removes the least recently used entries, other than `keep`, until the total is within the cap. Returns the
    /// removed entries' paths.
    pub(crate) fn evict(&self, keep: &Path) -> std::io::Result<Vec<PathBuf>> {
        let entries = self.entries()?;
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        let mut removed = Vec::new();
        for entry in entries.iter().rev() {
            if total <= self.max_size {
                break;
            }
            if entry.path == keep {
                continue;
            }
            match fs::remove_file(&entry.path) {
                Ok(()) => removed.push(entry.path.clone()),
                // Another process evicted it first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            total -= entry.size;
        }
        Ok(removed)
    }

    /// Marks the entry at `path` as used now (see the module's note on modification times).
    fn touch(path: &Path) {
        if let Ok(file) = fs::OpenOptions::new().write(true).open(path) {
            let _ = file.set_modified(SystemTime::now());
        }
    }

    /// Checks the directory (made 0700 when missing) and reads its key, making it on first use. Called before
    /// any entry is read or written.
    pub fn open(&self) -> Result<(), CacheError> {
        if self.key.get().is_some() {
            return Ok(());
        }
        let dir_err = |error| wasm_host_store::DirError::Io { dir: self.dir.clone(), error };
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).map_err(dir_err)?;
        wasm_host_store::check_private_dir(&self.dir)?;
        let key = self.read_or_make_key()?;
        let _ = self.key.set(key);
        Ok(())
    }

    fn read_or_make_key(&self) -> Result<Zeroizing<[u8; KEY_BYTES]>, CacheError> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let path = self.dir.join(KEY_FILE);
        let make_err = |error| CacheError::MakeKey { path: path.clone(), error };
        if !path.exists() {
            // Written whole under a name of its own, then linked into place: a concurrent first run either
            // places its key or reads the one placed first, never a partial one.
            let mut key = Zeroizing::new([0u8; KEY_BYTES]);
            fs::File::open("/dev/urandom").and_then(|mut r| std::io::Read::read_exact(&mut r, &mut key[..])).map_err(make_err)?;
            let tmp = self.dir.join(format!("{KEY_FILE}.tmp{}", std::process::id()));
            let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(make_err)?;
            f.write_all(&key[..]).and_then(|()| f.sync_all()).map_err(make_err)?;
            let linked = fs::hard_link(&tmp, &path);
            let _ = fs::remove_file(&tmp);
            match linked {
                Ok(()) => return Ok(key),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(make_err(e)),
            }
        }
        let bad = |reason: String| CacheError::BadKey { path: path.clone(), reason };
        let meta = fs::symlink_metadata(&path).map_err(|e| bad(e.to_string()))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if !meta.file_type().is_file() || meta.uid() != me || meta.permissions().mode() & 0o077 != 0 {
            return Err(bad(format!("it must be a file of yours with mode 0600, it is mode {:o} of uid {}", meta.permissions().mode() & 0o7777, meta.uid())));
        }
        let bytes = Zeroizing::new(fs::read(&path).map_err(|e| bad(e.to_string()))?);
        let key: [u8; KEY_BYTES] = bytes[..].try_into().map_err(|_| bad(format!("it holds {} bytes, not {KEY_BYTES}", bytes.len())))?;
        Ok(Zeroizing::new(key))
    }

    /// The entry's trailer: HMAC-SHA256 over its file name and body. `None` before [`CompileCache::open`].
    fn mac(&self, path: &Path, body: &[u8]) -> Option<Hmac<Sha256>> {
        let key = self.key.get()?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key[..]).expect("HMAC takes any key length");
        let name = path.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default();
        mac.update(&(name.len() as u64).to_be_bytes());
        mac.update(name);
        mac.update(body);
        Some(mac)
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
        let authentic = self.mac(path, body).is_some_and(|mac| mac.verify_slice(&trailer[..32]).is_ok());
        if &trailer[32..] != TRAILER_MAGIC || !authentic {
            return Some(Err(()));
        }
        // SAFETY: the body is exactly what `Component::serialize` wrote under this file name (component digest and
        // engine compatibility hash), by a process that could read this cache's key: its keyed MAC matches.
        let component = unsafe { Component::deserialize(engine, body) }.map_err(|_| ());
        if component.is_ok() {
            Self::touch(path);
        }
        Some(component)
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
        let mac = self.mac(path, serialized).ok_or_else(|| std::io::Error::other("the cache is not open"))?;
        f.write_all(serialized)?;
        f.write_all(&mac.finalize().into_bytes())?;
        f.write_all(TRAILER_MAGIC)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        match self.evict(path) {
            Ok(removed) if !removed.is_empty() => {
                tracing::debug!(count = removed.len(), max_bytes = self.max_size, "evicted least recently used compile cache entries");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(dir = %self.dir.display(), "cannot trim the compile cache: {e}"),
        }
        Ok(())
    }
}

/// `<64 hex digits>-<16 hex digits>`: the stem of the names [`CompileCache::entry_path`] gives.
fn is_entry_stem(stem: &str) -> bool {
    let Some((digest, engine)) = stem.split_once('-') else { return false };
    digest.len() == 64
        && engine.len() == 16
        && digest.chars().chain(engine.chars()).all(|c| c.is_ascii_hexdigit())
}
