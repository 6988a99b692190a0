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

/// A cluster of a test's own (one it restarts, or one serving TLS), started by scripts/postgres.sh; stopped by
/// PID and removed when dropped.
pub struct OwnCluster {
    pub dir: String,
    pub url: String,
}

/// Runs scripts/postgres.sh with `args`, returning its stdout; a failure fails the test with its output.
pub fn postgres_script(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres.sh");
    let out = std::process::Command::new("bash").arg(script).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "postgres.sh {args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

impl OwnCluster {
    /// A plain cluster on 127.0.0.1.
    pub fn start() -> Self {
        Self::started(&[])
    }

    /// A cluster with TLS on, serving the PEM certificate (chain) `cert` with its key `key`.
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Self {
        Self::started(&["tls", cert.to_str().unwrap(), key.to_str().unwrap()])
    }

    fn started(args: &[&str]) -> Self {
        let out = postgres_script(args);
        let mut lines = out.lines();
        let export = lines.next().expect("the export line");
        let url = export.split_whitespace().nth(1).and_then(|kv| kv.strip_prefix("WASM_HOST_TEST_POSTGRES=")).unwrap();
        OwnCluster { url: url.to_owned(), dir: lines.next().expect("the cluster's directory").to_owned() }
    }

    /// The port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.url.rsplit_once(':').and_then(|(_, rest)| rest.split('/').next()).unwrap().parse().unwrap()
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        postgres_script(&["stop", &self.dir]);
    }
}
