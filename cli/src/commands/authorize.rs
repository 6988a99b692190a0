use anyhow::{Context as _, Result};
use secrecy::ExposeSecret;
use wasm_host_oauth::{
    endpoints::EndpointSettings, idtoken, token, AuthorizationRequest, CallbackError, CallbackServer, Outcome,
    ClientAuth, ClientCredentials, Http, ProviderEndpoints, TokenError,
};
use wasm_host_store::{now_unix, rfc3339, validate_name, Connection, Grant, NewTokens, RefreshUpdate, ResolvedEndpoints, SecretField};

use crate::args::AuthorizeArgs;
use crate::context::Context;
use crate::exit::{coded, usage, Exit, NotFound};
use crate::output::{self, note};

pub fn run(ctx: &Context, args: AuthorizeArgs) -> Result<Exit> {
    let name = &args.name.name;
    validate_name(name)?;
    let timeout = args.timeout;
    if args.scopes.as_deref().is_some_and(|s| wasm_host_server::manage::options::scopes(s).is_empty()) {
        return Err(usage("--scopes is empty: name at least one scope, e.g. --scopes openid,email"));
    }
    if let Some(remote) = ctx.remote()? {
        return crate::remote_authorize::run(&remote, &args);
    }
    let store = ctx.open_store()?;
    let keys = ctx.keys(&store)?;
    let conn = store.connection(name, &keys)?.ok_or_else(|| NotFound(name.clone()))?;
    if conn.options.grant == Grant::ClientCredentials {
        return Err(no_authorization_step(name));
    }
    let scopes = requested_scopes(&conn, args.scopes.as_deref().map(wasm_host_server::manage::options::scopes));
    let secret = client_secret(&store, &keys, &conn)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let http = Http::default();
    let endpoints = resolve_endpoints(&runtime, &http, &conn)?;
    if args.device {
        let stored = super::device::authorize(&super::device::Device {
            runtime: &runtime,
            store: &store,
            keys: &keys,
            conn: &conn,
            secret: &secret,
            http: &http,
            endpoints: &endpoints,
            scopes: &scopes,
            timeout,
        })?;
        output::connection(args.out.json, &stored.1)?;
        note!("{}", stored.0);
        return Ok(Exit::Ok);
    }
    let server = bind_callback(&runtime, args.port)?;
    let redirect_uri = server.redirect_uri();
    let request = AuthorizationRequest::new(&endpoints, &conn.client_id, &redirect_uri, &scopes);
    present(&server, &conn.name, &request.url, &args);
    let pending = runtime
        .block_on(server.wait(&request.state, endpoints.issuer.as_deref(), timeout))
        .map_err(|e| callback_failure(e, &redirect_uri, &scopes))?;
    let callback = &pending.callback;
    let completion = Completion {
        store: &store,
        keys: &keys,
        conn: &conn,
        secret: &secret,
        http: &http,
        endpoints: &endpoints,
        nonce: &request.nonce,
        verifier: request.verifier.as_ref(),
        requested: &request.scopes,
        redirect_uri: &redirect_uri,
        scopes: &scopes,
    };
    let result = complete(&runtime, &completion, callback);
    // The browser's page tells the real outcome, after the code exchange and the checks.
    let outcome = match &result {
        Ok((done, _)) => Outcome::Done(done.clone()),
        Err(e) => Outcome::Failed(format!("{e:#}")),
    };
    runtime.block_on(pending.finish(outcome));
    let (message, stored) = result?;
    output::connection(args.out.json, &stored)?;
    note!("{message}");
    Ok(Exit::Ok)
}

/// The loopback listener for the provider's redirect (RFC 8252 §7.3) on `port` (0: any free one).
pub(crate) fn bind_callback(runtime: &tokio::runtime::Runtime, port: u16) -> Result<CallbackServer> {
    runtime.block_on(CallbackServer::bind(port)).map_err(|e| {
        usage(format!(
            "cannot listen on 127.0.0.1:{port} for the callback ({e}); pass --port with a free port, or --port 0 for any"
        ))
    })
}

/// Shows the authorization `url` of connection `name`: alone on stdout with `--no-browser`, else in a browser
/// (and on stderr); then says how long the wait for the callback on `server` is.
pub(crate) fn present(server: &CallbackServer, name: &str, url: &url::Url, args: &AuthorizeArgs) {
    let redirect_uri = server.redirect_uri();
    note!("Redirect URI (register it with the provider for this client): {redirect_uri}");
    if args.no_browser {
        println!("{url}");
    } else {
        // Printed first, whatever happens next: a browser may fail to start, or start where nobody sees it.
        eprintln!("Open this URL to authorize `{name}`:\n{url}");
        // The browser gets a one-shot local link that redirects to that URL: `state` and `nonce` stay off its
        // command line, which other local users can read.
        let start = server.start_url(url);
        if let Err(e) = webbrowser::open(&start) {
            eprintln!("Could not open a browser ({e}); open the URL above yourself.");
        }
    }
    note!(
        "Waiting up to {} for the provider to send the browser back to {redirect_uri} ...",
        humantime::format_duration(args.timeout)
    );
}

