//! The authorization-code flow's front half: the request (PKCE S256, `state`, OIDC `nonce`) and the loopback
//! callback server of RFC 8252 that waits for the provider to send the browser back.

use std::time::{Duration, Instant};

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use crate::endpoints::ProviderEndpoints;

/// 256 random bits, base64url: the size of `state`, `nonce` and the PKCE verifier.
pub fn random_token() -> SecretString {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    SystemRandom::new().fill(bytes.as_mut()).expect("the system RNG works");
    SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

/// One authorization attempt: the URL to open and the values its callback must match.
pub struct AuthorizationRequest {
    pub url: Url,
    pub redirect_uri: String,
    pub state: SecretString,
    pub nonce: SecretString,
    pub verifier: Option<SecretString>,
    pub scopes: Vec<String>,
}

impl AuthorizationRequest {
    /// The authorization request of RFC 6749 §4.1.1 as `oauth2` builds it, with `state`, PKCE S256 (RFC 7636)
    /// unless the provider refuses it, the OIDC `nonce`, the provider's required scopes and extra parameters.
    /// The endpoint's own query (`?tenant=...`) is kept.
    pub fn new(endpoints: &ProviderEndpoints, client_id: &str, redirect_uri: &str, scopes: &[String]) -> Self {
        let mut scopes: Vec<String> = scopes.to_vec();
        for s in &endpoints.required_scopes {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        let (state, nonce) = (random_token(), random_token());
        let verifier = endpoints.pkce.then(random_token);
        let client = oauth2::basic::BasicClient::new(oauth2::ClientId::new(client_id.to_owned()))
            .set_auth_uri(oauth2::AuthUrl::from_url(endpoints.authorization.clone()));
        let redirect = oauth2::RedirectUrl::new(redirect_uri.to_owned()).ok();
        let csrf = oauth2::CsrfToken::new(state.expose_secret().to_owned());
        let mut request = client
            .authorize_url(move || csrf)
            .add_scopes(scopes.iter().cloned().map(oauth2::Scope::new))
            .add_extra_param("nonce", nonce.expose_secret().to_owned());
        if let Some(r) = &redirect {
            request = request.set_redirect_uri(std::borrow::Cow::Borrowed(r));
        }
        if let Some(v) = &verifier {
            let v = oauth2::PkceCodeVerifier::new(v.expose_secret().to_owned());
            request = request.set_pkce_challenge(oauth2::PkceCodeChallenge::from_code_verifier_sha256(&v));
        }
        for (k, v) in &endpoints.extra_params {
            request = request.add_extra_param(k.clone(), v.clone());
        }
        let (url, _) = request.url();
        Self { url, redirect_uri: redirect_uri.to_owned(), state, nonce, verifier, scopes }
    }
}

/// What a valid callback carried: the code, and every other parameter (QuickBooks' `realmId`, ...).
pub struct Callback {
    pub code: SecretString,
    pub params: Vec<(String, String)>,
}

#[derive(Debug, Error)]
pub enum CallbackError {
    #[error("the provider refused the authorization: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Provider { error: String, description: Option<String> },
    #[error("no valid callback arrived within {0:?}")]
    Timeout(Duration),
    #[error("the callback server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A server on 127.0.0.1 that receives the provider's redirect at `/callback`.
pub struct CallbackServer {
    listener: TcpListener,
    port: u16,
}

/// Requests to the callback server are a request line and a few headers; refuse anything larger.
const MAX_REQUEST: usize = 16 * 1024;

impl CallbackServer {
    /// Binds 127.0.0.1:`port` (0 = any free port).
    pub async fn bind(port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        Ok(Self { listener, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/callback", self.port)
    }

    /// Serves requests until one carries the right `state` and a `code` (or the provider's error), or until
    /// `timeout`. A forged or incomplete callback gets an error page and the wait goes on.
    pub async fn wait(
        &self,
        state: &SecretString,
        issuer: Option<&str>,
        timeout: Duration,
    ) -> Result<Callback, CallbackError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let accepted = tokio::time::timeout(left, self.listener.accept()).await;
            let Ok(accepted) = accepted else { return Err(CallbackError::Timeout(timeout)) };
            let (mut stream, _) = accepted?;
            let Ok(Some(target)) = tokio::time::timeout(Duration::from_secs(10), read_target(&mut stream)).await else {
                continue;
            };
            match judge(&target, state, issuer) {
                Verdict::NotCallback => respond(&mut stream, 404, "Not found", "This server only receives the OAuth callback at /callback.").await,
                Verdict::Retry(why) => {
                    tracing::warn!("ignored a callback: {why}");
                    respond(&mut stream, 400, "Authorization not completed", &format!("{why} wasm-host is still waiting for the real callback; start again from the authorization link it printed.")).await;
                }
                Verdict::Refused { error, description } => {
                    respond(&mut stream, 400, "Authorization refused", &format!("The provider answered `{}`{}. Return to the terminal for what to do next.", html_escape(&error), description.as_deref().map(|d| format!(": {}", html_escape(d))).unwrap_or_default())).await;
                    return Err(CallbackError::Provider { error, description });
                }
                Verdict::Done(cb) => {
                    respond(&mut stream, 200, "Authorization complete", "wasm-host received the authorization. You can close this tab and return to the terminal.").await;
                    return Ok(cb);
                }
            }
        }
    }
}

/// What the callback server makes of one request.
pub enum Verdict {
    /// Not a request for `/callback`: answered 404.
    NotCallback,
    /// A forged, stale or incomplete callback: answered with an error page, and the wait goes on.
    Retry(String),
    /// The provider's own error, with the right `state`: the authorization ends.
    Refused { error: String, description: Option<String> },
    /// The right `state` and a non-empty `code`.
    Done(Callback),
}

/// Judges a callback request target (`/callback?code=...&state=...`) against the `state` this authorization
/// sent and the issuer it went to. Pure, so that it can be fuzzed: the server only reads and answers.
pub fn judge(target: &str, state: &SecretString, issuer: Option<&str>) -> Verdict {
    let Ok(url) = Url::parse(&format!("http://127.0.0.1{target}")) else { return Verdict::NotCallback };
    if url.path() != "/callback" {
        return Verdict::NotCallback;
    }
    let mut got_state = None;
    let mut code = None;
    let mut error = None;
    let mut description = None;
    let mut iss = None;
    let mut params = Vec::new();
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "state" => got_state = Some(v.into_owned()),
            "code" => code = Some(SecretString::from(v.into_owned())),
            "error" => error = Some(crate::shown(&v, 100)),
            "error_description" => description = Some(crate::shown(&v, 300)),
            "iss" => iss = Some(v.into_owned()),
            "session_state" | "scope" | "authuser" | "prompt" | "hd" => {}
            _ if params.len() < 32 => params.push((k.chars().take(64).collect(), v.chars().take(1024).collect())),
            _ => {}
        }
    }
    let state_ok = got_state.as_deref().is_some_and(|s| constant_time_eq(s.as_bytes(), state.expose_secret().as_bytes()));
    if !state_ok {
        return Verdict::Retry("The callback's `state` does not match this authorization (a stale tab or a forged link).".into());
    }
    // RFC 9207: a provider that names itself must name the one we asked (mix-up defence).
    if let (Some(iss), Some(expected)) = (&iss, issuer)
        && iss.trim_end_matches('/') != expected.trim_end_matches('/')
    {
        return Verdict::Retry("The callback names another issuer than the provider this authorization went to.".into());
    }
    if let Some(error) = error {
        return Verdict::Refused { error, description };
    }
    match code {
        Some(code) if !code.expose_secret().is_empty() => Verdict::Done(Callback { code, params }),
        _ => Verdict::Retry("The callback carries no authorization `code`.".into()),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads the request line and headers; returns the request target of a GET.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() + n > MAX_REQUEST {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    request_target(&buf).map(str::to_owned)
}

/// The target of a GET request line (`GET /callback?... HTTP/1.1`), from the start of a request's head.
pub fn request_target(head: &[u8]) -> Option<&str> {
    let line = std::str::from_utf8(&head[..head.iter().position(|b| *b == b'\r')?]).ok()?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) if target.starts_with('/') => Some(target),
        _ => None,
    }
}

async fn respond(stream: &mut TcpStream, status: u16, title: &str, text: &str) {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>wasm-host: {title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>{title}</h1><p>{text}</p></body></html>"
    );
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nreferrer-policy: no-referrer\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judging_callbacks() {
        let state = SecretString::from("s1");
        assert!(matches!(judge("/other?code=c&state=s1", &state, None), Verdict::NotCallback));
        assert!(matches!(judge("/callback?code=c&state=s2", &state, None), Verdict::Retry(_)));
        assert!(matches!(judge("/callback?code=c", &state, None), Verdict::Retry(_)));
        assert!(matches!(judge("/callback?state=s1", &state, None), Verdict::Retry(_)));
        assert!(matches!(judge("/callback?error=access_denied&state=bad", &state, None), Verdict::Retry(_)));
        assert!(matches!(
            judge("/callback?error=access_denied&error_description=no&state=s1", &state, None),
            Verdict::Refused { .. }
        ));
        assert!(matches!(judge("/callback?code=c&state=s1&iss=https%3A%2F%2Fevil", &state, Some("https://good")), Verdict::Retry(_)));
        let Verdict::Done(cb) = judge("/callback?code=c&state=s1&realmId=42&iss=https%3A%2F%2Fgood", &state, Some("https://good")) else {
            panic!("valid callback refused")
        };
        assert_eq!(cb.code.expose_secret(), "c");
        assert_eq!(cb.params, vec![("realmId".to_string(), "42".to_string())]);
    }

    /// Found by the `callback` fuzz target: the provider's `error` and `error_description` reached the
    /// terminal (through `CallbackError`) with their control characters.
    #[test]
    fn provider_texts_in_a_callback_lose_their_control_characters() {
        let state = SecretString::from("s1");
        let Verdict::Refused { error, description } =
            judge("/callback?error=access_denied%1B%5B2J&error_description=a%00b%7F&state=s1", &state, None)
        else {
            panic!("a refusal")
        };
        assert_eq!(error, "access_denied\\u{1b}[2J");
        assert_eq!(description.as_deref(), Some("a\\u{0}b\\u{7f}"));
        let e = CallbackError::Provider { error, description };
        assert!(!format!("{e} {e:?}").chars().any(char::is_control));
    }

    #[test]
    fn request_lines() {
        assert_eq!(request_target(b"GET /callback?code=c HTTP/1.1\r\nHost: x\r\n\r\n"), Some("/callback?code=c"));
        assert_eq!(request_target(b"POST /callback HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_target(b"GET http://evil/ HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_target(b"GET /callback"), None, "no line end");
    }

    #[test]
    fn request_has_pkce_state_nonce_and_preset_params() {
        let endpoints = crate::endpoints::preset(&Url::parse("https://accounts.google.com").unwrap()).unwrap();
        let req = AuthorizationRequest::new(&endpoints, "cid", "http://127.0.0.1:8080/callback", &["openid".into()]);
        let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"].len(), 43);
        assert_eq!(q["state"].len(), 43);
        assert_eq!(q["access_type"], "offline");
        assert_eq!(q["prompt"], "consent");
        assert_ne!(q["state"], q["nonce"]);
    }
}
