//! `authconnection list`: every connection, as a table or a JSON array. Never creates the store.

use anyhow::Result;

use crate::args::ListArgs;
use crate::context::Context;
use crate::exit::Exit;
use crate::output::{self, note, ConnectionJson};

pub fn run(ctx: &Context, args: ListArgs) -> Result<Exit> {
    let connections = match ctx.existing_store()? {
        Some(store) => store.list()?,
        None => Vec::new(),
    };
    let rows: Vec<ConnectionJson<'_>> = connections.iter().map(ConnectionJson::from).collect();
    if args.json {
        output::json(&rows)?;
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        note!("no connections yet; create one with `wasm-host authconnection create --help`");
        return Ok(Exit::Ok);
    }
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.name.to_owned(),
                r.kind.to_owned(),
                r.provider_url.to_owned(),
                r.status.to_owned(),
                r.expires_at.clone().unwrap_or_else(|| "-".into()),
                if r.scopes.is_empty() { "-".into() } else { r.scopes.join(" ") },
                r.grant.to_owned(),
            ]
        })
        .collect();
    output::table(["NAME", "TYPE", "PROVIDER", "STATUS", "EXPIRES", "SCOPES", "GRANT"], &table);
    Ok(Exit::Ok)
}
