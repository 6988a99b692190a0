//! Admin tokens: the bearer credentials operators present to a server's admin API.
//!
//! A token is [`TOKEN_PREFIX`] followed by 256 random bits (base64url, no padding): the prefix lets secret
//! scanners and people recognise one. The store keeps only its SHA-256 with the token's name, scope and creation
//! time, tagged with the identity's record key (record_auth.rs) so that a row planted by someone who can write the
//! store but lacks the identity grants nothing. A plain hash is enough here: password hashing (Argon2, bcrypt)
//! exists to slow down guessing of low-entropy secrets, and 2^256 random tokens cannot be guessed from their hash
//! however fast SHA-256 is.

use base64::Engine as _;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::validate::{validate_name, NameError};

/// What every admin token starts with.
pub const TOKEN_PREFIX: &str = "wha_";

/// The random part's length in bytes (256 bits).
const TOKEN_BYTES: usize = 32;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdminScope {
    /// Read and change.
    Admin,
    /// Read only: any change is refused.
    ReadOnly,
}

impl AdminScope {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminScope::Admin => "admin",
            AdminScope::ReadOnly => "read-only",
        }
    }
}

/// An admin token as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminToken {
    /// Validated like a connection name ([`validate_name`]).
    pub name: String,
    pub scope: AdminScope,
    /// Unix seconds.
    pub created_at: i64,
    /// SHA-256 of the whole token (prefix included), lowercase hex.
    pub sha256: String,
    /// Unix seconds after which the token is refused like an unknown one; `None`: it does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl AdminToken {
    /// Makes a new token named `name`: its stored record and the token, which exists nowhere else (print it once).
    pub fn issue(name: &str, scope: AdminScope) -> Result<(AdminToken, SecretString), NameError> {
        Self::issue_expiring(name, scope, None)
    }

    /// [`AdminToken::issue`] for a token refused after `expires_at` (Unix seconds; the record, expiry included,
    /// is what the store's tag covers).
    pub fn issue_expiring(
        name: &str,
        scope: AdminScope,
        expires_at: Option<i64>,
    ) -> Result<(AdminToken, SecretString), NameError> {
        validate_name(name)?;
        let mut random = zeroize::Zeroizing::new([0u8; TOKEN_BYTES]);
        getrandom::getrandom(random.as_mut()).expect("the operating system's random number generator works");
        let token = format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*random));
        let record = AdminToken {
            name: name.to_owned(),
            scope,
            created_at: crate::now_unix(),
            sha256: hash_hex(&token),
            expires_at,
        };
        Ok((record, SecretString::from(token)))
    }

    /// Whether the token is past its expiry at `now` (Unix seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// The record as stored (JSON), what its tag covers.
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an admin token serializes")
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// The lowercase hex SHA-256 of a presented token: what [`crate::Backend::admin_token_by_hash`] looks up.
pub fn hash_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_token_is_prefixed_random_and_only_its_hash_is_kept() {
        let (a, token_a) = AdminToken::issue("ops", AdminScope::Admin).unwrap();
        let (b, token_b) = AdminToken::issue("ops", AdminScope::ReadOnly).unwrap();
        let text = token_a.expose_secret();
        assert!(text.starts_with(TOKEN_PREFIX), "{text}");
        assert_eq!(text.len(), TOKEN_PREFIX.len() + 43, "{text}");
        assert_ne!(token_a.expose_secret(), token_b.expose_secret());
        assert_eq!(a.sha256, hash_hex(text));
        assert_ne!(a.sha256, b.sha256);
        let stored = String::from_utf8(a.encode()).unwrap();
        assert!(!stored.contains(&text[TOKEN_PREFIX.len()..]), "{stored}");
        assert!(stored.contains(r#""scope":"admin""#), "{stored}");
        assert!(AdminToken::issue("Not A Name", AdminScope::Admin).is_err());
    }
}
