//! The redb backend: one file with typed tables, its schema version, and every read and write of connections and
//! their sealed secrets.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use redb::{ConcurrencyMode, Database, ReadableDatabase, ReadableTable, TableDefinition, ReadableTableMetadata};
use secrecy::{ExposeSecret, SecretString};

use crate::admin_token::AdminToken;
use crate::authorization_request::{self as authz, PendingAuthorization, Taken};
use crate::audit::AuditEntry;
use crate::backend::{
    now_millis, Backend, ImportOutcome, Lease, LeaseWait, NewTokens, RefreshGrant, Resealed, SealedConnection,
    TokenSnapshot,
};
use crate::generation::Generation;
use crate::lease_lock::LeaseLocks;
use crate::location::StoreLocation;
use crate::error::{OpenError, ReadError, WriteError};
use crate::keys::{Keys, SecretField};
use crate::record::{now_unix, Connection, NewConnection, ProtocolOptions, Status};
use crate::sealed_rows::{apply_tokens, view, SealedRows};

/// The layout this build reads and writes. A later release that changes a table bumps it and migrates.
/// Version 2 added [`TAGS`]; a version-1 store is upgraded (its records tagged) by [`Backend::upgrade`].
pub const SCHEMA_VERSION: u64 = 2;

/// Store-wide settings: `schema_version`, and `recipient`, the age public key every secret is sealed to.
pub const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// Connection name → JSON [`Connection`] (no secrets).
pub const CONNECTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("connections");
/// (connection name, field) → age ciphertext of the bound plaintext (see [`Keys::seal`]).
pub const SECRETS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("secrets");
/// Connection name → revision, kept apart so a process can check for changes without decoding a record.
pub const REVISIONS: TableDefinition<&str, u64> = TableDefinition::new("revisions");
/// Connection name → refresh lease: `<holder>\n<until, Unix milliseconds>`, as wasm-host wrote it before its
/// leases became lock files beside the store (lease_lock.rs). No longer read or written; kept so the schema (and
/// a store's tables) stay as they are.
pub const LEASES: TableDefinition<&str, &str> = TableDefinition::new("leases");
/// Connection name → HMAC-SHA256 tag over its name, revision, record and sealed rows (see record_auth.rs), made
/// with a key derived from the identity: every read that acts on a connection checks it.
pub const TAGS: TableDefinition<&str, &[u8]> = TableDefinition::new("record_tags");

/// The deadline a write that ends a lease states while it commits (a hint only: see lease_lock.rs).
const WRITE_LEASE_MS: i64 = 10_000;

/// Admin token name → (JSON [`AdminToken`] record, its HMAC-SHA256 tag). Never the token: only its hash.
/// Added after schema 2 without a bump: a store that lacks the table has no admin token, and the first one made
/// creates it.
pub const ADMIN_TOKENS: TableDefinition<&str, (&[u8], &[u8])> = TableDefinition::new("admin_tokens");

/// SHA-256 of a pending remote authorization's `state` → (JSON record, sealed nonce and verifier, HMAC tag,
/// `expires_at`, `used_at` (0 while unused)), see authorization_request.rs. Added without a schema bump, like
/// [`ADMIN_TOKENS`]: made by the first request kept.
pub const AUTHORIZATION_REQUESTS: TableDefinition<&str, (&[u8], &[u8], &[u8], i64, i64)> =
    TableDefinition::new("authorization_requests");

type AuthorizationTable<'t> = redb::Table<'t, &'static str, (&'static [u8], &'static [u8], &'static [u8], i64, i64)>;

/// Removes the rows that expired more than [`crate::AUTHORIZATION_PURGE_AFTER`] seconds before `now`.
fn purge_authorization_requests(table: &mut AuthorizationTable<'_>, now: i64) -> Result<(), redb::StorageError> {
    table.retain(|_, (_, _, _, expires_at, _)| expires_at.saturating_add(crate::AUTHORIZATION_PURGE_AFTER) >= now)
}

/// Audit entry number (1, 2, ...) → JSON [`AuditEntry`]. Like [`ADMIN_TOKENS`], added without a schema bump: the
/// first entry creates it.
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

/// A table added without a schema bump ([`ADMIN_TOKENS`], [`AUDIT`]): `None` in a store made before it existed.
fn optional_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, redb::Error> {
    match txn.open_table(table) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(x) => Err(x.into()),
    }
}

fn sealed_rows<T>(secrets: &T, name: &str) -> Result<SealedRows, redb::Error>
where
    T: ReadableTable<(&'static str, &'static str), &'static [u8]>,
{
    let mut rows: SealedRows = Default::default();
    for (slot, field) in rows.iter_mut().zip(SecretField::ALL) {
        *slot = secrets.get((name, field.as_str()))?.map(|v| v.value().to_vec());
    }
    Ok(rows)
}

/// Tags connection `name` as it now stands in `txn`: `record` as stored, and the sealed rows read back from
/// `secrets`. Every write that leaves a connection in the store ends here.
fn write_tag<T>(
    tags: &mut redb::Table<&'static str, &'static [u8]>,
    secrets: &T,
    name: &str,
    revision: u64,
    record: &[u8],
    keys: &Keys,
) -> Result<(), redb::Error>
where
    T: ReadableTable<(&'static str, &'static str), &'static [u8]>,
{
    let rows = sealed_rows(secrets, name)?;
    let tag = keys.record_tag(&view(name, revision, record, &rows));
    tags.insert(name, tag.as_slice())?;
    Ok(())
}

