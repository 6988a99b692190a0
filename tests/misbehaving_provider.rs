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
use wasm_host_tests::{test_guest, Env};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");
const CLIENT_SECRET: &str = "cs-Q2m8-CLI-HOSTILE-SECRET";
const REFRESH_TOKEN: &str = "rt-Vb61-CLI-ORIGINAL-REFRESH";
const ACCESS_TOKEN: &str = "at-Kd93-CLI-ORIGINAL-ACCESS";

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
}

struct Provider {
    base: String,
    mode: Arc<Mutex<Mode>>,
    token_requests: Arc<AtomicUsize>,
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
        let (m, t, s) = (mode.clone(), token_requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: this test makes about a dozen requests.
            for stream in listener.incoming().take(100) {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let mode = *m.lock().unwrap();
                    serve(stream, mode, &t);
                }
            }
        });
        Self { base, mode, token_requests, stop, thread: Some(thread) }
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

fn serve(mut stream: TcpStream, mode: Mode, token_requests: &AtomicUsize) {
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
    if target.starts_with("/authorize") {
        // An authorization server that approves at once: back to the client's callback with a code.
        let url = url::Url::parse(&format!("http://x{target}")).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        let location = format!("{}?code=code-1&state={}", q["redirect_uri"], q["state"]);
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
    };
    let _ = write!(stream, "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
    let _ = stream.write_all(&body);
    // Close gently: end our side, then wait for the client's end, so that no reset can overtake the answer.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.read(&mut chunk);
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
