//! `authconnection create`: a new connection from flags or a request body, with the catalog's defaults.

use secrecy::{ExposeSecret, SecretString};
use wasm_host_oauth::{ClientAuth, EndpointSettings, Http};
use wasm_host_store::{
    printable, validate_name, validate_url, Connection, Endpoints, Grant, Keys, NewConnection, ProtocolOptions, Store,
    CONNECTION_TYPES,
};

use super::request::{CreateRequest, EndpointsRequest};
use super::{bad_input, options, ChangeError};

/// A create request whose every field was checked: what [`create`] stores.
#[derive(Debug)]
pub struct PreparedCreate {
    new: NewConnection,
    options: ProtocolOptions,
}

impl PreparedCreate {
    pub fn name(&self) -> &str {
        &self.new.name
    }
}

impl CreateRequest {
    /// Checks every field and fills what the catalog entry (`provider`) gives; touches neither the store nor the
    /// network.
    ///
    /// # Errors
    /// [`super::ErrorKind::BadInput`]: a malformed name, type, URL, option, or a flag the grant does not take.
    pub fn prepare(&self) -> Result<PreparedCreate, ChangeError> {
        validate_name(&self.name)?;
        if !CONNECTION_TYPES.contains(&self.kind.as_str()) {
            return Err(bad_input(format!(
                "connection type `{}` is not supported; accepted values: {}",
                printable(&self.kind),
                CONNECTION_TYPES.join(", ")
            )));
        }
        let grant = self.grant.as_deref().unwrap_or(Grant::AuthorizationCode.as_str());
        if ![Grant::AuthorizationCode.as_str(), Grant::ClientCredentials.as_str()].contains(&grant) {
            return Err(bad_input(format!(
                "grant `{}` is not one of authorization-code, client-credentials",
                printable(grant)
            )));
        }
        // A catalog provider fills what the fields leave out.
        let catalog = self.provider.as_deref().map(|id| super::fill(id, &self.placeholders)).transpose()?;
        let catalog = catalog.as_ref();
        let provider_url = self
            .provider_url
            .clone()
            .or_else(|| catalog.map(|c| c.provider_url.clone()))
            .ok_or_else(|| bad_input("--provider-url is missing: give the provider's base URL, or --provider"))?;
        let provider_url = validate_url("--provider-url", &provider_url)?;
        let mut given = endpoints(&self.endpoints)?;
        if let Some(c) = catalog {
            let e = &c.endpoints;
            given.auth_url = given.auth_url.or_else(|| e.auth_url.clone());
            given.token_url = given.token_url.or_else(|| e.token_url.clone());
            given.revocation_url = given.revocation_url.or_else(|| e.revocation_url.clone());
            given.userinfo_url = given.userinfo_url.or_else(|| e.userinfo_url.clone());
        }
        let issuer_url = self.issuer_url.as_deref().map(|v| validate_url("--issuer-url", v)).transpose()?;
        let new = NewConnection {
            name: self.name.clone(),
            kind: self.kind.clone(),
            provider_url: provider_url.to_string(),
            issuer_url: issuer_url.map(String::from).or_else(|| catalog.and_then(|c| c.issuer_url.clone())),
            client_id: self.client_id.trim().to_owned(),
            endpoints: given,
            expose_refresh_token: self.expose_refresh_token,
        };
        if new.client_id.is_empty() {
            return Err(bad_input("--client-id is empty: give the client ID the provider issued for your app"));
        }
        let mut options = catalog.map(|c| c.options.clone()).unwrap_or_default();
        if grant == Grant::ClientCredentials.as_str() {
            if let Some(c) = catalog.filter(|c| !c.client_credentials) {
                return Err(bad_input(format!(
                    "the catalog does not list the client-credentials grant for provider `{}`; if its documentation \
                     offers it, create the connection with --provider-url and --token-url instead of --provider",
                    c.provider_url
                )));
            }
            let [pkce, auth_params, device] = options::authorization_flags(&self.protocol);
            options::refuse_authorization_flags(
                &self.name,
                &[
                    pkce,
                    auth_params,
                    device,
                    ("--auth-url", self.endpoints.auth_url.is_some()),
                    ("--expose-refresh-token", self.expose_refresh_token),
                ],
            )?;
            options.grant = Grant::ClientCredentials;
            // The catalog's scopes are what a user consents to; a client's own token takes those given here.
            options.default_scopes.clear();
        }
        options::apply(&self.protocol, &mut options)?;
        Ok(PreparedCreate { new, options })
    }
}

