//! The command line as its users meet it, through the real binary: help (a snapshot of every verb's), completions
//! and manual pages, `--version`, logging, durations and sizes, errors, `--json` shapes (snapshots), reading
//! verbs that create nothing, the secret prompt at a real terminal (a pty), progress lines, the compile cache's
//! LRU cap with real compiled components, and `new` projects built and run as their README says.
//!
//! Snapshots live in tests/snapshots/; `WASM_HOST_UPDATE_SNAPSHOTS=1 cargo test -p wasm-host --test cli`
//! rewrites them (review with `git diff tests/snapshots`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use wasm_host_tests::{snapshot, test_guest, Env, Run};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");
const SECRET: &str = "cli-test-client-secret";

fn env() -> Env {
    Env::new(BIN)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The verbs under `path` as `--help` lists them (its "Commands:" section), without `help`.
fn subcommands(help: &str) -> Vec<String> {
    let mut verbs = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line == "Commands:" {
            in_commands = true;
            continue;
        }
        if in_commands {
            // Entries are indented by two; a description wrapped onto more lines is indented further.
            let Some(rest) = line.strip_prefix("  ") else { break };
            if rest.starts_with(' ') {
                continue;
            }
            let verb = rest.split_whitespace().next().unwrap_or_default();
            if verb != "help" {
                verbs.push(verb.to_owned());
            }
        }
    }
    verbs
}

#[test]
fn every_help_matches_its_snapshot_and_fits_100_columns() {
    let env = env();
    let mut failures = Vec::new();
    let mut seen = Vec::new();
    let mut queue: Vec<Vec<String>> = vec![vec![]];
    while let Some(path) = queue.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = env.run(&args);
        out.success();
        let name = std::iter::once("wasm-host").chain(path.iter().map(String::as_str)).collect::<Vec<_>>().join("-");
        // clap does not wrap the usage line; everything else must fit as written.
        for (i, line) in out.stdout.lines().enumerate() {
            if line.chars().count() > 100 && !line.starts_with("Usage: ") {
                failures.push(format!("{name} --help, line {}: {} columns: {line}", i + 1, line.chars().count()));
            }
        }
        let verbs = subcommands(&out.stdout);
        if verbs.is_empty() && !out.stdout.contains("Example:") {
            failures.push(format!("{name} --help has no example"));
        }
        if let Err(e) = snapshot::check("help", &format!("{name}.txt"), &out.stdout) {
            failures.push(e);
        }
        seen.push(format!("{name}.txt"));
        for verb in verbs {
            let mut next = path.clone();
            next.push(verb);
            queue.push(next);
        }
    }
    // A snapshot of a verb that no longer exists is stale.
    for file in snapshot::names("help") {
        if !seen.contains(&file) {
            failures.push(format!("tests/snapshots/help/{file} belongs to no command; delete it"));
        }
    }
    assert!(seen.len() >= 20, "walked only {seen:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let top = env.run(&["--help"]).stdout;
    for needle in ["WASM_HOST_LOG", "-v, --verbose", "-q, --quiet", "show, list, authorize, revoke"] {
        assert!(top.contains(needle), "top-level help lacks {needle:?}:\n{top}");
    }
    let create = env.run(&["authconnection", "create", "--help"]).stdout;
    assert!(create.contains("The client ID the provider issued"), "{create}");
    assert!(create.contains("possible values: TYPE_OAUTH2"), "{create}");
    let revoke = env.run(&["authconnection", "revoke", "--help"]).stdout;
    assert!(revoke.contains("The connection's name"), "{revoke}");
}

