//! What real providers send, reshaped into what RFC 6749 §5.1/§5.2 (and so `oauth2`) expects, before the library
//! reads it. `oauth2` counts only HTTP 200 as success, reads only `application/json`, and reads a refusal only as
//! `{"error": "<code>"}`; real providers answer otherwise (each case below names one), and the library offers no
//! hook but its HTTP client, which is where this runs.

use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// A token endpoint's answer as `oauth2` reads it: the status and a JSON body.
pub(crate) struct Reshaped {
    pub status: u16,
    pub body: Zeroizing<Vec<u8>>,
}

/// Reshapes a token endpoint's answer (status, `Content-Type`, body):
/// - a body sent as `application/x-www-form-urlencoded` or `text/plain` in that encoding (GitHub without an
///   `Accept` it honours: `access_token=gho_x&scope=repo,gist&token_type=bearer`) becomes the JSON object of its
///   pairs;
/// - a JSON `error` that is an object (Facebook: `{"error":{"message":"...","type":"OAuthException","code":100}}`)
///   becomes `error` = its `type` (or `code`), `error_description` = its `message`;
/// - a 2xx carrying `error` and no `access_token` (GitHub's `200 {"error":"bad_verification_code"}`) is a
///   refusal: HTTP 400;
/// - any other 2xx is read as the 200 it means.
///
/// A body that is none of these is passed on as it is, for the parser to call it what it is.
pub(crate) fn token_answer(status: u16, content_type: Option<&str>, body: Zeroizing<Vec<u8>>) -> Reshaped {
    let Some(mut json) = object(&body, content_type) else {
        return Reshaped { status: if (200..300).contains(&status) { 200 } else { status }, body };
    };
    if let Some(Value::Object(inner)) = json.get("error") {
        let code = match (inner.get("type"), inner.get("code")) {
            (Some(Value::String(t)), _) if !t.is_empty() => t.clone(),
            (_, Some(Value::String(c))) if !c.is_empty() => c.clone(),
            (_, Some(Value::Number(n))) => n.to_string(),
            _ => "invalid_request".to_owned(),
        };
        let message = inner.get("message").and_then(Value::as_str).map(str::to_owned);
        json.insert("error".into(), Value::String(code));
        if let Some(m) = message {
            json.entry("error_description").or_insert(Value::String(m));
        }
    }
    let refusal = json.get("error").is_some_and(|e| e.is_string()) && !json.contains_key("access_token");
    let status = match status {
        200..300 if refusal => 400,
        200..300 => 200,
        s => s,
    };
    let body = Zeroizing::new(serde_json::to_vec(&json).expect("a JSON map serialises"));
    // The map's strings (tokens among them) are dropped here; serde_json does not wipe them.
    drop(json);
    Reshaped { status, body }
}

/// The body as a JSON object: parsed as JSON whatever the `Content-Type` says, else as form pairs when the type is
/// form-urlencoded or `text/plain`.
fn object(body: &[u8], content_type: Option<&str>) -> Option<Map<String, Value>> {
    if let Ok(map) = serde_json::from_slice::<Map<String, Value>>(body) {
        return Some(map);
    }
    let media = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media != "application/x-www-form-urlencoded" && media != "text/plain" {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?.trim();
    let mut map = Map::new();
    for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
        // A plain-text page is not a form: every key must be a parameter name.
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
            return None;
        }
        map.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    (!map.is_empty()).then_some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reshape(status: u16, ct: &str, body: &str) -> (u16, serde_json::Value) {
        let r = token_answer(status, Some(ct), Zeroizing::new(body.as_bytes().to_vec()));
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    #[test]
    fn provider_shapes_become_rfc_6749() {
        let (s, j) = reshape(200, "application/x-www-form-urlencoded", "access_token=gho_x&scope=repo%2Cgist&token_type=bearer");
        assert_eq!((s, j["access_token"].as_str(), j["scope"].as_str()), (200, Some("gho_x"), Some("repo,gist")));
        let (s, j) = reshape(200, "text/plain; charset=utf-8", "access_token=gho_x&token_type=bearer");
        assert_eq!((s, j["token_type"].as_str()), (200, Some("bearer")));
        let (s, j) = reshape(200, "application/json", r#"{"error":"bad_verification_code","error_description":"The code is wrong"}"#);
        assert_eq!((s, j["error"].as_str()), (400, Some("bad_verification_code")));
        let (s, j) = reshape(200, "application/x-www-form-urlencoded", "error=bad_verification_code&error_description=x");
        assert_eq!((s, j["error"].as_str()), (400, Some("bad_verification_code")));
        let (s, j) = reshape(400, "application/json", r#"{"error":{"message":"Invalid code","type":"OAuthException","code":100}}"#);
        assert_eq!((s, j["error"].as_str(), j["error_description"].as_str()), (400, Some("OAuthException"), Some("Invalid code")));
        let (s, _) = reshape(201, "application/json", r#"{"access_token":"a"}"#);
        assert_eq!(s, 200);
    }

    #[test]
    fn pages_are_not_forms() {
        let r = token_answer(200, Some("text/plain"), Zeroizing::new(b"Welcome, see <a href=x>".to_vec()));
        assert_eq!(&r.body[..], b"Welcome, see <a href=x>");
        let r = token_answer(500, Some("text/html"), Zeroizing::new(b"a=b".to_vec()));
        assert_eq!((r.status, &r.body[..]), (500, &b"a=b"[..]));
    }
}