/// The embedded backend: one redb file (see the module description), shared by the processes of one machine.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
    generation: Option<Generation>,
    leases: LeaseLocks,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens the store at `path`, creating it (0600, in a 0700 directory) when missing. Several processes may
    /// have it open at once, each writing in turn.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let path = path.to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| OpenError::CreateDir { path: dir.into(), source })?;
        }
        let dir = path.parent().unwrap_or(Path::new(""));
        crate::check_private_dir(dir).map_err(|problem| OpenError::UnsafeDirectory { store: StoreLocation::File(path.clone()), problem })?;
        if !path.exists() {
            initialize(&path)?;
        }
        // redb creates files with the process umask; make it ours first so no secret-bearing file is ever 0644.
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| OpenError::Io { store: StoreLocation::File(path.clone()), source })?;
        let meta = file.metadata().map_err(|source| OpenError::Io { store: StoreLocation::File(path.clone()), source })?;
        if meta.permissions().mode() & 0o077 != 0 {
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(|source| OpenError::Io { store: StoreLocation::File(path.clone()), source })?;
        }
        drop(file);
        let db = Database::builder()
            .set_concurrency_mode(ConcurrencyMode::MultiWriter)
            .create(&path)
            .map_err(|e| open_error(&path, e))?;
        let generation = Generation::open(&path);
        let leases = LeaseLocks::new(&path);
        let store = RedbStore { db, path, generation, leases };
        store.check_schema()?;
        Ok(store)
    }

    fn check_schema(&self) -> Result<(), OpenError> {
        let err = |e: redb::Error| OpenError::Database { store: self.location(), source: e };
        let found = {
            let txn = self.db.begin_read().map_err(|e| err(e.into()))?;
            match txn.open_table(META) {
                Ok(t) => t.get("schema_version").map_err(|e| err(e.into()))?.map(|v| v.value().to_owned()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(err(e.into())),
            }
        };
        match found {
            Some(v) => {
                let found = v.parse::<u64>().map_err(|_| OpenError::Corrupted {
                    store: self.location(),
                    detail: format!("schema version `{v}` is not a number"),
                })?;
                if found > SCHEMA_VERSION {
                    return Err(OpenError::NewerSchema { store: self.location(), found, supported: SCHEMA_VERSION });
                }
                Ok(())
            }
            None => {
                let txn = self.db.begin_write().map_err(|e| err(e.into()))?;
                {
                    let mut meta = txn.open_table(META).map_err(|e| err(e.into()))?;
                    // Another process may have initialised it between our read and this write.
                    if meta.get("schema_version").map_err(|e| err(e.into()))?.is_none() {
                        meta.insert("schema_version", SCHEMA_VERSION.to_string().as_str())
                            .map_err(|e| err(e.into()))?;
                    }
                    txn.open_table(CONNECTIONS).map_err(|e| err(e.into()))?;
                    txn.open_table(SECRETS).map_err(|e| err(e.into()))?;
                    txn.open_table(REVISIONS).map_err(|e| err(e.into()))?;
                    txn.open_table(LEASES).map_err(|e| err(e.into()))?;
                    txn.open_table(TAGS).map_err(|e| err(e.into()))?;
                    txn.open_table(ADMIN_TOKENS).map_err(|e| err(e.into()))?;
                }
                txn.commit().map_err(|e| err(e.into()))
            }
        }
    }

    fn read_err(&self) -> impl Fn(redb::Error) -> ReadError + '_ {
        |source| ReadError::Storage { store: self.location(), source }
    }

    fn write_err(&self) -> impl Fn(redb::Error) -> WriteError + '_ {
        |source| WriteError::Storage { store: self.location(), source }
    }

    fn recipient_and_schema(&self) -> Result<(Option<String>, Option<String>), ReadError> {
        let e = self.read_err();
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let meta = txn.open_table(META).map_err(|x| e(x.into()))?;
        let get = |k: &str| meta.get(k).map(|v| v.map(|v| v.value().to_owned()));
        Ok((get("recipient").map_err(|x| e(x.into()))?, get("schema_version").map_err(|x| e(x.into()))?))
    }

    /// Inside `txn`: whether the store is still at schema 1 (another process may have upgraded it meanwhile).
    fn needs_upgrade_in(&self, txn: &redb::WriteTransaction) -> Result<bool, redb::Error> {
        let meta = txn.open_table(META)?;
        Ok(!meta.get("schema_version")?.is_some_and(|v| v.value() == SCHEMA_VERSION.to_string()))
    }

    /// Inside `txn`: tags every connection of a schema-1 store and records schema 2; `None` when the store is
    /// already current (another process upgraded it first).
    fn upgrade_in(&self, txn: &redb::WriteTransaction, keys: &Keys) -> Result<Option<usize>, redb::Error> {
        let mut meta = txn.open_table(META)?;
        if meta.get("schema_version")?.is_some_and(|v| v.value() == SCHEMA_VERSION.to_string()) {
            return Ok(None);
        }
        let conns = txn.open_table(CONNECTIONS)?;
        let secrets = txn.open_table(SECRETS)?;
        let mut tags = txn.open_table(TAGS)?;
        let mut count = 0;
        for row in conns.iter()? {
            let (name, record) = row?;
            let revision = match Connection::decode(record.value()) {
                Ok(conn) => conn.revision,
                // Left untagged: reading it reports it (a record that does not decode is reported as damaged).
                Err(_) => continue,
            };
            write_tag(&mut tags, &secrets, name.value(), revision, record.value(), keys)?;
            count += 1;
        }
        meta.insert("schema_version", SCHEMA_VERSION.to_string().as_str())?;
        Ok(Some(count))
    }

    /// Inside a write transaction that seals with `keys`: the store's recipient must be theirs (recorded here on
    /// first use). Checked in the same transaction as the write, so a process that loaded its identity before a
    /// `store rekey` committed is refused instead of sealing a secret to the retired key.
    fn claim_recipient(&self, txn: &redb::WriteTransaction, keys: &Keys) -> Result<(), WriteError> {
        let e = self.write_err();
        let mine = keys.recipient();
        let mut meta = txn.open_table(META).map_err(|x| e(x.into()))?;
        let stored = meta.get("recipient").map_err(|x| e(x.into()))?.map(|v| v.value().to_owned());
        match stored {
            Some(stored) if stored != mine => Err(self.wrong_identity(stored, mine)),
            Some(_) => Ok(()),
            None => {
                meta.insert("recipient", mine.as_str()).map_err(|x| e(x.into()))?;
                Ok(())
            }
        }
    }

    fn wrong_identity(&self, store_recipient: String, identity_recipient: String) -> WriteError {
        WriteError::WrongIdentity { store: self.location(), store_recipient, identity_recipient }
    }

    fn decode(&self, name: &str, bytes: &[u8]) -> Result<Connection, ReadError> {
        Connection::decode(bytes).map_err(|e| ReadError::Corrupt {
            store: self.location(),
            name: name.to_owned(),
            detail: e.to_string(),
        })
    }

    /// A write that ends `holder`'s lease is made under it: `holder` has it (or takes it now), or the write is
    /// refused with [`WriteError::Changed`], as another holder may be refreshing from the same grant.
    fn hold_for_write(&self, name: &str, holder: Option<&str>) -> Result<(), WriteError> {
        match holder.map(|holder| self.try_lease(name, holder, WRITE_LEASE_MS)).transpose()? {
            Some(Lease::Held { .. }) => Err(WriteError::Changed(name.to_owned())),
            _ => Ok(()),
        }
    }

    /// Ends `holder`'s lease once the write that ends it is committed (never before: another process must not
    /// refresh from what that write replaces). A write refused or failed keeps it, for the holder to retry.
    fn release_after_commit(&self, name: &str, holder: Option<&str>) {
        if let Some(holder) = holder {
            self.leases.release(name, holder);
        }
    }

    /// Commits a change to connection data, then tells other processes through the generation counter.
    fn commit_change(&self, txn: redb::WriteTransaction) -> Result<(), redb::CommitError> {
        txn.commit()?;
        if let Some(g) = &self.generation {
            g.bump();
        }
        Ok(())
    }

    /// Decodes the stored `record` of `name` and checks, in constant time, that its tag covers exactly it, its
    /// revision (which must also be the one the revisions table holds) and the sealed rows in `secrets`.
    fn verified_in<S, T>(
        &self,
        name: &str,
        record: &[u8],
        stored_revision: Option<u64>,
        secrets: &S,
        tags: &T,
        keys: &Keys,
    ) -> Result<Connection, ReadError>
    where
        S: ReadableTable<(&'static str, &'static str), &'static [u8]>,
        T: ReadableTable<&'static str, &'static [u8]>,
    {
        let conn = self.decode(name, record)?;
        self.verify_decoded(name, record, &conn, stored_revision, secrets, tags, keys)?;
        Ok(conn)
    }

    /// [`RedbStore::verified_in`] for a record the caller decoded already.
    #[allow(clippy::too_many_arguments)]
    fn verify_decoded<S, T>(
        &self,
        name: &str,
        record: &[u8],
        conn: &Connection,
        stored_revision: Option<u64>,
        secrets: &S,
        tags: &T,
        keys: &Keys,
    ) -> Result<(), ReadError>
    where
        S: ReadableTable<(&'static str, &'static str), &'static [u8]>,
        T: ReadableTable<&'static str, &'static [u8]>,
    {
        let e = self.read_err();
        let tampered = || ReadError::Tampered { store: self.location(), name: name.to_owned() };
        let rows = sealed_rows(secrets, name).map_err(&e)?;
        let tag = tags.get(name).map_err(|x| e(x.into()))?.ok_or_else(tampered)?;
        if conn.name != name
            || stored_revision != Some(conn.revision)
            || !keys.record_tag_matches(&view(name, conn.revision, record, &rows), tag.value())
        {
            return Err(tampered());
        }
        Ok(())
    }

    /// The record of `name` as of `txn`, authenticated with `keys` (see [`RedbStore::verified_in`]).
    fn connection_in(&self, txn: &redb::ReadTransaction, name: &str, keys: &Keys) -> Result<Option<Connection>, ReadError> {
        let e = self.read_err();
        let conns = txn.open_table(CONNECTIONS).map_err(|x| e(x.into()))?;
        let Some(row) = conns.get(name).map_err(|x| e(x.into()))? else { return Ok(None) };
        let revision = txn.open_table(REVISIONS).map_err(|x| e(x.into()))?.get(name).map_err(|x| e(x.into()))?.map(|v| v.value());
        let secrets = txn.open_table(SECRETS).map_err(|x| e(x.into()))?;
        let tags = self.tags_in(txn)?;
        self.verified_in(name, row.value(), revision, &secrets, &tags, keys).map(Some)
    }

    /// The tags table; a store that has none was written by an older wasm-host and not yet upgraded.
    fn tags_in(&self, txn: &redb::ReadTransaction) -> Result<redb::ReadOnlyTable<&'static str, &'static [u8]>, ReadError> {
        txn.open_table(TAGS).map_err(|x| match x {
            redb::TableError::TableDoesNotExist(_) => ReadError::NotUpgraded { store: self.location() },
            x => self.read_err()(x.into()),
        })
    }

    fn update(
        &self,
        name: &str,
        holder: Option<&str>,
        expect_revision: Option<u64>,
        keys: &Keys,
        change: impl FnOnce(&mut Connection),
        drop_secrets: &[SecretField],
    ) -> Result<(), WriteError> {
        self.update_with(name, holder, expect_revision, keys, change, drop_secrets, None).map(|_| ())
    }

    /// [`RedbStore::update`] that may also store one sealed secret, returning the record as written.
    #[allow(clippy::too_many_arguments)]
    fn update_with(
        &self,
        name: &str,
        holder: Option<&str>,
        expect_revision: Option<u64>,
        keys: &Keys,
        change: impl FnOnce(&mut Connection),
        drop_secrets: &[SecretField],
        put: Option<(SecretField, &[u8])>,
    ) -> Result<Connection, WriteError> {
        let e = self.write_err();
        self.hold_for_write(name, holder)?;
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        self.claim_recipient(&txn, keys)?;
        expect_unchanged(&txn, name, expect_revision).map_err(|x| x.into_write(&e))?;
        let stored_revision = stored_revision(&txn, name).map_err(&e)?;
        let conn = {
            let mut conns = txn.open_table(CONNECTIONS).map_err(|x| e(x.into()))?;
            let mut secrets = txn.open_table(SECRETS).map_err(|x| e(x.into()))?;
            let mut tags = txn.open_table(TAGS).map_err(|x| e(x.into()))?;
            let mut conn = match conns.get(name).map_err(|x| e(x.into()))? {
                Some(v) => self.verified_in(name, v.value(), stored_revision, &secrets, &tags, keys)?,
                None => return Err(WriteError::NotFound(name.to_owned())),
            };
            change(&mut conn);
            conn.updated_at = now_unix();
            for field in drop_secrets {
                secrets.remove((name, field.as_str())).map_err(|x| e(x.into()))?;
            }
            if let Some((field, sealed)) = put {
                secrets.insert((name, field.as_str()), sealed).map_err(|x| e(x.into()))?;
            }
            conn.revision = bump_revision(&txn, name).map_err(&e)?;
            let json = conn.encode();
            conns.insert(name, json.as_slice()).map_err(|x| e(x.into()))?;
            write_tag(&mut tags, &secrets, name, conn.revision, &json, keys).map_err(&e)?;
            conn
        };
        self.commit_change(txn).map_err(|x| e(x.into()))?;
        self.release_after_commit(name, holder);
        Ok(conn)
    }

    /// Every connection's name, stored record and stored revision, in `txn`.
    fn records_in(&self, txn: &redb::WriteTransaction) -> Result<Vec<(String, Vec<u8>, Option<u64>)>, redb::Error> {
        let conns = txn.open_table(CONNECTIONS)?;
        let revs = txn.open_table(REVISIONS)?;
        let mut out = Vec::new();
        for row in conns.iter()? {
            let (name, record) = row?;
            let revision = revs.get(name.value())?.map(|v| v.value());
            out.push((name.value().to_owned(), record.value().to_vec(), revision));
        }
        Ok(out)
    }

    fn field(&self, name: &str, field: &str) -> Result<SecretField, ReadError> {
        SecretField::parse(field).ok_or_else(|| ReadError::Corrupt {
            store: self.location(),
            name: name.to_owned(),
            detail: format!("unknown secret field `{}`", crate::printable(field)),
        })
    }

    /// Runs redb's full integrity check (used by tests and, later, `store check`).
    pub fn check_integrity(path: &Path) -> Result<bool, OpenError> {
        let mut db = Database::builder()
            .set_concurrency_mode(ConcurrencyMode::MultiWriter)
            .open(path)
            .map_err(|e| open_error(path, e))?;
        db.check_integrity().map_err(|e| open_error(path, e))
    }
}

