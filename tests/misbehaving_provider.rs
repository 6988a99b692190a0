//! The real `wasm-host` binary against a token endpoint that misbehaves: a raw HTTP/1.1 server on 127.0.0.1,
//! run by a thread of this test and stopped when it ends. A refresh that gets a broken answer fails with a
//! message naming the problem, shows no secret, and leaves the stored connection exactly as it was.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasm_host_store::secrecy::ExposeSecret;
use wasm_host_store::{Connection, Keys, SecretField, Status, Store};
use wasm_host_tests::api::Api;
use wasm_host_tests::{test_guest, Env};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");
const CLIENT_SECRET: &str = "cs-Q2m8-CLI-HOSTILE-SECRET";
const REFRESH_TOKEN: &str = "rt-Vb61-CLI-ORIGINAL-REFRESH";
const ACCESS_TOKEN: &str = "at-Kd93-CLI-ORIGINAL-ACCESS";
/// The second token of [`Mode::Slack`]'s answer.
const USER_TOKEN: &str = "xoxp-Hq27-CLI-SLACK-USER-TOKEN";

/// How the token endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// The first authorization's tokens (30 s access token, so every `run` with a 60 s margin refreshes).
    Authorize,
    NotJson,
    /// 50 MB, streamed without content-length.
    Huge,
    NoAccessToken,
    NegativeExpiry,
    Html500,
    /// Rotated tokens, `expires_in` as a string and `token_type` in lower case.
    Rotate,
    /// GitHub's refusal: `200 {"error": "bad_verification_code", ...}` (fault kind 1 of issue 12).
    GithubRefusal,
    /// Rotated tokens for the client secret in [`Provider::secret`], else `401 invalid_client` (kind 2).
    CheckSecret,
    /// The first authorization's tokens without a refresh token, as at a second consent (kind 6).
    NoRefreshToken,
    /// Salesforce's answer: tokens without `expires_in` (kind 7).
    NoExpiry,
    /// A server that refuses PKCE, Basic credentials and requests without `audience=api.example` at the token
    /// endpoint, and authorization requests without `token_access_type=offline` (kind 8).
    Strict,
    /// Tokens that expire within the 60 s refresh margin, at every request (kind 4).
    ShortLived,
    /// Slack's answer: `token_type: bot`, nested values and a second token among them (kind 9).
    Slack,
    /// The answer in [`Provider::script`], to every token request (issue 13's catalog entries).
    Scripted,
}

