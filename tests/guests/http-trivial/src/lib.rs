//! The smallest `wasi:http/proxy` component: every request gets 200 and `{"ok":true}`. Imports nothing of
//! wasm-host's, so `wasmtime serve` runs it too: the benchmark's common ground (scripts/bench-serve.sh).

wit_bindgen::generate!({ world: "wasi:http/proxy@0.2.12", path: "../../../wit", generate_all });

use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Trivial;

impl Guest for Trivial {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let headers = Fields::from_list(&[("content-type".to_owned(), b"application/json".to_vec())]).unwrap();
        let response = OutgoingResponse::new(headers);
        let body = response.body().unwrap();
        ResponseOutparam::set(out, Ok(response));
        let stream = body.write().unwrap();
        stream.blocking_write_and_flush(br#"{"ok":true}"#).unwrap();
        drop(stream);
        OutgoingBody::finish(body, None).unwrap();
    }
}

export!(Trivial);
