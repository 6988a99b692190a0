use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context as _, Result};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use wasm_host_store::{now_unix, validate_name, NewTokens, RefreshUpdate};
use zeroize::Zeroizing;

use crate::args::ImportTokenArgs;
use crate::context::Context;
use crate::exit::{usage, Exit, NotFound};
use crate::output::{self, note};

/// A token response as providers send it; unknown string fields become metadata.
#[derive(Deserialize)]
struct Imported {
    access_token: SecretString,
    #[serde(default)]
    refresh_token: Option<SecretString>,
    #[serde(default)]
    id_token: Option<SecretString>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_at: Option<Value>,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    scope: Option<Value>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

pub fn run(ctx: &Context, args: ImportTokenArgs) -> Result<Exit> {
    let name = &args.name.name;
    validate_name(name)?;
    let mut raw = Zeroizing::new(String::new());
    std::io::stdin().read_to_string(&mut raw).context("reading the token JSON from stdin")?;
    let imported: Imported = serde_json::from_str(&raw).map_err(|e| {
        // serde_json's message names the position, never the value.
        usage(format!(
            "stdin is not a token JSON object ({e}); expected {{\"access_token\": ..., \"refresh_token\"?: ..., \
             \"expires_in\"? | \"expires_at\"?: ..., \"token_type\"?: ..., \"scope\"?: ...}}"
        ))
    })?;
    if imported.access_token.expose_secret().trim().is_empty() {
        return Err(usage("access_token is empty"));
    }
    let expires_at = expiry(&imported)?;
    let token_type = match imported.token_type.as_deref() {
        None => "Bearer".to_owned(),
        // RFC 6749 §5.1: case-insensitive. Functions build headers from it, so give the canonical spelling.
        Some(t) if t.eq_ignore_ascii_case("bearer") => "Bearer".to_owned(),
        Some(t) if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) => t.to_owned(),
        Some(_) => return Err(usage("token_type must be a single word such as Bearer")),
    };
    let scopes = match &imported.scope {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split([' ', ',']).filter(|s| !s.is_empty()).map(String::from).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(String::from).ok_or_else(|| usage("scope list must hold strings")))
            .collect::<Result<_>>()?,
        Some(_) => return Err(usage("scope must be a space-separated string or a list of strings")),
    };
    // String fields become metadata, except those holding credentials: those are sealed like the token.
    let (credentials, metadata): (Vec<_>, Vec<_>) = imported
        .extra
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s)))
        .partition(|(k, _)| wasm_host_oauth::token::is_credential(k));
    let metadata = metadata.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
    let credentials = credentials.into_iter().map(|(k, v)| (k, SecretString::from(v))).collect();
    // Tokens need a connection: without a store there is none, and none is created to say so.
    let store = ctx.existing_store()?.ok_or_else(|| NotFound(name.clone()))?;
    let keys = ctx.keys(&store)?;
    let refresh = match &imported.refresh_token {
        Some(r) if !r.expose_secret().is_empty() => RefreshUpdate::Replace(r),
        _ => RefreshUpdate::Remove,
    };
    let conn = store.put_tokens(
        name,
        NewTokens {
            access_token: &imported.access_token,
            refresh,
            id_token: match &imported.id_token {
                Some(t) => RefreshUpdate::Replace(t),
                None => RefreshUpdate::Remove,
            },
            token_type,
            expires_at,
            scopes,
            metadata,
            credentials,
            resolved: None,
            release_lease: None,
        },
        &keys,
    )?;
    let expiry = conn
        .token
        .as_ref()
        .and_then(|t| t.expires_at)
        .map_or_else(|| "does not expire".to_owned(), |t| format!("expires {}", wasm_host_store::rfc3339(t)));
    output::connection(args.out.json, &conn)?;
    note!("stored tokens for `{}`; the access token {expiry}", conn.name);
    Ok(Exit::Ok)
}

fn expiry(imported: &Imported) -> Result<Option<i64>> {
    let number = |v: &Value, field: &str| -> Result<i64> {
        match v {
            Value::Number(n) => n.as_i64().ok_or_else(|| usage(format!("{field} must be a whole number"))),
            // Some providers send numbers as strings.
            Value::String(s) => s.trim().parse().map_err(|_| usage(format!("{field} `{s}` is not a number"))),
            _ => Err(usage(format!("{field} must be a number"))),
        }
    };
    match (&imported.expires_at, &imported.expires_in) {
        (Some(_), Some(_)) => Err(usage("give expires_at or expires_in, not both")),
        (Some(Value::String(s)), None) if s.parse::<i64>().is_err() => {
            let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|e| usage(format!("expires_at `{s}` is neither RFC 3339 nor Unix seconds: {e}")))?;
            Ok(Some(t.unix_timestamp()))
        }
        (Some(v), None) => Ok(Some(number(v, "expires_at")?)),
        (None, Some(v)) => {
            let secs = number(v, "expires_in")?;
            if secs < 0 {
                return Err(usage("expires_in is negative"));
            }
            Ok(Some(now_unix() + secs.min(wasm_host_oauth::token::MAX_EXPIRES_IN)))
        }
        (None, None) => Ok(None),
    }
}
