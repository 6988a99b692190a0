//! The store's interface: one repository trait ([`Backend`]) that every backend implements, and the values that
//! cross it. Everything above the store (the broker, the CLI, `serve`) holds a [`crate::Store`] and calls these
//! operations without knowing which backend answers.
//!
//! The contract every backend keeps (checked by the shared suite in `store/tests/backends.rs`):
//! - no secret reaches the backend unsealed: each is sealed with age by [`Keys::seal`] and bound to its record by
//!   the record's tag (record_auth.rs), which every read that acts on a connection checks;
//! - each write to a connection is one transaction and bumps its revision, which outlives the record (a deleted
//!   and re-created connection never reuses one), then moves the [`Backend::generation`] signal;
//! - conditional writes ([`Backend::write_tokens`] with a revision, [`Backend::mark`] with one) write nothing
//!   when the connection changed since that revision;
//! - the refresh lease has one holder at a time until it is released (by the holder, or by the write that ends
//!   it, once that write commits) or lapses. How it lapses is each backend's own: redb's is an OS lock beside
//!   the store and lapses only when its holder's handle is gone (its process dead); PostgreSQL's is a row timed
//!   by the database's clock and lapses when not renewed in time, as hosts on other machines cannot see each
//!   other's processes.
//! - a caller the lease was refused to can wait for it to end ([`Backend::wait_lease_end`]) rather than ask again
//!   on a tick: redb by blocking on the lock itself, PostgreSQL on the change signal.
//!
//! The operations are blocking, as redb's are: a caller on an async runtime calls them from its task, the way it
//! calls redb today.


use secrecy::SecretString;

use crate::admin_token::AdminToken;
use crate::authorization_request::{PendingAuthorization, Taken};
use crate::audit::AuditEntry;
use crate::error::{ReadError, WriteError};
use crate::keys::{Keys, SecretField};
use crate::record::{Connection, NewConnection, ProtocolOptions, ResolvedEndpoints, Status};

/// The result of asking for a refresh lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    Acquired,
    /// Another holder has it until this Unix time in milliseconds: on PostgreSQL when it lapses unless renewed;
    /// on redb the deadline the holder stated, a hint, as that lease lasts while its holder lives.
    Held { until_ms: i64 },
}

/// What [`Backend::wait_lease_end`] saw. Whatever it says, the caller looks at the connection again (another
/// holder's refresh may have stored what it needs) and then asks for the lease again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseWait {
    /// The lease has ended or may have: released (by its holder, or by the write that ended it), its holder's
    /// process gone (redb), or the store changed since the generation given (PostgreSQL).
    Ended,
    /// Nothing was seen within the time given, or (PostgreSQL) within [`LAPSE_CHECK_EVERY`], after which a
    /// lease may have lapsed without a signal.
    Elapsed,
    /// The backend cannot wait for it now (PostgreSQL while its listening connection is down, when
    /// [`Backend::generation`] is `None`): poll [`Backend::try_lease`] instead, with a backoff.
    Unwatched,
}

/// The longest [`Backend::wait_lease_end`] waits on PostgreSQL: a lease whose holder died lapses by the database's
/// clock and nothing notifies it, so a waiter asks for the lease again this often (a lapsed lease is taken over
/// at most this late; each ask is a write of the lease row, 10 a second per waiting host rather than the 100 a
/// 10 ms poll made).
pub const LAPSE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// What to do with a stored secret (refresh token, ID token) when new tokens are stored.
pub enum RefreshUpdate<'a> {
    /// The provider issued a new one (rotation, or a fresh authorization).
    Replace(&'a SecretString),
    /// The response carried none: keep the one we have (Google, and any provider that does not rotate).
    Keep,
    /// The new token set has none and the old one must not survive (tokens imported from elsewhere).
    Remove,
}

impl std::fmt::Debug for RefreshUpdate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RefreshUpdate::Replace(_) => "Replace([REDACTED])",
            RefreshUpdate::Keep => "Keep",
            RefreshUpdate::Remove => "Remove",
        })
    }
}

