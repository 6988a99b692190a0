//! Remote authorize on the admin API: the browser and the loopback callback are on the operator's laptop, while
//! the server builds the authorization request, keeps its `state` (as a hash), `nonce` and PKCE verifier in the
//! store (store/src/authorization_request.rs: 10 minutes, single use, any host of the store can finish it), and
//! exchanges the code with the client secret, which never leaves it. The shape follows Vault's OIDC CLI login and
//! RFC 8252 (native apps): the redirect URI is a loopback IP literal with any port (§7.3), never `localhost`
//! (§8.3).
//!
//! | request | answer |
//! |---|---|
//! | `POST /v1/connections/{name}/authorization` `{"redirect_uri": "http://127.0.0.1:PORT/callback", "scopes": [..]?}` | 201 `{"authorization_url", "state", "expires_at", "connection", "redirect_uri"}` |
//! | `POST /v1/authorizations/complete` `{"state", "code"}` or `{"state", "error", "error_description"?}`, optionally `"iss"` (RFC 9207), `"params"` {other callback parameters}, `"connection"` (checked) | 200: the connection as `authconnection list --json` shows it (never a token) |
//!
//! | status | `kind` | when |
//! |---|---|---|
//! | 400 | `bad-input` | the body is not the JSON above, or the name is not a connection name |
//! | 400 | `bad-redirect-uri` | the redirect URI is not `http://127.0.0.1:PORT/callback` or `http://[::1]:PORT/callback` |
//! | 400 | `wrong-connection` | `connection` names another connection than the state's (the state is used up) |
//! | 404 | `unknown-state` | no pending authorization has this state (never started with this store, or purged) |
//! | 409 | `state-used` | the state was completed or refused already: a replay |
//! | 410 | `state-expired` | the authorization is older than 10 minutes |
//! | 404, 409, 502, 503 | from the [`Authorizer`] | no such connection, no authorization step, the provider refused or is unreachable, the store is down |
//!
//! Authentication, the read-only check and the audit entry are admin.rs's, as for every route; errors take its
//! shape, `{"error": {"kind", "message"}}`.

use http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use serde_json::Value;
use wasm_host_store::{rfc3339, Keys, PendingAuthorization, Store, Taken, WriteError};

use crate::admin::ApiError;

/// What builds authorization requests and exchanges codes for the server: the command line's own `authorize`
/// code (endpoint resolution, PKCE, nonce, the code exchange, the ID-token check, storing the tokens), so remote
/// and local authorize are one flow. Blocking: called off the runtime's threads.
pub trait Authorizer: Send + Sync {
    /// Builds the authorization request for connection `name` as local `authorize` does, for `redirect_uri`
    /// (already checked) and `scopes` (the connection's default scopes when `None`).
    fn start(&self, name: &str, redirect_uri: &str, scopes: Option<&[String]>) -> Result<Started, Refusal>;

    /// Judges the callback the laptop brought back for `pending` (taken from the store), exchanges its code,
    /// checks the ID token's nonce and stores the tokens; the connection's JSON (as `list --json` shows it).
    fn complete(&self, pending: &PendingAuthorization, reply: &CallbackReply) -> Result<Value, Refusal>;

    /// Sends the device authorization request (RFC 8628 §3.1) for connection `name` as local `authorize
    /// --device` does; what to show and what to keep (admin_device.rs).
    fn start_device(&self, name: &str, scopes: Option<&[String]>) -> Result<crate::admin_device::DeviceStarted, Refusal>;

    /// Makes one token request (§3.4) for `pending`'s device code; on approval stores the tokens as local
    /// `authorize --device` does.
    fn poll_device(&self, pending: &PendingAuthorization) -> Result<crate::admin_device::DevicePolled, Refusal>;
}

/// A request built by [`Authorizer::start`]: the URL for the laptop's browser, its `state`, and what to keep.
pub struct Started {
    pub authorization_url: String,
    pub state: SecretString,
    pub pending: PendingAuthorization,
}

