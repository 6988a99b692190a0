//! The authorization-code flow's front half: the request (PKCE S256, `state`, OIDC `nonce`) and the loopback
//! callback server of RFC 8252 that waits for the provider to send the browser back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use http_body_util::Full;
use hyper::body::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
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
        let mut request = client.authorize_url(move || csrf);
        // oauth2 joins scopes with spaces (RFC 6749 §3.3); a provider that wants commas gets them as one value.
        request = match endpoints.scope_separator {
            sep if sep != ' ' && !scopes.is_empty() => request.add_scope(oauth2::Scope::new(scopes.join(&sep.to_string()))),
            _ => request.add_scopes(scopes.iter().cloned().map(oauth2::Scope::new)),
        };
        request = request.add_extra_param("nonce", nonce.expose_secret().to_owned());
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
    /// RFC 9207's `iss`, when the provider sent one: a listener that could not check it (remote authorize's, on
    /// a laptop that does not know the provider) hands it on to whoever can.
    pub iss: Option<String>,
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

/// A server on 127.0.0.1 that receives the provider's redirect at `/callback` (RFC 8252 §7.3), served by hyper,
/// each connection on its own task: an idle or slow local connection holds only itself. It also serves one
/// one-shot start link that redirects to the authorization URL, so that a browser can be opened without `state`
/// and `nonce` on its command line (which any local user can read).
pub struct CallbackServer {
    listener: TcpListener,
    port: u16,
    start: Mutex<Option<(String, Url)>>,
}

/// How long one connection may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a browser's callback request waits for the code exchange to end, to show its real outcome.
const OUTCOME_WAIT: Duration = Duration::from_secs(120);

impl CallbackServer {
    /// Binds 127.0.0.1:`port` (0 = any free port).
    pub async fn bind(port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        Ok(Self { listener, port, start: Mutex::new(None) })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/callback", self.port)
    }

    /// A link to this server that redirects to `authorization` once, then answers 410: safe to hand to a browser
    /// on its command line, where the authorization URL's `state` and `nonce` must not appear.
    pub fn start_url(&self, authorization: &Url) -> String {
        let path = format!("/start/{}", random_token().expose_secret());
        let link = format!("http://127.0.0.1:{}{path}", self.port);
        *self.start.lock().expect("start link poisoned") = Some((path, authorization.clone()));
        link
    }

    /// Serves requests until one carries the right `state` and a `code` (then the browser's request waits for
    /// [`PendingCallback::finish`] to show the real outcome) or the provider's error, or until `timeout` has
    /// passed, however many other connections are open. A forged or incomplete callback gets an error page and
    /// the wait goes on.
    pub async fn wait(
        self,
        state: &SecretString,
        issuer: Option<&str>,
        timeout: Duration,
    ) -> Result<PendingCallback, CallbackError> {
        let (events, mut received) = mpsc::channel(4);
        let shared = Arc::new(Shared {
            state: state.clone(),
            issuer: issuer.map(str::to_owned),
            start: self.start,
            events,
            finished: AtomicBool::new(false),
        });
        let listener = self.listener;
        let server = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            // Ends when the wait does (the task is aborted, and with it every connection).
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                connections.spawn(serve_connection(stream, shared));
                while connections.try_join_next().is_some() {}
            }
        });
        let server = AbortOnDrop(server);
        let event = tokio::time::timeout(timeout, received.recv()).await;
        match event {
            Err(_) | Ok(None) => Err(CallbackError::Timeout(timeout)),
            Ok(Some(Event::Refused { error, description, written })) => {
                // The browser is shown the refusal before the process ends.
                let _ = tokio::time::timeout(Duration::from_secs(2), written).await;
                Err(CallbackError::Provider { error, description })
            }
            Ok(Some(Event::Done { callback, outcome, written })) => {
                Ok(PendingCallback { callback, outcome: Some(outcome), written: Some(written), _server: server })
            }
        }
    }
}

/// A callback received: its code and parameters, and the browser still waiting to be told how it ended.
pub struct PendingCallback {
    pub callback: Callback,
    outcome: Option<oneshot::Sender<Outcome>>,
    written: Option<oneshot::Receiver<()>>,
    _server: AbortOnDrop,
}

/// What the browser is shown at the end.
pub enum Outcome {
    /// The tokens are stored: the text says so.
    Done(String),
    /// The code exchange or a check failed: the text says what to do (in the terminal too).
    Failed(String),
}

