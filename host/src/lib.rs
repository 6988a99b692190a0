//! The wasm-host runtime: runs a function component with WASI p2, wasi:http and the `authconnection`
//! interface, handing it tokens from the encrypted store.

mod authconnection;
mod bindings;
mod broker;
mod cache;
mod function;
mod grants;
mod http;
mod origin;
mod output;
mod redaction;
mod reflection;
mod state;

pub use authconnection::{add_to_linker, AuthConnectionCtx, AuthConnectionView};
pub use broker::{BrokerStats, IssuedToken, RefreshObserver, TokenBroker, TokenError, DEFAULT_REFRESH_MARGIN};
pub use cache::{CacheEntry, CacheError, CacheOutcome, CompileCache, DEFAULT_CACHE_MAX};
pub use function::{
    FunctionHost, HostOptions, InvocationSettings, InvokeError, LoadError, LoadedFunction, World,
    DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_OPEN_REQUESTS, DEFAULT_MAX_RESOURCES,
};
pub use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
pub use wasmtime_wasi_http::Error as HttpError;
pub use grants::ConnectionGrants;
pub use http::{HostPattern, REPLAY_LIMIT};
/// The wasmtime version this host is built on, e.g. `48.0.8`.
pub const WASMTIME_VERSION: &str = wasmtime_environ::VERSION;

pub use origin::{BindingError, Origin, OriginBinding, OriginBindings};
pub use output::DEFAULT_MAX_LOG;
