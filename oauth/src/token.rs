//! Token endpoint calls (authorization code, refresh) and what comes back, parsed leniently where providers
//! differ and strictly where a mistake would hand out a bad token. No error here carries a secret: response
//! bodies are never echoed, only the provider's own `error` and `error_description`.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use thiserror::Error;
use url::Url;

use crate::http::{read_capped, BodyError, Http};

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// HTTP Basic with the form-urlencoded id and secret. The default, and what every provider must accept.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

pub struct ClientCredentials<'a> {
    pub id: &'a str,
    pub secret: &'a SecretString,
    pub auth: ClientAuth,
}

/// A successful token response.
pub struct TokenResponse {
    pub access_token: SecretString,
    /// "Bearer" in its canonical spelling whatever case the provider used (RFC 6749 §5.1 says case-insensitive).
    pub token_type: String,
    pub expires_in: Option<i64>,
    pub refresh_token: Option<SecretString>,
    pub id_token: Option<SecretString>,
    /// `None` when the response has no `scope` (RFC 6749 §5.1: then it is the requested scope).
    pub scope: Option<Vec<String>>,
    /// Every other field with a string or number value (`instance_url`, `x_refresh_token_expires_in`, ...).
    pub extra: Vec<(String, String)>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("has_id_token", &self.id_token.is_some())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The provider answered with an OAuth error (RFC 6749 §5.2).
    #[error("the provider refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected { status: u16, error: String, description: Option<String> },
    /// The provider could not be reached or failed (network, timeout, 5xx, 429): worth retrying later.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// A 2xx answer that is not a usable token response.
    #[error("the provider's token response is unusable: {0}")]
    Malformed(String),
}

impl TokenError {
    /// True when retrying cannot help: the grant or the client registration must change.
    pub fn is_permanent(&self) -> bool {
        match self {
            TokenError::Rejected { error, status, .. } => {
                !matches!(error.as_str(), "temporarily_unavailable" | "server_error" | "slow_down")
                    && *status < 500
                    && *status != 429
            }
            _ => false,
        }
    }

    /// The OAuth error code, when the provider gave one.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            TokenError::Rejected { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The longest token lifetime taken as given (100 years): a longer `expires_in` is read as this, so that
/// `now + expires_in` never overflows (`1e300` used to saturate to `i64::MAX` and wrap the expiry sum).
pub const MAX_EXPIRES_IN: i64 = 100 * 365 * 24 * 3600;

/// Token responses are small; anything beyond this is refused rather than read into memory.
pub const MAX_TOKEN_RESPONSE: usize = 256 * 1024;

/// The authorization-code grant, with the PKCE verifier when one was sent.
pub async fn exchange_code(
    http: &Http,
    token_url: &Url,
    client: &ClientCredentials<'_>,
    code: &SecretString,
    redirect_uri: &str,
    verifier: Option<&SecretString>,
) -> Result<TokenResponse, TokenError> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose_secret()),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v.expose_secret()));
    }
    request(http, token_url, client, form).await
}

/// The refresh-token grant.
pub async fn refresh(
    http: &Http,
    token_url: &Url,
    client: &ClientCredentials<'_>,
    refresh_token: &SecretString,
) -> Result<TokenResponse, TokenError> {
    let form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose_secret())];
    request(http, token_url, client, form).await
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64-encoded.
pub fn basic_authorization(id: &str, secret: &str) -> SecretString {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let joined = zeroize::Zeroizing::new(format!("{}:{}", enc(id), enc(secret)));
    SecretString::from(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(joined.as_bytes())))
}

pub(crate) async fn request(
    http: &Http,
    url: &Url,
    client: &ClientCredentials<'_>,
    mut form: Vec<(&str, &str)>,
) -> Result<TokenResponse, TokenError> {
    let req = http.client().post(url.clone()).header("accept", "application/json");
    let req = authenticate(req, &mut form, client);
    let response = req.form(&form).send().await.map_err(|e| TokenError::Unavailable(crate::http::describe(&e)))?;
    let status = response.status().as_u16();
    // The body holds the tokens in plaintext: wiped once parsed.
    let body = zeroize::Zeroizing::new(read_capped(response, MAX_TOKEN_RESPONSE).await.map_err(|e| match e {
        // A success too large to be a token response is a broken provider, not a passing failure.
        BodyError::TooLarge(_) if (200..300).contains(&status) => TokenError::Malformed(e.to_string()),
        _ => TokenError::Unavailable(e.to_string()),
    })?);
    parse_response(status, &body)
}