impl PendingCallback {
    /// Shows `outcome` in the browser that brought the callback, and waits (a few seconds at most) until the
    /// page is sent.
    pub async fn finish(mut self, outcome: Outcome) {
        if let Some(tx) = self.outcome.take() {
            let _ = tx.send(outcome);
        }
        if let Some(written) = self.written.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), written).await;
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Event {
    Done { callback: Callback, outcome: oneshot::Sender<Outcome>, written: oneshot::Receiver<()> },
    Refused { error: String, description: Option<String>, written: oneshot::Receiver<()> },
}

struct Shared {
    state: SecretString,
    issuer: Option<String>,
    start: Mutex<Option<(String, Url)>>,
    events: mpsc::Sender<Event>,
    /// A callback was taken: any later one is told so.
    finished: AtomicBool,
}

type Page = hyper::Response<Full<Bytes>>;

/// One connection, HTTP/1.1, its head read within [`HEAD_TIMEOUT`]. When it carried the callback, `written` is
/// signalled once its answer has been sent.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let written: Arc<Mutex<Option<oneshot::Sender<()>>>> = Arc::default();
    let slot = written.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let (shared, slot) = (shared.clone(), slot.clone());
        async move { Ok::<_, std::convert::Infallible>(answer(&shared, request.uri(), &slot).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .keep_alive(false)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
    if let Some(tx) = written.lock().expect("written slot poisoned").take() {
        let _ = tx.send(());
    }
}

async fn answer(shared: &Shared, uri: &hyper::Uri, written: &Mutex<Option<oneshot::Sender<()>>>) -> Page {
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    if let Some(page) = start_redirect(shared, uri.path()) {
        return page;
    }
    let watch = || {
        let (tx, rx) = oneshot::channel();
        *written.lock().expect("written slot poisoned") = Some(tx);
        rx
    };
    match judge(target, &shared.state, shared.issuer.as_deref()) {
        Verdict::NotCallback => page(404, "Not found", "This server only receives the OAuth callback at /callback."),
        Verdict::Retry(why) => {
            tracing::warn!("ignored a callback: {why}");
            page(400, "Authorization not completed", &format!("{why} wasm-host is still waiting for the real callback; start again from the authorization link it printed."))
        }
        _ if shared.finished.swap(true, Ordering::SeqCst) => {
            page(400, "Authorization not completed", "wasm-host has received this authorization's callback already.")
        }
        Verdict::Refused { error, description } => {
            let text = format!(
                "The provider answered `{}`{}. Return to the terminal for what to do next.",
                html_escape(&error),
                description.as_deref().map(|d| format!(": {}", html_escape(d))).unwrap_or_default()
            );
            let _ = shared.events.try_send(Event::Refused { error, description, written: watch() });
            page(400, "Authorization refused", &text)
        }
        Verdict::Done(callback) => {
            let (outcome, shown) = oneshot::channel();
            if shared.events.try_send(Event::Done { callback, outcome, written: watch() }).is_err() {
                return page(400, "Authorization not completed", "wasm-host stopped waiting for this authorization.");
            }
            match tokio::time::timeout(OUTCOME_WAIT, shown).await {
                Ok(Ok(Outcome::Done(text))) => page(200, "Authorization complete", &format!("{} You can close this tab and return to the terminal.", html_escape(&text))),
                Ok(Ok(Outcome::Failed(text))) => page(400, "Authorization failed", &format!("{} Return to the terminal for what to do next.", html_escape(&text))),
                _ => page(400, "Authorization not completed", "wasm-host ended before the authorization was complete; see the terminal."),
            }
        }
    }
}

/// The one-shot start link: a redirect to the authorization URL the first time, 410 after.
fn start_redirect(shared: &Shared, path: &str) -> Option<Page> {
    if !path.starts_with("/start/") {
        return None;
    }
    let mut start = shared.start.lock().expect("start link poisoned");
    let matches = start.as_ref().is_some_and(|(p, _)| constant_time_eq(p.as_bytes(), path.as_bytes()));
    Some(match (matches, start.take_if(|_| matches)) {
        (true, Some((_, url))) => hyper::Response::builder()
            .status(302)
            .header("location", url.as_str())
            .header("cache-control", "no-store")
            .header("referrer-policy", "no-referrer")
            .header("connection", "close")
            .body(Full::new(Bytes::new()))
            .expect("a valid response"),
        _ => page(410, "Link used already", "This start link works once. Open the authorization URL wasm-host printed in the terminal."),
    })
}

fn page(status: u16, title: &str, text: &str) -> Page {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>wasm-host: {title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>{title}</h1><p>{text}</p></body></html>"
    );
    hyper::Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("referrer-policy", "no-referrer")
        .header("connection", "close")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
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
        Some(code) if !code.expose_secret().is_empty() => Verdict::Done(Callback { code, params, iss }),
        _ => Verdict::Retry("The callback carries no authorization `code`.".into()),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