struct Provider {
    base: String,
    mode: Arc<Mutex<Mode>>,
    token_requests: Arc<AtomicUsize>,
    /// The client secret [`Mode::CheckSecret`] accepts.
    secret: Arc<Mutex<String>>,
    /// Every request, head and body, in the order they came.
    log: Arc<Mutex<Vec<String>>>,
    /// What [`Mode::Scripted`] answers: status and JSON body.
    script: Arc<Mutex<(u16, serde_json::Value)>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Provider {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(Mutex::new(Mode::Authorize));
        let token_requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let secret = Arc::new(Mutex::new(CLIENT_SECRET.to_owned()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (m, t, s) = (mode.clone(), token_requests.clone(), stop.clone());
        let script = Arc::new(Mutex::new((200, serde_json::Value::Null)));
        let (sec, l, sc) = (secret.clone(), log.clone(), script.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: each test makes a few dozen requests.
            for stream in listener.incoming().take(200) {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let mode = *m.lock().unwrap();
                    let accepted = sec.lock().unwrap().clone();
                    let scripted = sc.lock().unwrap().clone();
                    serve(stream, mode, &t, &accepted, &l, scripted);
                }
            }
        });
        Self { base, mode, token_requests, secret, log, script, stop, thread: Some(thread) }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.base.trim_start_matches("http://")); // wakes the accept
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    mut stream: TcpStream,
    mode: Mode,
    token_requests: &AtomicUsize,
    secret: &str,
    log: &Mutex<Vec<String>>,
    scripted: (u16, serde_json::Value),
) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while buf.len() < head_end + length.min(64 * 1024) {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let target = head.split(' ').nth(1).unwrap_or("/").to_owned();
    let request = String::from_utf8_lossy(&buf).into_owned();
    log.lock().unwrap().push(request.clone());
    if target.starts_with("/authorize") {
        // An authorization server that approves at once: back to the client's callback with a code.
        let url = url::Url::parse(&format!("http://x{target}")).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        let refused = match mode {
            Mode::Strict if q.contains_key("code_challenge") => Some("invalid_request&error_description=This+server+does+not+support+PKCE"),
            Mode::Strict if q.get("token_access_type").map(String::as_str) != Some("offline") => Some("invalid_request&error_description=token_access_type+missing"),
            _ => None,
        };
        let location = match refused {
            Some(error) => format!("{}?error={error}&state={}", q["redirect_uri"], q["state"]),
            None => format!("{}?code=code-1&state={}", q["redirect_uri"], q["state"]),
        };
        let _ = write!(stream, "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
    }
    token_requests.fetch_add(1, Ordering::SeqCst);
    let json = |body: serde_json::Value| (200, "application/json", body.to_string().into_bytes());
    let (status, content_type, body) = match mode {
        Mode::Authorize => json(serde_json::json!({
            "access_token": ACCESS_TOKEN, "refresh_token": REFRESH_TOKEN, "expires_in": 30, "token_type": "Bearer",
        })),
        // It echoes what it was sent: a body is never repeated in a message.
        Mode::NotJson => (200, "text/html", format!("<html>{}</html>", String::from_utf8_lossy(&buf)).into_bytes()),
        Mode::Huge => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n");
            let piece = vec![b' '; 64 * 1024];
            for _ in 0..800 {
                if stream.write_all(&piece).is_err() {
                    break; // the client stopped reading at its cap
                }
            }
            return;
        }
        Mode::NoAccessToken => json(serde_json::json!({ "token_type": "Bearer", "refresh_token": "rt-new" })),
        Mode::NegativeExpiry => json(serde_json::json!({ "access_token": "at-new", "expires_in": -5, "refresh_token": "rt-new" })),
        Mode::Html500 => (500, "text/html", format!("<h1>Oops</h1><pre>{}</pre>", String::from_utf8_lossy(&buf)).into_bytes()),
        Mode::Rotate => json(serde_json::json!({
            "access_token": "at-rotated", "refresh_token": "rt-rotated", "expires_in": "3600", "token_type": "bearer",
        })),
        Mode::GithubRefusal => json(serde_json::json!({
            "error": "bad_verification_code", "error_description": "The code passed is incorrect or expired.",
            "error_uri": "https://docs.github.com/apps/troubleshooting",
        })),
        Mode::CheckSecret if basic_credentials(&head).is_some_and(|(id, s)| id == "client-1" && s == secret) => json(serde_json::json!({
            "access_token": "at-rotated", "refresh_token": "rt-rotated", "expires_in": 3600, "token_type": "Bearer",
        })),
        Mode::CheckSecret => (401, "application/json", br#"{"error":"invalid_client","error_description":"Client authentication failed"}"#.to_vec()),
        Mode::NoExpiry => json(serde_json::json!({ "access_token": ACCESS_TOKEN, "refresh_token": REFRESH_TOKEN, "token_type": "Bearer", "instance_url": "https://na1.example" })),
        Mode::Scripted => (scripted.0, "application/json", scripted.1.to_string().into_bytes()),
        Mode::ShortLived => json(serde_json::json!({ "access_token": "at-short-lived", "expires_in": 30, "token_type": "Bearer" })),
        Mode::Slack => json(serde_json::json!({
            "ok": true, "access_token": "xoxb-slack-bot", "refresh_token": REFRESH_TOKEN, "expires_in": 30, "token_type": "bot",
            "team": { "id": "T1", "name": "Acme" }, "authed_user": { "id": "U1", "access_token": USER_TOKEN },
        })),
        Mode::NoRefreshToken => json(serde_json::json!({ "access_token": "at-second", "expires_in": 30, "token_type": "Bearer" })),
        Mode::Strict => {
            let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
            let form: std::collections::HashMap<_, _> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
            if form.contains_key("code_verifier") {
                (400, "application/json", br#"{"error":"invalid_request","error_description":"This server does not support PKCE"}"#.to_vec())
            } else if basic_credentials(&head).is_some() || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET) {
                (401, "application/json", br#"{"error":"invalid_client","error_description":"client_secret_post only"}"#.to_vec())
            } else if form.get("audience").map(String::as_str) != Some("api.example") {
                (400, "application/json", br#"{"error":"invalid_request","error_description":"audience missing"}"#.to_vec())
            } else if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
                json(serde_json::json!({ "access_token": "at-strict-refreshed", "expires_in": 3600, "token_type": "Bearer" }))
            } else {
                json(serde_json::json!({ "access_token": ACCESS_TOKEN, "refresh_token": REFRESH_TOKEN, "expires_in": 30, "token_type": "Bearer" }))
            }
        }
    };
    let _ = write!(stream, "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
    let _ = stream.write_all(&body);
    // Close gently: end our side, then wait for the client's end, so that no reset can overtake the answer.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.read(&mut chunk);
}

/// The client id and secret of a request's `authorization: Basic` header, form-decoded (RFC 6749 §2.3.1).
fn basic_credentials(head: &str) -> Option<(String, String)> {
    use base64::Engine;
    let value = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("authorization").then(|| value.trim().to_owned())
    })?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(value.strip_prefix("Basic ")?).ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    let dec = |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some((dec(id)?, dec(secret)?))
}

/// The stored state a failed refresh must not touch.
#[derive(Debug, PartialEq)]
struct Stored {
    revision: Option<u64>,
    refresh_token: Option<String>,
    access_token: Option<String>,
    record: Connection,
}

fn stored(env: &Env) -> Stored {
    let keys = Keys::load(&env.identity()).unwrap().unwrap();
    let store = Store::open(&env.store()).unwrap();
    let secret = |f| store.secret("hostile", f, &keys).unwrap().map(|s| s.expose_secret().to_owned());
    let record = store.get("hostile").unwrap().expect("the connection exists");
    Stored {
        revision: store.revision("hostile").unwrap(),
        refresh_token: secret(SecretField::RefreshToken),
        access_token: secret(SecretField::AccessToken),
        record,
    }
}

#[test]
fn a_broken_refresh_answer_leaves_the_stored_connection_as_it_was() {
    let provider = Provider::start();
    let env = Env::new(BIN);
    let base = &provider.base;
    env.run_stdin(
        &[
            "authconnection", "create", "--name", "hostile", "--type", "TYPE_OAUTH2", "--provider-url", base,
            "--auth-url", &format!("{base}/authorize"), "--token-url", &format!("{base}/token"),
            "--client-id", "client-1", "--client-secret-stdin",
        ],
        CLIENT_SECRET,
    )
    .success();
    env.authorize("hostile", &["--scopes", "read", "--timeout", "30s"], true).0.success();
    let before = stored(&env);
    assert_eq!(before.refresh_token.as_deref(), Some(REFRESH_TOKEN));
    assert_eq!(before.record.status, Status::Authorized);
    assert!(before.record.token.as_ref().is_some_and(|t| t.has_refresh_token));
    assert_eq!(provider.token_requests.load(Ordering::SeqCst), 1);

    let guest = test_guest("token-probe");
    let probe = || {
        env.run(&[
            "run", guest.to_str().unwrap(), "--input", r#"{"connection":"hostile"}"#,
            "--allow-connection", "hostile", "--refresh-margin", "60s",
        ])
    };
    let cases = [
        (Mode::NotJson, "the provider's token response is unusable: HTTP 200 with a body that is not a JSON object"),
        (Mode::Huge, "the provider's token response is unusable: the answer is larger than 262144 bytes"),
        (Mode::NoAccessToken, "the provider's token response is unusable: no `access_token`"),
        (Mode::NegativeExpiry, "the provider's token response is unusable: `expires_in` is negative"),
        (Mode::Html500, "the provider is unavailable: the token endpoint answered HTTP 500 without an OAuth error"),
    ];
    for (mode, problem) in cases {
        provider.set(mode);
        let requests = provider.token_requests.load(Ordering::SeqCst);
        let run = probe();
        let t = run.success().json();
        assert_eq!(provider.token_requests.load(Ordering::SeqCst), requests + 1, "{mode:?}: the refresh reached the provider");
        assert_eq!(t["error"], "unavailable", "{mode:?}: {t}");
        let message = t["message"].as_str().unwrap();
        assert!(message.contains("refreshing `hostile` failed, try again later") && message.contains(problem), "{mode:?}: {message}");
        for secret in [CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN] {
            assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "{mode:?} shows a secret: {run:?}");
        }
        assert_eq!(stored(&env), before, "{mode:?} changed the stored connection");
    }

    // The control: a good answer is stored (rotated refresh token, lower-case token type, string expiry).
    provider.set(Mode::Rotate);
    let t = probe().success().json();
    assert_eq!((t["access_token"].as_str(), t["token_type"].as_str()), (Some("at-rotated"), Some("Bearer")), "{t}");
    let after = stored(&env);
    assert_eq!(after.refresh_token.as_deref(), Some("rt-rotated"));
    assert!(after.revision > before.revision);
}

