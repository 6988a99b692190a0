//! The benchmark suite behind BENCHMARKS.md: every path a function and an operator take, each beside a
//! baseline measured in the same run.
//!
//!   cargo bench --bench suite                # the full run (minutes); prints a Markdown table
//!   cargo bench --bench suite -- token       # only the scenarios whose name contains `token`
//!   cargo test --bench suite                 # smoke: every scenario once, small, to show it still runs
//!
//! Each figure is the median, min and max over rounds; a round averages many operations where one is too short
//! to time alone. Nothing here asserts a time: the numbers are for people, the smoke run is for CI. Everything
//! talks to 127.0.0.1 only: the OpenID provider of the tests (npm oidc-provider), local HTTP servers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasm_host_runtime::{
    CompileCache, ConnectionGrants, FunctionHost, HostOptions, InvocationSettings, IssuedToken, LoadedFunction,
    OriginBinding, OriginBindings, TokenBroker,
};
use wasm_host_store::secrecy::SecretString;
use wasm_host_store::{now_unix, Endpoints, Keys, NewConnection, NewTokens, Store, TYPE_OAUTH2};
use wasm_host_tests::api::Api;
use wasm_host_tests::provider::{Provider, ProviderConfig};
use wasm_host_tests::{js_build, shared_cache, test_guest, target_dir, Env};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");

/// How much work a run does: the full run, or the smoke run CI makes.
#[derive(Clone, Copy)]
struct Scale {
    full: bool,
    rounds: usize,
}

impl Scale {
    fn pick<T>(&self, full: T, smoke: T) -> T {
        if self.full { full } else { smoke }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--bench");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    // BENCH_ROUNDS: more rounds than the default 15, for a profiler to sample a short path often enough.
    let rounds = std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(15);
    let scale = Scale { full, rounds: if full { rounds } else { 2 } };
    let scenarios: Vec<(&str, fn(Scale) -> Vec<Row>)> = vec![
        ("token-call-rust", token_call_rust),
        ("token-call-js", token_call_js),
        ("invocation", invocation),
        ("invocations-per-second", invocations_per_second),
        ("run-process", run_process),
        ("first-run", first_run),
        ("store-growth", store_growth),
        ("refresh-storm", refresh_storm),
        ("bound-request", bound_request),
        ("serve-refresh-storm", serve_refresh_storm),
        ("hosts-refresh-storm", hosts_refresh_storm),
        ("list-backends", list_backends),
        ("admin-list", admin_list),
        ("remote-authorize", remote_authorize),
    ];
    println!("| scenario | path | median | min | max | baseline | baseline median (min–max) |");
    println!("|---|---|---|---|---|---|---|");
    let mut out = String::new();
    for (name, run) in scenarios {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        eprintln!("running {name}{}", if full { "" } else { " (smoke)" });
        for row in run(scale) {
            let line = row.markdown(name);
            println!("{line}");
            out.push_str(&line);
            out.push('\n');
        }
    }
    if full {
        let path = target_dir().join("bench-results.md");
        std::fs::write(&path, out).expect("write the results");
        eprintln!("results also in {}", path.display());
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Figures

/// Median, min and max of samples in one unit.
#[derive(Clone, Copy)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(mut samples: Vec<f64>) -> Self {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
        Self { median: samples[samples.len() / 2], min: samples[0], max: samples[samples.len() - 1] }
    }

    /// A percentile of raw samples (for latency distributions), reported as a single figure.
    fn percentile(samples: &[f64], p: f64) -> f64 {
        let mut s = samples.to_vec();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        s[((s.len() as f64 - 1.0) * p).round() as usize]
    }
}

struct Row {
    path: String,
    unit: &'static str,
    figure: Stats,
    baseline: Option<(String, Stats)>,
}

impl Row {
    fn new(path: impl Into<String>, unit: &'static str, figure: Stats) -> Self {
        Self { path: path.into(), unit, figure, baseline: None }
    }

    fn against(mut self, name: impl Into<String>, stats: Stats) -> Self {
        self.baseline = Some((name.into(), stats));
        self
    }

