//! `authconnection update`: changes a connection's client registration and keeps its grant.

use anyhow::Result;
use secrecy::ExposeSecret;
use wasm_host_store::{validate_name, validate_url, Grant, Status};

use crate::args::UpdateArgs;
use crate::context::Context;
use crate::exit::{usage, Exit, NotFound};

pub fn run(ctx: &Context, mut args: UpdateArgs) -> Result<Exit> {
    // Every check before the store is touched: a refused `update` changes nothing.
    validate_name(&args.name.name)?;
    let issuer_url = args.issuer_url.as_deref().map(|v| validate_url("--issuer-url", v)).transpose()?.map(String::from);
    let given = super::create::endpoints(&args.endpoints)?;
    let client_id = args.client_id.as_deref().map(str::trim).map(str::to_owned);
    if client_id.as_deref().is_some_and(str::is_empty) {
        return Err(usage("--client-id is empty: give the client ID the provider issued for your app"));
    }
    let secret = super::create::client_secret(&args.name.name, args.client_secret.take(), args.client_secret_stdin)?;
    if secret.as_ref().is_some_and(|s| s.expose_secret().is_empty()) {
        return Err(usage("the client secret is empty: give the secret the provider issued for your app"));
    }
    let store = ctx.open_store()?;
    let keys = ctx.keys(&store)?;
    let mut current = store.connection(&args.name.name, &keys)?.ok_or_else(|| NotFound(args.name.name.clone()))?;
    let client_credentials = current.options.grant == Grant::ClientCredentials;
    if client_credentials {
        let [pkce, auth_params, device] = super::options::authorization_flags(&args.protocol);
        let auth_url = ("--auth-url", given.auth_url.is_some());
        super::options::refuse_authorization_flags(&args.name.name, &[pkce, auth_params, device, auth_url])?;
    }
    super::options::apply(&args.protocol, &mut current.options)?;
    let options = current.options;
    let token_url_changed = given.token_url.is_some();
    // What the host sends for a client-credentials token: a token it holds was issued for the old request (other
    // scopes, audience, client), so the next use requests a new one.
    let p = &args.protocol;
    let request_changed = client_id.is_some()
        || secret.is_some()
        || token_url_changed
        || p.client_auth.is_some()
        || !p.token_params.is_empty()
        || p.default_scopes.is_some();
    let was = current.status;
    let conn = store.update_registration(
        &args.name.name,
        Box::new(|c| {
            if let Some(id) = client_id {
                c.client_id = id;
            }
            if issuer_url.is_some() {
                c.issuer_url = issuer_url;
            }
            let e = &mut c.endpoints;
            let new = [given.auth_url, given.token_url, given.revocation_url, given.userinfo_url];
            let slots = [&mut e.auth_url, &mut e.token_url, &mut e.revocation_url, &mut e.userinfo_url];
            for (slot, new) in slots.into_iter().zip(new) {
                if new.is_some() {
                    *slot = new;
                }
            }
            // The next refresh uses what is resolved: an explicit token URL or client authentication replaces it.
            if let Some(r) = &mut c.resolved {
                if token_url_changed {
                    r.token_url = c.endpoints.token_url.clone().expect("just set");
                }
                if let Some(auth) = &options.client_auth {
                    r.client_auth = auth.clone();
                }
                if c.endpoints.revocation_url.is_some() {
                    r.revocation_url = c.endpoints.revocation_url.clone();
                }
            }
            c.options = options;
            // A client-credentials connection the provider refused a token (a scope, a parameter), or whose token
            // request changed: the next use requests a token with the changed registration, as a new one would.
            let stale = c.status == Status::Authorized && request_changed;
            if client_credentials && (c.status == Status::NeedsAuthorization || stale) {
                c.status = Status::Created;
                c.status_reason = None;
            }
        }),
        secret.as_ref(),
        &keys,
    )?;
    let grant = match (was, conn.status) {
        (Status::ClientRefused, Status::Authorized) => "; its grant is kept and the next use refreshes with the new registration",
        (_, Status::Authorized) => "; its tokens are kept",
        (Status::Authorized, Status::Created) => "; the next use requests a new token with the changed request",
        _ => "",
    };
    crate::output::connection(args.out.json, &conn)?;
    crate::output::note!("updated connection `{}` ({}){grant}", conn.name, conn.status.as_str());
    Ok(Exit::Ok)
}
