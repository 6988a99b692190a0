//! Secrets, through the real binary (issue 7): key rotation with `store rekey`, also SIGKILLed at every moment;
//! `store export`/`import` between hosts with different identities; and a scan for the exact bytes of every
//! secret and token in every output, trace log, file and process argument list.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use wasm_host_store::secrecy::{ExposeSecret, SecretString};
use wasm_host_store::{Keys, NewConnection, NewTokens, RefreshUpdate, SecretField, Store, TYPE_OAUTH2};
use wasm_host_tests::api::Api;
use wasm_host_tests::provider::{Provider, ProviderConfig, CLIENT_ID, CLIENT_SECRET};
use wasm_host_tests::{example, test_guest, Env, Run};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Everything but the identity file in the identity's directory (side files a rekey left behind).
fn beside_identity(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(env.identity().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "identity.txt")
        .collect();
    names.sort();
    names
}

/// The `AGE-SECRET-KEY-1...` line of an identity file.
fn key_line(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().lines().find(|l| l.starts_with("AGE-SECRET-KEY-1")).unwrap().to_owned()
}

/// Every stored secret, opened with `keys`: (name, field) → value.
fn open_all(store_path: &Path, keys: &Keys) -> BTreeMap<(String, &'static str), String> {
    let store = Store::open(store_path).unwrap();
    let mut out = BTreeMap::new();
    for conn in store.list().unwrap() {
        for field in SecretField::ALL {
            if let Some(v) = store.secret(&conn.name, field, keys).unwrap() {
                out.insert((conn.name.clone(), field.as_str()), v.expose_secret().to_owned());
            }
        }
    }
    out
}

fn userinfo(env: &Env, connection: &str, url: &str) -> Run {
    let input = serde_json::json!({ "connection": connection, "url": url }).to_string();
    let guest = example("userinfo");
    env.run(&["run", guest.to_str().unwrap(), "--input", &input, "--allow-connection", connection, "--allow-host", "127.0.0.1"])
}