/// What the provider's redirect to the laptop's loopback listener carried, as the laptop posts it back.
#[derive(Deserialize)]
pub struct CallbackReply {
    pub state: SecretString,
    pub code: Option<SecretString>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// RFC 9207's issuer identification, checked against the provider the request went to.
    pub iss: Option<String>,
    /// The callback's other parameters (QuickBooks' `realmId`), kept as metadata as local authorize does.
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
    /// The connection the laptop meant: checked against the state's.
    pub connection: Option<String>,
}

/// An answer other than success: its status, `error` code and message (never a secret).
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Refusal { status, code, message: message.into() }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        ApiError::new(r.status, r.code, r.message)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    redirect_uri: String,
    scopes: Option<Vec<String>>,
}

pub(crate) fn bad_request(message: String) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, "bad-input", message)
}

/// `POST /v1/connections/{name}/authorization` with `body`, once authenticated: 201 and the request for the laptop.
pub fn start(
    store: &Store,
    keys: &Keys,
    authorizer: &dyn Authorizer,
    name: &str,
    body: &[u8],
) -> Result<(StatusCode, Value), Refusal> {
    wasm_host_store::validate_name(name).map_err(|e| bad_request(e.to_string()))?;
    let body: StartBody = serde_json::from_slice(body).map_err(|e| {
        bad_request(format!("the body must be JSON {{\"redirect_uri\": \"http://127.0.0.1:PORT/callback\"}}: {e}"))
    })?;
    check_redirect_uri(&body.redirect_uri)?;
    check_scopes(body.scopes.as_deref())?;
    let started = authorizer.start(name, &body.redirect_uri, body.scopes.as_deref())?;
    let now = wasm_host_store::now_unix();
    store
        .put_authorization_request(&started.state, &started.pending, keys, now)
        .map_err(|e| store_refusal("keeping a pending authorization", &e))?;
    tracing::info!(connection = name, "admin API: remote authorization started");
    let body = json!({
        "connection": name,
        "authorization_url": started.authorization_url,
        "state": secrecy::ExposeSecret::expose_secret(&started.state),
        "redirect_uri": body.redirect_uri,
        "expires_at": rfc3339(started.pending.expires_at),
    });
    Ok((StatusCode::CREATED, body))
}

/// Scopes asked for in a body: at least one, none empty or with a space (RFC 6749 §3.3).
pub(crate) fn check_scopes(scopes: Option<&[String]>) -> Result<(), Refusal> {
    if scopes.is_some_and(|s| s.is_empty() || s.iter().any(|s| s.is_empty() || s.contains(' '))) {
        return Err(bad_request("`scopes` must list at least one scope, each without spaces; leave it out for the connection's defaults".into()));
    }
    Ok(())
}

/// RFC 8252 §7.3: `http`, a loopback IP literal, any port, the path local authorize listens on (`/callback`);
/// §8.3: not `localhost`, which may resolve elsewhere or be bound by another program.
fn check_redirect_uri(value: &str) -> Result<(), Refusal> {
    let refuse = |why: &str| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad-redirect-uri",
            format!(
                "redirect_uri {}: {why}; give http://127.0.0.1:PORT/callback or http://[::1]:PORT/callback, a loopback \
                 listener on the machine with the browser (RFC 8252 §7.3; `localhost` is refused, §8.3)",
                wasm_host_store::printable(value)
            ),
        )
    };
    let url = url::Url::parse(value).map_err(|e| refuse(&format!("not a URL ({e})")))?;
    if url.scheme() != "http" {
        return Err(refuse("the scheme must be http (the listener is on loopback)"));
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => {}
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => {}
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
            return Err(refuse("`localhost` is a name, not a loopback address"))
        }
        _ => return Err(refuse("the host is not a loopback IP address")),
    }
    if url.port().is_none() {
        return Err(refuse("it names no port"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("it carries credentials, a query or a fragment"));
    }
    if url.path() != "/callback" {
        return Err(refuse("the path must be /callback"));
    }
    Ok(())
}

