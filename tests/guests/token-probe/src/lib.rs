//! Calls `get-connection-token` for `{"connection": NAME}` (`get-connection-token-after-rejection` when the input
//! also has `"rejected": TOKEN`) and returns what came back, as JSON: the record, or `{"error": CASE, "message":
//! TEXT}`. Tests use it to see exactly what a function is given.
//!
//! With `"summary": true` it returns only `{"token_bytes": N}` (the access token's length), and with
//! `"call": false` as well it does not call `get-connection-token` at all (`N` is 0): two functions that differ
//! only in that call, for the benchmark of its cost through `wasm-host serve` (scripts/bench-serve.sh).

wit_bindgen::generate!({ world: "function", path: "../../../wit", generate_all });

use serde_json::json;
use wasm_host::authconnection::authconnection::{get_connection_token, get_connection_token_after_rejection, Error};

struct Probe;

impl Guest for Probe {
    fn run(input: String) -> Result<String, String> {
        let input: serde_json::Value = serde_json::from_str(&input).map_err(|e| e.to_string())?;
        let name = input["connection"].as_str().ok_or("input needs a `connection` string")?;
        if input["summary"].as_bool() == Some(true) {
            let bytes = match input["call"].as_bool() {
                Some(false) => 0,
                _ => get_connection_token(name).map(|t| t.access_token.len()).unwrap_or(0),
            };
            return Ok(json!({ "token_bytes": bytes }).to_string());
        }
        let answer = match input["rejected"].as_str() {
            Some(rejected) => get_connection_token_after_rejection(name, rejected),
            None => get_connection_token(name),
        };
        let out = match answer {
            Ok(t) => json!({
                "access_token": t.access_token,
                "token_type": t.token_type,
                "expires_at": t.expires_at,
                "refresh_token": t.refresh_token,
                "scopes": t.scopes,
                "metadata": t.metadata.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            }),
            Err(e) => {
                let (case, message) = match e {
                    Error::NotFound(m) => ("not-found", m),
                    Error::AccessDenied(m) => ("access-denied", m),
                    Error::NeedsAuthorization(m) => ("needs-authorization", m),
                    Error::Unavailable(m) => ("unavailable", m),
                    Error::Internal(m) => ("internal", m),
                };
                json!({ "error": case, "message": message })
            }
        };
        Ok(out.to_string())
    }
}

export!(Probe);
