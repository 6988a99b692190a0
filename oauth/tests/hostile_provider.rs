//! A provider that misbehaves, for real: a raw HTTP/1.1 server on 127.0.0.1 (a task of the test's own runtime,
//! stopped when the test ends) answers the token, discovery and JWKS requests badly. Each misbehaviour must give
//! the right typed error, a message that names the problem, and no secret in `Display` or `Debug`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;
use wasm_host_oauth::endpoints::{self, DiscoveryError, EndpointError, EndpointSettings};
use wasm_host_oauth::idtoken::{self, IdTokenError};
use wasm_host_oauth::token::{self, ClientAuth, ClientCredentials, TokenError};
use wasm_host_oauth::Http;

/// Distinctive values: if any of their bytes show up in an error, it leaked.
const CLIENT_SECRET: &str = "cs-9f3cQ7-HOSTILE-CLIENT-SECRET";
const REFRESH_TOKEN: &str = "rt-7Hk2Lw-HOSTILE-REFRESH-TOKEN";
const CODE: &str = "code-Zp41-HOSTILE-AUTH-CODE";

/// What the server answers to one request.
enum Answer {
    /// A whole response: status, content type, body.
    Full(u16, &'static str, Vec<u8>),
    /// A 200 of `total` bytes, sent in 64 KiB chunks, announced by content-length or not (then it ends with the
    /// connection).
    Stream { total: usize, content_length: bool },
    /// Reads the request and never answers.
    Silent,
    /// Sends a head announcing a 100-byte body, then nothing.
    Stall,
}

type Behaviour = Arc<dyn Fn(&str) -> Answer + Send + Sync>;

/// A misbehaving provider. Dropping it stops the server and every connection it holds.
struct Hostile {
    base: String,
    /// Request heads and bodies, in the order they came.
    requests: Arc<Mutex<Vec<String>>>,
    /// Body bytes written by `Answer::Stream`, to show a huge answer was not read to its end.
    streamed: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hostile {
    async fn start(behaviour: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let behaviour: Behaviour = Arc::new(behaviour);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let streamed = Arc::new(AtomicUsize::new(0));
        let (req, str_) = (requests.clone(), streamed.clone());
        let task = tokio::spawn(async move {
            // Aborting this task drops the set, which aborts every connection task.
            let mut connections = tokio::task::JoinSet::new();
            // Bounded: no test here makes more than a few requests.
            for _ in 0..64 {
                let Ok((stream, _)) = listener.accept().await else { break };
                connections.spawn(serve(stream, behaviour.clone(), req.clone(), str_.clone()));
            }
        });
        Self { base, requests, streamed, task }
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.base)).unwrap()
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(mut stream: TcpStream, behaviour: Behaviour, requests: Arc<Mutex<Vec<String>>>, streamed: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) if buf.len() + n > 64 * 1024 => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
        .unwrap_or(0)
        .min(64 * 1024);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let request = String::from_utf8_lossy(&buf).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    requests.lock().unwrap().push(request);
    match behaviour(&path) {
        Answer::Full(status, content_type, body) => {
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&body).await;
        }
        Answer::Stream { total, content_length } => {
            let length = if content_length { format!("content-length: {total}\r\n") } else { String::new() };
            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{length}connection: close\r\n\r\n");
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let piece = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < total {
                let n = piece.len().min(total - sent);
                if stream.write_all(&piece[..n]).await.is_err() {
                    break; // the client stopped reading and closed
                }
                sent += n;
                streamed.fetch_add(n, Ordering::Relaxed);
            }
        }
        Answer::Silent => tokio::time::sleep(Duration::from_secs(120)).await,
        Answer::Stall => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{").await;
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
    }
    let _ = stream.shutdown().await;
}

fn json(body: serde_json::Value) -> Answer {
    Answer::Full(200, "application/json", body.to_string().into_bytes())
}

/// Asserts that no secret of this test appears in the error, however it is printed.
#[track_caller]
fn assert_no_secret(e: &(impl std::fmt::Display + std::fmt::Debug)) {
    for shown in [format!("{e}"), format!("{e:?}"), format!("{e:#?}")] {
        for secret in [CLIENT_SECRET, REFRESH_TOKEN, CODE] {
            assert!(!shown.contains(secret), "the error shows a secret: {shown}");
        }
        // Nor the Basic header that carries the client secret.
        assert!(!shown.contains(&basic_b64()), "the error shows the Basic credentials: {shown}");
    }
}

fn basic_b64() -> String {
    let header = token::basic_authorization("client-1", CLIENT_SECRET);
    use secrecy::ExposeSecret;
    header.expose_secret().trim_start_matches("Basic ").to_owned()
}

/// A refresh against `server`'s /token with a short client timeout; the request must have carried the secrets.
async fn refresh(server: &Hostile, timeout: Duration) -> Result<token::TokenResponse, TokenError> {
    let secret = SecretString::from(CLIENT_SECRET);
    let client = ClientCredentials { id: "client-1", secret: &secret, auth: ClientAuth::Basic };
    let result = token::refresh(&Http::new(timeout), &server.url("/token"), &client, &SecretString::from(REFRESH_TOKEN)).await;
    let requests = server.requests();
    let last = requests.last().expect("the request reached the server");
    assert!(last.contains(REFRESH_TOKEN) && last.contains(&basic_b64()), "the secrets were in play: {last}");
    result
}

/// The refresh error for a server answering `answer` to the token request, checked for secrets.
async fn refresh_error(answer: impl Fn() -> Answer + Send + Sync + 'static) -> TokenError {
    let server = Hostile::start(move |_| answer()).await;
    let e = refresh(&server, Duration::from_secs(10)).await.err().expect("the refresh must fail");
    assert_no_secret(&e);
    e
}

#[tokio::test]
async fn a_token_response_that_is_not_json() {
    // The server echoes the secrets back: a body is never repeated in a message.
    let body = format!("<html><body>Welcome {REFRESH_TOKEN} {CLIENT_SECRET}</body></html>");
    let e = refresh_error(move || Answer::Full(200, "text/html", body.clone().into_bytes())).await;
    assert!(matches!(e, TokenError::Malformed(_)), "{e:?}");
    assert!(e.to_string().contains("not a JSON object"), "{e}");
}

#[tokio::test]
async fn a_huge_token_response_is_cut_off() {
    const FIFTY_MB: usize = 50 * 1024 * 1024;
    for content_length in [false, true] {
        let server = Hostile::start(move |_| Answer::Stream { total: FIFTY_MB, content_length }).await;
        let started = Instant::now();
        let e = refresh(&server, Duration::from_secs(20)).await.err().expect("a 50 MB answer is refused");
        assert_no_secret(&e);
        assert!(matches!(e, TokenError::Malformed(_)), "{e:?}");
        assert!(e.to_string().contains(&format!("larger than {} bytes", token::MAX_TOKEN_RESPONSE)), "{e}");
        // The client stopped reading at the cap (a few socket buffers may be in flight), long before 50 MB.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = server.streamed.load(Ordering::Relaxed);
        assert!(sent < FIFTY_MB / 4, "{sent} bytes were sent before the client gave up (content-length: {content_length})");
        eprintln!("50 MB answer (content-length: {content_length}): refused after {sent} bytes in {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn a_token_response_without_access_token() {
    let e = refresh_error(|| json(serde_json::json!({"token_type": "Bearer", "expires_in": 3600, "refresh_token": REFRESH_TOKEN}))).await;
    assert_eq!(e, TokenError::Malformed("no `access_token`".into()));
    assert!(e.to_string().contains("unusable: no `access_token`"), "{e}");
}

#[tokio::test]
async fn expires_in_as_a_string_and_token_type_in_lower_case_are_accepted() {
    let server = Hostile::start(|_| json(serde_json::json!({"access_token": "at-1", "token_type": "bearer", "expires_in": "3599"}))).await;
    let r = refresh(&server, Duration::from_secs(10)).await.unwrap();
    assert_eq!(r.expires_in, Some(3599));
    assert_eq!(r.token_type, "Bearer");
}

/// A negative lifetime is refused, not read as "already expired": storing such tokens would hand out a token
/// that is dead on arrival and refresh again on every call. The stored connection keeps its tokens; the
/// refresh is reported as a failure worth retrying.
#[tokio::test]
async fn a_negative_expires_in_is_refused() {
    for value in [serde_json::json!(-1), serde_json::json!("-3600")] {
        let e = refresh_error(move || json(serde_json::json!({"access_token": "at-1", "expires_in": value.clone()}))).await;
        assert_eq!(e, TokenError::Malformed("`expires_in` is negative".into()));
        assert!(!e.is_permanent(), "a broken answer is not a refusal of the grant");
    }
}

#[tokio::test]
async fn a_500_with_an_html_body() {
    let body = format!("<!doctype html><h1>Internal Server Error</h1><pre>{REFRESH_TOKEN}</pre>");
    let e = refresh_error(move || Answer::Full(500, "text/html", body.clone().into_bytes())).await;
    assert!(matches!(e, TokenError::Unavailable(_)), "{e:?}");
    assert!(e.to_string().contains("HTTP 500 without an OAuth error"), "{e}");
    assert!(!e.is_permanent(), "a 500 is worth retrying");
}

#[tokio::test]
async fn a_401_without_an_oauth_error_is_the_client_refused() {
    // Retrying with the same credentials gets the same 401: never "try again later".
    for (kind, body) in [("text/html", "<h1>Unauthorized</h1>"), ("application/json", "{}"), ("text/plain", "")] {
        let e = refresh_error(move || Answer::Full(401, kind, body.as_bytes().to_vec())).await;
        assert!(e.is_client_refused() && e.is_permanent(), "{kind} {body:?}: {e:?}");
        assert!(e.to_string().contains("HTTP 401 without an OAuth error"), "{e}");
    }
}

#[tokio::test]
async fn a_token_endpoint_that_never_answers_times_out() {
    let cases: [(fn() -> Answer, &str); 2] = [(|| Answer::Silent, "never answers"), (|| Answer::Stall, "stalls mid-body")];
    for (answer, what) in cases {
        let server = Hostile::start(move |_| answer()).await;
        let started = Instant::now();
        let e = refresh(&server, Duration::from_millis(1500)).await.err().expect("a silent server fails the call");
        let elapsed = started.elapsed();
        assert_no_secret(&e);
        assert!(matches!(e, TokenError::Unavailable(_)), "{what}: {e:?}");
        assert!(e.to_string().contains(&format!("timed out: {}/token", server.base)), "{what}: {e}");
        assert!(elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_secs(10), "{what}: {elapsed:?}");
    }
}

fn discovery_doc(issuer: &str, base: &str) -> serde_json::Value {
    serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/auth"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
    })
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let server = Hostile::start(|_| json(discovery_doc("https://evil.example", "https://evil.example"))).await;
    let http = Http::new(Duration::from_secs(10));
    let e = endpoints::discover(&http, &server.base).await.err().expect("another issuer's document is refused");
    let DiscoveryError::Refused(EndpointError::IssuerMismatch { expected, found, .. }) = &e else { panic!("{e:?}") };
    assert_eq!((expected.as_str(), found.as_str()), (server.base.as_str(), "https://evil.example"));
    // Through `resolve`, as `authorize` sees it: refused at once, not "unreachable", and the message says why.
    let settings = EndpointSettings { provider_url: server.base.clone(), ..Default::default() };
    let e = wasm_host_oauth::resolve(&http, &settings).await.err().expect("refused");
    assert!(!e.is_unreachable(), "{e:?}");
    let shown = e.to_string();
    assert!(shown.contains("names the issuer `https://evil.example`") && shown.contains("check --issuer-url"), "{shown}");
}

#[tokio::test]
async fn a_discovery_document_for_its_own_issuer_is_taken() {
    // A positive control for the test above: the same shape of document, naming the issuer it is fetched for.
    let listener_base = Arc::new(Mutex::new(String::new()));
    let shared = listener_base.clone();
    let server = Hostile::start(move |_| {
        let base = shared.lock().unwrap().clone();
        json(discovery_doc(&base, &base))
    })
    .await;
    *listener_base.lock().unwrap() = server.base.clone();
    let found = endpoints::discover(&Http::new(Duration::from_secs(10)), &server.base).await.unwrap();
    assert_eq!(found.token, server.url("/token"));
}

#[tokio::test]
async fn a_discovery_endpoint_that_never_answers_is_unreachable() {
    let server = Hostile::start(|_| Answer::Silent).await;
    let started = Instant::now();
    let e = endpoints::discover(&Http::new(Duration::from_millis(1500)), &server.base).await.err().expect("times out");
    assert!(matches!(e, DiscoveryError::Unreachable(_)), "{e:?}");
    assert!(e.to_string().starts_with("timed out: "), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// An ES256 key: its JWK and a signer.
struct Key {
    pair: ring::signature::EcdsaKeyPair,
    jwk: serde_json::Value,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Key {
    fn generate(kid: &str) -> Self {
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref().to_vec(); // 0x04 || x || y
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        });
        Self { pair, jwk }
    }

    fn sign(&self, kid: &str, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({ "alg": "ES256", "kid": kid, "typ": "JWT" });
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let sig = self.pair.sign(&ring::rand::SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

#[tokio::test]
async fn a_jwks_that_does_not_verify_the_id_token_is_refused() {
    let (signer, other) = (Key::generate("k1"), Key::generate("k1"));
    let now = 1_800_000_000;
    let claims = serde_json::json!({ "iss": "https://issuer.example", "aud": "client-1", "exp": now + 300, "iat": now, "nonce": "n-1", "sub": "u" });
    let id_token = signer.sign("k1", &claims);
    let expected = idtoken::Expected { issuer: "https://issuer.example", client_id: "client-1", nonce: "n-1", now, leeway: 60 };
    let http = Http::new(Duration::from_secs(10));
    // The provider publishes another key under the same kid.
    let wrong = serde_json::json!({ "keys": [other.jwk.clone()] });
    let server = Hostile::start(move |_| json(wrong.clone())).await;
    let jwks = idtoken::fetch_jwks(&http, &server.url("/jwks")).await.unwrap();
    let e = idtoken::validate(&id_token, &jwks, &expected).unwrap_err();
    assert_eq!(e, IdTokenError::Signature);
    assert!(e.to_string().contains("does not verify against the provider's JWKS"), "{e}");
    // No key under that kid at all.
    let unrelated = serde_json::json!({ "keys": [{ "kty": "RSA", "kid": "r1", "n": "AQAB", "e": "AQAB" }] });
    let server = Hostile::start(move |_| json(unrelated.clone())).await;
    let jwks = idtoken::fetch_jwks(&http, &server.url("/jwks")).await.unwrap();
    assert_eq!(idtoken::validate(&id_token, &jwks, &expected).unwrap_err(), IdTokenError::NoKey);
    // A JWKS that is not one.
    let server = Hostile::start(|_| Answer::Full(200, "text/html", b"<html>keys</html>".to_vec())).await;
    let e = idtoken::fetch_jwks(&http, &server.url("/jwks")).await.err().expect("not a JWKS");
    assert!(matches!(&e, IdTokenError::Jwks(m) if m.contains("is not a JWKS")), "{e:?}");
    // The positive control: the signer's own key verifies it.
    let right = serde_json::json!({ "keys": [signer.jwk.clone()] });
    let server = Hostile::start(move |_| json(right.clone())).await;
    let jwks = idtoken::fetch_jwks(&http, &server.url("/jwks")).await.unwrap();
    assert_eq!(idtoken::validate(&id_token, &jwks, &expected).unwrap().subject().as_str(), "u");
}

#[tokio::test]
async fn a_code_exchange_against_a_broken_provider_shows_no_code() {
    let server = Hostile::start(|_| Answer::Full(502, "text/html", format!("<p>bad gateway for code={CODE}</p>").into_bytes())).await;
    let e = exchange(&server).await.err().expect("a 502 fails the exchange");
    assert!(server.requests()[0].contains(CODE) && server.requests()[0].contains("cs-9f3cQ7"), "the secrets were in play");
    assert_no_secret(&e);
    assert!(matches!(e, TokenError::Unavailable(_)), "{e:?}");
}

/// A code exchange against `server`'s /token (client_secret_post), as `authorize` makes it.
async fn exchange(server: &Hostile) -> Result<token::TokenResponse, TokenError> {
    let secret = SecretString::from(CLIENT_SECRET);
    let client = ClientCredentials { id: "client-1", secret: &secret, auth: ClientAuth::Post };
    token::exchange_code(
        &Http::new(Duration::from_secs(10)),
        &server.url("/token"),
        &client,
        &SecretString::from(CODE),
        "http://127.0.0.1:1/callback",
        Some(&SecretString::from("verifier-1")),
    )
    .await
}

/// Fault kind 1 of issue 12: GitHub refuses a code with `200 {"error": ...}`, Facebook with an `error` object.
/// Both are refusals (permanent, the provider's words kept), to a code exchange and to a refresh alike.
#[tokio::test]
async fn a_refusal_not_shaped_like_rfc_6749_is_still_a_refusal() {
    let github = || json(serde_json::json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired.", "error_uri": "https://docs.github.com/"}));
    let facebook = || Answer::Full(400, "application/json", br#"{"error":{"message":"Invalid verification code format.","type":"OAuthException","code":100}}"#.to_vec());
    let cases: [(fn() -> Answer, &str); 3] = [
        (github, "bad_verification_code (The code passed is incorrect or expired.)"),
        (facebook, "OAuthException (Invalid verification code format.)"),
        (|| Answer::Full(200, "application/x-www-form-urlencoded", b"error=bad_verification_code&error_description=The+code+passed+is+incorrect".to_vec()), "bad_verification_code (The code passed is incorrect)"),
    ];
    for (answer, shown) in cases {
        let server = Hostile::start(move |_| answer()).await;
        let e = exchange(&server).await.err().expect("refused");
        assert_no_secret(&e);
        assert!(matches!(e, TokenError::Rejected { .. }) && e.is_permanent(), "{e:?}");
        assert!(e.to_string().contains(shown), "{e}");
        let e = refresh_error(answer).await;
        assert!(e.is_permanent() && e.to_string().contains(shown), "{e}");
    }
}

/// Fault kind 3: a token response in the form encoding (GitHub's), labelled form or `text/plain`; a JWKS served
/// as `text/plain`.
#[tokio::test]
async fn bodies_are_read_as_providers_send_them() {
    for ct in ["application/x-www-form-urlencoded", "text/plain; charset=utf-8"] {
        let server = Hostile::start(move |_| Answer::Full(200, ct, b"access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist&token_type=bearer".to_vec())).await;
        let r = exchange(&server).await.unwrap();
        assert_eq!(r.token_type, "Bearer");
        assert_eq!(r.scope, Some(vec!["repo".to_string(), "gist".to_string()]));
        use secrecy::ExposeSecret;
        assert!(r.access_token.expose_secret().starts_with("gho_16C7"));
    }
    let key = Key::generate("k1");
    let keys = serde_json::json!({ "keys": [key.jwk.clone()] }).to_string();
    let now = 1_800_000_000;
    let claims = serde_json::json!({ "iss": "https://issuer.example", "aud": "client-1", "exp": now + 300, "iat": now, "nonce": "n-1", "sub": "u" });
    let expected = idtoken::Expected { issuer: "https://issuer.example", client_id: "client-1", nonce: "n-1", now, leeway: 60 };
    // The same tolerance for JWKS (RFC 7517 §8.5's own type among them) and discovery documents.
    for ct in ["text/plain", "application/jwk-set+json", "application/octet-stream"] {
        let keys = keys.clone();
        let server = Hostile::start(move |_| Answer::Full(200, ct, keys.clone().into_bytes())).await;
        let jwks = idtoken::fetch_jwks(&Http::new(Duration::from_secs(10)), &server.url("/jwks")).await.unwrap();
        assert!(idtoken::validate(&key.sign("k1", &claims), &jwks, &expected).is_ok(), "{ct}");
    }
    for ct in ["text/plain", "application/octet-stream"] {
        let issuer = Arc::new(Mutex::new(String::new()));
        let shared = issuer.clone();
        let server = Hostile::start(move |_| {
            let base = shared.lock().unwrap().clone();
            Answer::Full(200, ct, discovery_doc(&base, &base).to_string().into_bytes())
        })
        .await;
        *issuer.lock().unwrap() = server.base.clone();
        let found = endpoints::discover(&Http::new(Duration::from_secs(10)), &server.base).await.unwrap();
        assert_eq!(found.token, server.url("/token"), "{ct}");
    }
}

/// Fault kinds 4, 5 and 9 through a refresh: `expires_in: 0` is no expiry; Slack's `token_type: "bot"` becomes
/// Bearer with the provider's word kept; nested `team.id` is kept, the nested user token is not.
#[tokio::test]
async fn expiry_token_type_and_nested_metadata_as_providers_mean_them() {
    let server = Hostile::start(|_| {
        json(serde_json::json!({
            "ok": true, "access_token": "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy", "token_type": "bot",
            "expires_in": 0, "scope": "commands,incoming-webhook", "bot_user_id": "U0KRQLJ9H",
            "team": {"name": "Slack Softball Team", "id": "T9TK3CUKW"},
            "authed_user": {"id": "U1234", "access_token": "xoxp-1234-HOSTILE-USER-TOKEN", "token_type": "user"}
        }))
    })
    .await;
    let r = refresh(&server, Duration::from_secs(10)).await.unwrap();
    assert_eq!((r.expires_in, r.token_type.as_str()), (None, "Bearer"));
    let get = |k: &str| r.extra.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!((get("provider_token_type"), get("team.id"), get("authed_user.id")), (Some("bot"), Some("T9TK3CUKW"), Some("U1234")));
    assert!(!format!("{:?}", r.extra).contains("HOSTILE-USER-TOKEN"), "{:?}", r.extra);
    // ... it is kept apart, to be sealed like the access token (tests/misbehaving_provider.rs stores it).
    use secrecy::ExposeSecret;
    let credentials: Vec<_> = r.credentials.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect();
    assert_eq!(credentials, [("authed_user.access_token", "xoxp-1234-HOSTILE-USER-TOKEN")]);
}