    fn markdown(&self, scenario: &str) -> String {
        let f = |v: f64| fmt(v, self.unit);
        let baseline = match &self.baseline {
            Some((name, b)) => format!("{name} | {} ({}–{})", f(b.median), f(b.min), f(b.max)),
            None => "— | —".to_owned(),
        };
        format!(
            "| {scenario} | {} | {} | {} | {} | {baseline} |",
            self.path,
            f(self.figure.median),
            f(self.figure.min),
            f(self.figure.max)
        )
    }
}

fn fmt(v: f64, unit: &str) -> String {
    match unit {
        "s" if v < 1e-3 => format!("{:.2} µs", v * 1e6),
        "s" if v < 1.0 => format!("{:.2} ms", v * 1e3),
        "s" => format!("{v:.2} s"),
        "B" if v >= 1024.0 * 1024.0 => format!("{:.1} MiB", v / 1024.0 / 1024.0),
        "B" if v >= 1024.0 => format!("{:.1} KiB", v / 1024.0),
        "/s" => format!("{v:.0}/s"),
        _ => format!("{v:.3} {unit}"),
    }
}

fn rounds(n: usize, mut f: impl FnMut() -> f64) -> Stats {
    Stats::of((0..n).map(|_| f()).collect())
}

// ---------------------------------------------------------------------------------------------------------------
// Set-up shared by the in-process scenarios

/// A store with `count` authorized connections named c0, c1, ... (tokens valid for a day), in `dir`, sealed
/// to the identity `dir/identity.txt`.
fn store_with(dir: &Path, count: usize) -> (Arc<Store>, Arc<Keys>) {
    let keys = Arc::new(Keys::create(&dir.join("identity.txt")).unwrap());
    let store = Arc::new(Store::open(&dir.join("store.redb")).unwrap());
    for i in 0..count {
        let name = format!("c{i}");
        store.create(connection(&name, "https://p.example/"), &SecretString::from("client-secret"), &keys).unwrap();
        put_token(&store, &keys, &name, &format!("at-{i:08}-0123456789abcdef0123456789abcdef"), now_unix() + 86_400);
    }
    (store, keys)
}

fn connection(name: &str, provider: &str) -> NewConnection {
    NewConnection {
        name: name.into(),
        kind: TYPE_OAUTH2.into(),
        provider_url: provider.into(),
        issuer_url: None,
        client_id: "client".into(),
        endpoints: Endpoints::default(),
        expose_refresh_token: false,
    }
}

fn put_token(store: &Store, keys: &Keys, name: &str, token: &str, expires_at: i64) {
    store
        .put_tokens(
            name,
            NewTokens {
                expires_at: Some(expires_at),
                scopes: vec!["openid".into(), "email".into()],
                ..NewTokens::bearer(&SecretString::from(token))
            },
            keys,
        )
        .unwrap();
}

fn host(store: Arc<Store>, keys: Arc<Keys>, options: HostOptions) -> FunctionHost {
    let broker = Arc::new(TokenBroker::new(store, keys));
    FunctionHost::with_options(broker, Some(CompileCache::new(target_dir().join("bench-compile-cache"))), options)
        .unwrap()
}

fn constant_token() -> Arc<IssuedToken> {
    Arc::new(IssuedToken {
        access_token: SecretString::from("at-00000000-0123456789abcdef0123456789abcdef"),
        token_type: "Bearer".into(),
        expires_at: Some(now_unix() + 86_400),
        refresh_token: None,
        scopes: vec!["openid".into(), "email".into()],
        metadata: vec![],
        expires_at_text: Some(wasm_host_store::rfc3339(now_unix() + 86_400)),
        refreshed_at: None,
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn grants(name: &str) -> InvocationSettings {
    InvocationSettings { grants: ConnectionGrants::from_names([name]), ..Default::default() }
}

/// Seconds per `get-connection-token` call: an invocation making `n` calls minus one making none, per call.
fn per_call(rt: &tokio::runtime::Runtime, host: &FunctionHost, f: &LoadedFunction, n: u64) -> f64 {
    let settings = grants("c0");
    let time = |n: u64| {
        let input = format!(r#"{{"token_loop":"c0","n":{n}}}"#);
        let started = Instant::now();
        rt.block_on(host.invoke(f, &input, &settings)).unwrap().unwrap();
        started.elapsed().as_secs_f64()
    };
    let empty = time(0);
    (time(n) - empty).max(0.0) / n as f64
}

// ---------------------------------------------------------------------------------------------------------------
// Scenarios

fn token_call_rust(scale: Scale) -> Vec<Row> {
    let dir = tempfile::tempdir().unwrap();
    let (store, keys) = store_with(dir.path(), 1);
    let n = scale.pick(10_000, 100);
    let rt = runtime();
    let guest = test_guest("misbehave");
    let broker_host = host(store.clone(), keys.clone(), HostOptions::default());
    let constant_host =
        host(store, keys, HostOptions { constant_token: Some(constant_token()), ..Default::default() });
    let (fb, fc) = (broker_host.load(&guest).unwrap(), constant_host.load(&guest).unwrap());
    per_call(&rt, &broker_host, &fb, n); // warm the cache and the code
    let broker = rounds(scale.rounds, || per_call(&rt, &broker_host, &fb, n));
    let constant = rounds(scale.rounds, || per_call(&rt, &constant_host, &fc, n));
    vec![Row::new(format!("get-connection-token, valid token, Rust ({n} calls per invocation)"), "s", broker)
        .against("host import returning a constant token", constant)]
}

fn token_call_js(scale: Scale) -> Vec<Row> {
    let dir = tempfile::tempdir().unwrap();
    let (store, keys) = store_with(dir.path(), 1);
    let rt = runtime();
    let js = js_build(BIN, &Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/guests/js/token-loop.js"));
    let rust = test_guest("misbehave");
    let host = host(store, keys, HostOptions::default());
    let (fj, fr) = (host.load(&js).unwrap(), host.load(&rust).unwrap());
    let mut rows = Vec::new();
    // Fewer calls per invocation are not measurable this way: a JavaScript invocation's own time varies by more
    // than their total (BENCHMARKS.md gives the first call's cost from a profile instead).
    for n in scale.pick(vec![1_000u64, 10_000], vec![10]) {
        let rounds_n = if n >= 10_000 { scale.rounds.min(7) } else { scale.rounds };
        per_call(&rt, &host, &fj, n);
        let js_broker = rounds(rounds_n, || per_call(&rt, &host, &fj, n));
        let rust_broker = rounds(rounds_n, || per_call(&rt, &host, &fr, n));
        rows.push(
            Row::new(format!("get-connection-token from JavaScript, {n} calls per invocation"), "s", js_broker)
                .against("the same from Rust", rust_broker),
        );
    }
    rows
}

/// Seconds per invocation of a trivial function (instantiate, `run`, drop), averaged over `n`.
fn invocation_time(rt: &tokio::runtime::Runtime, host: &FunctionHost, f: &LoadedFunction, n: usize) -> f64 {
    let settings = InvocationSettings::default();
    let started = Instant::now();
    for _ in 0..n {
        rt.block_on(host.invoke(f, r#"{"token_loop":"none","n":0}"#, &settings)).unwrap().unwrap();
    }
    started.elapsed().as_secs_f64() / n as f64
}

fn invocation(scale: Scale) -> Vec<Row> {
    let dir = tempfile::tempdir().unwrap();
    let (store, keys) = store_with(dir.path(), 1);
    let rt = runtime();
    let n = scale.pick(2_000, 20);
    let mut rows = Vec::new();
    let mut guests = vec![("Rust", test_guest("trivial"))];
    if scale.full {
        guests.push(("Rust (wstd, HTTP client linked in)", test_guest("misbehave")));
        guests.push(("JavaScript", js_build(BIN, &Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/guests/js/token-loop.js"))));
    }
    for (lang, guest) in guests {
        let n = if lang == "JavaScript" { n / 10 } else { n };
        let pooled = host(store.clone(), keys.clone(), HostOptions { pooling: Some(4), ..Default::default() });
        let on_demand = host(store.clone(), keys.clone(), HostOptions::default());
        let (fp, fo) = (pooled.load(&guest).unwrap(), on_demand.load(&guest).unwrap());
        invocation_time(&rt, &pooled, &fp, n);
        invocation_time(&rt, &on_demand, &fo, n);
        let p = rounds(scale.rounds, || invocation_time(&rt, &pooled, &fp, n));
        let o = rounds(scale.rounds, || invocation_time(&rt, &on_demand, &fo, n));
        rows.push(
            Row::new(format!("invocation of a trivial {lang} function: instantiate, run, drop (pooling)"), "s", p)
                .against("default (on-demand) allocator", o),
        );
    }
    rows
}

fn invocations_per_second(scale: Scale) -> Vec<Row> {
    let dir = tempfile::tempdir().unwrap();
    let (store, keys) = store_with(dir.path(), 1);
    let workers = 2;
    let per_round = Duration::from_millis(scale.pick(1_000, 100));
    let host = Arc::new(host(store, keys, HostOptions { pooling: Some(64), ..Default::default() }));
    let function = host.load(&test_guest("token-probe")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().unwrap();
    let one_round = || -> f64 {
        rt.block_on(async {
            let deadline = Instant::now() + per_round;
            let tasks: Vec<_> = (0..workers * 4)
                .map(|_| {
                    let (host, function) = (host.clone(), function.clone());
                    tokio::spawn(async move {
                        let settings = grants("c0");
                        let mut done = 0u64;
                        while Instant::now() < deadline {
                            let out = host.invoke(&function, r#"{"connection":"c0"}"#, &settings).await.unwrap();
                            assert!(out.unwrap().contains("access_token"));
                            done += 1;
                        }
                        done
                    })
                })
                .collect();
            let started = Instant::now();
            let mut total = 0;
            for t in tasks {
                total += t.await.unwrap();
            }
            total as f64 / started.elapsed().as_secs_f64()
        })
    };
    one_round();
    let stats = rounds(scale.rounds.min(7), one_round);
    vec![Row::new(
        format!("invocations per second, {workers} worker threads, each calling get-connection-token once (pooling)"),
        "/s",
        stats,
    )]
}

/// Wall seconds of a child process.
fn measure_process(cmd: &mut Command) -> f64 {
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let started = Instant::now();
    let status = cmd.status().expect("spawn");
    let wall = started.elapsed().as_secs_f64();
    assert!(status.success(), "{cmd:?} failed");
    wall
}

/// Peak RSS (bytes) of `cmd`, as GNU time reports it (a child forked from a small process: the bench's own size
/// does not leak into the figure). `None` without /usr/bin/time.
fn peak_rss(cmd: &Command) -> Option<f64> {
    if !Path::new("/usr/bin/time").exists() {
        return None;
    }
    let mut time = Command::new("/usr/bin/time");
    time.env_clear()
        .args(["-f", "%M"])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdout(std::process::Stdio::null());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            time.env(k, v);
        }
    }
    let out = time.output().expect("run /usr/bin/time");
    assert!(out.status.success(), "{cmd:?} failed under /usr/bin/time");
    let kib: f64 = String::from_utf8_lossy(&out.stderr).lines().last()?.trim().parse().ok()?;
    Some(kib * 1024.0)
}

fn run_process(scale: Scale) -> Vec<Row> {
    let env = Env::new(BIN);
    let guest = test_guest("trivial");
    let cache = env.path("cache");
    let run = || {
        let mut cmd = env.cmd();
        cmd.env("WASM_HOST_CACHE_DIR", &cache).args(["run", guest.to_str().unwrap(), "--input", "\"x\""]);
        cmd
    };
    measure_process(&mut run()); // compiles into the cache
    let n = scale.pick(40, 2);
    let wall = rounds(n, || measure_process(&mut run()));
    let base = rounds(n, || measure_process(&mut Command::new("/bin/true")));
    let mut rows = vec![
        Row::new("`wasm-host run`, trivial Rust function, cached: wall", "s", wall).against("spawning /bin/true", base),
    ];
    let rss: Option<Vec<f64>> = (0..n.min(9)).map(|_| peak_rss(&run())).collect();
    let base: Option<Vec<f64>> = (0..n.min(9)).map(|_| peak_rss(&Command::new("/bin/true"))).collect();
    if let (Some(rss), Some(base)) = (rss, base) {
        rows.push(Row::new("the same: peak RSS", "B", Stats::of(rss)).against("/bin/true", Stats::of(base)));
    }
    rows
}

fn first_run(scale: Scale) -> Vec<Row> {
    let env = Env::new(BIN);
    let js = js_build(BIN, &Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/guests/js/token-loop.js"));
    let mut guests = vec![("Rust", test_guest("misbehave"), "\"x\"")];
    if scale.full {
        guests.push(("JavaScript", js, r#"{"token_loop":"none","n":0}"#));
    }
    let mut rows = Vec::new();
    for (lang, guest, input) in guests {
        let n = if lang == "JavaScript" { scale.rounds.min(5) } else { scale.rounds.min(9) };
        let run = |cache: &Path| {
            let mut cmd = env.cmd();
            cmd.env("WASM_HOST_CACHE_DIR", cache).args(["run", guest.to_str().unwrap(), "--input", input]);
            measure_process(&mut cmd)
        };
        let cold = rounds(n, || {
            let cache = tempfile::tempdir().unwrap();
            run(cache.path())
        });
        let warm_cache = env.path(&format!("warm-{lang}"));
        run(&warm_cache);
        let warm = rounds(n, || run(&warm_cache));
        rows.push(
            Row::new(format!("`wasm-host run`, {lang}, first run (compiles and caches)"), "s", cold)
                .against("the cached run", warm),
        );
    }
    rows
}

fn store_growth(scale: Scale) -> Vec<Row> {
    let mut rows = Vec::new();
    let sizes = scale.pick(vec![10usize, 100, 1_000, 10_000], vec![10, 20]);
    let mut base: Option<(Stats, Stats, Stats)> = None;
    for count in sizes {
        let dir = cached_store(count);
        let store_path = dir.join("store.redb");
        let identity = dir.join("identity.txt");
        let list = rounds(scale.rounds.min(9), || {
            let mut cmd = Command::new(BIN);
            cmd.env("WASM_HOST_STORE", &store_path)
                .env("WASM_HOST_IDENTITY", &identity)
                .args(["authconnection", "list", "--json"]);
            measure_process(&mut cmd)
        });
        // What a new process meets: the store opened afresh (redb's page cache empty; the file in the OS page
        // cache, as after any earlier run), a new broker, one connection picked across the store, its token opened.
        let keys = Arc::new(Keys::load(&identity).unwrap().unwrap());
        let rt = runtime();
        let mut i = 0;
        let cold = rounds(scale.rounds.max(9), || {
            let store = Arc::new(Store::open(&store_path).unwrap());
            let broker = TokenBroker::new(store, keys.clone());
            i = (i + 7919) % count;
            let name = format!("c{i}");
            let started = Instant::now();
            rt.block_on(broker.token(&name)).unwrap();
            started.elapsed().as_secs_f64()
        });
        let size = std::fs::metadata(&store_path).unwrap().len() as f64;
        let size = Stats { median: size, min: size, max: size };
        let (bl, bc, bs) = *base.get_or_insert((list, cold, size));
        rows.push(Row::new(format!("`list --json`, {count} connections (whole process)"), "s", list).against("10 connections", bl));
        rows.push(Row::new(format!("cold get-connection-token (store just opened: read + decrypt), {count} connections"), "s", cold).against("10 connections", bc));
        rows.push(Row::new(format!("store file size, {count} connections"), "B", size).against("10 connections", bs));
    }
    rows
}

/// A store of `count` authorized connections under target/bench-stores/, made once per schema version (a store
/// an older build made is refused until upgraded): 10,000 connections take one write transaction each, as `create`
/// and `authorize` would.
fn cached_store(count: usize) -> PathBuf {
    let dir = target_dir().join(format!("bench-stores/schema-{}/{count}", wasm_host_store::SCHEMA_VERSION));
    if dir.join("done").exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (store, keys) = store_with(&dir, count);
    drop((store, keys));
    std::fs::write(dir.join("done"), b"").unwrap();
    dir
}

fn refresh_storm(scale: Scale) -> Vec<Row> {
    let provider = Provider::start(ProviderConfig::default());
    let env = Env::new(BIN);
    env.create_for("c", &provider).success();
    env.authorize("c", &[], true).0.success();
    let keys = Arc::new(Keys::load(&env.identity()).unwrap().unwrap());
    let store = Arc::new(Store::open(&env.store()).unwrap());
    let callers = scale.pick(1_000, 50);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Each round: the token expires (its expiry set in the past, as the clock would), then `callers` ask at once.
    let storm = |callers: usize| -> (Vec<f64>, u64) {
        let current = wasm_host_store::secrecy::ExposeSecret::expose_secret(
            &store.secret("c", wasm_host_store::SecretField::AccessToken, &keys).unwrap().unwrap(),
        )
        .to_owned();
        put_token(&store, &keys, "c", &current, now_unix() - 10);
        let broker = Arc::new(TokenBroker::new(store.clone(), keys.clone()));
        let before = provider.refreshes();
        let latencies = at_once(&rt, callers, || {
            let broker = broker.clone();
            async move {
                broker.token("c").await.unwrap();
            }
        });
        (latencies, provider.refreshes() - before)
    };
    storm(1);
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut single = Vec::new();
    let mut requests = Vec::new();
    for _ in 0..scale.rounds.min(9) {
        let (alone, r1) = storm(1);
        single.push(alone[0]);
        let (lat, r) = storm(callers);
        assert_eq!(r1, 1);
        requests.push(r as f64);
        p50.push(Stats::percentile(&lat, 0.5));
        p99.push(Stats::percentile(&lat, 0.99));
    }
    let single = Stats::of(single);
    vec![
        Row::new(format!("refresh storm, {callers} concurrent callers on an expired token: p99"), "s", Stats::of(p99))
            .against("one caller alone", single),
        Row::new(format!("the same: p50"), "s", Stats::of(p50)).against("one caller alone", single),
        Row::new("the same: provider refresh requests per storm", "requests", Stats::of(requests)),
    ]
}

/// Runs `n` calls at once (released together by a barrier); each one's time, in seconds.
fn at_once<F, Fut>(rt: &tokio::runtime::Runtime, n: usize, call: F) -> Vec<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    rt.block_on(async {
        let barrier = Arc::new(tokio::sync::Barrier::new(n));
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (call, barrier) = (call(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let started = Instant::now();
                    call.await;
                    started.elapsed().as_secs_f64()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    })
}

fn bound_request(scale: Scale) -> Vec<Row> {
    const TOKEN: &str = "at-bound-bench-0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(Keys::create(&dir.path().join("identity.txt")).unwrap());
    let store = Arc::new(Store::open(&dir.path().join("store.redb")).unwrap());
    store.create(connection("api", "https://p.example/"), &SecretString::from("s"), &keys).unwrap();
    put_token(&store, &keys, "api", TOKEN, now_unix() + 86_400);
    let api = Api::start(TOKEN, "{}");
    let rt = runtime();
    let host = host(store, keys, HostOptions::default());
    let probe = host.load(&test_guest("http-probe")).unwrap();
    let n = scale.pick(200, 5);
    let bound = InvocationSettings {
        bindings: OriginBindings::new(vec![format!("api=http://127.0.0.1:{}", api.port).parse::<OriginBinding>().unwrap()])
            .unwrap(),
        ..Default::default()
    };
    let carried = InvocationSettings {
        grants: ConnectionGrants::from_names(["api"]),
        allowed_hosts: vec!["127.0.0.1".parse().unwrap()],
        ..Default::default()
    };
    let per_request = |settings: &InvocationSettings, input: &str| {
        let started = Instant::now();
        let out = rt.block_on(host.invoke(&probe, input, settings)).unwrap().unwrap();
        assert!(out.contains("\"status\":200"), "{out}");
        started.elapsed().as_secs_f64() / n as f64
    };
    let url = api.url("/v1/me");
    let bound_input = serde_json::json!({ "url": url, "repeat": n }).to_string();
    let carried_input = serde_json::json!({ "url": url, "repeat": n, "token": "api" }).to_string();
    per_request(&bound, &bound_input);
    per_request(&carried, &carried_input);
    let b = rounds(scale.rounds, || per_request(&bound, &bound_input));
    let c = rounds(scale.rounds, || per_request(&carried, &carried_input));
    vec![Row::new("HTTP request to a bound origin, token attached by the host", "s", b)
        .against("the function reads the token and sets the header itself", c)]
}

/// `wasm-host serve` (the real binary) with the background refresher off, so requests meet the expiry: a storm of
/// concurrent requests to a JSON function that reads the token, arriving just after it stopped being fresh,
/// beside the provider's own time for that refresh (the server's `wasm_host_provider_refresh_seconds`
/// histogram) and the same storm on a fresh token.
fn serve_refresh_storm(scale: Scale) -> Vec<Row> {
    // Tokens live 3 s and are handed out while they have more than 1 s left: stale 2 s after their refresh.
    let provider = Provider::start(ProviderConfig { access_ttl: 3, ..Default::default() });
    let env = Env::new(BIN);
    env.create_for("c", &provider).success();
    env.authorize("c", &[], true).0.success();
    let log_path = env.path("serve.log");
    let serve = Serve::start(&env, &log_path, 200);
    let (url, metrics) = (serve.url.clone(), serve.metrics.clone());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = wasm_host_tests::reqwest::Client::new();
    // Sends `n` requests at once; each one's latency, in seconds.
    let storm = |n: usize| -> Vec<f64> {
        at_once(&rt, n, || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let r = client.post(&url).body(r#"{"connection":"c"}"#).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let body = r.text().await.unwrap();
                assert!(body.contains("access_token"), "{body}");
            }
        })
    };
    let provider_seconds = || provider_seconds(&rt, &client, &metrics);
    let stale = || std::thread::sleep(Duration::from_millis(2200));
    // The storm's size, and one the machine is not saturated by (a 2-core machine: 200 instances at once queue).
    let levels = scale.pick(vec![200, 30], vec![20]);
    // Warm-up: the component's first instances, and pooled connections for the largest storm.
    storm(levels[0]);
    let ms = |v: f64| v * 1e3;
    let mut rows = Vec::new();
    let (mut alone, mut alone_fresh, mut alone_over) = (Vec::new(), Vec::new(), Vec::new());
    for &callers in &levels {
        let (mut p50, mut p99, mut fresh_p99, mut provider_time, mut bound, mut over, mut requests) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..scale.rounds.min(9) {
            stale();
            let (before, spent) = (provider.refreshes(), provider_seconds());
            let lone = storm(1)[0];
            assert_eq!(provider.refreshes() - before, 1, "the lone request refreshed");
            let lone_provider = provider_seconds() - spent;
            let lone_fresh = storm(1)[0];
            alone.push(lone);
            alone_fresh.push(lone_fresh);
            alone_over.push(ms(lone - lone_provider - lone_fresh));
            let (fresh, lat, refreshes, refresh) =
                stale_storm_round(&provider, stale, provider_seconds, || storm(callers));
            requests.push(refreshes);
            let tail = Stats::percentile(&lat, 0.99);
            // The target's honest form: the storm's p99 against the provider's time for its refresh plus the
            // p99 the same storm has on a fresh token (the HTTP and instance queueing the refresh does not cause).
            fresh_p99.push(fresh);
            provider_time.push(refresh);
            bound.push(refresh + fresh);
            over.push(ms(tail - refresh - fresh));
            p50.push(Stats::percentile(&lat, 0.5));
            p99.push(tail);
        }
        rows.push(
            Row::new(format!("serve: {callers} concurrent requests on an expired token: p99"), "s", Stats::of(p99))
                .against("the provider's refresh time + the same storm's p99 on a fresh token", Stats::of(bound)),
        );
        rows.push(Row::new(
            format!("serve, {callers} concurrent: p99 − (provider's refresh time + p99 on a fresh token), target ≤ 5"),
            "ms",
            Stats::of(over),
        ));
        rows.push(Row::new("the same: p50", "s", Stats::of(p50)).against("the provider's refresh time", Stats::of(provider_time)));
        rows.push(Row::new(format!("serve: {callers} concurrent requests on a fresh token: p99"), "s", Stats::of(fresh_p99)));
        rows.push(Row::new(format!("serve storm of {callers}: provider refresh requests per storm"), "requests", Stats::of(requests)));
    }
    rows.push(Row::new("serve: one request on an expired token", "s", Stats::of(alone)).against("one request on a fresh token", Stats::of(alone_fresh)));
    rows.push(Row::new("the same: minus the provider's refresh time and a fresh request's time", "ms", Stats::of(alone_over)));
    // Where the refreshes' time went, from the server's log lines.
    drop(serve);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let field = |line: &str, key: &str| -> Option<f64> {
        line.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse::<f64>().ok())
    };
    let refreshes: Vec<&str> = log.lines().filter(|l| l.contains(" refresh ") && l.contains("lease_us=")).collect();
    assert!(!refreshes.is_empty(), "no refresh lines in the server's log:\n{log}");
    for (key, what) in [
        ("lease_us", "a refresh's lease (the lock file taken)"),
        ("read_us", "its read of the grant (two decrypts)"),
        ("provider_us", "the provider's answer"),
        ("commit_us", "the commit of the new tokens"),
    ] {
        let samples: Vec<f64> = refreshes.iter().filter_map(|l| field(l, key)).map(|us| us / 1e6).collect();
        rows.push(Row::new(format!("refresh step: {what}"), "s", Stats::of(samples)));
    }
    rows
}

// ---------------------------------------------------------------------------------------------------------------
// Several hosts, one store (issue 15): redb and PostgreSQL side by side. The PostgreSQL cluster is the one in
// WASM_HOST_TEST_POSTGRES (scripts/postgres.sh starts one on loopback); each scenario makes a database of its own.

/// `hosts` `wasm-host serve` processes on one redb file, then on one PostgreSQL database: per round, `per_host`
/// requests per host (spread round-robin, all released at once) on a fresh token, then the same storm just after
/// the token stopped being fresh. The storm's p99 is set against the provider's own time for the refresh (the
/// sum over the hosts' `wasm_host_provider_refresh_seconds`: only one host refreshes).
fn hosts_refresh_storm(scale: Scale) -> Vec<Row> {
    // The issue's storm, and one that does not saturate a 2-core machine (1,000 instances at once queue).
    let (hosts, levels) = scale.pick((4, vec![250, 10]), (2, vec![5]));
    let db = wasm_host_tests::postgres::Database::new("bench_hosts_storm");
    let mut rows = Vec::new();
    for (backend, env) in [("redb", Env::new(BIN)), ("PostgreSQL", Env::on_postgres(BIN, db.url()))] {
        rows.extend(storm_across_hosts(scale, backend, &env, hosts, &levels));
    }
    rows
}

fn storm_across_hosts(scale: Scale, backend: &str, env: &Env, hosts: usize, levels: &[usize]) -> Vec<Row> {
    // Tokens live 4 s and are handed out while more than 1 s remains: stale 3 s after their refresh, which leaves
    // a round's fresh storm well inside the token's freshness.
    let provider = Provider::start(ProviderConfig { access_ttl: 4, ..Default::default() });
    env.create_for("c", &provider).success();
    env.authorize("c", &[], true).0.success();
    let most = levels.iter().copied().max().unwrap();
    let serves: Vec<Serve> =
        (0..hosts).map(|i| Serve::start(env, &env.path(&format!("serve-{i}.log")), most)).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = wasm_host_tests::reqwest::Client::new();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let storm = |per_host: usize| -> Vec<f64> {
        at_once(&rt, hosts * per_host, || {
            let host = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % hosts;
            let (client, url) = (client.clone(), serves[host].url.clone());
            async move {
                let r = client.post(&url).body(r#"{"connection":"c"}"#).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let body = r.text().await.unwrap();
                assert!(body.contains("access_token"), "{body}");
            }
        })
    };
    let spent = || serves.iter().map(|s| provider_seconds(&rt, &client, &s.metrics)).sum::<f64>();
    let stale = || std::thread::sleep(Duration::from_millis(3200));
    // Warm-up: each host's first instances and the client's pooled connections.
    stale();
    storm(most);
    let ms = |v: f64| v * 1e3;
    let mut rows = Vec::new();
    for &per_host in levels {
        let (mut p50, mut p99, mut fresh_p99, mut provider_time, mut over, mut over_fresh, mut requests) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..scale.pick(scale.rounds.min(9), 1) {
            let before = provider.refreshes();
            let (fresh, lat, refreshes, refresh) = stale_storm_round(&provider, stale, spent, || storm(per_host));
            assert_eq!((provider.refreshes() - before) as f64, refreshes, "the fresh storm met a stale token: the round is too slow");
            requests.push(refreshes);
            let tail = Stats::percentile(&lat, 0.99);
            fresh_p99.push(fresh);
            provider_time.push(refresh);
            over.push(ms(tail - refresh));
            over_fresh.push(ms(tail - refresh - fresh));
            p50.push(Stats::percentile(&lat, 0.5));
            p99.push(tail);
        }
        let what = format!("{backend}, {hosts} serve hosts × {per_host} concurrent requests");
        rows.extend([
            Row::new(format!("{what} on an expired token: p99"), "s", Stats::of(p99))
                .against("the provider's refresh time", Stats::of(provider_time.clone())),
            Row::new(format!("{what}: p99 − the provider's refresh time, target ≤ 10"), "ms", Stats::of(over)),
            Row::new(format!("{what}: p99 − (provider's refresh time + p99 on a fresh token)"), "ms", Stats::of(over_fresh)),
            Row::new(format!("{what} on an expired token: p50"), "s", Stats::of(p50))
                .against("the provider's refresh time", Stats::of(provider_time)),
            Row::new(format!("{what} on a fresh token: p99"), "s", Stats::of(fresh_p99)),
            Row::new(format!("{what}: provider refresh requests per storm"), "requests", Stats::of(requests)),
        ]);
    }
    rows
}

/// `authconnection list --json` as a whole process on redb and on PostgreSQL, the same connections in both: the
/// redb store of `store-growth`, moved into a PostgreSQL database by `store export` and `store import` (also timed,
/// once per size).
fn list_backends(scale: Scale) -> Vec<Row> {
    let mut rows = Vec::new();
    for count in scale.pick(vec![10usize, 1_000, 10_000], vec![10]) {
        let dir = cached_store(count);
        let identity = dir.join("identity.txt");
        let recipient = Keys::load(&identity).unwrap().unwrap().recipient();
        let db = wasm_host_tests::postgres::Database::new(&format!("bench_list_{count}"));
        let wasm_host = |store: &str, args: &[&str]| {
            let mut cmd = Command::new(BIN);
            cmd.env("WASM_HOST_STORE", store).env("WASM_HOST_IDENTITY", &identity).args(args);
            cmd
        };
        let redb = dir.join("store.redb");
        let redb = redb.to_str().unwrap();
        let bundle = tempfile::NamedTempFile::new().unwrap();
        let bundle = bundle.path().to_str().unwrap();
        measure_process(&mut wasm_host(redb, &["store", "export", "--recipient", &recipient, "-o", bundle]));
        let import = measure_process(&mut wasm_host(&db.url(), &["store", "import", bundle]));
        let list = |store: &str| {
            let out = wasm_host(store, &["authconnection", "list", "--json"]).output().expect("spawn");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(listed.as_array().map(Vec::len), Some(count), "every connection listed");
        };
        list(redb);
        list(&db.url());
        let n = scale.rounds.min(9);
        let on_redb = rounds(n, || measure_process(&mut wasm_host(redb, &["authconnection", "list", "--json"])));
        let on_pg = rounds(n, || measure_process(&mut wasm_host(&db.url(), &["authconnection", "list", "--json"])));
        rows.push(
            Row::new(format!("`list --json`, {count} connections, PostgreSQL (whole process), target ≤ 200 ms"), "s", on_pg)
                .against("redb", on_redb),
        );
        rows.push(Row::new(format!("`store import` of {count} connections into PostgreSQL (whole process, once)"), "s", Stats::of(vec![import])));
    }
    rows
}

/// One round of a serve storm: `storm` on a fresh token, then, once `stale` has let the token go stale, the same
/// storm. Gives the fresh storm's p99 (s), the stale storm's latencies (s), the provider refresh requests the
/// stale storm caused, and the provider's time for them (s, from `spent`, a running total).
fn stale_storm_round(
    provider: &Provider,
    stale: impl Fn(),
    spent: impl Fn() -> f64,
    storm: impl Fn() -> Vec<f64>,
) -> (f64, Vec<f64>, f64, f64) {
    let fresh = Stats::percentile(&storm(), 0.99);
    stale();
    let (before, spent_before) = (provider.refreshes(), spent());
    let lat = storm();
    let requests = (provider.refreshes() - before) as f64;
    (fresh, lat, requests, spent() - spent_before)
}

/// A `wasm-host serve` process of the bench on `env`'s store, serving the token-probe function at `url` (granted
/// connection `c`) with the background refresher off, so requests meet the expiry; tokens are handed out while more
/// than 1 s of their life remains. Killed when dropped.
struct Serve {
    _child: KillOnDrop,
    url: String,
    metrics: String,
}

impl Serve {
    fn start(env: &Env, log_path: &Path, max_concurrent: usize) -> Self {
        let dir = env.path("functions");
        std::fs::create_dir_all(&dir).unwrap();
        if !dir.join("token.wasm").exists() {
            std::fs::copy(test_guest("token-probe"), dir.join("token.wasm")).unwrap();
            std::fs::write(dir.join("token.toml"), "[grants]\nconnections = [\"c\"]\n").unwrap();
        }
        // The broker's one line per refresh (where its time went), and nothing per request: a log line per
        // request would be load of its own.
        let mut cmd = env.cmd();
        cmd.env("WASM_HOST_CACHE_DIR", shared_cache())
            .env("WASM_HOST_LOG", "warn,wasm_host_runtime::broker=info")
            .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(["--refresh-ahead", "off", "--refresh-margin", "1s"])
            .args(["--max-concurrent", &max_concurrent.to_string()])
            .arg(dir.join("token.wasm"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(log_path).unwrap());
        let mut child = KillOnDrop(cmd.spawn().expect("spawn wasm-host serve"));
        let mut out = std::io::BufReader::new(child.0.stdout.take().unwrap());
        let mut line = |prefix: &str| {
            let mut l = String::new();
            std::io::BufRead::read_line(&mut out, &mut l).unwrap();
            l.trim().strip_prefix(prefix).unwrap_or_else(|| panic!("serve did not start: {l:?}")).to_owned()
        };
        let url = format!("{}/token", line("listening on "));
        let metrics = format!("{}/metrics", line("operations on "));
        Serve { _child: child, url, metrics }
    }
}

/// Seconds a `serve` process has spent waiting for the provider's successful refreshes so far (its
/// `wasm_host_provider_refresh_seconds` histogram's sum).
fn provider_seconds(rt: &tokio::runtime::Runtime, client: &wasm_host_tests::reqwest::Client, metrics: &str) -> f64 {
    let text = rt.block_on(async { client.get(metrics).send().await.unwrap().text().await.unwrap() });
    let series = r#"wasm_host_provider_refresh_seconds_sum{outcome="ok"} "#;
    text.lines().find_map(|l| l.strip_prefix(series)).map_or(0.0, |v| v.trim().parse::<f64>().unwrap())
}

/// A child process killed (and reaped) when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /v1/connections` of `serve --admin-listen` on a store of 10,000 connections: the HTTP request alone (one
/// kept-alive client) and the whole `wasm-host --remote URL authconnection list --json` process, beside the local
/// `authconnection list --json` on the same store.
fn admin_list(scale: Scale) -> Vec<Row> {
    let count = scale.pick(10_000usize, 10);
    let cached = cached_store(count);
    let server = Env::new(BIN);
    std::fs::create_dir_all(server.store().parent().unwrap()).unwrap();
    std::fs::create_dir_all(server.identity().parent().unwrap()).unwrap();
    std::fs::copy(cached.join("store.redb"), server.store()).unwrap();
    std::fs::copy(cached.join("identity.txt"), server.identity()).unwrap();
    let token = server.run(&["admin", "token", "create", "--name", "bench"]).success().stdout.trim().to_owned();
    let serving = wasm_host_tests::serving::Serving::start(
        &server,
        &["--admin-listen", "127.0.0.1:0", test_guest("trivial").to_str().unwrap()],
    );
    let url = format!("{}/v1/connections", serving.admin.as_deref().unwrap());
    let http = wasm_host_tests::reqwest::blocking::Client::new();
    let get = || {
        let started = Instant::now();
        let body = http.get(&url).bearer_auth(&token).send().unwrap().error_for_status().unwrap().bytes().unwrap();
        let wall = started.elapsed().as_secs_f64();
        let listed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(listed.as_array().map(Vec::len), Some(count), "every connection listed");
        wall
    };
    get();
    let request = rounds(scale.rounds, get);
    let laptop = Env::new(BIN);
    let remote = || {
        let mut cmd = laptop.cmd();
        cmd.env("WASM_HOST_REMOTE", serving.admin.as_deref().unwrap())
            .env("WASM_HOST_ADMIN_TOKEN", &token)
            .args(["authconnection", "list", "--json"]);
        measure_process(&mut cmd)
    };
    let process = rounds(scale.rounds, remote);
    let local = rounds(scale.rounds, || measure_process(server.cmd().args(["authconnection", "list", "--json"])));
    vec![
        Row::new(format!("admin API `GET /v1/connections`, {count} connections (the HTTP request alone)"), "s", request),
        Row::new(format!("`--remote ... authconnection list --json`, {count} connections (whole process)"), "s", process)
            .against("local `list --json` on the server's store (whole process)", local),
    ]
}

/// `wasm-host --remote URL authconnection authorize --no-browser` end to end, the whole laptop process: the start
/// on the server (discovery, the pending request stored), the browser's round trips to the local OpenID provider
/// (a cookie-keeping client) ending on the laptop's loopback listener, the completion (the server's code
/// exchange, ID-token check and store). Beside it, local `authorize` of the same connection on the server's store,
/// with the same browser.
fn remote_authorize(scale: Scale) -> Vec<Row> {
    let provider = Provider::start(ProviderConfig::default());
    let server = Env::new(BIN);
    server.create_for("c", &provider).success();
    let token = server.run(&["admin", "token", "create", "--name", "bench"]).success().stdout.trim().to_owned();
    let serving = wasm_host_tests::serving::Serving::start(
        &server,
        &["--admin-listen", "127.0.0.1:0", test_guest("trivial").to_str().unwrap()],
    );
    let laptop = Env::new(BIN);
    let remote = || {
        let mut cmd = laptop.cmd();
        cmd.env("WASM_HOST_REMOTE", serving.admin.as_deref().unwrap()).env("WASM_HOST_ADMIN_TOKEN", &token);
        let started = Instant::now();
        laptop.authorize_with(cmd, "c", &[], true, |_| {}).0.success();
        started.elapsed().as_secs_f64()
    };
    let local = || {
        let started = Instant::now();
        server.authorize("c", &[], true).0.success();
        started.elapsed().as_secs_f64()
    };
    remote();
    let remote = rounds(scale.rounds, remote);
    let local = rounds(scale.rounds, local);
    vec![Row::new("`--remote ... authconnection authorize --no-browser`, end to end (whole process, browser included)", "s", remote)
        .against("local `authorize --no-browser` on the server's store (whole process, same browser)", local)]
}