/// Adds the client's credentials to a request to the token or revocation endpoint: a Basic header, or two form
/// fields.
pub(crate) fn authenticate<'a>(
    req: reqwest::RequestBuilder,
    form: &mut Vec<(&'a str, &'a str)>,
    client: &ClientCredentials<'a>,
) -> reqwest::RequestBuilder {
    match client.auth {
        ClientAuth::Basic => {
            let auth = basic_authorization(client.id, client.secret.expose_secret());
            req.header("authorization", auth.expose_secret())
        }
        ClientAuth::Post => {
            form.push(("client_id", client.id));
            form.push(("client_secret", client.secret.expose_secret()));
            req
        }
    }
}

/// Parses a token endpoint answer: an OAuth error, a token response, or neither.
pub fn parse_response(status: u16, body: &[u8]) -> Result<TokenResponse, TokenError> {
    let json: Option<serde_json::Map<String, Value>> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        if let Some(error) = json.as_ref().and_then(|j| j.get("error")).and_then(Value::as_str) {
            let description = json
                .as_ref()
                .and_then(|j| j.get("error_description"))
                .and_then(Value::as_str)
                .map(|d| crate::shown(d, 300));
            return Err(TokenError::Rejected { status, error: crate::shown(error, 100), description });
        }
        return Err(TokenError::Unavailable(format!("the token endpoint answered HTTP {status} without an OAuth error")));
    }
    let Some(mut json) = json else {
        return Err(TokenError::Malformed(format!("HTTP {status} with a body that is not a JSON object ({} bytes)", body.len())));
    };
    let mut take_string = |field: &str| -> Result<Option<SecretString>, TokenError> {
        match json.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(SecretString::from(s))),
            Some(_) => Err(TokenError::Malformed(format!("`{field}` is not a string"))),
        }
    };
    let access_token = take_string("access_token")?.ok_or_else(|| TokenError::Malformed("no `access_token`".into()))?;
    let refresh_token = take_string("refresh_token")?;
    let id_token = take_string("id_token")?;
    let token_type = match json.remove("token_type") {
        // Some providers (and old Salesforce) omit it; Bearer is the only type in use.
        None | Some(Value::Null) => "Bearer".to_owned(),
        Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => "Bearer".to_owned(),
        Some(Value::String(t)) if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) => t,
        Some(_) => return Err(TokenError::Malformed("`token_type` is not a single word".into())),
    };
    let expires_in = match json.remove("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_f64().map(|f| f as i64).ok_or_else(|| malformed_expiry())?),
        // Some providers send it as a string.
        Some(Value::String(s)) => Some(s.trim().parse::<i64>().map_err(|_| malformed_expiry())?),
        Some(_) => return Err(malformed_expiry()),
    };
    // Negative: refused, not read as "already expired" (a token dead on arrival would be refreshed on every call).
    if expires_in.is_some_and(|e| e < 0) {
        return Err(TokenError::Malformed("`expires_in` is negative".into()));
    }
    let expires_in = expires_in.map(|e| e.min(MAX_EXPIRES_IN));
    let scope = match json.remove("scope") {
        None | Some(Value::Null) => None,
        // Space-separated per RFC 6749; Slack and a few others use commas.
        Some(Value::String(s)) => Some(s.split([' ', ',']).filter(|s| !s.is_empty()).map(String::from).collect()),
        Some(Value::Array(a)) => Some(a.iter().filter_map(|v| v.as_str().map(String::from)).collect()),
        Some(_) => return Err(TokenError::Malformed("`scope` is neither a string nor a list".into())),
    };
    let extra = json
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            Value::Number(n) => Some((k, n.to_string())),
            Value::Bool(b) => Some((k, b.to_string())),
            _ => None,
        })
        .collect();
    Ok(TokenResponse { access_token, token_type, expires_in, refresh_token, id_token, scope, extra })
}

