//! Several hosts on one PostgreSQL store: the real `wasm-host` binary, the real test OpenID provider, a real
//! PostgreSQL (scripts/postgres.sh starts a throwaway cluster; each test makes a database of its own). Each
//! process is a host: it shares nothing with the others but the database and the identity.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasm_host_tests::postgres::{postgres_script, Database, OwnCluster};
use wasm_host_tests::provider::{Provider, ProviderConfig};
use wasm_host_tests::{http, test_guest, Env};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");

/// An env on `db` with connection `c` authorized at `provider` (access tokens live 2 s, rotation on), and the
/// token-probe function compiled once (asking for a connection it is not granted: no refresh).
fn authorized_on(db: &Database, provider: &Provider) -> Env {
    let env = Env::on_postgres(BIN, db.url());
    env.create_for("c", provider).success();
    env.authorize("c", &[], true).0.success();
    env.run(&["run", test_guest("token-probe").to_str().unwrap(), "--input", "{\"connection\":\"c\"}"]).success();
    env
}

/// The arguments of a `run` of the token probe on connection `c`, refreshing 1 s before expiry.
fn probe_args() -> Vec<String> {
    let guest = test_guest("token-probe");
    let args = ["run", guest.to_str().unwrap(), "--input", "{\"connection\":\"c\"}", "--allow-connection", "c"];
    args.into_iter().chain(["--refresh-margin", "1s"]).map(String::from).collect()
}

fn probe(env: &Env) -> wasm_host_tests::Run {
    env.run(&probe_args().iter().map(String::as_str).collect::<Vec<_>>())
}

