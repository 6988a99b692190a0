//! `wasm-host serve` for real: the binary on a loopback port, real components, real HTTP requests, and the
//! local OpenID provider for the token tests.

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasm_host_tests::provider::{Provider, ProviderConfig};
use wasm_host_tests::serving::Serving;
use wasm_host_tests::{example, reqwest, test_guest, Env};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");

/// The operations listener's metrics of a running server.
trait Metrics {
    fn metrics(&self) -> String;
    fn metric(&self, series: &str) -> f64;
    fn wait_metric(&self, series: &str, value: f64);
}

impl Metrics for Serving {
    fn metrics(&self) -> String {
        client().get(format!("{}/metrics", self.ops)).send().unwrap().text().unwrap()
    }

    /// The value of one metric line, e.g. `wasm_host_queue_depth`; 0 when absent.
    fn metric(&self, series: &str) -> f64 {
        let text = self.metrics();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).map(|v| v.trim().parse().unwrap()))
            .unwrap_or(0.0)
    }

    /// Waits (at most 60 s) for a metric to reach `value`.
    fn wait_metric(&self, series: &str, value: f64) {
        let end = Instant::now() + Duration::from_secs(60);
        while self.metric(series) < value {
            assert!(Instant::now() < end, "{series} did not reach {value} in 60 s:\n{}", self.metrics());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

/// Status, body as JSON (or the text as a JSON string), and the response's headers.
fn post(url: &str, body: &str) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    answer(client().post(url).header("content-type", "application/json").body(body.to_owned()).send().unwrap())
}

fn get(url: &str) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    answer(client().get(url).send().unwrap())
}

fn answer(r: reqwest::blocking::Response) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().unwrap();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, json, headers)
}

/// Copies `component` into `dir` as NAME.wasm, with `manifest` as NAME.toml beside it.
fn function(dir: &Path, name: &str, component: &Path, manifest: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let wasm = dir.join(format!("{name}.wasm"));
    std::fs::copy(component, &wasm).unwrap();
    std::fs::write(dir.join(format!("{name}.toml")), manifest).unwrap();
    wasm.to_str().unwrap().to_owned()
}

#[test]
fn json_and_http_functions_answer() {
    let env = Env::new(BIN);
    let dir = env.path("functions");
    let trivial = function(&dir, "echo", &test_guest("trivial"), "");
    let hello = function(&dir, "hello", &test_guest("http-hello"), "route = \"/web\"\n");
    let server = Serving::start(&env, &[&trivial, &hello]);

    let (status, body, headers) = post(&format!("{}/echo", server.url), r#"{"a": [1, 2]}"#);
    assert_eq!((status, body), (200, serde_json::json!({ "a": [1, 2] })));
    assert!(headers.contains_key("x-request-id"));
    assert_eq!(headers["content-type"], "application/json");
    // An empty body is null.
    assert_eq!(post(&format!("{}/echo", server.url), "").1, serde_json::Value::Null);

    let (status, body, _) = get(&format!("{}/web/some/path?q=1", server.url));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "/web/some/path?q=1");
    assert_eq!(body["method"], "GET");
    assert_eq!(body["scheme"], "http");
    let (status, body, _) = post(&format!("{}/web/upload", server.url), &"x".repeat(100_000));
    assert_eq!((status, body["body_bytes"].as_u64()), (200, Some(100_000)));

    // What does not reach a function.
    let (status, body, _) = get(&format!("{}/echo", server.url));
    assert_eq!((status, body["error"].as_str()), (405, Some("method-not-allowed")));
    let (status, body, _) = post(&format!("{}/nowhere", server.url), "{}");
    assert_eq!((status, body["error"].as_str()), (404, Some("no-route")));
    let (status, body, _) = post(&format!("{}/echo", server.url), "{not json");
    assert_eq!((status, body["error"].as_str()), (400, Some("bad-input")));
    // A function of the `function` world is not served under its route's subpaths.
    assert_eq!(post(&format!("{}/echo/more", server.url), "{}").0, 404);

    // The operations listener.
    let (status, body, _) = get(&format!("{}/healthz", server.ops));
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body, _) = get(&format!("{}/readyz", server.ops));
    assert_eq!((status, body["functions"].as_u64()), (200, Some(2)), "{body}");
    // One log line per request, with its id.
    server.wait_log("request_id=", 8);
}

