//! A database of its own for one test, on the throwaway cluster scripts/postgres.sh starts
//! (`WASM_HOST_TEST_POSTGRES`); dropped with the value. The store's own suite includes this file too
//! (store/tests/suite/mod.rs), so both test crates make their databases the same way.

use std::str::FromStr;

pub struct Database {
    admin: String,
    pub name: String,
}

/// The cluster's URL; a test that needs it and finds none fails saying how to get one (never a silent skip).
pub fn cluster_url() -> String {
    std::env::var("WASM_HOST_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "WASM_HOST_TEST_POSTGRES is not set: this test needs a PostgreSQL cluster. Start a throwaway one with \
             `eval \"$(bash scripts/postgres.sh)\"` (it prints the export line and how to stop it), or run \
             scripts/test.sh, which starts and stops one"
        )
    })
}

/// Runs each `;\n`-separated statement of `sql` on the cluster's own database, one at a time (CREATE and DROP
/// DATABASE refuse to run inside a batch's implicit transaction).
fn admin(url: &str, sql: &str) {
    let config = tokio_postgres::Config::from_str(url).expect("WASM_HOST_TEST_POSTGRES is a PostgreSQL URL");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.expect("the test cluster answers");
        let driver = tokio::spawn(connection);
        for statement in sql.split(";\n") {
            client.batch_execute(statement).await.unwrap_or_else(|e| panic!("{statement}: {e:?}"));
        }
        drop(client);
        let _ = driver.await;
    });
}

impl Database {
    /// A new empty database named after `test` and this process.
    pub fn new(test: &str) -> Self {
        let admin_url = cluster_url();
        let name = format!("wasm_host_{test}_{}", std::process::id());
        admin(&admin_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE);\nCREATE DATABASE {name}"));
        Database { admin: admin_url, name }
    }

    /// Runs `sql` in this database, behind the store's back.
    pub fn execute(&self, sql: &str) {
        admin(&self.url(), sql);
    }

    /// The store location: this database on the cluster.
    pub fn url(&self) -> String {
        let (cluster, _) = self.admin.rsplit_once('/').expect("the URL names a database");
        format!("{cluster}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        admin(&self.admin, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}
