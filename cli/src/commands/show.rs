//! `authconnection show NAME`: one connection's settings, status and token facts. Never a secret, and never
//! creates the store.

use anyhow::Result;
use wasm_host_store::validate_name;

use crate::args::ShowArgs;
use crate::context::Context;
use crate::exit::{Exit, NotFound};
use crate::output::{self, ConnectionJson};

pub fn run(ctx: &Context, args: ShowArgs) -> Result<Exit> {
    let name = &args.name.name;
    validate_name(name)?;
    let conn = match ctx.existing_store()? {
        Some(store) => store.get(name)?,
        None => None,
    }
    .ok_or_else(|| NotFound(name.clone()))?;
    let c = ConnectionJson::from(&conn);
    if args.out.json {
        output::json(&c)?;
        return Ok(Exit::Ok);
    }
    let or_dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
    let mut lines: Vec<(&str, String)> = vec![
        ("name", c.name.to_owned()),
        ("type", c.kind.to_owned()),
        ("grant", c.grant.to_owned()),
        ("status", match c.status_reason {
            Some(why) => format!("{} ({why})", c.status),
            None => c.status.to_owned(),
        }),
        ("provider", c.provider_url.to_owned()),
        ("issuer", or_dash(c.issuer_url)),
        ("client id", c.client_id.to_owned()),
        ("auth url", or_dash(c.endpoints.auth_url)),
        ("token url", or_dash(c.endpoints.token_url)),
        ("revocation url", or_dash(c.endpoints.revocation_url)),
        ("userinfo url", or_dash(c.endpoints.userinfo_url)),
    ];
    if conn.token.is_some() {
        lines.extend([
            ("token type", or_dash(c.token_type)),
            ("expires", c.expires_at.clone().unwrap_or_else(|| "never".into())),
            ("scopes", if c.scopes.is_empty() { "-".into() } else { c.scopes.join(" ") }),
            ("refresh token", if c.has_refresh_token { "stored".into() } else { "none".into() }),
        ]);
    } else {
        lines.push(("tokens", "none: run `wasm-host authconnection authorize` or `import-token`".into()));
    }
    lines.push((
        "functions get",
        if c.expose_refresh_token { "access and refresh token".into() } else { "access token only".into() },
    ));
    for (key, value) in c.metadata {
        lines.push(("metadata", format!("{key}={value}")));
    }
    lines.extend([("created", c.created_at.clone()), ("updated", c.updated_at.clone())]);
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in lines {
        println!("{:<width$}  {value}", format!("{key}:"), width = width + 1);
    }
    Ok(Exit::Ok)
}
