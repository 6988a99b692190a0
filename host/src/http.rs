//! Outgoing HTTP of a function: every request passes through these hooks on its way out, and only hosts the
//! function was granted are reached. Fail closed: an empty allow-list reaches nothing.
//!
//! A request to an origin bound to a connection (`--bind`) gets that connection's token here, so the function
//! never holds it. The default sender follows no redirects: every hop a function follows is a request of its
//! own and comes back through this hook, where only its own origin decides whether a token is attached.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body::{Body, Frame};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::broker::{IssuedToken, TokenBroker};
use crate::origin::{Origin, OriginBindings};

/// One `--allow-host` entry: `api.example.com`, `api.example.com:8443`, `*.googleapis.com`, or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com`: any subdomain, not `example.com` itself.
    Suffix(String),
}

impl std::str::FromStr for HostPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        if s == "*" {
            return Ok(Self { host: HostMatch::Any, port: None });
        }
        if s.contains("://") || s.contains('/') {
            return Err(format!("`{s}` is a URL; give a host, e.g. api.example.com or api.example.com:8443"));
        }
        let parse_port = |p: &str| p.parse::<u16>().map_err(|_| format!("`{p}` in `{s}` is not a port"));
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            // An IPv6 literal in brackets, with or without a port: [::1] or [::1]:8080.
            let (h, after) = rest.split_once(']').ok_or_else(|| format!("`{s}` lacks its closing `]`"))?;
            match after.strip_prefix(':') {
                Some(p) => (h.to_owned(), Some(parse_port(p)?)),
                None if after.is_empty() => (h.to_owned(), None),
                None => return Err(format!("`{s}` has text after `]`")),
            }
        } else if s.matches(':').count() == 1 {
            let (h, p) = s.split_once(':').expect("one colon");
            (h.to_owned(), Some(parse_port(p)?))
        } else {
            (s.clone(), None)
        };
        if host.is_empty() {
            return Err(format!("`{s}` names no host"));
        }
        let host = match host.strip_prefix("*.") {
            Some(rest) if !rest.is_empty() && !rest.contains('*') => HostMatch::Suffix(format!(".{rest}")),
            _ if host.contains('*') => {
                return Err(format!("`{s}`: a wildcard may only be `*` or lead the host, as in *.example.com"));
            }
            _ => HostMatch::Exact(host),
        };
        Ok(Self { host, port })
    }
}

impl HostPattern {
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(h) => *h == host,
            HostMatch::Suffix(s) => host.ends_with(s.as_str()),
        }
    }
}

/// The outgoing-request policy of one invocation: which hosts it may reach, and which origins get a
/// connection's credential attached by the host.
#[derive(Clone, Default)]
pub struct OutboundHttp {
    policy: Arc<Policy>,
}

struct Policy {
    allowed: Vec<HostPattern>,
    bindings: OriginBindings,
    broker: Option<Arc<TokenBroker>>,
    /// Names the function in log lines.
    function: String,
    /// Per connection, how many 401s of this invocation were answered by getting another token (at most
    /// [`REJECTION_RETRIES`]): a function cannot make the host refresh again and again by calling an endpoint
    /// that refuses every token.
    retried: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Outgoing requests of this invocation open at once (each holds a socket until its connection ends).
    open: Arc<tokio::sync::Semaphore>,
    max_open: usize,
}

/// Reaches nothing (fail closed), like an empty allow-list.
impl Default for Policy {
    fn default() -> Self {
        Policy {
            allowed: Vec::new(),
            bindings: OriginBindings::default(),
            broker: None,
            function: String::new(),
            retried: Default::default(),
            open: Arc::new(tokio::sync::Semaphore::new(0)),
            max_open: 0,
        }
    }
}