#[test]
fn completions_are_generated_for_every_shell() {
    let env = env();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = env.run(&["completion", shell]);
        out.success();
        for needle in ["authconnection", "import-token", "completion", "cache"] {
            assert!(out.stdout.contains(needle), "{shell} completion lacks {needle}");
        }
        // Value enums are offered (elvish and powershell scripts hold no values): the connection type and the
        // languages of `new`.
        if ["bash", "zsh", "fish"].contains(&shell) {
            assert!(out.stdout.contains("TYPE_OAUTH2") && out.stdout.contains("rust"), "{shell}: no value enums");
        }
    }
    // Path hints: zsh completes files for --store and directories for `man --out-dir`.
    let zsh = env.run(&["completion", "zsh"]).stdout;
    assert!(zsh.contains("--store=[") && zsh.contains(":_files"), "zsh: no file hints");
    assert!(zsh.contains("_files -/"), "zsh: no directory hint");
    // The bash script is valid bash.
    let script = env.path("wasm-host.bash");
    std::fs::write(&script, env.run(&["completion", "bash"]).stdout).unwrap();
    let status = Command::new("bash").arg("-n").arg(&script).status().unwrap();
    assert!(status.success(), "bash -n refused the completion script");
    env.run(&["completion", "tcsh"]).failure(2, "invalid value 'tcsh'");
}

#[test]
fn man_pages_are_written_for_every_command() {
    let env = env();
    let dir = env.path("man1");
    env.run(&["man", "--out-dir", dir.to_str().unwrap()]).success();
    for page in ["wasm-host.1", "wasm-host-run.1", "wasm-host-authconnection-create.1", "wasm-host-store-rekey.1",
                 "wasm-host-cache-list.1"] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page} is not a man page");
    }
    let create = std::fs::read_to_string(dir.join("wasm-host-authconnection-create.1")).unwrap();
    assert!(create.contains("client\\-secret\\-stdin"), "{create}");
}

#[test]
fn version_names_the_commit_wasmtime_and_componentize_js() {
    let out = env().run(&["--version"]);
    out.success();
    let lock = std::fs::read_to_string(repo().join("Cargo.lock")).unwrap();
    let wasmtime = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"wasmtime\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_owned())
        .expect("wasmtime in Cargo.lock");
    assert!(out.stdout.contains(&format!("wasmtime: {wasmtime}\n")), "{}", out.stdout);
    let package = std::fs::read_to_string(repo().join("cli/js/package.json")).unwrap();
    let js: serde_json::Value = serde_json::from_str(&package).unwrap();
    let version = js["dependencies"]["@bytecodealliance/componentize-js"].as_str().unwrap();
    assert!(out.stdout.contains(&format!("componentize-js: {version}")), "{}", out.stdout);
    let head = Command::new("git").arg("-C").arg(repo()).args(["rev-parse", "HEAD"]).output();
    match head {
        Ok(h) if h.status.success() => {
            let head = String::from_utf8_lossy(&h.stdout);
            let shown = out.stdout.lines().find_map(|l| l.strip_prefix("commit: ")).expect("a commit line");
            assert!(head.starts_with(shown) && shown.len() == 12, "commit {shown} is not HEAD {head}");
        }
        // A source tarball: no git, and the binary says so.
        _ => assert!(out.stdout.contains("commit: "), "{}", out.stdout),
    }
    // -V stays the one-line version, as clap prints it.
    let short = env().run(&["-V"]).stdout;
    assert_eq!(short.lines().count(), 1, "{short}");
}

