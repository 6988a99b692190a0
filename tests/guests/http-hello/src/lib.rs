//! A component of the `http-function` world (`wasi:http/proxy` plus `authconnection`), served by
//! `wasm-host serve`. `GET .../token/NAME` answers `{"token_type": ..., "expires_at": ...}` from
//! `get-connection-token(NAME)` (or `{"error": CASE}` with status 502); `.../loop` never answers (the timeout
//! test); `.../trap` panics; `.../sleep/MS` answers after MS milliseconds; anything else answers 200 with `{"method", "path", "scheme", "body_bytes"}`
//! (`scheme` as the request reports it: `http`, or `https` behind `--tls-cert`).

wit_bindgen::generate!({ world: "http-function", path: "../../../wit", generate_all });

use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam, Scheme};
use wasm_host::authconnection::authconnection::{get_connection_token, Error};

struct Hello;

impl Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let method = match request.method() {
            Method::Get => "GET".to_owned(),
            Method::Post => "POST".to_owned(),
            Method::Put => "PUT".to_owned(),
            Method::Delete => "DELETE".to_owned(),
            other => format!("{other:?}"),
        };
        let (status, body) = if let Some(name) = path.split("/token/").nth(1) {
            match get_connection_token(name) {
                Ok(t) => (200, serde_json::json!({ "token_type": t.token_type, "expires_at": t.expires_at })),
                Err(e) => {
                    let case = match e {
                        Error::NotFound(_) => "not-found",
                        Error::AccessDenied(_) => "access-denied",
                        Error::NeedsAuthorization(_) => "needs-authorization",
                        Error::Unavailable(_) => "unavailable",
                        Error::Internal(_) => "internal",
                    };
                    (502, serde_json::json!({ "error": case }))
                }
            }
        } else if path.ends_with("/loop") {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        } else if let Some(ms) = path.split("/sleep/").nth(1).and_then(|ms| ms.parse::<u64>().ok()) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            (200, serde_json::json!({ "slept_ms": ms }))
        } else if path.ends_with("/trap") {
            panic!("asked to trap");
        } else {
            let scheme = match request.scheme() {
                Some(Scheme::Http) => "http".to_owned(),
                Some(Scheme::Https) => "https".to_owned(),
                Some(Scheme::Other(other)) => other,
                None => String::new(),
            };
            let body_bytes = read_body(&request);
            (200, serde_json::json!({ "method": method, "path": path, "scheme": scheme, "body_bytes": body_bytes }))
        };
        respond(out, status, &body.to_string());
    }
}

fn read_body(request: &IncomingRequest) -> usize {
    let Ok(body) = request.consume() else { return 0 };
    let Ok(stream) = body.stream() else { return 0 };
    let mut n = 0;
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        n += chunk.len();
    }
    n
}

fn respond(out: ResponseOutparam, status: u16, body: &str) {
    let headers = Fields::from_list(&[("content-type".to_owned(), b"application/json".to_vec())]).unwrap();
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).unwrap();
    let outgoing = response.body().unwrap();
    ResponseOutparam::set(out, Ok(response));
    let stream = outgoing.write().unwrap();
    for chunk in body.as_bytes().chunks(4096) {
        stream.blocking_write_and_flush(chunk).unwrap();
    }
    drop(stream);
    OutgoingBody::finish(outgoing, None).unwrap();
}

export!(Hello);
