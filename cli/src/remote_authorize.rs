//! The laptop's half of remote authorize (the server's is server/src/admin_authorize.rs): asks the server for an
//! authorization request for this laptop's loopback listener, shows the URL (a browser, or the terminal), waits for
//! the provider's redirect on the listener (oauth's [`CallbackServer`], as local `authorize` does), and posts the
//! code and state back. The server exchanges the code: the laptop never holds the client secret, the PKCE verifier
//! or a token. Not wired to a command yet: `--remote URL authconnection authorize` will call [`authorize`].

use std::time::Duration;

use anyhow::{Context as _, Result};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use url::Url;
use wasm_host_oauth::{CallbackError, CallbackServer, Outcome};

use crate::exit::{coded, Exit};

/// What one remote authorization needs.
pub struct RemoteAuthorize<'a> {
    /// The admin API's base URL, e.g. `https://host:9091`.
    pub base_url: &'a Url,
    pub admin_token: &'a SecretString,
    pub client: &'a reqwest::Client,
    pub connection: &'a str,
    /// `None`: the connection's default scopes.
    pub scopes: Option<&'a [String]>,
    /// The loopback listener's port (0: any free one).
    pub port: u16,
    /// How long to wait for the provider's redirect.
    pub timeout: Duration,
}

/// Runs one remote authorization; `show` is given the authorization URL and a one-shot local link to it (for a
/// browser's command line, where `state` and `nonce` must not appear) to present to the user. Returns the
/// connection as the server stored it (`list --json`'s entry: no token).
pub async fn authorize(r: &RemoteAuthorize<'_>, show: impl FnOnce(&Url, &str)) -> Result<Value> {
    let server = CallbackServer::bind(r.port).await.with_context(|| {
        format!("cannot listen on 127.0.0.1:{} for the callback; pass another port, or 0 for any", r.port)
    })?;
    let mut start = json!({ "redirect_uri": server.redirect_uri() });
    if let Some(scopes) = r.scopes {
        start["scopes"] = json!(scopes);
    }
    let started = post(r, &format!("v1/connections/{}/authorization", r.connection), &start).await?;
    let field = |name: &str| {
        started[name].as_str().map(str::to_owned).with_context(|| format!("the server's answer has no `{name}`"))
    };
    let url = Url::parse(&field("authorization_url")?).context("the server's authorization URL")?;
    let state = SecretString::from(field("state")?);
    let link = server.start_url(&url);
    show(&url, &link);
    // The issuer is the server's to check (it knows the provider); the listener checks `state`.
    let pending = match server.wait(&state, None, r.timeout).await {
        Ok(pending) => pending,
        Err(CallbackError::Provider { error, description }) => {
            // Posted back so the server ends the pending request and says what the refusal means.
            let refused = json!({ "state": state.expose_secret(), "error": error, "error_description": description,
                                  "connection": r.connection });
            return Err(post(r, "v1/authorizations/complete", &refused).await.err().unwrap_or_else(|| {
                coded(Exit::ProviderRefused, format!("the provider refused the authorization: {error}"))
            }));
        }
        Err(CallbackError::Timeout(t)) => {
            return Err(coded(
                Exit::CallbackTimeout,
                format!("no authorization callback arrived within {}; run authorize again", humantime::format_duration(t)),
            ))
        }
        Err(e) => return Err(anyhow::Error::new(e)),
    };
    let params: serde_json::Map<String, Value> =
        pending.callback.params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let body = json!({
        "state": state.expose_secret(),
        "code": pending.callback.code.expose_secret(),
        "params": params,
        "connection": r.connection,
    });
    let result = post(r, "v1/authorizations/complete", &body).await;
    let outcome = match &result {
        Ok(_) => Outcome::Done(format!("The server stored the authorization of `{}`.", r.connection)),
        Err(e) => Outcome::Failed(format!("{e:#}")),
    };
    pending.finish(outcome).await;
    result
}

/// POSTs `body` to the admin API's `path`: the JSON answer, or the server's refusal with the exit code the same
/// failure has locally.
async fn post(r: &RemoteAuthorize<'_>, path: &str, body: &Value) -> Result<Value> {
    let url = r.base_url.join(path).with_context(|| format!("{path} under {}", r.base_url))?;
    let response = r
        .client
        .post(url)
        .bearer_auth(r.admin_token.expose_secret())
        .json(body)
        .send()
        .await
        .map_err(|e| coded(Exit::Failure, format!("the server at {} cannot be reached: {e}", r.base_url)))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(answer);
    }
    let message = answer["error"]["message"].as_str().unwrap_or("the server refused the request").to_owned();
    let exit = match status.as_u16() {
        400 | 401 | 403 | 409 | 410 => Exit::Usage,
        404 => Exit::NotFound,
        502 if answer["error"]["kind"] == "provider-unavailable" => Exit::ProviderUnavailable,
        502 => Exit::ProviderRefused,
        503 => Exit::StoreUnavailable,
        _ => Exit::Failure,
    };
    Err(coded(exit, format!("the server answered {status}: {message}")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wasm_host_server::admin::AdminApi;
    use wasm_host_store::{AdminScope, AdminToken, Keys, NewConnection, Store, TYPE_OAUTH2};
    use wasm_host_tests::provider::{Provider, ProviderConfig, CLIENT_ID, CLIENT_SECRET};

    use super::*;

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
        let authorizer = crate::commands::authorizer::ServerAuthorizer {
            store: store.clone(),
            keys: keys.clone(),
            http: wasm_host_oauth::Http::default(),
        };
        let api = Arc::new(AdminApi {
            store: store.clone(),
            keys: keys.clone(),
            authorizer: Some(Arc::new(authorizer)),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let answer = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
            let serving = tokio::spawn(wasm_host_server::admin::serve(listener, None, api, Duration::from_secs(10)));
            let client = reqwest::Client::new();
            let request = RemoteAuthorize {
                base_url: &base,
                admin_token: &token,
                client: &client,
                connection: "idp",
                scopes: None,
                port: 0,
                timeout: Duration::from_secs(60),
            };
            let answer = authorize(&request, |_, link| {
                let link = link.to_owned();
                std::thread::spawn(move || Provider::follow(&link));
            })
            .await;
            serving.abort();
            answer
        });
        let answer = answer.unwrap();
        assert_eq!((answer["name"].as_str(), answer["status"].as_str()), (Some("idp"), Some("authorized")), "{answer}");
        let access = store.secret("idp", wasm_host_store::SecretField::AccessToken, &keys).unwrap().unwrap();
        let text = answer.to_string();
        assert!(!text.contains(access.expose_secret()) && !text.contains(CLIENT_SECRET), "{text}");
    }
}
