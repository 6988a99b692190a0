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
pub use broker::{IssuedToken, TokenBroker, TokenError, DEFAULT_REFRESH_MARGIN};
pub use cache::{CacheError, CacheOutcome, CompileCache};
pub use function::{
    FunctionHost, HostOptions, InvocationSettings, InvokeError, LoadError, LoadedFunction, DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_OPEN_REQUESTS, DEFAULT_MAX_RESOURCES,
};
pub use grants::ConnectionGrants;
pub use http::{HostPattern, REPLAY_LIMIT};
pub use origin::{BindingError, Origin, OriginBinding, OriginBindings};
pub use output::DEFAULT_MAX_LOG;
