//! Remote `authorize --device` on the admin API (RFC 8628): the server sends the device authorization request
//! with the client credentials, which never leave it, keeps the device code sealed in the store (a pending
//! authorization with a device part, store/src/authorization_request.rs) and makes the token requests itself,
//! one per poll of the laptop. Any host of the store can serve any step, as behind a load balancer.
//!
//! A poll takes the pending row (single use: of two polls at once, on two hosts, one gets it) and, while the user
//! has not answered, puts it back under a fresh handle, which the answer carries: the laptop polls with the
//! newest handle. The interval, raised by 5 s at each `slow_down` (§3.5), is kept in the row, and a poll sooner
//! than it is answered `pending` without a token request, so a laptop cannot make the server hammer the provider.
//!
//! | request | answer |
//! |---|---|
//! | `POST /v1/connections/{name}/device-authorization` `{"scopes": [..]?}` (or no body) | 201 `{"connection", "handle", "user_code", "verification_uri", "verification_uri_complete"?, "expires_in", "interval"}`: never the device code |
//! | `POST /v1/device-authorizations/poll` `{"handle"}` | 200 `{"status": "pending", "handle", "interval"}` or `{"status": "authorized", "connection": {..}}` (as `list --json` shows it: no token) |
//!
//! | status | `kind` | when |
//! |---|---|---|
//! | 400 | `bad-input` | the body is not the JSON above, the name is not a connection name, or the handle is a browser authorization's |
//! | 502 | `provider-refused` | the user denied the request at the provider (§3.5 `access_denied`; exit code 11) |
//! | 404 | `unknown-state` | no pending device authorization has this handle (never started with this store, purged) |
//! | 409 | `state-used` | the handle was polled already: poll with the newest handle |
//! | 410 | `state-expired` / `device-code-expired` | the device code expired (exit code 13) |
//! | 404, 409, 502, 503 | from the [`Authorizer`] | as for remote authorize (admin_authorize.rs) |

use http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use wasm_host_store::{Keys, PendingAuthorization, Store, Taken};

use crate::admin_authorize::{bad_request, store_refusal, taken_refusal, Authorizer, Refusal};

/// A device authorization started by [`Authorizer::start_device`]: what the user is shown, and what to keep.
pub struct DeviceStarted {
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    /// Seconds the codes live (§3.2 `expires_in`, capped by the authorizer; the pending row expires then too).
    pub expires_in: i64,
    pub pending: PendingAuthorization,
}

/// What one token request for a pending device authorization found.
pub enum DevicePolled {
    /// Not answered yet: ask again after this many seconds (raised by `slow_down`).
    Pending { interval: i64 },
    /// Approved: the tokens are stored; the connection's JSON (as `list --json` shows it).
    Authorized(Value),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StartBody {
    scopes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PollBody {
    handle: SecretString,
}

/// `POST /v1/connections/{name}/device-authorization`, once authenticated: 201 and what the user is shown.
pub fn start(store: &Store, keys: &Keys, authorizer: &dyn Authorizer, name: &str, body: &[u8]) -> Result<(StatusCode, Value), Refusal> {
    wasm_host_store::validate_name(name).map_err(|e| bad_request(e.to_string()))?;
    let body: StartBody = if body.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        serde_json::from_slice(body).map_err(|e| bad_request(format!("the body must be JSON {{\"scopes\": [..]}} or empty: {e}")))?
    };
    crate::admin_authorize::check_scopes(body.scopes.as_deref())?;
    let started = authorizer.start_device(name, body.scopes.as_deref())?;
    let handle = wasm_host_oauth::authorize::random_token();
    let interval = started.pending.device.as_ref().map_or(5, |d| d.interval);
    store
        .put_authorization_request(&handle, &started.pending, keys, wasm_host_store::now_unix())
        .map_err(|e| store_refusal("keeping a pending device authorization", &e))?;
    tracing::info!(connection = name, "admin API: remote device authorization started");
    let mut answer = json!({
        "connection": name,
        "handle": handle.expose_secret(),
        "user_code": started.user_code,
        "verification_uri": started.verification_uri,
        "expires_in": started.expires_in,
        "interval": interval,
    });
    if let Some(complete) = started.verification_uri_complete {
        answer["verification_uri_complete"] = json!(complete);
    }
    Ok((StatusCode::CREATED, answer))
}

/// `POST /v1/device-authorizations/poll`, once authenticated: at most one token request, then 200 `pending` with
/// the next handle, or `authorized`.
pub fn poll(store: &Store, keys: &Keys, authorizer: &dyn Authorizer, body: &[u8]) -> Result<(StatusCode, Value), Refusal> {
    let body: PollBody =
        serde_json::from_slice(body).map_err(|e| bad_request(format!("the body must be JSON {{\"handle\": ...}}: {e}")))?;
    let now = wasm_host_store::now_unix();
    let taken = store
        .take_authorization_request(body.handle.expose_secret(), keys, now)
        .map_err(|e| store_refusal("taking a pending device authorization", &e))?;
    let mut pending = match taken {
        Taken::Pending(pending) => pending,
        other => return Err(taken_refusal(other)),
    };
    let Some(device) = pending.device.as_mut() else {
        return Err(bad_request(
            "this handle is a browser authorization's state, now used up: start the authorization again".into(),
        ));
    };
    if now >= device.next_poll_at {
        let interval = device.interval;
        match authorizer.poll_device(&pending)? {
            DevicePolled::Authorized(connection) => {
                tracing::info!(connection = pending.connection, "admin API: remote device authorization completed");
                return Ok((StatusCode::OK, json!({ "status": "authorized", "connection": connection })));
            }
            DevicePolled::Pending { interval: next } => {
                let device = pending.device.as_mut().expect("checked above");
                device.interval = next.max(interval);
                device.next_poll_at = now + device.interval;
            }
        }
    }
    let interval = pending.device.as_ref().map_or(5, |d| d.interval);
    let handle = wasm_host_oauth::authorize::random_token();
    store
        .put_authorization_request(&handle, &pending, keys, now)
        .map_err(|e| store_refusal("keeping a pending device authorization", &e))?;
    Ok((StatusCode::OK, json!({ "status": "pending", "handle": handle.expose_secret(), "interval": interval })))
}