/// A connection `hostile` at `provider`, created with `extra` options and authorized.
fn authorized(provider: &Provider, extra: &[&str]) -> Env {
    let env = Env::new(BIN);
    let base = &provider.base;
    let (auth, token) = (format!("{base}/authorize"), format!("{base}/token"));
    let mut args = vec![
        "authconnection", "create", "--name", "hostile", "--type", "TYPE_OAUTH2", "--provider-url", base,
        "--auth-url", &auth, "--token-url", &token, "--client-id", "client-1", "--client-secret-stdin",
    ];
    args.extend_from_slice(extra);
    env.run_stdin(&args, CLIENT_SECRET).success();
    let run = env.authorize("hostile", &["--scopes", "read", "--timeout", "30s"], true).0;
    assert_eq!(run.code, 0, "{run:?}");
    env
}

/// `run` of the token-probe function on `hostile`, with a margin that makes a 30 s token due for refresh.
fn probe(env: &Env) -> serde_json::Value {
    probe_with(env, &serde_json::json!({"connection": "hostile"}))
}

fn probe_with(env: &Env, input: &serde_json::Value) -> serde_json::Value {
    let guest = test_guest("token-probe");
    env.run(&[
        "run", guest.to_str().unwrap(), "--input", &input.to_string(), "--allow-connection", "hostile",
        "--refresh-margin", "60s",
    ])
    .success()
    .json()
}

fn listed(env: &Env) -> serde_json::Value {
    env.run(&["authconnection", "list", "--json"]).success().json()[0].clone()
}