/// Stores the prepared connection with its client secret. A client-credentials connection without a token
/// endpoint finds it first (discovery at the provider: RFC 8414 / OpenID Connect Discovery 1.0).
///
/// # Errors
/// [`super::ErrorKind::BadInput`] for an empty secret, `Conflict` when the name is taken, `ProviderUnavailable`
/// or `BadInput` when discovery fails, the store's own errors otherwise.
pub fn create(
    store: &Store,
    keys: &Keys,
    prepared: PreparedCreate,
    client_secret: &SecretString,
) -> Result<Connection, ChangeError> {
    if client_secret.expose_secret().is_empty() {
        return Err(bad_input(
            "the client secret is empty: give the secret the provider issued for your app \
             (--client-secret-stdin, WASM_HOST_CLIENT_SECRET or --client-secret)",
        ));
    }
    let PreparedCreate { mut new, mut options } = prepared;
    if options.grant == Grant::ClientCredentials {
        token_endpoint(&mut new, &mut options)?;
    }
    Ok(store.create_with(new, options, client_secret, keys)?)
}

/// A client-credentials connection's token endpoint (and revocation endpoint and client authentication, where
/// not given), found once at `create` from the flags, the catalog or discovery: the host, which requests its
/// tokens, does no discovery.
fn token_endpoint(new: &mut NewConnection, options: &mut ProtocolOptions) -> Result<(), ChangeError> {
    if new.endpoints.token_url.is_some() {
        return Ok(());
    }
    let settings = EndpointSettings {
        provider_url: new.provider_url.clone(),
        issuer_url: new.issuer_url.clone(),
        auth_url: new.endpoints.auth_url.clone(),
        token_url: None,
        revocation_url: new.endpoints.revocation_url.clone(),
        userinfo_url: new.endpoints.userinfo_url.clone(),
        pkce: options.pkce,
        client_auth: options::client_auth(options.client_auth.as_deref())?,
        auth_params: Vec::new(),
        scope_separator: None,
    };
    let found = super::revoke::block_on(wasm_host_oauth::resolve(&Http::default(), &settings)).map_err(|e| {
        let message = format!("{e}; or give the token endpoint with --token-url");
        if e.is_unreachable() { ChangeError::ProviderUnavailable(message) } else { ChangeError::BadInput(message) }
    })?;
    new.endpoints.token_url = Some(found.token.to_string());
    if new.endpoints.revocation_url.is_none() {
        new.endpoints.revocation_url = found.revocation.map(|u| u.to_string());
    }
    if options.client_auth.is_none() && found.client_auth == ClientAuth::Post {
        options.client_auth = Some("post".into());
    }
    Ok(())
}

/// The endpoints given by hand, each checked (https, or http on loopback).
pub(crate) fn endpoints(given: &EndpointsRequest) -> Result<Endpoints, ChangeError> {
    let optional = |flag, value: &Option<String>| -> Result<Option<String>, ChangeError> {
        Ok(value.as_deref().map(|v| validate_url(flag, v)).transpose()?.map(String::from))
    };
    Ok(Endpoints {
        auth_url: optional("--auth-url", &given.auth_url)?,
        token_url: optional("--token-url", &given.token_url)?,
        revocation_url: optional("--revocation-url", &given.revocation_url)?,
        userinfo_url: optional("--userinfo-url", &given.userinfo_url)?,
    })
}
