//! The encrypted connection store of wasm-host.
//!
//! A store holds every connection: its public record (what `list` shows) and, in rows of their own, its secrets,
//! each sealed with age to an X25519 identity kept in another file. The store never holds a secret in plaintext,
//! and no type here prints one. Callers hold a [`Store`]; its operations are the [`Backend`] trait's, implemented
//! by each backend: [`RedbStore`], one redb file (the embedded default), and [`PgStore`], a PostgreSQL
//! database that several hosts share.

mod admin_token;
mod authorization_request;
mod audit;
mod backend;
mod bundle;
mod error;
mod generation;
mod keys;
mod lease_lock;
mod location;
mod place;
mod private_dir;
mod record;
#[cfg(feature = "postgres")]
mod pg_store;
mod record_auth;
mod redb_store;
mod rekey;
mod sealed_rows;
mod store;
mod validate;
mod x25519_unwrap;

pub use bundle::{
    export, import, parse_recipient, read_bundle, Bundle, BundleConnection, BundleError, ImportReport, BUNDLE_FORMAT,
    BUNDLE_VERSION,
};
pub use authorization_request::{
    state_key as authorization_state_key, PendingAuthorization, PendingDevice, Taken, AUTHORIZATION_TTL,
    PURGE_AFTER as AUTHORIZATION_PURGE_AFTER,
};
pub use audit::AuditEntry;
pub use admin_token::{hash_hex as admin_token_hash, AdminScope, AdminToken, TOKEN_PREFIX as ADMIN_TOKEN_PREFIX};
pub use backend::{
    now_millis, Backend, ImportOutcome, Lease, LeaseWait, NewTokens, RefreshGrant, RefreshUpdate, Resealed,
    SealedConnection, TokenSnapshot, GENERATION_MAX_AGE, LAPSE_CHECK_EVERY,
};
#[cfg(feature = "postgres")]
pub use pg_store::{PgStore, PG_SCHEMA_VERSION, POOL_SIZE, POOL_WAIT};
pub use redb_store::{RedbStore, ADMIN_TOKENS, AUDIT, AUTHORIZATION_REQUESTS, CONNECTIONS, LEASES, META, REVISIONS, SCHEMA_VERSION, SECRETS, TAGS};
pub use store::Store;
pub use location::{is_postgres, PostgresLocation, StoreLocation};
pub use error::{OpenError, ReadError, WriteError};
pub use private_dir::{check_private_dir, DirError};
pub use keys::{IdentityError, Keys, SecretError, SecretField};
pub use record::{
    now_unix, rfc3339, Connection, Grant, ProtocolOptions, DecodeError, Endpoints, NewConnection, ResolvedEndpoints, Status, TokenInfo, CONNECTION_TYPES, TYPE_OAUTH2,
};
pub use rekey::{finish_interrupted, rekey_identity_file, rekey_to_new_file, side_path, RekeyError, RekeyReport, RekeyStep};
pub use validate::{is_loopback_host, printable, validate_name, validate_url, NameError, UrlError, MAX_NAME_LEN};

pub use redb;
pub use secrecy;

#[cfg(test)]
mod redaction {
    use secrecy::SecretString;

    use super::*;

    /// Every type that holds a secret formats without it.
    #[test]
    fn debug_never_shows_a_secret() {
        const S: &str = "s3cr3t-value-for-debug";
        let secret = SecretString::from(S);
        let keys = Keys::generate();
        let snapshot = TokenSnapshot { access_token: secret.clone(), refresh_token: Some(secret.clone()) };
        let tokens = NewTokens {
            refresh: RefreshUpdate::Replace(&secret),
            id_token: RefreshUpdate::Replace(&secret),
            ..NewTokens::bearer(&secret)
        };
        let connection: Connection = serde_json::from_value(serde_json::json!({
            "name": "c", "type": TYPE_OAUTH2, "provider_url": "https://p.example", "client_id": "id",
            "status": "authorized", "created_at": 0, "updated_at": 0, "revision": 1
        }))
        .unwrap();
        let bundle = Bundle {
            exported_at: "now".into(),
            connections: vec![BundleConnection { connection, secrets: vec![(SecretField::AccessToken, secret.clone())] }],
        };
        let key_line = {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("id.txt");
            let keys = Keys::create(&path).unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            let line = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-1")).unwrap().to_owned();
            (format!("{keys:?}"), SecretString::from(line))
        };
        let shown = [
            format!("{secret:?}"),
            format!("{keys:?}"),
            format!("{snapshot:?}"),
            format!("{tokens:?}"),
            format!("{:?}", RefreshUpdate::Replace(&secret)),
            format!("{bundle:?}"),
            key_line.0.clone(),
        ];
        for text in &shown {
            assert!(!text.contains(S), "{text}");
            assert!(!text.contains("AGE-SECRET-KEY"), "{text}");
        }
        use secrecy::ExposeSecret;
        assert!(!key_line.0.contains(key_line.1.expose_secret()));
        assert!(shown[3].contains("REDACTED") && shown[2].contains("REDACTED"), "{shown:?}");
    }
}