/// A host running the probe in the background, its output discarded (the test kills it).
fn spawn_probe(env: &Env) -> std::process::Child {
    let mut cmd = env.cmd();
    cmd.args(probe_args()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    cmd.spawn().unwrap()
}

#[test]
fn four_hosts_on_an_expired_token_cause_one_refresh() {
    let db = Database::new("four_hosts");
    let provider = Provider::start(ProviderConfig { access_ttl: 2, rotate: true, ..Default::default() });
    let env = authorized_on(&db, &provider);
    assert_eq!(provider.refreshes(), 0);
    Provider::wait(Duration::from_millis(2200));
    // A provider that takes its time keeps the race open; the new token outlives the test.
    provider.configure(serde_json::json!({ "tokenDelayMs": 300, "accessTtl": 3600 }));
    let runs: Vec<_> = std::thread::scope(|s| {
        let hosts: Vec<_> = (0..4).map(|_| s.spawn(|| probe(&env))).collect();
        hosts.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut tokens = std::collections::HashSet::new();
    for run in &runs {
        tokens.insert(run.success().json()["access_token"].as_str().expect("a token, not an error").to_owned());
    }
    assert_eq!(provider.refreshes(), 1, "exactly one refresh across four hosts");
    assert_eq!(tokens.len(), 1, "every host got the one new token");
    let (status, body) = http::get_bearer(&format!("{}/me", provider.issuer), tokens.iter().next().unwrap());
    assert_eq!(status, 200, "{body}");
}

/// A host caching a token (a broker in this process) sees a change another host's CLI makes: the change signal
/// (LISTEN/NOTIFY) moves and its next call hands out the new token.
#[test]
fn a_change_by_the_cli_is_seen_by_a_running_host() {
    use wasm_host_runtime::TokenBroker;
    let db = Database::new("cli_change");
    let env = Env::on_postgres(BIN, db.url());
    env.connection_with_token("c", "first-token");
    let store = Arc::new(wasm_host_store::Store::open(&env.store()).unwrap());
    let keys = Arc::new(wasm_host_store::Keys::load(&env.identity()).unwrap().unwrap());
    let broker = TokenBroker::new(store.clone(), keys);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let token = |b: &TokenBroker| runtime.block_on(b.token("c")).unwrap().access_token().to_owned();
    assert_eq!(token(&broker), "first-token");
    let before = store.generation().expect("the PostgreSQL store has a change signal");
    let changed_at = Instant::now();
    env.import_token("c", r#"{"access_token":"second-token","token_type":"Bearer"}"#).success();
    let deadline = Instant::now() + Duration::from_secs(10);
    while token(&broker) != "second-token" {
        assert!(Instant::now() < deadline, "the running host never saw the change");
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("the change was seen {:?} after the CLI started", changed_at.elapsed());
    assert!(store.generation().unwrap() > before, "the change signal moved");
}

/// A host SIGKILLed while the provider holds its refresh back: its lease lapses (nothing renews it) and another
/// host refreshes; nothing is lost.
#[test]
fn a_host_killed_mid_refresh_is_taken_over_once_its_lease_lapses() {
    let db = Database::new("killed_host");
    let provider = Provider::start(ProviderConfig { access_ttl: 2, rotate: true, ..Default::default() });
    let env = authorized_on(&db, &provider);
    Provider::wait(Duration::from_millis(2200));
    provider.configure(serde_json::json!({ "tokenDelayMs": 1500 }));
    let mut host = spawn_probe(&env);
    // Wait for the state: the dying host holds the lease.
    let leased = Instant::now() + Duration::from_secs(30);
    while lease_holders(&db) == 0 {
        assert!(Instant::now() < leased, "the host never took the lease");
        std::thread::sleep(Duration::from_millis(50));
    }
    host.kill().unwrap(); // SIGKILL
    host.wait().unwrap();
    Provider::wait(Duration::from_millis(1500)); // the provider finishes whatever it was doing
    provider.configure(serde_json::json!({ "tokenDelayMs": 0, "accessTtl": 3600 }));
    let started = Instant::now();
    let t = probe(&env).success().json();
    eprintln!("the next host got a token {:?} after the kill (the lease lapses 10 s after its last renewal)", started.elapsed());
    let token = t["access_token"].as_str().expect("a token after the lease lapsed");
    let (status, body) = http::get_bearer(&format!("{}/me", provider.issuer), token);
    assert_eq!(status, 200, "{body}");
    assert_eq!(provider.refreshes(), 1, "the killed request never reached the provider's handler");
    let listed = env.run(&["authconnection", "list", "--json"]).success().json();
    assert_eq!(listed[0]["status"], "authorized");
}

/// Every secret of connection `name` in the clear, by field.
fn secrets(store: &wasm_host_store::Store, keys: &wasm_host_store::Keys, name: &str) -> Vec<(&'static str, String)> {
    use secrecy::ExposeSecret;
    wasm_host_store::SecretField::ALL
        .into_iter()
        .filter_map(|f| store.secret(name, f, keys).unwrap().map(|v| (f.as_str(), v.expose_secret().to_owned())))
        .collect()
}

/// A host SIGKILLed after the provider rotated the refresh token (it issued new tokens, then held its answer)
/// and before the host stored them. The host that takes over once the lease lapses sends the refresh token it
/// finds; the provider refuses it (rotated) and the connection ends `needs-authorization` with every stored
/// secret kept, never silently broken (the guarantee redb gives, FAULTS.md); another connection is untouched;
/// authorizing again brings it back.
#[test]
fn a_host_killed_after_the_provider_rotated_ends_needing_authorization_losing_nothing() {
    use wasm_host_store::{Keys, Status, Store};
    let db = Database::new("killed_rotated");
    let provider = Provider::start(ProviderConfig { access_ttl: 2, rotate: true, ..Default::default() });
    let env = authorized_on(&db, &provider);
    env.connection_with_token("other", "other-token");
    let store = Store::open(&env.store()).unwrap();
    let keys = Keys::load(&env.identity()).unwrap().unwrap();
    let (before, other_before) = (secrets(&store, &keys, "c"), (store.get("other").unwrap(), secrets(&store, &keys, "other")));
    assert!(before.iter().any(|(f, _)| *f == "refresh_token"), "{:?}", before.iter().map(|(f, _)| f).collect::<Vec<_>>());
    Provider::wait(Duration::from_millis(2200));
    // The provider rotates, then holds its answer: the host dies with the new tokens unread.
    provider.configure(serde_json::json!({ "tokenResponseDelayMs": 3000 }));
    let mut host = spawn_probe(&env);
    let sent = Instant::now() + Duration::from_secs(30);
    while provider.stats()["tokenInFlight"].as_u64().unwrap_or(0) == 0 {
        assert!(Instant::now() < sent, "the host never sent its refresh");
        std::thread::sleep(Duration::from_millis(20));
    }
    host.kill().unwrap(); // SIGKILL
    host.wait().unwrap();
    provider.wait_idle();
    assert_eq!(provider.refreshes(), 1, "the provider handled the killed host's refresh (and rotated)");
    assert_eq!(secrets(&store, &keys, "c"), before, "the killed host stored nothing");
    provider.configure(serde_json::json!({ "tokenResponseDelayMs": 0, "accessTtl": 3600 }));

    let started = Instant::now();
    let t = probe(&env).success().json();
    eprintln!("the next host answered {:?} after the kill (the lease lapses 10 s after its last renewal)", started.elapsed());
    assert_eq!(t["error"], "needs-authorization", "a rotated refresh token was lost silently: {t}");
    assert_eq!(provider.refreshes(), 2, "the old refresh token was sent once more, and refused");
    assert_eq!(store.get("c").unwrap().unwrap().status, Status::NeedsAuthorization);
    assert_eq!(secrets(&store, &keys, "c"), before, "a refused refresh keeps every stored secret");
    assert_eq!((store.get("other").unwrap(), secrets(&store, &keys, "other")), other_before, "another connection moved");
    let again = probe(&env).success().json();
    assert_eq!(again["error"], "needs-authorization", "no further refresh is tried: {again}");
    assert_eq!(provider.refreshes(), 2);

    env.authorize("c", &[], true).0.success();
    let token = probe(&env).success().json()["access_token"].as_str().expect("a token once authorized again").to_owned();
    let (status, body) = http::get_bearer(&format!("{}/me", provider.issuer), &token);
    assert_eq!(status, 200, "{body}");
}

/// Unexpired leases in `db`, read behind the store's back.
fn lease_holders(db: &Database) -> usize {
    let store = wasm_host_store::Store::open(std::path::Path::new(&db.url())).unwrap();
    // A lease is visible through the store's own interface: another holder is refused.
    match store.try_lease("c", "probe-0", 1).unwrap() {
        wasm_host_store::Lease::Held { .. } => 1,
        wasm_host_store::Lease::Acquired => {
            store.release_lease("c", "probe-0").unwrap();
            0
        }
    }
}

/// A database that cannot be reached: a clear message naming host, port and database, never the password, and
/// its own exit code.
#[test]
fn an_unreachable_database_is_a_clear_error_without_the_password() {
    let env = Env::on_postgres(BIN, "postgres://app:pw-never-printed@127.0.0.1:1/hosts".into());
    let run = env.run(&["authconnection", "list"]);
    run.failure(22, "cannot reach the store postgres://app@127.0.0.1:1/hosts");
    assert!(!run.stderr.contains("pw-never-printed") && !run.stdout.contains("pw-never-printed"), "{}", run.stderr);
}

/// `store migrate` on an empty database makes the tables; again, it has nothing to do; a version-1 database gets
/// the admin tokens', the audit log's and the pending authorizations' tables, a version-2 one the last two, a
/// version-3 one the pending authorizations'.
#[test]
fn store_migrate_creates_then_finds_the_schema_current() {
    let current = Some(wasm_host_store::PG_SCHEMA_VERSION);
    let db = Database::new("migrate");
    let env = Env::on_postgres(BIN, db.url());
    let first = env.run(&["store", "migrate", "--json"]).success().json();
    assert_eq!((first["backend"].as_str(), first["from"].as_u64(), first["to"].as_u64()), (Some("postgres"), Some(0), current));
    let again = env.run(&["store", "migrate"]).success().stdout.clone();
    assert!(again.contains("nothing to migrate"), "{again}");

    // A database as version 1 left it (before admin tokens): migrations 2 to 4 add their tables, nothing else moves.
    db.execute(
        "DROP TABLE wasm_host_admin_tokens; DROP TABLE wasm_host_audit; DROP TABLE wasm_host_authorization_requests; \
         UPDATE wasm_host_meta SET value = '1' WHERE key = 'schema_version'",
    );
    let second = env.run(&["store", "migrate", "--json"]).success().json();
    assert_eq!((second["from"].as_u64(), second["to"].as_u64()), (Some(1), current));
    env.run(&["admin", "token", "create", "--name", "ops"]).success();
    let listed = env.run(&["admin", "token", "list", "--json"]).success().json();
    assert_eq!(listed[0]["name"], "ops", "{listed}");

    // As version 2 left it (before the audit log): migrations 3 and 4 add it and the pending authorizations'.
    db.execute(
        "DROP TABLE wasm_host_audit; DROP TABLE wasm_host_authorization_requests; \
         UPDATE wasm_host_meta SET value = '2' WHERE key = 'schema_version'",
    );
    let third = env.run(&["store", "migrate", "--json"]).success().json();
    assert_eq!((third["from"].as_u64(), third["to"].as_u64()), (Some(2), current));
    assert_eq!(env.run(&["admin", "audit", "--json"]).success().json(), serde_json::json!([]));
    // As version 3 left it (before pending authorizations): migration 4 adds their table.
    db.execute("DROP TABLE wasm_host_authorization_requests; UPDATE wasm_host_meta SET value = '3' WHERE key = 'schema_version'");
    let fourth = env.run(&["store", "migrate", "--json"]).success().json();
    assert_eq!((fourth["from"].as_u64(), fourth["to"].as_u64()), (Some(3), current));
    db.execute("SELECT count(*) FROM wasm_host_authorization_requests");
    assert_eq!(env.run(&["admin", "token", "list", "--json"]).success().json(), listed);
}

/// PostgreSQL stopped under a running host: its calls get `unavailable` naming the database (not a hang, not
/// `internal`); started again, the host recovers by itself, its token intact, and sees changes again.
#[test]
fn a_database_restart_is_unavailable_then_recovered_by_itself() {
    use wasm_host_runtime::{TokenBroker, TokenError};
    let cluster = OwnCluster::start();
    let env = Env::on_postgres(BIN, cluster.url.clone());
    env.connection_with_token("c", "first-token");
    let store = Arc::new(wasm_host_store::Store::open(&env.store()).unwrap());
    let keys = Arc::new(wasm_host_store::Keys::load(&env.identity()).unwrap().unwrap());
    let broker = TokenBroker::new(store.clone(), keys);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let call = || runtime.block_on(broker.token("c")).map(|t| t.access_token().to_owned());
    assert_eq!(call().unwrap(), "first-token");

    postgres_script(&["down", &cluster.dir]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let outage = loop {
        match call() {
            // Still cached: the host revalidates within a second.
            Ok(_) => {}
            Err(TokenError::Unavailable(message)) => break message,
            Err(other) => panic!("not unavailable: {other:?}"),
        }
        assert!(Instant::now() < deadline, "calls never reported the outage");
        std::thread::sleep(Duration::from_millis(20));
    };
    let port = cluster.url.split(':').nth(2).unwrap().split('/').next().unwrap();
    assert!(outage.contains(&format!("127.0.0.1:{port}")), "{outage}");

    postgres_script(&["up", &cluster.dir]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match call() {
            Ok(token) => break assert_eq!(token, "first-token"),
            Err(TokenError::Unavailable(_)) => {}
            Err(other) => panic!("after the restart: {other:?}"),
        }
        assert!(Instant::now() < deadline, "the host never recovered");
        std::thread::sleep(Duration::from_millis(20));
    }
    env.import_token("c", r#"{"access_token":"second-token","token_type":"Bearer"}"#).success();
    let deadline = Instant::now() + Duration::from_secs(30);
    while call().unwrap() != "second-token" {
        assert!(Instant::now() < deadline, "the host never saw a change made after the restart");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server that accepts connections and never answers (a stalled database): the command gives up after the
/// bounded wait with the unreachable-database error, never hangs.
#[test]
fn a_database_that_never_answers_is_an_error_after_a_bounded_wait() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds every connection, reading nothing; ends with the test.
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    let env = Env::on_postgres(BIN, format!("postgres://app@127.0.0.1:{port}/hosts"));
    let started = Instant::now();
    let run = env.run(&["authconnection", "list"]);
    run.failure(22, &format!("cannot reach the store postgres://app@127.0.0.1:{port}/hosts"));
    eprintln!("gave up after {:?}", started.elapsed());
}

/// A database the server does not have (or a user it does not know) is refused for good: exit 5, saying what to
/// check, not the retryable exit 22.
#[test]
fn a_database_the_server_refuses_is_not_called_retryable() {
    let cluster = wasm_host_tests::postgres::cluster_url();
    let (server, _) = cluster.rsplit_once('/').unwrap();
    let env = Env::on_postgres(BIN, format!("{server}/no_such_database_here"));
    env.run(&["authconnection", "list"])
        .failure(5, "refused the store")
        .failure(5, "check the user, password and database name");
}

/// One `wasm-host serve` on the env's store, on free loopback ports; killed by its PID when dropped.
struct ServeHost {
    child: std::process::Child,
    url: String,
    ops: String,
}

impl ServeHost {
    fn start(env: &Env, args: &[&str]) -> Self {
        use std::io::BufRead;
        let mut cmd = env.cmd();
        cmd.env("WASM_HOST_CACHE_DIR", wasm_host_tests::shared_cache())
            .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = |prefix: &str| {
            let mut text = String::new();
            out.read_line(&mut text).unwrap();
            text.trim().strip_prefix(prefix).unwrap_or_else(|| panic!("serve did not start: {text:?}")).to_owned()
        };
        let (url, ops) = (line("listening on "), line("operations on "));
        ServeHost { child, url, ops }
    }

    /// The value of one metric series; 0 when absent.
    fn metric(&self, series: &str) -> f64 {
        let text = wasm_host_tests::reqwest::blocking::get(format!("{}/metrics", self.ops)).unwrap().text().unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')).map(|v| v.trim().parse().unwrap()))
            .unwrap_or(0.0)
    }
}

impl Drop for ServeHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three `serve` hosts on one database behind the test's own round-robin client, for a minute, while the
/// provider's tokens live 3 s (rotation on): every request answers 200 with a token the provider accepts, each
/// refresh is made by one host only, and there is at most one per token lifetime.
#[test]
fn three_serve_hosts_for_a_minute_fail_no_request_and_refresh_once_per_expiry() {
    let db = Database::new("three_serve");
    let provider = Provider::start(ProviderConfig { access_ttl: 3, rotate: true, ..Default::default() });
    let env = Env::on_postgres(BIN, db.url());
    env.create_for("oidc", &provider).success();
    env.authorize("oidc", &[], true).0.success();
    let dir = env.path("functions");
    std::fs::create_dir_all(&dir).unwrap();
    let userinfo = dir.join("userinfo.wasm");
    std::fs::copy(wasm_host_tests::example("userinfo"), &userinfo).unwrap();
    let manifest = "[grants]\nconnections = [\"oidc\"]\nhosts = [\"127.0.0.1\"]\n[limits]\nrefresh-margin = \"1s\"\n";
    std::fs::write(dir.join("userinfo.toml"), manifest).unwrap();
    let args = ["--refresh-margin", "1s", "--refresh-ahead", "off", userinfo.to_str().unwrap()];
    let hosts: Vec<ServeHost> = (0..3).map(|_| ServeHost::start(&env, &args)).collect();
    let input = serde_json::json!({ "connection": "oidc", "url": format!("{}/me", provider.issuer) }).to_string();
    let refreshes_before = provider.refreshes();

    let run_for = Duration::from_secs(60);
    let started = Instant::now();
    let client = wasm_host_tests::reqwest::blocking::Client::new();
    let (ok, failed): (Vec<u64>, Vec<Vec<String>>) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..6)
            .map(|w| {
                let (client, input, hosts) = (&client, &input, &hosts);
                s.spawn(move || {
                    let (mut ok, mut failed, mut i) = (0u64, Vec::new(), w);
                    while started.elapsed() < run_for {
                        let url = format!("{}/userinfo", hosts[i % hosts.len()].url);
                        i += 1;
                        match client.post(&url).body(input.clone()).send() {
                            Ok(r) if r.status() == 200 => ok += 1,
                            Ok(r) => failed.push(format!("{url}: {} {}", r.status(), r.text().unwrap_or_default())),
                            Err(e) => failed.push(format!("{url}: {e}")),
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).unzip()
    });
    let failed: Vec<String> = failed.into_iter().flatten().collect();
    let ok: u64 = ok.iter().sum();
    let at_provider = provider.refreshes() - refreshes_before;
    let by_hosts: f64 = hosts.iter().map(|h| h.metric(r#"wasm_host_token_refreshes_total{outcome="ok"}"#)).sum();
    let refused: f64 = hosts.iter().map(|h| h.metric(r#"wasm_host_token_refreshes_total{outcome="failed"}"#)).sum();
    eprintln!("{ok} requests answered 200 in {run_for:?} across 3 hosts; {at_provider} refreshes at the provider");
    assert!(failed.is_empty(), "{} failed requests, e.g. {:?}", failed.len(), &failed[..failed.len().min(5)]);
    assert!(ok > 0);
    assert_eq!(at_provider as f64, by_hosts, "every refresh the provider saw was one host's, none failed");
    assert_eq!(refused, 0.0);
    // A token is handed out for 2 s (3 s less the 1 s margin): one refresh per expiry is at most one per 2 s.
    let expiries = run_for.as_secs() / 2 + 2;
    assert!(at_provider <= expiries, "{at_provider} refreshes for at most {expiries} expiries");
    assert!(at_provider >= 1, "the tokens expired during the run");
}
