//! `authconnection providers`: the built-in provider catalog (oauth/providers.toml).

use anyhow::Result;
use wasm_host_oauth::catalog::{self, Entry};

use crate::args::ProvidersArgs;
use crate::exit::Exit;

pub fn run(ctx: &crate::context::Context, args: ProvidersArgs) -> Result<Exit> {
    // A remote server's catalog: the one its `create --provider` uses, whatever this build's is.
    let remote_entries: Option<Vec<Entry>> = match ctx.remote()? {
        Some(remote) => Some(serde_json::from_value(remote.send(reqwest::Method::GET, "/v1/providers", None)?.1)?),
        None => None,
    };
    let entries = remote_entries.as_deref().unwrap_or(catalog::entries());
    if args.json {
        crate::output::json(&entries)?;
        return Ok(Exit::Ok);
    }
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|e| [e.id.clone(), e.name.clone(), e.template_flags(), e.quirks().join(", "), e.docs.clone()])
        .collect();
    crate::output::table(["ID", "PROVIDER", "PLACEHOLDERS", "QUIRKS", "DOCUMENTATION"], &rows);
    Ok(Exit::Ok)
}
