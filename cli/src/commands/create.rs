use std::io::{IsTerminal, Read};

use anyhow::{Context as _, Result};
use secrecy::{ExposeSecret, SecretString};
use wasm_host_oauth::{ClientAuth, EndpointSettings, Http};
use wasm_host_store::{validate_name, validate_url, Endpoints, Grant, NewConnection, ProtocolOptions, CONNECTION_TYPES};
use zeroize::Zeroizing;

use crate::args::{CreateArgs, EndpointArgs};
use crate::context::Context;
use crate::exit::{coded, usage, Exit};
use crate::output::{self, note};

pub fn run(ctx: &Context, mut args: CreateArgs) -> Result<Exit> {
    // Every check before the store is touched: a refused `create` changes nothing.
    validate_name(&args.name)?;
    if !CONNECTION_TYPES.contains(&args.kind.as_str()) {
        return Err(usage(format!(
            "connection type `{}` is not supported; accepted values: {}",
            wasm_host_store::printable(&args.kind),
            CONNECTION_TYPES.join(", ")
        )));
    }
    // A catalog provider fills what the flags leave out.
    let from_catalog = match &args.provider {
        Some(id) => Some(super::providers::fill(id, &args.placeholders.given())?),
        None => None,
    };
    let catalog = from_catalog.as_ref();
    let provider_url = args.provider_url.clone().or_else(|| catalog.map(|c| c.provider_url.clone())).expect("clap requires one");
    let provider_url = validate_url("--provider-url", &provider_url)?;
    let optional = |flag, value: &Option<String>| -> Result<Option<String>> {
        Ok(value.as_deref().map(|v| validate_url(flag, v)).transpose()?.map(String::from))
    };
    let mut given = endpoints(&args.endpoints)?;
    if let Some(c) = catalog {
        let e = &c.endpoints;
        given.auth_url = given.auth_url.or_else(|| e.auth_url.clone());
        given.token_url = given.token_url.or_else(|| e.token_url.clone());
        given.revocation_url = given.revocation_url.or_else(|| e.revocation_url.clone());
        given.userinfo_url = given.userinfo_url.or_else(|| e.userinfo_url.clone());
    }
    let new = NewConnection {
        name: args.name.clone(),
        kind: args.kind.clone(),
        provider_url: provider_url.to_string(),
        issuer_url: optional("--issuer-url", &args.issuer_url)?.or_else(|| catalog.and_then(|c| c.issuer_url.clone())),
        client_id: args.client_id.trim().to_owned(),
        endpoints: given,
        expose_refresh_token: args.expose_refresh_token,
    };
    if new.client_id.is_empty() {
        return Err(usage("--client-id is empty: give the client ID the provider issued for your app"));
    }
    let mut options = catalog.map(|c| c.options.clone()).unwrap_or_default();
    let client_credentials = args.grant == Grant::ClientCredentials.as_str();
    if client_credentials {
        if let Some(c) = catalog.filter(|c| !c.client_credentials) {
            return Err(usage(format!(
                "the catalog does not list the client-credentials grant for provider `{}`; if its documentation \
                 offers it, create the connection with --provider-url and --token-url instead of --provider",
                c.provider_url
            )));
        }
        let [pkce, auth_params, device] = super::options::authorization_flags(&args.protocol);
        super::options::refuse_authorization_flags(
            &args.name,
            &[
                pkce,
                auth_params,
                device,
                ("--auth-url", args.endpoints.auth_url.is_some()),
                ("--expose-refresh-token", args.expose_refresh_token),
            ],
        )?;
        options.grant = Grant::ClientCredentials;
        // The catalog's scopes are what a user consents to; a client's own token takes those given here.
        options.default_scopes.clear();
    }
    super::options::apply(&args.protocol, &mut options)?;
    let secret = match client_secret(&args.name, args.client_secret.take(), args.client_secret_stdin)? {
        Some(secret) => secret,
        // No source given, typed at a terminal: ask, echo off.
        None if std::io::stdin().is_terminal() => prompt(&args.name)?,
        None => {
            return Err(usage(
                "no client secret given: pipe it to --client-secret-stdin, set WASM_HOST_CLIENT_SECRET, or pass \
                 --client-secret",
            ));
        }
    };
    if secret.expose_secret().is_empty() {
        return Err(usage(
            "the client secret is empty: give the secret the provider issued for your app \
             (--client-secret-stdin, WASM_HOST_CLIENT_SECRET or --client-secret)",
        ));
    }
    let mut new = new;
    if client_credentials {
        token_endpoint(&mut new, &mut options)?;
    }
    let store = ctx.open_store()?;
    let keys = ctx.keys(&store)?;
    let conn = store.create_with(new, options, &secret, &keys)?;
    output::connection(args.out.json, &conn)?;
    if client_credentials {
        note!(
            "created connection `{}` ({}, client-credentials grant, token endpoint {}); no `authorize` step: the host \
             requests a token when a function granted `{}` first uses it",
            conn.name,
            conn.provider_url,
            conn.endpoints.token_url.as_deref().unwrap_or("-"),
            conn.name
        );
    } else {
        note!(
            "created connection `{}` ({}); next: authorize it with `wasm-host authconnection authorize {}`",
            conn.name, conn.provider_url, conn.name
        );
    }
    Ok(Exit::Ok)
}

