//! `--remote URL authconnection authorize NAME`: the laptop's half of remote authorize (the server's is
//! server/src/admin_authorize.rs). It asks the server for an authorization request for this laptop's loopback
//! listener (RFC 8252 §7.3), shows the URL as local `authorize` does (a browser, or alone on stdout with
//! `--no-browser`), waits for the provider's redirect on the listener (oauth's [`CallbackServer`], local
//! `authorize`'s own) and posts the code and `state` back. The server exchanges the code (RFC 6749 §4.1.3): the
//! laptop never holds the client secret, the `nonce`, the PKCE verifier (RFC 7636) or a token.

use anyhow::{Context as _, Result};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use url::Url;
use wasm_host_oauth::{CallbackError, CallbackServer, Outcome};

use crate::args::AuthorizeArgs;
use crate::commands::authorize::{bind_callback, callback_failure, present};
use crate::exit::Exit;
use crate::output::{self, note};
use crate::remote::{connection_path, RemoteClient};

/// Where the laptop posts the callback back.
const COMPLETE: &str = "/v1/authorizations/complete";

/// Runs `authorize` through the admin API of `remote`, with local `authorize`'s flags, output and exit codes.
pub fn run(remote: &RemoteClient, args: &AuthorizeArgs) -> Result<Exit> {
    let name = &args.name.name;
    if args.device {
        return crate::remote_device::run(remote, args);
    }
    let scopes = args.scopes.as_deref().map(wasm_host_server::manage::options::scopes);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let request = Request { remote, connection: name, scopes: scopes.as_deref(), port: args.port, timeout: args.timeout };
    let stored = authorize(&runtime, &request, |server, url| present(server, name, url, args))?;
    if args.out.json {
        output::json(&stored)?;
    }
    note!("{}", authorized(&stored));
    Ok(Exit::Ok)
}

/// One remote authorization.
pub struct Request<'a> {
    pub remote: &'a RemoteClient,
    pub connection: &'a str,
    /// `None`: the connection's default scopes, as the server decides.
    pub scopes: Option<&'a [String]>,
    /// The loopback listener's port (0: any free one).
    pub port: u16,
    /// How long to wait for the provider's redirect.
    pub timeout: std::time::Duration,
}

/// Runs one remote authorization; `show` presents the authorization URL (it may hand the listener's one-shot
/// start link to a browser). Returns the connection as the server stored it (`list --json`'s entry: no token).
pub fn authorize(
    runtime: &tokio::runtime::Runtime,
    r: &Request<'_>,
    show: impl FnOnce(&CallbackServer, &Url),
) -> Result<Value> {
    let server = bind_callback(runtime, r.port)?;
    let redirect_uri = server.redirect_uri();
    let mut start = json!({ "redirect_uri": redirect_uri });
    if let Some(scopes) = r.scopes {
        start["scopes"] = json!(scopes);
    }
    let path = format!("{}/authorization", connection_path(r.connection));
    let (_, started) = r.remote.send_with(Method::POST, &path, Some(&start), route_exit)?;
    let field = |name: &str| {
        started[name].as_str().map(str::to_owned).with_context(|| format!("the server's answer has no `{name}`"))
    };
    let url = Url::parse(&field("authorization_url")?).context("the server's authorization URL")?;
    let state = SecretString::from(field("state")?);
    show(&server, &url);
    // The listener checks `state`; RFC 9207's issuer is the server's to check (it knows the provider), so `iss`
    // is handed on.
    let pending = match runtime.block_on(server.wait(&state, None, r.timeout)) {
        Ok(pending) => pending,
        Err(CallbackError::Provider { error, description }) => {
            // Posted back so that the server ends the pending request (and audits it); its refusal says what the
            // provider's error means, with the exit code local `authorize` gives it.
            let refused = json!({ "state": state.expose_secret(), "error": error, "error_description": description,
                                  "connection": r.connection });
            return Err(match r.remote.send_with(Method::POST, COMPLETE, Some(&refused), route_exit) {
                Err(e) => e,
                Ok(_) => callback_failure(CallbackError::Provider { error, description }, &redirect_uri, &[]),
            });
        }
        Err(e) => return Err(callback_failure(e, &redirect_uri, r.scopes.unwrap_or_default())),
    };
    let callback = &pending.callback;
    let params: serde_json::Map<String, Value> = callback.params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let mut body = json!({
        "state": state.expose_secret(),
        "code": callback.code.expose_secret(),
        "iss": callback.iss,
        "params": params,
        "connection": r.connection,
    });
    let result = r.remote.send_with(Method::POST, COMPLETE, Some(&body), route_exit).map(|(_, stored)| stored);
    if let Some(Value::String(code)) = body.get_mut("code") {
        zeroize::Zeroize::zeroize(code);
    }
    // The browser's page tells the real outcome, after the server's code exchange and checks.
    let outcome = match &result {
        Ok(stored) => Outcome::Done(authorized(stored)),
        Err(e) => Outcome::Failed(format!("{e:#}")),
    };
    runtime.block_on(pending.finish(outcome));
    result
}

