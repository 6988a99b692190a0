//! The small listeners beside the functions' one (operations, admin API): a few connections at a time, HTTP/1,
//! the head read within the server's header timeout.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::answer::Body;
use crate::tls::TlsAcceptor;

/// Accepts connections on `listener` until the task is aborted, answering each request with `answer`; with `tls`,
/// each connection's TLS handshake must finish within the header timeout.
pub(crate) async fn serve<F, Fut>(listener: TcpListener, tls: Option<TlsAcceptor>, header_timeout: Duration, answer: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let connections = Arc::new(Semaphore::new(16));
    loop {
        let Ok(permit) = connections.clone().acquire_owned().await else { return };
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let answer = answer.clone();
        let service = hyper::service::service_fn(move |req| {
            let answered = answer(req);
            async move { Ok::<_, Infallible>(answered.await) }
        });
        let builder = move || {
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(TokioTimer::new()).header_read_timeout(header_timeout);
            b
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => drop(builder().serve_connection(TokioIo::new(stream), service).await),
                Some(acceptor) => {
                    if let Ok(Ok(stream)) = tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        drop(builder().serve_connection(TokioIo::new(stream), service).await);
                    }
                }
            }
            drop(permit);
        });
    }
}
