//! The grants beyond the authorization code, against the local OpenID provider (npm oidc-provider) with both
//! enabled: client credentials (RFC 6749 §4.4), requested by the host itself, single-flight across processes; and
//! device authorization (RFC 8628), where the test plays the user on the provider's verification page.

use std::time::Duration;

use wasm_host_tests::provider::{Provider, ProviderConfig, CLIENT_ID, CLIENT_SECRET};
use wasm_host_tests::device::{device_polls, DeviceRun};
use wasm_host_tests::{example, http, test_guest, Env};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");

fn service_client() -> String {
    format!("{CLIENT_ID}-service")
}

fn list(env: &Env) -> serde_json::Value {
    env.run(&["authconnection", "list", "--json"]).success().json()
}

/// `create --grant client-credentials` for the provider's service client, its token endpoint found by discovery.
fn create_service(env: &Env, provider: &Provider, name: &str, secret: &str) {
    env.run_stdin(
        &[
            "authconnection", "create", "--name", name, "--type", "TYPE_OAUTH2", "--provider-url", &provider.issuer,
            "--client-id", &service_client(), "--client-secret-stdin", "--grant", "client-credentials",
            "--default-scopes", "api",
        ],
        secret,
    )
    .success();
}

/// The token-probe function's answer for connection `name`: the token it was given, or its WIT error.
fn probe(env: &Env, name: &str) -> serde_json::Value {
    let guest = test_guest("token-probe");
    let input = serde_json::json!({ "connection": name }).to_string();
    env.run(&["run", guest.to_str().unwrap(), "--input", &input, "--allow-connection", name, "--refresh-margin", "1s"])
        .success()
        .json()
}

fn client_credentials_requests(provider: &Provider) -> u64 {
    provider.stats()["token"]["client_credentials"].as_u64().unwrap_or(0)
}

