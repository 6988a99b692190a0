//! `authconnection revoke`: the tokens revoked at the provider (RFC 7009) and deleted from the store.

use std::future::Future;

use wasm_host_oauth::{revoke::revoke as revoke_at, ClientAuth, ClientCredentials, EndpointSettings, Http};
use wasm_host_store::{validate_name, Connection, Keys, SecretField, Status, Store};

use super::{options, ChangeError};

/// What [`revoke`] did (`revoke --json` prints it, with `status: "revoked"`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Revoked {
    pub name: String,
    /// `revoked`.
    pub status: &'static str,
    /// Whether the connection held tokens before.
    pub had_tokens: bool,
    /// Whether the provider's RFC 7009 endpoint was called (false without one: the grant still exists there).
    pub revoked_at_provider: bool,
}

/// Revokes connection `name`'s refresh token, then its access token, at the provider's RFC 7009 endpoint (known
/// from the connection or discovery), then deletes them and marks the connection `revoked`. A provider without a
/// revocation endpoint: the tokens are deleted here only. A connection without tokens is marked revoked.
///
/// # Errors
/// `NotFound`; `ProviderRefused` / `ProviderUnavailable` when the provider refused or could not be reached (the
/// tokens are then kept, so that revoking again can finish); the store's own errors.
pub fn revoke(store: &Store, keys: &Keys, name: &str) -> Result<Revoked, ChangeError> {
    validate_name(name)?;
    let conn = store.connection(name, keys)?.ok_or_else(|| ChangeError::NotFound(name.to_owned()))?;
    let outcome = |had_tokens, revoked_at_provider| Revoked {
        name: conn.name.clone(),
        status: Status::Revoked.as_str(),
        had_tokens,
        revoked_at_provider,
    };
    if conn.status == Status::Revoked || conn.token.is_none() {
        store.mark_revoked(&conn.name, keys)?;
        return Ok(outcome(false, false));
    }
    let http = Http::default();
    let (revocation_url, auth) = match &conn.resolved {
        Some(r) => (r.revocation_url.clone(), if r.client_auth == "post" { ClientAuth::Post } else { ClientAuth::Basic }),
        None => match block_on(wasm_host_oauth::resolve(&http, &endpoint_settings(&conn)?)) {
            Ok(e) => (e.revocation.map(|u| u.to_string()), e.client_auth),
            Err(_) => (conn.endpoints.revocation_url.clone(), ClientAuth::Basic),
        },
    };
    let Some(url) = revocation_url else {
        store.mark_revoked(&conn.name, keys)?;
        return Ok(outcome(true, false));
    };
    let url = url::Url::parse(&url)
        .map_err(|e| ChangeError::BadInput(format!("the stored revocation URL of `{name}` does not parse ({e}); fix it with `update --revocation-url`")))?;
    let secret = store.secret(&conn.name, SecretField::ClientSecret, keys)?.ok_or_else(|| {
        ChangeError::BadInput(format!("`{name}` has no client secret stored; set one with `update --client-secret-stdin`"))
    })?;
    let client = ClientCredentials { id: &conn.client_id, secret: &secret, auth };
    // The refresh token first: revoking it ends the grant, and with it every access token it issued.
    for (field, hint) in [(SecretField::RefreshToken, "refresh_token"), (SecretField::AccessToken, "access_token")] {
        if let Some(token) = store.secret(&conn.name, field, keys)? {
            block_on(revoke_at(&http, &url, &client, &token, hint)).map_err(|e| {
                let message =
                    format!("revoking the {hint} of `{}` failed: {e}; the tokens are kept, run revoke again", conn.name);
                if e.is_permanent() { ChangeError::ProviderRefused(message) } else { ChangeError::ProviderUnavailable(message) }
            })?;
        }
    }
    store.mark_revoked(&conn.name, keys)?;
    Ok(outcome(true, true))
}

/// What discovery needs to know of a connection: its URLs and protocol options.
///
/// # Errors
/// `BadInput` when the stored client authentication is not `basic` or `post`.
pub fn endpoint_settings(conn: &Connection) -> Result<EndpointSettings, ChangeError> {
    Ok(EndpointSettings {
        provider_url: conn.provider_url.clone(),
        issuer_url: conn.issuer_url.clone(),
        auth_url: conn.endpoints.auth_url.clone(),
        token_url: conn.endpoints.token_url.clone(),
        revocation_url: conn.endpoints.revocation_url.clone(),
        userinfo_url: conn.endpoints.userinfo_url.clone(),
        pkce: conn.options.pkce,
        client_auth: options::client_auth(conn.options.client_auth.as_deref())?,
        auth_params: conn.options.auth_params.clone(),
        scope_separator: conn.options.scope_separator,
    })
}

/// Runs a provider call to its end on a runtime of its own: the change functions are blocking (as the store's
/// calls are), called from the command line's main thread or the admin API's blocking pool.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
        .block_on(future)
}
