//! The `wasm-host:authconnection/authconnection` interface, in the shape of wasmtime's small WIT hosts: a
//! context owned by the store's data, a borrowing view, and `add_to_linker` taking a getter for the view.

use std::sync::Arc;

use secrecy::ExposeSecret;
use wasmtime::component::{HasData, Linker};
use wasm_host_store::printable;

use crate::bindings::{self, AuthError, ConnectionToken};
use crate::broker::{IssuedToken, TokenBroker, TokenError};
use crate::grants::ConnectionGrants;

/// What one invocation may reach through `authconnection`.
pub struct AuthConnectionCtx {
    source: Source,
    grants: ConnectionGrants,
}

#[derive(Clone)]
pub(crate) enum Source {
    Broker(Arc<TokenBroker>),
    /// One token for every granted name, no store: the baseline the benchmarks measure the broker against.
    Constant(Arc<IssuedToken>),
}

impl AuthConnectionCtx {
    pub fn new(broker: Arc<TokenBroker>, grants: ConnectionGrants) -> Self {
        Self { source: Source::Broker(broker), grants }
    }

    pub(crate) fn with_source(source: Source, grants: ConnectionGrants) -> Self {
        Self { source, grants }
    }
}

/// A borrow of the context, handed to the generated host trait.
pub struct AuthConnectionView<'a> {
    pub ctx: &'a AuthConnectionCtx,
}

struct AuthConnection;

impl HasData for AuthConnection {
    type Data<'a> = AuthConnectionView<'a>;
}

/// Adds `authconnection` to `linker`; `getter` finds the context in the store's data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    getter: fn(&mut T) -> AuthConnectionView<'_>,
) -> wasmtime::Result<()> {
    bindings::add_authconnection_to_linker::<T, AuthConnection>(linker, getter)
}

impl bindings::AuthHost for AuthConnectionView<'_> {
    async fn get_connection_token(&mut self, name: String) -> Result<ConnectionToken, AuthError> {
        self.issue(name, None).await
    }

    async fn get_connection_token_after_rejection(
        &mut self,
        name: String,
        rejected: String,
    ) -> Result<ConnectionToken, AuthError> {
        self.issue(name, Some(secrecy::SecretString::from(rejected))).await
    }
}

impl AuthConnectionView<'_> {
    /// A token for `name` (other than `rejected`, when given), or the WIT error saying why not.
    async fn issue(&self, name: String, rejected: Option<secrecy::SecretString>) -> Result<ConnectionToken, AuthError> {
        // Checked before anything else, so a function cannot learn which connections exist by guessing.
        if !self.ctx.grants.allows(&name) {
            return Err(AuthError::AccessDenied(format!(
                "this function was not granted connection `{}`: run it with --allow-connection {}",
                printable(&name),
                printable(&name)
            )));
        }
        let issued = match (&self.ctx.source, &rejected) {
            (Source::Broker(broker), None) => broker.token(&name).await,
            (Source::Broker(broker), Some(r)) => broker.token_after_rejection(&name, r).await,
            (Source::Constant(token), _) => Ok(token.clone()),
        };
        match issued {
            Ok(t) => Ok(ConnectionToken {
                access_token: t.access_token.expose_secret().to_owned(),
                token_type: t.token_type.clone(),
                expires_at: t.expires_at_text.clone(),
                refresh_token: t.refresh_token.as_ref().map(|r| r.expose_secret().to_owned()),
                scopes: t.scopes.clone(),
                metadata: t.metadata.clone(),
            }),
            Err(TokenError::NotFound(n)) => Err(AuthError::NotFound(format!("no connection named `{n}`"))),
            Err(TokenError::NeedsAuthorization(m)) => Err(AuthError::NeedsAuthorization(m)),
            Err(TokenError::Unavailable(m)) => Err(AuthError::Unavailable(m)),
            Err(TokenError::Internal(m)) => {
                tracing::error!(connection = %printable(&name), "cannot issue a token: {m}");
                Err(AuthError::Internal(m))
            }
        }
    }
}
