//! `authconnection list`: every connection, as a table or a JSON array. Never creates the store.

use anyhow::Result;
use reqwest::Method;
use serde_json::Value;

use crate::args::ListArgs;
use crate::context::Context;
use crate::exit::Exit;
use crate::output::{self, note, ConnectionJson};

/// Every connection as `ConnectionJson` values: from the store, or from the admin API's `GET /v1/connections`.
fn connections(ctx: &Context) -> Result<Vec<Value>> {
    if let Some(remote) = ctx.remote()? {
        let (_, answer) = remote.send(Method::GET, "/v1/connections", None)?;
        return match answer {
            Value::Array(rows) => Ok(rows),
            _ => Err(crate::exit::coded(crate::exit::Exit::Remote, "GET /v1/connections did not answer a JSON array")),
        };
    }
    let connections = match ctx.existing_store()? {
        Some(store) => store.list()?,
        None => Vec::new(),
    };
    Ok(connections.iter().map(|c| serde_json::to_value(ConnectionJson::from(c))).collect::<Result<_, _>>()?)
}

pub fn run(ctx: &Context, args: ListArgs) -> Result<Exit> {
    let rows = connections(ctx)?;
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
            let text = |k: &str| r[k].as_str().unwrap_or("-").to_owned();
            let scopes: Vec<&str> = r["scopes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            [
                text("name"),
                text("type"),
                text("provider_url"),
                text("status"),
                text("expires_at"),
                if scopes.is_empty() { "-".into() } else { scopes.join(" ") },
                text("grant"),
            ]
        })
        .collect();
    output::table(["NAME", "TYPE", "PROVIDER", "STATUS", "EXPIRES", "SCOPES", "GRANT"], &table);
    Ok(Exit::Ok)
}