/// The provider's own word on a token (RFC 7662 introspection, as the service client).
fn introspect(provider: &Provider, token: &str) -> serde_json::Value {
    let client = service_client();
    let (status, body) = http::post_form(
        &format!("{}/token/introspection", provider.issuer),
        (&client, CLIENT_SECRET),
        &[("token", token)],
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn client_credentials_a_function_gets_a_working_token_without_authorize() {
    let provider = Provider::start(ProviderConfig { access_ttl: 10, ..Default::default() });
    let env = Env::new(BIN);
    // Both functions compiled first (neither granted the connection, so no token), so that the token's 10 s
    // cover the calls below however slow the first compilation is.
    let (userinfo, probe_guest) = (example("userinfo"), test_guest("token-probe"));
    env.run(&["run", userinfo.to_str().unwrap(), "--input", "{\"connection\":\"svc\",\"url\":\"http://127.0.0.1:9/\"}"])
        .failure(1, "access-denied");
    env.run(&["run", probe_guest.to_str().unwrap(), "--input", "{\"connection\":\"svc\"}"]).success();
    create_service(&env, &provider, "svc", CLIENT_SECRET);
    let row = &list(&env)[0];
    assert_eq!(row["grant"], "client-credentials", "{row}");
    assert_eq!(row["status"], "created");
    assert_eq!(row["endpoints"]["token_url"], format!("{}/token", provider.issuer), "discovered at create");
    let table = env.run(&["authconnection", "list"]).success().stdout.clone();
    assert!(table.trim_end().ends_with("client-credentials"), "{table}");
    let shown = env.run(&["authconnection", "show", "svc"]).success().stdout.clone();
    assert!(shown.lines().any(|l| l.starts_with("grant:") && l.ends_with(" client-credentials")), "{shown}");

    // No authorize step: its own exit code, nothing changed.
    env.run(&["authconnection", "authorize", "svc", "--no-browser", "--port", "0"])
        .failure(21, "uses the client-credentials grant, which has no authorization step");
    assert_eq!(client_credentials_requests(&provider), 0);

    // A function calls the provider's protected API with the token the host requested on first use.
    let api = format!("{}/test/api", provider.issuer);
    let input = serde_json::json!({ "connection": "svc", "url": api }).to_string();
    let call = || {
        env.run(&[
            "run", userinfo.to_str().unwrap(), "--input", &input, "--allow-connection", "svc", "--allow-host",
            "127.0.0.1", "--refresh-margin", "1s",
        ])
    };
    let answer = call().success().json();
    assert_eq!(answer["client_id"], service_client(), "{answer}");
    assert_eq!(answer["kind"], "ClientCredentials", "{answer}");
    assert_eq!(client_credentials_requests(&provider), 1);
    let row = &list(&env)[0];
    assert_eq!(row["status"], "authorized", "{row}");
    assert_eq!(row["scopes"], serde_json::json!(["api"]), "{row}");
    assert_eq!(row["has_refresh_token"], false);

    // The provider says the token is its own, live, for this client and scope.
    let token = probe(&env, "svc")["access_token"].as_str().expect("a token").to_owned();
    let seen = introspect(&provider, &token);
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["client_id"], service_client(), "{seen}");
    assert_eq!(seen["scope"], "api", "{seen}");
    assert_eq!(client_credentials_requests(&provider), 1, "a valid token is reused, not requested again");

    // Past expiry exactly one more request, and the new token works.
    Provider::wait(Duration::from_millis(10_200));
    assert_eq!(introspect(&provider, &token)["active"], false, "the provider let it expire");
    assert_eq!(call().success().json()["kind"], "ClientCredentials");
    assert_eq!(client_credentials_requests(&provider), 2, "exactly one more token after expiry");
    call().success();
    assert_eq!(client_credentials_requests(&provider), 2);

    // Revoke ends the current token at the provider; the next use requests a new one.
    let revoked = env.run(&["authconnection", "revoke", "svc", "--json"]).success().json();
    assert_eq!(revoked["revoked_at_provider"], true, "{revoked}");
    let (status, _) = http::get_bearer(&api, &token);
    assert_eq!(status, 401);
    assert_eq!(list(&env)[0]["status"], "revoked");
    assert_eq!(call().success().json()["kind"], "ClientCredentials");
    assert_eq!(client_credentials_requests(&provider), 3);
    env.run(&["authconnection", "delete", "svc"]).success();
    assert_eq!(list(&env), serde_json::json!([]));
}

#[test]
fn client_credentials_four_processes_make_one_request_on_a_fresh_connection_and_one_after_expiry() {
    // Tokens of the first round live 8 s: long enough for a slow machine to start all four processes inside them.
    let provider = Provider::start(ProviderConfig { access_ttl: 8, ..Default::default() });
    let env = Env::new(BIN);
    create_service(&env, &provider, "svc", CLIENT_SECRET);
    let guest = test_guest("token-probe");
    // Compile once first (asking for a connection it is not granted, so no token), so that the four processes
    // reach the token call at about the same moment; a slow provider keeps the race open.
    env.run(&["run", guest.to_str().unwrap(), "--input", "{\"connection\":\"svc\"}"]).success();
    provider.configure(serde_json::json!({ "tokenDelayMs": 300 }));
    let four = || -> std::collections::HashSet<String> {
        let runs: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| probe(&env, "svc"))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        runs.iter().map(|r| r["access_token"].as_str().unwrap_or_else(|| panic!("not a token: {r}")).to_owned()).collect()
    };
    let first = four();
    assert_eq!(client_credentials_requests(&provider), 1, "exactly one token request across four processes");
    assert_eq!(first.len(), 1, "every process got the one token");
    assert_eq!(introspect(&provider, first.iter().next().unwrap())["active"], true);

    // Expired: four processes again, exactly one more request.
    Provider::wait(Duration::from_millis(8200));
    provider.configure(serde_json::json!({ "accessTtl": 3600 }));
    let second = four();
    assert_eq!(client_credentials_requests(&provider), 2, "exactly one more token request after expiry");
    assert_eq!(second.len(), 1, "{second:?}");
    assert!(second.is_disjoint(&first));
    assert_eq!(introspect(&provider, second.iter().next().unwrap())["active"], true);
}