#[test]
fn logging_takes_directives_levels_flags_and_json() {
    let env = env();
    let trivial = test_guest("trivial");
    let c = trivial.to_str().unwrap();
    let with_log = |value: &str, extra: &[&str]| {
        let mut cmd = env.cmd();
        cmd.env("WASM_HOST_LOG", value);
        let mut args = extra.to_vec();
        args.extend(["run", c, "--input", "1"]);
        env.run_with(cmd, &args, None)
    };
    // A directive for one module: the command line's debug lines only, not the runtime's, and the other way
    // round. (A directive's target is a prefix: `wasm_host` alone would match `wasm_host_runtime` too.)
    let cli_only = with_log("wasm_host::commands=debug", &[]);
    cli_only.success();
    assert!(cli_only.stderr.contains("loaded ") && !cli_only.stderr.contains("pooling allocator"), "{}", cli_only.stderr);
    let runtime_only = with_log("wasm_host_runtime=debug", &[]);
    assert!(!runtime_only.stderr.contains("loaded ") && runtime_only.stderr.contains("pooling allocator"), "{}", runtime_only.stderr);
    // -vv is debug for everything, and overrides the variable.
    let verbose = with_log("error", &["-vv"]);
    assert!(verbose.stderr.contains("loaded ") && verbose.stderr.contains("pooling allocator"), "{}", verbose.stderr);
    // Nothing by default; -q silences the notes too.
    let quiet = env.run(&["-q", "authconnection", "list"]);
    quiet.success();
    assert_eq!(quiet.stderr, "");
    assert!(env.run(&["authconnection", "list"]).stderr.contains("no connections yet"));
    // JSON lines.
    let json = with_log("debug", &["--log-format", "json"]);
    json.success();
    // Log lines are JSON; the notes commands print for people (the grants `run` uses) stay text.
    let lines: Vec<serde_json::Value> = json
        .stderr
        .lines()
        .filter(|l| !l.starts_with("wasm-host: ") && !l.starts_with("compiling "))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["level"] == "DEBUG" && l["fields"]["message"].as_str().is_some_and(|m| m.starts_with("loaded "))), "{}", json.stderr);
    // A misspelt level is refused, not read as a target that logs nothing.
    with_log("debgu", &[]).failure(2, "WASM_HOST_LOG: `debgu` is not a level");
    with_log("wasm_host=loud", &[]).failure(2, "is not a log filter");
    env.run(&["-v", "-q", "authconnection", "list"]).failure(2, "cannot be used with");
}

#[test]
fn durations_and_sizes_as_people_write_them() {
    let env = env();
    let trivial = test_guest("trivial");
    let c = trivial.to_str().unwrap();
    env.run(&["run", c, "--input", "1", "--timeout", "1.5s", "--refresh-margin", "1h30m", "--max-memory", "1.5GiB"])
        .success();
    env.run(&["run", c, "--input", "1", "--timeout", "2d"]).success();
    env.run(&["run", c, "--timeout", "366d"]).failure(2, "longer than a year");
    env.run(&["run", c, "--max-memory", "2TiB"]).failure(2, "larger than the largest size accepted");
    env.run(&["run", c, "--max-output", "0"]).failure(2, "more than zero");
    // 1MB is 10^6 bytes, 1MiB is 2^20: a result of 1,020,000 bytes fits only the second.
    let input = env.path("big.json");
    std::fs::write(&input, format!("\"{}\"", "x".repeat(1_019_998))).unwrap();
    let f = input.to_str().unwrap();
    env.run(&["run", c, "--input-file", f, "--max-output", "1MB"]).failure(17, "");
    let fits = env.run(&["run", c, "--input-file", f, "--max-output", "1MiB"]);
    fits.success();
    assert_eq!(fits.stdout.trim().len(), 1_020_000);
    // The manifest takes the same forms, and names its key when a value is wrong.
    let manifest = env.path("limits.toml");
    std::fs::write(&manifest, "[limits]\ntimeout = \"1m30s\"\nmax-output = \"1.5MB\"\n").unwrap();
    env.run(&["run", c, "--input-file", f, "--manifest", manifest.to_str().unwrap()]).success();
    std::fs::write(&manifest, "[limits]\nmax-memory = \"lots\"\n").unwrap();
    env.run(&["run", c, "--manifest", manifest.to_str().unwrap()])
        .failure(2, "the manifest's [limits] max-memory: `lots` is not a size");
}