/// A new token set, as received from a provider or imported.
pub struct NewTokens<'a> {
    pub access_token: &'a SecretString,
    pub refresh: RefreshUpdate<'a>,
    pub id_token: RefreshUpdate<'a>,
    pub token_type: String,
    pub expires_at: Option<i64>,
    pub scopes: Vec<String>,
    pub metadata: Vec<(String, String)>,
    /// The response's other credential fields (dotted name, value), sealed as [`SecretField::Credentials`]:
    /// replaced as a set by an authorization or import, added to by a refresh, like `metadata`.
    pub credentials: Vec<(String, SecretString)>,
    /// Set at authorization; `None` keeps what the connection has.
    pub resolved: Option<ResolvedEndpoints>,
    /// The refresh lease this write ends, if the writer held one.
    pub release_lease: Option<&'a str>,
}

impl<'a> NewTokens<'a> {
    /// A bearer access token alone: refresh and ID tokens kept as they are, no expiry, scopes, metadata or
    /// endpoints, no lease. Spell out only what differs: `NewTokens { expires_at, ..NewTokens::bearer(&token) }`.
    pub fn bearer(access_token: &'a SecretString) -> Self {
        NewTokens {
            access_token,
            refresh: RefreshUpdate::Keep,
            id_token: RefreshUpdate::Keep,
            token_type: "Bearer".into(),
            expires_at: None,
            scopes: vec![],
            metadata: vec![],
            credentials: vec![],
            resolved: None,
            release_lease: None,
        }
    }
}

impl std::fmt::Debug for NewTokens<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTokens")
            .field("access_token", &"[REDACTED]")
            .field("refresh", &self.refresh)
            .field("id_token", &self.id_token)
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// The opened tokens of an authorized connection: what a function is given besides the record's public fields.
pub struct TokenSnapshot {
    pub access_token: SecretString,
    /// Opened only when the connection exposes it to functions.
    pub refresh_token: Option<SecretString>,
}

impl std::fmt::Debug for TokenSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSnapshot")
            .field("access_token", &"[REDACTED]")
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish()
    }
}

/// What a refresh starts from, read in one snapshot: the connection (its `revision` current), its refresh token and
/// its client secret. The refresh commits with [`Backend::put_refreshed`] or [`Backend::mark_needs_authorization`]
/// against that revision, so that a write made meanwhile (import-token, revoke, authorize, delete and create
/// again) is never overwritten by the result of a refresh that started before it.
pub struct RefreshGrant {
    pub connection: Connection,
    pub refresh_token: Option<SecretString>,
    pub client_secret: Option<SecretString>,
}

impl std::fmt::Debug for RefreshGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshGrant")
            .field("connection", &self.connection.name)
            .field("revision", &self.connection.revision)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// A connection and its sealed secret rows, as they sit in the store.
pub type SealedConnection = (Connection, Vec<(SecretField, Vec<u8>)>);

/// What [`Backend::reseal`] re-encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resealed {
    pub connections: usize,
    pub secrets: usize,
}

/// What [`Backend::import_sealed`] did.
pub enum ImportOutcome {
    Imported { replaced: Vec<String> },
    /// Names that exist already; nothing was written.
    Conflicts(Vec<String>),
}

/// How long a reader may trust an unchanged [`Backend::generation`] without reading the store itself: the bound on
/// how long a change committed by a writer that was killed before bumping the counter can go unseen.
pub const GENERATION_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);