/// What the code exchange needs from the authorization (made here, or kept by the server for a remote one).
pub(crate) struct Completion<'a> {
    pub store: &'a wasm_host_store::Store,
    pub keys: &'a wasm_host_store::Keys,
    pub conn: &'a Connection,
    pub secret: &'a secrecy::SecretString,
    pub http: &'a Http,
    pub endpoints: &'a ProviderEndpoints,
    /// The request's OIDC `nonce`, which the ID token must carry.
    pub nonce: &'a secrecy::SecretString,
    /// The request's PKCE verifier, if it sent a challenge.
    pub verifier: Option<&'a secrecy::SecretString>,
    /// The scopes the request asked for (the provider's required ones added).
    pub requested: &'a [String],
    pub redirect_uri: &'a str,
    /// The scopes asked for, as the operator gave them (for advice in messages).
    pub scopes: &'a [String],
}

/// Exchanges the callback's code, checks the ID token and stores the tokens; the sentence to show on success and
/// the connection as stored.
pub(crate) fn complete(
    runtime: &tokio::runtime::Runtime,
    c: &Completion<'_>,
    callback: &wasm_host_oauth::Callback,
) -> Result<(String, Connection)> {
    let (conn, endpoints) = (c.conn, c.endpoints);
    let client = ClientCredentials { id: &conn.client_id, secret: c.secret, auth: endpoints.client_auth };
    // The expiry counts from the request, not the answer: never later than the provider's own.
    let sent = now_unix();
    let tokens = runtime
        .block_on(token::exchange_code_with(
            c.http,
            &endpoints.token,
            &client,
            &callback.code,
            c.redirect_uri,
            c.verifier,
            &conn.options.token_params,
        ))
        .map_err(|e| exchange_failure(e, c.redirect_uri, c.scopes))?;
    if let (Some(id_token), Some(issuer), Some(jwks_url)) = (&tokens.id_token, &endpoints.issuer, &endpoints.jwks) {
        let jwks = runtime
            .block_on(idtoken::fetch_jwks(c.http, jwks_url))
            .map_err(|e| coded(Exit::ProviderUnavailable, e.to_string()))?;
        let expected = idtoken::Expected {
            issuer,
            client_id: &conn.client_id,
            nonce: c.nonce.expose_secret(),
            now: now_unix(),
            leeway: 60,
        };
        idtoken::validate(id_token.expose_secret(), &jwks, &expected).map_err(|e| {
            coded(Exit::ProviderRefused, format!("{e}; the tokens were not stored"))
        })?;
    }
    let mut metadata = callback.params.clone();
    metadata.extend(tokens.extra.iter().cloned());
    let requested = Requested { scopes: c.requested, sent };
    store_tokens(c.store, c.keys, conn, endpoints, &tokens, metadata, &requested)
}

/// What a token request asked for: the scopes, and when it was sent (Unix seconds).
pub struct Requested<'a> {
    pub scopes: &'a [String],
    pub sent: i64,
}

/// Stores what an authorization (code or device) obtained, with the endpoints it resolved; the sentence to show
/// and the connection as stored.
pub fn store_tokens(
    store: &wasm_host_store::Store,
    keys: &wasm_host_store::Keys,
    conn: &Connection,
    endpoints: &ProviderEndpoints,
    tokens: &wasm_host_oauth::TokenResponse,
    metadata: Vec<(String, String)>,
    requested: &Requested<'_>,
) -> Result<(String, Connection)> {
    // A provider that issues a refresh token only at first consent answers a second authorization without one:
    // the stored one still belongs to this client's grant, so it is kept (and said so below).
    let kept_refresh =
        tokens.refresh_token.is_none() && store.secret(&conn.name, SecretField::RefreshToken, keys)?.is_some();
    let refresh = match &tokens.refresh_token {
        Some(r) => RefreshUpdate::Replace(r),
        None => RefreshUpdate::Keep,
    };
    let id_token = match &tokens.id_token {
        Some(t) => RefreshUpdate::Replace(t),
        None => RefreshUpdate::Remove,
    };
    let stored = store.put_tokens(
        &conn.name,
        NewTokens {
            access_token: &tokens.access_token,
            refresh,
            id_token,
            token_type: tokens.token_type.clone(),
            expires_at: tokens.expires_in.map(|s| requested.sent + s),
            scopes: tokens.scope.clone().unwrap_or_else(|| requested.scopes.to_vec()),
            metadata,
            credentials: tokens.credentials.clone(),
            resolved: Some(resolved(endpoints)),
            release_lease: None,
        },
        keys,
    )?;
    let info = stored.token.as_ref().expect("just stored");
    let message = format!(
        "Authorized `{}`: access token {}, {}; scopes: {}",
        stored.name,
        info.expires_at.map_or("without expiry".into(), |t| format!("valid until {}", rfc3339(t))),
        match (info.has_refresh_token, kept_refresh) {
            (true, false) => "refresh token stored (wasm-host refreshes it)",
            (true, true) => "no new refresh token came with it, the one stored earlier is kept (wasm-host refreshes with it)",
            _ => "no refresh token",
        },
        info.scopes.join(" ")
    );
    Ok((message, stored))
}

