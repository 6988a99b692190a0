//! The benchmark's ceiling (scripts/bench-serve.sh): a native hyper server that answers every request with the
//! bytes `tests/guests/http-trivial` answers (`{"ok":true}`, application/json), on the address in its first
//! argument.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        println!("listening on http://{}", listener.local_addr().expect("local address"));
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req: hyper::Request<hyper::body::Incoming>| async move {
                    let mut response = hyper::Response::new(Full::new(Bytes::from_static(br#"{"ok":true}"#)));
                    response.headers_mut().insert("content-type", "application/json".parse().expect("a header value"));
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
}