#[test]
fn client_credentials_a_refused_client_is_reported_and_recorded() {
    let provider = Provider::start(ProviderConfig::default());
    let env = Env::new(BIN);
    create_service(&env, &provider, "svc", "not-the-secret");
    let t = probe(&env, "svc");
    assert_eq!(t["error"], "needs-authorization", "{t}");
    let message = t["message"].as_str().unwrap();
    assert!(message.contains("refused the client registration") && message.contains("invalid_client"), "{message}");
    assert!(message.contains("authconnection update svc --client-secret-stdin"), "{message}");
    assert!(!message.contains("not-the-secret"), "{message}");
    let row = &list(&env)[0];
    assert_eq!(row["status"], "client-refused", "{row}");
    assert!(row["status_reason"].as_str().unwrap().contains("invalid_client"), "{row}");
    // Recorded: the next use is told at once, without asking the provider again.
    let asked = client_credentials_requests(&provider);
    assert_eq!(probe(&env, "svc")["error"], "needs-authorization");
    assert_eq!(client_credentials_requests(&provider), asked);
    // The fixed registration is used at the next call.
    env.run_stdin(&["authconnection", "update", "svc", "--client-secret-stdin"], CLIENT_SECRET).success();
    assert_eq!(list(&env)[0]["status"], "created");
    let token = probe(&env, "svc")["access_token"].as_str().expect("a token after the update").to_owned();
    assert_eq!(introspect(&provider, &token)["active"], true);
}

#[test]
fn client_credentials_create_errors_change_nothing() {
    let provider = Provider::start(ProviderConfig::default());
    let env = Env::new(BIN);
    // A catalog provider that does not document the grant.
    env.run_stdin(
        &[
            "authconnection", "create", "--name", "gh", "--type", "TYPE_OAUTH2", "--provider", "github",
            "--client-id", "x", "--client-secret-stdin", "--grant", "client-credentials",
        ],
        "s",
    )
    .failure(2, "does not list the client-credentials grant");
    // An unknown grant.
    env.run_stdin(
        &[
            "authconnection", "create", "--name", "x", "--type", "TYPE_OAUTH2", "--provider-url", &provider.issuer,
            "--client-id", "x", "--client-secret-stdin", "--grant", "password",
        ],
        "s",
    )
    .failure(2, "invalid value 'password' for '--grant <GRANT>'");
    // No discovery and no --token-url: unreachable provider.
    env.run_stdin(
        &[
            "authconnection", "create", "--name", "x", "--type", "TYPE_OAUTH2", "--provider-url", "http://127.0.0.1:9",
            "--client-id", "x", "--client-secret-stdin", "--grant", "client-credentials",
        ],
        "s",
    )
    .failure(12, "--token-url");
    // Flags of a user's authorization only: refused, not stored unused.
    env.run_stdin(
        &[
            "authconnection", "create", "--name", "x", "--type", "TYPE_OAUTH2", "--provider-url", &provider.issuer,
            "--token-url", &format!("{}/token", provider.issuer), "--client-id", "x", "--client-secret-stdin",
            "--grant", "client-credentials", "--pkce", "on", "--auth-param", "prompt=consent", "--expose-refresh-token",
        ],
        "s",
    )
    .failure(
        2,
        "--pkce, --auth-param, --expose-refresh-token apply only to the authorization-code grant, and `x` uses the \
         client-credentials grant",
    );
    assert_eq!(list(&env), serde_json::json!([]));
    // With --token-url no discovery is needed; a catalog provider that documents the grant takes no user scopes.
    env.run_stdin(
        &[
            "authconnection", "create", "--name", "graph", "--type", "TYPE_OAUTH2", "--provider", "microsoft",
            "--tenant", "contoso.onmicrosoft.com", "--client-id", "x", "--client-secret-stdin", "--grant",
            "client-credentials", "--token-url", "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
            "--default-scopes", "https://graph.microsoft.com/.default",
        ],
        "s",
    )
    .success();
    let store = wasm_host_store::Store::open(&env.store()).unwrap();
    let keys = wasm_host_store::Keys::load(&env.identity()).unwrap().unwrap();
    let c = store.connection("graph", &keys).unwrap().unwrap();
    assert_eq!(c.options.grant, wasm_host_store::Grant::ClientCredentials);
    assert_eq!(c.options.default_scopes, vec!["https://graph.microsoft.com/.default".to_owned()]);
    drop(store);
    env.run(&["authconnection", "update", "graph", "--device-auth-url", "https://login.example/device"])
        .failure(2, "--device-auth-url applies only to the authorization-code grant");
    // Moved to another host, it keeps its grant and what its token request sends.
    let (other, bundle) = (Env::new(BIN), env.path("bundle.age"));
    let key = other.run(&["store", "recipient"]).success().stdout.trim().to_owned();
    env.run(&["store", "export", "-o", bundle.to_str().unwrap(), "--recipient", &key]).success();
    other.run(&["store", "import", bundle.to_str().unwrap()]).success();
    let row = &list(&other)[0];
    assert_eq!((row["name"].as_str(), row["grant"].as_str()), (Some("graph"), Some("client-credentials")), "{row}");
    let shown = other.run(&["authconnection", "show", "graph", "--json"]).success().json();
    let token_url = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
    assert_eq!(shown["endpoints"]["token_url"], token_url, "{shown}");
}