#[test]
fn rekey_reseals_every_secret_and_the_old_identity_then_fails() {
    let env = Env::new(BIN);
    env.create("api", "client-secret-rekey").success();
    env.import_token("api", r#"{"access_token":"at-rekey-1","refresh_token":"rt-rekey-1","expires_in":3600}"#)
        .success();
    env.create("other", "client-secret-other").success();
    let old_copy = env.path("old-identity.txt");
    std::fs::copy(env.identity(), &old_copy).unwrap();
    let old = Keys::load(&env.identity()).unwrap().unwrap();
    let before = open_all(&env.store(), &old);
    assert_eq!(before.len(), 4);

    let run = env.run(&["store", "rekey"]);
    run.success();
    assert!(run.stderr.contains("re-encrypted 4 secrets of 2 connections"), "{}", run.stderr);
    let new = Keys::load(&env.identity()).unwrap().unwrap();
    assert_ne!(new.recipient(), old.recipient());
    assert!(run.stderr.contains(&format!("the old identity {} no longer opens this store", old.recipient())));
    assert_eq!(mode(&env.identity()), 0o600);
    assert_eq!(mode(env.identity().parent().unwrap()), 0o700);
    assert_eq!(beside_identity(&env), Vec::<String>::new(), "no side file left");
    assert!(!run.stderr.contains("AGE-SECRET-KEY") && !run.stdout.contains("AGE-SECRET-KEY"));

    // Every row was re-encrypted, not just relabelled: the new key opens each, the old one none.
    assert_eq!(open_all(&env.store(), &new), before);
    let store = Store::open(&env.store()).unwrap();
    for (name, field) in before.keys() {
        let field = SecretField::parse(field).unwrap();
        let err = store.secret(name, field, &old).unwrap_err();
        assert!(err.to_string().contains("cannot be decrypted with this identity"), "{err}");
    }
    drop(store);

    // The token path works on: a function gets the token, and new tokens are sealed to the new identity.
    let api = Api::start("at-rekey-1", r#"{"ok":true}"#);
    assert_eq!(userinfo(&env, "api", &api.url("/me")).success().json(), serde_json::json!({ "ok": true }));
    env.import_token("api", r#"{"access_token":"at-rekey-2"}"#).success();
    assert_eq!(open_all(&env.store(), &new)[&("api".into(), "access_token")], "at-rekey-2");

    // A copy of the old identity is refused with the clear error, by whatever command needs it.
    let wrong = format!("holds secrets encrypted to {}, but the identity in use is {}", new.recipient(), old.recipient());
    for (args, stdin) in [
        (vec!["authconnection", "import-token", "api"], Some(r#"{"access_token":"x"}"#)),
        (vec!["store", "export", "--recipient", &new.recipient()], None),
        (vec!["store", "rekey"], None),
    ] {
        let mut cmd = env.cmd();
        cmd.env("WASM_HOST_IDENTITY", &old_copy);
        env.run_with(cmd, &args, stdin).failure(5, &wrong);
    }
    let mut cmd = env.cmd();
    cmd.env("WASM_HOST_IDENTITY", &old_copy);
    let input = serde_json::json!({ "connection": "api", "url": api.url("/me") }).to_string();
    let guest = example("userinfo");
    env.run_with(cmd, &["run", guest.to_str().unwrap(), "--input", &input, "--allow-connection", "api"], None)
        .failure(5, &wrong);
    assert_eq!(open_all(&env.store(), &new)[&("api".into(), "access_token")], "at-rekey-2", "nothing changed");
    // --new-identity-file belongs to an identity given inline.
    env.run(&["store", "rekey", "--new-identity-file", env.path("x.txt").to_str().unwrap()])
        .failure(2, "--new-identity-file is for an identity given in WASM_HOST_IDENTITY_KEY");
}

#[test]
fn rekey_with_the_identity_in_the_environment_writes_the_new_one_to_a_named_file() {
    let env = Env::new(BIN);
    env.create("c", "client-secret-inline").success();
    let old_key = key_line(&env.identity());
    let inline = |key: &str| {
        let mut cmd = env.cmd();
        // No identity file where the default would look: the key comes only from the environment.
        cmd.env("WASM_HOST_IDENTITY_KEY", key).env("XDG_CONFIG_HOME", env.path("no-config"));
        cmd
    };
    env.run_with(inline(&old_key), &["store", "rekey"], None)
        .failure(2, "pass --new-identity-file FILE to receive the new identity");
    let out = env.path("new-key.txt");
    std::fs::write(&out, "an operator's file").unwrap();
    env.run_with(inline(&old_key), &["store", "rekey", "--new-identity-file", out.to_str().unwrap()], None)
        .failure(2, "exists already, and rekey never overwrites a key file");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "an operator's file");
    std::fs::remove_file(&out).unwrap();

    let run = env.run_with(inline(&old_key), &["store", "rekey", "--new-identity-file", out.to_str().unwrap()], None);
    run.success();
    assert!(run.stderr.contains("set WASM_HOST_IDENTITY_KEY to its AGE-SECRET-KEY line"), "{}", run.stderr);
    assert_eq!(mode(&out), 0o600);
    let new_key = key_line(&out);
    assert!(!run.stderr.contains(&new_key) && !run.stdout.contains(&new_key), "the key itself is never printed");
    let new = Keys::load(&out).unwrap().unwrap();
    assert_eq!(open_all(&env.store(), &new)[&("c".into(), "client_secret")], "client-secret-inline");
    env.run_with(inline(&new_key), &["authconnection", "import-token", "c"], Some(r#"{"access_token":"a"}"#))
        .success();
    env.run_with(inline(&old_key), &["authconnection", "import-token", "c"], Some(r#"{"access_token":"b"}"#))
        .failure(5, "holds secrets encrypted to");
}

/// A small xorshift generator: the kill test's moments are random, and its seed is printed to replay a run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[derive(Debug, Default)]
struct Outcomes {
    /// Killed before the new identity reached the disk (process start, store open, key generation).
    before_new_identity: u32,
    /// Killed with the new identity on the disk but the transaction not committed (mostly inside it).
    written_not_committed: u32,
    committed_not_switched: u32,
    switched: u32,
    completed: u32,
}

#[test]
fn rekey_killed_at_any_moment_leaves_a_store_that_opens_with_the_old_or_the_new_identity() {
    const CONNECTIONS: usize = 300;
    const KILLS: u32 = 36;
    let env = Env::new(BIN);
    let keys = Keys::create(&env.identity()).unwrap();
    let mut expected = BTreeMap::new();
    {
        let store = Store::open(&env.store()).unwrap();
        for i in 0..CONNECTIONS {
            let name = format!("conn-{i}");
            let new = NewConnection {
                name: name.clone(),
                kind: TYPE_OAUTH2.into(),
                provider_url: "https://p.example".into(),
                issuer_url: None,
                client_id: format!("client-{i}"),
                endpoints: Default::default(),
                expose_refresh_token: false,
            };
            let values = [format!("cs-{i}-kill"), format!("at-{i}-kill"), format!("rt-{i}-kill")];
            store.create(new, &SecretString::from(values[0].as_str()), &keys).unwrap();
            let (at, rt) = (SecretString::from(values[1].as_str()), SecretString::from(values[2].as_str()));
            let tokens =
                NewTokens { refresh: RefreshUpdate::Replace(&rt), id_token: RefreshUpdate::Remove, ..NewTokens::bearer(&at) };
            store.put_tokens(&name, tokens, &keys).unwrap();
            for (field, value) in [SecretField::ClientSecret, SecretField::AccessToken, SecretField::RefreshToken].iter().zip(values) {
                expected.insert((name.clone(), field.as_str()), value);
            }
        }
    }
    let third = Keys::generate().recipient();

    // One rekey that runs to its end: how long the window is.
    let started = Instant::now();
    let full = env.run(&["store", "rekey"]);
    full.success();
    let full_time = started.elapsed();
    eprintln!("rekey of {CONNECTIONS} connections ({} secrets), uninterrupted: {full_time:?} wall; {}", expected.len(), full.stderr.lines().next().unwrap_or(""));

    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("kill schedule seed {seed}");
    let mut rng = Rng(seed);
    let mut outcomes = Outcomes::default();
    let steps = ["new-identity-written", "committed", "switched"];
    for round in 0..KILLS {
        let before = Keys::load(&env.identity()).unwrap().unwrap().recipient();
        let side_files_before = beside_identity(&env);
        let mut cmd = env.cmd();
        cmd.args(["store", "rekey"]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // A third of the rounds stop at a step the binary announces (it pauses there), so every window is hit
        // for sure; the rest at a random moment over the whole run, process start included.
        let at_step = (round % 3 == 0).then(|| steps[(round / 3) as usize % steps.len()]);
        if at_step.is_some() {
            cmd.env("WASM_HOST_TEST_REKEY_PAUSE_MS", "400").stderr(Stdio::piped());
        }
        let mut child = cmd.spawn().unwrap();
        match at_step {
            Some(step) => {
                let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
                let marker = format!("rekey-step: {step}");
                loop {
                    let line = lines.next().expect("the rekey ended before announcing its step").unwrap();
                    if line.starts_with(&marker) {
                        break;
                    }
                }
                child.kill().unwrap();
            }
            None => {
                std::thread::sleep(Duration::from_micros(rng.below(full_time.as_micros() as u64 * 5 / 4)));
                let _ = child.kill();
            }
        }
        let status = child.wait().unwrap();

        // Whatever the moment: the identity file is whole, the store passes redb's check and opens with either
        // the identity file's key or a side file the next command moves into place.
        let identity = Keys::load(&env.identity()).unwrap().expect("the identity file is there");
        assert!(Store::check_integrity(&env.store()).unwrap(), "round {round}: integrity check failed");
        let recorded = Store::open(&env.store()).unwrap().recipient().unwrap().unwrap();
        let wrote_side_file = beside_identity(&env).iter().any(|f| !side_files_before.contains(f));
        let outcome = if status.success() {
            outcomes.completed += 1;
            "completed"
        } else if recorded == identity.recipient() && recorded == before {
            if wrote_side_file {
                outcomes.written_not_committed += 1;
            } else {
                outcomes.before_new_identity += 1;
            }
            "before the commit"
        } else if recorded == identity.recipient() {
            outcomes.switched += 1;
            "after the switch"
        } else {
            let side = wasm_host_store::side_path(&env.identity(), &recorded);
            assert!(side.exists(), "round {round}: the store's recipient is in no file");
            assert_eq!(mode(&side), 0o600);
            outcomes.committed_not_switched += 1;
            "between the commit and the switch"
        };
        if let Some(step) = at_step {
            let want = match step {
                "new-identity-written" => "before the commit",
                "committed" => "between the commit and the switch",
                _ => "after the switch",
            };
            assert_eq!(outcome, want, "round {round}: killed at {step}");
        }
        // The real binary opens it (finishing an interrupted switch) and decrypts every secret to export them.
        let export = env.run(&["store", "export", "--recipient", &third, "-o", env.path("check.age").to_str().unwrap()]);
        export.success();
        assert_eq!(
            export.stderr.contains("finished an interrupted `store rekey`"),
            outcome == "between the commit and the switch",
            "round {round} ({outcome}): {}",
            export.stderr
        );
        let now = Keys::load(&env.identity()).unwrap().unwrap();
        assert_eq!(Store::open(&env.store()).unwrap().recipient().unwrap(), Some(now.recipient()));
        assert_eq!(open_all(&env.store(), &now), expected, "round {round} ({outcome}): a secret changed or was lost");
    }
    // The next complete rekey clears whatever stale side files the killed ones left.
    let left = beside_identity(&env);
    env.run(&["store", "rekey"]).success();
    assert_eq!(beside_identity(&env), Vec::<String>::new(), "left before the last rekey: {left:?}");
    eprintln!("{KILLS} rekeys killed or run, store intact after each: {outcomes:?}; stale side files cleared: {}", left.len());
    let o = &outcomes;
    assert_eq!(o.before_new_identity + o.written_not_committed + o.committed_not_switched + o.switched + o.completed, KILLS);
    // The announced steps guarantee four of each window; the random moments (two thirds of the rounds, spread
    // over a run that is mostly the transaction) land inside the transaction too, short of extreme bad luck.
    assert!(o.written_not_committed >= 5 && o.committed_not_switched >= 4 && o.switched >= 4, "{outcomes:?}");
}

#[test]
fn export_and_import_move_connections_to_a_host_with_another_identity() {
    let (a, b, c) = (Env::new(BIN), Env::new(BIN), Env::new(BIN));
    a.create("export-api", "cs-export-api").success();
    a.import_token(
        "export-api",
        r#"{"access_token":"at-export-api","refresh_token":"rt-export-api","id_token":"idt-export-api",
            "expires_in":3600,"scope":"openid email","realmId":"987"}"#,
    )
    .success();
    a.run_stdin(
        &["authconnection", "create", "--name", "export-exposed", "--type", "TYPE_OAUTH2", "--provider-url",
          "https://p.example", "--client-id", "client-exposed", "--client-secret-stdin", "--expose-refresh-token"],
        "cs-export-exposed",
    )
    .success();
    a.import_token("export-exposed", r#"{"access_token":"at-export-exposed","refresh_token":"rt-export-exposed"}"#)
        .success();
    let secrets = ["cs-export-api", "at-export-api", "rt-export-api", "idt-export-api", "cs-export-exposed",
                   "at-export-exposed", "rt-export-exposed"];

    // Host B tells its public key; host A exports to it.
    let recipient = b.run(&["store", "recipient"]).success().stdout.trim().to_owned();
    assert_eq!(recipient, Keys::load(&b.identity()).unwrap().unwrap().recipient());
    let bundle = a.path("connections.age");
    let out = a.run(&["store", "export", "--recipient", &recipient, "-o", bundle.to_str().unwrap()]);
    out.success();
    assert!(out.stderr.contains(&format!("exported 2 connections, encrypted to {recipient} only")), "{}", out.stderr);
    assert_eq!(mode(&bundle), 0o600);
    let bytes = std::fs::read(&bundle).unwrap();
    for needle in secrets.iter().chain(&["export-api", "export-exposed", "client-exposed", "realmId", "p.example"]) {
        assert!(!contains(&bytes, needle), "{needle} readable in the bundle");
    }
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));

    // Neither a third host nor the exporting host itself can read it.
    c.run(&["store", "recipient"]).success();
    c.run(&["store", "import", bundle.to_str().unwrap()]).failure(20, "the bundle is not encrypted to this host's identity");
    a.run(&["store", "import", "--replace", bundle.to_str().unwrap()]).failure(20, "not encrypted to this host's identity");
    assert_eq!(c.run(&["authconnection", "list", "--json"]).success().json(), serde_json::json!([]));

    let imported = b.run(&["store", "import", bundle.to_str().unwrap()]);
    imported.success();
    assert!(imported.stderr.contains("imported 2 connections"), "{}", imported.stderr);
    let listed = |env: &Env| {
        let mut rows = env.run(&["authconnection", "list", "--json"]).success().json();
        for row in rows.as_array_mut().unwrap() {
            row.as_object_mut().unwrap().remove("updated_at");
        }
        rows
    };
    assert_eq!(listed(&b), listed(&a));
    // B's store holds them sealed to B's identity, and the functions there get their tokens.
    let b_keys = Keys::load(&b.identity()).unwrap().unwrap();
    let opened = open_all(&b.store(), &b_keys);
    assert_eq!(opened.values().map(String::as_str).collect::<std::collections::BTreeSet<_>>(), secrets.into_iter().collect());
    let api = Api::start("at-export-api", r#"{"sub":"imported"}"#);
    assert_eq!(userinfo(&b, "export-api", &api.url("/me")).success().json()["sub"], "imported");
    let probe = test_guest("token-probe");
    let t = b
        .run(&["run", probe.to_str().unwrap(), "--input", r#"{"connection":"export-exposed"}"#, "--allow-connection", "*"])
        .success()
        .json();
    assert_eq!(t["refresh_token"], "rt-export-exposed");
    assert_eq!(b.run(&["run", probe.to_str().unwrap(), "--input", r#"{"connection":"export-api"}"#, "--allow-connection", "*"])
        .success()
        .json()["metadata"]["realmId"], "987");

    // A second import conflicts and changes nothing; --replace overwrites.
    b.import_token("export-api", r#"{"access_token":"changed-on-b"}"#).success();
    b.run(&["store", "import", bundle.to_str().unwrap()])
        .failure(4, "the store already has `export-api`, `export-exposed`; nothing was imported: pass --replace");
    assert_eq!(open_all(&b.store(), &b_keys)[&("export-api".into(), "access_token")], "changed-on-b");
    let replaced = b.run(&["store", "import", "--replace", bundle.to_str().unwrap()]);
    replaced.success();
    assert!(replaced.stderr.contains("replaced: export-api, export-exposed"), "{}", replaced.stderr);
    assert_eq!(open_all(&b.store(), &b_keys)[&("export-api".into(), "access_token")], "at-export-api");

    // Through a pipe: export to stdout, import from stdin.
    let piped = c.path("piped.age");
    let status = a
        .cmd()
        .args(["store", "export", "--recipient", &Keys::load(&c.identity()).unwrap().unwrap().recipient()])
        .stdout(std::fs::File::create(&piped).unwrap())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let status = c
        .cmd()
        .args(["store", "import", "-"])
        .stdin(std::fs::File::open(&piped).unwrap())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(listed(&c), listed(&a));

    // Mistakes, each with its exit code and what to do.
    a.run(&["store", "export", "--recipient", "age1notakey"]).failure(2, "is not an age X25519 public key");
    let junk = a.path("junk.age");
    std::fs::write(&junk, "not a bundle").unwrap();
    b.run(&["store", "import", junk.to_str().unwrap()]).failure(20, "this is not a wasm-host bundle");
    let mut cut = bytes.clone();
    cut.truncate(bytes.len() - 20);
    std::fs::write(&junk, &cut).unwrap();
    b.run(&["store", "import", junk.to_str().unwrap()]).failure(20, "the bundle is damaged or truncated");
    b.run(&["store", "import", "/nonexistent/bundle.age"]).failure(2, "cannot read the bundle /nonexistent/bundle.age");
}

/// What a test saw: each command's output and, while it ran, its argument list.
#[derive(Default)]
struct Seen {
    outputs: Vec<(String, Vec<u8>)>,
    cmdlines: Vec<(String, Vec<u8>)>,
}

impl Seen {
    /// Reads the argument list of a process that is alive (waiting for stdin or a callback). Right after the
    /// spawn it can read empty for a moment, while the exec completes.
    fn cmdline(&mut self, label: &str, pid: u32) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if !bytes.is_empty() || Instant::now() > deadline {
                self.cmdlines.push((label.to_owned(), bytes));
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn run(&mut self, label: &str, run: Run) -> Run {
        self.outputs.push((format!("{label} (stdout)"), run.stdout.clone().into_bytes()));
        self.outputs.push((format!("{label} (stderr)"), run.stderr.clone().into_bytes()));
        run
    }
}

/// Every file below `dir` but the identity files.
fn files_below(dir: &Path, skip: &[PathBuf], out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_below(&path, skip, out);
        } else if !skip.contains(&path) {
            out.push(path);
        }
    }
}

/// `Authorization: Basic` as a client sends it (RFC 6749 §2.3.1: id and secret form-urlencoded first).
fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn basic_credentials(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in raw.as_bytes().chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { T[(n >> (18 - 6 * i)) as usize & 63] as char } else { '=' });
        }
    }
    out
}

#[test]
fn no_secret_reaches_any_output_trace_log_file_or_argument_list() {
    const IMPORTED_SECRET: &str = "cs-scan-5Kq9vZ2w";
    const IMPORTED_AT: &str = "at-scan-Hx81LmQe";
    const IMPORTED_RT: &str = "rt-scan-Pz4cN7Ty";
    const IMPORTED_ID: &str = "idt-scan-W3sJ0dUf";
    let provider = Provider::start(ProviderConfig { access_ttl: 5, ..Default::default() });
    let env = Env::new(BIN);
    let elsewhere = Env::new(BIN);
    let mut seen = Seen::default();
    let traced = |env: &Env| {
        let mut cmd = env.cmd();
        cmd.env("WASM_HOST_LOG", "trace");
        cmd
    };
    let create = |name: &str, provider_url: &str, client_id: &str| -> Vec<String> {
        ["authconnection", "create", "--name", name, "--type", "TYPE_OAUTH2", "--provider-url", provider_url,
         "--client-id", client_id, "--client-secret-stdin"]
            .map(String::from)
            .to_vec()
    };

    // Secrets arrive on stdin: the process is alive and waiting for them while its argument list is read.
    let oidc = create("oidc", &provider.issuer, CLIENT_ID);
    let run = env.run_watched(traced(&env), &args(&oidc), Some(CLIENT_SECRET), |pid| seen.cmdline("create oidc", pid));
    seen.run("create oidc", run).success();
    let imported = create("imported", "http://127.0.0.1:9/", "client-imported");
    let run = env.run_watched(traced(&env), &args(&imported), Some(IMPORTED_SECRET), |pid| seen.cmdline("create", pid));
    seen.run("create imported", run).success();
    assert_eq!(seen.cmdlines.len(), 2);
    assert!(seen.cmdlines.iter().all(|(_, c)| contains(c, "--client-secret-stdin")), "argument lists were read");
    let token_json = format!(
        r#"{{"access_token":"{IMPORTED_AT}","refresh_token":"{IMPORTED_RT}","id_token":"{IMPORTED_ID}","expires_in":3600}}"#
    );
    let import = ["authconnection", "import-token", "imported"];
    let run = env.run_watched(traced(&env), &import, Some(&token_json), |pid| seen.cmdline("import-token", pid));
    seen.run("import-token", run).success();

    // The function is compiled (and cached) before the authorization, so that its first run comes well within
    // the token's life.
    let me = format!("{}/me", provider.issuer);
    let run_traced = |env: &Env, connection: &str, url: &str| {
        let guest = example("userinfo");
        let input = serde_json::json!({ "connection": connection, "url": url }).to_string();
        env.run_with(
            traced(env),
            &["run", guest.to_str().unwrap(), "--input", &input, "--allow-connection", connection,
              "--allow-host", "127.0.0.1", "--refresh-margin", "1s"],
            None,
        )
    };
    seen.run("run before authorize", run_traced(&env, "oidc", &me)).failure(1, "needs-authorization");

    // A real authorization, logged at trace level, its argument list read while it waits for the callback.
    let (run, page) = env.authorize_with(traced(&env), "oidc", &["--timeout", "60s"], true, |pid| seen.cmdline("authorize", pid));
    seen.run("authorize", run).success();
    assert_eq!(page.unwrap().0, 200);
    assert!(contains(&seen.cmdlines.last().unwrap().1, "authorize"), "the waiting authorize's arguments were read");
    let keys = Keys::load(&env.identity()).unwrap().unwrap();
    let mut secrets: Vec<String> = vec![
        CLIENT_SECRET.into(),
        basic_credentials(CLIENT_ID, CLIENT_SECRET),
        IMPORTED_SECRET.into(),
        IMPORTED_AT.into(),
        IMPORTED_RT.into(),
        IMPORTED_ID.into(),
    ];
    let issued = open_all(&env.store(), &keys);
    for field in ["access_token", "refresh_token", "id_token"] {
        secrets.push(issued[&("oidc".to_owned(), field)].clone());
    }

    // Functions run (at trace level) with both connections; one waits out the token so the host refreshes.
    assert_eq!(seen.run("run oidc", run_traced(&env, "oidc", &me)).success().json()["sub"], "test-user");
    Provider::wait(Duration::from_millis(5200));
    seen.run("run oidc after expiry", run_traced(&env, "oidc", &me)).success();
    assert_eq!(provider.refreshes(), 1);
    let refreshed = open_all(&env.store(), &keys);
    for field in ["access_token", "refresh_token"] {
        let value = refreshed[&("oidc".to_owned(), field)].clone();
        assert!(!secrets.contains(&value), "{field} was rotated");
        secrets.push(value);
    }
    let api = Api::start(IMPORTED_AT, r#"{"sub":"api-user"}"#);
    seen.run("run imported", run_traced(&env, "imported", &api.url("/me"))).success();
    assert_eq!(api.recorded()[0].authorization.as_deref(), Some(format!("Bearer {IMPORTED_AT}").as_str()));

    // Listing, and errors that have a secret at hand.
    seen.run("list --json", env.run_with(traced(&env), &["authconnection", "list", "--json"], None)).success();
    seen.run("list", env.run_with(traced(&env), &["authconnection", "list"], None)).success();
    let bad = format!(r#"{{"access_token":"{IMPORTED_AT}","refresh_token":"{IMPORTED_RT}","expires_in":"soon"}}"#);
    seen.run("import-token bad", env.run_with(traced(&env), &["authconnection", "import-token", "imported"], Some(&bad)))
        .failure(2, "expires_in `soon` is not a number");
    let wrong_type = format!(r#"{{"access_token":"{IMPORTED_AT}","scope":{{"x":"{IMPORTED_RT}"}}}}"#);
    seen.run("import-token wrong type", env.run_with(traced(&env), &["authconnection", "import-token", "imported"], Some(&wrong_type)))
        .failure(2, "scope must be");
    let not_json = format!(r#"{{"access_token":"{IMPORTED_AT}" "refresh_token":"{IMPORTED_RT}"}}"#);
    seen.run("import-token not json", env.run_with(traced(&env), &["authconnection", "import-token", "imported"], Some(&not_json)))
        .failure(2, "stdin is not a token JSON object");
    seen.run("import-token missing", env.run_with(traced(&env), &["authconnection", "import-token", "nope"], Some(&token_json)))
        .failure(3, "no connection named `nope`");
    seen.run("create twice", env.run_with(traced(&env), &args(&imported), Some(IMPORTED_SECRET)))
        .failure(4, "already exists");
    let mut other = traced(&env);
    other.env("WASM_HOST_IDENTITY", elsewhere.path("stranger.txt"));
    Keys::create(&elsewhere.path("stranger.txt")).unwrap();
    seen.run("run with a wrong identity", env.run_with(other, &["authconnection", "revoke", "oidc"], None))
        .failure(5, "holds secrets encrypted to");
    // A panic whose message carries a token shows where it happened, not the message.
    let mut panicking = traced(&env);
    panicking.env("WASM_HOST_TEST_PANIC", IMPORTED_AT);
    let run = seen.run("panic", env.run_with(panicking, &["authconnection", "list"], None));
    assert_eq!(run.code, 101, "{}", run.stderr);
    assert!(run.stderr.contains("internal error (a bug) at cli/src/main.rs"), "{}", run.stderr);

    // Backup to another host, rotation, revocation: all at trace level.
    let recipient = elsewhere.run(&["store", "recipient"]).success().stdout.trim().to_owned();
    let bundle = env.path("backup.age");
    seen.run("export", env.run_with(traced(&env), &["store", "export", "--recipient", &recipient, "-o", bundle.to_str().unwrap()], None))
        .success();
    seen.run("import", elsewhere.run_with(traced(&elsewhere), &["store", "import", bundle.to_str().unwrap()], None))
        .success();
    seen.run("rekey", env.run_with(traced(&env), &["store", "rekey"], None)).success();
    seen.run("run after rekey", run_traced(&env, "imported", &api.url("/me"))).success();
    seen.run("revoke oidc", env.run_with(traced(&env), &["authconnection", "revoke", "oidc"], None)).success();
    seen.run("revoke imported", env.run_with(traced(&env), &["authconnection", "revoke", "imported"], None)).success();

    // The positive control: the scan finds a token where one is meant to be (a probe that returns it).
    let probe = test_guest("token-probe");
    let input = serde_json::json!({ "connection": "imported" }).to_string();
    let control = elsewhere.run(&["run", probe.to_str().unwrap(), "--input", &input, "--allow-connection", "imported"]);
    assert!(contains(control.stdout.as_bytes(), IMPORTED_AT), "{}", control.stdout);

    // Trace logging was really on, and the scan covers real files.
    assert!(seen.outputs.iter().any(|(_, o)| contains(o, "TRACE")), "no trace-level line was logged");
    let mut files = Vec::new();
    let identities = [env.identity(), elsewhere.identity(), elsewhere.path("stranger.txt")];
    files_below(env.dir.path(), &identities, &mut files);
    files_below(elsewhere.dir.path(), &identities, &mut files);
    for must in [env.store(), elsewhere.store(), bundle.clone()] {
        assert!(files.contains(&must), "{} not scanned", must.display());
    }
    assert!(files.iter().any(|f| f.starts_with(env.cache())), "the compile cache holds no file: {files:?}");

    let mut found = Vec::new();
    for secret in &secrets {
        for (label, bytes) in seen.outputs.iter().chain(&seen.cmdlines) {
            if contains(bytes, secret) {
                found.push(format!("{secret:?} in {label}"));
            }
        }
        for file in &files {
            if contains(&std::fs::read(file).unwrap(), secret) {
                found.push(format!("{secret:?} in {}", file.display()));
            }
        }
    }
    eprintln!(
        "scanned {} secrets in {} outputs, {} argument lists and {} files ({} KiB)",
        secrets.len(),
        seen.outputs.len(),
        seen.cmdlines.len(),
        files.len(),
        files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum::<u64>() / 1024
    );
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}
