//! Calls `get-connection-token` for `{"connection": NAME}` and returns what came back, as JSON: the record, or
//! `{"error": CASE, "message": TEXT}`. Tests use it to see exactly what a function is given.

wit_bindgen::generate!({ world: "function", path: "../../../wit", generate_all });

use serde_json::json;
use wasm_host::authconnection::authconnection::{get_connection_token, Error};

struct Probe;

impl Guest for Probe {
    fn run(input: String) -> Result<String, String> {
        let input: serde_json::Value = serde_json::from_str(&input).map_err(|e| e.to_string())?;
        let name = input["connection"].as_str().ok_or("input needs a `connection` string")?;
        let out = match get_connection_token(name) {
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
