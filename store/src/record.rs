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
    /// The provider refused the client itself (`invalid_client`: a rotated secret, a disabled app). The grant is
    /// kept: `authconnection update` fixes the registration, and the next use refreshes with it.
    ClientRefused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Authorized => "authorized",
            Status::NeedsAuthorization => "needs-authorization",
            Status::Revoked => "revoked",
            Status::ClientRefused => "client-refused",
        }
    }
}

/// How a connection obtains its tokens (RFC 6749 §1.3). Old records without a `grant` read as the authorization
/// code grant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grant {
    /// RFC 6749 §4.1 (and RFC 8628's device grant, which stores tokens the same way): a user authorizes once with
    /// `authorize`; the host refreshes with the refresh token.
    #[default]
    AuthorizationCode,
    /// RFC 6749 §4.4: no user and no `authorize`; the host asks the token endpoint for a token with the client's
    /// own credentials on first use and again before expiry.
    ClientCredentials,
}

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::AuthorizationCode => "authorization-code",
            Grant::ClientCredentials => "client-credentials",
        }
    }

    pub fn is_default(&self) -> bool {
        *self == Grant::AuthorizationCode
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

/// Per-connection protocol options, for providers that need other than the defaults. Each `None` or empty value
/// means "as presets and discovery say".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolOptions {
    /// PKCE S256 (RFC 7636): `Some(false)` never (a provider that refuses it), `Some(true)` always; `None`: when
    /// the provider publishes `code_challenge_methods_supported` with S256 (RFC 8414 §2), or for a provider
    /// known only by its URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce: Option<bool>,
    /// Client authentication at the token endpoint: `basic` or `post` (RFC 6749 §2.3.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<String>,
    /// Extra authorization-request parameters (Dropbox's `token_access_type=offline`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth_params: Vec<(String, String)>,
    /// Extra token-request parameters, sent with the code exchange and every refresh (Atlassian's `audience`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_params: Vec<(String, String)>,
    /// Scopes `authorize` requests when it is given no `--scopes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_scopes: Vec<String>,
    /// How the authorization request joins scopes, when not with a space: `,` (Slack, Linear, Shopify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_separator: Option<char>,
    /// How tokens are obtained; a client-credentials connection requests `default_scopes` with every token.
    #[serde(default, skip_serializing_if = "Grant::is_default")]
    pub grant: Grant,
    /// RFC 8628 §3.1 device authorization endpoint, for `authorize --device`; `None`: from discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_auth_url: Option<String>,
}

impl ProtocolOptions {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
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
    /// True when a refresh obtained them (not `authorize` or `import-token`): the host refreshes such a token
    /// again no sooner than one refresh margin after `obtained_at`, whatever its expiry says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refreshed: bool,
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
    #[serde(default, skip_serializing_if = "ProtocolOptions::is_default")]
    pub options: ProtocolOptions,
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
    /// Captured at authorization (QuickBooks' `realmId`, Salesforce's `instance_url`, ...): replaced by each
    /// authorization or import, extended by a refresh (keys a refresh answer does not repeat are kept).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Bumped by every write, so a process holding decrypted tokens can tell that another one changed them.
    pub revision: u64,
}

impl Connection {
    /// Decodes a stored record (the JSON in the `connections` table). Pure, so that it can be fuzzed.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(|e| DecodeError(crate::validate::one_line(&e, 300)))
    }

    /// The stored form of a record.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a connection record always serializes")
    }

    /// The record of a connection just registered at `now` (Unix seconds), before the store gives it a revision.
    pub(crate) fn created(new: NewConnection, options: ProtocolOptions, now: i64) -> Self {
        Connection {
            name: new.name,
            kind: new.kind,
            provider_url: new.provider_url,
            issuer_url: new.issuer_url,
            client_id: new.client_id,
            endpoints: new.endpoints,
            expose_refresh_token: new.expose_refresh_token,
            options,
            status: Status::Created,
            token: None,
            resolved: None,
            status_reason: None,
            metadata: Default::default(),
            created_at: now,
            updated_at: now,
            revision: 0,
        }
    }

    /// After a new client registration: a connection the provider refused as a client is `authorized` again when
    /// it holds tokens (the next refresh tries the new registration), `created` otherwise.
    pub(crate) fn reinstate_refused_client(&mut self) {
        if self.status == Status::ClientRefused {
            self.status = if self.token.is_some() { Status::Authorized } else { Status::Created };
            self.status_reason = None;
        }
    }
}

/// Why a stored record cannot be decoded: serde's words, as one line with control characters escaped.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

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

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"name":"qb","type":"TYPE_OAUTH2","provider_url":"https://appcenter.intuit.com","client_id":"AB",
        "status":"needs-authorization","status_reason":"invalid_grant","metadata":{"realmId":"46"},"created_at":1,
        "updated_at":2,"revision":9}"#;

    #[test]
    fn a_record_without_a_grant_reads_as_the_authorization_code_grant() {
        let c = Connection::decode(RECORD.as_bytes()).unwrap();
        assert_eq!(c.options.grant, Grant::AuthorizationCode);
        assert!(!String::from_utf8(c.encode()).unwrap().contains(r#""grant""#), "the default is not written");
        let mut cc = c.clone();
        cc.options.grant = Grant::ClientCredentials;
        let json = String::from_utf8(cc.encode()).unwrap();
        assert!(json.contains(r#""grant":"client-credentials""#), "{json}");
        assert_eq!(Connection::decode(json.as_bytes()).unwrap().options.grant, Grant::ClientCredentials);
    }

    #[test]
    fn records_round_trip() {
        let c = Connection::decode(RECORD.as_bytes()).unwrap();
        assert_eq!(c.status, Status::NeedsAuthorization);
        assert_eq!(Connection::decode(&c.encode()).unwrap(), c);
    }

    /// Found by the `record` fuzz target: serde's message for a damaged record quoted the bad value raw, so
    /// control characters from the file reached the terminal in `ReadError::Corrupt`.
    #[test]
    fn a_damaged_record_is_described_on_one_safe_line() {
        let damaged = RECORD.replace("needs-authorization", "needs-auth\u{7f}\\u001b[2Jrization");
        let e = Connection::decode(damaged.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("unknown variant `needs-auth\\u{7f}\\u{1b}[2Jrization`"), "{e}");
        assert!(!e.chars().any(char::is_control), "{e:?}");
    }
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