/// `POST /v1/authorizations/complete` with `body`, once authenticated: 200 and the connection as stored.
pub fn complete(store: &Store, keys: &Keys, authorizer: &dyn Authorizer, body: &[u8]) -> Result<(StatusCode, Value), Refusal> {
    let reply: CallbackReply = serde_json::from_slice(body).map_err(|e| {
        bad_request(format!("the body must be JSON {{\"state\": ..., \"code\": ...}} (or \"error\" instead of \"code\"): {e}"))
    })?;
    let state = secrecy::ExposeSecret::expose_secret(&reply.state).to_owned();
    if state.is_empty() || (reply.code.is_none() && reply.error.is_none()) {
        return Err(bad_request("send the callback's `state` and its `code` (or the provider's `error`)".into()));
    }
    let now = wasm_host_store::now_unix();
    let taken = store
        .take_authorization_request(&state, keys, now)
        .map_err(|e| store_refusal("taking a pending authorization", &e))?;
    let pending = match taken {
        Taken::Pending(pending) if pending.device.is_some() => {
            return Err(bad_request(
                "this state is a device authorization's handle, now used up: start the device authorization again".into(),
            ))
        }
        Taken::Pending(pending) => pending,
        other => return Err(taken_refusal(other)),
    };
    if let Some(meant) = reply.connection.as_deref().filter(|meant| *meant != pending.connection) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "wrong-connection",
            format!(
                "this state belongs to an authorization of `{}`, not of `{}`; nothing was stored, and the state is \
                 used up: start the authorization of `{}` again",
                pending.connection,
                wasm_host_store::printable(meant),
                wasm_host_store::printable(meant)
            ),
        ));
    }
    let connection = authorizer.complete(&pending, &reply)?;
    tracing::info!(connection = pending.connection, "admin API: remote authorization completed");
    Ok((StatusCode::OK, connection))
}

/// The answer for a take that found no pending request.
pub(crate) fn taken_refusal(taken: Taken) -> Refusal {
    match taken {
        Taken::Unknown => {
            Refusal::new(
                StatusCode::NOT_FOUND,
                "unknown-state",
                "no pending authorization has this state: it was not started with this server's store, or it expired \
                 over an hour ago; start again with POST /v1/connections/NAME/authorization",
            )
        }
        Taken::Used { connection } => {
            Refusal::new(
                StatusCode::CONFLICT,
                "state-used",
                format!(
                    "the authorization of `{connection}` with this state was completed or refused already: a state works \
                     once; start a new authorization"
                ),
            )
        }
        Taken::Expired { connection, expired_at } => {
            Refusal::new(
                StatusCode::GONE,
                "state-expired",
                format!(
                    "the authorization of `{connection}` with this state expired at {} (its lifetime ended); start a \
                     new one",
                    rfc3339(expired_at)
                ),
            )
        }
        Taken::Pending(_) => unreachable!("a pending request is not refused"),
    }
}

/// A store failure as an answer: 503 when the database may be back later, else 500; the cause in the log.
pub(crate) fn store_refusal(doing: &str, e: &WriteError) -> Refusal {
    tracing::error!("admin API: {doing}: {e}");
    if e.is_unavailable() {
        Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "store-unavailable", "the store cannot be reached now; retry once it is back")
    } else {
        Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "store", "the store refused the operation; the server log has the cause")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_loopback_ip_literals_with_a_port() {
        for good in ["http://127.0.0.1:41234/callback", "http://[::1]:8080/callback", "http://127.0.0.2:1/callback"] {
            assert!(check_redirect_uri(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("http://localhost:8080/callback", "`localhost` is a name"),
            ("https://127.0.0.1:8080/callback", "scheme must be http"),
            ("http://example.com:8080/callback", "not a loopback IP"),
            ("http://10.0.0.1:8080/callback", "not a loopback IP"),
            ("http://127.0.0.1/callback", "no port"),
            ("http://127.0.0.1:8080/elsewhere", "path must be /callback"),
            ("http://127.0.0.1:8080/callback?x=1", "a query"),
            ("http://u:p@127.0.0.1:8080/callback", "credentials"),
            ("not a url", "not a URL"),
        ] {
            let refusal = check_redirect_uri(bad).unwrap_err();
            assert_eq!((refusal.status, refusal.code), (StatusCode::BAD_REQUEST, "bad-redirect-uri"), "{bad}");
            assert!(refusal.message.contains(why), "{bad}: {}", refusal.message);
        }
    }

}
