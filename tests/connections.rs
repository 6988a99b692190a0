//! `wasm-host authconnection ...` through the real binary: validation, listing, deletion, token import,
//! identity handling and what reaches the disk.

use std::os::unix::fs::PermissionsExt;

use wasm_host_store::{redb, Store};
use wasm_host_tests::Env;

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");
const SECRET: &str = "p@ss+w/rd=:%&?~ x";

fn env() -> Env {
    Env::new(BIN)
}

fn list(env: &Env) -> serde_json::Value {
    env.run(&["authconnection", "list", "--json"]).success().json()
}

#[test]
fn create_list_delete() {
    let env = env();
    assert_eq!(list(&env), serde_json::json!([]));
    env.create("google", SECRET).success();
    let listed = list(&env);
    assert_eq!(listed[0]["name"], "google");
    assert_eq!(listed[0]["type"], "TYPE_OAUTH2");
    assert_eq!(listed[0]["status"], "created");
    assert_eq!(listed[0]["expires_at"], serde_json::Value::Null);
    assert!(!listed.to_string().contains(SECRET));
    // The same verbs under `workspace authconnection`.
    let table = env.run(&["workspace", "authconnection", "list"]);
    table.success();
    // Into a pipe: no header, tab-separated cells.
    assert!(table.stdout.starts_with("google\tTYPE_OAUTH2\t"), "{}", table.stdout);
    assert!(table.stdout.contains("google") && table.stdout.contains("created"), "{}", table.stdout);
    env.run(&["workspace", "authconnection", "delete", "google"]).success();
    assert_eq!(list(&env), serde_json::json!([]));
    env.run(&["authconnection", "delete", "google"]).failure(3, "no connection named `google`");
}

#[test]
fn every_validation_error_has_its_message_and_changes_nothing() {
    let env = env();
    env.create("existing", SECRET).success();
    let before = list(&env);
    let base = |name: &str| -> Vec<String> {
        ["authconnection", "create", "--name", name, "--type", "TYPE_OAUTH2", "--provider-url", "https://p.example",
         "--client-id", "c", "--client-secret", "s"]
            .map(String::from)
            .to_vec()
    };
    let with = |mut args: Vec<String>, flag: &str, value: &str| {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1] = value.to_owned();
        args
    };
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (base("Google"), 2, "uppercase letter `G`"),
        (base("a_b"), 2, "the character `_`"),
        (base("a--b"), 2, "two in a row"),
        (base("-a"), 2, "starts or ends with a hyphen"),
        (base(&"a".repeat(64)), 2, "64 characters long; at most 63"),
        (base("bad\u{7}name"), 2, "control character (U+0007)"),
        (with(base("n"), "--type", "TYPE_OAUTH1"), 2, "possible values: TYPE_OAUTH2"),
        (with(base("n"), "--provider-url", "http://accounts.example.com"), 2, "only accepted for 127.0.0.1"),
        (with(base("n"), "--provider-url", "ftp://x.example"), 2, "uses `ftp`"),
        (with(base("n"), "--provider-url", "not a url"), 2, "is not a URL"),
        (with(base("n"), "--provider-url", "https://u:pw@x.example"), 2, "user name or password"),
        (with(base("n"), "--client-id", " "), 2, "--client-id is empty"),
        (with(base("n"), "--client-secret", ""), 2, "the client secret is empty"),
        (base("existing"), 4, "already exists"),
    ];
    for (args, code, message) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.run(&args).failure(code, message);
    }
    let mut args = base("n");
    args.extend(["--token-url".into(), "http://tokens.example/".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.run(&args).failure(2, "--token-url `http://tokens.example/` uses plain http");
    let without_secret = base("n");
    let no_secret: Vec<&str> = without_secret[..10].iter().map(String::as_str).collect();
    env.run(&no_secret).failure(2, "no client secret given");
    assert_eq!(list(&env), before, "a refused create changed the store");
}

#[test]
fn client_secret_from_env_and_stdin_reach_the_store_sealed() {
    let env = env();
    let mut cmd = env.cmd();
    cmd.env("WASM_HOST_CLIENT_SECRET", "from-the-environment");
    env.run_with(
        cmd,
        &["authconnection", "create", "--name", "env-secret", "--type", "TYPE_OAUTH2",
          "--provider-url", "https://p.example", "--client-id", "c"],
        None,
    )
    .success();
    env.create("stdin-secret", &format!("{SECRET}\n")).success();
    let keys = wasm_host_store::Keys::load(&env.identity()).unwrap().unwrap();
    let store = Store::open(&env.store()).unwrap();
    let field = wasm_host_store::SecretField::ClientSecret;
    use wasm_host_store::secrecy::ExposeSecret;
    assert_eq!(store.secret("env-secret", field, &keys).unwrap().unwrap().expose_secret(), "from-the-environment");
    // Exactly the bytes given, without the newline `echo` adds.
    assert_eq!(store.secret("stdin-secret", field, &keys).unwrap().unwrap().expose_secret(), SECRET);
}

#[test]
fn files_are_private_and_hold_no_secret_in_plaintext() {
    let env = env();
    let first = env.create("google", SECRET);
    first.success();
    assert!(first.stderr.contains("created a new identity in"), "{}", first.stderr);
    env.import_token(
        "google",
        r#"{"access_token":"AT-plaintext-marker","refresh_token":"RT-plaintext-marker","id_token":"ID-plaintext-marker","expires_in":3600}"#,
    )
    .success();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.store()), 0o600);
    assert_eq!(mode(env.store().parent().unwrap()), 0o700);
    assert_eq!(mode(&env.identity()), 0o600);
    assert_eq!(mode(env.identity().parent().unwrap()), 0o700);
    let bytes = std::fs::read(env.store()).unwrap();
    for needle in [SECRET, "AT-plaintext-marker", "RT-plaintext-marker", "ID-plaintext-marker"] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} found in the store file");
    }
}

