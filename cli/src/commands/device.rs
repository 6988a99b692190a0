//! `authorize --device`: the device authorization grant (RFC 8628) for a machine without a browser. Prints where
//! to go and the code to enter, polls the token endpoint (through [`wasm_host_oauth::device`], which keeps the
//! provider's interval and adds 5 s at each `slow_down`) and stores the tokens as the code flow does.

use anyhow::Result;
use secrecy::SecretString;
use url::Url;
use wasm_host_oauth::{device, ClientCredentials, Http, ProviderEndpoints, TokenError};
use wasm_host_store::{now_unix, Connection, Keys, Store};

use super::authorize::{store_tokens, Requested};
use crate::exit::{coded, usage, Exit};
use crate::output::note;

/// What the device flow of one `authorize` needs.
pub struct Device<'a> {
    pub runtime: &'a tokio::runtime::Runtime,
    pub store: &'a Store,
    pub keys: &'a Keys,
    pub conn: &'a Connection,
    pub secret: &'a SecretString,
    pub http: &'a Http,
    pub endpoints: &'a ProviderEndpoints,
    pub scopes: &'a [String],
    /// The longest wait for the user (the code's own lifetime may be shorter).
    pub timeout: std::time::Duration,
}

/// Runs the flow to its end: the sentence to show and the connection as stored, or an error with its exit code
/// (11 denied or refused, 12 unavailable, 13 expired) and nothing stored.
pub fn authorize(d: &Device<'_>) -> Result<(String, Connection)> {
    let name = &d.conn.name;
    let device_url = device_url(d.conn, d.endpoints)?;
    let client = ClientCredentials { id: &d.conn.client_id, secret: d.secret, auth: d.endpoints.client_auth };
    let started = d
        .runtime
        .block_on(device::start(d.http, &device_url, &d.endpoints.token, &client, d.scopes))
        .map_err(|e| failure(name, "the device authorization request", e))?;
    show_code(name, &started.verification_uri, &started.user_code, started.verification_uri_complete.as_deref());
    note!(
        "Waiting up to {} for the approval (asking the provider every {} s) ...",
        humantime::format_duration(d.timeout.min(started.expires_in)),
        started.interval.as_secs()
    );
    let polling = std::time::Instant::now();
    let tokens = d
        .runtime
        .block_on(device::poll(d.http, &d.endpoints.token, &client, &started, d.timeout, &d.conn.options.token_params))
        .map_err(|e| {
            // `oauth2` reports its own deadline as `expired_token` too; when ours (--timeout) came first, say so.
            let ours = d.timeout < started.expires_in && polling.elapsed() >= d.timeout;
            if ours && e.oauth_error() == Some("expired_token") {
                return coded(
                    Exit::CallbackTimeout,
                    format!(
                        "--timeout {} passed before the request was approved (the code lives {}); nothing was \
                         stored; run `wasm-host authconnection authorize {name} --device` again with a longer \
                         --timeout",
                        humantime::format_duration(d.timeout),
                        humantime::format_duration(started.expires_in)
                    ),
                );
            }
            failure(name, "waiting for the approval", e)
        })?;
    store_device_tokens(d.store, d.keys, d.conn, d.endpoints, &tokens, d.scopes)
}

/// The connection's device authorization endpoint: its own setting (from --device-auth-url or the catalog) wins
/// over discovery; none is a usage error that says how to give one.
pub fn device_url(conn: &Connection, endpoints: &ProviderEndpoints) -> Result<Url> {
    let name = &conn.name;
    let device_url = match &conn.options.device_auth_url {
        Some(u) => Some(Url::parse(u).map_err(|e| usage(format!("the stored device authorization URL of `{name}`: {e}")))?),
        None => endpoints.device_authorization.clone(),
    };
    device_url.ok_or_else(|| {
        usage(format!(
            "the provider of `{name}` publishes no device authorization endpoint (RFC 8628): give it with \
             `wasm-host authconnection update {name} --device-auth-url URL`, or authorize in a browser without \
             --device"
        ))
    })
}

/// Where to go and the code to enter (RFC 8628 §3.3), on stderr; the same lines locally and through --remote.
pub fn show_code(name: &str, verification_uri: &str, user_code: &str, complete: Option<&str>) {
    eprintln!("To authorize `{name}`, open {verification_uri} on any device and enter the code {user_code}");
    if let Some(complete) = complete {
        eprintln!("(or open {complete}, which carries the code)");
    }
}

/// Stores the tokens of an approved device authorization of `scopes`: locally, and on a server for --remote.
pub fn store_device_tokens(
    store: &Store,
    keys: &Keys,
    conn: &Connection,
    endpoints: &ProviderEndpoints,
    tokens: &wasm_host_oauth::TokenResponse,
    scopes: &[String],
) -> Result<(String, Connection)> {
    // Counted from the answer, the expiry is later than the provider's by that one poll's round trip (`oauth2`
    // does not say when it sent it), well inside the refresh margin; one second off covers a loopback provider.
    let sent = now_unix() - 1;
    let requested = Requested { scopes, sent };
    // No ID-token check here: the device flow has no nonce, and the ID token came straight from the token
    // endpoint, which OpenID Connect Core §3.1.3.7 (6) accepts in place of its signature.
    store_tokens(store, keys, conn, endpoints, tokens, tokens.extra.clone(), &requested)
}

/// A failed device-flow step as an error with local --device's exit code: 11 denied or refused, 12 unavailable,
/// 13 expired.
pub fn failure(name: &str, step: &str, e: TokenError) -> anyhow::Error {
    let again = format!("nothing was stored; run `wasm-host authconnection authorize {name} --device` again");
    match e.oauth_error() {
        Some("access_denied") => coded(Exit::ProviderRefused, format!("the user denied the request at the provider; {again} and approve it")),
        Some("expired_token") => coded(
            Exit::CallbackTimeout,
            format!("the code expired before the request was approved; {again} and enter the new code sooner"),
        ),
        Some("invalid_client" | "unauthorized_client") => coded(
            Exit::ProviderRefused,
            format!(
                "{step} failed: {e}; check the client ID and secret, and that the app may use the device grant at \
                 the provider; {again}"
            ),
        ),
        _ if e.is_permanent() => coded(Exit::ProviderRefused, format!("{step} failed: {e}; {again}")),
        _ => coded(Exit::ProviderUnavailable, format!("{step} failed: {e}; {again} later")),
    }
}