#[test]
fn each_cause_is_said_once() {
    let env = env();
    let dir = env.path("a-directory");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let store = env.run(&["--store", d, "authconnection", "list"]);
    store.failure(5, "cannot open the store");
    assert_eq!(store.stderr.matches("Is a directory").count(), 1, "{}", store.stderr);
    let identity = env.run(&["--identity", "/dev/null/identity.txt", "store", "recipient"]);
    identity.failure(5, "identity file /dev/null/identity.txt");
    assert_eq!(identity.stderr.matches("Not a directory").count(), 1, "{}", identity.stderr);
    assert_eq!(identity.stderr.lines().count(), 1, "{}", identity.stderr);
}

/// Every file under `dir`, relative.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
            out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn reading_verbs_create_nothing() {
    let env = env();
    env.run(&["authconnection", "list"]).success();
    assert_eq!(env.run(&["authconnection", "list", "--json"]).json(), serde_json::json!([]));
    env.run(&["authconnection", "show", "google"]).failure(3, "no connection named `google`");
    env.run(&["authconnection", "delete", "google"]).failure(3, "no connection named `google`");
    env.run(&["authconnection", "revoke", "google"]).failure(3, "no connection named `google`");
    env.run_stdin(&["authconnection", "import-token", "google"], r#"{"access_token":"a"}"#).failure(3, "no connection");
    let out = env.path("out.age");
    env.run(&["store", "export", "-o", out.to_str().unwrap(), "--recipient",
              "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"])
        .failure(3, "there is no store at");
    assert_eq!(env.run(&["admin", "token", "list", "--json"]).success().json(), serde_json::json!([]));
    env.run(&["admin", "token", "revoke", "ci"]).failure(3, "no admin token named `ci`");
    env.run(&["cache", "list"]).success();
    env.run(&["cache", "clean"]).success();
    env.run(&["completion", "bash"]).success();
    assert_eq!(files_under(env.dir.path()), Vec::<String>::new(), "a reading verb created files");
}

/// Runs `args` with `--json`, checks the JSON's shape against `tests/snapshots/json/NAME.json`, and returns it.
fn json_of(name: &str, run: Run, failures: &mut Vec<String>) -> serde_json::Value {
    run.success();
    let value = run.json();
    let shape = serde_json::to_string_pretty(&snapshot::json_shape(&value)).unwrap() + "\n";
    if let Err(e) = snapshot::check("json", &format!("{name}.json"), &shape) {
        failures.push(e);
    }
    value
}

#[test]
fn show_and_json_output_have_stable_shapes() {
    let env = env();
    let mut failures = Vec::new();
    let f = &mut failures;
    let create = env.run_stdin(
        &["authconnection", "create", "--name", "google", "--type", "TYPE_OAUTH2", "--provider-url",
          "http://127.0.0.1:9/", "--client-id", "client-1", "--client-secret-stdin", "--json",
          "--token-url", "http://127.0.0.1:9/token"],
        SECRET,
    );
    let created = json_of("authconnection-create", create, f);
    assert_eq!(created["name"], "google");
    assert_eq!(created["endpoints"]["token_url"], "http://127.0.0.1:9/token");
    let imported = json_of("authconnection-import-token", env.run_stdin(
        &["authconnection", "import-token", "google", "--json"],
        r#"{"access_token":"at-secret-value","refresh_token":"rt-secret-value","expires_in":3600,"scope":"a b","realmId":"42"}"#,
    ), f);
    assert_eq!(imported["status"], "authorized");
    assert_eq!(imported["metadata"]["realmId"], "42");
    let updated = json_of("authconnection-update", env.run(&["authconnection", "update", "google", "--client-id",
        "client-2", "--json"]), f);
    assert_eq!(updated["client_id"], "client-2");
    assert_eq!(updated["status"], "authorized");
    let shown = json_of("authconnection-show", env.run(&["authconnection", "show", "google", "--json"]), f);
    assert_eq!(shown, updated);
    let listed = json_of("authconnection-list", env.run(&["authconnection", "list", "--json"]), f);
    assert_eq!(listed[0], shown);
    // The text forms: `show` as aligned lines, `list` into a pipe as tab-separated lines without a header.
    let text = env.run(&["authconnection", "show", "google"]);
    text.success();
    assert!(text.stdout.contains("status:") && text.stdout.contains("authorized") && text.stdout.contains("scopes:"), "{}", text.stdout);
    assert!(!text.stdout.contains("secret-value"), "a token in show: {}", text.stdout);
    let list = env.run(&["authconnection", "list"]).stdout;
    assert_eq!(list.lines().count(), 1, "{list}");
    assert_eq!(list.lines().next().unwrap().split('\t').next(), Some("google"));
    // No revocation endpoint is reachable (127.0.0.1:9 refuses): the tokens go locally.
    let revoked = json_of("authconnection-revoke", env.run(&["authconnection", "revoke", "google", "--json"]), f);
    assert_eq!(revoked["had_tokens"], true);
    assert_eq!(revoked["revoked_at_provider"], false);
    let recipient = json_of("store-recipient", env.run(&["store", "recipient", "--json"]), f);
    let upgrade = json_of("store-upgrade", env.run(&["store", "upgrade", "--json"]), f);
    assert_eq!(upgrade, serde_json::json!({ "upgraded": false, "connections": [] }));
    let bundle = env.path("bundle.age");
    let other = Env::new(BIN);
    let other_key = other.run(&["store", "recipient"]).stdout.trim().to_owned();
    let exported = json_of("store-export", env.run(&["store", "export", "--json", "-o", bundle.to_str().unwrap(),
        "--recipient", &other_key]), f);
    assert_eq!(exported["connections"], 1);
    let imported = json_of("store-import", other.run(&["store", "import", "--json", bundle.to_str().unwrap()]), f);
    assert_eq!(imported["imported"], serde_json::json!(["google"]));
    let rekeyed = json_of("store-rekey", env.run(&["store", "rekey", "--json"]), f);
    assert_eq!(rekeyed["old_recipient"], recipient["recipient"]);
    let deleted = json_of("authconnection-delete", env.run(&["authconnection", "delete", "google", "--json"]), f);
    assert_eq!(deleted["deleted"], true);
    env.run(&["store", "export", "--json", "--recipient", &other_key]).failure(2, "--output");
    // The cache verbs.
    let mut cmd = env.cmd();
    cmd.env("WASM_HOST_CACHE_DIR", env.path("cache-json"));
    let trivial = test_guest("trivial");
    env.run_with(cmd, &["run", trivial.to_str().unwrap()], None).success();
    let mut cmd = env.cmd();
    cmd.env("WASM_HOST_CACHE_DIR", env.path("cache-json"));
    let listing = json_of("cache-list", env.run_with(cmd, &["cache", "list", "--json"], None), f);
    assert_eq!(listing["entries"].as_array().unwrap().len(), 1);
    let mut cmd = env.cmd();
    cmd.env("WASM_HOST_CACHE_DIR", env.path("cache-json"));
    let cleaned = json_of("cache-clean", env.run_with(cmd, &["cache", "clean", "--json"], None), f);
    assert_eq!(cleaned["removed"], 1);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_secret_is_asked_for_without_echo_at_a_terminal() {
    use portable_pty::{native_pty_system, CommandBuilder, PtySize};
    use std::io::{Read, Write};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let env = env();
    let typed = "typed-at-the-terminal-7a1f";
    let pty = native_pty_system().openpty(PtySize { rows: 24, cols: 100, pixel_width: 0, pixel_height: 0 }).unwrap();
    let mut cmd = CommandBuilder::new(BIN);
    cmd.cwd(env.dir.path());
    cmd.env_clear();
    for (k, v) in [("PATH", std::env::var("PATH").unwrap_or_default()), ("HOME", env.path("home").display().to_string()),
                   ("XDG_DATA_HOME", env.path("data").display().to_string()),
                   ("XDG_CONFIG_HOME", env.path("config").display().to_string()),
                   ("XDG_CACHE_HOME", env.path("cache").display().to_string())] {
        cmd.env(k, v);
    }
    cmd.args(["authconnection", "create", "--name", "typed", "--type", "TYPE_OAUTH2", "--provider-url",
              "http://127.0.0.1:9/", "--client-id", "c", "--client-secret-stdin"]);
    let mut child = pty.slave.spawn_command(cmd).unwrap();
    drop(pty.slave);
    let mut reader = pty.master.try_clone_reader().unwrap();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&seen).contains("Client secret for `typed`") {
        assert!(Instant::now() < deadline, "no prompt: {}", String::from_utf8_lossy(&seen));
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.extend(chunk);
        }
    }
    // The prompt is printed before echo goes off: type only once the terminal no longer echoes.
    loop {
        let termios = pty.master.get_termios().expect("termios of the pty");
        if !termios.local_flags.contains(nix::sys::termios::LocalFlags::ECHO) {
            break;
        }
        assert!(Instant::now() < deadline, "echo never went off");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut writer = pty.master.take_writer().unwrap();
    writer.write_all(format!("{typed}\n").as_bytes()).unwrap();
    drop(writer);
    let status = child.wait().unwrap();
    while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(500)) {
        seen.extend(chunk);
    }
    let screen = String::from_utf8_lossy(&seen);
    assert!(status.success(), "create failed: {screen}");
    assert!(!screen.contains(typed), "the secret was echoed: {screen}");
    assert!(screen.contains("created connection `typed`"), "{screen}");
    // What was typed is what was stored.
    let store = wasm_host_store::Store::open(&env.store()).unwrap();
    let keys = wasm_host_store::Keys::load(&env.identity()).unwrap().unwrap();
    let secret = store.secret("typed", wasm_host_store::SecretField::ClientSecret, &keys).unwrap().unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(secret.expose_secret(), typed);
}

