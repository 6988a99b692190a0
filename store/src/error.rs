//! One error enum per family of store operations. Messages name the store (a file, or a PostgreSQL database as
//! `postgres://USER@HOST:PORT/DATABASE`, never with its password) and what to do; none holds a secret. Each
//! `store` field is that [`StoreLocation`], as [`crate::Backend::location`] gives it; a `path` field is another
//! file (a directory to create, a lock file, a CA file).

use std::path::PathBuf;

use thiserror::Error;

use crate::keys::SecretError;
use crate::location::StoreLocation;

#[derive(Debug, Error)]
pub enum OpenError {
    #[error("cannot create the store directory {path}: {source}; pass a writable --store PATH or set WASM_HOST_STORE")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot open the store {store}: {source}; check that it exists and is readable and writable by you")]
    Io { store: StoreLocation, source: std::io::Error },
    #[error(
        "{store} is not a wasm-host store (it is not a redb database); pass the right file with --store or WASM_HOST_STORE"
    )]
    NotAStore { store: StoreLocation },
    #[error(
        "the store {store} is damaged ({detail}); restore it from a backup, or move it away to start an empty store"
    )]
    Corrupted { store: StoreLocation, detail: String },
    #[error(
        "the store {store} is held by another program that opened it in exclusive mode; stop that program and try again"
    )]
    Locked { store: StoreLocation },
    #[error(
        "the store {store} was written by a newer wasm-host (schema {found}, this one knows {supported}); upgrade wasm-host"
    )]
    NewerSchema { store: StoreLocation, found: u64, supported: u64 },
    #[error("cannot open the store {store}: {source}")]
    Database { store: StoreLocation, source: redb::Error },
    /// Not a `source`: the message carries the problem, so it is printed once.
    #[error("cannot use the store {store}: {problem}")]
    UnsafeDirectory { store: StoreLocation, problem: crate::DirError },
    /// A `postgres://` location that does not parse; `detail` never holds the password.
    #[error(
        "the store location is not a usable PostgreSQL URL ({detail}); give one like \
         postgres://USER@HOST:PORT/DATABASE?sslmode=require with --store or WASM_HOST_STORE"
    )]
    BadLocation { detail: String },
    /// The database could not be reached or refused the session (down, restarting, wrong password).
    #[error(
        "cannot reach the store {store}: {detail}; check that PostgreSQL is running there, that this host may \
         connect to it, and the user and password the URL gives"
    )]
    Unavailable { store: StoreLocation, detail: String },
    /// The server refused this host's session: unknown user, wrong password, no such database.
    #[error("the database server refused the store {store}: {detail}; check the user, password and database name the URL gives")]
    Refused { store: StoreLocation, detail: String },
    #[error("the store {store} refused to set up its tables: {detail}")]
    Postgres { store: StoreLocation, detail: String },
    /// The `sslrootcert` file of a `postgres://` location cannot be used.
    #[error(
        "cannot use the CA file {path} that the store URL's sslrootcert names: {detail}; give the PEM file of the \
         CA that signed the database server's certificate (your database service publishes it)"
    )]
    RootCert { path: PathBuf, detail: String },
    /// TLS to the database failed for a reason a retry will not change: the server's certificate is not trusted
    /// or does not name the host, or the server does not do TLS while `sslmode` asks for it.
    #[error(
        "no TLS connection to the store {store}: {detail}; this will not change on retry. A server certificate \
         from a private CA needs that CA's PEM file as sslrootcert=PATH in the URL; under sslmode=verify-full \
         (and require, prefer) the URL's host must be a name the certificate holds (verify-ca checks the chain \
         only); a server without TLS needs sslmode=disable"
    )]
    Untrusted { store: StoreLocation, detail: String },
}

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("cannot read the store {store}: {source}")]
    Storage { store: StoreLocation, source: redb::Error },
    #[error(
        "the record of connection `{name}` in {store} cannot be decoded ({detail}); delete and re-create the connection"
    )]
    Corrupt { store: StoreLocation, name: String, detail: String },
    /// The record, its revision or its sealed rows are not what a holder of the identity wrote (record_auth.rs).
    #[error(
        "connection `{name}` in the store {store} was changed by someone without the store's identity (its record, \
         revision or sealed values do not match their authentication tag), so nothing of it is used or sent. Restore \
         the store from a backup you trust, or re-create the connection (`wasm-host authconnection delete {name}`, \
         then `create` and `authorize`)"
    )]
    Tampered { store: StoreLocation, name: String },
    /// An admin token's row is not what a holder of the identity wrote (planted to grant someone access).
    #[error(
        "admin token `{name}` in the store {store} was written by someone without the store's identity (its record does not match its authentication tag), so it grants nothing; revoke it (`wasm-host admin token revoke {name}`) and find out who can write the store"
    )]
    TamperedAdminToken { store: StoreLocation, name: String },
    /// A pending remote authorization's row is not what a holder of the identity wrote (authorization_request.rs).
    #[error(
        "a pending authorization in the store {store} was written or changed by someone without the store's \
         identity, so it is not used; start the authorization again, and find out who can write the store"
    )]
    TamperedAuthorizationRequest { store: StoreLocation },
    /// An admin token's row that does not decode.
    #[error("the admin token `{name}` in {store} cannot be decoded ({detail}); revoke it and create another")]
    CorruptAdminToken { store: StoreLocation, name: String, detail: String },
    /// An audit entry that does not decode.
    #[error("audit entry {id} in {store} cannot be decoded ({detail})")]
    CorruptAudit { store: StoreLocation, id: u64, detail: String },
    #[error(
        "the store {store} was written by an older wasm-host and its records are not authenticated yet; if you \
         upgraded wasm-host, run `wasm-host store upgrade` (it lists each connection's endpoints as it vouches for \
         them); if you did not, the store may have been tampered with: restore it from a backup you trust"
    )]
    NotUpgraded { store: StoreLocation },
    /// A database store that cannot be reached now (down, restarting, every pooled connection busy): a later
    /// call may succeed.
    #[error("the store {store} cannot be reached: {detail}; the call may succeed once the database is back")]
    Unavailable { store: StoreLocation, detail: String },
    #[error("the store {store} refused a query: {detail}")]
    Database { store: StoreLocation, detail: String },
    #[error(transparent)]
    Secret(#[from] SecretError),
}

