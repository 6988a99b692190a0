//! `userinfo`: input `{"connection": "google", "url": "https://openidconnect.googleapis.com/v1/userinfo"}`.
//! Gets the connection's token from the host, GETs the URL with `Authorization: <token_type> <access_token>`,
//! and returns the JSON body; a non-2xx answer is an error that carries the status. A 401 to a token that had
//! not expired (revoked early, or one without an expiry that ended with its session) is reported to the host with
//! `get-connection-token-after-rejection`, which refreshes it (at most once per rejected token), and the request
//! is sent once more.

wit_bindgen::generate!({ world: "function", path: "../../wit", generate_all });

use serde::Deserialize;
use wasm_host::authconnection::authconnection::{get_connection_token, get_connection_token_after_rejection, Error};
use wstd::http::{Body, Client, Request};

#[derive(Deserialize)]
struct Input {
    connection: String,
    url: String,
}

struct Userinfo;

impl Guest for Userinfo {
    fn run(input: String) -> Result<String, String> {
        let input: Input = serde_json::from_str(&input)
            .map_err(|e| format!("input must be {{\"connection\": NAME, \"url\": URL}}: {e}"))?;
        let token = get_connection_token(&input.connection).map_err(describe)?;
        let authorization = format!("{} {}", token.token_type, token.access_token);
        match wstd::runtime::block_on(get_json(&input.url, &authorization)) {
            Err(Rejected) => {
                let token = get_connection_token_after_rejection(&input.connection, &token.access_token).map_err(describe)?;
                let authorization = format!("{} {}", token.token_type, token.access_token);
                wstd::runtime::block_on(get_json(&input.url, &authorization)).map_err(|_| format!("GET {} answered 401 to a new token too", input.url))?
            }
            Ok(result) => result,
        }
    }
}

/// The API answered 401: it refused the token.
struct Rejected;

async fn get_json(url: &str, authorization: &str) -> Result<Result<String, String>, Rejected> {
    Ok(match get_json_once(url, authorization).await {
        Err(Some(e)) => Err(e),
        Err(None) => return Err(Rejected),
        Ok(json) => Ok(json),
    })
}

/// The JSON body, or an error: `None` for a 401.
async fn get_json_once(url: &str, authorization: &str) -> Result<String, Option<String>> {
    let request = Request::get(url)
        .header("authorization", authorization)
        .header("accept", "application/json")
        .body(Body::empty())
        .map_err(|e| format!("cannot build a request for {url}: {e}"))?;
    let response = Client::new().send(request).await.map_err(|e| format!("GET {url} failed: {e:#}"))?;
    let status = response.status();
    if status.as_u16() == 401 {
        return Err(None);
    }
    let mut body = response.into_body();
    let text = body.str_contents().await.map_err(|e| format!("reading the answer of {url} failed: {e:#}"))?;
    if !status.is_success() {
        return Err(Some(format!("GET {url} answered {status}: {}", text.chars().take(500).collect::<String>())));
    }
    // Re-serialise so the function always returns JSON, whatever whitespace the API used.
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{url} did not answer with JSON: {e}"))?;
    Ok(json.to_string())
}

fn describe(e: Error) -> String {
    match e {
        Error::NotFound(m) => format!("not-found: {m}"),
        Error::AccessDenied(m) => format!("access-denied: {m}"),
        Error::NeedsAuthorization(m) => format!("needs-authorization: {m}"),
        Error::Unavailable(m) => format!("unavailable: {m}"),
        Error::Internal(m) => format!("internal: {m}"),
    }
}

export!(Userinfo);