/// The entries of a compile cache directory: file name -> size.
fn cache_entries(env: &Env, dir: &Path) -> BTreeMap<String, u64> {
    let mut cmd = env.cmd();
    cmd.env("WASM_HOST_CACHE_DIR", dir);
    let listing = env.run_with(cmd, &["cache", "list", "--json"], None).json();
    listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["file"].as_str().unwrap().to_owned(), e["bytes"].as_u64().unwrap()))
        .collect()
}

#[test]
fn the_compile_cache_keeps_the_most_recently_used_within_its_cap() {
    let env = env();
    let components: Vec<PathBuf> = ["trivial", "token-probe", "http-probe"].map(test_guest).to_vec();
    let run = |dir: &Path, component: &Path, max: Option<u64>| {
        let mut cmd = env.cmd();
        cmd.env("WASM_HOST_CACHE_DIR", dir);
        if let Some(max) = max {
            cmd.env("WASM_HOST_CACHE_MAX", max.to_string());
        }
        env.run_with(cmd, &["run", component.to_str().unwrap(), "--input", "\"ping\""], None)
    };
    // The three entries and their sizes, compiled in a scratch cache.
    let scratch = env.path("scratch");
    let mut names = Vec::new();
    for c in &components {
        let before = cache_entries(&env, &scratch);
        let first = run(&scratch, c, None);
        // Not a terminal: the slow step is announced by one plain line, on the first run only.
        assert!(first.stderr.contains("compiling ") && first.stderr.contains("(first run; cached for the next ones)"), "{}", first.stderr);
        assert!(!run(&scratch, c, None).stderr.contains("compiling "), "announced a compile on a cached run");
        let after = cache_entries(&env, &scratch);
        let new: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).cloned().collect();
        assert_eq!(new.len(), 1, "{after:?}");
        names.push(new[0].clone());
    }
    let sizes = cache_entries(&env, &scratch);
    let size = |i: usize| sizes[&names[i]];
    let slack = (0..3).map(size).min().unwrap() / 2;
    let (a, b, c) = (0, 1, 2);

    let cache = env.path("capped");
    run(&cache, &components[b], None);
    run(&cache, &components[a], None);
    // Room for two of them: compiling C evicts B, the least recently used.
    // (http-probe and token-probe answer "ping" with a function error: what matters here is the compile.)
    run(&cache, &components[c], Some(size(a) + size(c) + slack));
    let kept = cache_entries(&env, &cache);
    assert_eq!(kept.keys().cloned().collect::<Vec<_>>(), sorted(&[&names[a], &names[c]]), "{kept:?}");
    // Using A makes it the most recent: compiling B again now evicts C, not A.
    run(&cache, &components[a], None).success();
    run(&cache, &components[b], Some(size(a) + size(b) + slack));
    let kept = cache_entries(&env, &cache);
    assert_eq!(kept.keys().cloned().collect::<Vec<_>>(), sorted(&[&names[a], &names[b]]), "{kept:?}");
    // An entry larger than the cap on its own is kept, alone.
    run(&cache, &components[c], Some(1));
    assert_eq!(cache_entries(&env, &cache).keys().cloned().collect::<Vec<_>>(), vec![names[c].clone()]);
    let mut cmd = env.cmd();
    cmd.env("WASM_HOST_CACHE_DIR", &cache);
    env.run_with(cmd, &["cache", "clean"], None).success();
    assert!(cache_entries(&env, &cache).is_empty());
}

