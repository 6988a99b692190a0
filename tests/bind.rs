//! Credentials the function never sees (`--bind`): the host attaches the token to requests for a bound origin,
//! refuses a function's own Authorization there, carries nothing across a redirect to another origin, refreshes
//! and retries once after a 401, and keeps a bound-only connection unreadable. Against the local OpenID
//! provider's userinfo endpoint and local HTTP servers that record what reached them.

use wasm_host_store::secrecy::ExposeSecret;
use wasm_host_tests::api::Api;
use wasm_host_tests::provider::{Provider, ProviderConfig};
use wasm_host_tests::{example, js_example, test_guest, Env, Run};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");

/// The access token stored for `name`, read the way an attacker with the identity would.
fn stored_access_token(env: &Env, name: &str) -> String {
    let keys = wasm_host_store::Keys::load(&env.identity()).unwrap().unwrap();
    let store = wasm_host_store::Store::open(&env.store()).unwrap();
    let token = store.secret(name, wasm_host_store::SecretField::AccessToken, &keys).unwrap().unwrap();
    token.expose_secret().to_owned()
}

fn assert_token_absent(run: &Run, token: &str) {
    assert!(token.len() >= 16, "a real token to look for");
    assert!(!run.stdout.contains(token), "the token leaked into stdout: {}", run.stdout);
    assert!(!run.stderr.contains(token), "the token leaked into stderr");
}

fn authorized_env(provider: &Provider, name: &str) -> Env {
    let env = Env::new(BIN);
    env.create_for(name, provider).success();
    env.authorize(name, &[], true).0.success();
    env
}

