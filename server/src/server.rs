//! The listener: accepts connections within limits, routes each request to its function, reloads on SIGHUP
//! and drains on SIGTERM/SIGINT.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use wasm_host_runtime::FunctionHost;

use crate::admission::{Admission, Refused};
use crate::body::{self, BodyRefused};
use crate::metrics::Metrics;
use crate::answer::{self, Body};
use crate::routes::{FunctionSpec, RouteError, Routes, Served, Target};
use crate::tls::TlsAcceptor;

/// Re-reads the operator's list of functions (components and manifests), for the start and every reload.
/// The error is a message for the log: what is wrong and what to do.
pub type Catalog = Box<dyn Fn() -> Result<Vec<FunctionSpec>, String> + Send + Sync>;

/// The server's limits. Every field bounds something a client controls.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Invocations running at once (the instance pool holds this many).
    pub max_concurrent: usize,
    /// Requests waiting for an invocation slot; past this, 503 with `Retry-After`.
    pub max_queue: usize,
    /// How long a request waits in the queue before it gets 503.
    pub queue_timeout: Duration,
    /// Bytes of a request body.
    pub max_body: usize,
    /// Bytes of a request head (request line and headers); past this, 431.
    pub max_header: usize,
    /// Time for a request head to arrive, on a new connection or an idle kept-alive one: a silent client is
    /// disconnected after this.
    pub header_timeout: Duration,
    /// Time for a JSON function's request body to arrive.
    pub body_timeout: Duration,
    /// How long SIGTERM/SIGINT waits for requests in flight before exiting anyway.
    pub drain_timeout: Duration,
    /// The background refresher renews a granted connection's token once it would stop being fresh within
    /// this; `None` turns the refresher off (requests then refresh, as `run` does).
    pub refresh_ahead: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_concurrent: 100,
            max_queue: 1000,
            queue_timeout: Duration::from_secs(10),
            max_body: 6 << 20,
            max_header: 16 << 10,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            refresh_ahead: Some(Duration::from_secs(300)),
        }
    }
}

#[derive(Debug, Error)]
pub enum ServeError {
    #[error(transparent)]
    Routes(#[from] RouteError),
    #[error("no function to serve: give at least one FUNCTION (a .wasm file, NAME=FILE.wasm or a directory of them)")]
    Empty,
    #[error("cannot listen for signals: {0}")]
    Signals(std::io::Error),
}

/// SIGTERM, SIGINT and SIGHUP, caught from the moment this is made: install them before telling anyone where
/// the server listens, or an early SIGHUP would end the process.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Must be called inside the tokio runtime.
    pub fn install() -> Result<Self, ServeError> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(ServeError::Signals)?,
            int: signal(SignalKind::interrupt()).map_err(ServeError::Signals)?,
            hup: signal(SignalKind::hangup()).map_err(ServeError::Signals)?,
        })
    }
}

pub struct Server {
    host: Arc<FunctionHost>,
    routes: RwLock<Arc<Routes>>,
    catalog: Catalog,
    limits: Limits,
    admission: Arc<Admission>,
    metrics: Metrics,
    draining: AtomicBool,
    next_id: AtomicU64,
    /// Distinguishes this process's request ids from another's.
    id_prefix: u32,
}

impl Server {
    /// Loads `specs` (what the catalog lists now, resolved by the caller so that its errors keep their kind);
    /// any function that fails to load refuses the start. `catalog` is read again at each reload.
    pub fn new(
        host: Arc<FunctionHost>,
        specs: Vec<FunctionSpec>,
        catalog: Catalog,
        limits: Limits,
    ) -> Result<Self, ServeError> {
        if specs.is_empty() {
            return Err(ServeError::Empty);
        }
        let routes = Routes::load(&host, specs)?;
        let admission = Arc::new(Admission::new(limits.max_concurrent, limits.max_queue, limits.queue_timeout));
        let metrics = Metrics::new(admission.clone(), host.broker().clone());
        let id_prefix = std::process::id() ^ (wasm_host_store::now_millis() as u32).rotate_left(16);
        Ok(Self {
            host,
            routes: RwLock::new(Arc::new(routes)),
            catalog,
            limits,
            admission,
            metrics,
            draining: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            id_prefix,
        })
    }

    pub fn routes(&self) -> Arc<Routes> {
        self.routes.read().expect("routes lock poisoned").clone()
    }

    pub fn host(&self) -> &Arc<FunctionHost> {
        &self.host
    }

    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Loads the catalog again and swaps the routing table; requests in flight finish on the functions they
    /// started with. A function that fails to load keeps its old version serving; each failure is logged with
    /// its reason. Returns how many functions serve now.
    pub fn reload(&self) -> usize {
        let started = Instant::now();
        let specs = match (self.catalog)() {
            Ok(specs) => specs,
            Err(e) => {
                tracing::error!("reload refused, the functions serving stay as they were: {e}");
                return self.routes().len();
            }
        };
        match self.routes().reload(&self.host, specs) {
            Ok((routes, failures)) => {
                for f in &failures {
                    tracing::error!("reload: {}; its previous version (if any) keeps serving", chain(f));
                }
                let n = routes.len();
                *self.routes.write().expect("routes lock poisoned") = Arc::new(routes);
                tracing::info!(functions = n, failed = failures.len(), elapsed_ms = started.elapsed().as_millis() as u64, "reloaded");
                n
            }
            Err(e) => {
                tracing::error!("reload refused, the functions serving stay as they were: {}", chain(&e));
                self.routes().len()
            }
        }
    }

