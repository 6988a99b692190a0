//! `authconnection create`: the checks and the store's write are wasm_host_server::manage's, shared with the
//! admin API; this file reads the flags and the secret, and prints.

use std::io::{IsTerminal, Read};

use anyhow::{Context as _, Result};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use wasm_host_server::manage::{self, ConnectionJson, CreateRequest, EndpointsRequest, ProtocolRequest};
use zeroize::Zeroizing;

use crate::args::{CreateArgs, EndpointArgs, ProtocolArgs};
use crate::context::Context;
use crate::exit::{usage, Exit};
use crate::output::{self, note};

pub fn run(ctx: &Context, mut args: CreateArgs) -> Result<Exit> {
    let request = CreateRequest {
        name: args.name.clone(),
        kind: args.kind.clone(),
        provider: args.provider.clone(),
        placeholders: args.placeholders.given(),
        provider_url: args.provider_url.clone(),
        issuer_url: args.issuer_url.clone(),
        client_id: args.client_id.clone(),
        client_secret: None,
        endpoints: endpoints(&args.endpoints),
        expose_refresh_token: args.expose_refresh_token,
        grant: Some(args.grant.clone()),
        protocol: protocol(&args.protocol),
    };
    // Every check before the secret is read and the store touched: a refused `create` changes nothing.
    let prepared = request.prepare()?;
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
    let conn = match ctx.remote()? {
        Some(remote) => {
            let mut body = serde_json::to_value(&request)?;
            body["client_secret"] = Value::String(secret.expose_secret().to_owned());
            let answer = remote.send(Method::POST, "/v1/connections", Some(&body));
            if let Some(Value::String(copy)) = body.get_mut("client_secret") {
                zeroize::Zeroize::zeroize(copy);
            }
            answer?.1
        }
        None => {
            let store = ctx.open_store()?;
            let keys = ctx.keys(&store)?;
            serde_json::to_value(ConnectionJson::from(&manage::create(&store, &keys, prepared, &secret)?))?
        }
    };
    created(args.out.json, &conn)
}

/// Prints a created connection (as `ConnectionJson`, from the store or the admin API) and what to do next.
fn created(json: bool, conn: &Value) -> Result<Exit> {
    if json {
        output::json(conn)?;
    }
    let field = |k: &str| conn[k].as_str().unwrap_or("-").to_owned();
    let name = field("name");
    if field("grant") == "client-credentials" {
        note!(
            "created connection `{name}` ({}, client-credentials grant, token endpoint {}); no `authorize` step: the \
             host requests a token when a function granted `{name}` first uses it",
            field("provider_url"),
            conn["endpoints"]["token_url"].as_str().unwrap_or("-"),
        );
    } else {
        note!(
            "created connection `{name}` ({}); next: authorize it with `wasm-host authconnection authorize {name}`",
            field("provider_url")
        );
    }
    Ok(Exit::Ok)
}

/// The endpoint flags as the shared request spells them.
pub(crate) fn endpoints(args: &EndpointArgs) -> EndpointsRequest {
    EndpointsRequest {
        auth_url: args.auth_url.clone(),
        token_url: args.token_url.clone(),
        revocation_url: args.revocation_url.clone(),
        userinfo_url: args.userinfo_url.clone(),
    }
}

/// The protocol flags as the shared request spells them.
pub(crate) fn protocol(args: &ProtocolArgs) -> ProtocolRequest {
    ProtocolRequest {
        pkce: args.pkce.clone(),
        client_auth: args.client_auth.clone(),
        auth_params: args.auth_params.clone(),
        token_params: args.token_params.clone(),
        default_scopes: args.default_scopes.clone(),
        device_auth_url: args.device_auth_url.clone(),
    }
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
