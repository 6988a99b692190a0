//! `authconnection revoke NAME`: the tokens revoked at the provider (RFC 7009) and deleted (the work is
//! wasm_host_server::manage's, shared with the admin API).

use anyhow::Result;
use reqwest::Method;
use wasm_host_server::manage::{self, Revoked};
use wasm_host_store::validate_name;

use crate::args::RevokeArgs;
use crate::context::Context;
use crate::exit::{Exit, NotFound};
use crate::output::{self, note};

pub fn run(ctx: &Context, args: RevokeArgs) -> Result<Exit> {
    let name = &args.name.name;
    validate_name(name)?;
    let revoked: Revoked = match ctx.remote()? {
        Some(remote) => {
            let (_, answer) = remote.send(Method::POST, &format!("{}/revoke", crate::remote::connection_path(name)), None)?;
            Revoked {
                name: name.clone(),
                status: "revoked",
                had_tokens: answer["had_tokens"].as_bool().unwrap_or(false),
                revoked_at_provider: answer["revoked_at_provider"].as_bool().unwrap_or(false),
            }
        }
        None => {
            let store = ctx.existing_store()?.ok_or_else(|| NotFound(name.clone()))?;
            let keys = ctx.keys(&store)?;
            manage::revoke(&store, &keys, name)?
        }
    };
    match (revoked.had_tokens, revoked.revoked_at_provider) {
        (false, _) => note!("`{name}` holds no tokens; nothing to revoke"),
        (true, false) => note!(
            "Deleted the tokens of `{name}`. The provider has no revocation endpoint, so the grant still exists there: \
             remove the app's access in the provider's account settings."
        ),
        (true, true) => note!("Revoked `{name}` at the provider and deleted its tokens; `authorize` can run again."),
    }
    if args.out.json {
        output::json(&revoked)?;
    }
    Ok(Exit::Ok)
}
