//! Hardening, second round (issue 17): each test plays what an attacker tried against the real binary, with real
//! guests, a real store file and local servers, and checks that the hole is closed.
//!
//! - grants come from the operator, and are printed with where they came from (§1);
//! - a function cannot make the host refresh again and again through a `--bind` that answers 401 (§2);
//! - what the store file says is authenticated: a changed record, a planted or replayed row is refused (§3);
//! - the compile cache runs only its own entries, from a directory only its user can write (§4);
//! - no child process inherits a secret-bearing variable (§5);
//! - a bound credential is never reflected back to the function (§6).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use wasm_host_store::redb::{self, ReadableTable};
use wasm_host_tests::api::Api;
use wasm_host_tests::provider::{Provider, ProviderConfig};
use wasm_host_tests::{test_guest, Env, Run};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");

fn token_probe(env: &Env, name: &str) -> Run {
    let probe = test_guest("token-probe");
    let input = serde_json::json!({ "connection": name }).to_string();
    env.run(&["run", probe.to_str().unwrap(), "--allow-connection", name, "--input", &input])
}

/// Opens the store file with redb itself, as anyone who can write the file can.
fn with_store(path: &Path, change: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::builder().set_concurrency_mode(redb::ConcurrencyMode::MultiWriter).create(path).unwrap();
    let txn = db.begin_write().unwrap();
    change(&txn);
    txn.commit().unwrap();
}

fn read_row<K: redb::Key + 'static>(
    path: &Path,
    table: redb::TableDefinition<K, &'static [u8]>,
    key: K::SelfType<'_>,
) -> Vec<u8> {
    let mut out = None;
    with_store(path, |txn| {
        let t = txn.open_table(table).unwrap();
        out = Some(t.get(key).unwrap().expect("the row exists").value().to_vec());
    });
    out.unwrap()
}

const TAMPERED: &str = "was changed by someone without the store's identity";

