//! What the end-to-end tests share: the guests built by `build.rs`, a sandboxed environment for the real
//! `wasm-host` binary, and a small HTTP server on 127.0.0.1 that stands in for an API.

pub mod api;
pub mod device;
pub mod http;
pub mod postgres;
pub mod provider;
pub mod serving;
pub mod snapshot;

/// The HTTP client the tests use, for tests that talk to servers themselves.
pub use reqwest;
/// For tests that seal a value as the standard age tool would (an attacker who has only the public key).
pub use age;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::io::Write;

/// A component from `guest-examples/` (e.g. `userinfo`).
pub fn example(name: &str) -> PathBuf {
    guest_path(env!("WASM_HOST_GUESTS_DIR"), name)
}

/// A test-only component from `tests/guests/` (e.g. `misbehave`).
pub fn test_guest(name: &str) -> PathBuf {
    guest_path(env!("WASM_HOST_TEST_GUESTS_DIR"), name)
}

fn guest_path(dir: &str, name: &str) -> PathBuf {
    let path = Path::new(dir).join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.exists(), "guest {} was not built", path.display());
    path
}

/// A private world for one test: its own store, identity, cache and XDG directories.
pub struct Env {
    pub bin: PathBuf,
    pub dir: tempfile::TempDir,
    /// A `postgres://` store every command of this env uses (`WASM_HOST_STORE`) instead of the redb file.
    pub store_url: Option<String>,
}

/// What one run of the binary gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn failure(&self, code: i32, message: &str) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        assert!(
            self.stderr.contains(message),
            "stderr lacks {message:?}\nstderr: {}",
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

impl Env {
    pub fn new(bin: &str) -> Self {
        Self { bin: PathBuf::from(bin), dir: tempfile::tempdir().expect("tempdir"), store_url: None }
    }

    /// An env whose store is the PostgreSQL database `url`.
    pub fn on_postgres(bin: &str, url: String) -> Self {
        Self { store_url: Some(url), ..Self::new(bin) }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The store location: the redb file, or the `postgres://` URL (which `Store::open` takes as well).
    pub fn store(&self) -> PathBuf {
        match &self.store_url {
            Some(url) => PathBuf::from(url),
            None => self.path("data/wasm-host/store.redb"),
        }
    }

    pub fn identity(&self) -> PathBuf {
        self.path("config/wasm-host/identity.txt")
    }

    pub fn cache(&self) -> PathBuf {
        self.path("cache/wasm-host")
    }

    /// The binary, with HOME and the XDG directories inside this env and nothing inherited that could leak in.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_CACHE_HOME", self.path("cache"));
        if let Some(url) = &self.store_url {
            cmd.env("WASM_HOST_STORE", url);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(self.cmd(), args, None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.run_with(self.cmd(), args, Some(stdin))
    }

    pub fn run_with(&self, cmd: Command, args: &[&str], stdin: Option<&str>) -> Run {
        self.run_watched(cmd, args, stdin, |_| {})
    }

    /// Like [`Env::run_with`], calling `watch` with the child's PID once it runs and before its stdin is written,
    /// so a command that reads stdin is still alive then (tests read its /proc/PID/cmdline).
    pub fn run_watched(&self, mut cmd: Command, args: &[&str], stdin: Option<&str>, watch: impl FnOnce(u32)) -> Run {
        cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn wasm-host");
        watch(child.id());
        let mut pipe = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            // A command that refuses its flags exits without reading stdin; if it has exited already, the write
            // finds the pipe closed, which is no failure of the test.
            if let Err(e) = pipe.write_all(s.as_bytes()) {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing the command's stdin: {e}");
            }
        }
        drop(pipe);
        let out: Output = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `create` with a loopback provider and the secret on stdin.
    pub fn create(&self, name: &str, secret: &str) -> Run {
        self.run_stdin(
            &[
                "authconnection", "create", "--name", name, "--type", "TYPE_OAUTH2",
                "--provider-url", "http://127.0.0.1:9/", "--client-id", "client-1", "--client-secret-stdin",
            ],
            secret,
        )
    }

    pub fn import_token(&self, name: &str, json: &str) -> Run {
        self.run_stdin(&["authconnection", "import-token", name], json)
    }

    /// `create` (loopback provider, secret on stdin), then `import-token` of `access_token` valid for an hour.
    pub fn connection_with_token(&self, name: &str, access_token: &str) {
        self.create(name, &format!("client-secret-of-{name}")).success();
        let json = serde_json::json!({ "access_token": access_token, "expires_in": 3600 }).to_string();
        self.import_token(name, &json).success();
    }
}

/// Overwrites connection `to`'s sealed `field` with `from`'s, straight in the redb file: what an attacker with
/// write access to the store, or a botched restore, would do.
pub fn copy_secret(store: &Path, from: &str, to: &str, field: &str) {
    use wasm_host_store::redb::{self, ReadableTable};
    let db = redb::Database::builder()
        .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
        .create(store)
        .unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(wasm_host_store::SECRETS).unwrap();
        let sealed = t.get((from, field)).unwrap().expect("no such secret row").value().to_vec();
        t.insert((to, field), sealed.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

impl Env {
    /// `create` pointed at the test provider, secret on stdin.
    pub fn create_for(&self, name: &str, provider: &provider::Provider) -> Run {
        self.run_stdin(
            &[
                "authconnection", "create", "--name", name, "--type", "TYPE_OAUTH2", "--provider-url",
                &provider.issuer, "--client-id", provider::CLIENT_ID, "--client-secret-stdin",
            ],
            provider::CLIENT_SECRET,
        )
    }

    /// Runs `authorize NAME --no-browser --port 0` plus `extra`, follows the printed URL as a browser with a
    /// cookie jar would (unless `follow` is false), and returns the command's result and what the browser got.
    pub fn authorize(&self, name: &str, extra: &[&str], follow: bool) -> (Run, Option<(u16, String)>) {
        self.authorize_with(self.cmd(), name, extra, follow, |_| {})
    }

    /// Like [`Env::authorize`] with a prepared command (extra environment), calling `watch` with the PID while
    /// the command waits for its callback.
    pub fn authorize_with(
        &self,
        mut cmd: Command,
        name: &str,
        extra: &[&str],
        follow: bool,
        watch: impl FnOnce(u32),
    ) -> (Run, Option<(u16, String)>) {
        use std::io::{BufRead, BufReader, Read};
        cmd.args(["authconnection", "authorize", name, "--no-browser", "--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn authorize");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut url = String::new();
        stdout.read_line(&mut url).unwrap();
        watch(child.id());
        let page = (follow && !url.trim().is_empty()).then(|| http::follow_with_cookies(url.trim()));
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        let mut stderr = String::new();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        let status = child.wait().unwrap();
        (Run { code: status.code().unwrap_or(-1), stdout: url + &rest, stderr }, page)
    }
}

/// Writes a pending remote authorization of `connection` under `state` into `store`, made 11 minutes ago (so
/// expired, AUTHORIZATION_TTL being 10), as another host of the store would have left it.
pub fn plant_expired_authorization(store: &wasm_host_store::Store, keys: &wasm_host_store::Keys, connection: &str, state: &str) {
    use wasm_host_store::secrecy::SecretString;
    let made = wasm_host_store::now_unix() - wasm_host_store::AUTHORIZATION_TTL - 60;
    let pending = wasm_host_store::PendingAuthorization {
        connection: connection.into(),
        redirect_uri: "http://127.0.0.1:9/callback".into(),
        scopes: vec!["openid".into()],
        created_at: made,
        expires_at: made + wasm_host_store::AUTHORIZATION_TTL,
        nonce: SecretString::from("n"),
        verifier: None,
        device: None,
    };
    store.put_authorization_request(&SecretString::from(state), &pending, keys, made).unwrap();
}

/// The text of every file under `dir` (lossy UTF-8), to scan for values that must not be there.
pub fn texts_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned());
            }
        }
    }
    out
}

