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

/// Accepts connections on `listener` until the task is aborted, answering each request with `answer`.
pub(crate) async fn serve<F, Fut>(listener: TcpListener, header_timeout: Duration, answer: F)
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
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
}
