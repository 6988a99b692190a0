//! The PostgreSQL backend: one database shared by every host, for deployments that outgrow one machine's redb
//! file. Same records (the JSON [`crate::Connection`]), same sealed rows and tags as redb (record_auth.rs), so
//! the database and its backups never see a secret in plaintext and a row changed without the identity is
//! refused. Tables are described in schema.rs; the change signal in signal.rs; the operations in ops.rs.
//!
//! The [`crate::Backend`] trait is blocking and its callers may run on a tokio runtime of their own (`serve`, the
//! broker), where `Runtime::block_on` panics. The store therefore owns a small runtime (one worker thread) that
//! drives the database connections, and each call polls its future on the caller's thread with the store's
//! runtime entered: no thread hop per call, and the caller's runtime is never asked to block on itself.

mod location;
mod ops;
mod schema;
mod signal;
mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};

use crate::error::{OpenError, ReadError, WriteError};
use crate::location::StoreLocation;

pub use schema::PG_SCHEMA_VERSION;

/// How long a call waits for a pooled connection (all busy) or for a new one to be made before it fails.
pub const POOL_WAIT: Duration = Duration::from_secs(5);
/// Connections each host keeps to the database at most, unless the URL's `pool_max_size` says otherwise.
pub const POOL_SIZE: usize = 8;

/// A store in a PostgreSQL database, opened from a `postgres://` URL.
pub struct PgStore {
    /// `postgres://USER@HOST:PORT/DATABASE`: what messages name; never the password.
    location: StoreLocation,
    pool: Pool,
    signal: Arc<signal::Signal>,
    /// Dropped last (see `Drop`): the pool's connections and the listener run on it.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("location", &self.location).finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.signal.stop();
        // A runtime dropped inside another one panics; this one's tasks only hold connections, which may close
        // without waiting.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl PgStore {
    /// Connects to the database `url` names (libpq's URL form, with `sslmode`, `sslrootcert` and
    /// `pool_max_size` as location.rs reads them), creates or migrates its tables (schema.rs), and starts
    /// listening for changes. Errors name `postgres://USER@HOST:PORT/DATABASE`, never the password; a server
    /// whose certificate is not trusted is [`OpenError::Untrusted`], one that cannot be reached
    /// [`OpenError::Unavailable`].
    pub fn open(url: &str) -> Result<Self, OpenError> {
        Self::connect(url).map(|(store, _)| store)
    }

    /// `wasm-host store migrate`: opens the store (which brings its tables to [`PG_SCHEMA_VERSION`]), returning it
    /// and the schema version the database had before (0: it had none).
    pub fn migrate(url: &str) -> Result<(Self, u64), OpenError> {
        Self::connect(url)
    }

