//! What the server answers when it does not pass a function's own answer on: every such answer is JSON,
//! `{"error": CODE, "message": TEXT}`, and never carries a secret (messages name limits and functions, never a
//! token, input or header value).
//!
//! | status | `error` | when |
//! |---|---|---|
//! | 400 | `bad-input` | a JSON function's request body is not JSON |
//! | 404 | `no-route` | no function serves the path |
//! | 405 | `method-not-allowed` | a JSON function was called with another method than POST |
//! | 413 | `body-too-large` | the request body is larger than `--max-body` |
//! | 431 | (hyper's own, empty body) | the request head is larger than `--max-header` |
//! | 408 | `body-timeout` | the request body did not arrive within `--body-timeout` |
//! | 500 | `function-error` | a JSON function's `run` returned `err`; the message is the function's |
//! | 500 | `trap` | the function trapped, exited, overflowed its stack, or failed in the host |
//! | 500 | `memory-limit` | the function hit its `max-memory` |
//! | 502 | `output-too-large` | the function's result is larger than its `max-output` |
//! | 503 | `overloaded` | every invocation slot is busy and the queue is full (with `Retry-After`) |
//! | 503 | `shutting-down` | the server is draining after SIGTERM/SIGINT |
//! | 504 | `timeout` | the function ran past its `timeout` |

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use wasm_host_runtime::{HyperOutgoingBody, InvokeError};

/// A response body as the server sends it: the function's stream, or bytes of our own.
pub type Body = HyperOutgoingBody;

/// Bytes of our own as a response body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// `{"error": code, "message": message}` with `status`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A JSON function's `ok` value as the answer.
pub fn json(body: String) -> Response<Body> {
    let mut response = Response::new(full(body));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// 503 with `Retry-After`: the server is busy now, and will not be in `retry_after_s` seconds, likely.
pub fn overloaded(retry_after_s: u64) -> Response<Body> {
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "every invocation slot is busy and the queue is full; retry after the Retry-After delay",
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    response
}

/// How an invocation that did not finish maps to an answer, and the short outcome name metrics and logs use.
pub fn invoke_error(function: &str, e: &InvokeError) -> (Response<Body>, &'static str) {
    let (status, code) = match e {
        InvokeError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        InvokeError::MemoryLimit(_) => (StatusCode::INTERNAL_SERVER_ERROR, "memory-limit"),
        InvokeError::OutputTooLarge { .. } => (StatusCode::BAD_GATEWAY, "output-too-large"),
        InvokeError::Trap(_) | InvokeError::StackOverflow | InvokeError::Exit(_) | InvokeError::Host(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "trap")
        }
    };
    // A trap's message carries the guest's backtrace: it goes to the log line, not to the client.
    let message = match e {
        InvokeError::Trap(_) | InvokeError::Host(_) => {
            format!("function `{function}` failed (the server log has the details under this request's id)")
        }
        other => format!("function `{function}`: {other}"),
    };
    (error(status, code, &message), code)
}
