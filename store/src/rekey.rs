//! `store rekey`: every secret re-sealed to a new identity and the identity file switched, in an order that a
//! kill at any instant cannot break.
//!
//! 1. The new identity is written beside the identity file as `<identity>.next-<new recipient>`: 0600, under a
//!    `.tmp` name first, fsynced, renamed, the directory fsynced.
//! 2. One write transaction re-seals every secret to it and records it as the store's recipient.
//! 3. The side file is renamed over the identity file (atomic), and the directory fsynced.
//!
//! Killed before step 2 commits, the store and the identity file are as they were: the side file is stale (no
//! committed secret is sealed to it) and the next rekey removes it. Killed after step 2, before step 3, the
//! store's recipient names the side file, and [`finish_interrupted`], which every command that loads an
//! identity file runs first, moves it into place. A side file can be renamed once only (its name holds a key no
//! later rekey generates again), so two processes finishing at once cannot put an older key back.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;
use zeroize::Zeroizing;

use crate::backend::Resealed;
use crate::store::Store;
use crate::error::{ReadError, WriteError};
use crate::keys::{IdentityError, Keys};

/// Where a rekey is; reported after each step, so the caller can log it (and tests can stop it there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RekeyStep<'a> {
    /// The new identity is on the disk (the side file, or the file the operator named).
    NewIdentityWritten(&'a Path),
    /// Every secret is sealed to the new identity and the store records it.
    Committed,
    /// The identity file holds the new identity.
    Switched,
}

impl std::fmt::Display for RekeyStep<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RekeyStep::NewIdentityWritten(p) => write!(f, "new-identity-written {}", p.display()),
            RekeyStep::Committed => f.write_str("committed"),
            RekeyStep::Switched => f.write_str("switched"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekeyReport {
    pub old_recipient: String,
    pub new_recipient: String,
    pub resealed: Resealed,
}

#[derive(Debug, Error)]
pub enum RekeyError {
    #[error(
        "another `wasm-host store rekey` is running on the identities in {dir}; wait for it to finish, then run \
         rekey again if it is still needed"
    )]
    Busy { dir: PathBuf },
    #[error("cannot lock the identity directory {dir} ({source}); check that it exists and that you may read it")]
    Lock { dir: PathBuf, source: io::Error },
    #[error(
        "the identity file {path} does not exist; rekey needs the store's current identity: pass it with \
         --identity or WASM_HOST_IDENTITY"
    )]
    MissingIdentity { path: PathBuf },
    #[error(
        "cannot write the new identity file {path} ({source}); nothing was changed: check that its directory \
         exists, is writable and has space, then run rekey again"
    )]
    WriteNew { path: PathBuf, source: io::Error },
    #[error(
        "{path} exists already, and rekey never overwrites a key file: name a file that does not exist, or remove \
         this one if a rekey that did not finish left it (then its `# public key` is not the store's recipient)"
    )]
    Exists { path: PathBuf },
    #[error(
        "every secret is now sealed to the new identity in {from}, but it could not be moved to {to} ({source}); \
         run any wasm-host command with this identity to finish the switch, or `mv {from} {to}`"
    )]
    Switch { from: PathBuf, to: PathBuf, source: io::Error },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// The side file a rekey to `recipient` writes beside `identity`.
