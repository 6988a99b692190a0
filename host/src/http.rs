//! Outgoing HTTP of a function: every request passes through these hooks on its way out.

use wasmtime_wasi_http::WasiHttpHooks;

/// The outgoing-request policy of one invocation. For now every request goes out through wasmtime's default
/// sender; the allow-list and host-attached credentials hook in here.
#[derive(Debug, Default)]
pub struct OutboundHttp {}

impl WasiHttpHooks for OutboundHttp {}
