//! `api-call`: input `{"url": "https://www.googleapis.com/calendar/v3/users/me/calendarList"}`. GETs the URL and
//! returns its JSON body. There is no token here: run it with `--bind google=https://www.googleapis.com` and
//! the host attaches the connection's credential to the request on its way out (refreshing it when needed,
//! retrying once after a 401), so this code could not leak the token if it tried.

wit_bindgen::generate!({ world: "function", path: "../../wit", generate_all });

use serde::Deserialize;
use wstd::http::{Body, Client, Request};

#[derive(Deserialize)]
struct Input {
    url: String,
}

struct ApiCall;

impl Guest for ApiCall {
    fn run(input: String) -> Result<String, String> {
        let input: Input =
            serde_json::from_str(&input).map_err(|e| format!("input must be {{\"url\": URL}}: {e}"))?;
        wstd::runtime::block_on(get_json(&input.url))
    }
}

async fn get_json(url: &str) -> Result<String, String> {
    let request = Request::get(url)
        .header("accept", "application/json")
        .body(Body::empty())
        .map_err(|e| format!("cannot build a request for {url}: {e}"))?;
    // A refused request (origin not bound or granted, connection needing authorization) comes back as an
    // error whose text says why.
    let response = Client::new().send(request).await.map_err(|e| format!("GET {url} failed: {e:#}"))?;
    let status = response.status();
    let mut body = response.into_body();
    let text = body.str_contents().await.map_err(|e| format!("reading the answer of {url} failed: {e:#}"))?;
    if !status.is_success() {
        return Err(format!("GET {url} answered {status}: {}", text.chars().take(500).collect::<String>()));
    }
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{url} did not answer with JSON: {e}"))?;
    Ok(json.to_string())
}

export!(ApiCall);
