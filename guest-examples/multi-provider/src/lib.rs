//! `multi-provider`: input `{"calls": {"calendar": {"connection": "google", "url": "..."},
//! "mail": {"connection": "microsoft", "url": "..."}}}`. Every call runs at the same time, each with its own
//! connection's token; the result maps each name to the API's JSON or to `{"error": ...}`, so one failing
//! provider does not hide what the others returned.

wit_bindgen::generate!({ world: "function", path: "../../wit", generate_all });

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};
use wasm_host::authconnection::authconnection::{get_connection_token, Error};
use wstd::http::{Body, Client, Request};

#[derive(Deserialize)]
struct Call {
    connection: String,
    url: String,
}

#[derive(Deserialize)]
struct Input {
    calls: BTreeMap<String, Call>,
}

struct MultiProvider;

impl Guest for MultiProvider {
    fn run(input: String) -> Result<String, String> {
        let input: Input = serde_json::from_str(&input)
            .map_err(|e| format!("input must be {{\"calls\": {{NAME: {{\"connection\": ..., \"url\": ...}}}}}}: {e}"))?;
        let results = wstd::runtime::block_on(async {
            // One future per call, all polled together: the slowest API sets the pace, not the sum of them.
            let futures: Vec<_> = input.calls.iter().map(|(name, call)| async move { (name.clone(), call_api(call).await) }).collect();
            join_all(futures).await
        });
        let combined: BTreeMap<String, Value> = results.into_iter().collect();
        Ok(Value::from(serde_json::Map::from_iter(combined)).to_string())
    }
}

async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, fut) in out.iter_mut().zip(pinned.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(|v| v.expect("every future finished")).collect()
}

async fn call_api(call: &Call) -> Value {
    let token = match get_connection_token(&call.connection) {
        Ok(t) => t,
        Err(e) => {
            let (kind, message) = match e {
                Error::NotFound(m) => ("not-found", m),
                Error::AccessDenied(m) => ("access-denied", m),
                Error::NeedsAuthorization(m) => ("needs-authorization", m),
                Error::Unavailable(m) => ("unavailable", m),
                Error::Internal(m) => ("internal", m),
            };
            return json!({ "error": kind, "message": message });
        }
    };
    let request = match Request::get(&call.url)
        .header("authorization", format!("{} {}", token.token_type, token.access_token))
        .body(Body::empty())
    {
        Ok(r) => r,
        Err(e) => return json!({ "error": "bad-request", "message": e.to_string() }),
    };
    let response = match Client::new().send(request).await {
        Ok(r) => r,
        Err(e) => return json!({ "error": "http", "message": format!("{e:#}") }),
    };
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let text = body.str_contents().await.map(str::to_owned).unwrap_or_default();
    if !(200..300).contains(&status) {
        return json!({ "error": "http", "status": status });
    }
    serde_json::from_str(&text).unwrap_or_else(|_| json!({ "error": "not-json", "status": status }))
}

export!(MultiProvider);
