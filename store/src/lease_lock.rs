//! The redb backend's refresh leases: an exclusive OS lock (`flock`, through std's [`File::try_lock`]) on one lock
//! file per connection, in the directory `<store>.leases/` beside the store (0700; files 0600, named by the
//! SHA-256 of the connection's name).
//!
//! Why not a row in the store: redb 4.6 in multi-process mode makes every commit durable (a two-phase commit, two
//! fsyncs) and refuses a non-durable one, so a lease row cost each refresh a durable commit of its own (2–4 ms on
//! the benchmark's disk, BENCHMARKS.md "Refresh storm through `serve`"). A lock needs no commit, and losing it in
//! a crash is what a lease should do: the kernel releases it when its holder's open file is closed, by
//! [`LeaseLocks::release`], by the store handle being dropped, or by the holder's process dying however it dies.
//! That is the only way it lapses: there is no time limit, and none is needed, since a live holder always ends its
//! refresh (the provider call has a timeout). The holder writes its name and its own deadline into the file (not
//! synced, a hint only), which [`crate::Lease::Held`] reports.
//!
//! A lock file holds no secret. Lock files are never removed: a file unlinked while another process holds its
//! lock would let a third process lock a new file of the same name, and two holders refresh at once.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::backend::{now_millis, Lease};

/// The leases this store handle holds, and where their lock files are.
pub(crate) struct LeaseLocks {
    dir: PathBuf,
    /// Created and checked (private to this user) on the first lease, not at open: commands that only read
    /// need nothing writable besides the store.
    ready: OnceLock<()>,
    /// Connection name → the holder that has it and the open, locked file (closing it releases the lock).
    held: Mutex<HashMap<String, (String, File)>>,
}

impl LeaseLocks {
    /// The leases of the redb store at `store`.
    pub(crate) fn new(store: &Path) -> Self {
        let mut dir = store.as_os_str().to_owned();
        dir.push(".leases");
        LeaseLocks { dir: PathBuf::from(dir), ready: OnceLock::new(), held: Mutex::new(HashMap::new()) }
    }

    /// The lock file of connection `name`.
    pub(crate) fn file_for(&self, name: &str) -> PathBuf {
        let hash = Sha256::digest(name.as_bytes());
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(hex)
    }

    /// Takes `name`'s lease for `holder` (or renews it, when `holder` has it through this handle) until `until_ms`
    /// as a hint; [`Lease::Held`] when another holder, through this handle or any other, has it. Errors are the
    /// lock file's (path, cause).
    pub(crate) fn try_take(&self, name: &str, holder: &str, until_ms: i64) -> Result<Lease, (PathBuf, io::Error)> {
        let mut held = self.held.lock().expect("lease table poisoned");
        if let Some((who, file)) = held.get(name) {
            if who != holder {
                return Ok(Lease::Held { until_ms: read_hint(file) });
            }
            write_hint(file, holder, until_ms);
            return Ok(Lease::Acquired);
        }
        let path = self.file_for(name);
        let file = self.open(&path).map_err(|e| (path.clone(), e))?;
        match file.try_lock() {
            Ok(()) => {
                write_hint(&file, holder, until_ms);
                held.insert(name.to_owned(), (holder.to_owned(), file));
                Ok(Lease::Acquired)
            }
            Err(TryLockError::WouldBlock) => Ok(Lease::Held { until_ms: read_hint(&file) }),
            Err(TryLockError::Error(e)) => Err((path, e)),
        }
    }

    /// Gives `name`'s lease back if `holder` has it through this handle; otherwise nothing.
    pub(crate) fn release(&self, name: &str, holder: &str) {
        let mut held = self.held.lock().expect("lease table poisoned");
        if held.get(name).is_some_and(|(who, _)| who == holder) {
            // Closing the file releases the lock.
            held.remove(name);
        }
    }

    fn open(&self, path: &Path) -> io::Result<File> {
        if self.ready.get().is_none() {
            match fs::DirBuilder::new().mode(0o700).create(&self.dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            crate::check_private_dir(&self.dir).map_err(io::Error::other)?;
            let _ = self.ready.set(());
        }
        OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)
    }
}

/// `<until ms>\n<holder>\n`, written in one `pwrite` so a reader sees a whole first line.
fn write_hint(file: &File, holder: &str, until_ms: i64) {
    let text = format!("{until_ms}\n{holder}\n");
    // A hint only: the lock is the lease, whatever the file says.
    if file.write_all_at(text.as_bytes(), 0).is_ok() {
        let _ = file.set_len(text.len() as u64);
    }
}

/// The holder's stated deadline; now when the file does not say (being written, or written by nobody yet).
fn read_hint(file: &File) -> i64 {
    let mut buf = [0u8; 32];
    let n = file.read_at(&mut buf, 0).unwrap_or(0);
    std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|s| s.split('\n').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(now_millis)
}
