//! OAuth2 and OpenID Connect for wasm-host, with no wasmtime in sight: endpoint resolution (presets and
//! discovery), the loopback authorization-code flow (PKCE S256, `state`, `nonce`), token exchange and refresh,
//! RFC 7009 revocation and ID-token validation. Every secret stays in a `secrecy` type; no error carries one.

mod answer;
pub mod authorize;
pub mod catalog;
pub mod device;
pub mod endpoints;
pub mod http;
pub mod idtoken;
mod redaction;
pub mod revoke;
pub mod token;

pub use authorize::{AuthorizationRequest, Callback, CallbackError, CallbackServer, Outcome, PendingCallback};
pub use endpoints::{resolve, EndpointError, EndpointSettings, ProviderEndpoints};
pub use http::Http;
pub use token::{ClientAuth, ClientCredentials, TokenError, TokenResponse};

/// Text from a provider (an error code, a description, an issuer) as it may be shown in a message: at most
/// `max_chars` characters, control characters escaped, so that no escape sequence from the network reaches a
/// terminal or a log line.
pub fn shown(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut pieces = text.chars().flat_map(|c| {
        let (escaped, plain) = if c.is_control() { (Some(c.escape_default()), None) } else { (None, Some(c)) };
        escaped.into_iter().flatten().chain(plain)
    });
    out.extend(pieces.by_ref().take(max_chars));
    out
}
