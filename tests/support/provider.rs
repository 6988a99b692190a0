//! The local OpenID provider (tests/provider/provider.mjs, npm oidc-provider) as a test fixture: started on a
//! free 127.0.0.1 port, stopped by its PID when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CLIENT_ID: &str = "wasm-host-test";
/// A secret with every character RFC 6749 §2.3.1 encoding must get right.
pub const CLIENT_SECRET: &str = "p@ss+w/rd=:%&?~ x";

pub struct Provider {
    child: Child,
    pub issuer: String,
}

/// Settings for one provider process.
pub struct ProviderConfig {
    pub access_ttl: u64,
    pub rotate: bool,
    pub omit_unchanged_refresh: bool,
    pub auto_approve: bool,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self { access_ttl: 3600, rotate: true, omit_unchanged_refresh: false, auto_approve: true }
    }
}

fn script() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("provider");
    assert!(
        dir.join("node_modules/oidc-provider").exists(),
        "the test provider is not installed: run `npm ci --prefix tests/provider` (scripts/test.sh does)"
    );
    dir.join("provider.mjs")
}

impl Provider {
    pub fn start(config: ProviderConfig) -> Self {
        let mut child = Command::new("node")
            .arg(script())
            .env("PORT", "0")
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("ACCESS_TTL", config.access_ttl.to_string())
            .env("ROTATE", if config.rotate { "1" } else { "0" })
            .env("OMIT_UNCHANGED_REFRESH", if config.omit_unchanged_refresh { "1" } else { "0" })
            .env("AUTO_APPROVE", if config.auto_approve { "1" } else { "0" })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node (is Node.js installed?)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("ready ") {
                    let _ = tx.send(issuer.to_owned());
                }
            }
        });
        let issuer = rx.recv_timeout(Duration::from_secs(90)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the test provider did not start within 90 s")
        });
        Self { child, issuer }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Counts of what reached the provider.
    pub fn stats(&self) -> serde_json::Value {
        let body = crate::http::get(&format!("{}/test/stats", self.issuer)).1;
        serde_json::from_str(&body).expect("stats JSON")
    }

    /// Waits (at most 30 s) until the provider has answered every token request it received: after a client was
    /// killed, what the provider did with its request is settled.
    pub fn wait_idle(&self) {
        let end = Instant::now() + Duration::from_secs(30);
        while self.stats()["tokenInFlight"].as_u64().unwrap_or(0) > 0 {
            assert!(Instant::now() < end, "the provider is still handling token requests after 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn refreshes(&self) -> u64 {
        self.stats()["token"]["refresh_token"].as_u64().unwrap_or(0)
    }

    /// Changes the provider's behaviour while it runs (deny, accessTtl, rotate, tokenDelayMs, tokenFailStatus).
    /// Makes the provider drop every access token it issued (grants and refresh tokens stay): its userinfo
    /// endpoint answers 401 to them from now on. Returns how many were dropped.
    pub fn forget_access_tokens(&self) -> u64 {
        let (status, body) = crate::http::post_json(&format!("{}/test/forget-access-tokens", self.issuer), "{}");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["forgotten"].as_u64().unwrap()
    }

    pub fn configure(&self, settings: serde_json::Value) {
        crate::http::post_json(&format!("{}/test/config", self.issuer), &settings.to_string());
    }

    /// Follows an authorization URL as a browser would, cookies kept, until it lands on the loopback callback.
    /// Returns the final status and page.
    pub fn follow(url: &str) -> (u16, String) {
        crate::http::follow_with_cookies(url)
    }

    /// Plays the user of a device authorization (RFC 8628 §3.3) on the provider's own pages, with a cookie jar:
    /// opens `verification_uri`, then submits `user_code` with "continue" (`approve`) or "abort". The provider's
    /// automatic login and consent finish an approval. Returns the last page's status and text.
    pub fn enter_user_code(verification_uri: &str, user_code: &str, approve: bool) -> (u16, String) {
        let client = reqwest::blocking::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::limited(20))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let page = client.get(verification_uri).send().expect("open the verification page").text().unwrap();
        // oidc-provider's form: <input type="hidden" name="xsrf" value="..."/>
        let marker = r#"name="xsrf" value=""#;
        let start = page.find(marker).unwrap_or_else(|| panic!("no xsrf field on the verification page: {page}")) + marker.len();
        let xsrf = &page[start..start + page[start..].find('"').unwrap()];
        let choice = if approve { ("confirm", "yes") } else { ("abort", "yes") };
        let r = client
            .post(verification_uri)
            .form(&[("xsrf", xsrf), ("user_code", user_code), choice])
            .send()
            .expect("submit the user code");
        (r.status().as_u16(), r.text().unwrap_or_default())
    }

    /// Waits until the provider's clock has moved past an access token's lifetime.
    pub fn wait(d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
