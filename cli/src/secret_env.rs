//! Secret-bearing environment variables, taken out of the process environment at start.
//!
//! A child process inherits the environment: `$BROWSER` or `xdg-open` during `authorize`, node and npm (and every
//! install script of npm's dependencies) during `build-js`. So each variable that carries a secret is read once,
//! into a `secrecy` type, and removed before anything else runs; no child can receive it, whatever starts it.

use std::sync::OnceLock;

use secrecy::SecretString;

/// The identity's secret key itself (`AGE-SECRET-KEY-1...`), for hosts that mount no key file.
pub const IDENTITY_KEY: &str = "WASM_HOST_IDENTITY_KEY";
/// `authconnection create`'s client secret.
pub const CLIENT_SECRET: &str = "WASM_HOST_CLIENT_SECRET";
/// `--remote`'s admin token.
pub const ADMIN_TOKEN: &str = "WASM_HOST_ADMIN_TOKEN";
/// Every variable of this kind. Add a new secret-bearing variable here, never read it with `std::env`.
pub const SECRET_VARIABLES: [&str; 3] = [IDENTITY_KEY, CLIENT_SECRET, ADMIN_TOKEN];
/// The store location: taken out like the others when it is a `postgres://` URL (which may carry a password); a
/// path stays, for clap to read.
pub const STORE: &str = "WASM_HOST_STORE";

struct Taken {
    identity_key: Option<SecretString>,
    client_secret: Option<SecretString>,
    admin_token: Option<SecretString>,
    store_url: Option<SecretString>,
}

static TAKEN: OnceLock<Taken> = OnceLock::new();

/// Reads and removes every variable of [`SECRET_VARIABLES`]. Call first in `main`, while the process has one
/// thread.
pub fn take() {
    // A value that is not UTF-8 cannot be a key or a secret we use; it is removed all the same.
    let read = |name: &str| std::env::var_os(name).and_then(|v| v.into_string().ok()).map(SecretString::from);
    let store_url = std::env::var_os(STORE)
        .filter(|v| wasm_host_store::is_postgres(std::path::Path::new(v)))
        .and_then(|v| v.into_string().ok())
        .map(SecretString::from);
    let taken = Taken { identity_key: read(IDENTITY_KEY), client_secret: read(CLIENT_SECRET), admin_token: read(ADMIN_TOKEN), store_url };
    let store = taken.store_url.as_ref().map(|_| STORE);
    for name in SECRET_VARIABLES.into_iter().chain(store) {
        // SAFETY: called at the start of `main`, before any other thread exists (none reads the environment
        // concurrently), which is what `remove_var` requires.
        unsafe { std::env::remove_var(name) };
    }
    let _ = TAKEN.set(taken);
}

/// `WASM_HOST_IDENTITY_KEY` as it was at start.
pub fn identity_key() -> Option<&'static SecretString> {
    TAKEN.get().and_then(|t| t.identity_key.as_ref())
}

/// `WASM_HOST_CLIENT_SECRET` as it was at start.
pub fn client_secret() -> Option<&'static SecretString> {
    TAKEN.get().and_then(|t| t.client_secret.as_ref())
}

/// `WASM_HOST_STORE` as it was at start, when it was a `postgres://` URL.
pub fn store_url() -> Option<&'static SecretString> {
    TAKEN.get().and_then(|t| t.store_url.as_ref())
}

/// `WASM_HOST_ADMIN_TOKEN` as it was at start.
pub fn admin_token() -> Option<&'static SecretString> {
    TAKEN.get().and_then(|t| t.admin_token.as_ref())
}
