//! What the store keeps about a connection besides its secrets. Nothing here is secret: it is what `list` shows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The only connection type so far, spelled as operators of the other runtime know it.
pub const TYPE_OAUTH2: &str = "TYPE_OAUTH2";
pub const CONNECTION_TYPES: &[&str] = &[TYPE_OAUTH2];

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Registered, never authorized.
    Created,
    /// Holds tokens.
    Authorized,
    /// The provider refused a refresh, or tokens were lost: `authorize` must run again.
    NeedsAuthorization,
    /// Tokens were revoked by `revoke`; the client registration stays.
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Authorized => "authorized",
            Status::NeedsAuthorization => "needs-authorization",
            Status::Revoked => "revoked",
        }
    }
}

/// Explicit endpoint overrides; whatever is absent is resolved from presets or discovery when authorizing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_url: Option<String>,
}

/// The public half of a token set: the values themselves are sealed rows of their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub token_type: String,
    /// Unix seconds; `None` when the provider gave no expiry (such tokens do not expire).
    pub expires_at: Option<i64>,
    pub scopes: Vec<String>,
    pub has_refresh_token: bool,
    /// Unix seconds when these tokens were stored.
    pub obtained_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub provider_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<String>,
    pub client_id: String,
    #[serde(default)]
    pub endpoints: Endpoints,
    #[serde(default)]
    pub expose_refresh_token: bool,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenInfo>,
    /// Where tokens are refreshed and revoked, as resolved when the connection was authorized, so a refresh
    /// needs no discovery request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<ResolvedEndpoints>,
    /// Why the connection needs authorization again, when it does (the provider's error, never a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Captured at authorization (QuickBooks' `realmId`, Salesforce's `instance_url`, ...).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Bumped by every write, so a process holding decrypted tokens can tell that another one changed them.
    pub revision: u64,
}

/// The endpoints a refresh or revocation uses, fixed at authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedEndpoints {
    pub token_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `basic` or `post` (RFC 6749 §2.3.1).
    pub client_auth: String,
}

/// What `create` needs, before the store stamps times and revision.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub name: String,
    pub kind: String,
    pub provider_url: String,
    pub issuer_url: Option<String>,
    pub client_id: String,
    pub endpoints: Endpoints,
    pub expose_refresh_token: bool,
}

pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Formats Unix seconds as RFC 3339 UTC, `2026-01-02T03:04:05Z`.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}
