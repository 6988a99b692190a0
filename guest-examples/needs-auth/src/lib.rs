//! `needs-auth`: input `{"connection": NAME}`. Shows how a function tells the failures apart and what to say
//! for each: `needs-authorization` means a person must act (retrying will not help), `unavailable` means the
//! provider or network failed (retry later). Returns `{"status": ..., "message": ...}`.

wit_bindgen::generate!({ world: "function", path: "../../wit", generate_all });

use serde_json::json;
use wasm_host::authconnection::authconnection::{get_connection_token, Error};

struct NeedsAuth;

impl Guest for NeedsAuth {
    fn run(input: String) -> Result<String, String> {
        let input: serde_json::Value = serde_json::from_str(&input).map_err(|e| e.to_string())?;
        let name = input["connection"].as_str().ok_or("input needs {\"connection\": NAME}")?;
        let out = match get_connection_token(name) {
            Ok(token) => json!({
                "status": "ok",
                "message": format!("`{name}` is ready"),
                "expires_at": token.expires_at,
            }),
            Err(Error::NeedsAuthorization(detail)) => json!({
                "status": "needs-authorization",
                "message": format!("`{name}` is not connected: ask an administrator to authorize it. {detail}"),
                "retry": false,
            }),
            Err(Error::Unavailable(detail)) => json!({
                "status": "unavailable",
                "message": format!("the provider behind `{name}` is not answering; try again in a minute. {detail}"),
                "retry": true,
            }),
            Err(Error::AccessDenied(detail)) => json!({ "status": "access-denied", "message": detail, "retry": false }),
            Err(Error::NotFound(detail)) => json!({ "status": "not-found", "message": detail, "retry": false }),
            Err(Error::Internal(detail)) => return Err(format!("internal error: {detail}")),
        };
        Ok(out.to_string())
    }
}

export!(NeedsAuth);
