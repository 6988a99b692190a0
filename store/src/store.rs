//! [`Store`]: the handle everything above the store holds, whichever backend is behind it.

use std::path::Path;

use crate::backend::Backend;
use crate::error::OpenError;
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
}

impl Store {
    /// Opens the redb store at `path`: see [`RedbStore::open`].
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        RedbStore::open(path).map(Self::from)
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
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backends::Redb(store) => store.fmt(f),
        }
    }
}
