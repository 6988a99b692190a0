//! `admin token create|list|revoke`: the bearer tokens operators present to a server's admin API. The token is
//! printed once by `create`; the store keeps only its hash (wasm_host_store::AdminToken).

use anyhow::Result;
use secrecy::ExposeSecret;
use wasm_host_store::{rfc3339, AdminScope, AdminToken};

use crate::args::{AdminAuditArgs, AdminTokenCreateArgs, AdminTokenListArgs, AdminTokenRevokeArgs};
use crate::context::Context;
use crate::exit::{coded, Exit};
use crate::output::{self, note};

/// An admin token as `list --json` shows it (and `create --json`, with `token`): never a hash.
#[derive(serde::Serialize)]
struct TokenJson<'a> {
    name: &'a str,
    /// `admin` or `read-only`.
    scope: &'static str,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339; `null` for a token that does not expire.
    expires_at: Option<String>,
    /// Only in `create`'s answer: the one time the token is shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
}

impl<'a> From<&'a AdminToken> for TokenJson<'a> {
    fn from(t: &'a AdminToken) -> Self {
        TokenJson {
            name: &t.name,
            scope: t.scope.as_str(),
            created_at: rfc3339(t.created_at),
            expires_at: t.expires_at.map(rfc3339),
            token: None,
        }
    }
}

/// `revoke --json`.
#[derive(serde::Serialize)]
struct Revoked<'a> {
    name: &'a str,
    revoked: bool,
}

pub fn create(ctx: &Context, args: AdminTokenCreateArgs) -> Result<Exit> {
    wasm_host_store::validate_name(&args.name)?;
    let scope = if args.read_only { AdminScope::ReadOnly } else { AdminScope::Admin };
    let store = ctx.open_store()?;
    let keys = ctx.keys(&store)?;
    let expires_at = args.expires_in.map(|d| wasm_host_store::now_unix() + d.as_secs() as i64);
    let (record, token) = AdminToken::issue_expiring(&args.name, scope, expires_at)?;
    store.create_admin_token(&record, &keys)?;
    if args.out.json {
        output::json(&TokenJson { token: Some(token.expose_secret()), ..TokenJson::from(&record) })?;
    } else {
        println!("{}", token.expose_secret());
    }
    note!(
        "created admin token `{}` ({}{}); it is shown only this once: keep it in a secret manager",
        record.name,
        scope.as_str(),
        expires_at.map(|at| format!(", expires {}", rfc3339(at))).unwrap_or_default()
    );
    Ok(Exit::Ok)
}

pub fn list(ctx: &Context, args: AdminTokenListArgs) -> Result<Exit> {
    let tokens = match ctx.existing_store()? {
        Some(store) => store.admin_tokens()?,
        None => Vec::new(),
    };
    let rows: Vec<TokenJson<'_>> = tokens.iter().map(TokenJson::from).collect();
    if args.out.json {
        output::json(&rows)?;
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        note!("no admin tokens yet; create one with `wasm-host admin token create --name NAME`");
        return Ok(Exit::Ok);
    }
    let table: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let expires = r.expires_at.clone().unwrap_or_else(|| "-".into());
            [r.name.to_owned(), r.scope.to_owned(), r.created_at.clone(), expires]
        })
        .collect();
    output::table(["NAME", "SCOPE", "CREATED", "EXPIRES"], &table);
    Ok(Exit::Ok)
}

pub fn revoke(ctx: &Context, args: AdminTokenRevokeArgs) -> Result<Exit> {
    let name = &args.name;
    wasm_host_store::validate_name(name)?;
    // No store, no such token: said without creating one.
    let revoked = match ctx.existing_store()? {
        Some(store) => store.revoke_admin_token(name)?,
        None => false,
    };
    if !revoked {
        return Err(coded(
            Exit::NotFound,
            format!("no admin token named `{name}`; `wasm-host admin token list` shows the existing ones"),
        ));
    }
    if args.out.json {
        output::json(&Revoked { name, revoked: true })?;
    }
    note!("revoked admin token `{name}`: requests presenting it are refused from now on");
    Ok(Exit::Ok)
}

/// `admin audit`: the last entries of the audit log, from the store or the admin API's `GET /v1/audit`.
pub fn audit(ctx: &Context, args: AdminAuditArgs) -> Result<Exit> {
    let entries = match ctx.remote()? {
        Some(remote) => remote.send(reqwest::Method::GET, &format!("/v1/audit?limit={}", args.limit), None)?.1,
        None => match ctx.existing_store()? {
            Some(store) => wasm_host_server::admin::audit_json(&store.audit(args.limit)?),
            None => serde_json::Value::Array(Vec::new()),
        },
    };
    if args.out.json {
        output::json(&entries)?;
        return Ok(Exit::Ok);
    }
    let rows: Vec<[String; 5]> = entries
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or("-").to_owned();
            [text("at"), text("actor"), text("action"), text("connection"), text("outcome")]
        })
        .collect();
    if rows.is_empty() {
        note!("the audit log is empty: the admin API has changed nothing yet");
        return Ok(Exit::Ok);
    }
    output::table(["AT", "ACTOR", "ACTION", "CONNECTION", "OUTCOME"], &rows);
    Ok(Exit::Ok)
}
