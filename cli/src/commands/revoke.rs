use anyhow::{Context as _, Result};
use wasm_host_oauth::{revoke::revoke, ClientAuth, ClientCredentials, Http};
use wasm_host_store::{validate_name, SecretField, Status};

use crate::args::RevokeArgs;
use crate::context::Context;
use crate::exit::{coded, Exit, NotFound};
use crate::output::{self, note};

/// `revoke --json`.
#[derive(serde::Serialize)]
struct Revoked<'a> {
    name: &'a str,
    /// `revoked`.
    status: &'static str,
    /// Whether the connection held tokens before.
    had_tokens: bool,
    /// Whether the provider's RFC 7009 endpoint was called (false without one: the grant still exists there).
    revoked_at_provider: bool,
}

fn done(json: bool, name: &str, had_tokens: bool, revoked_at_provider: bool) -> Result<Exit> {
    if json {
        output::json(&Revoked { name, status: Status::Revoked.as_str(), had_tokens, revoked_at_provider })?;
    }
    Ok(Exit::Ok)
}

pub fn run(ctx: &Context, args: RevokeArgs) -> Result<Exit> {
    let name = &args.name.name;
    validate_name(name)?;
    let store = ctx.existing_store()?.ok_or_else(|| NotFound(name.clone()))?;
    let keys = ctx.keys(&store)?;
    let conn = store.connection(name, &keys)?.ok_or_else(|| NotFound(name.clone()))?;
    if conn.status == Status::Revoked || conn.token.is_none() {
        store.mark_revoked(&conn.name, &keys)?;
        note!("`{}` holds no tokens; nothing to revoke", conn.name);
        return done(args.out.json, &conn.name, false, false);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let http = Http::default();
    let (revocation_url, auth) = match &conn.resolved {
        Some(r) => (r.revocation_url.clone(), if r.client_auth == "post" { ClientAuth::Post } else { ClientAuth::Basic }),
        None => match runtime.block_on(wasm_host_oauth::resolve(&http, &super::authorize::settings(&conn)?)) {
            Ok(e) => (e.revocation.map(|u| u.to_string()), e.client_auth),
            Err(_) => (conn.endpoints.revocation_url.clone(), ClientAuth::Basic),
        },
    };
    let Some(url) = revocation_url else {
        store.mark_revoked(&conn.name, &keys)?;
        note!(
            "Deleted the tokens of `{}`. The provider has no revocation endpoint, so the grant still exists there: \
             remove the app's access in the provider's account settings.",
            conn.name
        );
        return done(args.out.json, &conn.name, true, false);
    };
    let url = url::Url::parse(&url).context("the stored revocation URL")?;
    let secret = store.secret(&conn.name, SecretField::ClientSecret, &keys)?.context("no client secret stored")?;
    let client = ClientCredentials { id: &conn.client_id, secret: &secret, auth };
    // The refresh token first: revoking it ends the grant, and with it every access token it issued.
    for (field, hint) in [(SecretField::RefreshToken, "refresh_token"), (SecretField::AccessToken, "access_token")] {
        if let Some(token) = store.secret(&conn.name, field, &keys)? {
            runtime.block_on(revoke(&http, &url, &client, &token, hint)).map_err(|e| {
                let exit = if e.is_permanent() { Exit::ProviderRefused } else { Exit::ProviderUnavailable };
                coded(exit, format!("revoking the {hint} of `{}` failed: {e}; the tokens are kept, run revoke again", conn.name))
            })?;
        }
    }
    store.mark_revoked(&conn.name, &keys)?;
    note!("Revoked `{}` at the provider and deleted its tokens; `authorize` can run again.", conn.name);
    done(args.out.json, &conn.name, true, true)
}
