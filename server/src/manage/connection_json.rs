//! One connection as JSON: what `authconnection list --json` (an array of these), `show`, `create`, `update`,
//! `authorize` and `import-token` print with `--json`, and what the admin API answers. Never a secret.

use std::collections::BTreeMap;

use serde::Serialize;
use wasm_host_store::{rfc3339, Connection};

/// One connection as `list --json` (an array of these), `show --json`, `create --json`, `authorize --json` and
/// `import-token --json` print it. Never a secret.
#[derive(Serialize)]
pub struct ConnectionJson<'a> {
    pub name: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub provider_url: &'a str,
    pub issuer_url: Option<&'a str>,
    pub client_id: &'a str,
    /// How tokens are obtained: `authorization-code` or `client-credentials`.
    pub grant: &'static str,
    /// `needs-authorization`, `authorized`, `revoked`, ...
    pub status: &'static str,
    /// Why the connection needs authorization again, when it does.
    pub status_reason: Option<&'a str>,
    /// RFC 3339; `null` without a token or for a token that does not expire.
    pub expires_at: Option<String>,
    pub token_type: Option<&'a str>,
    pub scopes: &'a [String],
    pub has_refresh_token: bool,
    pub expose_refresh_token: bool,
    /// The endpoints given at `create` (`null` where presets or discovery decide).
    pub endpoints: EndpointsJson<'a>,
    pub metadata: &'a BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize)]
pub struct EndpointsJson<'a> {
    pub auth_url: Option<&'a str>,
    pub token_url: Option<&'a str>,
    pub revocation_url: Option<&'a str>,
    pub userinfo_url: Option<&'a str>,
}

impl<'a> From<&'a Connection> for ConnectionJson<'a> {
    fn from(c: &'a Connection) -> Self {
        let token = c.token.as_ref();
        ConnectionJson {
            name: &c.name,
            kind: &c.kind,
            provider_url: &c.provider_url,
            issuer_url: c.issuer_url.as_deref(),
            client_id: &c.client_id,
            grant: c.options.grant.as_str(),
            status: c.status.as_str(),
            status_reason: c.status_reason.as_deref(),
            expires_at: token.and_then(|t| t.expires_at).map(rfc3339),
            token_type: token.map(|t| t.token_type.as_str()),
            scopes: token.map_or(&[], |t| t.scopes.as_slice()),
            has_refresh_token: token.is_some_and(|t| t.has_refresh_token),
            expose_refresh_token: c.expose_refresh_token,
            endpoints: EndpointsJson {
                auth_url: c.endpoints.auth_url.as_deref(),
                token_url: c.endpoints.token_url.as_deref(),
                revocation_url: c.endpoints.revocation_url.as_deref(),
                userinfo_url: c.endpoints.userinfo_url.as_deref(),
            },
            metadata: &c.metadata,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

