//! The admin API's listener (`serve --admin-listen`): operators authenticate with an admin token (`Authorization:
//! Bearer wha_...`, RFC 6750 §2.1) looked up by its SHA-256 in the store and authenticated with the identity.
//!
//! | status | `error` | when |
//! |---|---|---|
//! | 200 | | `GET /v1/connections`: every connection, as `authconnection list --json` prints them (never a secret) |
//! | 201, 200 | | `POST /v1/connections/{name}/authorization`, `POST /v1/authorizations/complete`: remote authorize (admin_authorize.rs, which lists its own errors) |
//! | 401 | `unauthorized` | no `Authorization: Bearer` token, an unknown or revoked one, or a row the identity did not write (with `WWW-Authenticate: Bearer`) |
//! | 403 | `read-only` | a read-only token asked for anything but GET or HEAD |
//! | 404 | `no-route` | another path |
//! | 405 | `method-not-allowed` | an admin token asked for a change: no endpoint changes anything yet |
//! | 500 | `store` | the store could not be read (the server log has the cause) |
//!
//! Authentication comes first: without a valid token, every path and method gets the same 401.

use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use wasm_host_store::{admin_token_hash, AdminScope, Connection, Keys, Store, ADMIN_TOKEN_PREFIX};

use crate::answer::{self, Body};

/// Turns connections into the JSON `authconnection list --json` prints: the command line owns that shape.
pub type RenderConnections = Box<dyn Fn(&[Connection]) -> String + Send + Sync>;

/// What the admin listener answers from.
pub struct AdminApi {
    pub store: Arc<Store>,
    pub keys: Arc<Keys>,
    pub render: RenderConnections,
    /// Remote authorize (admin_authorize.rs); `None`: its routes answer 404.
    pub authorizer: Option<Arc<dyn crate::admin_authorize::Authorizer>>,
}

impl AdminApi {
    /// Answers one request (blocking: the store's calls are).
    pub fn answer<B>(&self, req: &Request<B>) -> Response<Body> {
        let scope = match self.authenticate(req) {
            Ok(scope) => scope,
            Err(response) => return response,
        };
        let reads = req.method() == Method::GET || req.method() == Method::HEAD;
        if !reads && scope == AdminScope::ReadOnly {
            return answer::error(StatusCode::FORBIDDEN, "read-only", "this admin token is read-only: it cannot change anything");
        }
        match req.uri().path() {
            "/v1/connections" if reads => match self.store.list() {
                Ok(connections) => answer::json((self.render)(&connections)),
                Err(e) => {
                    tracing::error!("admin API: listing the connections: {e}");
                    answer::error(StatusCode::INTERNAL_SERVER_ERROR, "store", "the store could not be read; the server log has the cause")
                }
            },
            "/v1/connections" => answer::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "/v1/connections takes GET; the admin API changes nothing yet",
            ),
            other => answer::error(StatusCode::NOT_FOUND, "no-route", &format!("{other}: the admin API serves GET /v1/connections")),
        }
    }

    /// The scope of the request's admin token, or the 401 to send.
    pub(crate) fn authenticate<B>(&self, req: &Request<B>) -> Result<AdminScope, Response<Body>> {
        let token = req
            .headers()
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
            Ok(Some(found)) => Ok(found.scope),
            Ok(None) => Err(unauthorized("this admin token is unknown or revoked")),
            Err(e) => {
                // A planted row, or a store that cannot be read: refused either way, the cause in the log.
                tracing::error!("admin API: looking up a presented token: {e}");
                Err(unauthorized("this admin token cannot be verified; the server log has the cause"))
            }
        }
    }
}

fn unauthorized(message: &str) -> Response<Body> {
    let mut response = answer::error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Serves the admin listener until the task is aborted or the runtime stops.
pub async fn serve(listener: TcpListener, api: Arc<AdminApi>, header_timeout: Duration) {
    crate::side_listener::serve(listener, header_timeout, move |req| {
        let api = api.clone();
        async move {
            if crate::admin_authorize::handles(req.uri().path()) {
                return crate::admin_authorize::serve(api, req).await;
            }
            // The store's calls block: off the runtime's threads.
            tokio::task::spawn_blocking(move || api.answer(&req)).await.unwrap_or_else(|_| {
                answer::error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the request failed; the server log has the cause")
            })
        }
    })
    .await
}
