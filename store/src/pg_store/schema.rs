//! The tables of a PostgreSQL store and their versioned migrations.
//!
//! - `wasm_host_meta` (key, value): `schema_version` and `recipient` (the age public key every secret is sealed to);
//! - `wasm_host_connections` (name, record, tag): the JSON record exactly as written and its HMAC tag
//!   (record_auth.rs), so new record fields flow through untouched;
//! - `wasm_host_revisions` (name, revision): outlives its connection, so a revision is never reused;
//! - `wasm_host_secrets` (name, field, sealed): each age ciphertext, bound to its record as in redb;
//! - `wasm_host_leases` (name, holder, until): the refresh lease, timed by the database's clock;
//! - `wasm_host_generation` (one row): the change counter that signal.rs watches;
//! - `wasm_host_admin_tokens` (name, sha256, record, tag), from version 2: each admin token's hash and JSON record
//!   with its HMAC tag (admin_token.rs); never a token;
//! - `wasm_host_audit` (id, record), from version 3: the admin API's audit log (audit.rs), one JSON entry a row;
//! - `wasm_host_authorization_requests` (state_sha256, record, sealed, tag, expires_at, used_at), from version 4:
//!   pending remote authorizations (authorization_request.rs), found by the SHA-256 of their `state`.
//!
//! Migrations run in one transaction under a transaction-scoped advisory lock, so hosts starting together apply
//! each once; a database whose schema is newer than this build's is refused.

use deadpool_postgres::Pool;

use super::Fail;

/// The schema this build reads and writes. A later release that changes a table adds a migration and bumps it.
pub const PG_SCHEMA_VERSION: u64 = 4;

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: [&str; PG_SCHEMA_VERSION as usize] = [r#"
CREATE TABLE wasm_host_connections (name text PRIMARY KEY, record bytea NOT NULL, tag bytea NOT NULL);
CREATE TABLE wasm_host_revisions (name text PRIMARY KEY, revision bigint NOT NULL);
CREATE TABLE wasm_host_secrets (
    name text NOT NULL, field text NOT NULL, sealed bytea NOT NULL, PRIMARY KEY (name, field));
CREATE TABLE wasm_host_leases (name text PRIMARY KEY, holder text NOT NULL, until timestamptz NOT NULL);
CREATE TABLE wasm_host_generation (id int PRIMARY KEY CHECK (id = 1), value bigint NOT NULL);
INSERT INTO wasm_host_generation VALUES (1, 0);
"#, r#"
CREATE TABLE wasm_host_admin_tokens (
    name text PRIMARY KEY, sha256 text NOT NULL UNIQUE, record bytea NOT NULL, tag bytea NOT NULL);
"#, r#"
CREATE TABLE wasm_host_audit (id bigserial PRIMARY KEY, record bytea NOT NULL);
"#, r#"
CREATE TABLE wasm_host_authorization_requests (
    state_sha256 text PRIMARY KEY, record bytea NOT NULL, sealed bytea NOT NULL, tag bytea NOT NULL,
    expires_at bigint NOT NULL, used_at bigint);
CREATE INDEX wasm_host_authorization_requests_expiry ON wasm_host_authorization_requests (expires_at);
"#];

/// An arbitrary constant naming this store's migration lock among the database's advisory locks.
const MIGRATION_LOCK: i64 = 0x7761_736d_686f_7374;

pub(super) enum MigrateError {
    Newer(u64),
    Db(Fail),
}

impl<E: Into<Fail>> From<E> for MigrateError {
    fn from(e: E) -> Self {
        MigrateError::Db(e.into())
    }
}

/// Brings the schema to [`PG_SCHEMA_VERSION`]; returns the version found (0 for an empty database).
pub(super) async fn migrate(pool: &Pool) -> Result<u64, MigrateError> {
    let mut client = pool.get().await?;
    let found = version(&client).await?;
    if found == Some(PG_SCHEMA_VERSION) {
        return Ok(PG_SCHEMA_VERSION);
    }
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS wasm_host_meta (key text PRIMARY KEY, value text NOT NULL)").await?;
    // Read again under the lock: another host may have migrated meanwhile.
    let found = version(&tx).await?.unwrap_or(0);
    if found > PG_SCHEMA_VERSION {
        return Err(MigrateError::Newer(found));
    }
    for migration in &MIGRATIONS[found as usize..] {
        tx.batch_execute(migration).await?;
    }
    tx.execute(
        "INSERT INTO wasm_host_meta VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = $1",
        &[&PG_SCHEMA_VERSION.to_string()],
    )
    .await?;
    tx.commit().await?;
    Ok(found)
}

/// The schema version recorded, `None` when the database has no store tables; a newer one is refused.
async fn version(client: &impl deadpool_postgres::GenericClient) -> Result<Option<u64>, MigrateError> {
    let exists = client.query_one("SELECT to_regclass('wasm_host_meta') IS NOT NULL", &[]).await?.get::<_, bool>(0);
    if !exists {
        return Ok(None);
    }
    let row = client.query_opt("SELECT value FROM wasm_host_meta WHERE key = 'schema_version'", &[]).await?;
    let found = row.and_then(|r| r.get::<_, String>(0).parse::<u64>().ok());
    match found {
        Some(v) if v > PG_SCHEMA_VERSION => Err(MigrateError::Newer(v)),
        other => Ok(other),
    }
}
