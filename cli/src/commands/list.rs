use anyhow::Result;
use serde::Serialize;
use wasm_host_store::{rfc3339, Connection};

use crate::args::ListArgs;
use crate::context::Context;
use crate::exit::Exit;

/// One element of `list --json`. The field names are a stable interface for scripts: add, never rename.
#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    provider_url: &'a str,
    issuer_url: Option<&'a str>,
    client_id: &'a str,
    status: &'static str,
    /// Why the connection is not `authorized` (the provider's refusal and what to do), when it is not.
    status_reason: Option<&'a str>,
    expires_at: Option<String>,
    scopes: &'a [String],
    has_refresh_token: bool,
    metadata: &'a std::collections::BTreeMap<String, String>,
    created_at: String,
    updated_at: String,
}

impl<'a> From<&'a Connection> for Row<'a> {
    fn from(c: &'a Connection) -> Self {
        Row {
            name: &c.name,
            kind: &c.kind,
            provider_url: &c.provider_url,
            issuer_url: c.issuer_url.as_deref(),
            client_id: &c.client_id,
            status: c.status.as_str(),
            status_reason: c.status_reason.as_deref(),
            expires_at: c.token.as_ref().and_then(|t| t.expires_at).map(rfc3339),
            scopes: c.token.as_ref().map_or(&[], |t| t.scopes.as_slice()),
            has_refresh_token: c.token.as_ref().is_some_and(|t| t.has_refresh_token),
            metadata: &c.metadata,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

pub fn run(ctx: &Context, args: ListArgs) -> Result<Exit> {
    let store = ctx.open_store()?;
    let connections = store.list()?;
    let rows: Vec<Row<'_>> = connections.iter().map(Row::from).collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        eprintln!("no connections yet; create one with `wasm-host authconnection create --help`");
        return Ok(Exit::Ok);
    }
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.name.to_owned(),
                r.kind.to_owned(),
                r.provider_url.to_owned(),
                r.status.to_owned(),
                r.expires_at.clone().unwrap_or_else(|| "-".into()),
                if r.scopes.is_empty() { "-".into() } else { r.scopes.join(" ") },
            ]
        })
        .collect();
    let header = ["NAME", "TYPE", "PROVIDER", "STATUS", "EXPIRES", "SCOPES"];
    let mut widths = header.map(str::len);
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{out}");
    };
    line(&header.map(String::from));
    for row in &table {
        line(row);
    }
    Ok(Exit::Ok)
}
