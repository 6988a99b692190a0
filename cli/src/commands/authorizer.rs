//! The server's half of remote authorize (`serve --admin-listen`): the [`Authorizer`] the admin API calls, made of
//! local `authorize`'s own steps (authorize.rs: endpoints, request, callback judging, code exchange, ID-token check,
//! storing), so that a connection authorized from a laptop ends exactly as one authorized on the server.

use std::sync::Arc;

use anyhow::Result;
use http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use wasm_host_oauth::device::{poll_once, Polled};
use wasm_host_oauth::{authorize::Verdict, AuthorizationRequest, CallbackError, ClientCredentials, Http};
use wasm_host_server::admin_authorize::{Authorizer, CallbackReply, Refusal, Started};
use wasm_host_server::admin_device::{DevicePolled, DeviceStarted};
use wasm_host_store::{now_unix, Connection, Grant, Keys, PendingAuthorization, PendingDevice, Store, AUTHORIZATION_TTL};

use super::authorize::{self, Completion};
use super::device;
use crate::exit::{classify, usage, Exit, NotFound};
use crate::output::ConnectionJson;

/// Remote authorize against `store`, sealing with `keys`.
pub struct ServerAuthorizer {
    pub store: Arc<Store>,
    pub keys: Arc<Keys>,
    pub http: Http,
}

impl Authorizer for ServerAuthorizer {
    fn start(&self, name: &str, redirect_uri: &str, scopes: Option<&[String]>) -> Result<Started, Refusal> {
        self.try_start(name, redirect_uri, scopes).map_err(|e| refusal(&e))
    }

    fn complete(&self, pending: &PendingAuthorization, reply: &CallbackReply) -> Result<serde_json::Value, Refusal> {
        self.try_complete(pending, reply).map_err(|e| refusal(&e))
    }

    fn start_device(&self, name: &str, scopes: Option<&[String]>) -> Result<DeviceStarted, Refusal> {
        self.try_start_device(name, scopes).map_err(|e| refusal(&e))
    }

    fn poll_device(&self, pending: &PendingAuthorization) -> Result<DevicePolled, Refusal> {
        self.try_poll_device(pending).map_err(|e| refusal(&e))
    }
}

/// The longest a remote device authorization is kept (seconds), whatever the provider's `expires_in`: 30 minutes,
/// Google's and GitHub's own 15 with room to spare.
pub const DEVICE_TTL: i64 = 1800;

impl ServerAuthorizer {
    /// The connection (authenticated), if it takes an authorization step.
    fn connection(&self, name: &str) -> Result<Connection> {
        let conn = self.store.connection(name, &self.keys)?.ok_or_else(|| NotFound(name.to_owned()))?;
        if conn.options.grant == Grant::ClientCredentials {
            return Err(authorize::no_authorization_step(name));
        }
        Ok(conn)
    }

    fn try_start(&self, name: &str, redirect_uri: &str, scopes: Option<&[String]>) -> Result<Started> {
        let conn = self.connection(name)?;
        let scopes = authorize::requested_scopes(&conn, scopes.map(<[String]>::to_vec));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let endpoints = authorize::resolve_endpoints(&runtime, &self.http, &conn)?;
        let request = AuthorizationRequest::new(&endpoints, &conn.client_id, redirect_uri, &scopes);
        let created_at = now_unix();
        Ok(Started {
            authorization_url: request.url.to_string(),
            pending: PendingAuthorization {
                connection: conn.name,
                redirect_uri: redirect_uri.to_owned(),
                scopes: request.scopes,
                created_at,
                expires_at: created_at + AUTHORIZATION_TTL,
                nonce: request.nonce,
                verifier: request.verifier,
                device: None,
            },
            state: request.state,
        })
    }

    fn try_start_device(&self, name: &str, scopes: Option<&[String]>) -> Result<DeviceStarted> {
        let conn = self.connection(name)?;
        let scopes = authorize::requested_scopes(&conn, scopes.map(<[String]>::to_vec));
        let secret = authorize::client_secret(&self.store, &self.keys, &conn)?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let endpoints = authorize::resolve_endpoints(&runtime, &self.http, &conn)?;
        let device_url = device::device_url(&conn, &endpoints)?;
        let client = ClientCredentials { id: &conn.client_id, secret: &secret, auth: endpoints.client_auth };
        let started = runtime
            .block_on(wasm_host_oauth::device::start(&self.http, &device_url, &endpoints.token, &client, &scopes))
            .map_err(|e| device::failure(name, "the device authorization request", e))?;
        let created_at = now_unix();
        let expires_in = i64::try_from(started.expires_in.as_secs()).unwrap_or(DEVICE_TTL).min(DEVICE_TTL);
        let interval = i64::try_from(started.interval.as_secs()).unwrap_or(5);
        Ok(DeviceStarted {
            pending: PendingAuthorization {
                connection: conn.name,
                redirect_uri: String::new(),
                scopes,
                created_at,
                expires_at: created_at + expires_in,
                nonce: SecretString::from(String::new()),
                verifier: None,
                // The first poll may ask at once: the user may have approved before the laptop's first poll.
                device: Some(PendingDevice { device_code: started.device_code(), interval, next_poll_at: created_at }),
            },
            user_code: started.user_code,
            verification_uri: started.verification_uri,
            verification_uri_complete: started.verification_uri_complete,
            expires_in,
        })
    }