/// Fault kind 1 of issue 12: GitHub's `200 {"error": ...}` refusal. A refresh gives the function
/// `needs-authorization` with the provider's words, `list` says so, and later calls do not ask the provider
/// again; `authorize` ends with exit 11 and the provider's message, not "try again later".
#[test]
fn a_refusal_in_a_200_is_a_refusal_recorded_once() {
    let provider = Provider::start();
    let env = authorized(&provider, &[]);
    provider.set(Mode::GithubRefusal);
    let requests = provider.token_requests.load(Ordering::SeqCst);
    for _ in 0..3 {
        let t = probe(&env);
        assert_eq!(t["error"], "needs-authorization", "{t}");
        assert!(t["message"].as_str().unwrap().contains("bad_verification_code (The code passed is incorrect or expired.)"), "{t}");
    }
    assert_eq!(provider.token_requests.load(Ordering::SeqCst), requests + 1, "the refusal was recorded, not asked again");
    let row = listed(&env);
    assert_eq!(row["status"], "needs-authorization", "{row}");
    assert!(row["status_reason"].as_str().unwrap().contains("bad_verification_code"), "{row}");
    let (run, _) = env.authorize("hostile", &["--scopes", "read", "--timeout", "30s"], true);
    assert_eq!(run.code, 11, "{run:?}");
    assert!(run.stderr.contains("The code passed is incorrect or expired.") && !run.stderr.contains("try again later"), "{run:?}");
}

/// Fault kind 2: the client secret rotated at the provider. The refresh's `invalid_client` names the client
/// registration (status `client-refused`, the reason in `list --json`), is not retried at each call, and
/// `update --client-secret-stdin` fixes it while keeping the grant: the next refresh uses the stored refresh token.
#[test]
fn a_refused_client_is_updated_and_keeps_its_grant() {
    const NEW_SECRET: &str = "cs-Zt40-CLI-ROTATED-SECRET";
    let provider = Provider::start();
    let env = authorized(&provider, &[]);
    provider.set(Mode::CheckSecret);
    *provider.secret.lock().unwrap() = NEW_SECRET.to_owned();
    let requests = provider.token_requests.load(Ordering::SeqCst);
    for _ in 0..2 {
        let t = probe(&env);
        assert_eq!(t["error"], "needs-authorization", "{t}");
        let message = t["message"].as_str().unwrap();
        assert!(message.contains("client registration") && message.contains("authconnection update hostile"), "{message}");
    }
    assert_eq!(provider.token_requests.load(Ordering::SeqCst), requests + 1, "refused once, not at each call");
    let row = listed(&env);
    assert_eq!(row["status"], "client-refused", "{row}");
    assert!(row["status_reason"].as_str().unwrap().contains("invalid_client"), "{row}");
    assert_eq!(stored(&env).refresh_token.as_deref(), Some(REFRESH_TOKEN), "the grant is kept");

    let run = env.run_stdin(&["authconnection", "update", "hostile", "--client-secret-stdin"], NEW_SECRET);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("grant is kept"), "{run:?}");
    let t = probe(&env);
    assert_eq!(t["access_token"], "at-rotated", "{t}");
    let last = provider.log.lock().unwrap().last().cloned().unwrap();
    assert!(last.contains(REFRESH_TOKEN), "the stored refresh token was used: {last}");
    assert_eq!(listed(&env)["status"], "authorized");
    for secret in [CLIENT_SECRET, NEW_SECRET, REFRESH_TOKEN] {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    }
}

/// Fault kind 6: a second `authorize` answered without a refresh token keeps the stored one, and says so.
#[test]
fn reauthorizing_without_a_refresh_token_keeps_the_stored_one() {
    let provider = Provider::start();
    let env = authorized(&provider, &[]);
    provider.set(Mode::NoRefreshToken);
    let (run, _) = env.authorize("hostile", &["--scopes", "read", "--timeout", "30s"], true);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("the one stored earlier is kept"), "{run:?}");
    let now = stored(&env);
    assert_eq!((now.access_token.as_deref(), now.refresh_token.as_deref()), (Some("at-second"), Some(REFRESH_TOKEN)));
    assert!(now.record.token.unwrap().has_refresh_token);
}

/// Fault kind 8: a provider that refuses PKCE, accepts only `client_secret_post`, and needs an extra
/// authorization and token parameter. Without the options `authorize` is refused (exit 11, the provider's
/// words); with `--pkce off --client-auth post --auth-param --token-param` it authorizes and refreshes.
#[test]
fn protocol_options_reach_a_strict_provider() {
    let provider = Provider::start();
    provider.set(Mode::Strict);
    let env = Env::new(BIN);
    let base = &provider.base;
    let (auth, token) = (format!("{base}/authorize"), format!("{base}/token"));
    let create = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "authconnection", "create", "--name", name, "--type", "TYPE_OAUTH2", "--provider-url", base, "--auth-url",
            &auth, "--token-url", &token, "--client-id", "client-1", "--client-secret-stdin",
        ];
        args.extend_from_slice(extra);
        env.run_stdin(&args, CLIENT_SECRET).success();
    };
    create("plain", &[]);
    let (run, _) = env.authorize("plain", &["--scopes", "read", "--timeout", "30s"], true);
    assert_eq!(run.code, 11, "{run:?}");
    assert!(run.stderr.contains("does not support PKCE"), "{run:?}");

    create("hostile", &["--pkce", "off", "--client-auth", "post", "--auth-param", "token_access_type=offline", "--token-param", "audience=api.example"]);
    let (run, _) = env.authorize("hostile", &["--scopes", "read", "--timeout", "30s"], true);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(probe(&env)["access_token"], "at-strict-refreshed");
    // `update` changes an option; a reserved parameter is refused.
    let run = env.run(&["authconnection", "update", "hostile", "--token-param", "state=x"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("`state` is set by wasm-host itself"), "{run:?}");
}