impl RedbStore {
    /// Every admin token row (name, record, tag) in name order; none in a store made before the table existed.
    fn admin_token_rows(&self) -> Result<Vec<(String, Vec<u8>, Vec<u8>)>, ReadError> {
        let e = self.read_err();
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let Some(table) = optional_table(&txn, ADMIN_TOKENS).map_err(&e)? else { return Ok(vec![]) };
        let mut out = Vec::new();
        for row in table.iter().map_err(|x| e(x.into()))? {
            let (name, value) = row.map_err(|x| e(x.into()))?;
            let (record, tag) = value.value();
            out.push((name.value().to_owned(), record.to_vec(), tag.to_vec()));
        }
        Ok(out)
    }

    fn decode_admin_token(&self, name: &str, record: &[u8]) -> Result<AdminToken, ReadError> {
        AdminToken::decode(record).map_err(|x| ReadError::CorruptAdminToken {
            store: self.location(),
            name: name.to_owned(),
            detail: x.to_string(),
        })
    }
}

impl Backend for RedbStore {
    fn location(&self) -> StoreLocation {
        StoreLocation::File(self.path.clone())
    }

    fn recipient(&self) -> Result<Option<String>, ReadError> {
        let e = self.read_err();
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let meta = txn.open_table(META).map_err(|x| e(x.into()))?;
        Ok(meta.get("recipient").map_err(|x| e(x.into()))?.map(|v| v.value().to_owned()))
    }

