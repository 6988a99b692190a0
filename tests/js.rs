//! JavaScript functions: `wasm-host build-js` with componentize-js, the `tailor` global, fetch through
//! wasi:http, all run by the real host.

use wasm_host_tests::{api::Api, js_example, js_tools, Env};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");
const TOKEN: &str = "js-token-7781";

fn env_with_token() -> Env {
    let env = Env::new(BIN);
    env.create("google-oauth", "s").success();
    env.import_token("google-oauth", &format!(r#"{{"access_token":"{TOKEN}","expires_in":3600}}"#)).success();
    env
}


#[test]
fn the_userinfo_module_written_for_the_other_runtime_runs_unchanged() {
    let component = js_example(BIN, "userinfo");
    let env = env_with_token();
    let api = Api::start(TOKEN, r#"{"id":"42","email":"js@example.com"}"#);
    let input = serde_json::json!({ "connection": "google-oauth", "url": api.url("/oauth2/v2/userinfo") }).to_string();
    let out = env.run_cached(&component, &["--input", &input, "--allow-connection", "google-oauth", "--allow-host", "127.0.0.1"]);
    assert_eq!(out.success().json(), serde_json::json!({"id":"42","email":"js@example.com"}));
    assert_eq!(api.recorded()[0].authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    // The API refuses the token: the function reports it (`getConnectionToken(name, { rejected })`), and the host,
    // holding no refresh token for these imported tokens, says the connection needs authorization; the thrown
    // Error's message is the function's error.
    env.import_token("google-oauth", r#"{"access_token":"wrong"}"#).success();
    env.run_cached(&component, &["--input", &input, "--allow-connection", "google-oauth", "--allow-host", "127.0.0.1"])
        .failure(1, "needs-authorization: the access token of `google-oauth` has expired or was refused");
    // Not granted: the promise rejects with code access-denied.
    env.run_cached(&component, &["--input", &input, "--allow-host", "127.0.0.1"]).failure(1, "access-denied");
}

#[test]
fn build_js_reports_syntax_errors_with_file_and_line() {
    let env = Env::new(BIN);
    let bad = env.path("bad.js");
    std::fs::write(&bad, "export default async (input) => {\n  const x = ;\n  return x;\n};\n").unwrap();
    let mut cmd = env.cmd();
    cmd.env("WASM_HOST_JS_TOOLS", js_tools());
    let out = env.run_with(cmd, &["build-js", bad.to_str().unwrap(), "-o", env.path("bad.wasm").to_str().unwrap()], None);
    out.failure(18, &format!("{}:2", bad.display()));
    assert!(out.stderr.contains("SyntaxError"), "{}", out.stderr);
    // Without Node.js on PATH: a clear message and its own exit code.
    let mut cmd = env.cmd();
    cmd.env("PATH", "/nonexistent");
    env.run_with(cmd, &["build-js", bad.to_str().unwrap(), "-o", "x.wasm"], None).failure(19, "Node.js is needed");
}
