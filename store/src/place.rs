//! Files a host's first command creates (the identity, the store) appear whole or not at all.
//!
//! Each is written under a name of its own, `<path>.<what>-<pid>-<n>`, and then hard-linked to `path`: a process
//! killed half-way never leaves `path` half-written (redb writes a new file's magic number last; an identity
//! file could be read before its key was in it), and when two first commands race, the link of the second fails
//! and it uses the first one's file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether [`create_whole`] placed the file, or found one another process had placed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    Ours,
    Theirs,
}

/// Makes `path` with `write`, which fills the file at the path it is given (a name of this process's own beside
/// `path`, not existing yet), then links it into place and syncs the directory. Leftovers of killed first
/// commands are removed first.
pub(crate) fn create_whole<E>(
    path: &Path,
    what: &str,
    write: impl FnOnce(&Path) -> Result<(), E>,
    io_err: impl Fn(io::Error) -> E,
) -> Result<Placed, E> {
    static ATTEMPT: AtomicU64 = AtomicU64::new(0);
    let n = ATTEMPT.fetch_add(1, Ordering::Relaxed);
    let tmp = PathBuf::from(format!("{}.{what}-{}-{n}", path.display(), std::process::id()));
    remove_abandoned(path, what);
    let linked = write(&tmp).map(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    match linked? {
        Ok(()) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::File::open(dir).and_then(|d| d.sync_all()).map_err(&io_err)?;
            }
            Ok(Placed::Ours)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Placed::Theirs),
        Err(e) => Err(io_err(e)),
    }
}

/// `<path>.<what>-<pid>-<n>` files that a first command killed before placing its file left behind: those whose
/// process is gone.
fn remove_abandoned(path: &Path, what: &str) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let prefix = format!("{}.{what}-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.strip_prefix(&prefix).is_some_and(|rest| !process_alive(rest)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether the process of a name that starts `<pid>-` still runs; where /proc is missing it is assumed to.
fn process_alive(name: &str) -> bool {
    let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { return true };
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new(&format!("/proc/{pid}")).exists()
}
