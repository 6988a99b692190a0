//! `wasm-host run` through the real binary with real components: the userinfo example against a local API,
//! the authconnection error cases, grants, component errors and the compile cache.

use wasm_host_tests::{api::Api, example, test_guest, Env};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");
const TOKEN: &str = "at-3f9c1e77-userinfo";
const USERINFO: &str = r#"{"sub":"248289761001","email":"jane@example.com","name":"Jane Doe"}"#;

fn env_with_connection(name: &str) -> Env {
    let env = Env::new(BIN);
    env.create(name, "client-secret-value").success();
    env
}

fn probe(env: &Env, connection: &str, allow: &[&str]) -> serde_json::Value {
    let guest = test_guest("token-probe");
    let input = serde_json::json!({ "connection": connection }).to_string();
    let mut args = vec!["run", guest.to_str().unwrap(), "--input", &input];
    for a in allow {
        args.extend(["--allow-connection", a]);
    }
    env.run(&args).success().json()
}

#[test]
fn userinfo_calls_the_api_with_the_stored_token() {
    let env = env_with_connection("google");
    env.import_token("google", &format!(r#"{{"access_token":"{TOKEN}","expires_in":3600,"scope":"openid email"}}"#))
        .success();
    let api = Api::start(TOKEN, USERINFO);
    let input = serde_json::json!({ "connection": "google", "url": api.url("/v1/userinfo") }).to_string();
    let guest = example("userinfo");
    let out = env.run(&["run", guest.to_str().unwrap(), "--input", &input, "--allow-connection", "google", "--allow-host", "127.0.0.1"]);
    out.success();
    assert_eq!(out.json(), serde_json::from_str::<serde_json::Value>(USERINFO).unwrap());
    let recorded = api.recorded();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].path, "/v1/userinfo");
    assert_eq!(recorded[0].authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    // The token never reaches the host's own output.
    assert!(!out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN));

    // A token the API refuses: the function reports it (get-connection-token-after-rejection); these imported
    // tokens have no refresh token, so the host answers needs-authorization, the function's Err, exit 1.
    env.import_token("google", r#"{"access_token":"stale","expires_in":3600}"#).success();
    env.run(&["run", guest.to_str().unwrap(), "--input", &input, "--allow-connection", "google", "--allow-host", "127.0.0.1"])
        .failure(1, "needs-authorization: the access token of `google` has expired or was refused");
    assert_eq!(api.recorded().iter().filter(|r| r.authorization.as_deref() == Some("Bearer stale")).count(), 1, "sent once, not retried");
}

#[test]
fn the_function_sees_the_token_record_and_nothing_it_was_not_given() {
    let env = env_with_connection("qb");
    env.import_token(
        "qb",
        r#"{"access_token":"at-1","refresh_token":"rt-1","expires_at":"2099-05-06T07:08:09Z","scope":"a b","realmId":"123"}"#,
    )
    .success();
    let t = probe(&env, "qb", &["qb"]);
    assert_eq!(t["access_token"], "at-1");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_at"], "2099-05-06T07:08:09Z");
    assert_eq!(t["refresh_token"], serde_json::Value::Null, "the refresh token was not exposed");
    assert_eq!(t["scopes"], serde_json::json!(["a", "b"]));
    assert_eq!(t["metadata"]["realmId"], "123");

    // --expose-refresh-token hands it over.
    env.run_stdin(
        &["authconnection", "create", "--name", "exposed", "--type", "TYPE_OAUTH2", "--provider-url",
          "https://p.example", "--client-id", "c", "--client-secret-stdin", "--expose-refresh-token"],
        "s",
    )
    .success();
    env.import_token("exposed", r#"{"access_token":"at-2","refresh_token":"rt-2"}"#).success();
    let t = probe(&env, "exposed", &["*"]);
    assert_eq!(t["refresh_token"], "rt-2");
    assert_eq!(t["expires_at"], serde_json::Value::Null, "no expiry given: none reported");
}

#[test]
fn error_cases_reach_the_function_as_values() {
    let env = env_with_connection("granted");
    // Not granted: access-denied, whether or not the connection exists.
    let t = probe(&env, "granted", &[]);
    assert_eq!(t["error"], "access-denied");
    assert!(t["message"].as_str().unwrap().contains("--allow-connection granted"), "{t}");
    assert_eq!(probe(&env, "missing", &["granted"])["error"], "access-denied");
    // Granted but absent: not-found.
    assert_eq!(probe(&env, "missing", &["*"])["error"], "not-found");
    // Created but never authorized.
    let t = probe(&env, "granted", &["granted"]);
    assert_eq!(t["error"], "needs-authorization");
    assert!(t["message"].as_str().unwrap().contains("wasm-host authconnection authorize granted"), "{t}");
    // Expired, and this host cannot refresh it yet.
    env.import_token("granted", r#"{"access_token":"old","expires_at":1000}"#).success();
    assert_eq!(probe(&env, "granted", &["granted"])["error"], "needs-authorization");
    // A name no connection could have, from a hostile guest: still a value, not a trap.
    let long = "x".repeat(100_000);
    assert_eq!(probe(&env, &long, &["*"])["error"], "not-found");
    assert_eq!(probe(&env, "bad\u{1b}name", &["*"])["error"], "not-found");
}

#[test]
fn a_secret_moved_to_another_row_is_an_internal_error_not_a_token() {
    let env = env_with_connection("alpha");
    env.create("beta", "s2").success();
    env.import_token("alpha", r#"{"access_token":"alpha-token"}"#).success();
    env.import_token("beta", r#"{"access_token":"beta-token"}"#).success();
    wasm_host_tests::copy_secret(&env.store(), "alpha", "beta", "access_token");
    let t = probe(&env, "beta", &["*"]);
    assert_eq!(t["error"], "internal", "{t}");
    assert!(t["message"].as_str().unwrap().contains("belongs to another record"), "{t}");
    assert!(!t.to_string().contains("alpha-token"));
    assert_eq!(probe(&env, "alpha", &["*"])["access_token"], "alpha-token");
}

#[test]
fn a_change_by_another_process_is_seen_by_the_next_call() {
    // One process per run, so this checks the store round trip; the in-process cache is covered by the
    // runtime's own test.
    let env = env_with_connection("c");
    env.import_token("c", r#"{"access_token":"first"}"#).success();
    assert_eq!(probe(&env, "c", &["c"])["access_token"], "first");
    env.import_token("c", r#"{"access_token":"second"}"#).success();
    assert_eq!(probe(&env, "c", &["c"])["access_token"], "second");
    env.run(&["authconnection", "delete", "c"]).success();
    assert_eq!(probe(&env, "c", &["c"])["error"], "not-found");
}

#[test]
fn component_problems_have_distinct_exit_codes() {
    let env = Env::new(BIN);
    env.run(&["run", "/nonexistent/f.wasm"]).failure(6, "cannot read the component /nonexistent/f.wasm");
    let text = env.path("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    env.run(&["run", text.to_str().unwrap()]).failure(7, "is not a WebAssembly file");
    let core = env.path("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    env.run(&["run", core.to_str().unwrap()]).failure(7, "core WebAssembly module, not a component");
    let broken = env.path("broken.wasm");
    std::fs::write(&broken, b"\0asm\x0d\0\x01\0\x07\xff").unwrap();
    env.run(&["run", broken.to_str().unwrap()]).failure(7, "is not a valid component");
    let empty = env.path("empty.wasm");
    std::fs::write(&empty, b"\0asm\x0d\0\x01\0").unwrap();
    env.run(&["run", empty.to_str().unwrap()]).failure(8, "it does not export `run` (it exports nothing)");
    let foreign = test_guest("foreign-import");
    env.run(&["run", foreign.to_str().unwrap()]).failure(8, "test:foreign/thing");

    let misbehave = test_guest("misbehave");
    let m = misbehave.to_str().unwrap();
    env.run(&["run", m, "--input", "\"panic\""]).failure(9, "the function trapped");
    env.run(&["run", m, "--input", "\"exit\""]).failure(9, "exited early with status 1");
    env.run(&["run", m, "--input", "\"err\""]).failure(1, "function error: asked to fail");
    env.run(&["run", m, "--input", "{not json"]).failure(2, "the input is not JSON");
    env.run(&["run", m, "--allow-connection", "Bad"]).failure(2, "uppercase letter");
    // No input: the function gets `null`. --input-file reads a file.
    assert_eq!(env.run(&["run", m]).success().stdout, "null\n");
    let input = env.path("in.json");
    std::fs::write(&input, r#"{"k": [1, 2]}"#).unwrap();
    assert_eq!(env.run(&["run", m, "--input-file", input.to_str().unwrap()]).success().stdout, "{\"k\": [1, 2]}\n");
    // The function's own prints go to stderr; stdout has only the result.
    let out = env.run(&["run", m, "--input", "\"log\""]);
    assert_eq!(out.success().stdout, "\"logged\"\n");
    assert!(out.stderr.contains("to stdout") && out.stderr.contains("to stderr"), "{}", out.stderr);
}

#[test]
fn the_compile_cache_is_reused_and_a_damaged_entry_is_recompiled() {
    let env = Env::new(BIN);
    let guest = test_guest("misbehave");
    let g = guest.to_str().unwrap();
    let logged = |expect: &str| {
        let mut cmd = env.cmd();
        cmd.env("WASM_HOST_LOG", "debug");
        let out = env.run_with(cmd, &["run", g, "--input", "1"], None);
        assert_eq!(out.success().stdout, "1\n");
        assert!(out.stderr.contains(&format!("cache={expect}")), "expected {expect}: {}", out.stderr);
    };
    logged("Compiled");
    let entries = cwasm_files(&env.cache());
    assert_eq!(entries.len(), 1, "{entries:?}");
    logged("Hit");
    // Flip bytes in the middle of the entry: it must be noticed and replaced, never loaded.
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xa5;
    }
    std::fs::write(&entries[0], &bytes).unwrap();
    logged("Repaired");
    logged("Hit");
    // Truncated to nothing.
    std::fs::write(&entries[0], b"").unwrap();
    logged("Repaired");
    // WASM_HOST_CACHE_DIR moves the cache.
    let elsewhere = env.path("other-cache");
    let mut cmd = env.cmd();
    cmd.env("WASM_HOST_CACHE_DIR", &elsewhere);
    env.run_with(cmd, &["run", g], None).success();
    assert_eq!(cwasm_files(&elsewhere).len(), 1);
}

#[test]
fn sandbox_limits_end_the_invocation_with_their_own_exit_code() {
    let env = Env::new(BIN);
    let guest = test_guest("misbehave");
    let m = guest.to_str().unwrap();
    // Endless loop: stopped near its timeout.
    let started = std::time::Instant::now();
    env.run(&["run", m, "--input", "\"loop\"", "--timeout", "500ms"]).failure(14, "longer than its time limit of 500ms");
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(20), "the loop was not stopped: {took:?}");
    // Memory bomb.
    env.run(&["run", m, "--input", "\"memory\"", "--max-memory", "32MiB"]).failure(15, "memory limit of 32 MiB");
    // Runaway recursion.
    env.run(&["run", m, "--input", "\"recurse\""]).failure(16, "overflowed its stack");
    // Output larger than the limit.
    env.run(&["run", m, "--input", "\"big-output\"", "--max-output", "1MiB"]).failure(17, "more than the output limit");
    assert_eq!(env.run(&["run", m, "--input", "\"big-output\"", "--max-output", "20MiB"]).success().stdout.len(), (10 << 20) + 3);
    // Bad limit values are usage errors.
    env.run(&["run", m, "--timeout", "soon"]).failure(2, "is not a duration");
    env.run(&["run", m, "--max-memory", "lots"]).failure(2, "is not a size");
    env.run(&["run", m, "--allow-host", "https://x.example/"]).failure(2, "is a URL; give a host");
}

#[test]
fn outgoing_http_reaches_only_granted_hosts() {
    let env = Env::new(BIN);
    let guest = test_guest("misbehave");
    let m = guest.to_str().unwrap();
    let api = Api::start("unused", "{}");
    let input = serde_json::json!({ "fetch": api.url("/x") }).to_string();
    // Not granted: refused inside the function (wasi:http HTTP-request-denied) and logged by the host.
    let out = env.run(&["run", m, "--input", &input]);
    out.failure(1, "denied: the host refused the request");
    assert!(out.stderr.contains("refused an outgoing request") && out.stderr.contains("127.0.0.1"), "{}", out.stderr);
    let other_port = format!("127.0.0.1:{}", api.port.wrapping_add(1));
    env.run(&["run", m, "--input", &input, "--allow-host", &other_port]).failure(1, "denied");
    env.run(&["run", m, "--input", &input, "--allow-host", "*.example.com"]).failure(1, "denied");
    assert!(api.recorded().is_empty(), "a refused request reached the server");
    // Granted by host, by host:port, or by `*`.
    for grant in ["127.0.0.1".to_owned(), format!("127.0.0.1:{}", api.port), "*".to_owned()] {
        assert_eq!(env.run(&["run", m, "--input", &input, "--allow-host", &grant]).success().json()["status"], 401);
    }
    assert_eq!(api.recorded().len(), 3);
}

#[test]
fn a_manifest_gives_limits_and_named_with_manifest_grants_and_flags_override_it() {
    let env = Env::new(BIN);
    let dir = env.path("fn");
    std::fs::create_dir_all(&dir).unwrap();
    let component = dir.join("misbehave.wasm");
    std::fs::copy(test_guest("misbehave"), &component).unwrap();
    let c = component.to_str().unwrap();
    let api = Api::start("unused", "{}");
    let fetch = serde_json::json!({ "fetch": api.url("/x") }).to_string();
    std::fs::write(
        dir.join("misbehave.toml"),
        "[grants]\nhosts = [\"127.0.0.1\"]\nconnections = []\n\n[limits]\ntimeout = \"400ms\"\nmax-memory = \"32MiB\"\n",
    )
    .unwrap();
    // Beside the component, its grants are not taken unseen (tests/hardening.rs has the attack); named, they are.
    env.run(&["run", c, "--input", &fetch]).failure(2, "--manifest");
    let beside = dir.join("misbehave.toml");
    let named = ["--manifest", beside.to_str().unwrap()];
    assert_eq!(env.run(&[&["run", c, "--input", &fetch][..], &named[..]].concat()).success().json()["status"], 401);
    // Its limits apply either way.
    env.run(&[&["run", c, "--input", "\"loop\""][..], &named[..]].concat()).failure(14, "time limit of 400ms");
    env.run(&["run", c, "--input", "\"memory\"", "--allow-host", "127.0.0.1"]).failure(15, "32 MiB");
    // Flags win: another host list, a longer timeout.
    env.run(&["run", c, "--input", &fetch, "--allow-host", "example.com"]).failure(1, "denied");
    env.run(&[&["run", c, "--input", "\"loop\"", "--timeout", "600ms"][..], &named[..]].concat()).failure(14, "time limit of 600ms");
    // A manifest with a typo is refused, not half-applied.
    std::fs::write(dir.join("misbehave.toml"), "[grants]\nhost = [\"127.0.0.1\"]\n").unwrap();
    env.run(&["run", c, "--input", "1"]).failure(2, "unknown field `host`");
    // --manifest names one explicitly.
    let other = env.path("other.toml");
    std::fs::write(&other, "[limits]\ntimeout = \"300ms\"\n").unwrap();
    env.run(&["run", c, "--input", "\"loop\"", "--manifest", other.to_str().unwrap()]).failure(14, "300ms");
}

#[test]
fn a_runaway_invocation_leaves_the_others_in_the_same_host_alone() {
    use std::sync::Arc;
    use std::time::Duration;
    use wasm_host_runtime::{FunctionHost, InvocationSettings, InvokeError, TokenBroker};

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(wasm_host_store::Store::open(&dir.path().join("s.redb")).unwrap());
    let broker = Arc::new(TokenBroker::new(store, Arc::new(wasm_host_store::Keys::generate())));
    let host = FunctionHost::new(broker, None).unwrap();
    let function = host.load(&test_guest("misbehave")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let short = InvocationSettings { timeout: Duration::from_millis(300), ..Default::default() };
        let small = InvocationSettings { max_memory: 16 << 20, ..Default::default() };
        let normal = InvocationSettings::default();
        let (looping, bomb, fine) = tokio::join!(
            host.invoke(&function, "\"loop\"", &short),
            host.invoke(&function, "\"memory\"", &small),
            host.invoke(&function, "{\"n\": 1}", &normal),
        );
        assert!(matches!(looping, Err(InvokeError::Timeout(_))), "{looping:?}");
        assert!(matches!(bomb, Err(InvokeError::MemoryLimit(_))), "{bomb:?}");
        assert_eq!(fine.unwrap(), Ok("{\"n\": 1}".to_owned()));
        // And the host goes on serving.
        for i in 0..20 {
            let input = format!("{{\"i\": {i}}}");
            assert_eq!(host.invoke(&function, &input, &normal).await.unwrap(), Ok(input));
        }
    });
}

/// A reused instance slot (the pooling allocator resets dirty pages in place, and releases the rest) must give
/// the next invocation the memory of a fresh instance: nothing one invocation wrote is seen by the next.
#[test]
fn a_reused_slot_shows_nothing_of_the_previous_invocation() {
    use std::sync::Arc;
    use wasm_host_runtime::{FunctionHost, HostOptions, InvocationSettings, TokenBroker};

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(wasm_host_store::Store::open(&dir.path().join("s.redb")).unwrap());
    let broker = Arc::new(TokenBroker::new(store, Arc::new(wasm_host_store::Keys::generate())));
    // One slot: every invocation reuses the slot the previous one dirtied.
    let host = FunctionHost::with_options(broker, None, HostOptions { pooling: Some(1), ..Default::default() }).unwrap();
    let function = host.load(&test_guest("misbehave")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let settings = InvocationSettings::default();
    let mut page = None;
    for round in 0..5 {
        let out = runtime.block_on(host.invoke(&function, "\"leftover\"", &settings)).unwrap().unwrap();
        let seen: serde_json::Value = serde_json::from_str(&out).unwrap();
        // The function can see non-zero bytes (it counts them after filling), and saw none before.
        assert_eq!(seen["static_after_fill"], 64 << 10, "round {round}: {seen}");
        assert_eq!(seen["heap_after_fill"], 6 << 20, "round {round}: {seen}");
        assert_eq!((&seen["static"], &seen["heap"]), (&0.into(), &0.into()), "round {round}: {seen}");
        // The same addresses every time: what the last round filled is what this round read.
        assert_eq!(page.get_or_insert(seen["page"].clone()), &seen["page"], "round {round}");
        // A trap in between leaves the slot to be reset the same way.
        let _ = runtime.block_on(host.invoke(&function, "\"panic\"", &settings));
    }
}

#[test]
fn repeat_invokes_many_times_in_one_process_and_reports_timing() {
    let env = env_with_connection("c");
    env.import_token("c", r#"{"access_token":"abc"}"#).success();
    let guest = test_guest("misbehave");
    let out = env.run(&[
        "run", guest.to_str().unwrap(), "--input", r#"{"token_loop":"c","n":100}"#, "--allow-connection", "c", "--repeat", "20",
    ]);
    assert_eq!(out.success().stdout, "300\n");
    assert!(out.stderr.contains("20 invocations: mean"), "{}", out.stderr);
    env.run(&["run", guest.to_str().unwrap(), "--repeat", "0"]).failure(2, "--repeat must be at least 1");
}

#[test]
fn the_trivial_function_returns_its_input() {
    let env = Env::new(BIN);
    let trivial = test_guest("trivial");
    let out = env.run(&["run", trivial.to_str().unwrap(), "--input", r#"{"a":[1,2,3]}"#]);
    assert_eq!(out.success().json(), serde_json::json!({ "a": [1, 2, 3] }));
    // The same through the on-demand allocator, which the benchmarks compare the default (pooling) against.
    let mut cmd = env.cmd();
    cmd.env("WASM_HOST_ALLOCATOR", "on-demand");
    let out = env.run_with(cmd, &["run", trivial.to_str().unwrap(), "--input", "\"x\"", "--repeat", "3"], None);
    assert_eq!(out.success().json(), "x");
    assert!(out.stderr.contains("3 invocations"), "{}", out.stderr);
}

fn cwasm_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "cwasm"));
    files
}

#[test]
fn processes_starting_the_same_component_cold_compile_it_once() {
    let env = Env::new(BIN);
    let guest = test_guest("misbehave");
    let children: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = env.cmd();
            cmd.env("WASM_HOST_LOG", "debug")
                .args(["run", guest.to_str().unwrap(), "--input", "1"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let logs: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stderr).into_owned()
        })
        .collect();
    let compiled = logs.iter().filter(|l| l.contains("cache=Compiled")).count();
    let hits = logs.iter().filter(|l| l.contains("cache=Hit")).count();
    assert_eq!((compiled, hits), (1, 3), "{logs:#?}");
    assert_eq!(cwasm_files(&env.cache()).len(), 1);
}

#[test]
fn a_hostile_function_is_contained_to_its_own_invocation() {
    let env = env_with_connection("real");
    env.import_token("real", r#"{"access_token":"at-hostile-0123456789abcdef","expires_in":3600}"#).success();
    let probe = test_guest("token-probe").to_str().unwrap().to_owned();
    let ask = |name: &str, grant: &str| {
        let input_file = env.path("name.json");
        std::fs::write(&input_file, serde_json::json!({ "connection": name }).to_string()).unwrap();
        env.run(&["run", &probe, "--input-file", input_file.to_str().unwrap(), "--allow-connection", grant])
            .success()
            .json()
    };
    // Guessing names: without a grant, an existing name and a made-up one get the same answer, so a function
    // cannot learn which connections exist.
    let existing = ask("real", "other");
    let made_up = ask("payroll", "other");
    assert_eq!(existing["error"], "access-denied");
    assert_eq!(made_up["error"], "access-denied");
    let shape = |v: &serde_json::Value, name: &str| v["message"].as_str().unwrap().replace(name, "NAME");
    assert_eq!(shape(&existing, "real"), shape(&made_up, "payroll"));
    // A 1 MB name and one full of control characters: refused with a short, printable message.
    let huge = "a".repeat(1 << 20);
    for grant in ["other", "*"] {
        for name in [huge.as_str(), "evil\u{1b}[31m\r\nname\u{7}"] {
            let v = ask(name, grant);
            let message = v["message"].as_str().unwrap();
            assert!(v["error"] == "access-denied" || v["error"] == "not-found", "{v}");
            assert!(message.len() < 600, "a bounded message, not {} bytes", message.len());
            assert!(!message.chars().any(|c| c.is_control()), "{message:?}");
        }
    }
    // Thousands of outgoing requests in one invocation: served, and the host serves the next invocation as usual.
    let api = Api::start("unused", "{}");
    let http = test_guest("http-probe");
    let input = serde_json::json!({ "url": api.url("/x"), "repeat": 2000 }).to_string();
    let out = env.run(&["run", http.to_str().unwrap(), "--allow-host", "127.0.0.1", "--input", &input]);
    assert_eq!(out.success().json()["status"], 401);
    assert_eq!(api.recorded().len(), 2000);
    // And as many to a host it was not granted: each refused inside the host, none reaches the network.
    let denied = serde_json::json!({ "url": api.url("/y"), "repeat": 2000, "keep_going": true }).to_string();
    let out = env.run(&["run", http.to_str().unwrap(), "--allow-host", "127.0.0.2", "--input", &denied]);
    let result = out.success().json();
    assert_eq!(result["failed"], 2000, "{result}");
    assert!(result["last_error"].as_str().unwrap().contains("HttpRequestDenied"), "{result}");
    assert_eq!(api.recorded().len(), 2000, "no denied request reached the server");
    assert_eq!(ask("real", "real")["access_token"], "at-hostile-0123456789abcdef");
}
