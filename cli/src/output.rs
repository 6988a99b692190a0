//! What commands print: results on stdout (JSON with `--json`, else text or a table), notes for people on
//! stderr (silenced by `-q`).
//!
//! The JSON shapes are a stable interface for scripts, listed in the README: add fields, never rename or remove
//! one. `tests/cli.rs` keeps a snapshot of each.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use wasm_host_store::{rfc3339, Connection};

static QUIET: AtomicBool = AtomicBool::new(false);

/// `-q`: notes are not printed (errors still are).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A message for the person at the terminal, on stderr: what was done, what to do next. Not printed with `-q`.
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::output::quiet() {
            eprintln!($($arg)*);
        }
    };
}
pub(crate) use note;

/// Prints `value` as pretty JSON on stdout, one document.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// One connection as `list --json` (an array of these), `show --json`, `create --json`, `authorize --json` and
/// `import-token --json` print it. Never a secret.
#[derive(Serialize)]
pub struct ConnectionJson<'a> {
    pub name: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub provider_url: &'a str,
    pub issuer_url: Option<&'a str>,
    pub client_id: &'a str,
    /// How tokens are obtained: `authorization-code` or `client-credentials`.
    pub grant: &'static str,
    /// `needs-authorization`, `authorized`, `revoked`, ...
    pub status: &'static str,
    /// Why the connection needs authorization again, when it does.
    pub status_reason: Option<&'a str>,
    /// RFC 3339; `null` without a token or for a token that does not expire.
    pub expires_at: Option<String>,
    pub token_type: Option<&'a str>,
    pub scopes: &'a [String],
    pub has_refresh_token: bool,
    pub expose_refresh_token: bool,
    /// The endpoints given at `create` (`null` where presets or discovery decide).
    pub endpoints: EndpointsJson<'a>,
    pub metadata: &'a BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize)]
pub struct EndpointsJson<'a> {
    pub auth_url: Option<&'a str>,
    pub token_url: Option<&'a str>,
    pub revocation_url: Option<&'a str>,
    pub userinfo_url: Option<&'a str>,
}

impl<'a> From<&'a Connection> for ConnectionJson<'a> {
    fn from(c: &'a Connection) -> Self {
        let token = c.token.as_ref();
        ConnectionJson {
            name: &c.name,
            kind: &c.kind,
            provider_url: &c.provider_url,
            issuer_url: c.issuer_url.as_deref(),
            client_id: &c.client_id,
            grant: c.options.grant.as_str(),
            status: c.status.as_str(),
            status_reason: c.status_reason.as_deref(),
            expires_at: token.and_then(|t| t.expires_at).map(rfc3339),
            token_type: token.map(|t| t.token_type.as_str()),
            scopes: token.map_or(&[], |t| t.scopes.as_slice()),
            has_refresh_token: token.is_some_and(|t| t.has_refresh_token),
            expose_refresh_token: c.expose_refresh_token,
            endpoints: EndpointsJson {
                auth_url: c.endpoints.auth_url.as_deref(),
                token_url: c.endpoints.token_url.as_deref(),
                revocation_url: c.endpoints.revocation_url.as_deref(),
                userinfo_url: c.endpoints.userinfo_url.as_deref(),
            },
            metadata: &c.metadata,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

/// Prints `connection` as JSON when asked; the caller prints its own note otherwise.
pub fn connection(json_wanted: bool, connection: &Connection) -> anyhow::Result<()> {
    if json_wanted {
        json(&ConnectionJson::from(connection))?;
    }
    Ok(())
}

/// A table on stdout. At a terminal: a header and aligned columns. Into a pipe or file: no header, one line per
/// row, cells separated by tabs (what `cut -f` and `awk -F'\t'` read), as `gh` and `ls` do.
pub fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    if !std::io::stdout().is_terminal() {
        for row in rows {
            println!("{}", row.join("\t"));
        }
        return;
    }
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
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
        println!("{}", out.trim_end());
    };
    line(&header.map(String::from));
    for row in rows {
        line(row);
    }
}