/// Scopes requested when neither `--scopes` nor the connection's default scopes say otherwise.
const DEFAULT_SCOPES: &str = "openid,profile,email";

/// The scopes an authorization asks for: those `given`, else the connection's default scopes, else
/// [`DEFAULT_SCOPES`].
pub(crate) fn requested_scopes(conn: &Connection, given: Option<Vec<String>>) -> Vec<String> {
    match given {
        Some(list) => list,
        None if !conn.options.default_scopes.is_empty() => conn.options.default_scopes.clone(),
        None => wasm_host_server::manage::options::scopes(DEFAULT_SCOPES),
    }
}

/// The connection's client secret, opened.
pub(crate) fn client_secret(
    store: &wasm_host_store::Store,
    keys: &wasm_host_store::Keys,
    conn: &Connection,
) -> Result<secrecy::SecretString> {
    store
        .secret(&conn.name, SecretField::ClientSecret, keys)?
        .with_context(|| format!("connection `{}` has no client secret; delete and create it again", conn.name))
}

/// Refuses to authorize a client-credentials connection (exit 21).
pub(crate) fn no_authorization_step(name: &str) -> anyhow::Error {
    coded(
        Exit::NoAuthorizationStep,
        format!(
            "connection `{name}` uses the client-credentials grant, which has no authorization step: the host \
             requests its tokens with the client's own credentials when a function first uses it (change the \
             client with `wasm-host authconnection update {name}`)"
        ),
    )
}

/// The connection's endpoints (flags, presets, discovery): exit 12 when the provider cannot be reached.
pub(crate) fn resolve_endpoints(runtime: &tokio::runtime::Runtime, http: &Http, conn: &Connection) -> Result<ProviderEndpoints> {
    runtime.block_on(wasm_host_oauth::resolve(http, &settings(conn)?)).map_err(|e| {
        let exit = if e.is_unreachable() { Exit::ProviderUnavailable } else { Exit::Usage };
        coded(exit, e.to_string())
    })
}

pub fn settings(conn: &Connection) -> Result<EndpointSettings> {
    Ok(wasm_host_server::manage::endpoint_settings(conn)?)
}

fn resolved(e: &ProviderEndpoints) -> ResolvedEndpoints {
    ResolvedEndpoints {
        token_url: e.token.to_string(),
        revocation_url: e.revocation.as_ref().map(|u| u.to_string()),
        userinfo_url: e.userinfo.as_ref().map(|u| u.to_string()),
        issuer: e.issuer.clone(),
        client_auth: match e.client_auth {
            ClientAuth::Basic => "basic".into(),
            ClientAuth::Post => "post".into(),
        },
    }
}

pub(crate) fn callback_failure(e: CallbackError, redirect_uri: &str, scopes: &[String]) -> anyhow::Error {
    match e {
        CallbackError::Timeout(_) => coded(
            Exit::CallbackTimeout,
            format!(
                "no authorization callback arrived in time. If the provider showed an error about the redirect \
                 URI, register exactly {redirect_uri} for this client (or pass --port to match one registered); \
                 otherwise run authorize again and finish the login sooner (--timeout)"
            ),
        ),
        CallbackError::Provider { error, description } => {
            let advice = match error.as_str() {
                "access_denied" => "the consent was declined; run authorize again and approve the request".to_owned(),
                "invalid_scope" => format!(
                    "one of the requested scopes ({}) is not allowed for this client; pass --scopes with the ones it may request",
                    scopes.join(" ")
                ),
                "unauthorized_client" | "invalid_client" => {
                    "check the client ID, and that the app is enabled for the authorization-code grant".to_owned()
                }
                _ => "see the provider's description above".to_owned(),
            };
            let d = description.map(|d| format!(" ({d})")).unwrap_or_default();
            coded(Exit::ProviderRefused, format!("the provider refused the authorization: {error}{d}; {advice}"))
        }
        CallbackError::Io(e) => anyhow::Error::new(e).context("the callback server failed"),
    }
}

fn exchange_failure(e: TokenError, redirect_uri: &str, scopes: &[String]) -> anyhow::Error {
    let advice = match e.oauth_error() {
        Some("invalid_client") | Some("unauthorized_client") => {
            "check the client ID and secret (change them with `wasm-host authconnection update NAME --client-id ID \
             --client-secret-stdin`), the client authentication (`update NAME --client-auth post` or `basic`) and \
             that the app is enabled"
                .to_owned()
        }
        Some("invalid_grant") if e.to_string().contains("redirect") => {
            format!("the redirect URI must be registered exactly as {redirect_uri}")
        }
        Some("invalid_grant") => "the code was refused (expired or already used); run authorize again".to_owned(),
        Some("invalid_scope") => format!("a requested scope is not allowed: {}", scopes.join(" ")),
        _ if !e.is_permanent() => "try again later".to_owned(),
        _ => "see the provider's answer above".to_owned(),
    };
    let exit = if e.is_permanent() { Exit::ProviderRefused } else { Exit::ProviderUnavailable };
    coded(exit, format!("exchanging the authorization code failed: {e}; {advice}"))
}
