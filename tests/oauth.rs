//! OAuth2 for real, against the local OpenID provider (npm oidc-provider): authorize through the loopback
//! callback, refresh on expiry, revoke, and the error paths.

use std::time::Duration;

use wasm_host_tests::provider::{Provider, ProviderConfig, CLIENT_ID, CLIENT_SECRET};
use wasm_host_tests::{example, http, test_guest, Env};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");

fn probe(env: &Env, name: &str, margin: &str) -> serde_json::Value {
    let guest = test_guest("token-probe");
    let input = serde_json::json!({ "connection": name }).to_string();
    env.run(&["run", guest.to_str().unwrap(), "--input", &input, "--allow-connection", name, "--refresh-margin", margin])
        .success()
        .json()
}

fn list(env: &Env) -> serde_json::Value {
    env.run(&["authconnection", "list", "--json"]).success().json()
}

#[test]
fn authorize_run_refresh_revoke_end_to_end() {
    let provider = Provider::start(ProviderConfig { access_ttl: 4, ..Default::default() });
    let env = Env::new(BIN);
    env.create_for("oidc", &provider).success();
    // Compile the function first, so that its first real run comes well within the token's 4 s.
    let guest = example("userinfo");
    env.run(&["run", guest.to_str().unwrap(), "--input", "{\"connection\":\"oidc\",\"url\":\"http://127.0.0.1:9/\"}"])
        .failure(1, "access-denied");
    let (run, page) = env.authorize("oidc", &["--scopes", "openid,email,profile", "--timeout", "60s"], true);
    run.success();
    assert!(run.stderr.contains("Redirect URI (register it with the provider for this client): http://127.0.0.1:"));
    let (status, body) = page.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Authorization complete"), "{body}");
    let url = url::Url::parse(run.stdout.lines().next().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q.contains_key("state") && q.contains_key("nonce"));
    let row = &list(&env)[0];
    assert_eq!(row["status"], "authorized");
    assert_eq!(row["has_refresh_token"], true);
    assert_eq!(provider.stats()["token"]["authorization_code"], 1);

    // The userinfo function against the provider's own userinfo endpoint.
    let userinfo = format!("{}/me", provider.issuer);
    let input = serde_json::json!({ "connection": "oidc", "url": userinfo }).to_string();
    let run_userinfo = || {
        env.run(&[
            "run", guest.to_str().unwrap(), "--input", &input, "--allow-connection", "oidc", "--refresh-margin", "1s",
            "--allow-host", "127.0.0.1",
        ])
    };
    let out = run_userinfo();
    assert_eq!(out.success().json()["sub"], "test-user");
    assert_eq!(provider.refreshes(), 0);

    // Past expiry: the host refreshes once, then serves the new token.
    Provider::wait(Duration::from_millis(4200));
    assert_eq!(run_userinfo().success().json()["email"], "test-user@example.test");
    assert_eq!(provider.refreshes(), 1, "exactly one refresh reached the provider");
    run_userinfo().success();
    assert_eq!(provider.refreshes(), 1, "a fresh token is not refreshed again");

    // Keep the (rotated) refresh token to show the provider refuses it after revocation.
    let keys = wasm_host_store::Keys::load(&env.identity()).unwrap().unwrap();
    let store = wasm_host_store::Store::open(&env.store()).unwrap();
    let rt = store.secret("oidc", wasm_host_store::SecretField::RefreshToken, &keys).unwrap().unwrap();
    drop(store);

    env.run(&["authconnection", "revoke", "oidc"]).success();
    assert!(provider.stats()["revocation"].as_u64().unwrap() >= 1);
    assert_eq!(list(&env)[0]["status"], "revoked");
    let t = probe(&env, "oidc", "1s");
    assert_eq!(t["error"], "needs-authorization", "{t}");
    use wasm_host_store::secrecy::ExposeSecret;
    let (status, body) = http::post_form(
        &format!("{}/token", provider.issuer),
        (CLIENT_ID, CLIENT_SECRET),
        &[("grant_type", "refresh_token"), ("refresh_token", rt.expose_secret())],
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_grant"), "{body}");
    // And authorize works again after a revoke.
    env.authorize("oidc", &[], true).0.success();
    assert_eq!(list(&env)[0]["status"], "authorized");
}

#[test]
fn a_refresh_without_a_new_refresh_token_keeps_the_old_one() {
    let provider = Provider::start(ProviderConfig {
        access_ttl: 2,
        rotate: false,
        omit_unchanged_refresh: true,
        ..Default::default()
    });
    let env = Env::new(BIN);
    env.create_for("google-like", &provider).success();
    env.authorize("google-like", &[], true).0.success();
    for round in 1..=2 {
        Provider::wait(Duration::from_millis(2200));
        let t = probe(&env, "google-like", "1s");
        assert!(t["access_token"].is_string(), "{t}");
        assert_eq!(provider.refreshes(), round);
        assert_eq!(list(&env)[0]["has_refresh_token"], true, "the old refresh token was kept");
    }
}

#[test]
fn a_refused_refresh_marks_the_connection_and_keeps_the_refresh_token() {
    let provider = Provider::start(ProviderConfig { access_ttl: 2, ..Default::default() });
    let env = Env::new(BIN);
    env.create_for("c", &provider).success();
    env.authorize("c", &[], true).0.success();
    // Provider down (5xx): unavailable, nothing lost.
    provider.configure(serde_json::json!({ "tokenFailStatus": 503 }));
    Provider::wait(Duration::from_millis(2200));
    let t = probe(&env, "c", "1s");
    assert_eq!(t["error"], "unavailable", "{t}");
    assert_eq!(list(&env)[0]["status"], "authorized");
    assert_eq!(list(&env)[0]["has_refresh_token"], true);
    // Back up: the same stored refresh token works.
    provider.configure(serde_json::json!({ "tokenFailStatus": 0 }));
    assert!(probe(&env, "c", "1s")["access_token"].is_string());
    // The grant revoked behind our back: needs-authorization, and the refresh token is still stored.
    let keys = wasm_host_store::Keys::load(&env.identity()).unwrap().unwrap();
    let store = wasm_host_store::Store::open(&env.store()).unwrap();
    let rt = store.secret("c", wasm_host_store::SecretField::RefreshToken, &keys).unwrap().unwrap();
    use wasm_host_store::secrecy::ExposeSecret;
    http::post_form(
        &format!("{}/token/revocation", provider.issuer),
        (CLIENT_ID, CLIENT_SECRET),
        &[("token", rt.expose_secret()), ("token_type_hint", "refresh_token")],
    );
    Provider::wait(Duration::from_millis(2200));
    let t = probe(&env, "c", "1s");
    assert_eq!(t["error"], "needs-authorization", "{t}");
    assert!(t["message"].as_str().unwrap().contains("invalid_grant"), "{t}");
    let row = &list(&env)[0];
    assert_eq!(row["status"], "needs-authorization");
    assert_eq!(row["has_refresh_token"], true, "a refused refresh never destroys the stored refresh token");
    assert!(store.secret("c", wasm_host_store::SecretField::RefreshToken, &keys).unwrap().is_some());
}

#[test]
fn authorize_error_paths() {
    let provider = Provider::start(ProviderConfig::default());
    let env = Env::new(BIN);
    env.create_for("c", &provider).success();
    // The user declines.
    provider.configure(serde_json::json!({ "deny": true }));
    let (run, page) = env.authorize("c", &["--timeout", "30s"], true);
    run.failure(11, "access_denied");
    assert!(page.unwrap().1.contains("Authorization refused"));
    provider.configure(serde_json::json!({ "deny": false }));
    // A scope the provider knows but this client may not request (oidc-provider ignores unknown ones).
    env.authorize("c", &["--scopes", "openid,api", "--timeout", "30s"], true).0.failure(11, "invalid_scope");
    // Nobody completes the login: timeout with advice about the redirect URI.
    env.authorize("c", &["--timeout", "2s"], false).0.failure(13, "register exactly http://127.0.0.1:");
    // A redirect URI the provider does not know: it shows its own error page, the callback never comes, and the
    // timeout names the exact URI to register.
    env.run_stdin(
        &["authconnection", "create", "--name", "unregistered", "--type", "TYPE_OAUTH2", "--provider-url",
          &provider.issuer, "--client-id", &format!("{CLIENT_ID}-other-redirect"), "--client-secret-stdin"],
        CLIENT_SECRET,
    )
    .success();
    let (run, page) = env.authorize("unregistered", &["--timeout", "3s"], true);
    let (status, body) = page.unwrap();
    assert_eq!(status, 400, "the provider's own error page: {body}");
    assert!(body.contains("redirect_uri"), "{body}");
    let uri = run.stderr.lines().find_map(|l| l.split("client): ").nth(1)).unwrap().to_owned();
    run.failure(13, &format!("register exactly {uri} for this client"));
    // A wrong client secret.
    env.run_stdin(
        &["authconnection", "create", "--name", "wrong-secret", "--type", "TYPE_OAUTH2", "--provider-url",
          &provider.issuer, "--client-id", CLIENT_ID, "--client-secret-stdin"],
        "not-the-secret",
    )
    .success();
    env.authorize("wrong-secret", &["--timeout", "30s"], true).0.failure(11, "check the client ID and secret");
    // Provider down.
    let down = Env::new(BIN);
    down.run_stdin(
        &["authconnection", "create", "--name", "down", "--type", "TYPE_OAUTH2", "--provider-url",
          "http://127.0.0.1:9/", "--client-id", "x", "--client-secret-stdin"],
        "s",
    )
    .success();
    down.authorize("down", &["--timeout", "5s"], false)
        .0
        .failure(12, "could not connect: http://127.0.0.1:9/.well-known/openid-configuration");
    assert_eq!(list(&env).as_array().unwrap().iter().filter(|c| c["status"] == "authorized").count(), 0);
}

#[test]
fn forged_callbacks_are_answered_and_the_real_one_still_counts() {
    let provider = Provider::start(ProviderConfig::default());
    let env = Env::new(BIN);
    env.create_for("c", &provider).success();
    let mut cmd = env.cmd();
    cmd.args(["authconnection", "authorize", "c", "--no-browser", "--port", "0", "--timeout", "30s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = url::Url::parse(line.trim()).unwrap();
    let redirect = url.query_pairs().find(|(k, _)| k == "redirect_uri").unwrap().1.into_owned();
    let (status, body) = http::get(&format!("{redirect}?code=forged&state=wrong"));
    assert_eq!(status, 400);
    assert!(body.contains("does not match"), "{body}");
    let (status, _) = http::get(&format!("{redirect}?state=wrong&error=access_denied"));
    assert_eq!(status, 400);
    let (status, body) = Provider::follow(line.trim());
    assert_eq!(status, 200, "{body}");
    assert!(child.wait().unwrap().success());
    assert_eq!(list(&env)[0]["status"], "authorized");
}

/// Authorizes `c` at a provider whose access tokens live 2 s (rotation on) and waits until it has expired.
fn expired_connection(provider: &Provider) -> Env {
    let env = Env::new(BIN);
    env.create_for("c", provider).success();
    env.authorize("c", &[], true).0.success();
    env
}

#[test]
fn five_hundred_concurrent_calls_in_one_process_cause_one_refresh() {
    use std::sync::Arc;
    use wasm_host_runtime::{CompileCache, ConnectionGrants, FunctionHost, InvocationSettings, TokenBroker};

    let provider = Provider::start(ProviderConfig { access_ttl: 2, rotate: true, ..Default::default() });
    let env = expired_connection(&provider);
    let store = Arc::new(wasm_host_store::Store::open(&env.store()).unwrap());
    let keys = Arc::new(wasm_host_store::Keys::load(&env.identity()).unwrap().unwrap());
    let broker = Arc::new(TokenBroker::new(store, keys).with_margin(Duration::from_secs(1)));
    let host = Arc::new(FunctionHost::new(broker.clone(), Some(CompileCache::new(env.cache()))).unwrap());
    let function = host.load(&test_guest("token-probe")).unwrap();
    let settings = InvocationSettings { grants: ConnectionGrants::from_names(["c"]), ..Default::default() };
    Provider::wait(Duration::from_millis(2200));
    // A provider that takes its time makes the race wide open; the new token lives long enough that slow
    // machines do not see it expire during the storm.
    provider.configure(serde_json::json!({ "tokenDelayMs": 200, "accessTtl": 3600 }));

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let results = runtime.block_on(async {
        let tasks: Vec<_> = (0..500)
            .map(|_| {
                let (host, function, settings) = (host.clone(), function.clone(), settings.clone());
                tokio::spawn(async move {
                    let started = std::time::Instant::now();
                    let out = host.invoke(&function, r#"{"connection":"c"}"#, &settings).await;
                    (out, started.elapsed())
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        results
    });
    let mut tokens = std::collections::HashSet::new();
    let mut latencies: Vec<Duration> = Vec::new();
    for (out, elapsed) in results {
        let json: serde_json::Value = serde_json::from_str(&out.unwrap().unwrap()).unwrap();
        tokens.insert(json["access_token"].as_str().expect("every caller got a token").to_owned());
        latencies.push(elapsed);
    }
    assert_eq!(provider.refreshes(), 1, "exactly one refresh reached the provider");
    assert_eq!(broker.refreshes(), 1);
    assert_eq!(tokens.len(), 1, "every caller got the one new token");
    // And it works.
    let token = tokens.into_iter().next().unwrap();
    let (status, body) = http::get_bearer(&format!("{}/me", provider.issuer), &token);
    assert_eq!(status, 200, "{body}");
    latencies.sort();
    eprintln!(
        "500 concurrent invocations, one refresh (provider delay 200 ms): p50 {:?}, p99 {:?}, max {:?}",
        latencies[249],
        latencies[494],
        latencies[499]
    );
}

#[test]
fn four_processes_on_an_expired_token_cause_one_refresh() {
    let provider = Provider::start(ProviderConfig { access_ttl: 2, rotate: true, ..Default::default() });
    let env = expired_connection(&provider);
    let guest = test_guest("token-probe");
    // Compile once first (asking for a connection it is not granted, so no refresh), so that the four
    // processes reach the token call at about the same moment.
    env.run(&["run", guest.to_str().unwrap(), "--input", "{\"connection\":\"c\"}"]).success();
    assert_eq!(provider.refreshes(), 0);
    Provider::wait(Duration::from_millis(2200));
    provider.configure(serde_json::json!({ "tokenDelayMs": 300, "accessTtl": 3600 }));
    let runs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    env.run(&[
                        "run", guest.to_str().unwrap(), "--input", "{\"connection\":\"c\"}",
                        "--allow-connection", "c", "--refresh-margin", "1s",
                    ])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut tokens = std::collections::HashSet::new();
    for run in &runs {
        let json = run.success().json();
        tokens.insert(json["access_token"].as_str().expect("a token, not an error").to_owned());
    }
    assert_eq!(provider.refreshes(), 1, "exactly one refresh across four processes");
    assert_eq!(tokens.len(), 1);
    let (status, body) = http::get_bearer(&format!("{}/me", provider.issuer), tokens.iter().next().unwrap());
    assert_eq!(status, 200, "{body}");
}

#[test]
fn authorize_with_a_real_headless_browser() {
    let chromium = std::path::Path::new("/usr/bin/chromium");
    assert!(chromium.exists(), "Debian's chromium is not installed (scripts/test.sh installs it)");
    let provider = Provider::start(ProviderConfig { auto_approve: false, ..Default::default() });
    let env = Env::new(BIN);
    env.create_for("c", &provider).success();
    let browser = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/provider/browser.sh");
    let result = env.path("browser.json");
    let mut cmd = env.cmd();
    cmd.env("BROWSER", &browser).env("BROWSER_RESULT", &result);
    let started = std::time::Instant::now();
    let run = env.run_with(cmd, &["authconnection", "authorize", "c", "--port", "0", "--timeout", "90s"], None);
    run.success();
    eprintln!("authorize through headless Chromium and the provider's login page: {:?}", started.elapsed());
    assert_eq!(run.stdout, "", "stdout carries the URL only with --no-browser");
    assert!(run.stderr.contains("Open this URL to authorize `c`:\n"), "{}", run.stderr);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !result.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let page: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert!(page["text"].as_str().unwrap_or_default().contains("Authorization complete"), "{page}");
    assert!(page["url"].as_str().unwrap().contains("/callback?"), "{page}");
    assert_eq!(list(&env)[0]["status"], "authorized");
    assert!(probe(&env, "c", "60s")["access_token"].is_string());
}

/// Starts a refreshing `run` and SIGKILLs it 700 ms later, while the provider holds its answer back.
fn kill_mid_refresh(env: &Env, provider: &Provider, delay: &str) {
    let guest = test_guest("token-probe");
    provider.configure(serde_json::json!({ delay: 1500 }));
    let mut cmd = env.cmd();
    cmd.args(["run", guest.to_str().unwrap(), "--input", "{\"connection\":\"c\"}", "--allow-connection", "c", "--refresh-margin", "1s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    Provider::wait(Duration::from_millis(700));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    Provider::wait(Duration::from_millis(1500)); // the provider finishes whatever it was doing
    provider.configure(serde_json::json!({ delay: 0 }));
    assert!(wasm_host_store::Store::check_integrity(&env.store()).unwrap(), "the store survived the kill");
    assert_eq!(list(env)[0]["status"], "authorized", "the old tokens are still there");
}

#[test]
fn a_process_killed_mid_refresh_loses_nothing_silently() {
    let provider = Provider::start(ProviderConfig { access_ttl: 2, rotate: true, ..Default::default() });
    let env = expired_connection(&provider);
    let guest = test_guest("token-probe");
    env.run(&["run", guest.to_str().unwrap(), "--input", "{\"connection\":\"c\"}"]).success(); // compile only
    Provider::wait(Duration::from_millis(2200));

    // Killed before the provider handled the request: nothing rotated, the next caller refreshes normally,
    // taking over the dead process's lease at once rather than after it expires.
    kill_mid_refresh(&env, &provider, "tokenDelayMs");
    let started = std::time::Instant::now();
    assert!(probe(&env, "c", "1s")["access_token"].is_string());
    assert!(started.elapsed() < Duration::from_secs(20), "waited for the dead holder's lease: {:?}", started.elapsed());
    assert_eq!(provider.refreshes(), 1);

    // Killed after the provider rotated the refresh token but before the answer arrived: the new refresh token
    // is lost with the process. The next refresh is refused; the connection is marked, not silently broken,
    // and the stored refresh token is kept.
    Provider::wait(Duration::from_millis(2200));
    kill_mid_refresh(&env, &provider, "tokenResponseDelayMs");
    let t = probe(&env, "c", "1s");
    assert_eq!(t["error"], "needs-authorization", "{t}");
    let row = &list(&env)[0];
    assert_eq!(row["status"], "needs-authorization");
    assert_eq!(row["has_refresh_token"], true);
    assert_eq!(provider.refreshes(), 3, "the good refresh, the killed one, the refused one");
    // Authorizing again recovers.
    env.authorize("c", &[], true).0.success();
    assert!(probe(&env, "c", "1s")["access_token"].is_string());
}

#[test]
fn needs_auth_example_reports_an_unavailable_provider_as_retryable() {
    let provider = Provider::start(ProviderConfig { access_ttl: 2, ..Default::default() });
    let env = Env::new(BIN);
    env.create_for("crm", &provider).success();
    env.authorize("crm", &[], true).0.success();
    provider.configure(serde_json::json!({ "tokenFailStatus": 503 }));
    Provider::wait(Duration::from_millis(2200));
    for component in [example("needs-auth"), wasm_host_tests::js_example(BIN, "needs-auth")] {
        let mut cmd = env.cmd();
        cmd.env("WASM_HOST_CACHE_DIR", wasm_host_tests::shared_cache());
        let out = env.run_with(
            cmd,
            &["run", component.to_str().unwrap(), "--input", r#"{"connection":"crm"}"#, "--allow-connection", "crm", "--refresh-margin", "1s"],
            None,
        );
        let json = out.success().json();
        assert_eq!(json["status"], "unavailable", "{}: {json}", component.display());
        assert_eq!(json["retry"], true);
    }
}

/// A browser that cannot start (no display, a broken `$BROWSER`) still leaves the user the URL: it is printed
/// before any browser is tried, and `authorize` ends at its own `--timeout`.
#[test]
fn the_url_is_printed_before_a_browser_that_fails_to_start() {
    let provider = Provider::start(ProviderConfig::default());
    let env = Env::new(BIN);
    env.create_for("c", &provider).success();
    let mut cmd = env.cmd();
    cmd.env("BROWSER", "/bin/false").env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
    let started = std::time::Instant::now();
    let run = env.run_with(cmd, &["authconnection", "authorize", "c", "--port", "0", "--timeout", "2s"], None);
    run.failure(13, "no authorization callback");
    let printed = format!("Open this URL to authorize `c`:\n{}/auth?", provider.issuer);
    assert!(run.stderr.contains(&printed), "{printed:?} in {}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(30), "the deadline held: {:?}", started.elapsed());
    assert_eq!(list(&env)[0]["status"], "created", "nothing changed");
}