    /// Serves `listener` until SIGTERM or SIGINT, then stops accepting, lets requests in flight finish (at most
    /// `drain_timeout`) and returns. SIGHUP reloads the functions. `operations`, when given, serves `/healthz`,
    /// `/readyz` and `/metrics` until the drain ends.
    pub async fn run(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        operations: Option<TcpListener>,
        signals: Signals,
    ) -> Result<(), ServeError> {
        let Signals { mut term, mut int, mut hup } = signals;
        let (stop_tx, mut stop) = watch::channel(false);
        let signals = {
            let server = self.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = term.recv() => break,
                        _ = int.recv() => break,
                        _ = hup.recv() => {
                            tracing::info!("SIGHUP: reloading the functions");
                            let server = server.clone();
                            // Compiling is blocking work: off the request threads.
                            let _ = tokio::task::spawn_blocking(move || server.reload()).await;
                        }
                    }
                }
                let _ = stop_tx.send(true);
            })
        };

        let ops = operations.map(|l| tokio::spawn(self.clone().operations_loop(l)));
        let refresher = self.limits.refresh_ahead.map(|ahead| tokio::spawn(crate::refresher::run(self.clone(), ahead)));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let connections = Arc::new(Semaphore::new(self.limits.max_connections));
        loop {
            let permit = tokio::select! {
                _ = stop.changed() => break,
                p = connections.clone().acquire_owned() => p.expect("the connection semaphore is never closed"),
            };
            let (stream, peer) = tokio::select! {
                _ = stop.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, say: wait for connections to close rather than spin.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let watcher = graceful.watcher();
            match &tls {
                None => self.clone().spawn_connection(watcher, TokioIo::new(stream), peer, false, permit),
                Some(acceptor) => {
                    let (server, acceptor) = (self.clone(), acceptor.clone());
                    let handshake_timeout = self.limits.header_timeout;
                    tokio::spawn(async move {
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => server.spawn_connection(watcher, TokioIo::new(stream), peer, true, permit),
                            Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
            }
        }
        drop(listener);
        self.draining.store(true, Ordering::SeqCst);
        tracing::info!("stopping: no new connections; waiting for requests in flight");
        tokio::select! {
            _ = graceful.shutdown() => tracing::info!("every request in flight has completed"),
            _ = tokio::time::sleep(self.limits.drain_timeout) => {
                tracing::warn!("requests still in flight after the drain deadline of {:?}; exiting anyway", self.limits.drain_timeout);
            }
        }
        signals.abort();
        for task in [ops, refresher].into_iter().flatten() {
            task.abort();
        }
        Ok(())
    }

    /// Serves the operations listener until aborted.
    async fn operations_loop(self: Arc<Self>, listener: TcpListener) {
        let timeout = self.limits.header_timeout;
        crate::side_listener::serve(listener, None, timeout, move |req| {
            let server = self.clone();
            async move { server.operations(&req) }
        })
        .await
    }

    fn spawn_connection<I>(
        self: Arc<Self>,
        watcher: hyper_util::server::graceful::Watcher,
        io: I,
        peer: SocketAddr,
        https: bool,
        permit: OwnedSemaphorePermit,
    ) where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let server = self.clone();
        let service = hyper::service::service_fn(move |req| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.handle(req, https).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .max_buf_size(self.limits.max_header.max(8192))
            .max_header_size(self.limits.max_header)
            .keep_alive(true)
            .serve_connection(io, service);
        let conn = watcher.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
            drop(permit);
        });
    }

    fn request_id(&self) -> String {
        format!("{:08x}-{:08x}", self.id_prefix, self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// One request: routed, admitted, invoked, answered, and logged in one line. `https`: it came over TLS.
    async fn handle(&self, req: Request<Incoming>, https: bool) -> Response<Body> {
        let id = self.request_id();
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let routes = self.routes();
        let (mut response, function, outcome) = match routes.find(&path) {
            Target::Json(served) => {
                let (r, o) = self.json(served, req).await;
                (r, Some(served.spec.name.as_str()), o)
            }
            Target::Http(served) => {
                let (r, o) = self.http(served, req, https).await;
                (r, Some(served.spec.name.as_str()), o)
            }
            Target::None => {
                let r = answer::error(StatusCode::NOT_FOUND, "no-route", &format!("no function serves {path}"));
                (r, None, "no-route")
            }
        };
        if self.draining.load(Ordering::Relaxed) {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        let elapsed = started.elapsed();
        self.metrics.record(function.unwrap_or("-"), outcome, elapsed.as_secs_f64());
        if let Ok(v) = HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-request-id", v);
        }
        tracing::info!(
            request_id = %id,
            %method,
            path = %path,
            function = function.unwrap_or("-"),
            status = response.status().as_u16(),
            outcome,
            elapsed_us = elapsed.as_micros() as u64,
            "request"
        );
        response
    }

    async fn admit(&self) -> Result<OwnedSemaphorePermit, (Response<Body>, &'static str)> {
        match self.admission.enter().await {
            Ok(permit) => Ok(permit),
            Err(Refused::QueueFull) => Err((answer::overloaded(1), "overloaded")),
            Err(Refused::WaitedTooLong) => Err((answer::overloaded(1), "overloaded")),
        }
    }

    /// Whether the request's Content-Length is larger than the limit, told before anything is read.
    fn declared_too_large(&self, req: &Request<Incoming>) -> bool {
        let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        declared.is_some_and(|n| n > self.limits.max_body as u64)
    }

    /// 413 for a body declared too large; what the client sends anyway is read and discarded first (see
    /// [`body`]) unless it waits for `100 Continue`.
    async fn refuse_declared(&self, req: Request<Incoming>) -> (Response<Body>, &'static str) {
        if !body::expects_continue(req.headers()) {
            body::linger(req.into_body()).await;
        }
        self.body_too_large()
    }

    /// 413, and the connection closes after it: the rest of the body may not have been read.
    fn body_too_large(&self) -> (Response<Body>, &'static str) {
        let message = format!("the request body is larger than the server's limit of {} bytes", self.limits.max_body);
        let mut r = answer::error(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large", &message);
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        (r, "body-too-large")
    }

    /// `POST /ROUTE` with a JSON body: `run(body)`, its `ok` value as the answer.
    async fn json(&self, served: &Arc<Served>, req: Request<Incoming>) -> (Response<Body>, &'static str) {
        if req.method() != Method::POST {
            let mut r = answer::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                &format!("function `{}` takes POST with a JSON body", served.spec.name),
            );
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
            return (r, "method-not-allowed");
        }
        if self.declared_too_large(&req) {
            return self.refuse_declared(req).await;
        }
        let bytes = match body::read_capped(req.into_body(), self.limits.max_body, self.limits.body_timeout).await {
            Ok(bytes) => bytes,
            Err(BodyRefused::TooLarge) => return self.body_too_large(),
            Err(BodyRefused::Timeout) => {
                let message = format!("the request body did not arrive within {:?}", self.limits.body_timeout);
                return (answer::error(StatusCode::REQUEST_TIMEOUT, "body-timeout", &message), "body-timeout");
            }
            Err(BodyRefused::Broken) => {
                let message = "the request body could not be read (the client closed the connection?)";
                return (answer::error(StatusCode::BAD_REQUEST, "bad-input", message), "bad-input");
            }
        };
        let input = if bytes.is_empty() { "null" } else {
            match std::str::from_utf8(&bytes) {
                Ok(s) if serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok() => s,
                _ => {
                    let message = "the request body is not JSON; send a JSON value (an empty body means null)";
                    return (answer::error(StatusCode::BAD_REQUEST, "bad-input", message), "bad-input");
                }
            }
        };
        let _permit = match self.admit().await {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        let spec = &served.spec;
        match self.host.invoke(&served.function, input, &spec.settings).await {
            Ok(Ok(output)) => (answer::json(output), "ok"),
            Ok(Err(message)) => {
                (answer::error(StatusCode::INTERNAL_SERVER_ERROR, "function-error", &message), "function-error")
            }
            Err(e) => {
                tracing::warn!(function = %spec.name, "{e}");
                answer::invoke_error(&spec.name, &e)
            }
        }
    }

    /// Any request under the route of an HTTP function: handed to it as it came, its answer streamed back.
    async fn http(&self, served: &Arc<Served>, req: Request<Incoming>, https: bool) -> (Response<Body>, &'static str) {
        if self.declared_too_large(&req) {
            return self.refuse_declared(req).await;
        }
        if req.uri().authority().is_none() && !req.headers().contains_key(header::HOST) {
            let message = "the request has no Host header; HTTP/1.1 requires one";
            return (answer::error(StatusCode::BAD_REQUEST, "bad-input", message), "bad-input");
        }
        let permit = match self.admit().await {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        let max_body = self.limits.max_body;
        let req = req.map(|body| {
            Limited::new(body, max_body).map_err(move |e| match e.downcast::<hyper::Error>() {
                Ok(e) => wasm_host_runtime::HttpError::Hyper(*e),
                Err(_) => wasm_host_runtime::HttpError::HttpRequestBodySize(Some(max_body as u64)),
            })
        });
        let spec = &served.spec;
        match self.host.handle_http(&served.function, req, https, &spec.settings).await {
            Ok(response) => (response.map(|body| Holding { body, _permit: permit }.boxed_unsync()), "ok"),
            Err(e) => {
                tracing::warn!(function = %spec.name, "{e}");
                answer::invoke_error(&spec.name, &e)
            }
        }
    }
}

/// An error and its causes, each once: "function `x`: cause: root".
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// A response body that holds its invocation slot until it ends: an HTTP function goes on running while it
/// writes its body.
struct Holding {
    body: Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for Holding {
    type Data = Bytes;
    type Error = wasm_host_runtime::HttpError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
