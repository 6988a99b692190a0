//! The encrypted connection store of wasm-host.
//!
//! One redb file holds every connection: its public record (what `list` shows) and, in rows of their own, its
//! secrets, each sealed with age to an X25519 identity kept in another file. The store never holds a secret in
//! plaintext, and no type here prints one.

mod db;
mod error;
mod keys;
mod record;
mod validate;

pub use db::{
    now_millis, Lease, NewTokens, RefreshUpdate, Store, TokenSnapshot, CONNECTIONS, LEASES, META, REVISIONS, SCHEMA_VERSION,
    SECRETS,
};
pub use error::{OpenError, ReadError, WriteError};
pub use keys::{IdentityError, Keys, SecretError, SecretField};
pub use record::{
    now_unix, rfc3339, Connection, DecodeError, Endpoints, NewConnection, ResolvedEndpoints, Status, TokenInfo, CONNECTION_TYPES, TYPE_OAUTH2,
};
pub use validate::{is_loopback_host, printable, validate_name, validate_url, NameError, UrlError, MAX_NAME_LEN};

pub use redb;
pub use secrecy;
