//! The admin API and `--remote` for real: a `wasm-host serve` with `--admin-listen` on its own store and identity,
//! and a command line on "the laptop", an env of its own (other HOME and XDG directories, no store, no identity,
//! no WASM_HOST_STORE) that reaches the server only through the admin API.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wasm_host_store::secrecy::ExposeSecret;
use wasm_host_store::{Keys, SecretField, Store};
use wasm_host_tests::http::follow_to_callback;
use wasm_host_tests::provider::{Provider, ProviderConfig, CLIENT_ID, CLIENT_SECRET};
use wasm_host_tests::serving::Serving;
use wasm_host_tests::{plant_expired_authorization, reqwest, test_guest, texts_under, Env, Run};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");
const SECRET: &str = "remote-client-secret-5b7e1";
const NEW_SECRET: &str = "remote-client-secret-rotated-c04";

/// A server env with its admin tokens, and `serve` running with the admin API on loopback.
struct Server {
    env: Env,
    serving: Serving,
    admin: String,
    ops: String,
    read_only: String,
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        let env = Env::new(BIN);
        let token = |args: &[&str]| env.run(&[&["admin", "token", "create"][..], args].concat()).success().stdout.trim().to_owned();
        let ops = token(&["--name", "ops"]);
        let read_only = token(&["--name", "audit", "--read-only"]);
        let dir = env.path("functions");
        std::fs::create_dir_all(&dir).unwrap();
        let wasm = dir.join("echo.wasm");
        std::fs::copy(test_guest("trivial"), &wasm).unwrap();
        let listen = ["--admin-listen", "127.0.0.1:0"];
        let serving = Serving::start(&env, &[&listen[..], extra, &[wasm.to_str().unwrap()]].concat());
        let admin = serving.admin.clone().unwrap();
        Self { env, serving, admin, ops, read_only }
    }

    /// `METHOD /path` with `token` and `body`: status and JSON body.
    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        call(&client(), &format!("{}{path}", self.admin), method, token, body)
    }

    /// The server's connections, as its own `authconnection list --json` prints them.
    fn list(&self) -> Value {
        self.env.run(&["authconnection", "list", "--json"]).success().json()
    }
}

/// The laptop: an env of its own pointed at `server` with `token` in WASM_HOST_ADMIN_TOKEN.
struct Laptop {
    env: Env,
    remote: String,
    token: String,
    /// Everything its commands printed, for the scan at the end.
    printed: std::cell::RefCell<Vec<String>>,
}

impl Laptop {
    fn new(remote: &str, token: &str) -> Self {
        Self { env: Env::new(BIN), remote: remote.into(), token: token.into(), printed: Default::default() }
    }

    fn cmd(&self) -> Command {
        let mut cmd = self.env.cmd();
        cmd.env("WASM_HOST_REMOTE", &self.remote).env("WASM_HOST_ADMIN_TOKEN", &self.token);
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_stdin(args, None)
    }

    fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let run = self.env.run_with(self.cmd(), args, stdin);
        self.printed.borrow_mut().extend([run.stdout.clone(), run.stderr.clone()]);
        run
    }

    /// Asserts that no file the laptop's commands wrote holds any of `values`, and that no store or identity was
    /// made there.
    fn assert_clean(&self, values: &[&str]) {
        assert!(!self.env.store().exists(), "a store was made on the laptop");
        assert!(!self.env.identity().exists(), "an identity was made on the laptop");
        for text in self.printed.borrow().iter().chain(texts_under(&self.env.path("")).iter()) {
            for value in values {
                assert!(!text.contains(value), "a secret or token on the laptop: {text}");
            }
        }
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

fn call(client: &reqwest::blocking::Client, url: &str, method: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = client.request(method.parse().unwrap(), url).bearer_auth(token);
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

const CREATE: [&str; 12] = [
    "authconnection", "create", "--name", "github", "--type", "TYPE_OAUTH2", "--provider-url", "http://127.0.0.1:9/",
    "--client-id", "client-1", "--client-secret-stdin", "--json",
];

#[test]
fn the_remote_cli_creates_lists_updates_and_deletes_on_the_server() {
    let server = Server::start(&[]);
    let laptop = Laptop::new(&server.admin, &server.ops);

    // create: the secret typed on the laptop (stdin) goes to the server in the request body.
    let created = laptop.run_stdin(&CREATE, Some(SECRET));
    created.success();
    assert!(created.stderr.contains("next: authorize it"), "{}", created.stderr);
    let shown = server.env.run(&["authconnection", "show", "github", "--json"]).success().json();
    assert_eq!(created.json(), shown, "the same JSON as on the server");
    laptop.run_stdin(&CREATE, Some(SECRET)).failure(4, "already exists");
    laptop.run_stdin(&[&CREATE[..2], &["--name", "Bad Name"], &CREATE[4..]].concat(), Some(SECRET)).failure(2, "Bad Name");

    // list: the same rows, as JSON and as tab-separated text.
    assert_eq!(laptop.run(&["authconnection", "list", "--json"]).success().json(), server.list());
    let text = laptop.run(&["workspace", "authconnection", "list"]).success().stdout.clone();
    assert_eq!(text.lines().next().unwrap().split('\t').next(), Some("github"), "{text}");

    // update, with a new secret on stdin: the grant is kept, the client ID changes.
    let updated = laptop.run_stdin(
        &["authconnection", "update", "github", "--client-id", "client-2", "--client-secret-stdin", "--json"],
        Some(NEW_SECRET),
    );
    updated.success();
    assert_eq!(updated.json(), server.env.run(&["authconnection", "show", "github", "--json"]).success().json());
    assert_eq!(updated.json()["client_id"], "client-2");
    assert!(updated.json().get("grant_note").is_none(), "the API's extra field stays off the CLI's output");
    laptop.run(&["authconnection", "update", "gitlab", "--client-id", "x"]).failure(3, "no connection named `gitlab`");
    laptop.run(&["authconnection", "update", "github", "--pkce", "sometimes"]).failure(2, "--pkce");

    // revoke without tokens, and the catalog.
    let revoked = laptop.run(&["authconnection", "revoke", "github", "--json"]).success().json();
    assert_eq!(revoked, json!({"name": "github", "status": "revoked", "had_tokens": false, "revoked_at_provider": false}));
    let providers = laptop.run(&["authconnection", "providers", "--json"]).success().json();
    assert_eq!(providers, server.env.run(&["authconnection", "providers", "--json"]).success().json());

    // Verbs that need the local store say so, with their own exit code; no store is made for them.
    for verb in [&["authconnection", "show", "github"][..], &["store", "recipient"]] {
        laptop.run(verb).failure(23, "works on a local store only");
    }

    // delete.
    laptop.run(&["authconnection", "delete", "gitlab"]).failure(3, "no connection named `gitlab`");
    let deleted = laptop.run(&["authconnection", "delete", "github", "--json"]).success().json();
    assert_eq!(deleted, json!({"name": "github", "deleted": true}));
    assert_eq!(server.list(), json!([]));

    // The audit log: each change asked for, by whom, how it ended; the same locally and remotely.
    let audit = server.env.run(&["admin", "audit", "--json"]).success().json();
    let rows: Vec<(String, String, Option<String>, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().map(str::to_owned);
            (s("actor").unwrap(), s("action").unwrap(), s("connection"), s("outcome").unwrap())
        })
        .collect();
    let row = |action: &str, connection: Option<&str>, outcome: &str| {
        ("ops".to_owned(), action.to_owned(), connection.map(str::to_owned), outcome.to_owned())
    };
    assert_eq!(
        rows,
        vec![
            row("create", Some("github"), "ok"),
            row("create", Some("github"), "conflict"),
            row("update", Some("github"), "ok"),
            row("update", Some("gitlab"), "not-found"),
            row("revoke", Some("github"), "ok"),
            row("delete", Some("gitlab"), "not-found"),
            row("delete", Some("github"), "ok"),
        ]
    );
    assert!(audit[0]["at"].as_str().unwrap().ends_with('Z'), "UTC: {audit}");
    assert_eq!(laptop.run(&["admin", "audit", "--json"]).success().json(), audit);
    let last = laptop.run(&["admin", "audit", "--json", "--limit", "2"]).success().json();
    assert_eq!(last.as_array().unwrap()[..], audit.as_array().unwrap()[5..]);

    for text in [audit.to_string(), server.serving.stderr()] {
        for value in [SECRET, NEW_SECRET, &server.ops[4..], &server.read_only[4..]] {
            assert!(!text.contains(value), "a secret or token in the audit log or the server's log: {text}");
        }
    }
    laptop.assert_clean(&[SECRET, NEW_SECRET, &server.ops[4..], &server.read_only[4..]]);
}

#[test]
fn wrong_expired_and_read_only_tokens_change_nothing() {
    let server = Server::start(&[]);
    let brief = server.env.run(&["admin", "token", "create", "--name", "brief", "--expires-in", "1s"]).success().stdout.trim().to_owned();
    server.env.run_stdin(&CREATE[..CREATE.len() - 1], SECRET).success();
    let before = server.list();

    // The expired token: refused once its second has passed (polled, at most 30 s), like an unknown one.
    let end = Instant::now() + Duration::from_secs(30);
    while server.call("GET", "/v1/connections", &brief, None).0 == 200 {
        assert!(Instant::now() < end, "the token did not expire");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut answers = Vec::new();
    for token in ["wha_not-a-token", brief.as_str(), "no-prefix"] {
        for (method, path, body) in [
            ("GET", "/v1/connections", None),
            ("POST", "/v1/connections", Some(json!({"name": "x", "type": "TYPE_OAUTH2", "provider_url": "http://127.0.0.1:9/", "client_id": "c", "client_secret": SECRET}))),
            ("DELETE", "/v1/connections/github", None),
            ("PATCH", "/v1/connections/github", Some(json!({"client_id": "changed"}))),
            ("POST", "/v1/connections/github/revoke", None),
        ] {
            let (status, body) = server.call(method, path, token, body);
            assert_eq!((status, body["error"]["kind"].as_str()), (401, Some("unauthorized")), "{method} {path} {token}: {body}");
            answers.push(body.to_string());
        }
    }
    // Read-only: reads work, every change is refused with 403 and audited.
    assert_eq!(server.call("GET", "/v1/connections", &server.read_only, None), (200, before.clone()));
    let read_only = Laptop::new(&server.admin, &server.read_only);
    read_only.run(&["authconnection", "list", "--json"]).success();
    read_only.run_stdin(&[&CREATE[..3], &["other"], &CREATE[4..]].concat(), Some(SECRET)).failure(24, "read-only");
    read_only.run(&["authconnection", "update", "github", "--client-id", "changed"]).failure(24, "read-only");
    read_only.run(&["authconnection", "revoke", "github"]).failure(24, "read-only");
    read_only.run(&["authconnection", "delete", "github"]).failure(24, "read-only");
    // Wrong and expired tokens through the CLI.
    for token in ["wha_not-a-token", brief.as_str()] {
        Laptop::new(&server.admin, token).run(&["authconnection", "delete", "github"]).failure(24, "the server refused");
    }
    assert_eq!(server.list(), before, "nothing changed");
    let audit = server.env.run(&["admin", "audit", "--json"]).success().json();
    let refused: Vec<(&str, &str)> =
        audit.as_array().unwrap().iter().map(|e| (e["action"].as_str().unwrap(), e["outcome"].as_str().unwrap())).collect();
    assert_eq!(refused, [("create", "read-only"), ("update", "read-only"), ("revoke", "read-only"), ("delete", "read-only")]);
    assert!(audit.as_array().unwrap().iter().all(|e| e["actor"] == "audit"), "{audit}");

    // No token at all, and http:// to another host than loopback: refused on the laptop, before any request.
    let none = Laptop::new(&server.admin, "");
    let mut cmd = none.env.cmd();
    cmd.env("WASM_HOST_REMOTE", &server.admin);
    none.env.run_with(cmd, &["authconnection", "list"], None).failure(24, "WASM_HOST_ADMIN_TOKEN");
    Laptop::new("http://192.0.2.1:9443", &server.ops).run(&["authconnection", "list"]).failure(2, "https://");
    let file = none.env.path("token");
    std::fs::write(&file, format!("{}\n", server.read_only)).unwrap();
    let mut cmd = none.env.cmd();
    cmd.env("WASM_HOST_REMOTE", &server.admin);
    let listed = none.env.run_with(cmd, &["--admin-token-file", file.to_str().unwrap(), "authconnection", "list", "--json"], None);
    assert_eq!(listed.success().json(), before, "--admin-token-file");

    for text in answers.iter().chain([&server.serving.stderr()]) {
        assert!(!text.contains(SECRET) && !text.contains(&brief[4..]), "{text}");
    }
    read_only.assert_clean(&[SECRET, &server.ops[4..], &server.read_only[4..]]);
}

#[test]
fn revoke_through_the_admin_api_revokes_at_the_provider() {
    let provider = Provider::start(ProviderConfig::default());
    let server = Server::start(&[]);
    let secret = wasm_host_tests::provider::CLIENT_SECRET;
    let laptop = Laptop::new(&server.admin, &server.ops);
    let created = laptop.run_stdin(
        &["authconnection", "create", "--name", "idp", "--type", "TYPE_OAUTH2", "--provider-url", &provider.issuer,
          "--client-id", wasm_host_tests::provider::CLIENT_ID, "--client-secret-stdin"],
        Some(secret),
    );
    created.success();
    let (access, refresh) = ("remote-access-token-9d3", "remote-refresh-token-71a");
    let tokens = json!({"access_token": access, "refresh_token": refresh, "expires_in": 3600}).to_string();
    server.env.import_token("idp", &tokens).success();

    let revoked = laptop.run(&["authconnection", "revoke", "idp", "--json"]).success().json();
    assert_eq!(revoked["revoked_at_provider"], true, "{revoked}");
    assert_eq!(revoked["had_tokens"], true);
    let listed = laptop.run(&["authconnection", "list", "--json"]).success().json();
    assert_eq!(listed[0]["status"], "revoked");
    assert_eq!(listed[0]["has_refresh_token"], false);

    laptop.run(&["authconnection", "revoke", "gone"]).failure(3, "no connection named `gone`");
    laptop.assert_clean(&[secret, access, refresh, &server.ops[4..]]);
}

#[test]
fn the_admin_api_needs_tls_off_loopback_and_the_cli_trusts_a_private_ca() {
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tls");
    let (cert, key, ca) = (tls.join("cert.pem"), tls.join("key.pem"), tls.join("ca.pem"));
    let env = Env::new(BIN);
    let wasm = test_guest("trivial");
    env.run(&["serve", "--admin-listen", "0.0.0.0:0", wasm.to_str().unwrap()]).failure(2, "needs TLS");

    let tls_args = ["--admin-tls-cert", cert.to_str().unwrap(), "--admin-tls-key", key.to_str().unwrap()];
    let server = Server::start(&tls_args);
    assert!(server.admin.starts_with("https://127.0.0.1:"), "{}", server.admin);
    let laptop = Laptop::new(&server.admin, &server.ops);
    // The public roots do not vouch for the test CA: refused until --remote-ca names it.
    laptop.run(&["authconnection", "list"]).failure(24, "cannot reach the admin API");
    let trusted = laptop.run(&["--remote-ca", ca.to_str().unwrap(), "authconnection", "list", "--json"]);
    assert_eq!(trusted.success().json(), json!([]));
    let mut cmd = laptop.cmd();
    cmd.env("WASM_HOST_REMOTE_CA", &ca);
    laptop.env.run_with(cmd, &["authconnection", "create", "--name", "tls", "--type", "TYPE_OAUTH2", "--provider-url",
        "http://127.0.0.1:9/", "--client-id", "c", "--client-secret-stdin"], Some(SECRET)).success();
    assert_eq!(server.list()[0]["name"], "tls");
    laptop.assert_clean(&[SECRET, &server.ops[4..]]);
}

/// Whether `value` has the shape `schema` gives (the parts of JSON Schema the document uses: `$ref`, `allOf`,
/// `type`, `enum`, `required`, `properties`, `additionalProperties`, `items`); the first mismatch, by its path.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.strip_prefix("#/components/schemas/").expect("a local $ref");
        return conforms(doc, &doc["components"]["schemas"][name], value, at);
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        conforms(doc, part, value, at)?;
    }
    let type_of = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() && !types.contains(&type_of(value)) {
        return Err(format!("{at}: {} where the document says {types:?}", type_of(value)));
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Value::Object(fields) = value {
        for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !fields.contains_key(required) {
                return Err(format!("{at}: no `{required}`"));
            }
        }
        for (key, field) in fields {
            match (&schema["properties"][key], &schema["additionalProperties"]) {
                (Value::Null, Value::Bool(false)) => return Err(format!("{at}: `{key}` is not in the document")),
                (Value::Null, Value::Object(_)) => conforms(doc, &schema["additionalProperties"], field, &format!("{at}.{key}"))?,
                (Value::Null, _) => {}
                (property, _) => conforms(doc, property, field, &format!("{at}.{key}"))?,
            }
        }
    }
    if let (Value::Array(items), Value::Object(_)) = (value, &schema["items"]) {
        for (i, item) in items.iter().enumerate() {
            conforms(doc, &schema["items"], item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

#[test]
fn the_admin_api_answers_as_its_openapi_document_says() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/admin-openapi.json")).unwrap())
            .unwrap();
    let server = Server::start(&[]);
    let (ops, ro) = (server.ops.clone(), server.read_only.clone());
    let create = |name: &str| {
        json!({"name": name, "type": "TYPE_OAUTH2", "provider_url": "http://127.0.0.1:9/", "client_id": "c", "client_secret": SECRET,
               "endpoints": {"token_url": "http://127.0.0.1:9/token"}, "protocol": {"token_params": ["audience=x"]}})
    };
    let big = json!({"name": "big", "padding": "x".repeat(1 << 20)});
    // (template, method, concrete path, token, body): at least one request for each documented answer.
    let requests: Vec<(&str, &str, String, &str, Option<Value>)> = vec![
        ("/v1/connections", "get", "/v1/connections".into(), "", None),
        ("/v1/connections", "post", "/v1/connections".into(), &ops, Some(create("github"))),
        ("/v1/connections", "get", "/v1/connections".into(), &ops, None),
        ("/v1/connections", "post", "/v1/connections".into(), &ops, Some(create("github"))),
        ("/v1/connections", "post", "/v1/connections".into(), &ops, Some(create("Bad Name"))),
        ("/v1/connections", "post", "/v1/connections".into(), &ops, Some(json!({"name": "x", "surprise": 1}))),
        ("/v1/connections", "post", "/v1/connections".into(), &ro, Some(create("other"))),
        ("/v1/connections", "post", "/v1/connections".into(), &ops, Some(big)),
        ("/v1/connections", "post", "/v1/connections".into(), "wha_wrong", Some(create("other"))),
        ("/v1/connections/{name}", "patch", "/v1/connections/github".into(), &ops, Some(json!({"client_id": "c2"}))),
        ("/v1/connections/{name}", "patch", "/v1/connections/github".into(), &ops, Some(json!({"protocol": {"pkce": "maybe"}}))),
        ("/v1/connections/{name}", "patch", "/v1/connections/nope".into(), &ops, Some(json!({}))),
        ("/v1/connections/{name}", "patch", "/v1/connections/github".into(), &ro, Some(json!({}))),
        ("/v1/connections/{name}", "patch", "/v1/connections/github".into(), "", Some(json!({}))),
        ("/v1/connections/{name}", "patch", "/v1/connections/github".into(), &ops, Some(json!({"padding": "x".repeat(1 << 20)}))),
        ("/v1/connections/{name}/revoke", "post", "/v1/connections/github/revoke".into(), &ops, None),
        ("/v1/connections/{name}/revoke", "post", "/v1/connections/nope/revoke".into(), &ops, None),
        ("/v1/connections/{name}/revoke", "post", "/v1/connections/Bad/revoke".into(), &ops, None),
        ("/v1/connections/{name}/revoke", "post", "/v1/connections/github/revoke".into(), &ro, None),
        ("/v1/connections/{name}/revoke", "post", "/v1/connections/github/revoke".into(), "", None),
        ("/v1/providers", "get", "/v1/providers".into(), &ro, None),
        ("/v1/providers", "get", "/v1/providers".into(), "", None),
        ("/v1/audit", "get", "/v1/audit?limit=3".into(), &ro, None),
        ("/v1/audit", "get", "/v1/audit?limit=many".into(), &ro, None),
        ("/v1/audit", "get", "/v1/audit".into(), "", None),
        ("/v1/connections/{name}", "delete", "/v1/connections/github".into(), &ro, None),
        ("/v1/connections/{name}", "delete", "/v1/connections/Bad".into(), &ops, None),
        ("/v1/connections/{name}", "delete", "/v1/connections/github".into(), &ops, None),
        ("/v1/connections/{name}", "delete", "/v1/connections/github".into(), &ops, None),
        ("/v1/connections/{name}", "delete", "/v1/connections/github".into(), "", None),
    ];
    let http = client();
    let mut seen = std::collections::BTreeSet::new();
    let mut answers = Vec::new();
    // One request: its answer checked against the document, and (template, method, status) noted as provoked.
    let mut check = |template: &str, method: &str, path: &str, token: &str, body: Option<Value>| {
        let (status, answer) = call(&http, &format!("{}{path}", server.admin), &method.to_uppercase(), token, body);
        let documented = &doc["paths"][template][method]["responses"][status.to_string()];
        assert!(documented.is_object(), "{method} {path} answered {status}, which the document does not list: {answer}");
        let schema = &documented["content"]["application/json"]["schema"];
        conforms(&doc, schema, &answer, "$").unwrap_or_else(|e| panic!("{method} {path} → {status}: {e}\n{answer}"));
        seen.insert((template.to_owned(), method.to_owned(), status.to_string()));
        answers.push(answer.to_string());
        answer
    };
    for (template, method, path, token, body) in requests {
        check(template, method, &path, token, body);
    }

    // Remote authorize, against the local OpenID provider: a connection to it and a client-credentials one.
    let provider = Provider::start(ProviderConfig::default());
    let idp = json!({"name": "idp", "type": "TYPE_OAUTH2", "provider_url": provider.issuer, "client_id": CLIENT_ID,
                     "client_secret": CLIENT_SECRET});
    check("/v1/connections", "post", "/v1/connections", &ops, Some(idp));
    let mut svc = create("svc");
    svc["grant"] = json!("client-credentials");
    check("/v1/connections", "post", "/v1/connections", &ops, Some(svc));
    let (start, complete) = ("/v1/connections/{name}/authorization", "/v1/authorizations/complete");
    let loopback = json!({"redirect_uri": "http://127.0.0.1:9/callback"});
    let started = check(start, "post", "/v1/connections/idp/authorization", &ops, Some(loopback.clone()));
    for (path, token, body) in [
        ("/v1/connections/idp/authorization", &ops, json!({"redirect_uri": "http://localhost:9/callback"})),
        ("/v1/connections/idp/authorization", &ops, json!({"redirect": "http://127.0.0.1:9/callback"})),
        ("/v1/connections/idp/authorization", &ro, loopback.clone()),
        ("/v1/connections/idp/authorization", &String::new(), loopback.clone()),
        ("/v1/connections/nope/authorization", &ops, loopback.clone()),
        ("/v1/connections/svc/authorization", &ops, loopback.clone()),
    ] {
        check(start, "post", path, token, Some(body));
    }
    // The browser, up to the provider's redirect to the (absent) loopback listener: the callback's parameters.
    let callback = url::Url::parse(&follow_to_callback(started["authorization_url"].as_str().unwrap())).unwrap();
    let mut reply = json!({"connection": "idp"});
    for (key, value) in callback.query_pairs() {
        reply[key.as_ref()] = json!(value);
    }
    assert_eq!(reply["state"], started["state"]);
    let stored = check(complete, "post", complete, &ops, Some(reply.clone()));
    assert_eq!(stored["status"], "authorized", "{stored}");
    check(complete, "post", complete, &ops, Some(reply.clone()));
    let (store, keys) = (Store::open(&server.env.store()).unwrap(), Keys::load(&server.env.identity()).unwrap().unwrap());
    plant_expired_authorization(&store, &keys, "idp", "an-old-state");
    for (token, body) in [
        (&ops, json!({"state": "an-old-state", "code": "c"})),
        (&ops, json!({"state": "a-state-never-issued", "code": "c"})),
        (&ops, json!({"code": "c"})),
        (&ro, json!({"state": "s", "code": "c"})),
        (&String::new(), json!({"state": "s", "code": "c"})),
    ] {
        check(complete, "post", complete, token, Some(body));
    }
    // Remote authorize --device: started, then polled (pending; a used handle, an unknown one, an expired
    // authorization, a body without a handle, a read-only token, no token).
    let (device_start, poll) = ("/v1/connections/{name}/device-authorization", "/v1/device-authorizations/poll");
    let device = check(device_start, "post", "/v1/connections/idp/device-authorization", &ops, Some(json!({})));
    for (path, token, body) in [
        ("/v1/connections/idp/device-authorization", &ops, json!({"scopes": []})),
        ("/v1/connections/idp/device-authorization", &ro, json!({})),
        ("/v1/connections/idp/device-authorization", &String::new(), json!({})),
        ("/v1/connections/nope/device-authorization", &ops, json!({})),
        ("/v1/connections/svc/device-authorization", &ops, json!({})),
    ] {
        check(device_start, "post", path, token, Some(body));
    }
    let pending = check(poll, "post", poll, &ops, Some(json!({"handle": device["handle"]})));
    assert_eq!(pending["status"], "pending", "{pending}");
    for (token, body) in [
        (&ops, json!({"handle": device["handle"]})),
        (&ops, json!({"handle": "a-handle-never-issued"})),
        (&ops, json!({"handle": "an-old-state"})),
        (&ops, json!({})),
        (&ro, json!({"handle": pending["handle"]})),
        (&String::new(), json!({"handle": pending["handle"]})),
    ] {
        check(poll, "post", poll, token, Some(body));
    }
    let access = store.secret("idp", SecretField::AccessToken, &keys).unwrap().unwrap();
    let refresh = store.secret("idp", SecretField::RefreshToken, &keys).unwrap().unwrap();
    // Each documented answer was provoked, but those this test cannot make happen on a sound local store
    // (500, 503: a broken store or database; 502: a provider that refuses or is down).
    let cannot = ["500", "502", "503"];
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap().iter().filter(|(m, _)| *m != "parameters") {
            for status in operation["responses"].as_object().unwrap().keys() {
                let key = (template.clone(), method.clone(), status.clone());
                assert!(seen.contains(&key) || cannot.contains(&status.as_str()), "no request provoked {key:?}");
            }
        }
    }
    // And every route the server answers is in the document: another method gets 405, another path 404.
    assert_eq!(server.call("PUT", "/v1/connections", &ops, None).0, 405);
    assert_eq!(server.call("GET", "/v1/elsewhere", &ops, None).0, 404);
    for answer in &answers {
        for secret in [SECRET, CLIENT_SECRET, access.expose_secret(), refresh.expose_secret()] {
            assert!(!answer.contains(secret), "a client secret or token in an answer: {answer}");
        }
    }
}
