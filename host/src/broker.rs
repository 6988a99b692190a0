//! Hands out access tokens from the store, keeping opened tokens in memory for the life of the process.
//!
//! Opening a sealed token costs an X25519 operation; a cached one costs a read of the connection's revision,
//! which is how a token changed or revoked by another process (the CLI, another host) is noticed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use wasm_host_store::{now_unix, printable, rfc3339, Keys, ReadError, Status, Store};

/// A token as a function receives it. Secret fields stay wrapped until they cross into the guest.
#[derive(Clone)]
pub struct IssuedToken {
    pub access_token: SecretString,
    pub token_type: String,
    pub expires_at: Option<i64>,
    pub refresh_token: Option<SecretString>,
    pub scopes: Vec<String>,
    pub metadata: Vec<(String, String)>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl IssuedToken {
    pub fn access_token(&self) -> &str {
        self.access_token.expose_secret()
    }
}

/// Why no token was issued; each maps to a case of the WIT `error` variant.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    #[error("no connection named `{0}`")]
    NotFound(String),
    #[error("{0}")]
    NeedsAuthorization(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

struct Cached {
    revision: u64,
    token: IssuedToken,
}

pub struct TokenBroker {
    store: Arc<Store>,
    keys: Arc<Keys>,
    margin: Duration,
    cache: Mutex<HashMap<String, Arc<Cached>>>,
}

/// How long before expiry a token stops being handed out, by default.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);

impl TokenBroker {
    pub fn new(store: Arc<Store>, keys: Arc<Keys>) -> Self {
        Self { store, keys, margin: DEFAULT_REFRESH_MARGIN, cache: Mutex::new(HashMap::new()) }
    }

    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A token for `name` valid for at least the margin.
    pub fn token(&self, name: &str) -> Result<IssuedToken, TokenError> {
        let revision = self.store.revision(name).map_err(internal)?;
        let cached = self.cache.lock().expect("token cache poisoned").get(name).cloned();
        let token = match (cached, revision) {
            (Some(c), Some(rev)) if c.revision == rev => c.token.clone(),
            (_, None) => return Err(TokenError::NotFound(printable(name))),
            _ => self.load(name)?,
        };
        if let Some(expires_at) = token.expires_at
            && expires_at - (self.margin.as_secs() as i64) <= now_unix()
        {
            return Err(TokenError::NeedsAuthorization(format!(
                "the access token of `{name}` expired at {} and this build cannot refresh it: run \
                 `wasm-host authconnection import-token {name}` with a new token",
                rfc3339(expires_at)
            )));
        }
        Ok(token)
    }

    fn load(&self, name: &str) -> Result<IssuedToken, TokenError> {
        let (connection, snapshot) = match self.store.token_snapshot(name, &self.keys).map_err(internal)? {
            Some(found) => found,
            None => return Err(TokenError::NotFound(printable(name))),
        };
        let snapshot = match (connection.status, snapshot) {
            (Status::Authorized, Some(s)) => s,
            (status, _) => return Err(TokenError::NeedsAuthorization(needs_authorization_text(name, status))),
        };
        let info = snapshot.connection.token.clone().expect("a snapshot has token info");
        let token = IssuedToken {
            access_token: snapshot.access_token,
            token_type: info.token_type,
            expires_at: info.expires_at,
            refresh_token: snapshot.refresh_token,
            scopes: info.scopes,
            metadata: snapshot.connection.metadata.into_iter().collect(),
        };
        let cached = Arc::new(Cached { revision: connection.revision, token: token.clone() });
        self.cache.lock().expect("token cache poisoned").insert(name.to_owned(), cached);
        Ok(token)
    }
}

fn needs_authorization_text(name: &str, status: Status) -> String {
    let why = match status {
        Status::Created => "has never been authorized",
        Status::Revoked => "was revoked",
        Status::NeedsAuthorization => "must be authorized again (the provider refused its tokens)",
        Status::Authorized => "holds no access token",
    };
    format!("connection `{name}` {why}: run `wasm-host authconnection authorize {name}`")
}

fn internal(e: ReadError) -> TokenError {
    TokenError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_host_store::{Endpoints, NewConnection, NewTokens, RefreshUpdate, TYPE_OAUTH2};

    fn new_connection(name: &str) -> NewConnection {
        NewConnection {
            name: name.into(),
            kind: TYPE_OAUTH2.into(),
            provider_url: "https://p.example/".into(),
            issuer_url: None,
            client_id: "c".into(),
            endpoints: Endpoints::default(),
            expose_refresh_token: false,
        }
    }

    fn put(store: &Store, keys: &Keys, name: &str, token: &str, expires_at: Option<i64>) {
        let token = SecretString::from(token);
        store
            .put_tokens(
                name,
                NewTokens {
                    access_token: &token,
                    refresh: RefreshUpdate::Remove,
                    id_token: None,
                    token_type: "Bearer".into(),
                    expires_at,
                    scopes: vec![],
                    metadata: vec![],
                },
                keys,
            )
            .unwrap();
    }

    #[test]
    fn cached_tokens_follow_changes_made_through_another_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let keys = Arc::new(Keys::generate());
        let store = Arc::new(Store::open(&path).unwrap());
        store.create(new_connection("c"), &SecretString::from("s"), &keys).unwrap();
        put(&store, &keys, "c", "first", None);
        let broker = TokenBroker::new(store, keys.clone());
        assert_eq!(broker.token("c").unwrap().access_token(), "first");
        assert_eq!(broker.token("c").unwrap().access_token(), "first", "served from the cache");

        // Another handle on the same file, as another process would have.
        let other = Store::open(&path).unwrap();
        put(&other, &keys, "c", "second", None);
        assert_eq!(broker.token("c").unwrap().access_token(), "second");
        other.delete("c").unwrap();
        assert_eq!(broker.token("c").unwrap_err(), TokenError::NotFound("c".into()));
        // Re-created under the same name: never the deleted connection's cached token.
        other.create(new_connection("c"), &SecretString::from("s"), &keys).unwrap();
        assert!(matches!(broker.token("c"), Err(TokenError::NeedsAuthorization(_))));
    }

    #[test]
    fn a_token_inside_the_margin_is_not_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(Keys::generate());
        let store = Arc::new(Store::open(&dir.path().join("s.redb")).unwrap());
        store.create(new_connection("c"), &SecretString::from("s"), &keys).unwrap();
        put(&store, &keys, "c", "soon", Some(now_unix() + 30));
        let broker = TokenBroker::new(store.clone(), keys.clone());
        assert!(matches!(broker.token("c"), Err(TokenError::NeedsAuthorization(_))));
        let lenient = TokenBroker::new(store, keys).with_margin(Duration::from_secs(5));
        assert_eq!(lenient.token("c").unwrap().access_token(), "soon");
    }
}