    fn try_poll_device(&self, pending: &PendingAuthorization) -> Result<DevicePolled> {
        let device = pending.device.as_ref().ok_or_else(|| usage("not a device authorization"))?;
        let conn = self.connection(&pending.connection)?;
        let secret = authorize::client_secret(&self.store, &self.keys, &conn)?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let endpoints = authorize::resolve_endpoints(&runtime, &self.http, &conn)?;
        let client = ClientCredentials { id: &conn.client_id, secret: &secret, auth: endpoints.client_auth };
        let interval = std::time::Duration::from_secs(u64::try_from(device.interval).unwrap_or(5));
        let polled = runtime
            .block_on(poll_once(&self.http, &endpoints.token, &client, &device.device_code, interval, &conn.options.token_params))
            .map_err(|e| device::failure(&conn.name, "waiting for the approval", e))?;
        match polled {
            Polled::Pending { interval } => {
                Ok(DevicePolled::Pending { interval: i64::try_from(interval.as_secs()).unwrap_or(device.interval) })
            }
            Polled::Tokens(tokens) => {
                let (_, stored) = device::store_device_tokens(&self.store, &self.keys, &conn, &endpoints, &tokens, &pending.scopes)?;
                Ok(DevicePolled::Authorized(serde_json::to_value(ConnectionJson::from(&stored))?))
            }
        }
    }

    fn try_complete(&self, pending: &PendingAuthorization, reply: &CallbackReply) -> Result<serde_json::Value> {
        let conn = self.connection(&pending.connection)?;
        let secret = authorize::client_secret(&self.store, &self.keys, &conn)?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let endpoints = authorize::resolve_endpoints(&runtime, &self.http, &conn)?;
        // The callback as the laptop's listener received it, judged as local authorize's listener judges it: the
        // provider's error, RFC 9207's issuer, the code, the other parameters.
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("state", reply.state.expose_secret());
        if let Some(code) = &reply.code {
            query.append_pair("code", code.expose_secret());
        }
        for (key, value) in [("error", &reply.error), ("error_description", &reply.error_description), ("iss", &reply.iss)] {
            if let Some(value) = value {
                query.append_pair(key, value);
            }
        }
        for (key, value) in &reply.params {
            query.append_pair(key, value);
        }
        let target = zeroize::Zeroizing::new(format!("/callback?{}", query.finish()));
        let callback = match wasm_host_oauth::authorize::judge(&target, &reply.state, endpoints.issuer.as_deref()) {
            Verdict::Done(callback) => callback,
            Verdict::Refused { error, description } => {
                return Err(authorize::callback_failure(
                    CallbackError::Provider { error, description },
                    &pending.redirect_uri,
                    &pending.scopes,
                ))
            }
            Verdict::Retry(why) => return Err(usage(format!("{why} Nothing was stored; start a new authorization."))),
            Verdict::NotCallback => return Err(usage("the callback could not be read; start a new authorization")),
        };
        let completion = Completion {
            store: &self.store,
            keys: &self.keys,
            conn: &conn,
            secret: &secret,
            http: &self.http,
            endpoints: &endpoints,
            nonce: &pending.nonce,
            verifier: pending.verifier.as_ref(),
            requested: &pending.scopes,
            redirect_uri: &pending.redirect_uri,
            scopes: &pending.scopes,
        };
        let (_, stored) = authorize::complete(&runtime, &completion, &callback)?;
        Ok(serde_json::to_value(ConnectionJson::from(&stored))?)
    }
}

/// The answer for a failed step, by the exit code the same failure has locally; the message is the error's, which
/// never carries a secret.
fn refusal(e: &anyhow::Error) -> Refusal {
    let (status, code) = match classify(e) {
        Exit::Usage => (StatusCode::BAD_REQUEST, "bad-input"),
        Exit::NotFound => (StatusCode::NOT_FOUND, "not-found"),
        Exit::NoAuthorizationStep => (StatusCode::CONFLICT, "no-authorization-step"),
        Exit::ProviderRefused => (StatusCode::BAD_GATEWAY, "provider-refused"),
        Exit::ProviderUnavailable => (StatusCode::BAD_GATEWAY, "provider-unavailable"),
        // The device code expired before the user approved (RFC 8628 §3.5 `expired_token`).
        Exit::CallbackTimeout => (StatusCode::GONE, "device-code-expired"),
        Exit::StoreUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "store-unavailable"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    let message = format!("{e:#}");
    if status.is_server_error() {
        tracing::error!("admin API: remote authorize: {message}");
    }
    Refusal::new(status, code, message)
}
