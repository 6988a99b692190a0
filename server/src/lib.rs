//! `wasm-host serve`: functions behind one HTTP listener.
//!
//! This crate owns processes and sockets, not policy: what a function may reach and use comes from its
//! manifest, resolved by the caller into [`FunctionSpec`]s; the engine, the instance pool and the token broker
//! are the runtime's ([`wasm_host_runtime::FunctionHost`]), shared by every function and request.

pub mod admin;
pub mod admin_authorize;
pub mod admin_device;
pub mod manage;
mod admission;
mod body;
pub mod answer;
mod metrics;
mod ops;
mod refresher;
mod routes;
mod server;
mod side_listener;
pub mod tls;
pub mod watch;

pub use admission::{Admission, Refused};
pub use routes::{FunctionSpec, RouteError, Routes};
pub use server::{Catalog, Limits, ServeError, Server, Signals};