#[test]
fn a_bound_request_succeeds_with_no_token_in_the_function() {
    let provider = Provider::start(ProviderConfig::default());
    let env = authorized_env(&provider, "oidc");
    let bind = format!("oidc={}", provider.issuer);
    let input = serde_json::json!({ "url": format!("{}/me", provider.issuer) }).to_string();
    let token = stored_access_token(&env, "oidc");

    for component in [example("api-call"), js_example(BIN, "api-call")] {
        let mut cmd = env.cmd();
        cmd.env("WASM_HOST_LOG", "trace").env("WASM_HOST_CACHE_DIR", wasm_host_tests::shared_cache());
        let out = env.run_with(cmd, &["run", component.to_str().unwrap(), "--bind", &bind, "--input", &input], None);
        out.success();
        assert_eq!(out.json()["sub"], "test-user", "{}", component.display());
        assert_token_absent(&out, &token);
        // One audit line per authorized request: function, connection, origin, status; never the token.
        let line = out.stderr.lines().find(|l| l.contains("authorized request")).expect("an audit line");
        for part in ["connection=\"oidc\"", &format!("origin={}", provider.issuer), "status=200", "function=api"] {
            assert!(line.contains(part), "`{part}` in {line}");
        }
    }
    assert_eq!(provider.stats()["userinfoStatus"]["200"], 2);

    // Bound but not granted: the function can use the connection through the origin, never read it.
    let probe = test_guest("token-probe");
    let out = env.run(&["run", probe.to_str().unwrap(), "--bind", &bind, "--input", r#"{"connection":"oidc"}"#]);
    let t = out.success().json();
    assert_eq!(t["error"], "access-denied", "{t}");
    assert_token_absent(&out, &token);
}

#[test]
fn a_function_may_not_set_its_own_authorization_on_a_bound_origin() {
    let env = Env::new(BIN);
    env.connection_with_token("api", "at-bound-0123456789abcdef");
    let api = Api::start("at-bound-0123456789abcdef", r#"{"ok":true}"#);
    let probe = test_guest("http-probe");
    let bind = format!("api=http://127.0.0.1:{}", api.port);
    let input = serde_json::json!({
        "url": api.url("/v1/me"),
        "headers": { "Authorization": "Bearer something-the-function-chose" },
    })
    .to_string();
    env.run(&["run", probe.to_str().unwrap(), "--bind", &bind, "--input", &input])
        .failure(1, "remove the Authorization header");
    assert!(api.recorded().is_empty(), "the refused request never left the host");

    // The same request without the header goes through, with the host's token.
    let input = serde_json::json!({ "url": api.url("/v1/me") }).to_string();
    let out = env.run(&["run", probe.to_str().unwrap(), "--bind", &bind, "--input", &input]);
    assert_eq!(out.success().json()["status"], 200);
    assert_eq!(api.recorded()[0].authorization.as_deref(), Some("Bearer at-bound-0123456789abcdef"));
    assert_token_absent(&out, "at-bound-0123456789abcdef");

    // Another origin on the same host (another port) is not bound: no token, even though it is allowed.
    let other = Api::start("x", "{}");
    let input = serde_json::json!({ "url": other.url("/v1/me") }).to_string();
    let out = env.run(&["run", probe.to_str().unwrap(), "--bind", &bind, "--allow-host", "127.0.0.1", "--input", &input]);
    assert_eq!(out.success().json()["status"], 401);
    assert_eq!(other.recorded()[0].authorization, None);
}

#[test]
fn a_redirect_to_another_origin_does_not_carry_the_token() {
    let env = Env::new(BIN);
    env.create("api", "client-secret-value").success();
    env.import_token("api", r#"{"access_token":"at-redirect-0123456789abcdef","expires_in":3600}"#).success();
    let bound = Api::start("at-redirect-0123456789abcdef", "{}");
    let elsewhere = Api::start("unused", r#"{"elsewhere":true}"#);
    let probe = test_guest("http-probe");
    let input = serde_json::json!({
        "url": bound.url(&format!("/redirect?to={}", elsewhere.url("/collect"))),
        "follow": true,
    })
    .to_string();
    // The binding from the function's manifest this time.
    let manifest = env.path("probe.toml");
    std::fs::write(
        &manifest,
        format!(
            "[grants]\nbind = [\"api=http://127.0.0.1:{}\"]\nhosts = [\"127.0.0.1:{}\"]\n",
            bound.port, elsewhere.port
        ),
    )
    .unwrap();
    let out = env.run(&["run", probe.to_str().unwrap(), "--manifest", manifest.to_str().unwrap(), "--input", &input]);
    let result = out.success().json();
    assert_eq!(result["hops"].as_array().unwrap().len(), 2, "{result}");
    assert_eq!(bound.recorded()[0].authorization.as_deref(), Some("Bearer at-redirect-0123456789abcdef"));
    let second = elsewhere.recorded();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].path, "/collect");
    assert_eq!(second[0].authorization, None, "the token must not follow the redirect");

    // Without a grant for the other origin, the hop is refused outright.
    let out = env.run(&["run", probe.to_str().unwrap(), "--bind", &format!("api=http://127.0.0.1:{}", bound.port), "--input", &input]);
    out.failure(1, "HttpRequestDenied");
    assert_eq!(elsewhere.recorded().len(), 1, "nothing more reached the other origin");
}

#[test]
fn a_401_triggers_exactly_one_refresh_and_one_retry() {
    let provider = Provider::start(ProviderConfig::default());
    let env = authorized_env(&provider, "oidc");
    let bind = format!("oidc={}", provider.issuer);
    let api_call = example("api-call");
    let input = serde_json::json!({ "url": format!("{}/me", provider.issuer) }).to_string();
    let before = stored_access_token(&env, "oidc");
    // The provider drops its access tokens early (ours still looks valid by its expiry): userinfo says 401.
    assert!(provider.forget_access_tokens() >= 1);
    let mut cmd = env.cmd();
    cmd.env("WASM_HOST_LOG", "info");
    let out = env.run_with(cmd, &["run", api_call.to_str().unwrap(), "--bind", &bind, "--input", &input], None);
    assert_eq!(out.success().json()["sub"], "test-user");
    assert_eq!(provider.refreshes(), 1, "exactly one refresh");
    let stats = provider.stats();
    assert_eq!(stats["userinfoStatus"]["401"], 1, "{stats}");
    assert_eq!(stats["userinfoStatus"]["200"], 1, "exactly one retry: {stats}");
    let after = stored_access_token(&env, "oidc");
    assert_ne!(before, after, "the refreshed token was stored");
    assert!(out.stderr.contains("retried=true"), "{}", out.stderr);
    assert_token_absent(&out, &before);
    assert_token_absent(&out, &after);

    // A small body is kept and sent again; a body past the replay limit is not, and the 401 goes to the
    // function after one attempt. Both against an API that refuses every token.
    let api = Api::start("never", "{}");
    let bind = format!("oidc=http://127.0.0.1:{}", api.port);
    let probe = test_guest("http-probe");
    let send = |body: &str| {
        let input = serde_json::json!({
            "url": api.url("/always-401"), "method": "POST", "body": body,
            "headers": { "content-length": body.len().to_string(), "content-type": "text/plain" },
        })
        .to_string();
        let input_file = env.path("input.json");
        std::fs::write(&input_file, input).unwrap();
        env.run(&["run", probe.to_str().unwrap(), "--bind", &bind, "--input-file", input_file.to_str().unwrap()])
    };
    let out = send("small body, kept for a retry");
    assert_eq!(out.success().json()["status"], 401);
    let recorded = api.recorded();
    assert_eq!(recorded.len(), 2, "one request and one retry");
    assert!(recorded.iter().all(|r| r.body == "small body, kept for a retry"));
    assert_ne!(recorded[0].authorization, recorded[1].authorization, "the retry carries the refreshed token");
    assert_eq!(provider.refreshes(), 2);

    let big = "x".repeat(wasm_host_runtime::REPLAY_LIMIT + 1);
    let out = send(&big);
    assert_eq!(out.success().json()["status"], 401);
    assert_eq!(api.recorded().len(), 3, "a streamed body is sent once");
    assert_eq!(api.recorded()[2].body.len(), big.len());
    assert_eq!(provider.refreshes(), 2, "no refresh for a request that cannot be retried");
}

#[test]
fn bindings_are_checked_before_the_function_runs() {
    let env = Env::new(BIN);
    env.create("api", "client-secret-value").success();
    let probe = test_guest("http-probe");
    let p = probe.to_str().unwrap();
    env.run(&["run", p, "--bind", "nope=https://api.example.com"]).failure(3, "no connection named `nope`");
    env.run(&["run", p, "--bind", "api=http://api.example.com"]).failure(2, "use https");
    env.run(&["run", p, "--bind", "api=https://api.example.com/v1"]).failure(2, "no path");
    env.run(&["run", p, "--bind", "https://api.example.com"]).failure(2, "CONNECTION=ORIGIN");
    env.run(&["run", p, "--bind", "api=https://a.example", "--bind", "other=https://a.example"])
        .failure(2, "bound to both");
}