fn malformed_expiry() -> TokenError {
    TokenError::Malformed("`expires_in` is not a number of seconds".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_urlencodes_before_base64() {
        use base64::Engine;
        let header = basic_authorization("my client", "p@ss+w/rd=:%&?~ x");
        let b64 = header.expose_secret().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "my+client:p%40ss%2Bw%2Frd%3D%3A%25%26%3F%7E+x");
    }

    #[test]
    fn lenient_where_providers_differ() {
        let r = parse_response(
            200,
            br#"{"access_token":"a","token_type":"bearer","expires_in":"3599","scope":"x,y","instance_url":"https://na1.example","x_refresh_token_expires_in":8726400}"#,
        )
        .unwrap();
        assert_eq!(r.token_type, "Bearer");
        assert_eq!(r.expires_in, Some(3599));
        assert_eq!(r.scope, Some(vec!["x".into(), "y".into()]));
        assert!(r.extra.contains(&("instance_url".into(), "https://na1.example".into())));
        assert!(r.extra.contains(&("x_refresh_token_expires_in".into(), "8726400".into())));
        let r = parse_response(200, br#"{"access_token":"a"}"#).unwrap();
        assert_eq!((r.token_type.as_str(), r.expires_in, r.scope), ("Bearer", None, None));
    }

    #[test]
    fn strict_where_a_mistake_would_hand_out_a_bad_token() {
        let cases: [(&[u8], &str); 6] = [
            (b"<html>", "not a JSON object"),
            (br#"{"token_type":"Bearer"}"#, "no `access_token`"),
            (br#"{"access_token":5}"#, "`access_token` is not a string"),
            (br#"{"access_token":"a","expires_in":-1}"#, "negative"),
            (br#"{"access_token":"a","expires_in":"soon"}"#, "not a number"),
            (br#"{"access_token":"a","token_type":"Bearer x"}"#, "single word"),
        ];
        for (body, msg) in cases {
            let e = parse_response(200, body).unwrap_err();
            assert!(e.to_string().contains(msg), "{e}");
        }
    }

    /// Found by review (the fuzz runs never built such a number): `now + expires_in` overflowed for `1e300`
    /// (saturated to `i64::MAX`) or `"9223372036854775807"`.
    #[test]
    fn a_huge_expires_in_is_capped() {
        for body in [
            br#"{"access_token":"a","expires_in":1e300}"#.as_slice(),
            br#"{"access_token":"a","expires_in":"9223372036854775807"}"#,
            br#"{"access_token":"a","expires_in":18446744073709551615}"#,
        ] {
            let e = parse_response(200, body).unwrap().expires_in.unwrap();
            assert_eq!(e, MAX_EXPIRES_IN);
            assert!(i64::MAX.checked_sub(e).unwrap() > 4_102_444_800, "now + expires_in fits for centuries");
        }
        assert_eq!(parse_response(200, br#"{"access_token":"a","expires_in":3599.9}"#).unwrap().expires_in, Some(3599));
    }

    /// Found by the `token_response` fuzz target: a provider's `error_description` reached the terminal with its
    /// control characters (an escape sequence could rewrite what the user sees).
    #[test]
    fn provider_texts_lose_their_control_characters() {
        let body = br#"{"error":"invalid_grant\u001b[2J","error_description":"Token expired \u007f\u001b]0;x\u0007"}"#;
        let e = parse_response(400, body).unwrap_err();
        let shown = e.to_string();
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.contains("invalid_grant\\u{1b}[2J"), "{shown}");
        let long = format!("{{\"error\":\"x\",\"error_description\":\"{}\"}}", "\\n".repeat(400));
        let TokenError::Rejected { description, .. } = parse_response(400, long.as_bytes()).unwrap_err() else { panic!() };
        assert_eq!(description.unwrap().chars().count(), 300);
    }

    #[test]
    fn errors_are_classified() {
        let e = parse_response(400, br#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#)
            .unwrap_err();
        assert!(e.is_permanent());
        assert_eq!(e.oauth_error(), Some("invalid_grant"));
        assert!(!parse_response(503, b"busy").unwrap_err().is_permanent());
        assert!(!parse_response(400, br#"{"error":"temporarily_unavailable"}"#).unwrap_err().is_permanent());
        assert!(!parse_response(429, br#"{"error":"slow_down"}"#).unwrap_err().is_permanent());
    }

    #[test]
    fn no_secret_in_messages() {
        let e = parse_response(200, br#"{"access_token":"a","refresh_token":7}"#).unwrap_err();
        assert!(!e.to_string().contains('7'));
        let e = parse_response(200, br#"{"access_token":["SECRET"]}"#).unwrap_err();
        assert!(!e.to_string().contains("SECRET"));
    }
}