/// Fault kind 7: a token without expiry (Salesforce) that the API stops accepting. The function reports it with
/// `get-connection-token-after-rejection`: the host refreshes once and hands out the new token; a second report
/// of the same rejected token gets the new one without another refresh.
#[test]
fn a_function_reports_a_rejected_token_and_gets_a_new_one() {
    let provider = Provider::start();
    provider.set(Mode::NoExpiry);
    let env = authorized(&provider, &[]);
    let requests = provider.token_requests.load(Ordering::SeqCst);
    let t = probe(&env);
    assert_eq!((t["access_token"].as_str(), &t["expires_at"]), (Some(ACCESS_TOKEN), &serde_json::Value::Null), "{t}");
    assert_eq!(provider.token_requests.load(Ordering::SeqCst), requests, "a token without expiry is not refreshed");
    provider.set(Mode::Rotate);
    let rejected = serde_json::json!({"connection": "hostile", "rejected": ACCESS_TOKEN});
    for _ in 0..2 {
        let t = probe_with(&env, &rejected);
        assert_eq!(t["access_token"], "at-rotated", "{t}");
    }
    assert_eq!(provider.token_requests.load(Ordering::SeqCst), requests + 1, "one refresh for one rejected token");
    assert_eq!(probe(&env)["access_token"], "at-rotated");
    assert_eq!(stored(&env).refresh_token.as_deref(), Some("rt-rotated"));
}

/// Fault kind 4: a provider whose tokens expire within the refresh margin (30 s tokens, a 60 s margin). The
/// first use after `authorize` refreshes; the token that refresh stored is handed out while it is valid, not
/// refreshed again at each call: 5 runs (5 processes) make 1 refresh, not 5.
#[test]
fn a_token_refreshed_within_the_margin_is_not_refreshed_at_every_call() {
    let provider = Provider::start();
    let env = authorized(&provider, &[]);
    provider.set(Mode::ShortLived);
    let requests = provider.token_requests.load(Ordering::SeqCst);
    for _ in 0..5 {
        let t = probe(&env);
        assert_eq!(t["access_token"], "at-short-lived", "{t}");
    }
    assert_eq!(provider.token_requests.load(Ordering::SeqCst), requests + 1, "one refresh for 5 runs");
}

