//! [`Store`]: the handle everything above the store holds, whichever backend is behind it.

use std::path::Path;

use crate::backend::Backend;
use crate::error::OpenError;
use crate::location::is_postgres;
#[cfg(feature = "postgres")]
use crate::pg_store::PgStore;
use crate::redb_store::RedbStore;

/// An open store. Its operations are those of [`Backend`], reached through `Deref`: `store.get(name)`,
/// `store.token_snapshot(name, &keys)`, and so on, the same calls for every backend.
pub struct Store {
    backend: Backends,
}

/// The backends a store can be. An enum rather than a `Box<dyn Backend>` so that the embedded default's calls
/// (the cached token read loads [`Backend::generation`] through here) compile to direct calls.
enum Backends {
    Redb(RedbStore),
    #[cfg(feature = "postgres")]
    Postgres(PgStore),
}

impl Store {
    /// Opens the store at `location`: a PostgreSQL database when it is a `postgres://` or `postgresql://` URL (see
    /// [`PgStore::open`]), else the redb file at that path (see [`RedbStore::open`]).
    pub fn open(location: &Path) -> Result<Self, OpenError> {
        if is_postgres(location) {
            return Self::open_postgres(location);
        }
        RedbStore::open(location).map(Self::from)
    }

    /// The redb store at `path` if one exists there, for commands that only read (or have nothing to do without a
    /// store): `None` where no store was ever made, and nothing is created to find that out. Anything else at
    /// `path` (a directory, a file without permission) is for [`Store::open`] to describe.
    /// A database (`postgres://`) always exists for this purpose: it is opened, and its tables made if missing.
    pub fn open_existing(path: &Path) -> Result<Option<Self>, OpenError> {
        if is_postgres(path) {
            return Self::open(path).map(Some);
        }
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            _ => Self::open(path).map(Some),
        }
    }

    #[cfg(feature = "postgres")]
    fn open_postgres(location: &Path) -> Result<Self, OpenError> {
        let url = location.to_str().expect("is_postgres checked it is UTF-8");
        PgStore::open(url).map(|store| Store { backend: Backends::Postgres(store) })
    }

    /// A build without the `postgres` feature (the fuzz targets') has no PostgreSQL backend.
    #[cfg(not(feature = "postgres"))]
    fn open_postgres(_: &Path) -> Result<Self, OpenError> {
        Err(OpenError::BadLocation {
            detail: "this build of wasm-host has no PostgreSQL backend (the store crate's `postgres` feature)".into(),
        })
    }

    /// Runs redb's full integrity check on the file at `path` (used by tests and, later, `store check`).
    pub fn check_integrity(path: &Path) -> Result<bool, OpenError> {
        RedbStore::check_integrity(path)
    }
}

impl From<RedbStore> for Store {
    fn from(store: RedbStore) -> Self {
        Store { backend: Backends::Redb(store) }
    }
}

impl std::ops::Deref for Store {
    type Target = dyn Backend;

    #[inline]
    fn deref(&self) -> &(dyn Backend + 'static) {
        match &self.backend {
            Backends::Redb(store) => store,
            #[cfg(feature = "postgres")]
            Backends::Postgres(store) => store,
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backends::Redb(store) => store.fmt(f),
            #[cfg(feature = "postgres")]
            Backends::Postgres(store) => store.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Looking for a store that was never made makes none; one that exists is opened.
    #[test]
    fn open_existing_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/store.redb");
        assert!(Store::open_existing(&path).unwrap().is_none());
        assert!(!dir.path().join("data").exists(), "not even its directory");
        drop(Store::open(&path).unwrap());
        assert!(Store::open_existing(&path).unwrap().is_some());
        std::fs::create_dir(dir.path().join("a-directory")).unwrap();
        assert!(Store::open_existing(&dir.path().join("a-directory")).is_err());
    }
}