#[derive(Debug, Error)]
pub enum WriteError {
    #[error(
        "a connection named `{0}` already exists; choose another name, or replace it with \
         `wasm-host authconnection delete {0}` followed by `create`"
    )]
    AlreadyExists(String),
    #[error(
        "an admin token named `{0}` already exists; choose another name, or revoke it first with \
         `wasm-host admin token revoke {0}`"
    )]
    AdminTokenExists(String),
    #[error("no connection named `{0}`; `wasm-host authconnection list` shows the existing ones")]
    NotFound(String),
    /// A write that depended on what it had read (a refresh) found the connection changed since: nothing written.
    #[error("connection `{0}` was changed by another command while this one was using it; nothing was written")]
    Changed(String),
    #[error(
        "the store {store} holds secrets encrypted to {store_recipient}, but the identity in use is {identity_recipient}; \
         pass the store's identity: the one it was created with, or the one the last `wasm-host store rekey` wrote \
         (--identity, WASM_HOST_IDENTITY or WASM_HOST_IDENTITY_KEY)"
    )]
    WrongIdentity { store: StoreLocation, store_recipient: String, identity_recipient: String },
    /// A schema-1 store that holds connections: see [`crate::Backend::bind_keys`].
    #[error(
        "the store {store} was written by an older wasm-host: its {connections} connection(s) are not authenticated \
         yet, and wasm-host will not vouch for them on its own. If you upgraded wasm-host, run `wasm-host store \
         upgrade` (it lists each connection's endpoints as it tags them: check them). If you did not, someone may \
         have rewritten the store without the identity: restore it from a backup you trust"
    )]
    NotUpgraded { store: StoreLocation, connections: u64 },
    #[error("cannot write to the store {store}: {source}; check that the file and its directory are writable")]
    Storage { store: StoreLocation, source: redb::Error },
    /// The redb backend's refresh lease is a lock file beside the store (lease_lock.rs).
    #[error(
        "cannot take the refresh lease of connection `{name}`: its lock file {path}: {source}; wasm-host keeps one \
         lock file per connection in the directory beside the store, so the store's directory must be writable by you"
    )]
    LeaseLock { name: String, path: PathBuf, source: std::io::Error },
    /// As [`ReadError::Unavailable`]; nothing was written.
    #[error("the store {store} cannot be reached: {detail}; nothing was written, and the write may succeed once the database is back")]
    Unavailable { store: StoreLocation, detail: String },
    #[error("the store {store} refused a write: {detail}; nothing was written")]
    Database { store: StoreLocation, detail: String },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl ReadError {
    /// The store could not be reached (a database down or restarting, no pooled connection free in time): the
    /// same call may succeed later, unlike every other error here.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ReadError::Unavailable { .. })
    }
}

impl WriteError {
    /// As [`ReadError::is_unavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, WriteError::Unavailable { .. } | WriteError::Read(ReadError::Unavailable { .. }))
    }
}