fn sorted(names: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The commands of the README's first ```sh block.
fn readme_commands(project: &Path) -> Vec<String> {
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    let block = readme.split("```sh\n").nth(1).expect("a sh block").split("```").next().unwrap();
    block.lines().filter(|l| !l.trim().is_empty()).map(String::from).collect()
}

/// Runs each README command in `project` with `sh -c`, the binary first on PATH, and returns the last output.
/// HOME stays the real one (rustup and cargo live there); wasm-host's own files go to the env.
fn run_readme(env: &Env, project: &Path, extra_env: &[(&str, PathBuf)]) -> Run {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut last = None;
    for line in readme_commands(project) {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(&line).current_dir(project).env("PATH", &path)
            .env("XDG_DATA_HOME", env.path("data"))
            .env("XDG_CONFIG_HOME", env.path("config"))
            .env("XDG_CACHE_HOME", env.path("cache"));
        // The test's cargo settings are for the host build, not for this project's.
        for (key, _) in std::env::vars() {
            if (key.starts_with("CARGO_") && key != "CARGO_HOME") || key.starts_with("RUSTC") || key == "RUSTFLAGS" || key.starts_with("WASM_HOST_") {
                cmd.env_remove(key);
            }
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_eq!(run.code, 0, "`{line}` failed:\n{}\n{}", run.stdout, run.stderr);
        last = Some(run);
    }
    last.expect("at least one command")
}

#[test]
fn a_new_rust_function_builds_and_runs_as_its_readme_says() {
    let env = env();
    let project = env.path("hello-fn");
    env.run(&["new", "hello-fn", "--lang", "rust", "--dir", project.to_str().unwrap()]).success();
    assert_eq!(
        std::fs::read_to_string(project.join("wit/authconnection.wit")).unwrap(),
        std::fs::read_to_string(repo().join("wit/authconnection.wit")).unwrap(),
        "the project's WIT is not the one the binary implements"
    );
    assert!(project.join("hello-fn.toml").exists());
    // The project's target/ is kept between test runs (a symlink into the workspace's), so the build is warm.
    let shared = wasm_host_tests::target_dir().join("scaffold/rust");
    std::fs::create_dir_all(&shared).unwrap();
    std::os::unix::fs::symlink(&shared, project.join("target")).unwrap();
    let out = run_readme(&env, &project, &[]);
    assert_eq!(out.stdout.trim(), r#"{"hello":{"name":"world"}}"#);
    // A second `new` into a directory that is not empty is refused, and changes nothing.
    env.run(&["new", "hello-fn", "--dir", project.to_str().unwrap()]).failure(2, "exists and is not empty");
    env.run(&["new", "Bad_Name"]).failure(2, "the function's name");
}

#[test]
fn a_new_javascript_function_builds_and_runs_as_its_readme_says() {
    let env = env();
    let project = env.path("hello-js");
    env.run(&["new", "hello-js", "--lang", "js", "--dir", project.to_str().unwrap()]).success();
    let out = run_readme(
        &env,
        &project,
        &[("WASM_HOST_JS_TOOLS", wasm_host_tests::js_tools()), ("WASM_HOST_CACHE_DIR", wasm_host_tests::shared_cache())],
    );
    assert_eq!(out.stdout.trim(), r#"{"hello":{"name":"world"}}"#);
}

/// `admin token`: `create` prints a prefixed token once and stores only its hash; `list` shows name, scope and
/// time, never the token; a name is taken once; `revoke` removes it, and a second revoke finds nothing.
#[test]
fn admin_tokens_are_printed_once_listed_without_the_token_and_revoked() {
    let env = env();
    let mut failures = Vec::new();
    let f = &mut failures;
    let ops = env.run(&["admin", "token", "create", "--name", "ops"]);
    ops.success();
    let ops_token = ops.stdout.trim().to_owned();
    assert!(ops_token.starts_with("wha_") && ops_token.len() == 47 && ops.stdout.lines().count() == 1, "{}", ops.stdout);
    assert!(ops.stderr.contains("shown only this once") && !ops.stderr.contains(&ops_token), "{}", ops.stderr);
    let ci = json_of("admin-token-create", env.run(&["admin", "token", "create", "--name", "ci", "--read-only", "--json"]), f);
    assert_eq!((ci["name"].as_str(), ci["scope"].as_str()), (Some("ci"), Some("read-only")), "{ci}");
    let ci_token = ci["token"].as_str().unwrap().to_owned();
    assert!(ci_token.starts_with("wha_") && ci_token != ops_token, "{ci}");

    env.run(&["admin", "token", "create", "--name", "ops"]).failure(4, "an admin token named `ops` already exists");
    env.run(&["admin", "token", "create", "--name", "Not_A_Name"]).failure(2, "Not_A_Name");
    env.run(&["admin", "token", "revoke", "Bad"]).failure(2, "Bad");

    let listed = json_of("admin-token-list", env.run(&["admin", "token", "list", "--json"]), f);
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert_eq!((listed[0]["name"].as_str(), listed[0]["scope"].as_str()), (Some("ci"), Some("read-only")));
    assert_eq!((listed[1]["name"].as_str(), listed[1]["scope"].as_str()), (Some("ops"), Some("admin")));
    assert_eq!(listed[0]["created_at"], ci["created_at"]);
    let text = env.run(&["admin", "token", "list"]);
    text.success();
    assert_eq!(text.stdout.lines().map(|l| l.split('\t').next().unwrap()).collect::<Vec<_>>(), ["ci", "ops"]);
    // Neither token is anywhere but in create's answer: not in list, not in the store file.
    let store = std::fs::read(env.store()).unwrap();
    for token in [&ops_token, &ci_token] {
        let random = &token["wha_".len()..];
        for out in [&listed.to_string(), &text.stdout, &text.stderr] {
            assert!(!out.contains(random), "a token in list output: {out}");
        }
        assert!(!store.windows(random.len()).any(|w| w == random.as_bytes()), "a token in the store file");
    }

    let revoked = json_of("admin-token-revoke", env.run(&["admin", "token", "revoke", "ops", "--json"]), f);
    assert_eq!(revoked, serde_json::json!({ "name": "ops", "revoked": true }));
    env.run(&["admin", "token", "revoke", "ops"]).failure(3, "no admin token named `ops`");
    let listed = env.run(&["admin", "token", "list", "--json"]).json();
    assert_eq!(listed.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect::<Vec<_>>(), ["ci"]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
