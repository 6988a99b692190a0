//! `authconnection update`: changes a connection's client registration and keeps its grant.

use secrecy::{ExposeSecret, SecretString};
use wasm_host_store::{validate_name, validate_url, Connection, Endpoints, Grant, Keys, Status, Store};

use super::request::{ProtocolRequest, UpdateRequest};
use super::{bad_input, options, ChangeError};

/// An update request whose every field was checked.
#[derive(Debug)]
pub struct PreparedUpdate {
    name: String,
    client_id: Option<String>,
    issuer_url: Option<String>,
    endpoints: Endpoints,
    protocol: ProtocolRequest,
}

impl PreparedUpdate {
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What [`update`] did: the connection as stored, and its status before.
#[derive(Debug)]
pub struct Updated {
    pub connection: Connection,
    pub was: Status,
}

impl Updated {
    /// What happened to the grant, for the sentence `update` prints.
    pub fn grant_note(&self) -> &'static str {
        match (self.was, self.connection.status) {
            (Status::ClientRefused, Status::Authorized) => {
                "; its grant is kept and the next use refreshes with the new registration"
            }
            (_, Status::Authorized) => "; its tokens are kept",
            (Status::Authorized, Status::Created) => "; the next use requests a new token with the changed request",
            _ => "",
        }
    }
}

impl UpdateRequest {
    /// Checks every field of a change to connection `name`; touches neither the store nor the network.
    ///
    /// # Errors
    /// [`super::ErrorKind::BadInput`]: a malformed name, URL, option, or an empty client ID or secret.
    pub fn prepare(&self, name: &str) -> Result<PreparedUpdate, ChangeError> {
        validate_name(name)?;
        let issuer_url = self.issuer_url.as_deref().map(|v| validate_url("--issuer-url", v)).transpose()?.map(String::from);
        let endpoints = super::create::endpoints(&self.endpoints)?;
        let client_id = self.client_id.as_deref().map(str::trim).map(str::to_owned);
        if client_id.as_deref().is_some_and(str::is_empty) {
            return Err(bad_input("--client-id is empty: give the client ID the provider issued for your app"));
        }
        if self.client_secret.as_ref().is_some_and(|s| s.expose_secret().is_empty()) {
            return Err(bad_input("the client secret is empty: give the secret the provider issued for your app"));
        }
        // The options' own checks, on a throwaway copy: a malformed one is refused before the store is read.
        options::apply(&self.protocol, &mut Default::default())?;
        Ok(PreparedUpdate { name: name.to_owned(), client_id, issuer_url, endpoints, protocol: self.protocol.clone() })
    }
}

/// Applies the prepared change, and the client secret when given, in one transaction; tokens stay.
///
/// # Errors
/// `NotFound` when there is no such connection, `BadInput` for a flag the connection's grant does not take, the
/// store's own errors otherwise.
pub fn update(
    store: &Store,
    keys: &Keys,
    prepared: PreparedUpdate,
    client_secret: Option<&SecretString>,
) -> Result<Updated, ChangeError> {
    let PreparedUpdate { name, client_id, issuer_url, endpoints: given, protocol } = prepared;
    let mut current = store.connection(&name, keys)?.ok_or_else(|| ChangeError::NotFound(name.clone()))?;
    let client_credentials = current.options.grant == Grant::ClientCredentials;
    if client_credentials {
        let [pkce, auth_params, device] = options::authorization_flags(&protocol);
        let auth_url = ("--auth-url", given.auth_url.is_some());
        options::refuse_authorization_flags(&name, &[pkce, auth_params, device, auth_url])?;
    }
    options::apply(&protocol, &mut current.options)?;
    let options = current.options;
    let token_url_changed = given.token_url.is_some();
    // What the host sends for a client-credentials token: a token it holds was issued for the old request (other
    // scopes, audience, client), so the next use requests a new one.
    let p = &protocol;
    let request_changed = client_id.is_some()
        || client_secret.is_some()
        || token_url_changed
        || p.client_auth.is_some()
        || !p.token_params.is_empty()
        || p.default_scopes.is_some();
    let was = current.status;
    let connection = store.update_registration(
        &name,
        Box::new(|c| {
            if let Some(id) = client_id {
                c.client_id = id;
            }
            if issuer_url.is_some() {
                c.issuer_url = issuer_url;
            }
            let e = &mut c.endpoints;
            let new = [given.auth_url, given.token_url, given.revocation_url, given.userinfo_url];
            let slots = [&mut e.auth_url, &mut e.token_url, &mut e.revocation_url, &mut e.userinfo_url];
            for (slot, new) in slots.into_iter().zip(new) {
                if new.is_some() {
                    *slot = new;
                }
            }
            // The next refresh uses what is resolved: an explicit token URL or client authentication replaces it.
            if let Some(r) = &mut c.resolved {
                if token_url_changed {
                    r.token_url = c.endpoints.token_url.clone().expect("just set");
                }
                if let Some(auth) = &options.client_auth {
                    r.client_auth = auth.clone();
                }
                if c.endpoints.revocation_url.is_some() {
                    r.revocation_url = c.endpoints.revocation_url.clone();
                }
            }
            c.options = options;
            // A client-credentials connection the provider refused a token (a scope, a parameter), or whose token
            // request changed: the next use requests a token with the changed registration, as a new one would.
            let stale = c.status == Status::Authorized && request_changed;
            if client_credentials && (c.status == Status::NeedsAuthorization || stale) {
                c.status = Status::Created;
                c.status_reason = None;
            }
        }),
        client_secret,
        keys,
    )?;
    Ok(Updated { connection, was })
}
