//! `admin token create|list|revoke`: the bearer tokens operators present to a server's admin API. The token is
//! printed once by `create`; the store keeps only its hash (wasm_host_store::AdminToken).

use anyhow::Result;
use secrecy::ExposeSecret;
use wasm_host_store::{rfc3339, AdminScope, AdminToken};

use crate::args::{AdminTokenCreateArgs, AdminTokenListArgs, AdminTokenRevokeArgs};
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
    /// Only in `create`'s answer: the one time the token is shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
}

impl<'a> From<&'a AdminToken> for TokenJson<'a> {
    fn from(t: &'a AdminToken) -> Self {
        TokenJson { name: &t.name, scope: t.scope.as_str(), created_at: rfc3339(t.created_at), token: None }
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
    let (record, token) = AdminToken::issue(&args.name, scope)?;
    store.create_admin_token(&record, &keys)?;
    if args.out.json {
        output::json(&TokenJson { token: Some(token.expose_secret()), ..TokenJson::from(&record) })?;
    } else {
        println!("{}", token.expose_secret());
    }
    note!(
        "created admin token `{}` ({}); it is shown only this once: keep it in a secret manager",
        record.name,
        scope.as_str()
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
    let table: Vec<[String; 3]> =
        rows.iter().map(|r| [r.name.to_owned(), r.scope.to_owned(), r.created_at.clone()]).collect();
    output::table(["NAME", "SCOPE", "CREATED"], &table);
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