/// The device flow end to end: codes shown, `slow_down` honoured (the provider sees the next poll at least
/// interval + 5 s later, RFC 8628 §3.5), the user approves on the provider's page, tokens are stored as the code
/// flow stores them, and a function uses them.
#[test]
fn device_authorization_stores_tokens_a_function_uses_and_honours_slow_down() {
    let provider = Provider::start(ProviderConfig::default());
    provider.configure(serde_json::json!({ "deviceInterval": 1, "slowDownOnce": true }));
    let env = Env::new(BIN);
    env.create_for("tv", &provider).success();
    let run = DeviceRun::start(&env, "tv", &["--scopes", "openid,email,offline_access", "--timeout", "60s"]);
    assert!(run.uri.starts_with(&format!("{}/device", provider.issuer)), "{}", run.uri);
    let complete = run.complete.clone().expect("the complete URI is shown");
    assert!(complete.contains(&run.code.replace('-', "")) || complete.contains(&run.code), "{complete}");
    // Approved only once the provider has told the poller to slow down.
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while !device_polls(&provider).iter().any(|(_, a)| a == "slow_down") {
        assert!(std::time::Instant::now() < end, "no slow_down answered within 60 s: {:?}", device_polls(&provider));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, page) = Provider::enter_user_code(&run.uri, &run.code, true);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Sign-in Success"), "{page}");
    let done = run.finish();
    done.success();
    assert_eq!(done.json()["status"], "authorized", "{}", done.stdout);
    assert!(done.stderr.contains("refresh token stored"), "{}", done.stderr);

    let polls = device_polls(&provider);
    let slow = polls.iter().position(|(_, a)| a == "slow_down").unwrap();
    let gap = polls[slow + 1].0 - polls[slow].0;
    assert!(gap >= 5_900, "the poll after slow_down came {gap} ms later, not interval + 5 s: {polls:?}");
    assert_eq!(polls.last().unwrap().1, "tokens", "{polls:?}");
    assert_eq!(polls.iter().filter(|(_, a)| a == "tokens").count(), 1);

    // Stored as the code flow stores them: a function calls the userinfo endpoint with the access token.
    let row = &list(&env)[0];
    assert_eq!(row["grant"], "authorization-code");
    assert_eq!(row["has_refresh_token"], true, "{row}");
    let userinfo = example("userinfo");
    let input = serde_json::json!({ "connection": "tv", "url": format!("{}/me", provider.issuer) }).to_string();
    let me = env
        .run(&["run", userinfo.to_str().unwrap(), "--input", &input, "--allow-connection", "tv", "--allow-host", "127.0.0.1"])
        .success()
        .json();
    assert_eq!(me["sub"], "test-user", "{me}");
}

/// The user aborts on the provider's page: `access_denied` ends the command with exit 11, nothing stored.
#[test]
fn device_authorization_denied_ends_with_exit_11_and_stores_nothing() {
    let provider = Provider::start(ProviderConfig::default());
    let env = Env::new(BIN);
    env.create_for("tv", &provider).success();
    let run = DeviceRun::start(&env, "tv", &["--timeout", "60s"]);
    let (status, page) = Provider::enter_user_code(&run.uri, &run.code, false);
    assert_eq!(status, 200, "{page}");
    run.finish().failure(11, "the user denied the request at the provider; nothing was stored");
    let row = &list(&env)[0];
    assert_eq!(row["status"], "created", "{row}");
    assert!(device_polls(&provider).iter().any(|(_, a)| a == "access_denied"), "{:?}", device_polls(&provider));
}