/// The workspace's target directory, where tests keep what is slow to make (JavaScript tools and builds).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Where componentize-js is installed for the tests: once per machine, not once per test.
pub fn js_tools() -> PathBuf {
    target_dir().join("js-tools")
}

/// A shared compile cache for large components (a JavaScript component takes seconds to compile).
pub fn shared_cache() -> PathBuf {
    target_dir().join("test-compile-cache")
}

/// Builds `guest-examples/js/<name>.js` with the real `wasm-host build-js` (see [`js_build`]).
pub fn js_example(bin: &str, name: &str) -> PathBuf {
    js_build(bin, &Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../guest-examples/js/{name}.js")))
}

/// Builds a JavaScript function with the real `wasm-host build-js`, once per source content: the result is kept
/// under target/js-build/ by the source's hash.
pub fn js_build(bin: &str, source: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let name = source.file_stem().expect("a file name").to_string_lossy().into_owned();
    let text = std::fs::read(source).expect("JS source");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    include_str!("../../cli/js/tailor.js").hash(&mut h);
    let out = target_dir().join(format!("js-build/{name}-{:016x}.wasm", h.finish()));
    if out.exists() {
        return out;
    }
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let tmp = out.with_extension(format!("{}.tmp", std::process::id()));
    let status = Command::new(bin)
        .args(["build-js"])
        .arg(source)
        .arg("-o")
        .arg(&tmp)
        .env("WASM_HOST_JS_TOOLS", js_tools())
        .status()
        .expect("run build-js");
    assert!(status.success(), "build-js {} failed", source.display());
    std::fs::rename(&tmp, &out).unwrap();
    out
}

impl Env {
    /// `run COMPONENT ARGS...` with the compile cache shared across tests (large components compile once).
    pub fn run_cached(&self, component: &Path, args: &[&str]) -> Run {
        let mut cmd = self.cmd();
        cmd.env("WASM_HOST_CACHE_DIR", shared_cache());
        let mut all = vec!["run", component.to_str().expect("UTF-8 path")];
        all.extend(args);
        self.run_with(cmd, &all, None)
    }
}
