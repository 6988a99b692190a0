//! Changing connections: what `authconnection create|update|delete|revoke` do, shared by the command line (on a
//! local store) and the admin API (on the server's store), so both check the same things in the same order and
//! fail with the same [`ErrorKind`].
//!
//! Every function checks its whole input before it touches the store: a refused change changes nothing.

mod catalog_fill;
mod connection_json;
mod create;
mod error;
pub mod options;
mod request;
mod revoke;
mod update;

pub use catalog_fill::{fill, Filled};
pub use connection_json::{ConnectionJson, EndpointsJson};
pub use create::{create, PreparedCreate};
pub use error::{bad_input, ChangeError, ErrorKind};
pub use request::{CreateRequest, EndpointsRequest, ProtocolRequest, UpdateRequest};
pub use revoke::{endpoint_settings, revoke, Revoked};
pub use update::{update, PreparedUpdate, Updated};

use wasm_host_store::{validate_name, Store};

/// Removes connection `name` and every secret it holds.
///
/// # Errors
/// [`ErrorKind::BadInput`] for a malformed name, [`ErrorKind::NotFound`] when there is no such connection, the
/// store's own errors otherwise.
pub fn delete(store: &Store, name: &str) -> Result<(), ChangeError> {
    validate_name(name)?;
    Ok(store.delete(name)?)
}