    fn connect(url: &str) -> Result<(Self, u64), OpenError> {
        let parsed = location::parse(url)?;
        let (config, location) = (parsed.config, StoreLocation::Postgres(parsed.shown));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("wasm-host-postgres")
            .enable_all()
            .build()
            .map_err(|e| OpenError::Io { store: location.clone(), source: e })?;
        let tls = tls::connector(parsed.verify, parsed.root_cert.as_deref())?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(parsed.pool_max_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .expect("a pool with a runtime and timeouts builds");
        let signal = Arc::new(signal::Signal::default());
        let store = PgStore { location, pool, signal, runtime: Some(runtime) };
        let found = store.run(schema::migrate(&store.pool)).map_err(|e| match e {
            schema::MigrateError::Newer(found) => OpenError::NewerSchema {
                store: store.location.clone(),
                found,
                supported: PG_SCHEMA_VERSION,
            },
            schema::MigrateError::Db(fail) => store.open_err(fail),
        })?;
        let first = store.run(signal::read_counter(&store.pool)).map_err(|e| store.open_err(e))?;
        store.signal.seen(first);
        store.signal.set_live(true);
        let runtime = store.runtime.as_ref().expect("set above");
        runtime.spawn(signal::listen(config, tls, store.signal.clone()));
        Ok((store, found))
    }

    /// Polls `f` to completion on this thread, with the store's runtime entered so that the connections it makes
    /// and the timers it sets are driven by that runtime's thread.
    fn run<F: Future>(&self, f: F) -> F::Output {
        let _entered = self.runtime.as_ref().expect("present until drop").enter();
        futures_executor::block_on(f)
    }

    fn open_err(&self, fail: impl Into<Fail>) -> OpenError {
        let store = self.location.clone();
        match fail.into() {
            Fail::Unavailable(detail) => OpenError::Unavailable { store, detail },
            Fail::Refused(detail) => OpenError::Refused { store, detail },
            Fail::Untrusted(detail) => OpenError::Untrusted { store, detail },
            Fail::Database(detail) => OpenError::Postgres { store, detail },
        }
    }

    fn read_err(&self, fail: impl Into<Fail>) -> ReadError {
        let store = self.location.clone();
        match fail.into() {
            Fail::Unavailable(detail) => ReadError::Unavailable { store, detail },
            Fail::Database(detail) | Fail::Refused(detail) | Fail::Untrusted(detail) => {
                ReadError::Database { store, detail }
            }
        }
    }

    fn write_err(&self, fail: impl Into<Fail>) -> WriteError {
        let store = self.location.clone();
        match fail.into() {
            Fail::Unavailable(detail) => WriteError::Unavailable { store, detail },
            Fail::Database(detail) | Fail::Refused(detail) | Fail::Untrusted(detail) => {
                WriteError::Database { store, detail }
            }
        }
    }
}

/// A database failure, sorted into "may work later" and the rest; the text never holds the password (the server
/// never repeats it, and the URL is not part of any error here).
#[derive(Debug)]
pub(crate) enum Fail {
    Unavailable(String),
    /// The server refused the session itself: unknown user, wrong password, no such database (SQLSTATE classes
    /// 28 and 3D). Retrying will not help.
    Refused(String),
    /// TLS failed for good: the server's certificate is not trusted or does not name the host, or the server does
    /// not do TLS while `sslmode` requires it.
    Untrusted(String),
    Database(String),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        classify(&e)
    }
}

impl From<PoolError> for Fail {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => classify(&e),
            PoolError::Timeout(_) => Fail::Unavailable(format!(
                "no database connection could be had within {} s (all of this host's pooled connections are busy: \
                 pool_max_size in the URL, {POOL_SIZE} when not given; or the database does not answer)",
                POOL_WAIT.as_secs()
            )),
            other => Fail::Database(other.to_string()),
        }
    }
}

/// Connection failures, a closed connection, the server shutting down or starting (SQLSTATE classes 08 and 57)
/// and too many connections (53300) are `Unavailable`; the rest (a refused statement) are `Database`.
fn classify(e: &tokio_postgres::Error) -> Fail {
    let text = one_line(e);
    if tls_refused(e) {
        return Fail::Untrusted(text);
    }
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            if code.starts_with("08") || code.starts_with("57") || code == "53300" {
                Fail::Unavailable(text)
            } else if code.starts_with("28") || code.starts_with("3D") {
                Fail::Refused(text)
            } else {
                Fail::Database(text)
            }
        }
        None if e.is_closed() || std::error::Error::source(e).is_some() => Fail::Unavailable(text),
        None => Fail::Database(text),
    }
}

/// Whether `e` is a TLS failure a retry will not change: rustls refused the server's certificate, or the server
/// answered that it does not do TLS. rustls's error reaches us inside an `io::Error`, whose `source()` skips it,
/// hence `get_ref`; the driver's "does not support TLS" is a private string error, so it is matched by its text.
fn tls_refused(e: &tokio_postgres::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        let inner = c.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        let inner = inner.map(|i| i as &(dyn std::error::Error + 'static));
        for candidate in [Some(c), inner].into_iter().flatten() {
            if let Some(rustls::Error::InvalidCertificate(_)) = candidate.downcast_ref::<rustls::Error>() {
                return true;
            }
        }
        if c.to_string() == "server does not support TLS" {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The error and its causes on one line, each said once.
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