pub fn side_path(identity: &Path, recipient: &str) -> PathBuf {
    let name = identity.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    identity.with_file_name(format!("{name}.next-{recipient}"))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Finishes a rekey that was killed after its transaction committed and before the identity file was switched:
/// when the store's recipient is not the identity file's but is the side file's, the side file is moved into
/// place. Returns the recipient switched to, or `None` when there was nothing to finish.
pub fn finish_interrupted(store: &Store, identity: &Path) -> Result<Option<String>, RekeyError> {
    let Some(recipient) = store.recipient()? else { return Ok(None) };
    if Keys::load(identity)?.is_some_and(|k| k.recipient() == recipient) {
        return Ok(None);
    }
    let side = side_path(identity, &recipient);
    let Some(next) = Keys::load(&side)? else { return Ok(None) };
    if next.recipient() != recipient {
        return Ok(None);
    }
    match fs::rename(&side, identity) {
        Ok(()) => {}
        // Another process finished it first.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(RekeyError::Switch { from: side, to: identity.into(), source }),
    }
    sync_dir(&parent_dir(identity)).map_err(|source| RekeyError::Switch { from: side, to: identity.into(), source })?;
    Ok(Some(recipient))
}

/// Rekeys `store` whose identity is the file `identity`, replacing that file with the new identity (see the
/// module's description for the order). Only one rekey at a time per identity directory.
pub fn rekey_identity_file(
    store: &Store,
    identity: &Path,
    on_step: &mut dyn FnMut(RekeyStep<'_>),
) -> Result<RekeyReport, RekeyError> {
    let dir = parent_dir(identity);
    let lock = fs::File::open(&dir).map_err(|source| RekeyError::Lock { dir: dir.clone(), source })?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Err(RekeyError::Busy { dir }),
        Err(fs::TryLockError::Error(source)) => return Err(RekeyError::Lock { dir, source }),
    }
    finish_interrupted(store, identity)?;
    let old = Keys::load(identity)?.ok_or_else(|| RekeyError::MissingIdentity { path: identity.into() })?;
    store.bind_keys(&old)?;
    let origin = origin_line(store);
    remove_stale_side_files(identity, &origin, &old.recipient());
    let new = Keys::generate();
    let side = side_path(identity, &new.recipient());
    let comment = format!("{origin}, replacing {}\n", old.recipient());
    write_durably(&new, &side, &comment, false)?;
    on_step(RekeyStep::NewIdentityWritten(&side));
    let resealed = reseal_or_discard(store, &old, &new, &side)?;
    on_step(RekeyStep::Committed);
    let switch_err = |source| RekeyError::Switch { from: side.clone(), to: identity.into(), source };
    fs::rename(&side, identity).map_err(switch_err)?;
    sync_dir(&dir).map_err(switch_err)?;
    on_step(RekeyStep::Switched);
    drop(lock);
    Ok(RekeyReport { old_recipient: old.recipient(), new_recipient: new.recipient(), resealed })
}

/// Rekeys `store` from `old` (an identity that is not a file wasm-host may replace, such as
/// `WASM_HOST_IDENTITY_KEY`) and writes the new identity to `out`, which must not exist. Killed after the
/// commit, `out` already holds the store's identity.
pub fn rekey_to_new_file(
    store: &Store,
    old: &Keys,
    out: &Path,
    on_step: &mut dyn FnMut(RekeyStep<'_>),
) -> Result<RekeyReport, RekeyError> {
    if fs::symlink_metadata(out).is_ok() {
        return Err(RekeyError::Exists { path: out.into() });
    }
    store.bind_keys(old)?;
    let new = Keys::generate();
    let comment = format!("{}, replacing {}\n", origin_line(store), old.recipient());
    write_durably(&new, out, &comment, true)?;
    on_step(RekeyStep::NewIdentityWritten(out));
    let resealed = reseal_or_discard(store, old, &new, out)?;
    on_step(RekeyStep::Committed);
    Ok(RekeyReport { old_recipient: old.recipient(), new_recipient: new.recipient(), resealed })
}

fn reseal_or_discard(store: &Store, old: &Keys, new: &Keys, written: &Path) -> Result<Resealed, RekeyError> {
    store.reseal(old, new).map_err(|e| {
        // The transaction did not commit: nothing is sealed to the new key, so it goes.
        let _ = fs::remove_file(written);
        let _ = sync_dir(&parent_dir(written));
        e.into()
    })
}

/// The comment line that ties a side file to its store, so a later rekey of the same store can tell its own
/// stale side files from another store's.
fn origin_line(store: &Store) -> String {
    let location = store.location();
    let shown = match location.as_file().map(fs::canonicalize) {
        Some(Ok(path)) => path.display().to_string(),
        _ => location.to_string(),
    };
    format!("# wasm-host store rekey of {shown}")
}

/// Writes `keys` to `path` so that `path` either does not exist or is complete: a `.tmp` file first, then a
/// rename (or, with `no_clobber`, a hard link, which fails if `path` appeared meanwhile), then the directory is
/// fsynced.
fn write_durably(keys: &Keys, path: &Path, comment: &str, no_clobber: bool) -> Result<(), RekeyError> {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let err = |source| RekeyError::WriteNew { path: path.into(), source };
    match keys.write_new_file(&tmp, comment) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(RekeyError::Exists { path: tmp }),
        Err(e) => return Err(err(e)),
    }
    let placed = if no_clobber {
        fs::hard_link(&tmp, path).and_then(|()| fs::remove_file(&tmp))
    } else {
        fs::rename(&tmp, path)
    };
    if let Err(e) = placed {
        let _ = fs::remove_file(&tmp);
        return Err(if e.kind() == io::ErrorKind::AlreadyExists { RekeyError::Exists { path: path.into() } } else { err(e) });
    }
    sync_dir(&parent_dir(path)).map_err(err)
}

/// Under the rekey lock, after [`finish_interrupted`]: side files of this store whose key is not the store's
/// recipient are from rekeys killed before their commit, and `.tmp` files are unfinished writes. Nothing is
/// sealed to either. Side files of other stores sharing the directory are left alone.
fn remove_stale_side_files(identity: &Path, origin: &str, recipient: &str) {
    let dir = parent_dir(identity);
    let Some(prefix) = identity.file_name().map(|n| format!("{}.next-", n.to_string_lossy())) else { return };
    let Ok(entries) = fs::read_dir(&dir) else { return };
    let origin = format!("{origin}, ");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(suffix) = name.strip_prefix(&prefix) else { continue };
        let stale = suffix.ends_with(".tmp")
            || (suffix != recipient
                && fs::read_to_string(entry.path())
                    .map(Zeroizing::new)
                    .is_ok_and(|text| text.lines().any(|l| l.starts_with(&origin))));
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
    let _ = sync_dir(&dir);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretField;
    use crate::record::{NewConnection, TYPE_OAUTH2};
    use secrecy::{ExposeSecret, SecretString};

    fn store_with_secrets(dir: &Path) -> (Store, PathBuf) {
        let identity = dir.join("id/identity.txt");
        let keys = Keys::create(&identity).unwrap();
        let store = Store::open(&dir.join("store.redb")).unwrap();
        for name in ["a", "b"] {
            let new = NewConnection {
                name: name.into(),
                kind: TYPE_OAUTH2.into(),
                provider_url: "https://p.example".into(),
                issuer_url: None,
                client_id: "c".into(),
                endpoints: Default::default(),
                expose_refresh_token: false,
            };
            store.create(new, &SecretString::from(format!("secret-{name}")), &keys).unwrap();
        }
        (store, identity)
    }

    fn client_secret(store: &Store, keys: &Keys, name: &str) -> String {
        store.secret(name, SecretField::ClientSecret, keys).unwrap().unwrap().expose_secret().to_owned()
    }

    #[test]
    fn a_committed_rekey_is_finished_and_a_stale_one_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (store, identity) = store_with_secrets(dir.path());
        let old = Keys::load(&identity).unwrap().unwrap();
        // Killed after the commit: side file present, identity file still the old key.
        let new = Keys::generate();
        let side = side_path(&identity, &new.recipient());
        write_durably(&new, &side, &format!("{}, replacing x\n", origin_line(&store)), false).unwrap();
        store.reseal(&old, &new).unwrap();
        assert_eq!(finish_interrupted(&store, &identity).unwrap(), Some(new.recipient()));
        assert!(!side.exists());
        assert_eq!(Keys::load(&identity).unwrap().unwrap().recipient(), new.recipient());
        assert_eq!(finish_interrupted(&store, &identity).unwrap(), None);
        // Killed before the commit: the side file is ignored, then removed by the next rekey; another store's is
        // kept.
        let stale = side_path(&identity, &Keys::generate().recipient());
        write_durably(&Keys::generate(), &stale, &format!("{}, replacing x\n", origin_line(&store)), false).unwrap();
        let foreign = side_path(&identity, &Keys::generate().recipient());
        write_durably(&Keys::generate(), &foreign, "# wasm-host store rekey of /elsewhere, replacing x\n", false).unwrap();
        assert_eq!(finish_interrupted(&store, &identity).unwrap(), None);
        rekey_identity_file(&store, &identity, &mut |_| {}).unwrap();
        assert!(!stale.exists());
        assert!(foreign.exists());
    }

    #[test]
    fn a_second_rekey_at_once_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (store, identity) = store_with_secrets(dir.path());
        let held = fs::File::open(identity.parent().unwrap()).unwrap();
        held.lock().unwrap();
        assert!(matches!(rekey_identity_file(&store, &identity, &mut |_| {}), Err(RekeyError::Busy { .. })));
    }

    #[test]
    fn rekey_to_a_new_file_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let (store, identity) = store_with_secrets(dir.path());
        let old = Keys::load(&identity).unwrap().unwrap();
        let out = dir.path().join("new-key.txt");
        fs::write(&out, "keep me").unwrap();
        assert!(matches!(rekey_to_new_file(&store, &old, &out, &mut |_| {}), Err(RekeyError::Exists { .. })));
        assert_eq!(fs::read_to_string(&out).unwrap(), "keep me");
        fs::remove_file(&out).unwrap();
        let report = rekey_to_new_file(&store, &old, &out, &mut |_| {}).unwrap();
        let new = Keys::load(&out).unwrap().unwrap();
        assert_eq!(new.recipient(), report.new_recipient);
        assert_eq!(client_secret(&store, &new, "a"), "secret-a");
        assert!(!PathBuf::from(format!("{}.tmp", out.display())).exists());
    }
}
