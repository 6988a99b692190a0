//! OAuth2 and OpenID Connect for wasm-host, with no wasmtime in sight: endpoint resolution (presets and
//! discovery), the loopback authorization-code flow (PKCE S256, `state`, `nonce`), token exchange and refresh,
//! RFC 7009 revocation and ID-token validation. Every secret stays in a `secrecy` type; no error carries one.

pub mod authorize;
pub mod endpoints;
pub mod http;
pub mod idtoken;
mod redaction;
pub mod revoke;
pub mod token;

pub use authorize::{AuthorizationRequest, Callback, CallbackError, CallbackServer};
pub use endpoints::{resolve, EndpointError, EndpointSettings, ProviderEndpoints};
pub use http::Http;
pub use token::{ClientAuth, ClientCredentials, TokenError, TokenResponse};