#[test]
fn a_store_changed_without_the_identity_is_refused_and_nothing_is_sent() {
    let env = Env::new(BIN);
    for name in ["good", "redirected", "planted", "replayed"] {
        env.connection_with_token(name, &format!("at-{name}-0123456789abcdef"));
    }
    let store = env.store();

    // The record points the token endpoint elsewhere, same length, no identity needed.
    let record = read_row(&store, wasm_host_store::CONNECTIONS, "redirected");
    let changed = String::from_utf8(record).unwrap().replace("http://127.0.0.1:9/", "http://127.0.0.1:8/");
    with_store(&store, |txn| {
        txn.open_table(wasm_host_store::CONNECTIONS).unwrap().insert("redirected", changed.as_bytes()).unwrap();
    });

    // A token sealed to the store's public key with age's own X25519 stanza, as the age tool would.
    let recipient = env.run(&["store", "recipient"]).success().stdout.trim().to_owned();
    let recipient: wasm_host_tests::age::x25519::Recipient = recipient.parse().unwrap();
    let planted = wasm_host_tests::age::encrypt(&recipient, b"wasm-host-secret/1\nplanted\naccess_token\nat-planted-by-the-attacker").unwrap();
    with_store(&store, |txn| {
        let mut secrets = txn.open_table(wasm_host_store::SECRETS).unwrap();
        secrets.insert(("planted", "access_token"), planted.as_slice()).unwrap();
    });

    // An old, properly tagged state of a connection written back over a newer one.
    let old_record = read_row(&store, wasm_host_store::CONNECTIONS, "replayed");
    let old_tag = read_row(&store, wasm_host_store::TAGS, "replayed");
    let old_secret = read_row(&store, wasm_host_store::SECRETS, ("replayed", "access_token"));
    env.import_token("replayed", r#"{"access_token":"at-replayed-newer-0123456789","expires_in":3600}"#).success();
    with_store(&store, |txn| {
        txn.open_table(wasm_host_store::CONNECTIONS).unwrap().insert("replayed", old_record.as_slice()).unwrap();
        txn.open_table(wasm_host_store::TAGS).unwrap().insert("replayed", old_tag.as_slice()).unwrap();
        txn.open_table(wasm_host_store::SECRETS)
            .unwrap()
            .insert(("replayed", "access_token"), old_secret.as_slice())
            .unwrap();
    });

    for name in ["redirected", "planted", "replayed"] {
        let run = token_probe(&env, name);
        run.failure(5, TAMPERED);
        assert!(run.stderr.contains(&format!("connection `{name}`")), "{}", run.stderr);
        assert!(!run.stdout.contains("at-"), "no token reached the function: {}", run.stdout);
        env.run(&["authconnection", "revoke", name]).failure(5, TAMPERED);
        env.run(&["authconnection", "authorize", name, "--no-browser", "--port", "0", "--timeout", "1s"])
            .failure(5, TAMPERED);
    }
    env.run(&["store", "export", "--recipient", &recipient.to_string(), "-o", env.path("b.age").to_str().unwrap()])
        .failure(5, TAMPERED);
    // What nobody touched still works, and list still shows everything (it needs no identity).
    assert_eq!(token_probe(&env, "good").success().json()["access_token"], "at-good-0123456789abcdef");
    assert_eq!(env.run(&["authconnection", "list", "--json"]).success().json().as_array().unwrap().len(), 4);
}

#[test]
fn a_store_written_before_records_were_tagged_is_refused_until_the_operator_upgrades_it() {
    let env = Env::new(BIN);
    env.connection_with_token("old", "at-legacy-0123456789abcdef");
    // Back to what schema 1 looked like: no tags table, version 1.
    let downgrade = || {
        with_store(&env.store(), |txn| {
            txn.delete_table(wasm_host_store::TAGS).unwrap();
            txn.open_table(wasm_host_store::META).unwrap().insert("schema_version", "1").unwrap();
        })
    };
    downgrade();
    // Nothing vouches for the untagged record on its own: not a function's run, not a command.
    let refused = token_probe(&env, "old");
    refused.failure(5, "wasm-host store upgrade");
    assert!(refused.stderr.contains("1 connection(s) are not authenticated"), "{}", refused.stderr);
    env.run(&["store", "recipient"]).failure(5, "not authenticated yet");
    // The operator's explicit upgrade lists what it vouches for, then everything works.
    let upgraded = env.run(&["store", "upgrade"]);
    upgraded.success();
    assert!(upgraded.stdout.contains("1 connection(s) are now authenticated"), "{}", upgraded.stdout);
    assert!(upgraded.stdout.contains("  old: provider "), "{}", upgraded.stdout);
    assert_eq!(token_probe(&env, "old").success().json()["access_token"], "at-legacy-0123456789abcdef");
    assert!(env.run(&["store", "upgrade"]).success().stdout.contains("nothing to upgrade"));
    // A writer without the identity who strips the tags again gets a refusal, not a silent re-tagging.
    downgrade();
    token_probe(&env, "old").failure(5, "may have rewritten the store");
}

#[test]
fn the_compile_cache_runs_only_its_own_entries_from_a_private_directory() {
    let env = Env::new(BIN);
    let cache = env.path("private-cache");
    let run = |component: &str, input: &str, cache: &Path| {
        let mut cmd = env.cmd();
        cmd.env("WASM_HOST_CACHE_DIR", cache).env("WASM_HOST_LOG", "warn");
        env.run_with(cmd, &["run", test_guest(component).to_str().unwrap(), "--input", input], None)
    };
    assert_eq!(run("trivial", "\"mine\"", &cache).success().stdout.trim(), "\"mine\"");
    let entries = |dir: &Path| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .collect();
        v.sort();
        v
    };
    let mine = entries(&cache);
    assert_eq!(mine.len(), 1);
    assert_eq!(std::fs::metadata(cache.join("key")).unwrap().permissions().mode() & 0o777, 0o600);
    run("http-probe", "{\"url\":\"http://127.0.0.1:9/\"}", &cache);
    let other = entries(&cache).into_iter().find(|p| *p != mine[0]).expect("the other component's entry");
    // Another component's entry copied under this one's name is compiled again, never run.
    std::fs::copy(&other, &mine[0]).unwrap();
    let swapped = run("trivial", "\"mine\"", &cache);
    assert_eq!(swapped.success().stdout.trim(), "\"mine\"");
    assert!(swapped.stderr.contains("damaged compile cache entry"), "{}", swapped.stderr);
    // So is an entry made with another cache's key (an attacker's own cache).
    let theirs = env.path("their-cache");
    run("http-probe", "{\"url\":\"http://127.0.0.1:9/\"}", &theirs);
    std::fs::copy(&entries(&theirs)[0], &mine[0]).unwrap();
    let forged = run("trivial", "\"mine\"", &cache);
    assert_eq!(forged.success().stdout.trim(), "\"mine\"");
    assert!(forged.stderr.contains("damaged compile cache entry"), "{}", forged.stderr);

    // Directories others can write are refused: the cache, the store's, the identity's.
    for mode in [0o777, 0o1777, 0o775] {
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(mode)).unwrap();
        run("trivial", "1", &cache).failure(5, "can be written by other users");
    }
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    let store_dir = env.store().parent().unwrap().to_path_buf();
    std::fs::set_permissions(&store_dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    env.run(&["authconnection", "list"]).failure(5, "can be written by other users");
    std::fs::set_permissions(&store_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let identity_dir = env.identity().parent().unwrap().to_path_buf();
    std::fs::set_permissions(&identity_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    env.run(&["store", "recipient"]).failure(5, "can be written by other users");
    std::fs::set_permissions(&identity_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    env.run(&["store", "recipient"]).success();
}

#[test]
fn no_child_process_inherits_a_secret_variable() {
    let provider = Provider::start(ProviderConfig::default());
    let env = Env::new(BIN);
    env.create_for("c", &provider).success();
    let key_line = std::fs::read_to_string(env.identity()).unwrap();
    let key = key_line.lines().find(|l| l.starts_with("AGE-SECRET-KEY-1")).unwrap().to_owned();
    const MARKER: &str = "client-secret-in-the-environment-7f3a";
    let dump = env.path("browser-env.txt");
    let browser = env.path("browser.sh");
    std::fs::write(&browser, "#!/bin/sh\nenv > \"$ENV_DUMP.tmp\" && mv \"$ENV_DUMP.tmp\" \"$ENV_DUMP\"\n").unwrap();
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut cmd = env.cmd();
    cmd.env("BROWSER", &browser)
        .env("ENV_DUMP", &dump)
        .env("WASM_HOST_IDENTITY_KEY", &key)
        .env("WASM_HOST_CLIENT_SECRET", MARKER);
    // The browser is started and never comes back: the wait ends at the timeout.
    env.run_with(cmd, &["authconnection", "authorize", "c", "--port", "0", "--timeout", "2s"], None)
        .failure(13, "no authorization callback");
    let seen = std::fs::read_to_string(&dump).expect("the browser ran");
    assert!(seen.contains("ENV_DUMP="), "the dump is the browser's environment");
    for secret in ["WASM_HOST_IDENTITY_KEY", "WASM_HOST_CLIENT_SECRET", key.as_str(), MARKER] {
        assert!(!seen.contains(secret), "the browser inherited {secret}");
    }

    // build-js: node (wrapped, so its environment is recorded before the real one runs) sees none either.
    let bin_dir = env.path("node-wrapper");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let real_node = which("node");
    let node_dump = env.path("node-env.txt");
    std::fs::write(bin_dir.join("node"), format!("#!/bin/sh\nenv >> \"$ENV_DUMP\"\nexec {} \"$@\"\n", real_node.display()))
        .unwrap();
    std::fs::set_permissions(bin_dir.join("node"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let source = env.path("broken.js");
    std::fs::write(&source, "export default async (input) => {\n  return input +;\n};\n").unwrap();
    let mut cmd = env.cmd();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    cmd.env("PATH", path)
        .env("ENV_DUMP", &node_dump)
        .env("WASM_HOST_IDENTITY_KEY", &key)
        .env("WASM_HOST_CLIENT_SECRET", MARKER);
    let out = env.path("broken.wasm");
    env.run_with(cmd, &["build-js", source.to_str().unwrap(), "-o", out.to_str().unwrap()], None)
        .failure(18, "syntax error");
    let seen = std::fs::read_to_string(&node_dump).expect("node ran");
    assert!(seen.matches("ENV_DUMP=").count() >= 2, "node --version and node --check both ran: {}", seen.len());
    for secret in ["WASM_HOST_IDENTITY_KEY", "WASM_HOST_CLIENT_SECRET", key.as_str(), MARKER] {
        assert!(!seen.contains(secret), "node inherited {secret}");
    }
}

fn which(program: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH (scripts/test.sh installs it)"))
}

#[test]
fn grants_come_from_the_operator_and_are_printed_with_their_source() {
    let env = Env::new(BIN);
    env.connection_with_token("api", "at-grants-0123456789abcdef");
    let allowed = Api::start("unused", r#"{"allowed":true}"#);
    let bound = Api::start("at-grants-0123456789abcdef", r#"{"bound":true}"#);
    let dir = env.path("shipped");
    std::fs::create_dir_all(&dir).unwrap();
    let component = dir.join("report.wasm");
    std::fs::copy(test_guest("http-probe"), &component).unwrap();
    let manifest = dir.join("report.toml");
    std::fs::write(&manifest, format!("[grants]\nbind = [\"api=http://127.0.0.1:{}\"]\n", bound.port)).unwrap();
    let c = component.to_str().unwrap();
    let input = serde_json::json!({ "url": bound.url("/me") }).to_string();

    // The attack: the operator allows one host; the file shipped beside the component binds another.
    let run = env.run(&["run", c, "--allow-host", &format!("127.0.0.1:{}", allowed.port), "--input", &input]);
    run.failure(1, "HttpRequestDenied");
    assert!(bound.recorded().is_empty(), "nothing reached the origin the shipped file bound");
    assert!(
        run.stderr.contains(&format!("grants of `report` (from the command line): connections: none; hosts: 127.0.0.1:{}; bind: none", allowed.port)),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("report.toml are ignored"), "{}", run.stderr);

    // Without flags, a shipped file's grants are refused until the operator names it.
    env.run(&["run", c, "--input", &input]).failure(2, "--manifest");
    assert!(bound.recorded().is_empty());

    // Named with --manifest, its grants apply, and the run says where they came from.
    let run = env.run(&["run", c, "--manifest", manifest.to_str().unwrap(), "--input", &input]);
    assert_eq!(run.success().json()["status"], 200);
    assert!(run.stderr.contains(&format!("from --manifest {}", manifest.display())), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("bind: api=http://127.0.0.1:{}", bound.port)), "{}", run.stderr);
    assert_eq!(bound.recorded()[0].authorization.as_deref(), Some("Bearer at-grants-0123456789abcdef"));
}

#[test]
fn a_bound_credential_is_never_reflected_to_the_function() {
    const TOKEN: &str = "at-reflect-0123456789abcdef";
    let env = Env::new(BIN);
    env.connection_with_token("api", TOKEN);
    let api = Api::start(TOKEN, "{}");
    let probe = test_guest("http-probe");
    let bind = format!("api=http://127.0.0.1:{}", api.port);
    let send = |method: &str| {
        let input = serde_json::json!({ "url": api.url("/echo"), "method": method }).to_string();
        env.run(&["run", probe.to_str().unwrap(), "--bind", &bind, "--input", &input])
    };
    // TRACE answers with the request itself: refused before it leaves the host.
    let trace = send("TRACE");
    trace.failure(1, "TRACE requests to");
    assert!(api.recorded().is_empty(), "the TRACE never left the host");

    // An endpoint that echoes the Authorization header in a header and twice in its body.
    for method in ["GET", "POST"] {
        let run = send(method);
        let out = run.success().json();
        assert_eq!(out["status"], 200, "{out}");
        let text = out.to_string();
        assert!(!text.contains(TOKEN), "the function read the token: {text}");
        assert_eq!(out["headers"]["content-type"], "application/json", "the probe reports headers: {out}");
        assert!(out["headers"].get("x-echo-authorization").is_none(), "{out}");
        assert_eq!(out["body"].as_str().unwrap().matches(&"*".repeat(TOKEN.len())).count(), 2, "{out}");
        assert!(!run.stderr.contains(TOKEN));
    }
    let seen = api.recorded();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}") as &str)), "the API got the token");
}

#[test]
fn a_bound_origin_that_answers_401_cannot_make_the_host_refresh_again_and_again() {
    let provider = Provider::start(ProviderConfig { rotate: true, ..Default::default() });
    let env = Env::new(BIN);
    env.create_for("oidc", &provider).success();
    env.authorize("oidc", &[], true).0.success();
    let api = Api::start("never-accepted", "{}");
    let probe = test_guest("http-probe");
    let bind = format!("oidc=http://127.0.0.1:{}", api.port);
    let input = serde_json::json!({ "url": api.url("/always-401"), "repeat": 20 }).to_string();
    let before = provider.refreshes();
    // Three invocations in one process, twenty 401s each.
    let run = env.run(&["run", probe.to_str().unwrap(), "--bind", &bind, "--repeat", "3", "--input", &input]);
    assert_eq!(run.success().json()["status"], 401);
    assert_eq!(provider.refreshes() - before, 1, "one refresh for sixty 401s");
    // Each invocation retried once at most: 20 requests + 1 retry for the first, 20 for the others.
    assert_eq!(api.recorded().len(), 61, "{}", run.stderr);
    // The connection is still usable: the token the refresh stored works at the provider.
    assert_eq!(token_probe(&env, "oidc").success().json()["error"], serde_json::Value::Null);
}

#[test]
fn function_output_is_bounded_and_never_holds_the_host_past_its_timeout() {
    let env = Env::new(BIN);
    let guest = test_guest("misbehave");
    let g = guest.to_str().unwrap();
    // Read as usual: at most --max-log bytes of it, then one notice; the function goes on until its timeout.
    let run = env.run(&["run", g, "--input", "\"flood\"", "--timeout", "1s", "--max-log", "64KiB"]);
    run.failure(14, "time limit of 1s");
    let tail = &run.stderr[run.stderr.len().saturating_sub(600)..];
    assert!(tail.contains("dropped function output") && tail.contains("max_log=65536"), "{tail}");
    assert!(run.stderr.matches("the rest of its output is dropped").count() <= 1, "one notice at most");
    assert!(run.stderr.len() < (64 << 10) + 4096, "{} bytes of stderr", run.stderr.len());

    // The host's stderr a pipe nobody reads: the run still ends at its timeout, with its own exit code.
    let mut cmd = env.cmd();
    cmd.args(["run", g, "--input", "\"flood\"", "--timeout", "2s"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let unread = child.stderr.take().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let Some(status) = status else {
        child.kill().unwrap();
        panic!("the host was still blocked on its stderr 60 s after a 2 s timeout");
    };
    assert_eq!(status.code(), Some(14));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::BufReader::new(unread), &mut text).unwrap();
    assert!(text.contains("time limit of 2s"), "the host's own message still fits: {}", &text[text.len().saturating_sub(300)..]);
}

#[test]
fn header_maps_a_function_makes_the_host_hold_are_bounded() {
    let env = Env::new(BIN);
    let guest = test_guest("misbehave");
    // The issue's probe: header maps of 100 KB each, kept, without end. A map holds at most 64 KiB: the first
    // such append ends the invocation (wasmtime-wasi-http traps it); it cannot fill the host with them.
    let g = guest.to_str().unwrap();
    let run = env.run(&["run", g, "--input", r#"{"header_maps":100000}"#, "--max-memory", "32MiB"]);
    run.failure(9, "total size of fields exceeds limit");
    // Maps small enough to keep: the invocation's resource table (4,096 entries) ends it, not the host's memory.
    let run = env.run(&["run", g, "--input", r#"{"header_maps":1000}"#, "--max-memory", "32MiB"]);
    run.failure(9, "resource table has no free keys");
    // The host serves the next invocation.
    assert_eq!(env.run(&["run", g, "--input", "\"ok\""]).success().stdout.trim(), "\"ok\"");
}

#[test]
fn outgoing_requests_open_at_once_are_bounded_per_invocation() {
    use wasm_host_tests::api::Rendezvous;
    let env = Env::new(BIN);
    // Answers only once 64 requests are open together (or after 10 s): what reaches it was open at once.
    let api = Api::start_with("unused", "{}", Some(Rendezvous::new(64)));
    let guest = test_guest("misbehave");
    let input = serde_json::json!({ "concurrent": api.url("/slow"), "n": 200 }).to_string();
    let run = env.run(&["run", guest.to_str().unwrap(), "--allow-host", "127.0.0.1", "--input", &input]);
    let out = run.success().json();
    let answered = out["answered"].as_u64().unwrap();
    assert!(answered >= 64 && out["failed"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(answered + out["failed"].as_u64().unwrap(), 200);
    assert!(out["first_error"].as_str().unwrap().contains("64 outgoing requests open"), "{out}");
    assert_eq!(api.recorded().len() as u64, answered, "every refused request stayed in the host");
}