/// Unix time in milliseconds, by this machine's clock: what leases are timed with, and how the broker names itself
/// in them.
pub fn now_millis() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The repository of connections: what a store backend does. One implementation per backend ([`crate::RedbStore`]
/// today); callers reach it through [`crate::Store`].
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Where the store is, as messages name it: the redb file, or `postgres://USER@HOST:PORT/DATABASE` (never the
    /// password).
    fn location(&self) -> crate::StoreLocation;

    /// The age public key the store's secrets are sealed to, once any secret has been stored.
    fn recipient(&self) -> Result<Option<String>, ReadError>;

    /// Checks that `keys` are the ones this store's secrets are sealed to, recording them on first use, so a
    /// wrong identity is refused before anything is written or decrypted.
    ///
    /// A store written before records were authenticated (schema 1) that holds connections is refused with
    /// [`WriteError::NotUpgraded`]: tagging its records vouches for them as they stand, which only an operator
    /// who expected the upgrade may do ([`Backend::upgrade`]); done silently, a writer without the identity could
    /// strip the tags, change a record and have the next command vouch for the change. A schema-1 store with no
    /// connection has nothing to vouch for and is upgraded here.
    fn bind_keys(&self, keys: &Keys) -> Result<(), WriteError>;

    /// `wasm-host store upgrade`: tags every connection of a schema-1 store with `keys`, as it stands, in one
    /// transaction, after checking that `keys` are the store's. Returns the connections it vouched for (so the
    /// operator can check their endpoints), or `None` when the store was already current.
    fn upgrade(&self, keys: &Keys) -> Result<Option<Vec<Connection>>, WriteError>;

    /// The record of `name` as stored, **not authenticated** (no identity needed): for showing it. Before acting
    /// on a connection (sending anything to its URLs), read it with [`Backend::connection`].
    fn get(&self, name: &str) -> Result<Option<Connection>, ReadError>;

    /// Every connection, in name order, **not authenticated** (like [`Backend::get`]).
    fn list(&self) -> Result<Vec<Connection>, ReadError>;

    /// A count of committed changes to any connection, by any process (on PostgreSQL, also of refresh leases
    /// released without a write: see [`Backend::release_lease`]); `None` when the backend has no usable
    /// signal (the redb counter file cannot be mapped). Load it *before* reading what it guards: an unchanged
    /// count (and a read no older than [`GENERATION_MAX_AGE`]) means that read is still current.
    ///
    /// Called on every cached token read, so it must not touch the database: an atomic load.
    fn generation(&self) -> Option<u64>;

    /// The connection's revision, read without decoding its record: the cheap "did anyone change it" check.
    fn revision(&self, name: &str) -> Result<Option<u64>, ReadError>;

    /// Registers a connection and seals its client secret, in one transaction.
    fn create(&self, new: NewConnection, client_secret: &SecretString, keys: &Keys) -> Result<Connection, WriteError> {
        self.create_with(new, ProtocolOptions::default(), client_secret, keys)
    }

    /// [`Backend::create`] with protocol options, in the same one transaction.
    ///
    /// [`WriteError::AlreadyExists`] when the name is taken; the revision counts on from a deleted connection of
    /// the same name, never back to 1.
    fn create_with(
        &self,
        new: NewConnection,
        options: ProtocolOptions,
        client_secret: &SecretString,
        keys: &Keys,
    ) -> Result<Connection, WriteError>;

    /// Removes a connection and every secret it holds.
    fn delete(&self, name: &str) -> Result<(), WriteError>;

    /// Stores a new token set and marks the connection authorized, in one transaction: either all of it is
    /// stored or none.
    fn put_tokens(&self, name: &str, tokens: NewTokens<'_>, keys: &Keys) -> Result<Connection, WriteError> {
        self.write_tokens(name, tokens, keys, None)
    }

    /// Like [`Backend::put_tokens`], for tokens a refresh obtained from the [`RefreshGrant`] of `revision`: refused
    /// with [`WriteError::Changed`] (nothing written) when the connection changed since that read.
    fn put_refreshed(&self, name: &str, tokens: NewTokens<'_>, keys: &Keys, revision: u64) -> Result<Connection, WriteError> {
        self.write_tokens(name, tokens, keys, Some(revision))
    }

    /// [`Backend::put_tokens`] (`expect_revision` `None`) or [`Backend::put_refreshed`] (`Some`), ending
    /// `tokens.release_lease`'s lease when it commits (in the same transaction on PostgreSQL; just after the
    /// commit on redb). Refused with [`WriteError::Changed`], nothing written, when another holder has the lease.
    fn write_tokens(
        &self,
        name: &str,
        tokens: NewTokens<'_>,
        keys: &Keys,
        expect_revision: Option<u64>,
    ) -> Result<Connection, WriteError>;

    /// Opens one secret of a connection; `None` when that field is not stored.
    fn secret(&self, name: &str, field: SecretField, keys: &Keys) -> Result<Option<SecretString>, ReadError>;

    /// The record of `name`, authenticated with `keys`: what to read before acting on a connection (sending its
    /// client secret or tokens anywhere). [`ReadError::Tampered`] when it is not what the identity's holder wrote.
    fn connection(&self, name: &str, keys: &Keys) -> Result<Option<Connection>, ReadError>;

    /// Reads a connection and, when it is authorized, opens its access token (and refresh token when exposed)
    /// from one consistent snapshot. `Ok(None)` when there is no such connection; the tokens are `None` for a
    /// connection that is not authorized, so nothing is decrypted that would not be handed out.
    fn token_snapshot(&self, name: &str, keys: &Keys) -> Result<Option<(Connection, Option<TokenSnapshot>)>, ReadError>;

    /// What a refresh of `name` starts from (see [`RefreshGrant`]); `None` when there is no such connection.
    fn refresh_grant(&self, name: &str, keys: &Keys) -> Result<Option<RefreshGrant>, ReadError>;

    /// Takes the refresh lease of `name` for `ttl_ms` unless another holder has it. The same holder asking again
    /// (through the same handle, on redb) renews it. Holders are named `<pid>-<start ms>`.
    ///
    /// redb: an exclusive OS lock on the connection's lock file in `<store>.leases/` (no commit), which lasts
    /// until released or until its holder's handle is closed, its process dead, whatever `ttl_ms` says; two
    /// handles are two holders even in one process. [`WriteError::LeaseLock`] when the lock file cannot be made
    /// (a read-only store directory). PostgreSQL: a row that lapses `ttl_ms` after it was last taken, by the
    /// database's clock.
    fn try_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<Lease, WriteError>;

    /// Gives the lease back, if `holder` still has it. On PostgreSQL this moves [`Backend::generation`] (when
    /// the lease was still `holder`'s), so that hosts waiting in [`Backend::wait_lease_end`] wake as they do
    /// when a write ends the lease.
    fn release_lease(&self, name: &str, holder: &str) -> Result<(), WriteError>;

    /// Waits, at most `timeout`, for the refresh lease of `name`, which [`Backend::try_lease`] has just found held
    /// by another holder, to end: so that a host waiting on another host's refresh learns of its end when it
    /// happens rather than on a polling tick. `generation` is [`Backend::generation`] as loaded *before* that
    /// `try_lease`: a change committed since then (the write that ends a refresh commits one) counts as an end,
    /// so an end between the `try_lease` and this call is never missed. See [`LeaseWait`] for the answers.
    ///
    /// redb: blocks on the connection's lock file until the holder's lock is released, through one thread per
    /// connection and store handle, however many callers wait; that thread takes the lock and lets it go at
    /// once, and exits. It is bounded without a timer of its own: a live holder ends its refresh (the
    /// provider call has a timeout, the broker's `LEASE_WAIT` allows for it) and a dead one's lock is
    /// released by the kernel; a caller whose `timeout` passes first leaves the thread to end then.
    /// [`WriteError::LeaseLock`] when the lock file cannot be opened or the thread started.
    ///
    /// PostgreSQL: waits for the change signal (LISTEN/NOTIFY, signal.rs) to pass `generation`, touching no
    /// database connection, for at most [`LAPSE_CHECK_EVERY`]; [`LeaseWait::Unwatched`] when `generation` is
    /// `None` or the listening connection is down.
    fn wait_lease_end(
        &self,
        name: &str,
        generation: Option<u64>,
        timeout: std::time::Duration,
    ) -> Result<LeaseWait, WriteError>;

    /// Marks a connection as needing authorization (the provider refused its refresh token), in one transaction,
    /// and ends `holder`'s lease with it (as [`Backend::write_tokens`] does). Its secrets stay: a refused refresh never destroys the stored refresh token.
    /// With `revision` (that of the refused [`RefreshGrant`]), refused with [`WriteError::Changed`] when the
    /// connection changed since: new tokens stored meanwhile are not marked.
    fn mark_needs_authorization(
        &self,
        name: &str,
        reason: &str,
        holder: Option<&str>,
        revision: Option<u64>,
        keys: &Keys,
    ) -> Result<(), WriteError> {
        self.mark(name, Status::NeedsAuthorization, reason, holder, revision, keys)
    }

    /// Marks a connection whose client the provider refused (`invalid_client`), in one transaction, ending
    /// `holder`'s lease with it; every secret stays, the refresh token included. `revision` as for
    /// [`Backend::mark_needs_authorization`].
    fn mark_client_refused(
        &self,
        name: &str,
        reason: &str,
        holder: Option<&str>,
        revision: Option<u64>,
        keys: &Keys,
    ) -> Result<(), WriteError> {
        self.mark(name, Status::ClientRefused, reason, holder, revision, keys)
    }

    /// Sets a refused connection's status and reason, keeping every secret.
    /// Ends `holder`'s lease with the write (as [`Backend::write_tokens`] does); `revision` as for
    /// [`Backend::mark_needs_authorization`].
    fn mark(
        &self,
        name: &str,
        status: Status,
        reason: &str,
        holder: Option<&str>,
        revision: Option<u64>,
        keys: &Keys,
    ) -> Result<(), WriteError>;

    /// Changes a connection's client registration (`change` edits the record: client ID, endpoints, options) and,
    /// when given, its client secret, in one transaction. Tokens stay: a connection the provider refused as a
    /// client (`client-refused`) that holds tokens is `authorized` again, for the next refresh to try the new
    /// registration.
    fn update_registration(
        &self,
        name: &str,
        change: Box<dyn FnOnce(&mut Connection) + '_>,
        client_secret: Option<&SecretString>,
        keys: &Keys,
    ) -> Result<Connection, WriteError>;

    /// Forgets a connection's tokens and marks it revoked; the client registration stays.
    fn mark_revoked(&self, name: &str, keys: &Keys) -> Result<(), WriteError>;

    /// Re-seals every secret from `old` to `new` and records `new` as the store's recipient, in one
    /// transaction: whenever the process stops, the store holds either every secret sealed to `old` and `old`
    /// as its recipient, or all of them sealed to `new` and `new`. A row `old` cannot open aborts it all.
    fn reseal(&self, old: &Keys, new: &Keys) -> Result<Resealed, WriteError>;

    /// Every connection with its sealed secret rows, from one consistent snapshot (what `store export` opens).
    /// Each is authenticated with `keys` first: a bundle never carries what someone without the identity wrote.
    fn sealed_connections(&self, keys: &Keys) -> Result<Vec<SealedConnection>, ReadError>;

    /// Writes connections and their sealed secrets (sealed with `keys`) in one transaction. A name that exists
    /// already is a conflict, and nothing is written, unless `replace`: then its record and every secret row are
    /// replaced. Revisions count on from what this store had, so running hosts notice the change.
    fn import_sealed(&self, entries: Vec<SealedConnection>, keys: &Keys, replace: bool) -> Result<ImportOutcome, WriteError>;

    /// Stores a new admin token's record (`token` from [`AdminToken::issue`]) with its tag under `keys`, after
    /// checking that `keys` are the store's. [`WriteError::AdminTokenExists`] when the name is taken.
    fn create_admin_token(&self, token: &AdminToken, keys: &Keys) -> Result<(), WriteError>;

    /// Every admin token's record, in name order, **not authenticated** (for showing them, like [`Backend::list`]).
    fn admin_tokens(&self) -> Result<Vec<AdminToken>, ReadError>;

    /// Removes the admin token `name`; `false` when there is none. Requests presenting it are refused from then on.
    fn revoke_admin_token(&self, name: &str) -> Result<bool, WriteError>;

    /// The admin token whose SHA-256 is `sha256` (lowercase hex, [`crate::admin_token_hash`] of the presented
    /// token), authenticated with `keys`: `None` when no token has that hash;
    /// [`ReadError::TamperedAdminToken`] when its row is not what a holder of the identity wrote.
    fn admin_token_by_hash(&self, sha256: &str, keys: &Keys) -> Result<Option<AdminToken>, ReadError>;

    /// Keeps a pending remote authorization (authorization_request.rs) under the SHA-256 of `state`, its nonce and
    /// verifier sealed with `keys`, after checking that `keys` are the store's; purges rows expired more than
    /// [`crate::AUTHORIZATION_PURGE_AFTER`] seconds before `now` (Unix seconds) in the same transaction.
    fn put_authorization_request(
        &self,
        state: &SecretString,
        pending: &PendingAuthorization,
        keys: &Keys,
        now: i64,
    ) -> Result<(), WriteError>;

    /// Takes the pending authorization of `state` once, atomically: the first take of a live request gets it
    /// ([`Taken::Pending`]) and leaves the row marked used with its sealed value wiped; any later take, by any
    /// handle or host, gets [`Taken::Used`]. A request past its `expires_at` (by `now`, Unix seconds) is
    /// [`Taken::Expired`] and is not handed out. Purges as [`Backend::put_authorization_request`] does.
    /// [`ReadError::TamperedAuthorizationRequest`] when the row is not what a holder of `keys` wrote.
    fn take_authorization_request(&self, state: &str, keys: &Keys, now: i64) -> Result<Taken, WriteError>;

    /// Appends `entry` to the audit log, in a transaction of its own.
    fn append_audit(&self, entry: &AuditEntry) -> Result<(), WriteError>;

    /// The last `limit` audit entries, oldest first.
    fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, ReadError>;
}
