//! What commands print: results on stdout (JSON with `--json`, else text or a table), notes for people on
//! stderr (silenced by `-q`).
//!
//! The JSON shapes are a stable interface for scripts, listed in the README: add fields, never rename or remove
//! one. `tests/cli.rs` keeps a snapshot of each.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use wasm_host_store::Connection;

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

pub use wasm_host_server::manage::ConnectionJson;

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
