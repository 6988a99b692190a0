//! The grants beyond the authorization code, against the local OpenID provider (npm oidc-provider) with both
//! enabled: client credentials (RFC 6749 §4.4), requested by the host itself, single-flight across processes; and
//! device authorization (RFC 8628), where the test plays the user on the provider's verification page.

use std::time::Duration;

use wasm_host_tests::provider::{Provider, ProviderConfig, CLIENT_ID, CLIENT_SECRET};
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
    let provider = Provider::start(ProviderConfig { access_ttl: 6, ..Default::default() });
    let env = Env::new(BIN);
    // Both functions compiled first (neither granted the connection, so no token), so that the token's 6 s
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
    Provider::wait(Duration::from_millis(6200));
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
fn client_credentials_four_processes_on_a_fresh_connection_make_one_request() {
    let provider = Provider::start(ProviderConfig::default());
    let env = Env::new(BIN);
    create_service(&env, &provider, "svc", CLIENT_SECRET);
    let guest = test_guest("token-probe");
    // Compile once first (asking for a connection it is not granted, so no token), so that the four processes
    // reach the token call at about the same moment; a slow provider keeps the race open.
    env.run(&["run", guest.to_str().unwrap(), "--input", "{\"connection\":\"svc\"}"]).success();
    provider.configure(serde_json::json!({ "tokenDelayMs": 300 }));
    let runs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| probe(&env, "svc"))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let tokens: std::collections::HashSet<_> =
        runs.iter().map(|r| r["access_token"].as_str().unwrap_or_else(|| panic!("not a token: {r}")).to_owned()).collect();
    assert_eq!(client_credentials_requests(&provider), 1, "exactly one token request across four processes");
    assert_eq!(tokens.len(), 1, "every process got the one token");
    assert_eq!(introspect(&provider, tokens.iter().next().unwrap())["active"], true);
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
}
