//! The HTTP client for provider calls: redirects off (a token request must never be replayed elsewhere),
//! bounded time, bounded response size.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
}

/// How long one provider call may take, connect to last byte, unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl Http {
    pub fn new(timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .user_agent(concat!("wasm-host/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend initialises");
        Self { client }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl Default for Http {
    fn default() -> Self {
        Self::new(DEFAULT_TIMEOUT)
    }
}

/// Reads a response body, refusing one larger than `cap` bytes.
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    if response.content_length().is_some_and(|l| l > cap as u64) {
        return Err(format!("the answer is larger than {cap} bytes"));
    }
    // Sized up front when the length is known, so that growing leaves no copies of a token behind.
    let mut body = Vec::with_capacity(response.content_length().map_or(0, |l| l as usize).min(cap));
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > cap {
            return Err(format!("the answer is larger than {cap} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A reqwest error as a sentence, without the URL's query (which could hold a code) repeated.
pub fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "request failed"
    };
    match e.url() {
        Some(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{what}: {}://{}{port}{}", u.scheme(), u.host_str().unwrap_or(""), u.path())
        }
        None => what.to_owned(),
    }
}
