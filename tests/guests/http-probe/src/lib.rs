//! Sends the HTTP requests the binding tests need. Input:
//! `{"url": URL, "method": "GET", "body": TEXT, "headers": {NAME: VALUE}, "follow": BOOL, "token": CONNECTION,
//!   "repeat": N}`. With `follow`, redirects are followed (up to 5 hops), as a browser's fetch would; with
//! `token`, the function reads that connection's token and sends it itself (the baseline a binding replaces);
//! `repeat` sends the request N times. Returns `{"status": N, "body": TEXT, "headers": {NAME: VALUE},
//! "hops": [URL, ...]}` for the last
//! request, or the transport error's text; with `"keep_going": true`, failed requests are counted instead and
//! `{"failed": N, "last_error": TEXT}` is returned.

wit_bindgen::generate!({ world: "function", path: "../../../wit", generate_all });

use serde_json::{json, Value};
use wasm_host::authconnection::authconnection::get_connection_token;
use wstd::http::{Body, Client, Method, Request};

struct HttpProbe;

impl Guest for HttpProbe {
    fn run(input: String) -> Result<String, String> {
        let input: Value = serde_json::from_str(&input).map_err(|e| e.to_string())?;
        let repeat = input["repeat"].as_u64().unwrap_or(1).max(1);
        let keep_going = input["keep_going"].as_bool().unwrap_or(false);
        let mut last = String::new();
        let (mut failed, mut last_error) = (0u64, String::new());
        for _ in 0..repeat {
            match wstd::runtime::block_on(probe(&input)) {
                Ok(out) => last = out,
                Err(e) if keep_going => (failed, last_error) = (failed + 1, e),
                Err(e) => return Err(e),
            }
        }
        if keep_going && failed > 0 {
            return Ok(json!({ "failed": failed, "last_error": last_error }).to_string());
        }
        Ok(last)
    }
}

async fn probe(input: &Value) -> Result<String, String> {
    let mut url = input["url"].as_str().ok_or("no url")?.to_owned();
    let method = input["method"].as_str().unwrap_or("GET");
    let follow = input["follow"].as_bool().unwrap_or(false);
    let mut hops = vec![url.clone()];
    loop {
        let mut request = Request::builder().method(Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?).uri(&url);
        if let Some(headers) = input["headers"].as_object() {
            for (k, v) in headers {
                request = request.header(k.as_str(), v.as_str().unwrap_or_default());
            }
        }
        if let Some(name) = input["token"].as_str() {
            let token = get_connection_token(name).map_err(|e| format!("{e:?}"))?;
            request = request.header("authorization", format!("Bearer {}", token.access_token));
        }
        let body = match input["body"].as_str() {
            Some(text) => Body::from(text.to_owned()),
            None => Body::empty(),
        };
        let request = request.body(body).map_err(|e| e.to_string())?;
        let response = Client::new().send(request).await.map_err(|e| format!("request failed: {e:#}"))?;
        let status = response.status();
        if follow && status.is_redirection() && hops.len() <= 5 {
            if let Some(location) = response.headers().get("location").and_then(|l| l.to_str().ok()) {
                url = location.to_owned();
                hops.push(url.clone());
                continue;
            }
        }
        let headers: serde_json::Map<String, Value> = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned())))
            .collect();
        let mut body = response.into_body();
        let text = body.str_contents().await.map_err(|e| format!("reading the body failed: {e:#}"))?.to_owned();
        return Ok(json!({ "status": status.as_u16(), "body": text, "headers": headers, "hops": hops }).to_string());
    }
}

export!(HttpProbe);
