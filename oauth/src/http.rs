//! The HTTP client for provider calls: redirects off (a token request must never be replayed elsewhere),
//! bounded time, bounded response size.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
}

/// How long one provider call may take, connect to last byte of the body, unless configured otherwise. A
/// provider that accepts the connection and never answers (or stops halfway) fails after this long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting may take, at most: an unreachable host fails sooner than the whole call would.
pub const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Http {
    pub fn new(timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
            .timeout(timeout)
            .user_agent(concat!("wasm-host/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend initialises");
        Self { client }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends one request built by `oauth2` or `openidconnect` (their `AsyncHttpClient` is any async closure over
    /// this): redirects off, the answer capped at `cap` bytes, the request body (which holds a code, a refresh
    /// token or a client secret) wiped once sent. The answer comes back with its status and `Content-Type`.
    pub async fn send(&self, request: oauth2::HttpRequest, cap: usize) -> Result<Answer, SendError> {
        let (head, body) = request.into_parts();
        let body = zeroize::Zeroizing::new(body);
        let url = reqwest::Url::parse(&head.uri.to_string()).map_err(|_| SendError::Unreachable("an invalid URL".into()))?;
        let mut req = self.client.request(head.method, url).headers(head.headers);
        if !body.is_empty() {
            req = req.body(body.to_vec());
        }
        let response = req.send().await.map_err(|e| SendError::Unreachable(describe(&e)))?;
        drop(body);
        let status = response.status().as_u16();
        let content_type = response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = zeroize::Zeroizing::new(read_capped(response, cap).await.map_err(|e| SendError::Body { status, error: e })?);
        Ok(Answer { status, content_type, body })
    }
}

/// A provider's answer, read whole: the body is wiped when dropped.
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: zeroize::Zeroizing<Vec<u8>>,
}

impl Answer {
    /// As the libraries take it: the status and the body, with `Content-Type: application/json` (the answer was
    /// reshaped or is to be read as JSON whatever type it was served as).
    pub(crate) fn into_library(status: u16, body: zeroize::Zeroizing<Vec<u8>>) -> oauth2::HttpResponse {
        let mut response = oauth2::HttpResponse::new(body.to_vec());
        *response.status_mut() = oauth2::http::StatusCode::from_u16(status).unwrap_or(oauth2::http::StatusCode::BAD_GATEWAY);
        response.headers_mut().insert(oauth2::http::header::CONTENT_TYPE, oauth2::http::HeaderValue::from_static("application/json"));
        response
    }
}

/// Why a request got no whole answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection, or no answer in time.
    #[error("{0}")]
    Unreachable(String),
    /// The answer's body was too large or broke off.
    #[error("{error}")]
    Body { status: u16, error: BodyError },
}

impl Default for Http {
    fn default() -> Self {
        Self::new(DEFAULT_TIMEOUT)
    }
}

/// Why a response body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Larger than the cap: refused without reading the rest.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The connection broke or timed out while the body was read.
    #[error("{0}")]
    Broken(String),
}

/// Reads a response body, refusing one larger than `cap` bytes. The reading is bounded in time by the client's
/// total timeout (a server that sends its head and then stalls times out like one that never answers).
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|l| l > cap as u64) {
        return Err(BodyError::TooLarge(cap));
    }
    let url = response.url().clone();
    // Sized up front when the length is known, so that growing leaves no copies of a token behind.
    let mut body = Vec::with_capacity(response.content_length().map_or(0, |l| l as usize).min(cap));
    // A body error carries no URL of its own: name the server in the message.
    while let Some(chunk) = response.chunk().await.map_err(|e| BodyError::Broken(describe(&e.with_url(url.clone()))))? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge(cap));
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