impl OutboundHttp {
    /// Requests to a bound origin get the bound connection's token from `broker`; bound origins are reachable
    /// without an `--allow-host` entry of their own.
    ///
    /// At most `max_open` requests may be open at once; one more is refused (the function sees
    /// `internal-error` with the reason), never queued.
    pub fn with_bindings(
        allowed: Vec<HostPattern>,
        bindings: OriginBindings,
        broker: Arc<TokenBroker>,
        function: String,
        max_open: usize,
    ) -> Self {
        let open = Arc::new(tokio::sync::Semaphore::new(max_open));
        let retried = Default::default();
        Self { policy: Arc::new(Policy { allowed, bindings, broker: Some(broker), function, retried, open, max_open }) }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type Sent = Result<(http::Response<WasiBody>, IoFuture), HttpError>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let policy = self.policy.clone();
        Box::new(async move { policy.send(request, options).await })
    }
}

/// A request body up to this size is read whole before the request is sent (see [`Policy::send_counted`]) and
/// kept, so a request to a bound origin can be sent again after a 401.
pub const REPLAY_LIMIT: usize = 64 * 1024;

/// How many 401s of one bound connection, per invocation, the host answers by getting another token and sending
/// again; later 401s go to the function as they are.
pub const REJECTION_RETRIES: u32 = 1;

impl Policy {
    /// Counts the request against the invocation's open requests until its connection ends.
    async fn send(&self, request: http::Request<WasiBody>, options: Option<RequestOptions>) -> Sent {
        let Ok(permit) = self.open.clone().try_acquire_owned() else {
            tracing::warn!(function = %self.function, max = self.max_open, "refused an outgoing request: too many open at once");
            return Err(refused(format!(
                "this invocation already has {} outgoing requests open, its limit; wait for one to finish",
                self.max_open
            )));
        };
        let (response, io) = self.send_counted(request, options).await?;
        Ok((response, Box::new(async move {
            let _open = permit;
            Box::into_pin(io).await
        }) as IoFuture))
    }

    async fn send_counted(&self, request: http::Request<WasiBody>, options: Option<RequestOptions>) -> Sent {
        let origin = Origin::of_uri(request.uri());
        if let Some(origin) = origin {
            if let Some(connection) = self.bindings.connection_for(&origin) {
                return self.send_authorized(connection, &origin, request, options).await;
            }
        }
        let uri = request.uri();
        let host = uri.host().unwrap_or_default().to_owned();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if !self.allowed.iter().any(|p| p.matches(&host, port)) {
            tracing::warn!(function = %self.function, host = %host, port, "refused an outgoing request to a host this function was not granted (--allow-host)");
            return Err(HttpError::HttpRequestDenied);
        }
        // A body the function has not finished yet would race the answer: hyper's client closes the connection
        // (dropping the body) once a response has arrived while the request body is still being written, so a
        // server that answers without reading it (a GET's empty body, say) made the function's `finish` fail
        // with a closed stream. Up to REPLAY_LIMIT, the body is read whole before the request goes.
        let (parts, body) = request.into_parts();
        let (mut body, _) = RequestBody::read(body, REPLAY_LIMIT).await?.split();
        send(http::Request::from_parts(parts, body.take()), options).await
    }