/// The exit codes of the error kinds only remote authorize's routes answer (admin_authorize.rs lists them), as
/// close as can be to local `authorize`'s: a request that outlived its 10 minutes is the timeout of a callback
/// that came too late (13); a state the server does not know, used already or of another connection is a bad
/// input (2), as a callback with a wrong state is locally; `internal` is any other failure (10).
pub(crate) fn route_exit(kind: &str) -> Option<Exit> {
    match kind {
        "no-authorization-step" => Some(Exit::NoAuthorizationStep),
        "state-expired" | "device-code-expired" => Some(Exit::CallbackTimeout),
        "unknown-state" | "state-used" | "wrong-connection" | "bad-redirect-uri" => Some(Exit::Usage),
        "internal" => Some(Exit::Failure),
        _ => None,
    }
}

/// The sentence local `authorize` ends with, from the connection the server answered (`list --json`'s shape).
pub(crate) fn authorized(stored: &Value) -> String {
    let expiry = match stored["expires_at"].as_str() {
        Some(at) => format!("valid until {at}"),
        None => "without expiry".to_owned(),
    };
    let refresh = if stored["has_refresh_token"].as_bool() == Some(true) {
        "refresh token stored (the server refreshes it)"
    } else {
        "no refresh token"
    };
    let scopes: Vec<&str> = stored["scopes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    format!(
        "Authorized `{}` on the server: access token {expiry}, {refresh}; scopes: {} (the tokens stay on the server)",
        stored["name"].as_str().unwrap_or("-"),
        scopes.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use wasm_host_server::admin::AdminApi;
    use wasm_host_store::{AdminScope, AdminToken, Keys, NewConnection, Store, TYPE_OAUTH2};
    use wasm_host_tests::provider::{Provider, ProviderConfig, CLIENT_ID, CLIENT_SECRET};

    use super::*;
    use crate::remote::RemoteSettings;

    /// The laptop's function against an in-process admin listener over a real store and the local OpenID provider:
    /// the "browser" follows the start link; the server stores the tokens; the laptop's answer carries none.
    #[test]
    fn the_laptop_side_completes_an_authorization_on_the_server() {
        let provider = Provider::start(ProviderConfig::default());
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("store.redb")).unwrap());
        let keys = Arc::new(Keys::generate());
        let new = NewConnection {
            name: "idp".into(),
            kind: TYPE_OAUTH2.into(),
            provider_url: provider.issuer.clone(),
            issuer_url: None,
            client_id: CLIENT_ID.into(),
            endpoints: Default::default(),
            expose_refresh_token: false,
        };
        store.create(new, &SecretString::from(CLIENT_SECRET), &keys).unwrap();
        let (record, token) = AdminToken::issue("ops", AdminScope::Admin).unwrap();
        store.create_admin_token(&record, &keys).unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, token.expose_secret()).unwrap();
        let authorizer = crate::commands::authorizer::ServerAuthorizer {
            store: store.clone(),
            keys: keys.clone(),
            http: wasm_host_oauth::Http::default(),
        };
        let api = Arc::new(AdminApi { store: store.clone(), keys: keys.clone(), authorizer: Some(Arc::new(authorizer)) });
        let server_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = server_runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let serving = server_runtime.spawn(wasm_host_server::admin::serve(listener, None, api, Duration::from_secs(10)));
        let remote = RemoteClient::new(&RemoteSettings { url: base, ca: None, token_file: Some(token_file) }).unwrap();
        let request =
            Request { remote: &remote, connection: "idp", scopes: None, port: 0, timeout: Duration::from_secs(60) };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let browser = std::sync::Mutex::new(None);
        let answer = authorize(&runtime, &request, |server, url| {
            let link = server.start_url(url);
            *browser.lock().unwrap() = Some(std::thread::spawn(move || Provider::follow(&link)));
        });
        serving.abort();
        let answer = answer.unwrap();
        let (status, page) = browser.into_inner().unwrap().unwrap().join().unwrap();
        assert_eq!(status, 200, "the browser is told the outcome: {page}");
        assert!(page.contains("Authorized `idp` on the server"), "{page}");
        assert_eq!((answer["name"].as_str(), answer["status"].as_str()), (Some("idp"), Some("authorized")), "{answer}");
        let access = store.secret("idp", wasm_host_store::SecretField::AccessToken, &keys).unwrap().unwrap();
        let text = answer.to_string();
        assert!(!text.contains(access.expose_secret()) && !text.contains(CLIENT_SECRET), "{text}");
    }
}
