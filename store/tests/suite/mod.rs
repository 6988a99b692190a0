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

/// The PostgreSQL backend: a database of its own on the cluster `WASM_HOST_TEST_POSTGRES` names (scripts/test.sh
/// starts one), dropped when the fixture is.
pub struct Postgres {
    admin: String,
    database: String,
}

/// The test cluster's URL; a test that needs it and finds none fails saying how to get one.
pub fn postgres_admin_url() -> String {
    std::env::var("WASM_HOST_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "WASM_HOST_TEST_POSTGRES is not set: these tests need a PostgreSQL cluster. Start a throwaway one with \
             `eval \"$(bash scripts/postgres.sh)\"` (it prints the export line and how to stop it), or run \
             scripts/test.sh, which starts and stops one"
        )
    })
}

/// Runs `sql` on the cluster's `postgres` database (or on `database`).
pub fn postgres_admin(admin: &str, database: Option<&str>, sql: &str) {
    use std::str::FromStr;
    let mut config = tokio_postgres::Config::from_str(admin).expect("WASM_HOST_TEST_POSTGRES is a PostgreSQL URL");
    if let Some(database) = database {
        config.dbname(database);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.expect("the test cluster answers");
        let driver = tokio::spawn(connection);
        // One statement at a time: CREATE and DROP DATABASE refuse to run inside the implicit transaction of a batch.
        for statement in sql.split(";\n") {
            client.batch_execute(statement).await.unwrap_or_else(|e| panic!("{statement}: {e:?}"));
        }
        drop(client);
        let _ = driver.await;
    });
}

impl Postgres {
    pub fn url(&self) -> String {
        let (base, _) = self.admin.rsplit_once('/').expect("the URL names a database");
        format!("{base}/{}", self.database)
    }
}

impl Fixture for Postgres {
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let admin = postgres_admin_url();
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let database = format!("wasm_host_store_{}_{n}", std::process::id());
        postgres_admin(&admin, None, &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE);\nCREATE DATABASE {database}"));
        Postgres { admin, database }
    }

    fn open(&self) -> Store {
        Store::open(std::path::Path::new(&self.url())).expect("the PostgreSQL store opens")
    }

    fn plant_sealed_row(&self, store: Store, name: &str, field: SecretField, sealed: &[u8]) -> Store {
        let hex: String = sealed.iter().map(|b| format!("{b:02x}")).collect();
        postgres_admin(
            &self.admin,
            Some(&self.database),
            &format!(
                "INSERT INTO wasm_host_secrets VALUES ('{name}', '{}', '\\x{hex}') \
                 ON CONFLICT (name, field) DO UPDATE SET sealed = EXCLUDED.sealed",
                field.as_str()
            ),
        );
        store
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        postgres_admin(&self.admin, None, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database));
    }
}
