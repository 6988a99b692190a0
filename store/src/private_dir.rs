//! Directories wasm-host keeps its own files in (the store's, the identity's, the compile cache) must be
//! writable by no one but their owner, who must be the user running wasm-host (or root).
//!
//! Whoever can write a directory can replace the files in it: an identity file with their own key (every new
//! secret would then be sealed to them), a store with one that sends secrets elsewhere, a compile-cache entry with
//! native code of their choosing. ssh refuses keys in such places for the same reason.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DirError {
    #[error(
        "the directory {dir} can be written by other users (mode {mode:o}), who could replace the files wasm-host \
         keeps there; run `chmod go-w {dir}`, or choose a directory only you can write"
    )]
    WritableByOthers { dir: PathBuf, mode: u32 },
    #[error(
        "the directory {dir} belongs to another user (uid {owner}; you are uid {me}), who could replace the files \
         wasm-host keeps there; choose a directory of your own"
    )]
    NotOwned { dir: PathBuf, owner: u32, me: u32 },
    #[error("cannot check the directory {dir}: {error}")]
    Io { dir: PathBuf, error: io::Error },
}

/// Checks that `dir` is owned by this process's effective user (or root) and that neither its group nor others
/// may write it (a sticky bit does not help: others could still place files there first).
pub fn check_private_dir(dir: &Path) -> Result<(), DirError> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let meta = std::fs::metadata(dir).map_err(|error| DirError::Io { dir: dir.into(), error })?;
    if !meta.is_dir() {
        // Not a directory: whatever uses it reports that itself.
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(DirError::NotOwned { dir: dir.into(), owner: meta.uid(), me });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(DirError::WritableByOthers { dir: dir.into(), mode });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn directories_others_can_write_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (mode, ok) in [(0o700, true), (0o755, true), (0o775, false), (0o777, false), (0o1777, false), (0o757, false)] {
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
            let result = check_private_dir(dir.path());
            assert_eq!(result.is_ok(), ok, "mode {mode:o}: {result:?}");
            if let Err(e) = result {
                assert!(e.to_string().contains("chmod go-w"), "{e}");
            }
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    }
}
