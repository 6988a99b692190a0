//! Running `authorize --device` as the user sees it (the verification URI and code read from its stderr), and what
//! the test provider answered its polls: shared by the local (tests/grants.rs) and remote
//! (tests/remote_authorize.rs) device-flow tests.

use std::time::Duration;

use crate::provider::Provider;
use crate::Env;

/// A running `authorize NAME --device`: where the user is sent and the code, read from its stderr.
pub struct DeviceRun {
    pub child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    pub shown: Vec<String>,
    pub uri: String,
    pub code: String,
    pub complete: Option<String>,
}

impl DeviceRun {
    pub fn start(env: &Env, name: &str, extra: &[&str]) -> Self {
        Self::spawn(env.cmd(), name, extra)
    }

    /// As [`DeviceRun::start`], with `cmd` (another env's, or one given `--remote`).
    pub fn spawn(mut cmd: std::process::Command, name: &str, extra: &[&str]) -> Self {
        use std::io::{BufRead, BufReader};
        cmd.args(["authconnection", "authorize", name, "--device", "--json"])
            .args(extra)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn authorize --device");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut run = DeviceRun { child, lines, shown: Vec::new(), uri: String::new(), code: String::new(), complete: None };
        while run.code.is_empty() {
            let Ok(line) = run.lines.recv_timeout(Duration::from_secs(60)) else {
                panic!("no verification URI and code within 60 s; stderr so far: {:?}", run.shown)
            };
            if let Some(rest) = line.strip_prefix(&format!("To authorize `{name}`, open ")) {
                let (uri, code) = rest.split_once(" on any device and enter the code ").expect("URI and code");
                (run.uri, run.code) = (uri.to_owned(), code.to_owned());
            }
            run.shown.push(line);
        }
        if let Ok(line) = run.lines.recv_timeout(Duration::from_secs(10)) {
            run.complete = line.strip_prefix("(or open ").and_then(|l| l.strip_suffix(", which carries the code)")).map(String::from);
            run.shown.push(line);
        }
        run
    }

    /// Waits up to `limit` (a generous bound, not a measurement) for the command to end on its own.
    pub fn ends_within(&mut self, limit: Duration) -> bool {
        let end = std::time::Instant::now() + limit;
        while std::time::Instant::now() < end {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        false
    }

    /// Waits for the command to end: its exit code, stdout and everything it wrote on stderr.
    pub fn finish(mut self) -> crate::Run {
        use std::io::Read;
        let mut stdout = String::new();
        self.child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.shown.push(line);
        }
        crate::Run { code: status.code().unwrap_or(-1), stdout, stderr: self.shown.join("\n") }
    }
}

/// What the test provider answered each device-grant token request (`devicePolls`): when (ms) and what.
pub fn device_polls(provider: &Provider) -> Vec<(u64, String)> {
    let stats = provider.stats();
    stats["devicePolls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["at"].as_u64().unwrap(), p["answer"].as_str().unwrap().to_owned()))
        .collect()
}