/// A client-credentials connection's token endpoint (and revocation endpoint and client authentication, where
/// not given), found once at `create` from the flags, the catalog or discovery: the host, which requests its
/// tokens, does no discovery.
fn token_endpoint(new: &mut NewConnection, options: &mut ProtocolOptions) -> Result<()> {
    if new.endpoints.token_url.is_some() {
        return Ok(());
    }
    let settings = EndpointSettings {
        provider_url: new.provider_url.clone(),
        issuer_url: new.issuer_url.clone(),
        auth_url: new.endpoints.auth_url.clone(),
        token_url: None,
        revocation_url: new.endpoints.revocation_url.clone(),
        userinfo_url: new.endpoints.userinfo_url.clone(),
        pkce: options.pkce,
        client_auth: super::options::client_auth(options.client_auth.as_deref())?,
        auth_params: Vec::new(),
        scope_separator: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let found = runtime.block_on(wasm_host_oauth::resolve(&Http::default(), &settings)).map_err(|e| {
        let exit = if e.is_unreachable() { Exit::ProviderUnavailable } else { Exit::Usage };
        coded(exit, format!("{e}; or give the token endpoint with --token-url"))
    })?;
    new.endpoints.token_url = Some(found.token.to_string());
    if new.endpoints.revocation_url.is_none() {
        new.endpoints.revocation_url = found.revocation.map(|u| u.to_string());
    }
    if options.client_auth.is_none() && found.client_auth == ClientAuth::Post {
        options.client_auth = Some("post".into());
    }
    Ok(())
}

/// The endpoints given by hand, each checked (https, or http on loopback).
pub(crate) fn endpoints(args: &EndpointArgs) -> Result<Endpoints> {
    let optional = |flag, value: &Option<String>| -> Result<Option<String>> {
        Ok(value.as_deref().map(|v| validate_url(flag, v)).transpose()?.map(String::from))
    };
    Ok(Endpoints {
        auth_url: optional("--auth-url", &args.auth_url)?,
        token_url: optional("--token-url", &args.token_url)?,
        revocation_url: optional("--revocation-url", &args.revocation_url)?,
        userinfo_url: optional("--userinfo-url", &args.userinfo_url)?,
    })
}

/// The secret from exactly one source: stdin, the flag, or WASM_HOST_CLIENT_SECRET; `None` when none is given.
/// The flag's copy is taken out of the parsed arguments and wiped. `--client-secret-stdin` at a terminal (typed
/// by hand) asks for the secret without echo.
pub(crate) fn client_secret(name: &str, flag: Option<String>, stdin: bool) -> Result<Option<SecretString>> {
    let from_env = crate::secret_env::client_secret();
    if stdin && std::io::stdin().is_terminal() {
        return prompt(name).map(Some);
    }
    if stdin {
        let mut buf = Zeroizing::new(String::new());
        std::io::stdin().read_to_string(&mut buf).context("reading the client secret from stdin")?;
        let line = buf.strip_suffix('\n').unwrap_or(&buf);
        let line = line.strip_suffix('\r').unwrap_or(line);
        return Ok(Some(SecretString::from(line)));
    }
    Ok(match (flag.map(Zeroizing::new), from_env) {
        (Some(s), _) => {
            eprintln!(
                "wasm-host: warning: --client-secret puts the secret on the command line, which every local user can \
                 read while the command runs (/proc/PID/cmdline) and your shell may keep in its history; prefer \
                 --client-secret-stdin or WASM_HOST_CLIENT_SECRET"
            );
            Some(SecretString::from(s.as_str()))
        }
        (None, Some(s)) => Some(s.clone()),
        (None, None) => None,
    })
}

/// Asks on the terminal, echo off (rpassword: /dev/tty, so the prompt never lands in a redirected stdout).
fn prompt(name: &str) -> Result<SecretString> {
    let typed = rpassword::prompt_password(format!("Client secret for `{name}` (input hidden): "))
        .map(Zeroizing::new)
        .context("reading the client secret from the terminal")?;
    Ok(SecretString::from(typed.trim_end_matches(['\r', '\n'])))
}
