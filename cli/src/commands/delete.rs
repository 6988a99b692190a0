//! `authconnection delete NAME`: the connection and every secret it holds.

use anyhow::Result;
use reqwest::Method;

use crate::args::DeleteArgs;
use crate::context::Context;
use crate::exit::{Exit, NotFound};
use crate::output::{self, note};

/// `delete --json`; the admin API's answer to `DELETE /v1/connections/{name}`.
#[derive(serde::Serialize)]
struct Deleted<'a> {
    name: &'a str,
    deleted: bool,
}

pub fn run(ctx: &Context, args: DeleteArgs) -> Result<Exit> {
    let name = &args.name.name;
    wasm_host_store::validate_name(name)?;
    match ctx.remote()? {
        Some(remote) => {
            remote.send(Method::DELETE, &crate::remote::connection_path(name), None)?;
        }
        None => {
            // No store, no such connection: said without creating one.
            let store = ctx.existing_store()?.ok_or_else(|| NotFound(name.clone()))?;
            wasm_host_server::manage::delete(&store, name)?;
        }
    }
    if args.out.json {
        output::json(&Deleted { name, deleted: true })?;
    }
    note!("deleted connection `{name}` and its secrets");
    Ok(Exit::Ok)
}
