//! The admin API's listener (`serve --admin-listen`): operators authenticate with an admin token (`Authorization:
//! Bearer wha_...`, RFC 6750 §2.1) looked up by its SHA-256 in the store and authenticated with the identity.
//! docs/admin-openapi.yaml describes every route; tests/remote.rs checks it against the running server.
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/connections` | 200, every connection as `authconnection list --json` prints them (never a secret) |
//! | `POST /v1/connections` | 201, the connection; body: [`CreateRequest`] with `client_secret` (never echoed) |
//! | `PATCH /v1/connections/{name}` | 200, the connection and `grant_note`; body: [`UpdateRequest`] |
//! | `DELETE /v1/connections/{name}` | 200, `{"name", "deleted": true}` |
//! | `POST /v1/connections/{name}/revoke` | 200, [`Revoked`] (RFC 7009 at the provider, as `authconnection revoke`) |
//! | `GET /v1/providers` | 200, the built-in catalog, as `authconnection providers --json` |
//! | `GET /v1/audit?limit=N` | 200, the last N (default 100) audit entries, oldest first |
//! | `POST /v1/connections/{name}/authorization`, `POST /v1/authorizations/complete` | 201, 200: remote authorize (admin_authorize.rs, which lists its own errors) |
//! | `POST /v1/connections/{name}/device-authorization`, `POST /v1/device-authorizations/poll` | 201, 200: remote authorize --device (admin_device.rs, which lists its own errors) |
//!
//! Every error is `{"error": {"kind": KIND, "message": TEXT}}`:
//!
//! | status | `kind` | when |
//! |---|---|---|
//! | 400 | `bad-input` | a malformed body, name, URL or option (exit code 2 on the command line) |
//! | 401 | `unauthorized` | no `Authorization: Bearer` token, an unknown, revoked or expired one, or a row the identity did not write (with `WWW-Authenticate: Bearer`) |
//! | 403 | `read-only` | a read-only token asked for a change (audited; nothing changes) |
//! | 404 | `not-found` / `no-route` | no such connection (exit code 3) / no such route |
//! | 405 | `method-not-allowed` | a route asked with another method |
//! | 409 | `conflict` | a connection of that name exists (exit code 4) |
//! | 413 | `body-too-large` | a body over 1 MiB (refused as it arrives, before the token is checked) |
//! | 500 | `store` | the store or identity cannot be used (exit code 5; the server log has the cause) |
//! | 502 | `provider-refused` / `provider-unavailable` | the provider refused (exit code 11) / could not be reached (12) |
//! | 503 | `store-unavailable` | the store's database cannot be reached now (exit code 22) |
//!
//! Authentication comes first: without a valid token, every path and method gets the same 401 (only a body over
//! 1 MiB is refused earlier, with 413, as it arrives). Every request
//! other than a GET by a known token is written to the store's audit log (who, what, when, outcome), refused or
//! not; requests without a valid token are not (they would let anyone fill the log), only logged.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use wasm_host_store::{
    admin_token_hash, now_unix, rfc3339, AdminScope, AdminToken, AuditEntry, Keys, Store, ADMIN_TOKEN_PREFIX,
};

use crate::answer::{self, Body};
use crate::manage::{self, ChangeError, ConnectionJson, CreateRequest, UpdateRequest};
use crate::tls::TlsAcceptor;

/// The largest request body taken (a create request is a few hundred bytes).
pub const MAX_BODY: usize = 1 << 20;
/// The audit entries `GET /v1/audit` answers when given no `limit`.
pub const DEFAULT_AUDIT_LIMIT: usize = 100;

/// What the admin listener answers from.
pub struct AdminApi {
    pub store: Arc<Store>,
    pub keys: Arc<Keys>,
    /// Remote authorize (admin_authorize.rs); `None`: its routes answer 404.
    pub authorizer: Option<Arc<dyn crate::admin_authorize::Authorizer>>,
}

/// A request as the admin API answers it: its head and its whole body.
pub struct AdminRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// An answer other than a success: its status, `kind` and message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into() }
    }
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        let kind = e.kind();
        let status = StatusCode::from_u16(kind.status()).expect("a valid status");
        let message = match kind {
            // The cause (a path, a database error) is the operator's to read in the log, not the client's.
            manage::ErrorKind::Store => {
                tracing::error!("admin API: {e}");
                "the store or identity cannot be used; the server log has the cause".to_owned()
            }
            _ => e.to_string(),
        };
        ApiError { status, kind: kind.as_str(), message }
    }
}

/// A success: its status and JSON body.
type Answer = Result<(StatusCode, Value), ApiError>;

impl AdminApi {
    /// Answers one request (blocking: the store's calls are).
    pub fn answer(&self, req: &AdminRequest) -> Response<Body> {
        let token = match self.authenticate(&req.headers) {
            Ok(token) => token,
            Err(e) => return error_response(e),
        };
        let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        let change = req.method != Method::GET;
        let answer = if change && token.scope == AdminScope::ReadOnly {
            Err(ApiError::new(StatusCode::FORBIDDEN, "read-only", "this admin token is read-only: it cannot change anything"))
        } else {
            self.dispatch(req, &segments)
        };
        if change {
            self.audit(&token, req, &segments, &answer);
        }
        match answer {
            Ok((status, body)) => {
                let mut response = answer::json(body.to_string());
                *response.status_mut() = status;
                response
            }
            Err(e) => error_response(e),
        }
    }

    /// One `match` arm a route: (method, path segments) to its handler.
    fn dispatch(&self, req: &AdminRequest, segments: &[&str]) -> Answer {
        match (&req.method, segments) {
            (&Method::GET, ["v1", "connections"]) => self.list(),
            (&Method::POST, ["v1", "connections"]) => self.create(&req.body),
            (&Method::PATCH, ["v1", "connections", name]) => self.update(name, &req.body),
            (&Method::DELETE, ["v1", "connections", name]) => self.delete(name),
            (&Method::POST, ["v1", "connections", name, "revoke"]) => self.revoke(name),
            (&Method::POST, ["v1", "connections", name, "authorization"]) => {
                crate::admin_authorize::start(&self.store, &self.keys, self.authorizer()?, name, &req.body).map_err(Into::into)
            }
            (&Method::POST, ["v1", "authorizations", "complete"]) => {
                crate::admin_authorize::complete(&self.store, &self.keys, self.authorizer()?, &req.body).map_err(Into::into)
            }
            (&Method::POST, ["v1", "connections", name, "device-authorization"]) => {
                crate::admin_device::start(&self.store, &self.keys, self.authorizer()?, name, &req.body).map_err(Into::into)
            }
            (&Method::POST, ["v1", "device-authorizations", "poll"]) => {
                crate::admin_device::poll(&self.store, &self.keys, self.authorizer()?, &req.body).map_err(Into::into)
            }
            (&Method::GET, ["v1", "providers"]) => Ok((StatusCode::OK, json!(wasm_host_oauth::catalog::entries()))),
            (&Method::GET, ["v1", "audit"]) => self.audit_log(req.query.as_deref()),
            (_, ["v1", "connections"] | ["v1", "connections", _] | ["v1", "connections", _, "revoke" | "authorization" | "device-authorization"])
            | (_, ["v1", "authorizations", "complete"] | ["v1", "device-authorizations", "poll"])
            | (_, ["v1", "providers" | "audit"]) => Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                format!("{} {} is not a route; docs/admin-openapi.yaml lists the routes", req.method, req.path),
            )),
            _ => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "no-route",
                format!("{}: no such route; docs/admin-openapi.yaml lists the routes", req.path),
            )),
        }
    }

    /// The remote authorizer, or the 404 of a server without one.
    fn authorizer(&self) -> Result<&dyn crate::admin_authorize::Authorizer, ApiError> {
        self.authorizer.as_deref().ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "no-route", "this server does not authorize connections remotely")
        })
    }

    fn list(&self) -> Answer {
        let connections = self.store.list().map_err(ChangeError::from)?;
        let rows: Vec<ConnectionJson<'_>> = connections.iter().map(ConnectionJson::from).collect();
        Ok((StatusCode::OK, json!(rows)))
    }

    fn create(&self, body: &Bytes) -> Answer {
        let mut request: CreateRequest = parse(body)?;
        let secret = request.client_secret.take().ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "bad-input", "client_secret is missing: give the secret the provider issued")
        })?;
        let prepared = request.prepare()?;
        let conn = manage::create(&self.store, &self.keys, prepared, &secret)?;
        Ok((StatusCode::CREATED, json!(ConnectionJson::from(&conn))))
    }

    fn update(&self, name: &str, body: &Bytes) -> Answer {
        let request: UpdateRequest = parse(body)?;
        let prepared = request.prepare(name)?;
        let updated = manage::update(&self.store, &self.keys, prepared, request.client_secret.as_ref())?;
        let mut answer = json!(ConnectionJson::from(&updated.connection));
        answer["grant_note"] = json!(updated.grant_note());
        Ok((StatusCode::OK, answer))
    }

    fn delete(&self, name: &str) -> Answer {
        manage::delete(&self.store, name)?;
        Ok((StatusCode::OK, json!({ "name": name, "deleted": true })))
    }

    fn revoke(&self, name: &str) -> Answer {
        let revoked = manage::revoke(&self.store, &self.keys, name)?;
        Ok((StatusCode::OK, json!(revoked)))
    }

    fn audit_log(&self, query: Option<&str>) -> Answer {
        let limit = match url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).find(|(k, _)| k == "limit") {
            None => DEFAULT_AUDIT_LIMIT,
            Some((_, v)) => v.parse().map_err(|_| {
                ApiError::new(StatusCode::BAD_REQUEST, "bad-input", "limit is not a whole number: give ?limit=N")
            })?,
        };
        let entries = self.store.audit(limit).map_err(ChangeError::from)?;
        Ok((StatusCode::OK, audit_json(&entries)))
    }

    /// Writes who asked for what, and how it ended, to the store's audit log.
    fn audit(&self, token: &AdminToken, req: &AdminRequest, segments: &[&str], answer: &Answer) {
        let (method, body) = (&req.method, &req.body);
        let (action, connection) = match (method, segments) {
            (&Method::POST, ["v1", "connections"]) => ("create".to_owned(), None),
            (&Method::PATCH, ["v1", "connections", name]) => ("update".to_owned(), Some(*name)),
            (&Method::DELETE, ["v1", "connections", name]) => ("delete".to_owned(), Some(*name)),
            (&Method::POST, ["v1", "connections", name, "revoke"]) => ("revoke".to_owned(), Some(*name)),
            (&Method::POST, ["v1", "connections", name, "authorization"]) => ("authorize-start".to_owned(), Some(*name)),
            (&Method::POST, ["v1", "authorizations", "complete"]) => ("authorize-complete".to_owned(), None),
            (&Method::POST, ["v1", "connections", name, "device-authorization"]) => {
                ("authorize-device-start".to_owned(), Some(*name))
            }
            (&Method::POST, ["v1", "device-authorizations", "poll"]) => ("authorize-device-poll".to_owned(), None),
            (_, ["v1", "connections", name, ..]) => (format!("{method} /{}", segments.join("/")), Some(*name)),
            _ => (format!("{method} /{}", segments.join("/")), None),
        };
        // A create names its connection in the body, an authorization's completion in its answer (or, refused, in
        // the body's `connection`): kept only when it is a valid name; nothing else of a body is written, which
        // may hold a secret (a client secret, an authorization code).
        let named = |field: &str| {
            serde_json::from_slice::<Value>(body).ok().and_then(|b| b[field].as_str().map(str::to_owned))
        };
        let completed = || match answer {
            Ok((_, stored)) => stored["name"].as_str().or(stored["connection"]["name"].as_str()).map(str::to_owned),
            Err(_) => named("connection"),
        };
        let connection = connection
            .map(str::to_owned)
            .or_else(|| match action.as_str() {
                "create" => named("name"),
                "authorize-complete" | "authorize-device-poll" => completed(),
                _ => None,
            })
            .filter(|n| wasm_host_store::validate_name(n).is_ok());
        let outcome = match answer {
            Ok(_) => "ok",
            Err(e) => e.kind,
        };
        self.record(&token.name, &action, connection.as_deref(), outcome);
    }

    /// Appends one entry to the store's audit log: `actor` (the admin token's name) asked for `action` on
    /// `connection`, and it ended in `outcome` (`ok` or an error kind). Never give it a secret or a body. A
    /// failure to write is logged: the change itself is done or refused already.
    pub(crate) fn record(&self, actor: &str, action: &str, connection: Option<&str>, outcome: &str) {
        let entry = AuditEntry {
            at: now_unix(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            connection: connection.map(str::to_owned),
            outcome: outcome.to_owned(),
        };
        if let Err(e) = self.store.append_audit(&entry) {
            tracing::error!("admin API: writing the audit entry of `{}` by `{}`: {e}", entry.action, entry.actor);
        }
    }

    /// The request's admin token, or the 401 to send.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<AdminToken, ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            // The scheme is case-insensitive (RFC 7235 §2.1).
            .and_then(|v| v.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")))
            .map(|(_, token)| token.trim())
            .filter(|t| t.starts_with(ADMIN_TOKEN_PREFIX));
        let Some(token) = token else {
            return Err(unauthorized("send an admin token as `Authorization: Bearer wha_...` (`wasm-host admin token create`)"));
        };
        match self.store.admin_token_by_hash(&admin_token_hash(token), &self.keys) {
            Ok(Some(found)) if found.is_expired(now_unix()) => {
                Err(unauthorized("this admin token has expired; create another with `wasm-host admin token create`"))
            }
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(unauthorized("this admin token is unknown or revoked")),
            Err(e) => {
                // A planted row, or a store that cannot be read: refused either way, the cause in the log.
                tracing::error!("admin API: looking up a presented token: {e}");
                Err(unauthorized("this admin token cannot be verified; the server log has the cause"))
            }
        }
    }
}

/// Audit entries as `admin audit --json` prints them and `GET /v1/audit` answers: `at` in RFC 3339.
pub fn audit_json(entries: &[AuditEntry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                json!({
                    "at": rfc3339(e.at),
                    "actor": e.actor,
                    "action": e.action,
                    "connection": e.connection,
                    "outcome": e.outcome,
                })
            })
            .collect(),
    )
}

/// A JSON request body; a malformed one is said without echoing its values (a body may carry a client secret).
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        let message = if text.starts_with("unknown field") || text.starts_with("missing field") {
            format!("the request body: {text}")
        } else {
            format!(
                "the request body is not the JSON this route takes (line {}, column {}); docs/admin-openapi.yaml \
                 describes it",
                e.line(),
                e.column()
            )
        };
        ApiError::new(StatusCode::BAD_REQUEST, "bad-input", message)
    })
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// `{"error": {"kind": ..., "message": ...}}` with the error's status.
pub(crate) fn error_response(e: ApiError) -> Response<Body> {
    let body = json!({ "error": { "kind": e.kind, "message": e.message } }).to_string();
    let mut response = answer::json(body);
    *response.status_mut() = e.status;
    if e.status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// Serves the admin listener (with `tls`, over TLS) until the task is aborted or the runtime stops.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, api: Arc<AdminApi>, header_timeout: Duration) {
    crate::side_listener::serve(listener, tls, header_timeout, move |req: http::Request<hyper::body::Incoming>| {
        let api = api.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = match crate::body::read_capped(body, MAX_BODY, Duration::from_secs(30)).await {
                Ok(body) => body,
                Err(crate::body::BodyRefused::TooLarge) => {
                    return error_response(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body-too-large",
                        format!("the request body is larger than {MAX_BODY} bytes"),
                    ));
                }
                Err(_) => {
                    return error_response(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad-input",
                        "the request body did not arrive whole within 30 s",
                    ));
                }
            };
            let req = AdminRequest {
                method: parts.method,
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().map(str::to_owned),
                headers: parts.headers,
                body,
            };
            // The store's calls block: off the runtime's threads.
            tokio::task::spawn_blocking(move || api.answer(&req)).await.unwrap_or_else(|_| {
                error_response(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the request failed; the server log has the cause",
                ))
            })
        }
    })
    .await
}