/// Nobody enters the code: it expires (here after 2 s) and the command ends with exit 13, nothing stored.
#[test]
fn device_authorization_expired_ends_with_exit_13_and_stores_nothing() {
    let provider = Provider::start(ProviderConfig::default());
    provider.configure(serde_json::json!({ "deviceCodeTtl": 2 }));
    let env = Env::new(BIN);
    env.create_for("tv", &provider).success();
    let run = DeviceRun::start(&env, "tv", &["--timeout", "60s"]);
    let code = run.code.clone();
    run.finish().failure(13, "the code expired before the request was approved; nothing was stored");
    assert_eq!(list(&env)[0]["status"], "created");
    // The code is dead at the provider too.
    let (_, page) = Provider::enter_user_code(&format!("{}/device", provider.issuer), &code, true);
    assert!(!page.contains("Sign-in Success"), "{page}");
}

/// Nobody enters the code and `--timeout` (2 s) passes long before the code's own expiry: exit 13, saying that
/// it was the timeout, nothing stored. The provider's interval (10 minutes) does not stretch the wait.
#[test]
fn device_authorization_timeout_ends_with_exit_13_naming_the_timeout() {
    let provider = Provider::start(ProviderConfig::default());
    provider.configure(serde_json::json!({ "deviceInterval": 600, "deviceCodeTtl": 1200 }));
    let env = Env::new(BIN);
    env.create_for("tv", &provider).success();
    let mut run = DeviceRun::start(&env, "tv", &["--timeout", "2s"]);
    assert!(run.ends_within(Duration::from_secs(90)), "a 2 s --timeout waited out the provider's 600 s interval");
    let done = run.finish();
    done.failure(13, "--timeout 2s passed before the request was approved");
    assert!(!done.stderr.contains("the code expired"), "{}", done.stderr);
    assert_eq!(list(&env)[0]["status"], "created");
    assert!(device_polls(&provider).iter().all(|(_, a)| a == "authorization_pending"), "{:?}", device_polls(&provider));
}

/// A provider announcing `interval: 0` is not polled without pause: at most one poll a second.
#[test]
fn device_authorization_an_interval_of_zero_is_not_a_busy_loop() {
    let provider = Provider::start(ProviderConfig::default());
    provider.configure(serde_json::json!({ "deviceInterval": 0 }));
    let env = Env::new(BIN);
    env.create_for("tv", &provider).success();
    let run = DeviceRun::start(&env, "tv", &["--timeout", "3s"]);
    let done = run.finish();
    done.failure(13, "--timeout 3s passed");
    assert!(done.stderr.contains("asking the provider every 1 s"), "{}", done.stderr);
    let polls = device_polls(&provider);
    // One at once, then one a second: 4 in 3 s; a busy loop makes hundreds.
    assert!((1..=5).contains(&polls.len()), "{} polls in 3 s: {polls:?}", polls.len());
}

/// A connection whose provider publishes no device endpoint, and a client-credentials one: usage errors.
#[test]
fn device_authorization_needs_an_endpoint_and_the_authorization_code_grant() {
    let provider = Provider::start(ProviderConfig::default());
    let env = Env::new(BIN);
    env.run_stdin(
        &[
            "authconnection", "create", "--name", "plain", "--type", "TYPE_OAUTH2", "--provider-url", &provider.issuer,
            "--auth-url", &format!("{}/auth", provider.issuer), "--token-url", &format!("{}/token", provider.issuer),
            "--client-id", CLIENT_ID, "--client-secret-stdin",
        ],
        CLIENT_SECRET,
    )
    .success();
    env.run(&["authconnection", "authorize", "plain", "--device"])
        .failure(2, "publishes no device authorization endpoint (RFC 8628)");
    // Given by flag, it is used.
    env.run(&["authconnection", "update", "plain", "--device-auth-url", &format!("{}/device/auth", provider.issuer)]).success();
    let run = DeviceRun::start(&env, "plain", &["--timeout", "60s"]);
    assert!(run.uri.starts_with(&provider.issuer), "{}", run.uri);
    Provider::enter_user_code(&run.uri, &run.code, true);
    run.finish().success();
    create_service(&env, &provider, "svc", CLIENT_SECRET);
    env.run(&["authconnection", "authorize", "svc", "--device"]).failure(21, "no authorization step");
}