    /// Sends `request` to a bound origin with the connection's token; after a 401, once more with a token
    /// other than the refused one, when the body could be kept.
    async fn send_authorized(
        &self,
        connection: &str,
        origin: &Origin,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Sent {
        let function = &self.function;
        let method = request.method().clone();
        if request.headers().contains_key(http::header::AUTHORIZATION) {
            tracing::warn!(%function, connection, %origin, %method, "refused a request that sets its own Authorization header on a bound origin");
            return Err(refused(format!(
                "{origin} is bound to connection `{connection}`, whose credential the host attaches itself: remove \
                 the Authorization header from the request"
            )));
        }
        if crate::reflection::reflecting_method(&method) {
            tracing::warn!(%function, connection, %origin, %method, "refused a request whose response would reflect the bound credential");
            return Err(refused(format!(
                "{method} requests to {origin} are refused: {origin} is bound to connection `{connection}`, and the \
                 response to {method} carries the request, with the credential the host attaches, back to the function"
            )));
        }
        let Some(broker) = &self.broker else {
            return Err(refused(format!("no token broker for the binding of {origin} (a wasm-host bug)")));
        };
        let token = broker.token(connection).await.map_err(|e| {
            tracing::warn!(%function, connection, %origin, %method, "cannot authorize a request: {e}");
            refused(format!("cannot authorize the request to {origin}: {e}"))
        })?;
        let (mut parts, body) = request.into_parts();
        // An echo of the credential must stay readable to the host, so it can be masked (reflection.rs).
        parts.headers.insert(http::header::ACCEPT_ENCODING, http::HeaderValue::from_static("identity"));
        let body = RequestBody::read(body, REPLAY_LIMIT).await?;
        let replayable = body.replayable();
        let (mut body, mut spare) = body.split();
        let (response, io) = send(authorized(&parts, &token, body.take())?, options).await?;
        let status = response.status();
        if status != http::StatusCode::UNAUTHORIZED || !replayable || !self.may_retry(connection) {
            tracing::info!(%function, connection, %origin, %method, status = status.as_u16(), retried = false, "authorized request");
            return Ok((self.masked(response, &[token.access_token()], connection, origin), io));
        }
        let fresh = match broker.token_after_rejection(connection, &token.access_token).await {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::warn!(%function, connection, %origin, %method, status = 401, "the API refused the token and no other could be had: {e}");
                return Ok((self.masked(response, &[token.access_token()], connection, origin), io));
            }
        };
        drop((response, io));
        let (response, io) = send(authorized(&parts, &fresh, spare.take())?, options).await?;
        tracing::info!(%function, connection, %origin, %method, status = response.status().as_u16(), retried = true, "authorized request");
        Ok((self.masked(response, &[token.access_token(), fresh.access_token()], connection, origin), io))
    }

    /// Counts a 401 answered with another token against [`REJECTION_RETRIES`]; false once they are used up.
    fn may_retry(&self, connection: &str) -> bool {
        let mut retried = self.retried.lock().expect("retry counts poisoned");
        let count = retried.entry(connection.to_owned()).or_default();
        if *count >= REJECTION_RETRIES {
            tracing::warn!(function = %self.function, connection, "another 401 from a bound origin: this invocation already got {REJECTION_RETRIES} other token(s) for it, so the 401 goes to the function");
            return false;
        }
        *count += 1;
        true
    }

    /// The response with every copy of the tokens sent removed from its headers and masked in its body.
    fn masked(
        &self,
        response: http::Response<WasiBody>,
        sent: &[&str],
        connection: &str,
        origin: &Origin,
    ) -> http::Response<WasiBody> {
        let needles = crate::reflection::Needles::new(sent.iter().copied());
        let (mut parts, body) = response.into_parts();
        let stripped = crate::reflection::strip_headers(&mut parts.headers, &needles);
        let function = self.function.clone();
        if !stripped.is_empty() {
            tracing::warn!(%function, connection, %origin, headers = ?stripped, "removed response headers that echoed the bound credential");
        }
        let (connection, origin) = (connection.to_owned(), origin.to_string());
        let report = Box::new(move |n: usize| {
            tracing::warn!(%function, %connection, %origin, occurrences = n, "masked the bound credential echoed in a response body");
        });
        http::Response::from_parts(parts, crate::reflection::Masked::wrap(body, needles, report))
    }
}

async fn send(request: http::Request<WasiBody>, options: Option<RequestOptions>) -> Sent {
    let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
    Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as IoFuture))
}

/// An error the function sees as `internal-error(some(message))`: the one error code of wasi:http that carries
/// words, so the function's author reads why.
fn refused(why: String) -> HttpError {
    HttpError::InternalError(Some(format!("wasm-host refused the request: {why}")))
}

