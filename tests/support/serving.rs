//! A running `wasm-host serve` for tests: started on free loopback ports, its stderr collected, stopped by its PID.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{shared_cache, Env};

/// A running `wasm-host serve`, stopped by its PID when dropped.
pub struct Serving {
    pub child: Child,
    pub url: String,
    pub ops: String,
    /// The admin API's base URL, when `--admin-listen` was given.
    pub admin: Option<String>,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Serving {
    /// Starts `serve` on free ports with `args` (flags and functions), and waits for its address line.
    pub fn start(env: &Env, args: &[&str]) -> Self {
        let mut cmd = env.cmd();
        cmd.env("WASM_HOST_CACHE_DIR", shared_cache())
            .env("WASM_HOST_LOG", "info")
            .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn wasm-host serve");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().unwrap();
        let lines = stderr.clone();
        let mut reader = Some(std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        }));
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut read = |prefix: &str| {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            match line.trim().strip_prefix(prefix) {
                Some(url) => url.to_owned(),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    // The pipe closes with the process: the reader has then collected every line.
                    if let Some(reader) = reader.take() {
                        let _ = reader.join();
                    }
                    panic!("serve did not start: {line:?}\nstderr: {}", stderr.lock().unwrap().join("\n"));
                }
            }
        };
        let url = read("listening on ");
        let ops = read("operations on ");
        let admin = args.contains(&"--admin-listen").then(|| read("admin API on "));
        Self { child, url, ops, admin, stderr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits (at most 60 s) until a stderr line contains `text`, `count` times.
    pub fn wait_log(&self, text: &str, count: usize) {
        let end = Instant::now() + Duration::from_secs(60);
        while self.stderr.lock().unwrap().iter().filter(|l| l.contains(text)).count() < count {
            assert!(Instant::now() < end, "no {count}x {text:?} in the log after 60 s:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill").args([&format!("-{name}"), &self.pid().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits (at most 60 s) for the process to exit; its exit code.
    pub fn wait_exit(&mut self) -> i32 {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < end, "serve did not exit within 60 s:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let exited = self.child.try_wait().ok().flatten();
            eprintln!("serve (exit status {exited:?}) wrote on stderr:\n{}", self.stderr());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

