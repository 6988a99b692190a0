//! What a change asks for: the command line's flags of `create` and `update`, field for field, as the admin API's
//! JSON request bodies (`POST /v1/connections`, `PATCH /v1/connections/{name}`; docs/admin-openapi.yaml).

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// `authconnection create`. The client secret is the request's only secret: it is read from the body once and
/// never serialized back (nor echoed in any answer).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub name: String,
    /// One of `wasm_host_store::CONNECTION_TYPES`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A catalog entry (`authconnection providers`); fills what the other fields leave out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The catalog entry's placeholders (`tenant`, `domain`, `realm`, `subdomain`, `shop`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub placeholders: BTreeMap<String, String>,
    /// Required unless `provider` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<String>,
    pub client_id: String,
    /// Only in a request body, never serialized (the remote client adds it to the body itself).
    #[serde(default, skip_serializing)]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub endpoints: EndpointsRequest,
    #[serde(default)]
    pub expose_refresh_token: bool,
    /// `authorization-code` (the default) or `client-credentials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    #[serde(default)]
    pub protocol: ProtocolRequest,
}

/// `authconnection update NAME`: what is given changes, what is left out stays.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Only in a request body, never serialized.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<SecretString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<String>,
    #[serde(default)]
    pub endpoints: EndpointsRequest,
    #[serde(default)]
    pub protocol: ProtocolRequest,
}

/// Endpoints given by hand (`--auth-url` ...): they override presets and discovery. Each is checked: https, or
/// http on loopback.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_url: Option<String>,
}

/// Per-connection protocol options (`--pkce`, `--client-auth`, `--auth-param`, `--token-param`,
/// `--default-scopes`, `--device-auth-url`), as the flags spell them.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolRequest {
    /// `auto`, `on` or `off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce: Option<String>,
    /// `basic` or `post`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<String>,
    /// `NAME=VALUE` each; `NAME=` removes one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth_params: Vec<String>,
    /// `NAME=VALUE` each; `NAME=` removes one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_params: Vec<String>,
    /// Comma or space separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_scopes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_auth_url: Option<String>,
}