#[test]
fn failures_map_to_statuses_while_other_requests_succeed() {
    let env = Env::new(BIN);
    let dir = env.path("functions");
    let limits = "[limits]\ntimeout = \"2s\"\nmax-memory = \"64MiB\"\nmax-output = \"1MiB\"\n";
    let misbehave = function(&dir, "misbehave", &test_guest("misbehave"), limits);
    let hello = function(&dir, "hello", &test_guest("http-hello"), limits);
    let server = Serving::start(&env, &[&misbehave, &hello]);
    let url = server.url.clone();

    let bad: Vec<(&str, &str, u16, &str)> = vec![
        ("/misbehave", "\"loop\"", 504, "timeout"),
        ("/misbehave", "\"memory\"", 500, "memory-limit"),
        ("/misbehave", "\"panic\"", 500, "trap"),
        ("/misbehave", "\"recurse\"", 500, "trap"),
        ("/misbehave", "\"big-output\"", 502, "output-too-large"),
        ("/misbehave", "\"err\"", 500, "function-error"),
        ("/hello/loop", "", 504, "timeout"),
        ("/hello/trap", "", 500, "trap"),
    ];
    let failing: Vec<_> = bad
        .into_iter()
        .map(|(path, body, status, code)| {
            let url = format!("{url}{path}");
            std::thread::spawn(move || {
                let (got, json, _) = if body.is_empty() { get(&url) } else { post(&url, body) };
                assert_eq!((got, json["error"].as_str()), (status, Some(code)), "{path} {body}: {json}");
                let message = json["message"].as_str().unwrap();
                assert!(!message.contains("wasm backtrace"), "a backtrace reached the client: {message}");
            })
        })
        .collect();
    // Meanwhile, the same functions keep answering.
    let fine: Vec<_> = (0..20)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let input = format!("{{\"n\": {i}}}");
                let (status, json, _) = post(&format!("{url}/misbehave"), &input);
                assert_eq!((status, json["n"].as_i64()), (200, Some(i)));
                assert_eq!(get(&format!("{url}/hello/ok/{i}")).0, 200);
            })
        })
        .collect();
    for t in failing.into_iter().chain(fine) {
        t.join().unwrap();
    }
    let metrics = server.metrics();
    assert!(metrics.contains(r#"wasm_host_requests_total{function="misbehave",outcome="ok"} 20"#), "{metrics}");
    assert!(metrics.contains(r#"wasm_host_requests_total{function="misbehave",outcome="timeout"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"wasm_host_requests_total{function="hello",outcome="ok"} 20"#), "{metrics}");
}

#[test]
fn two_hundred_requests_across_a_token_expiry_refresh_once() {
    let provider = Provider::start(ProviderConfig { access_ttl: 6, ..Default::default() });
    let env = Env::new(BIN);
    env.create_for("oidc", &provider).success();
    env.authorize("oidc", &[], true).0.success();
    let dir = env.path("functions");
    let manifest = "[grants]\nconnections = [\"oidc\"]\nhosts = [\"127.0.0.1\"]\n[limits]\nrefresh-margin = \"1s\"\n";
    let userinfo = function(&dir, "userinfo", &example("userinfo"), manifest);
    let server = Serving::start(&env, &["--refresh-margin", "1s", "--refresh-ahead", "off", "--max-concurrent", "50", &userinfo]);
    let input = serde_json::json!({ "connection": "oidc", "url": format!("{}/me", provider.issuer) }).to_string();
    let url = format!("{}/userinfo", server.url);
    let (status, body, _) = post(&url, &input);
    assert_eq!((status, body["sub"].as_str()), (200, Some("test-user")), "{body}");
    assert_eq!(provider.refreshes(), 0);

    // Past the token's life (6 s, less the 1 s margin), 200 requests at once.
    Provider::wait(Duration::from_millis(6200));
    let client = client();
    let threads: Vec<_> = (0..200)
        .map(|_| {
            let (client, url, input) = (client.clone(), url.clone(), input.clone());
            std::thread::spawn(move || {
                answer(client.post(&url).body(input).send().unwrap())
            })
        })
        .collect();
    for t in threads {
        let (status, body, _) = t.join().unwrap();
        assert_eq!((status, body["sub"].as_str()), (200, Some("test-user")), "{body}");
    }
    assert_eq!(provider.refreshes(), 1, "exactly one refresh reached the provider");
    assert_eq!(server.metric(r#"wasm_host_token_refreshes_total{outcome="ok"}"#), 1.0);
    assert_eq!(server.metric(r#"wasm_host_requests_total{function="userinfo",outcome="ok"}"#), 201.0);
    // The latency histogram counted each request; the provider's one refresh is in its own histogram, with the
    // time it took (more than nothing, less than the client's 30 s limit).
    assert_eq!(server.metric(r#"wasm_host_request_duration_seconds_count{function="userinfo"}"#), 201.0);
    assert_eq!(server.metric(r#"wasm_host_provider_refresh_seconds_count{outcome="ok"}"#), 1.0);
    let provider_seconds = server.metric(r#"wasm_host_provider_refresh_seconds_sum{outcome="ok"}"#);
    assert!(provider_seconds > 0.0 && provider_seconds < 30.0, "{}", server.metrics());
    assert!(server.metrics().contains(r#"wasm_host_provider_refresh_seconds_bucket{le="+Inf",outcome="ok"} 1"#), "{}", server.metrics());
    // The refreshed token is kept in memory: a request soon after another gets it as a cache hit (a token
    // untouched for a second is checked against the store first, which is no hit: hence a few requests).
    let hits = server.metric("wasm_host_token_cache_hits_total");
    for _ in 0..20 {
        assert_eq!(post(&url, &input).0, 200);
        if server.metric("wasm_host_token_cache_hits_total") > hits {
            break;
        }
    }
    assert!(server.metric("wasm_host_token_cache_hits_total") > hits, "{}", server.metrics());
}

#[test]
fn the_background_refresher_renews_before_expiry() {
    let provider = Provider::start(ProviderConfig { access_ttl: 10, ..Default::default() });
    let env = Env::new(BIN);
    env.create_for("oidc", &provider).success();
    env.authorize("oidc", &[], true).0.success();
    let dir = env.path("functions");
    let hello = function(&dir, "hello", &test_guest("http-hello"), "[grants]\nconnections = [\"oidc\"]\n");
    // The expiry of the token `authorize` stored; the refresher may have renewed it before any request.
    let listed = env.run(&["authconnection", "list", "--json"]).success().json();
    let authorized = listed[0]["expires_at"].as_str().unwrap().to_owned();
    // Tokens are handed out while they have more than 1 s left; the refresher renews them 4 s ahead of that,
    // so from 5 s after they were issued.
    let server = Serving::start(&env, &["--refresh-margin", "1s", "--refresh-ahead", "4s", &hello]);
    // The refresher renews the token on its own, before any request finds it expiring. Its log line comes
    // once the new token is committed (the metric counts the provider's answer, a moment earlier).
    server.wait_log("background refresh", 1);
    assert_eq!(server.metric(r#"wasm_host_token_refreshes_total{outcome="ok"}"#), 1.0);
    assert!(provider.refreshes() >= 1);
    let (status, body, _) = get(&format!("{}/hello/token/oidc", server.url));
    assert_eq!(status, 200, "{body}");
    let served = body["expires_at"].as_str().unwrap();
    assert!(served > authorized.as_str(), "{served} after {authorized}");
}

#[test]
fn body_and_header_caps() {
    let env = Env::new(BIN);
    let dir = env.path("functions");
    let trivial = function(&dir, "echo", &test_guest("trivial"), "");
    let hello = function(&dir, "hello", &test_guest("http-hello"), "");
    let server = Serving::start(&env, &["--max-body", "1KiB", "--max-header", "8KiB", &trivial, &hello]);
    let big = format!("\"{}\"", "x".repeat(2000));
    let (status, body, _) = post(&format!("{}/echo", server.url), &big);
    assert_eq!((status, body["error"].as_str()), (413, Some("body-too-large")), "{body}");
    assert_eq!(post(&format!("{}/echo", server.url), &format!("\"{}\"", "x".repeat(1000))).0, 200);
    let (status, body, _) = post(&format!("{}/hello/x", server.url), &big);
    assert_eq!((status, body["error"].as_str()), (413, Some("body-too-large")), "{body}");
    // A chunked body (no Content-Length) is cut at the limit too. The client goes on sending 2 MiB after the
    // limit; the server reads and discards it before answering, so the client reads the 413, not a broken pipe.
    let chunks = ChunkReader(vec![vec![b' '; 8 << 10]; 256], 0);
    let r = client().post(format!("{}/echo", server.url)).body(reqwest::blocking::Body::new(chunks)).send().unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(r.headers()["connection"], "close");
    // The same for a 3 MiB body whose Content-Length already says it is too large.
    let r = client().post(format!("{}/echo", server.url)).body(vec![b' '; 3 << 20]).send().unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let r = client().post(format!("{}/echo", server.url)).header("x-big", "y".repeat(10_000)).body("1").send().unwrap();
    assert_eq!(r.status().as_u16(), 431);
    assert_eq!(post(&format!("{}/echo", server.url), "2").0, 200, "the server still answers");
}

/// A reader of unknown length: reqwest sends it chunked.
struct ChunkReader(Vec<Vec<u8>>, usize);

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(chunk) = self.0.get(self.1) else { return Ok(0) };
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        self.0[self.1].drain(..n);
        if self.0[self.1].is_empty() {
            self.1 += 1;
        }
        Ok(n)
    }
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let env = Env::new(BIN);
    let dir = env.path("functions");
    let hello = function(&dir, "hello", &test_guest("http-hello"), "");
    let server = Serving::start(&env, &["--max-concurrent", "1", "--max-queue", "1", &hello]);
    let url = server.url.clone();
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || get(&format!("{url}/hello/sleep/1500")).0)
        })
        .collect();
    // One running, one waiting: the state, not a pause.
    server.wait_metric("wasm_host_invocations_running", 1.0);
    server.wait_metric("wasm_host_queue_depth", 1.0);
    let (status, body, headers) = get(&format!("{url}/hello/x"));
    assert_eq!((status, body["error"].as_str()), (503, Some("overloaded")), "{body}");
    assert_eq!(headers["retry-after"], "1");
    for t in slow {
        assert_eq!(t.join().unwrap(), 200, "queued requests are served");
    }
    assert_eq!(get(&format!("{url}/hello/x")).0, 200);
}

#[test]
fn fifty_silent_connections_do_not_delay_another_client() {
    let env = Env::new(BIN);
    let dir = env.path("functions");
    let trivial = function(&dir, "echo", &test_guest("trivial"), "");
    let server = Serving::start(&env, &["--header-timeout", "5s", &trivial]);
    let addr = server.url.trim_start_matches("http://").to_owned();
    let silent: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    // Another client is answered while all fifty are still open: the server does not wait on them.
    assert_eq!(post(&format!("{}/echo", server.url), "1").0, 200);
    for s in &silent {
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 1];
        let open = matches!((&*s).read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        assert!(open, "a silent connection was closed before the other client was answered");
    }
    // And each is closed by the server once its header timeout has passed.
    for mut s in silent {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut buf = Vec::new();
        let n = s.read_to_end(&mut buf).unwrap_or(0);
        let _ = n; // hyper may answer 408 before closing; what matters is the close.
    }
}

/// Sends `POST /echo` with body `n` on a kept-alive connection.
fn send_echo(s: &mut TcpStream, n: u32) {
    use std::io::Write;
    let body = n.to_string();
    write!(s, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
}

/// Reads one response (head and a Content-Length body) from `s`; its status and body.
fn read_answer(s: &mut TcpStream) -> (u16, String) {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).expect("an answer within 60 s");
        assert!(n > 0, "the server closed the connection: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).unwrap().trim().parse().unwrap();
    while got.len() < head_end + length {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed the connection mid-body");
        got.extend_from_slice(&buf[..n]);
    }
    (status, String::from_utf8_lossy(&got[head_end..head_end + length]).into_owned())
}

#[test]
fn max_connections_bounds_open_connections() {
    let env = Env::new(BIN);
    let dir = env.path("functions");
    let trivial = function(&dir, "echo", &test_guest("trivial"), "");
    let server = Serving::start(&env, &["--max-connections", "2", "--header-timeout", "120s", &trivial]);
    let addr = server.url.trim_start_matches("http://").to_owned();
    // Two clients, each answered and kept alive: both slots taken.
    let mut first = TcpStream::connect(&addr).unwrap();
    let mut second = TcpStream::connect(&addr).unwrap();
    for (i, s) in [&mut first, &mut second].into_iter().enumerate() {
        send_echo(s, i as u32);
        assert_eq!(read_answer(s), (200, i.to_string()));
    }
    // A third connects (the kernel's accept queue takes it) and sends its request: the server does not read it.
    let mut third = TcpStream::connect(&addr).unwrap();
    send_echo(&mut third, 3);
    // Meanwhile the two open connections are served, and the operations listener answers.
    for (i, s) in [&mut first, &mut second].into_iter().enumerate() {
        send_echo(s, 10 + i as u32);
        assert_eq!(read_answer(s), (200, (10 + i).to_string()));
    }
    assert_eq!(get(&format!("{}/healthz", server.ops)).0, 200);
    third.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let waiting = matches!(third.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    assert!(waiting, "the third connection was answered while two were open");
    third.set_nonblocking(false).unwrap();
    // One closes: the third is accepted and answered, and the server goes on serving.
    drop(first);
    assert_eq!(read_answer(&mut third), (200, "3".to_owned()));
    send_echo(&mut second, 20);
    assert_eq!(read_answer(&mut second), (200, "20".to_owned()));
}

#[test]
fn sigterm_completes_requests_in_flight_then_exits_0() {
    let env = Env::new(BIN);
    let dir = env.path("functions");
    let hello = function(&dir, "hello", &test_guest("http-hello"), "");
    let mut server = Serving::start(&env, &[&hello]);
    let url = server.url.clone();
    let in_flight: Vec<_> = (0..5)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || get(&format!("{url}/hello/sleep/1500")))
        })
        .collect();
    server.wait_metric("wasm_host_invocations_running", 5.0);
    server.signal("TERM");
    for t in in_flight {
        let (status, body, _) = t.join().unwrap();
        assert_eq!((status, body["slept_ms"].as_u64()), (200, Some(1500)));
    }
    assert_eq!(server.wait_exit(), 0, "{}", server.stderr());
    assert!(TcpStream::connect(url.trim_start_matches("http://")).is_err(), "the listener is closed");
}

#[test]
fn reload_under_load_loses_no_request() {
    let env = Env::new(BIN);
    let dir = env.path("functions");
    let trivial = function(&dir, "echo", &test_guest("trivial"), "");
    let hello = function(&dir, "hello", &test_guest("http-hello"), "route = \"/a\"\n");
    let server = Serving::start(&env, &[&trivial, &hello]);
    let url = server.url.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|i| {
            let (url, stop) = (url.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = client();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 100_000 {
                    let r = client.post(format!("{url}/echo")).body(format!("{i}")).send().unwrap();
                    assert_eq!(r.status().as_u16(), 200);
                    n += 1;
                }
                n
            })
        })
        .collect();
    for round in 1..=3 {
        server.signal("HUP");
        server.wait_log("reloaded", round);
    }
    // A manifest's new route takes effect at the next reload.
    std::fs::write(dir.join("hello.toml"), "route = \"/b\"\n").unwrap();
    server.signal("HUP");
    server.wait_log("reloaded", 4);
    assert_eq!(get(&format!("{url}/b/x")).0, 200);
    assert_eq!(get(&format!("{url}/a/x")).0, 404);
    // A component that no longer loads leaves the old one serving, and the log says why.
    std::fs::write(dir.join("echo.wasm"), b"not wasm").unwrap();
    server.signal("HUP");
    server.wait_log("reloaded", 5);
    assert!(server.stderr().contains("function `echo`"), "{}", server.stderr());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent: usize = load.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(sent > 0);
    assert_eq!(post(&format!("{url}/echo"), "7").0, 200, "the old echo still serves");
}

#[test]
fn a_bad_function_refuses_the_start_with_its_exit_code() {
    let env = Env::new(BIN);
    let dir = env.path("functions");
    let not_wasm = dir.join("broken.wasm");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&not_wasm, b"hello").unwrap();
    let run = env.run(&["serve", "--listen", "127.0.0.1:0", not_wasm.to_str().unwrap()]);
    run.failure(7, "not a WebAssembly file");
    let trivial = function(&dir, "echo", &test_guest("trivial"), "route = \"no-slash\"\n");
    env.run(&["serve", "--listen", "127.0.0.1:0", &trivial]).failure(2, "must start with `/`");
    let bad = function(&dir, "bad", &test_guest("trivial"), "[limits]\ntimeout = \"forever\"\n");
    env.run(&["serve", "--listen", "127.0.0.1:0", &bad]).failure(2, "not a duration");
}

#[test]
fn tls_with_a_test_certificate() {
    let env = Env::new(BIN);
    let dir = env.path("functions");
    let trivial = function(&dir, "echo", &test_guest("trivial"), "");
    let hello = function(&dir, "hello", &test_guest("http-hello"), "route = \"/web\"\n");
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tls");
    let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
    let tls_args = ["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];
    let server = Serving::start(&env, &[&tls_args[..], &[trivial.as_str(), hello.as_str()]].concat());
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(tls.join("ca.pem")).unwrap()).unwrap();
    let client = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let (status, body, _) = answer(client.post(format!("{}/echo", server.url)).body("[1]").send().unwrap());
    assert_eq!((status, body), (200, serde_json::json!([1])));
    // An HTTP function sees the scheme the client used.
    let (status, body, _) = answer(client.get(format!("{}/web/x", server.url)).send().unwrap());
    assert_eq!((status, body["scheme"].as_str()), (200, Some("https")), "{body}");
    // Plain HTTP to the TLS port gets no answer.
    let plain = server.url.replacen("https://", "http://", 1);
    assert!(client.post(format!("{plain}/echo")).body("1").send().is_err());
    // A key file that is not a key is refused at start, and the message holds nothing of the file.
    let bad = env.run(&["serve", "--tls-cert", cert.to_str().unwrap(), "--tls-key", cert.to_str().unwrap(), &trivial]);
    bad.failure(2, "cannot read the private key");
}

/// `--watch`: a changed manifest, a new component and a broken one each reload the functions as SIGHUP does,
/// with no signal sent; a broken component leaves its old version serving.
#[test]
fn watch_reloads_on_a_changed_file() {
    let env = Env::new(BIN);
    let dir = env.path("functions");
    function(&dir, "echo", &test_guest("trivial"), "");
    let server = Serving::start(&env, &["--watch", dir.to_str().unwrap()]);
    let url = server.url.clone();
    assert_eq!(post(&format!("{url}/echo"), "1").0, 200);
    // A manifest's new route.
    std::fs::write(dir.join("echo.toml"), "route = \"/moved\"\n").unwrap();
    server.wait_log("reloaded", 1);
    assert!(server.stderr().contains("changed on disk"), "{}", server.stderr());
    assert_eq!(post(&format!("{url}/moved"), "2").0, 200);
    assert_eq!(post(&format!("{url}/echo"), "2").0, 404);
    // A new function in the directory.
    let reloads = |s: &Serving| s.stderr.lock().unwrap().iter().filter(|l| l.contains("reloaded")).count();
    let before = reloads(&server);
    function(&dir, "hello", &test_guest("http-hello"), "");
    server.wait_log("reloaded", before + 1);
    // The copy and the manifest may land in two batches: wait until the route serves (bounded).
    let end = Instant::now() + Duration::from_secs(60);
    while get(&format!("{url}/hello/x")).0 != 200 {
        assert!(Instant::now() < end, "hello never served:\n{}", server.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    // A component that no longer loads: the old one keeps serving, and the log says why (waited for by its own
    // line, not a count of reloads: the copy above may have come in two batches).
    std::fs::write(dir.join("echo.wasm"), b"not wasm").unwrap();
    server.wait_log("keeps serving", 1);
    assert!(server.stderr().contains("function `echo`"), "{}", server.stderr());
    assert_eq!(post(&format!("{url}/moved"), "3").0, 200, "the old echo still serves");
}

/// `--admin-listen`: the admin API answers only a valid admin token (401 otherwise, also once revoked), shows the
/// connections as `authconnection list --json` does and never a secret, refuses a change from a read-only token
/// (403); a non-loopback address is refused at start.
#[test]
fn the_admin_api_lists_connections_for_a_valid_token_only() {
    let env = Env::new(BIN);
    let (secret, access) = ("admin-api-client-secret-3f9", "admin-api-access-token-8c1");
    env.create("github", secret).success();
    env.import_token("github", &format!(r#"{{"access_token":"{access}","refresh_token":"rt-admin-api-77","expires_in":3600}}"#))
        .success();
    let ops_token = env.run(&["admin", "token", "create", "--name", "ops"]).success().stdout.trim().to_owned();
    let ro_token = env.run(&["admin", "token", "create", "--name", "audit", "--read-only"]).success().stdout.trim().to_owned();
    let trivial = function(&env.path("functions"), "echo", &test_guest("trivial"), "");
    let server = Serving::start(&env, &["--admin-listen", "127.0.0.1:0", &trivial]);
    let admin = server.admin.clone().unwrap();
    assert!(admin.starts_with("http://127.0.0.1:"), "{admin}");
    let list = format!("{admin}/v1/connections");
    let call = |method: reqwest::Method, token: Option<&str>| {
        let mut request = client().request(method, &list);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request.send().unwrap())
    };

    let mut answers = Vec::new();
    for token in [None, Some("wha_not-a-token"), Some("not-even-the-prefix")] {
        let (status, body, headers) = call(reqwest::Method::GET, token);
        assert_eq!((status, body["error"]["kind"].as_str()), (401, Some("unauthorized")), "{token:?}: {body}");
        assert_eq!(headers.get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer"));
        answers.push(body.to_string());
    }
    let expected = env.run(&["authconnection", "list", "--json"]).success().json();
    for token in [&ops_token, &ro_token] {
        let (status, body, _) = call(reqwest::Method::GET, Some(token));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, expected);
        answers.push(body.to_string());
    }
    assert_eq!(expected[0]["name"], "github");
    let lower = client().get(&list).header("authorization", format!("bearer {ro_token}")).send().unwrap();
    assert_eq!(lower.status().as_u16(), 200, "the scheme is case-insensitive");
    let (status, body, _) = call(reqwest::Method::POST, Some(&ro_token));
    assert_eq!((status, body["error"]["kind"].as_str()), (403, Some("read-only")), "{body}");
    answers.push(body.to_string());
    let (status, body, _) = call(reqwest::Method::DELETE, Some(&ops_token));
    assert_eq!(status, 405, "{body}");
    let (status, body, _) = answer(client().get(format!("{admin}/v1/other")).bearer_auth(&ops_token).send().unwrap());
    assert_eq!(status, 404, "{body}");

    // Revoked while the server runs: refused from the next request on.
    env.run(&["admin", "token", "revoke", "ops"]).success();
    let (status, _, _) = call(reqwest::Method::GET, Some(&ops_token));
    assert_eq!(status, 401);
    assert_eq!(call(reqwest::Method::GET, Some(&ro_token)).0, 200);
    for text in answers.iter().chain([&server.stderr()]) {
        for value in [secret, access, "rt-admin-api-77", &ops_token[4..], &ro_token[4..]] {
            assert!(!text.contains(value), "a secret or token in an answer or the log: {text}");
        }
    }

    env.run(&["serve", "--listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0", &trivial]).failure(2, "loopback");
}
