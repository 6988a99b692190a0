//! The shared behavioural suite (cases.rs) and the fixture each backend gives it.

pub mod cases;

use std::path::PathBuf;

use wasm_host_store::{redb, SecretField, Store, SECRETS};

/// A store of one backend, empty when made, removed when dropped.
pub trait Fixture {
    fn new() -> Self;

    /// A handle on this fixture's store; each call another handle on the same store, as another process (or
    /// host) would open it.
    fn open(&self) -> Store;

    /// Writes `sealed` as the `field` row of connection `name` behind the store's back, as someone with write
    /// access to the database but not the identity could; `store` is given back reopened.
    fn plant_sealed_row(&self, store: Store, name: &str, field: SecretField, sealed: &[u8]) -> Store;
}

/// The embedded backend: a redb file in a temporary directory.
pub struct Redb {
    dir: tempfile::TempDir,
}

impl Redb {
    fn path(&self) -> PathBuf {
        self.dir.path().join("store.redb")
    }
}

impl Fixture for Redb {
    fn new() -> Self {
        Redb { dir: tempfile::tempdir().expect("a temporary directory") }
    }

    fn open(&self) -> Store {
        Store::open(&self.path()).expect("the redb store opens")
    }

    fn plant_sealed_row(&self, store: Store, name: &str, field: SecretField, sealed: &[u8]) -> Store {
        drop(store);
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .create(self.path())
            .unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(SECRETS).unwrap().insert((name, field.as_str()), sealed).unwrap();
        txn.commit().unwrap();
        drop(db);
        self.open()
    }
}

#[path = "../../../tests/support/postgres.rs"]
#[allow(dead_code)] // each includer uses part of it
pub mod database;

/// The PostgreSQL backend: a database of its own on the cluster `WASM_HOST_TEST_POSTGRES` names (scripts/test.sh
/// starts one), dropped when the fixture is.
pub struct Postgres {
    db: database::Database,
}

impl Fixture for Postgres {
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Postgres { db: database::Database::new(&format!("store_{n}")) }
    }

    fn open(&self) -> Store {
        Store::open(std::path::Path::new(&self.db.url())).expect("the PostgreSQL store opens")
    }

    fn plant_sealed_row(&self, store: Store, name: &str, field: SecretField, sealed: &[u8]) -> Store {
        let hex: String = sealed.iter().map(|b| format!("{b:02x}")).collect();
        self.db.execute(&format!(
            "INSERT INTO wasm_host_secrets VALUES ('{name}', '{}', '\\x{hex}') \
             ON CONFLICT (name, field) DO UPDATE SET sealed = EXCLUDED.sealed",
            field.as_str()
        ));
        store
    }
}