/// A copy of the request with `Authorization: <token_type> <access_token>`, marked sensitive so it is never
/// printed by the HTTP stack.
fn authorized(parts: &http::request::Parts, token: &IssuedToken, body: WasiBody) -> Result<http::Request<WasiBody>, HttpError> {
    let scheme = if token.token_type.eq_ignore_ascii_case("bearer") { "Bearer" } else { token.token_type.as_str() };
    let mut value = http::HeaderValue::try_from(format!("{scheme} {}", token.access_token()))
        .map_err(|_| refused("the stored access token cannot be sent in a header; authorize the connection again".into()))?;
    value.set_sensitive(true);
    let mut request = http::Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    request.headers_mut().insert(http::header::AUTHORIZATION, value);
    Ok(request)
}

/// A request body as the host holds it: read whole when small (it can be sent twice), else streamed through
/// once, starting with what was read while finding out.
enum RequestBody {
    Empty,
    Buffered { data: Bytes, trailers: Option<http::HeaderMap> },
    Streaming(WasiBody),
}

impl RequestBody {
    async fn read(mut body: WasiBody, limit: usize) -> Result<Self, HttpError> {
        if body.is_end_stream() {
            return Ok(Self::Empty);
        }
        let mut data = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            match frame?.into_data() {
                Ok(chunk) => {
                    data.extend_from_slice(&chunk);
                    if data.len() > limit {
                        let prefix = Frames { frames: [Frame::data(data.freeze())].into(), rest: Some(body) };
                        return Ok(Self::Streaming(prefix.boxed_unsync()));
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        return Ok(Self::Buffered { data: data.freeze(), trailers: Some(trailers) });
                    }
                }
            }
        }
        Ok(Self::Buffered { data: data.freeze(), trailers: None })
    }

    fn replayable(&self) -> bool {
        !matches!(self, Self::Streaming(_))
    }

    /// The body for the first send and, when it can be sent again, a copy for the retry.
    fn split(self) -> (OnceBody, OnceBody) {
        match self {
            Self::Empty => (OnceBody::frames(vec![]), OnceBody::frames(vec![])),
            Self::Buffered { data, trailers } => {
                let frames = || {
                    let mut f = vec![Frame::data(data.clone())];
                    if let Some(t) = &trailers {
                        f.push(Frame::trailers(t.clone()));
                    }
                    f
                };
                (OnceBody::frames(frames()), OnceBody::frames(frames()))
            }
            Self::Streaming(body) => (OnceBody(Some(body)), OnceBody(None)),
        }
    }
}

/// A body that can be taken once.
struct OnceBody(Option<WasiBody>);

impl OnceBody {
    fn frames(frames: Vec<Frame<Bytes>>) -> Self {
        Self(Some(Frames { frames: frames.into(), rest: None }.boxed_unsync()))
    }

    fn take(&mut self) -> WasiBody {
        self.0.take().unwrap_or_else(|| Frames { frames: Default::default(), rest: None }.boxed_unsync())
    }
}

/// Frames already read, then whatever is left of the body they came from.
pub(crate) struct Frames {
    pub(crate) frames: std::collections::VecDeque<Frame<Bytes>>,
    pub(crate) rest: Option<WasiBody>,
}

impl Body for Frames {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match &mut self.rest {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        s.parse().unwrap()
    }

    #[test]
    fn patterns() {
        assert!(p("*").matches("anything.example", 1));
        assert!(p("api.example.com").matches("API.example.com", 443));
        assert!(!p("api.example.com").matches("evil-api.example.com", 443));
        assert!(p("api.example.com:8443").matches("api.example.com", 8443));
        assert!(!p("api.example.com:8443").matches("api.example.com", 443));
        assert!(p("*.googleapis.com").matches("www.googleapis.com", 443));
        assert!(!p("*.googleapis.com").matches("googleapis.com", 443));
        assert!(!p("*.googleapis.com").matches("googleapis.com.evil.example", 443));
        assert!(p("127.0.0.1:8080").matches("127.0.0.1", 8080));
        assert!(p("[::1]:8080").matches("[::1]", 8080));
        assert!("https://x.example".parse::<HostPattern>().is_err());
        assert!("a.*.example".parse::<HostPattern>().is_err());
        assert!("x.example:http".parse::<HostPattern>().is_err());
    }
}
