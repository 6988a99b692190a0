//! `authconnection update`: changes a connection's client registration and keeps its grant (the checks and the
//! write are wasm_host_server::manage's, shared with the admin API).

use anyhow::Result;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::Value;
use wasm_host_server::manage::{self, ConnectionJson, UpdateRequest};

use crate::args::UpdateArgs;
use crate::context::Context;
use crate::exit::Exit;

pub fn run(ctx: &Context, mut args: UpdateArgs) -> Result<Exit> {
    let name = args.name.name.clone();
    let mut request = UpdateRequest {
        client_id: args.client_id.clone(),
        client_secret: None,
        issuer_url: args.issuer_url.clone(),
        endpoints: super::create::endpoints(&args.endpoints),
        protocol: super::create::protocol(&args.protocol),
    };
    // Every check before the store is touched: a refused `update` changes nothing.
    request.prepare(&name)?;
    request.client_secret = super::create::client_secret(&name, args.client_secret.take(), args.client_secret_stdin)?;
    let prepared = request.prepare(&name)?;
    let (conn, note) = match ctx.remote()? {
        Some(remote) => {
            let mut body = serde_json::to_value(&request)?;
            if let Some(secret) = &request.client_secret {
                body["client_secret"] = Value::String(secret.expose_secret().to_owned());
            }
            let answer = remote.send(Method::PATCH, &crate::remote::connection_path(&name), Some(&body));
            if let Some(Value::String(copy)) = body.get_mut("client_secret") {
                zeroize::Zeroize::zeroize(copy);
            }
            let mut conn = answer?.1;
            let note = conn["grant_note"].as_str().unwrap_or("").to_owned();
            conn.as_object_mut().map(|o| o.remove("grant_note"));
            (conn, note)
        }
        None => {
            let store = ctx.open_store()?;
            let keys = ctx.keys(&store)?;
            let updated = manage::update(&store, &keys, prepared, request.client_secret.as_ref())?;
            (serde_json::to_value(ConnectionJson::from(&updated.connection))?, updated.grant_note().to_owned())
        }
    };
    if args.out.json {
        crate::output::json(&conn)?;
    }
    let field = |k: &str| conn[k].as_str().unwrap_or("-").to_owned();
    crate::output::note!("updated connection `{}` ({}){note}", field("name"), field("status"));
    Ok(Exit::Ok)
}