    fn bind_keys(&self, keys: &Keys) -> Result<(), WriteError> {
        let mine = keys.recipient();
        let (stored, schema) = self.recipient_and_schema()?;
        let current = schema.as_deref() == Some(SCHEMA_VERSION.to_string().as_str());
        match stored {
            Some(stored) if stored != mine => return Err(self.wrong_identity(stored, mine)),
            Some(_) if current => return Ok(()),
            _ => {}
        }
        let e = self.write_err();
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        self.claim_recipient(&txn, keys)?;
        if !current {
            let connections = txn.open_table(CONNECTIONS).map_err(|x| e(x.into()))?.len().map_err(|x| e(x.into()))?;
            if connections > 0 && self.needs_upgrade_in(&txn).map_err(&e)? {
                return Err(WriteError::NotUpgraded { store: self.location(), connections });
            }
            self.upgrade_in(&txn, keys).map_err(&e)?;
        }
        txn.commit().map_err(|x| e(x.into()))
    }

    fn upgrade(&self, keys: &Keys) -> Result<Option<Vec<Connection>>, WriteError> {
        let e = self.write_err();
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        self.claim_recipient(&txn, keys)?;
        if !self.needs_upgrade_in(&txn).map_err(&e)? {
            return Ok(None);
        }
        self.upgrade_in(&txn, keys).map_err(&e)?;
        let mut vouched = Vec::new();
        {
            let conns = txn.open_table(CONNECTIONS).map_err(|x| e(x.into()))?;
            for row in conns.iter().map_err(|x| e(x.into()))? {
                let (name, record) = row.map_err(|x| e(x.into()))?;
                if let Ok(conn) = self.decode(name.value(), record.value()) {
                    vouched.push(conn);
                }
            }
        }
        txn.commit().map_err(|x| e(x.into()))?;
        Ok(Some(vouched))
    }

    fn get(&self, name: &str) -> Result<Option<Connection>, ReadError> {
        let e = self.read_err();
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let table = txn.open_table(CONNECTIONS).map_err(|x| e(x.into()))?;
        let row = table.get(name).map_err(|x| e(x.into()))?;
        row.map(|v| self.decode(name, v.value())).transpose()
    }

