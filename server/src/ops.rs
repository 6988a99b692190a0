//! The operations listener, apart from the functions' routes: `/healthz` (the process answers), `/readyz`
//! (functions loaded, the store readable, not draining) and `/metrics` (Prometheus text format).

use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::answer::{self, Body};
use crate::server::Server;

impl Server {
    /// Answers one request to the operations listener.
    pub(crate) fn operations<B>(&self, req: &Request<B>) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return answer::error(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "the operations endpoints take GET");
        }
        match req.uri().path() {
            "/healthz" => answer::json(r#"{"status":"ok"}"#.to_owned()),
            "/readyz" => self.readiness(),
            "/metrics" => {
                let mut r = Response::new(answer::full(self.metrics().encode()));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
                );
                r
            }
            other => answer::error(
                StatusCode::NOT_FOUND,
                "no-route",
                &format!("{other}: the operations listener serves /healthz, /readyz and /metrics"),
            ),
        }
    }

    fn readiness(&self) -> Response<Body> {
        let functions = self.routes().len();
        // A read transaction of the store: it opens, and its tables can be read.
        let store = self.host().broker().store().revision("readyz-probe");
        let draining = self.is_draining();
        let ready = functions > 0 && store.is_ok() && !draining;
        let body = serde_json::json!({
            "ready": ready,
            "functions": functions,
            "store": if store.is_ok() { "ok" } else { "unreadable" },
            "draining": draining,
        });
        let mut r = answer::json(body.to_string());
        if !ready {
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
        r
    }
}