#[test]
fn import_token_shapes_and_errors() {
    let env = env();
    env.create("qb", SECRET).success();
    env.import_token(
        "qb",
        r#"{"access_token":"a","refresh_token":"r","token_type":"bearer","expires_at":"2099-01-02T03:04:05Z",
            "scope":"com.intuit.quickbooks.accounting openid","realmId":"4620816365","x_refresh_token_expires_in":8726400}"#,
    )
    .success();
    let row = &list(&env)[0];
    assert_eq!(row["status"], "authorized");
    assert_eq!(row["expires_at"], "2099-01-02T03:04:05Z");
    assert_eq!(row["scopes"], serde_json::json!(["com.intuit.quickbooks.accounting", "openid"]));
    assert_eq!(row["has_refresh_token"], true);
    assert_eq!(row["metadata"]["realmId"], "4620816365");
    let cases = [
        ("not json", "stdin is not a token JSON object"),
        (r#"{"refresh_token":"r"}"#, "missing field `access_token`"),
        (r#"{"access_token":""}"#, "access_token is empty"),
        (r#"{"access_token":"a","expires_in":-5}"#, "expires_in is negative"),
        (r#"{"access_token":"a","expires_in":"soon"}"#, "expires_in `soon` is not a number"),
        (r#"{"access_token":"a","expires_in":5,"expires_at":5}"#, "not both"),
        (r#"{"access_token":"a","expires_at":"tomorrow"}"#, "neither RFC 3339 nor Unix seconds"),
        (r#"{"access_token":"a","token_type":"Bearer x"}"#, "token_type must be a single word"),
    ];
    for (json, message) in cases {
        env.import_token("qb", json).failure(2, message);
    }
    // A refused import left the earlier tokens as they were.
    assert_eq!(list(&env)[0]["expires_at"], "2099-01-02T03:04:05Z");
    env.import_token("nope", r#"{"access_token":"a"}"#).failure(3, "no connection named `nope`");
    // expires_in as a numeric string, as some providers send it.
    env.import_token("qb", r#"{"access_token":"a","expires_in":"3600"}"#).success();
    assert_eq!(list(&env)[0]["has_refresh_token"], false);
}

#[test]
fn a_wrong_identity_is_refused_before_anything_changes() {
    let env = env();
    env.create("google", SECRET).success();
    let other = env.path("other-identity.txt");
    wasm_host_store::Keys::create(&other).unwrap();
    let mut cmd = env.cmd();
    cmd.env("WASM_HOST_IDENTITY", &other);
    env.run_with(cmd, &["authconnection", "import-token", "google"], Some(r#"{"access_token":"a"}"#))
        .failure(5, "holds secrets encrypted to age1");
    assert_eq!(list(&env)[0]["status"], "created");
    // A missing identity file is not silently replaced once the store holds secrets.
    std::fs::rename(env.identity(), env.path("moved.txt")).unwrap();
    env.import_token("google", r#"{"access_token":"a"}"#).failure(5, "does not exist, but the store");
    assert!(!env.identity().exists());
    // An identity others can read is refused, as ssh refuses such keys.
    std::fs::rename(env.path("moved.txt"), env.identity()).unwrap();
    let chmod = format!("run `chmod 600 {}` and try again", env.identity().display());
    for open in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(env.identity(), std::fs::Permissions::from_mode(open)).unwrap();
        env.import_token("google", r#"{"access_token":"a"}"#).failure(5, &chmod);
        env.run(&["store", "rekey"]).failure(5, &chmod);
    }
    std::fs::set_permissions(env.identity(), std::fs::Permissions::from_mode(0o600)).unwrap();
    // The key given inline, as containers do.
    let text = std::fs::read_to_string(env.identity()).unwrap();
    let key = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")).unwrap();
    let mut cmd = env.cmd();
    cmd.env("WASM_HOST_IDENTITY_KEY", key).env("XDG_CONFIG_HOME", env.path("elsewhere"));
    env.run_with(cmd, &["authconnection", "import-token", "google"], Some(r#"{"access_token":"a"}"#)).success();
    assert_eq!(list(&env)[0]["status"], "authorized");
}

#[test]
fn damaged_locked_and_foreign_store_files_are_reported() {
    let env = env();
    let junk = env.path("junk.redb");
    std::fs::write(&junk, b"this is not a database at all, but it is long enough to have a header").unwrap();
    env.run(&["--store", junk.to_str().unwrap(), "authconnection", "list"]).failure(5, "is not a wasm-host store");
    env.create("google", SECRET).success();
    // Another program holding the file in redb's exclusive mode.
    let held = redb::Database::create(env.store()).unwrap();
    env.run(&["authconnection", "list"]).failure(5, "held by another program");
    drop(held);
    env.run(&["authconnection", "list"]).success();
    // A path that cannot be created (its "directory" is a file): named, with what to do.
    env.run(&["--store", "/dev/null/store.redb", "authconnection", "list"])
        .failure(5, "cannot open the store /dev/null/store.redb: Not a directory");
    // A directory where the store file should be.
    let dir = env.path("a-directory.redb");
    std::fs::create_dir(&dir).unwrap();
    env.run(&["--store", dir.to_str().unwrap(), "authconnection", "list"]).failure(5, "cannot open the store");
}


#[test]
fn a_secret_row_moved_to_another_connection_fails_loudly() {
    let env = env();
    env.create("alpha", SECRET).success();
    env.create("beta", "beta-secret").success();
    wasm_host_tests::copy_secret(&env.store(), "alpha", "beta", "client_secret");
    let keys = wasm_host_store::Keys::load(&env.identity()).unwrap().unwrap();
    let store = Store::open(&env.store()).unwrap();
    let err = store.secret("beta", wasm_host_store::SecretField::ClientSecret, &keys).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("belongs to another record"), "{msg}");
    assert!(!msg.contains(SECRET));
}

#[test]
fn two_processes_writing_at_once_both_succeed() {
    let env = env();
    env.create("seed", SECRET).success(); // the identity exists before the race
    let create_many = |prefix: &str| -> Vec<wasm_host_tests::Run> {
        (0..8)
            .map(|i| {
                let name = format!("{prefix}-{i}");
                env.run(&["authconnection", "create", "--name", &name, "--type", "TYPE_OAUTH2",
                          "--provider-url", "https://p.example", "--client-id", "c", "--client-secret", "s"])
            })
            .collect()
    };
    let (left, right) = std::thread::scope(|s| {
        let left = s.spawn(|| create_many("left"));
        let right = s.spawn(|| create_many("right"));
        (left.join().unwrap(), right.join().unwrap())
    });
    for run in left.iter().chain(&right) {
        run.success();
    }
    let names: Vec<String> =
        list(&env).as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names.len(), 17, "{names:?}");
    assert!(Store::check_integrity(&env.store()).unwrap());
}

#[test]
fn help_has_examples_and_exit_codes() {
    let env = env();
    let top = env.run(&["--help"]);
    top.success();
    assert!(top.stdout.contains("Exit codes:"), "{}", top.stdout);
    for verb in ["authconnection create", "authconnection list", "authconnection delete", "authconnection import-token",
                 "store recipient", "store rekey", "store export", "store import"] {
        let mut args: Vec<&str> = verb.split(' ').collect();
        args.push("--help");
        let out = env.run(&args);
        out.success();
        assert!(out.stdout.contains("Example:"), "{verb}: {}", out.stdout);
    }
    assert!(top.stdout.contains("20  store import: the bundle cannot be used"), "{}", top.stdout);
    assert!(env.run(&["run", "--help"]).stdout.contains("Example:"));
}

/// Issue 13: `create --provider` fills a connection from the catalog; placeholders are filled or asked for; an
/// unknown provider, a missing placeholder and one the provider does not use are usage errors (exit 2) that
/// change nothing. `providers --json` lists the catalog.
#[test]
fn create_from_the_provider_catalog() {
    let env = env();
    let create = |name: &str, extra: &[&str]| {
        let mut args = vec!["authconnection", "create", "--name", name, "--type", "TYPE_OAUTH2", "--client-id", "client-1", "--client-secret-stdin"];
        args.extend_from_slice(extra);
        env.run_stdin(&args, SECRET)
    };
    let providers = env.run(&["authconnection", "providers", "--json"]).success().json();
    assert!(providers.as_array().unwrap().len() >= 30, "{providers}");
    create("kc", &["--provider", "keycloak", "--domain", "sso.example.com"]).failure(2, "provider `keycloak` needs --realm");
    create("kc", &["--provider", "nope"]).failure(2, "no provider `nope` in the catalog");
    create("kc", &["--provider", "slack", "--tenant", "x"]).failure(2, "--tenant is not used by provider `slack`");
    create("kc", &["--tenant", "x", "--provider-url", "https://p.example"]).failure(2, "--provider");
    assert_eq!(list(&env), serde_json::json!([]), "a refused create changes nothing");

    create("kc", &["--provider", "keycloak", "--domain", "sso.example.com", "--realm", "staff", "--json"]).success();
    let kc = env.run(&["authconnection", "show", "kc", "--json"]).success().json();
    assert_eq!(kc["provider_url"], "https://sso.example.com/realms/staff", "{kc}");
    assert_eq!(kc["issuer_url"], "https://sso.example.com/realms/staff", "{kc}");
    // An explicit flag overrides the entry.
    create("sl", &["--provider", "slack", "--token-url", "https://proxy.example/token"]).success();
    let sl = env.run(&["authconnection", "show", "sl", "--json"]).success().json();
    assert_eq!(sl["endpoints"]["token_url"], "https://proxy.example/token", "{sl}");
    assert_eq!(sl["endpoints"]["auth_url"], "https://slack.com/oauth/v2/authorize", "{sl}");
}