    fn list(&self) -> Result<Vec<Connection>, ReadError> {
        let e = self.read_err();
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let table = txn.open_table(CONNECTIONS).map_err(|x| e(x.into()))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|x| e(x.into()))? {
            let (k, v) = row.map_err(|x| e(x.into()))?;
            out.push(self.decode(k.value(), v.value())?);
        }
        Ok(out)
    }

    fn generation(&self) -> Option<u64> {
        self.generation.as_ref().map(Generation::load)
    }

    fn revision(&self, name: &str) -> Result<Option<u64>, ReadError> {
        let e = self.read_err();
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let table = txn.open_table(REVISIONS).map_err(|x| e(x.into()))?;
        Ok(table.get(name).map_err(|x| e(x.into()))?.map(|v| v.value()))
    }

    fn create_with(
        &self,
        new: NewConnection,
        options: ProtocolOptions,
        client_secret: &SecretString,
        keys: &Keys,
    ) -> Result<Connection, WriteError> {
        let sealed = keys.seal(&new.name, SecretField::ClientSecret, client_secret.expose_secret().as_bytes())?;
        let mut conn = Connection::created(new, options, now_unix());
        let e = self.write_err();
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        self.claim_recipient(&txn, keys)?;
        {
            let mut conns = txn.open_table(CONNECTIONS).map_err(|x| e(x.into()))?;
            if conns.get(conn.name.as_str()).map_err(|x| e(x.into()))?.is_some() {
                return Err(WriteError::AlreadyExists(conn.name));
            }
            // Counting on from a deleted connection of the same name, never back to 1.
            conn.revision = bump_revision(&txn, &conn.name).map_err(&e)?;
            let json = conn.encode();
            conns.insert(conn.name.as_str(), json.as_slice()).map_err(|x| e(x.into()))?;
            let mut secrets = txn.open_table(SECRETS).map_err(|x| e(x.into()))?;
            // A crash between an old delete and this create cannot leave rows behind, but be strict anyway.
            for field in SecretField::ALL {
                secrets.remove((conn.name.as_str(), field.as_str())).map_err(|x| e(x.into()))?;
            }
            secrets
                .insert((conn.name.as_str(), SecretField::ClientSecret.as_str()), sealed.as_slice())
                .map_err(|x| e(x.into()))?;
            let mut tags = txn.open_table(TAGS).map_err(|x| e(x.into()))?;
            write_tag(&mut tags, &secrets, &conn.name, conn.revision, &json, keys).map_err(&e)?;
        }
        self.commit_change(txn).map_err(|x| e(x.into()))?;
        Ok(conn)
    }

    fn delete(&self, name: &str) -> Result<(), WriteError> {
        let e = self.write_err();
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        {
            let mut conns = txn.open_table(CONNECTIONS).map_err(|x| e(x.into()))?;
            if conns.remove(name).map_err(|x| e(x.into()))?.is_none() {
                return Err(WriteError::NotFound(name.to_owned()));
            }
            let mut secrets = txn.open_table(SECRETS).map_err(|x| e(x.into()))?;
            for field in SecretField::ALL {
                secrets.remove((name, field.as_str())).map_err(|x| e(x.into()))?;
            }
            txn.open_table(TAGS).map_err(|x| e(x.into()))?.remove(name).map_err(|x| e(x.into()))?;
            // The revision outlives the record and keeps counting, so a re-created connection of the same name
            // is never mistaken for the deleted one by a process that cached its tokens.
            bump_revision(&txn, name).map_err(&e)?;
        }
        self.commit_change(txn).map_err(|x| e(x.into()))
    }

    fn write_tokens(
        &self,
        name: &str,
        tokens: NewTokens<'_>,
        keys: &Keys,
        expect_revision: Option<u64>,
    ) -> Result<Connection, WriteError> {
        let e = self.write_err();
        let holder = tokens.release_lease;
        self.hold_for_write(name, holder)?;
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        self.claim_recipient(&txn, keys)?;
        expect_unchanged(&txn, name, expect_revision).map_err(|x| x.into_write(&e))?;
        let stored_revision = stored_revision(&txn, name).map_err(&e)?;
        let conn = {
            let mut conns = txn.open_table(CONNECTIONS).map_err(|x| e(x.into()))?;
            let mut secrets = txn.open_table(SECRETS).map_err(|x| e(x.into()))?;
            let mut tags = txn.open_table(TAGS).map_err(|x| e(x.into()))?;
            let mut conn = match conns.get(name).map_err(|x| e(x.into()))? {
                Some(v) => self.verified_in(name, v.value(), stored_revision, &secrets, &tags, keys)?,
                None => return Err(WriteError::NotFound(name.to_owned())),
            };
            let before = sealed_rows(&secrets, name).map_err(&e)?;
            let mut rows = before.clone();
            apply_tokens(name, &mut conn, &mut rows, tokens, keys, expect_revision.is_some())?;
            // Only the rows that changed are written (a refresh leaves the client secret and credentials alone).
            for ((field, was), now) in SecretField::ALL.iter().zip(&before).zip(&rows) {
                match now {
                    Some(row) if was.as_ref() != Some(row) => {
                        secrets.insert((name, field.as_str()), row.as_slice()).map_err(|x| e(x.into()))?;
                    }
                    None if was.is_some() => {
                        secrets.remove((name, field.as_str())).map_err(|x| e(x.into()))?;
                    }
                    _ => {}
                }
            }
            conn.revision = bump_revision(&txn, name).map_err(&e)?;
            let json = conn.encode();
            conns.insert(name, json.as_slice()).map_err(|x| e(x.into()))?;
            write_tag(&mut tags, &secrets, name, conn.revision, &json, keys).map_err(&e)?;
            conn
        };
        self.commit_change(txn).map_err(|x| e(x.into()))?;
        self.release_after_commit(name, holder);
        Ok(conn)
    }

    fn secret(&self, name: &str, field: SecretField, keys: &Keys) -> Result<Option<SecretString>, ReadError> {
        let e = self.read_err();
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let secrets = txn.open_table(SECRETS).map_err(|x| e(x.into()))?;
        let row = secrets.get((name, field.as_str())).map_err(|x| e(x.into()))?;
        // Opened first, so a row of another identity or another record is reported as that; then the
        // connection's tag must cover it.
        let Some(value) = row.map(|v| keys.open_string(name, field, v.value())).transpose()? else { return Ok(None) };
        match self.connection_in(&txn, name, keys)? {
            Some(_) => Ok(Some(value)),
            None => Err(ReadError::Tampered { store: self.location(), name: name.to_owned() }),
        }
    }

    fn connection(&self, name: &str, keys: &Keys) -> Result<Option<Connection>, ReadError> {
        let e = self.read_err();
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        self.connection_in(&txn, name, keys)
    }

    fn token_snapshot(&self, name: &str, keys: &Keys) -> Result<Option<(Connection, Option<TokenSnapshot>)>, ReadError> {
        let e = self.read_err();
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let conns = txn.open_table(CONNECTIONS).map_err(|x| e(x.into()))?;
        let Some(record) = conns.get(name).map_err(|x| e(x.into()))? else { return Ok(None) };
        let connection = self.decode(name, record.value())?;
        let secrets = txn.open_table(SECRETS).map_err(|x| e(x.into()))?;
        // The tag is checked after opening, so a row of another record or identity is reported as that; nothing
        // is returned before the tag matches.
        let verify = |connection: &Connection| {
            let revision = txn.open_table(REVISIONS).map_err(|x| e(x.into()))?.get(name).map_err(|x| e(x.into()))?.map(|v| v.value());
            let tags = self.tags_in(&txn)?;
            self.verify_decoded(name, record.value(), connection, revision, &secrets, &tags, keys)
        };
        let handed_out = connection.status == Status::Authorized && connection.token.is_some();
        let access = match secrets.get((name, SecretField::AccessToken.as_str())).map_err(|x| e(x.into()))? {
            Some(v) if handed_out => keys.open_string(name, SecretField::AccessToken, v.value())?,
            _ => {
                verify(&connection)?;
                return Ok(Some((connection, None)));
            }
        };
        let refresh = if connection.expose_refresh_token {
            secrets
                .get((name, SecretField::RefreshToken.as_str()))
                .map_err(|x| e(x.into()))?
                .map(|v| keys.open_string(name, SecretField::RefreshToken, v.value()))
                .transpose()?
        } else {
            None
        };
        verify(&connection)?;
        Ok(Some((connection, Some(TokenSnapshot { access_token: access, refresh_token: refresh }))))
    }

    fn refresh_grant(&self, name: &str, keys: &Keys) -> Result<Option<RefreshGrant>, ReadError> {
        let e = self.read_err();
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let Some(connection) = self.connection_in(&txn, name, keys)? else { return Ok(None) };
        let secrets = txn.open_table(SECRETS).map_err(|x| e(x.into()))?;
        let open = |field: SecretField| -> Result<Option<SecretString>, ReadError> {
            let row = secrets.get((name, field.as_str())).map_err(|x| e(x.into()))?;
            Ok(row.map(|v| keys.open_string(name, field, v.value())).transpose()?)
        };
        let refresh_token = open(SecretField::RefreshToken)?;
        let client_secret = open(SecretField::ClientSecret)?;
        Ok(Some(RefreshGrant { connection, refresh_token, client_secret }))
    }

    /// A lock file per connection, not a row: see lease_lock.rs. `ttl_ms` only sets the deadline
    /// [`Lease::Held`] reports; the lease lasts until released or its holder's process is gone.
    fn try_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<Lease, WriteError> {
        self.leases
            .try_take(name, holder, now_millis() + ttl_ms)
            .map_err(|(path, source)| WriteError::LeaseLock { name: name.to_owned(), path, source })
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<(), WriteError> {
        self.leases.release(name, holder);
        Ok(())
    }

    /// On the lock itself (lease_lock.rs); `generation` is not needed: the lock is released after the write that
    /// ends a refresh has committed and bumped the counter.
    fn wait_lease_end(&self, name: &str, _generation: Option<u64>, timeout: Duration) -> Result<LeaseWait, WriteError> {
        self.leases
            .wait_end(name, timeout)
            .map_err(|(path, source)| WriteError::LeaseLock { name: name.to_owned(), path, source })
    }

    fn mark(
        &self,
        name: &str,
        status: Status,
        reason: &str,
        holder: Option<&str>,
        revision: Option<u64>,
        keys: &Keys,
    ) -> Result<(), WriteError> {
        self.update(name, holder, revision, keys, |conn| {
            conn.status = status;
            conn.status_reason = Some(reason.to_owned());
        }, &[])
    }

    fn update_registration(
        &self,
        name: &str,
        change: Box<dyn FnOnce(&mut Connection) + '_>,
        client_secret: Option<&SecretString>,
        keys: &Keys,
    ) -> Result<Connection, WriteError> {
        let sealed = client_secret
            .map(|s| keys.seal(name, SecretField::ClientSecret, s.expose_secret().as_bytes()))
            .transpose()?;
        let put = sealed.as_deref().map(|sealed| (SecretField::ClientSecret, sealed));
        self.update_with(name, None, None, keys, |conn| {
            change(conn);
            conn.reinstate_refused_client();
        }, &[], put)
    }

    fn mark_revoked(&self, name: &str, keys: &Keys) -> Result<(), WriteError> {
        self.update(name, None, None, keys, |conn| {
            conn.status = Status::Revoked;
            conn.status_reason = None;
            conn.token = None;
        }, &[SecretField::AccessToken, SecretField::RefreshToken, SecretField::IdToken, SecretField::Credentials])
    }

    fn reseal(&self, old: &Keys, new: &Keys) -> Result<Resealed, WriteError> {
        let e = self.write_err();
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        self.claim_recipient(&txn, old)?;
        // Every connection must be what `old`'s holder wrote before `new` vouches for it.
        let records = self.records_in(&txn).map_err(&e)?;
        {
            let secrets = txn.open_table(SECRETS).map_err(|x| e(x.into()))?;
            let tags = txn.open_table(TAGS).map_err(|x| e(x.into()))?;
            for (name, record, revision) in &records {
                self.verified_in(name, record, *revision, &secrets, &tags, old)?;
            }
        }
        let secrets = {
            let mut table = txn.open_table(SECRETS).map_err(|x| e(x.into()))?;
            let mut rows = Vec::new();
            for row in table.iter().map_err(|x| e(x.into()))? {
                let (k, v) = row.map_err(|x| e(x.into()))?;
                let (name, field) = k.value();
                rows.push((name.to_owned(), field.to_owned(), v.value().to_vec()));
            }
            for (name, field_name, sealed) in &rows {
                let field = self.field(name, field_name)?;
                let plain = old.open(name, field, sealed)?;
                let resealed = new.seal(name, field, plain.expose_secret())?;
                table.insert((name.as_str(), field_name.as_str()), resealed.as_slice()).map_err(|x| e(x.into()))?;
            }
            let mut tags = txn.open_table(TAGS).map_err(|x| e(x.into()))?;
            for (name, record, revision) in &records {
                let revision = revision.expect("verified above");
                write_tag(&mut tags, &table, name, revision, record, new).map_err(&e)?;
            }
            rows.len()
        };
        let connections = records.len();
        {
            // Admin tokens' tags are made with the identity's key too: vouched for again by `new`, or none is.
            let mut table = txn.open_table(ADMIN_TOKENS).map_err(|x| e(x.into()))?;
            let mut rows = Vec::new();
            for row in table.iter().map_err(|x| e(x.into()))? {
                let (name, value) = row.map_err(|x| e(x.into()))?;
                let (record, tag) = value.value();
                rows.push((name.value().to_owned(), record.to_vec(), tag.to_vec()));
            }
            for (name, record, tag) in &rows {
                if !old.admin_token_tag_matches(record, tag) {
                    return Err(ReadError::TamperedAdminToken { store: self.location(), name: name.clone() }.into());
                }
                let tag = new.admin_token_tag(record);
                table.insert(name.as_str(), (record.as_slice(), tag.as_slice())).map_err(|x| e(x.into()))?;
            }
        }
        // Pending remote authorizations are sealed to `old`: they are dropped (their laptops start again).
        txn.delete_table(AUTHORIZATION_REQUESTS).map_err(|x| e(x.into()))?;
        txn.open_table(META)
            .map_err(|x| e(x.into()))?
            .insert("recipient", new.recipient().as_str())
            .map_err(|x| e(x.into()))?;
        // No connection's data changes (the tokens a process may have cached are the same values), so neither
        // the revisions nor the generation counter move.
        txn.commit().map_err(|x| e(x.into()))?;
        Ok(Resealed { connections, secrets })
    }

    fn sealed_connections(&self, keys: &Keys) -> Result<Vec<SealedConnection>, ReadError> {
        let e = self.read_err();
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let conns = txn.open_table(CONNECTIONS).map_err(|x| e(x.into()))?;
        let secrets = txn.open_table(SECRETS).map_err(|x| e(x.into()))?;
        let revs = txn.open_table(REVISIONS).map_err(|x| e(x.into()))?;
        let tags = self.tags_in(&txn)?;
        let mut out = Vec::new();
        for row in conns.iter().map_err(|x| e(x.into()))? {
            let (k, v) = row.map_err(|x| e(x.into()))?;
            let revision = revs.get(k.value()).map_err(|x| e(x.into()))?.map(|r| r.value());
            let connection = self.verified_in(k.value(), v.value(), revision, &secrets, &tags, keys)?;
            let mut sealed = Vec::new();
            for field in SecretField::ALL {
                if let Some(s) = secrets.get((connection.name.as_str(), field.as_str())).map_err(|x| e(x.into()))? {
                    sealed.push((field, s.value().to_vec()));
                }
            }
            out.push((connection, sealed));
        }
        Ok(out)
    }

    fn import_sealed(
        &self,
        entries: Vec<SealedConnection>,
        keys: &Keys,
        replace: bool,
    ) -> Result<ImportOutcome, WriteError> {
        let e = self.write_err();
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        self.claim_recipient(&txn, keys)?;
        let mut existing = Vec::new();
        {
            let mut conns = txn.open_table(CONNECTIONS).map_err(|x| e(x.into()))?;
            for (conn, _) in &entries {
                if conns.get(conn.name.as_str()).map_err(|x| e(x.into()))?.is_some() {
                    existing.push(conn.name.clone());
                }
            }
            if !existing.is_empty() && !replace {
                return Ok(ImportOutcome::Conflicts(existing));
            }
            let mut secrets = txn.open_table(SECRETS).map_err(|x| e(x.into()))?;
            let mut tags = txn.open_table(TAGS).map_err(|x| e(x.into()))?;
            let now = now_unix();
            for (mut conn, sealed) in entries {
                let name = conn.name.clone();
                for field in SecretField::ALL {
                    secrets.remove((name.as_str(), field.as_str())).map_err(|x| e(x.into()))?;
                }
                for (field, value) in &sealed {
                    secrets.insert((name.as_str(), field.as_str()), value.as_slice()).map_err(|x| e(x.into()))?;
                }
                conn.revision = bump_revision(&txn, &name).map_err(&e)?;
                conn.updated_at = now;
                let json = conn.encode();
                conns.insert(name.as_str(), json.as_slice()).map_err(|x| e(x.into()))?;
                write_tag(&mut tags, &secrets, &name, conn.revision, &json, keys).map_err(&e)?;
            }
        }
        self.commit_change(txn).map_err(|x| e(x.into()))?;
        Ok(ImportOutcome::Imported { replaced: existing })
    }

    fn create_admin_token(&self, token: &AdminToken, keys: &Keys) -> Result<(), WriteError> {
        let record = token.encode();
        let tag = keys.admin_token_tag(&record);
        let e = self.write_err();
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        self.claim_recipient(&txn, keys)?;
        {
            let mut table = txn.open_table(ADMIN_TOKENS).map_err(|x| e(x.into()))?;
            if table.get(token.name.as_str()).map_err(|x| e(x.into()))?.is_some() {
                return Err(WriteError::AdminTokenExists(token.name.clone()));
            }
            table.insert(token.name.as_str(), (record.as_slice(), tag.as_slice())).map_err(|x| e(x.into()))?;
        }
        txn.commit().map_err(|x| e(x.into()))
    }

    fn admin_tokens(&self) -> Result<Vec<AdminToken>, ReadError> {
        self.admin_token_rows()?.iter().map(|(name, record, _)| self.decode_admin_token(name, record)).collect()
    }

    fn revoke_admin_token(&self, name: &str) -> Result<bool, WriteError> {
        let e = self.write_err();
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        let removed = {
            let mut table = txn.open_table(ADMIN_TOKENS).map_err(|x| e(x.into()))?;
            let removed = table.remove(name).map_err(|x| e(x.into()))?.is_some();
            removed
        };
        txn.commit().map_err(|x| e(x.into()))?;
        Ok(removed)
    }

    fn admin_token_by_hash(&self, sha256: &str, keys: &Keys) -> Result<Option<AdminToken>, ReadError> {
        // A scan: an operator has a handful of tokens, and the hash of a random token leaks nothing by its timing.
        for (name, record, tag) in self.admin_token_rows()? {
            let token = self.decode_admin_token(&name, &record)?;
            if token.sha256 == sha256 {
                if token.name != name || !keys.admin_token_tag_matches(&record, &tag) {
                    return Err(ReadError::TamperedAdminToken { store: self.location(), name });
                }
                return Ok(Some(token));
            }
        }
        Ok(None)
    }

    fn put_authorization_request(
        &self,
        state: &SecretString,
        pending: &PendingAuthorization,
        keys: &Keys,
        now: i64,
    ) -> Result<(), WriteError> {
        let row = authz::seal(state, pending, keys)?;
        let e = self.write_err();
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        self.claim_recipient(&txn, keys)?;
        {
            let mut table = txn.open_table(AUTHORIZATION_REQUESTS).map_err(|x| e(x.into()))?;
            purge_authorization_requests(&mut table, now).map_err(|x| e(x.into()))?;
            let value = (row.record.as_slice(), row.sealed.as_slice(), row.tag.as_slice(), row.expires_at, 0i64);
            table.insert(row.key.as_str(), value).map_err(|x| e(x.into()))?;
        }
        txn.commit().map_err(|x| e(x.into()))
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<(), WriteError> {
        let e = self.write_err();
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        {
            let mut table = txn.open_table(AUDIT).map_err(|x| e(x.into()))?;
            let last = table.last().map_err(|x| e(x.into()))?.map_or(0, |(k, _)| k.value());
            table.insert(last + 1, entry.encode().as_slice()).map_err(|x| e(x.into()))?;
        }
        txn.commit().map_err(|x| e(x.into()))
    }

    fn take_authorization_request(&self, state: &str, keys: &Keys, now: i64) -> Result<Taken, WriteError> {
        let key = authz::state_key(state);
        let e = self.write_err();
        // One write transaction at a time, across processes: of two takes, the second sees the first's mark.
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        let taken = {
            let mut table = txn.open_table(AUTHORIZATION_REQUESTS).map_err(|x| e(x.into()))?;
            purge_authorization_requests(&mut table, now).map_err(|x| e(x.into()))?;
            let found = table.get(key.as_str()).map_err(|x| e(x.into()))?.map(|v| {
                let (record, sealed, tag, _, used_at) = v.value();
                (record.to_vec(), sealed.to_vec(), tag.to_vec(), used_at)
            });
            match found {
                None => Taken::Unknown,
                Some((record_bytes, sealed, tag, used_at)) => {
                    match authz::decide(&self.location(), &key, &record_bytes, &sealed, &tag, used_at != 0, keys, now)? {
                        authz::Decision::Refuse(taken) => taken,
                        authz::Decision::Take { pending, used_tag } => {
                            let value = (record_bytes.as_slice(), &b""[..], used_tag.as_slice(), pending.expires_at, now.max(1));
                            table.insert(key.as_str(), value).map_err(|x| e(x.into()))?;
                            Taken::Pending(pending)
                        }
                    }
                }
            }
        };
        txn.commit().map_err(|x| e(x.into()))?;
        Ok(taken)
    }

    fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, ReadError> {
        let e = self.read_err();
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let Some(table) = optional_table(&txn, AUDIT).map_err(&e)? else { return Ok(vec![]) };
        let mut out = Vec::new();
        for row in table.iter().map_err(|x| e(x.into()))?.rev().take(limit) {
            let (id, record) = row.map_err(|x| e(x.into()))?;
            let entry = AuditEntry::decode(record.value()).map_err(|x| ReadError::CorruptAudit {
                store: self.location(),
                id: id.value(),
                detail: x.to_string(),
            })?;
            out.push(entry);
        }
        out.reverse();
        Ok(out)
    }
}

/// Creates the store at `path` whole or not at all. redb writes a new file's header in steps, its magic number
/// last, so a first command killed half-way would leave a file redb refuses ("not a redb database") for good.
/// The store is made and its tables created under a name of its own, then hard-linked into place: the link
/// fails if another process placed its store first, and that one is used. A kill leaves at most an unused
/// `.init-*` file beside the store (it holds no secret: only the schema version and empty tables).
fn initialize(path: &Path) -> Result<(), OpenError> {
    // I/O errors name the store's path: the name beside it is ours, not the user's.
    let io = |source| OpenError::Io { store: StoreLocation::File(path.to_path_buf()), source };
    let made = |tmp: &Path| {
        fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(tmp).map_err(io)?;
        let db = Database::builder()
            .set_concurrency_mode(ConcurrencyMode::MultiWriter)
            .create(tmp)
            .map_err(|e| open_error(tmp, e))?;
        RedbStore { db, leases: LeaseLocks::new(tmp), path: tmp.to_path_buf(), generation: None }.check_schema()
    };
    crate::place::create_whole(path, "init", made, io)?;
    Ok(())
}

/// Bumps a connection's revision inside `txn` and returns it: every write to a connection goes through here, so a
/// process holding its tokens sees the change.
fn bump_revision(txn: &redb::WriteTransaction, name: &str) -> Result<u64, redb::Error> {
    let mut revs = txn.open_table(REVISIONS)?;
    let rev = revs.get(name)?.map_or(0, |v| v.value()) + 1;
    revs.insert(name, rev)?;
    Ok(rev)
}

fn stored_revision(txn: &redb::WriteTransaction, name: &str) -> Result<Option<u64>, redb::Error> {
    Ok(txn.open_table(REVISIONS)?.get(name)?.map(|v| v.value()))
}

/// Why a conditional write stops before writing.
enum Unchanged {
    Changed(String),
    Storage(redb::Error),
}

impl Unchanged {
    fn into_write(self, e: &impl Fn(redb::Error) -> WriteError) -> WriteError {
        match self {
            Unchanged::Changed(name) => WriteError::Changed(name),
            Unchanged::Storage(x) => e(x),
        }
    }
}

/// Inside a write transaction: the connection's revision is still `expected` (when one is given). Deleted, or
/// deleted and created again, counts as changed: the revision outlives the record and keeps counting.
fn expect_unchanged(txn: &redb::WriteTransaction, name: &str, expected: Option<u64>) -> Result<(), Unchanged> {
    let Some(expected) = expected else { return Ok(()) };
    let revs = txn.open_table(REVISIONS).map_err(|x| Unchanged::Storage(x.into()))?;
    let conns = txn.open_table(CONNECTIONS).map_err(|x| Unchanged::Storage(x.into()))?;
    let current = revs.get(name).map_err(|x| Unchanged::Storage(x.into()))?.map(|v| v.value());
    let exists = conns.get(name).map_err(|x| Unchanged::Storage(x.into()))?.is_some();
    if exists && current == Some(expected) { Ok(()) } else { Err(Unchanged::Changed(name.to_owned())) }
}

fn open_error(path: &Path, e: redb::DatabaseError) -> OpenError {
    let store = StoreLocation::File(path.to_path_buf());
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen | redb::DatabaseError::LockProtocolMismatch => OpenError::Locked { store },
        redb::DatabaseError::Storage(redb::StorageError::Io(source)) if source.kind() == io::ErrorKind::InvalidData => {
            OpenError::NotAStore { store }
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(source)) => OpenError::Io { store, source },
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => OpenError::Corrupted { store, detail },
        other => OpenError::Database { store, source: other.into() },
    }
}
