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
//! A caller the lease was refused to waits for its end on the lock itself ([`LeaseLocks::wait_end`]): a thread
//! blocks in `flock` until the holder's lock is released, so the waiter learns of the end when it happens.
//!
//! A lock file holds no secret. Lock files are never removed: a file unlinked while another process holds its
//! lock would let a third process lock a new file of the same name, and two holders refresh at once.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::backend::{now_millis, Lease, LeaseWait};

/// The leases this store handle holds, and where their lock files are.
pub(crate) struct LeaseLocks {
    dir: PathBuf,
    /// Created and checked (private to this user) on the first lease, not at open: commands that only read
    /// need nothing writable besides the store.
    ready: OnceLock<()>,
    /// Connection name → the holder that has it and the open, locked file (closing it releases the lock).
    held: Mutex<HashMap<String, (String, File)>>,
    /// Connection name → the end of its lease, as the one thread blocked on its lock file for this handle's
    /// waiters will report it (see [`LeaseLocks::wait_end`]). Shared with those threads, which remove their entry.
    waiting: Arc<Mutex<HashMap<String, Arc<Ending>>>>,
}

/// Whether the lease one waiting thread blocks on has ended; its waiters sleep on `changed`.
#[derive(Default)]
struct Ending {
    ended: Mutex<bool>,
    changed: Condvar,
}

impl LeaseLocks {
    /// The leases of the redb store at `store`.
    pub(crate) fn new(store: &Path) -> Self {
        let mut dir = store.as_os_str().to_owned();
        dir.push(".leases");
        LeaseLocks {
            dir: PathBuf::from(dir),
            ready: OnceLock::new(),
            held: Mutex::new(HashMap::new()),
            waiting: Arc::default(),
        }
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

    /// Waits, at most `timeout`, for the lease of `name` to be released by whoever has it: [`LeaseWait::Ended`]
    /// when it was (or was free already), [`LeaseWait::Elapsed`] when `timeout` passed first. Errors are the lock
    /// file's (path, cause).
    ///
    /// One thread per connection blocks in `flock` for all of this handle's waiters: it takes the lock when the
    /// holder lets it go, releases it at once (closing its file), tells the waiters, and exits. Nothing times it
    /// out, and nothing needs to: a live holder always ends its refresh (the provider call has a timeout), and a
    /// dead holder's lock is released by the kernel, so the thread ends with the holder's lease; a waiter whose
    /// `timeout` passes first leaves it to end then, and the next waiter on that connection joins it rather than
    /// starting another. (Holding the lock for that instant can make another process's `try_lock` find it held;
    /// that one then waits here too, and finds the lock free.)
    pub(crate) fn wait_end(&self, name: &str, timeout: Duration) -> Result<LeaseWait, (PathBuf, io::Error)> {
        let ending = {
            let mut waiting = self.waiting.lock().expect("lease waiters poisoned");
            match waiting.get(name) {
                Some(ending) => ending.clone(),
                None => {
                    let path = self.file_for(name);
                    let file = self.open(&path).map_err(|e| (path.clone(), e))?;
                    let ending = Arc::new(Ending::default());
                    let (shared, theirs, key) = (self.waiting.clone(), ending.clone(), name.to_owned());
                    std::thread::Builder::new()
                        .name("wasm-host-lease-wait".into())
                        .spawn(move || {
                            // An error (the call interrupted) ends the wait as well: the waiters look again.
                            let _ = file.lock();
                            drop(file);
                            // Only this thread inserted the entry, and none is inserted while it is there.
                            shared.lock().expect("lease waiters poisoned").remove(&key);
                            *theirs.ended.lock().expect("lease waiter poisoned") = true;
                            theirs.changed.notify_all();
                        })
                        .map_err(|e| (path, e))?;
                    waiting.insert(name.to_owned(), ending.clone());
                    ending
                }
            }
        };
        let ended = ending.ended.lock().expect("lease waiter poisoned");
        let (ended, _) = ending.changed.wait_timeout_while(ended, timeout, |ended| !*ended).expect("lease waiter poisoned");
        Ok(if *ended { LeaseWait::Ended } else { LeaseWait::Elapsed })
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