/// Fault kind 9: Slack's answer. Nested values become dotted metadata; the second token (`authed_user.
/// access_token`) is sealed, never plain in the store file, `list --json` or `show`. A refresh answer without
/// them keeps both; a new authorization replaces metadata and sealed fields: nothing of the old grant lingers.
#[test]
fn metadata_follows_the_latest_authorization_and_credentials_are_sealed() {
    let provider = Provider::start();
    provider.set(Mode::Slack);
    let env = authorized(&provider, &[]);
    let credentials = |env: &Env| {
        let keys = Keys::load(&env.identity()).unwrap().unwrap();
        let store = Store::open(&env.store()).unwrap();
        store.secret("hostile", SecretField::Credentials, &keys).unwrap().map(|s| s.expose_secret().to_owned())
    };
    let metadata = |env: &Env| stored(env).record.metadata;
    let m = metadata(&env);
    assert_eq!((m.get("team.id").map(String::as_str), m.get("authed_user.id").map(String::as_str)), (Some("T1"), Some("U1")), "{m:?}");
    assert_eq!(m.get("provider_token_type").map(String::as_str), Some("bot"), "{m:?}");
    let sealed: serde_json::Value = serde_json::from_str(&credentials(&env).expect("the second token is sealed")).unwrap();
    assert_eq!(sealed, serde_json::json!({ "authed_user.access_token": USER_TOKEN }));
    // Fault kind 5: Slack's `token_type: bot` is not an HTTP scheme. A bound origin gets the token as Bearer,
    // which the API accepts (it answers 401 to anything else).
    let api = Api::start("xoxb-slack-bot", r#"{"ok":true}"#);
    let guest = test_guest("http-probe");
    let input = serde_json::json!({ "url": api.url("/auth.test") }).to_string();
    let bind = format!("hostile=http://127.0.0.1:{}", api.port);
    // (A 1 s margin: the 30 s token is used as authorized, not refreshed.)
    let run = ["run", guest.to_str().unwrap(), "--bind", &bind, "--input", &input, "--refresh-margin", "1s"];
    let answer = env.run(&run).success().json();
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(api.recorded().len(), 1);
    let file = std::fs::read(env.store()).unwrap();
    assert!(!file.windows(USER_TOKEN.len()).any(|w| w == USER_TOKEN.as_bytes()), "the second token is plain in the store file");
    for args in [&["authconnection", "list", "--json"][..], &["authconnection", "show", "hostile"], &["authconnection", "show", "hostile", "--json"]] {
        let run = env.run(args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        assert!(!run.stdout.contains(USER_TOKEN) && !run.stderr.contains(USER_TOKEN), "{args:?} shows the second token: {run:?}");
    }

    // A refresh whose answer repeats none of them keeps them.
    provider.set(Mode::Rotate);
    assert_eq!(probe(&env)["access_token"], "at-rotated");
    assert_eq!(metadata(&env).get("team.id").map(String::as_str), Some("T1"));
    assert!(credentials(&env).is_some_and(|c| c.contains(USER_TOKEN)));

    // A new authorization without them: gone.
    provider.set(Mode::Authorize);
    let (run, _) = env.authorize("hostile", &["--scopes", "read", "--timeout", "30s"], true);
    assert_eq!(run.code, 0, "{run:?}");
    let m = metadata(&env);
    assert!(!m.keys().any(|k| k.starts_with("team.") || k.starts_with("authed_user.") || k == "provider_token_type"), "old keys linger: {m:?}");
    assert_eq!(credentials(&env), None, "the old grant's second token lingers");
}

/// Issue 13, §1: catalog entries against a local provider configured from each entry. For one entry per distinct
/// quirk (comma-separated scopes, extra authorization parameters, `client_secret_post` or Basic, no PKCE, refresh
/// tokens that rotate or not, each error shape, metadata capture, URL placeholders), `create --provider` with the
/// endpoints pointed here: the authorization request, the code exchange, a refresh and a refusal each carry what
/// the entry says, and the host reads the answers the way the entry says they come.
#[test]
fn catalog_entries_reach_a_provider_configured_from_them() {
    use wasm_host_oauth::catalog::{self, ErrorShape};
    let provider = Provider::start();
    provider.set(Mode::Scripted);
    let (auth, token) = (format!("{}/authorize", provider.base), format!("{}/token", provider.base));
    let script = |status: u16, body: serde_json::Value| *provider.script.lock().unwrap() = (status, body);
    let requests_since = |n: usize| provider.log.lock().unwrap()[n..].to_vec();
    let cases: [(&str, &[&str]); 7] = [
        ("slack", &[]),                   // comma-separated scopes, Basic, PKCE, errors in a 200, nested metadata
        ("dropbox", &[]),                 // an authorization parameter, PKCE, Basic
        ("atlassian", &[]),               // two authorization parameters, post, rotation
        ("github", &[]),                  // no PKCE, post, errors in a 200
        ("quickbooks", &[]),              // Basic, PKCE, rotation, metadata
        ("shopify", &["--shop", "acme"]), // a placeholder, comma-separated scopes, post, rotation
        ("x", &[]),                       // Basic, PKCE, rotation
    ];
    for (id, extra) in cases {
        let entry = catalog::find(id).unwrap();
        let env = Env::new(BIN);
        let mut args = vec![
            "authconnection", "create", "--name", "hostile", "--type", "TYPE_OAUTH2", "--provider", id, "--auth-url",
            &auth, "--token-url", &token, "--client-id", "client-1", "--client-secret-stdin",
        ];
        args.extend_from_slice(extra);
        env.run_stdin(&args, CLIENT_SECRET).success();
        let placeholders = extra.chunks(2).map(|p| (p[0].trim_start_matches("--").to_owned(), p[1].to_owned())).collect();
        let expected_url = url::Url::parse(&entry.resolve(&placeholders).unwrap().provider_url).unwrap().to_string();
        let shown = env.run(&["authconnection", "show", "hostile", "--json"]).success().json();
        assert_eq!(shown["provider_url"], expected_url.as_str(), "{id}: {shown}");

        // Authorization and code exchange: the answer carries the entry's metadata fields.
        let mut answer = serde_json::json!({ "access_token": "at-1", "refresh_token": "rt-1", "expires_in": 30, "token_type": "Bearer" });
        for field in &entry.metadata {
            let mut at = &mut answer;
            let mut parts = field.split('.').peekable();
            while let Some(part) = parts.next() {
                at = if parts.peek().is_some() { at.as_object_mut().unwrap().entry(part).or_insert(serde_json::json!({})) } else {
                    at.as_object_mut().unwrap().insert(part.to_owned(), serde_json::json!(format!("v-{field}")));
                    break;
                };
            }
        }
        script(200, answer.clone());
        let before = provider.log.lock().unwrap().len();
        let (run, _) = env.authorize("hostile", &["--scopes", "read,write", "--timeout", "30s"], true);
        assert_eq!(run.code, 0, "{id}: {run:?}");
        let seen = requests_since(before);
        let authorization = seen.iter().find(|r| r.starts_with("GET /authorize")).expect("an authorization request");
        let target = authorization.split(' ').nth(1).unwrap();
        let q: std::collections::HashMap<_, _> = url::Url::parse(&format!("http://x{target}")).unwrap().query_pairs().into_owned().collect();
        assert_eq!(q["scope"], format!("read{}write", entry.scope_separator), "{id}");
        assert_eq!(q.contains_key("code_challenge"), entry.pkce, "{id}: PKCE");
        for (k, v) in &entry.auth_params {
            assert_eq!(q.get(k), Some(v), "{id}: authorization parameter {k}");
        }
        let exchange = seen.iter().find(|r| r.starts_with("POST /token")).expect("a code exchange");
        let check_token_request = |request: &str| {
            let (head, body) = request.split_once("\r\n\r\n").unwrap();
            let form: std::collections::HashMap<_, _> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
            assert_eq!(basic_credentials(head).is_some(), entry.client_auth == "basic", "{id}: Basic");
            assert_eq!(form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET), entry.client_auth == "post", "{id}: post");
            for (k, v) in &entry.token_params {
                assert_eq!(form.get(k), Some(v), "{id}: token parameter {k}");
            }
        };
        check_token_request(exchange);
        let metadata = stored(&env).record.metadata;
        for field in &entry.metadata {
            assert_eq!(metadata.get(field).map(String::as_str), Some(format!("v-{field}").as_str()), "{id}: {metadata:?}");
        }

        // A refresh: the new refresh token replaces the old one where the provider rotates them.
        let mut refreshed = serde_json::json!({ "access_token": "at-2", "expires_in": 3600, "token_type": "Bearer" });
        if entry.rotates_refresh_tokens {
            refreshed["refresh_token"] = "rt-2".into();
        }
        script(200, refreshed);
        let before = provider.log.lock().unwrap().len();
        assert_eq!(probe(&env)["access_token"], "at-2", "{id}");
        check_token_request(requests_since(before).last().unwrap());
        let expected = if entry.rotates_refresh_tokens { "rt-2" } else { "rt-1" };
        assert_eq!(stored(&env).refresh_token.as_deref(), Some(expected), "{id}");

        // A refusal in the entry's shape is a refusal: the function is told to have the connection authorized.
        script(200, answer);
        assert_eq!(env.authorize("hostile", &["--scopes", "read", "--timeout", "30s"], true).0.code, 0, "{id}");
        let (status, body) = match entry.errors {
            ErrorShape::Rfc6749 => (400, serde_json::json!({ "error": "invalid_grant", "error_description": "Token revoked" })),
            ErrorShape::Status200 => (200, serde_json::json!({ "ok": false, "error": "invalid_grant", "error_description": "Token revoked" })),
        };
        script(status, body);
        let t = probe(&env);
        assert_eq!(t["error"], "needs-authorization", "{id}: {t}");
        assert!(t["message"].as_str().unwrap().contains("invalid_grant (Token revoked)"), "{id}: {t}");
    }
}

/// Issue 13, §2: a client-credentials connection's token requests carry what the catalog entry and the connection
/// say (grant, scopes, `audience` or `resource`, client authentication), and a refusal other than of the client
/// (`invalid_scope`) is recorded with the provider's words until `update` changes the request.
#[test]
fn client_credentials_requests_carry_the_entry_and_the_connection_parameters() {
    let provider = Provider::start();
    provider.set(Mode::Scripted);
    let token = format!("{}/token", provider.base);
    let script = |status: u16, body: serde_json::Value| *provider.script.lock().unwrap() = (status, body);
    let last_token_request = || {
        let log = provider.log.lock().unwrap();
        let request = log.iter().rev().find(|r| r.starts_with("POST /token")).expect("a token request").clone();
        let (head, body) = request.split_once("\r\n\r\n").unwrap();
        let form: std::collections::HashMap<_, _> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        (basic_credentials(head), form)
    };
    let cases: [(&str, &[&str], (&str, &str)); 2] = [
        // Auth0: client_secret_post from its entry, an `audience`.
        (
            "auth0",
            &["--provider", "auth0", "--domain", "acme.example", "--token-param", "audience=https://api.acme.example"],
            ("audience", "https://api.acme.example"),
        ),
        // A provider known only by its URLs: Basic, an RFC 8707 `resource`.
        ("url", &["--provider-url", &provider.base, "--token-param", "resource=https://api.example/"], ("resource", "https://api.example/")),
    ];
    for (case, flags, (param, value)) in cases {
        let env = Env::new(BIN);
        let mut args = vec![
            "authconnection", "create", "--name", "hostile", "--type", "TYPE_OAUTH2", "--token-url", &token,
            "--client-id", "client-1", "--client-secret-stdin", "--grant", "client-credentials", "--default-scopes",
            "read:a,write:b",
        ];
        args.extend_from_slice(flags);
        env.run_stdin(&args, CLIENT_SECRET).success();
        script(200, serde_json::json!({ "access_token": format!("cc-{case}"), "expires_in": 3600, "token_type": "Bearer" }));
        let t = probe(&env);
        assert_eq!(t["access_token"], format!("cc-{case}"), "{case}: {t}");
        let (basic, form) = last_token_request();
        assert_eq!(form["grant_type"], "client_credentials", "{case}");
        assert_eq!(form["scope"], "read:a write:b", "{case}: scopes joined by spaces (RFC 6749 §3.3)");
        assert_eq!(form.get(param).map(String::as_str), Some(value), "{case}: {form:?}");
        assert!(!form.contains_key("refresh_token") && !form.contains_key("code"), "{case}: {form:?}");
        if case == "auth0" {
            assert_eq!(basic, None, "{case}: client_secret_post");
            assert_eq!((form["client_id"].as_str(), form["client_secret"].as_str()), ("client-1", CLIENT_SECRET), "{case}");
        } else {
            assert_eq!(basic, Some(("client-1".to_owned(), CLIENT_SECRET.to_owned())), "{case}: Basic");
            assert!(!form.contains_key("client_secret"), "{case}");
        }
    }

    // A refused scope: the function is told to correct the connection, the reason is recorded, the provider is not
    // asked again; `update --default-scopes` makes the next use ask with the new scopes.
    let env = Env::new(BIN);
    env.run_stdin(
        &[
            "authconnection", "create", "--name", "hostile", "--type", "TYPE_OAUTH2", "--provider-url", &provider.base,
            "--token-url", &token, "--client-id", "client-1", "--client-secret-stdin", "--grant", "client-credentials",
            "--default-scopes", "admin",
        ],
        CLIENT_SECRET,
    )
    .success();
    script(400, serde_json::json!({ "error": "invalid_scope", "error_description": "admin is not allowed" }));
    let t = probe(&env);
    assert_eq!(t["error"], "needs-authorization", "{t}");
    let message = t["message"].as_str().unwrap();
    assert!(message.contains("refused to issue connection `hostile` a token") && message.contains("invalid_scope (admin is not allowed)"), "{message}");
    assert!(message.contains("authconnection update hostile") && !message.contains("authorize"), "{message}");
    let row = listed(&env);
    assert_eq!(row["status"], "needs-authorization", "{row}");
    let asked = provider.token_requests.load(Ordering::SeqCst);
    assert_eq!(probe(&env)["error"], "needs-authorization");
    assert_eq!(provider.token_requests.load(Ordering::SeqCst), asked, "a recorded refusal is not sent again");
    env.run(&["authconnection", "update", "hostile", "--default-scopes", "read"]).success();
    assert_eq!(listed(&env)["status"], "created");
    script(200, serde_json::json!({ "access_token": "cc-after-update", "expires_in": 3600 }));
    assert_eq!(probe(&env)["access_token"], "cc-after-update");
    assert_eq!(last_token_request().1["scope"], "read");
    // The token held was issued for the old request: an update that changes the request (here the audience) makes
    // the next use ask for a new one, not hand out the old one until it expires.
    let asked = provider.token_requests.load(Ordering::SeqCst);
    let updated = env.run(&["authconnection", "update", "hostile", "--token-param", "audience=https://api.example/v2"]);
    assert!(updated.success().stderr.contains("the next use requests a new token"), "{}", updated.stderr);
    assert_eq!(listed(&env)["status"], "created");
    script(200, serde_json::json!({ "access_token": "cc-new-audience", "expires_in": 3600 }));
    assert_eq!(probe(&env)["access_token"], "cc-new-audience");
    assert_eq!(provider.token_requests.load(Ordering::SeqCst), asked + 1);
    assert_eq!(last_token_request().1["audience"], "https://api.example/v2");
    // One that changes nothing the token request carries keeps the token.
    env.run(&["authconnection", "update", "hostile", "--userinfo-url", &format!("{}/me", provider.base)]).success();
    assert_eq!(listed(&env)["status"], "authorized");
    assert_eq!(probe(&env)["access_token"], "cc-new-audience");
    assert_eq!(provider.token_requests.load(Ordering::SeqCst), asked + 1);
}

/// Issue 13, §2: a device authorization endpoint (RFC 8628 §3.1) that answers badly is named as such, not as the
/// token endpoint, and nothing is stored.
#[test]
fn a_broken_device_authorization_answer_names_that_endpoint() {
    let provider = Provider::start();
    provider.set(Mode::Scripted);
    let env = Env::new(BIN);
    let (token, device) = (format!("{}/token", provider.base), format!("{}/device", provider.base));
    env.run_stdin(
        &[
            "authconnection", "create", "--name", "hostile", "--type", "TYPE_OAUTH2", "--provider-url", &provider.base,
            "--auth-url", &format!("{}/authorize", provider.base), "--token-url", &token, "--device-auth-url", &device,
            "--client-id", "client-1", "--client-secret-stdin",
        ],
        CLIENT_SECRET,
    )
    .success();
    let script = |status: u16, body: serde_json::Value| *provider.script.lock().unwrap() = (status, body);
    let authorize = || env.run(&["authconnection", "authorize", "hostile", "--device", "--timeout", "30s"]);
    // `expires_in` is required (§3.2).
    script(200, serde_json::json!({ "device_code": "dc-1", "user_code": "AB-CD", "verification_uri": "http://127.0.0.1:9/v" }));
    authorize().failure(12, "the provider's device authorization response is unusable: missing field `expires_in`");
    script(500, serde_json::json!("Internal Server Error"));
    authorize().failure(12, "the device authorization endpoint answered HTTP 500 without an OAuth error");
    let log = provider.log.lock().unwrap();
    assert!(log.iter().all(|r| r.starts_with("POST /device")), "only the device endpoint was asked");
    drop(log);
    assert_eq!(listed(&env)["status"], "created");
}
