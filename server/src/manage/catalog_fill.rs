//! What `create --provider` takes from an entry of the built-in catalog (oauth/providers.toml).

use std::collections::BTreeMap;

use wasm_host_oauth::catalog::{self, Entry};
use wasm_host_store::{Endpoints, ProtocolOptions};

use super::{bad_input, ChangeError};

/// What a connection takes from a catalog entry.
pub struct Filled {
    pub provider_url: String,
    /// An OpenID provider's issuer: its endpoints are then discovered (and its ID tokens checked), so the entry's
    /// URLs are not stored.
    pub issuer_url: Option<String>,
    pub endpoints: Endpoints,
    pub options: ProtocolOptions,
    /// Whether the entry documents the client-credentials grant.
    pub client_credentials: bool,
}

/// The connection settings of catalog entry `id` with its placeholders filled from `values`.
pub fn fill(id: &str, values: &BTreeMap<String, String>) -> Result<Filled, ChangeError> {
    let entry = catalog::find(id).map_err(|e| bad_input(e.to_string()))?;
    let r = entry.resolve(values).map_err(|e| bad_input(e.to_string()))?;
    let endpoints = match r.issuer {
        Some(_) => Endpoints::default(),
        None => Endpoints {
            auth_url: Some(r.auth_url),
            token_url: Some(r.token_url),
            revocation_url: r.revocation_url,
            userinfo_url: r.userinfo_url,
        },
    };
    let mut options = options(entry);
    options.device_auth_url = r.device_auth_url;
    Ok(Filled {
        provider_url: r.provider_url,
        issuer_url: r.issuer,
        endpoints,
        options,
        client_credentials: entry.client_credentials,
    })
}

/// The protocol options an entry implies; `None`/empty where the defaults already do what it says.
fn options(entry: &Entry) -> ProtocolOptions {
    let pairs = |m: &BTreeMap<String, String>| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    ProtocolOptions {
        pkce: (!entry.pkce).then_some(false),
        client_auth: (entry.client_auth != "basic").then(|| entry.client_auth.clone()),
        auth_params: pairs(&entry.auth_params),
        token_params: pairs(&entry.token_params),
        default_scopes: entry.scopes.clone(),
        scope_separator: entry.scope_separator.chars().next().filter(|c| *c != ' '),
        ..ProtocolOptions::default()
    }
}
