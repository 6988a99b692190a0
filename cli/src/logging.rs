//! Log lines on stderr, filtered by tracing-subscriber's `EnvFilter`: `-v`/`-q` when given, else
//! `WASM_HOST_LOG` (a level, or `RUST_LOG`-style directives such as `wasm_host=debug,wasm_host_runtime=trace`),
//! else `warn`. `--log-format json` writes one JSON object per line.

use std::io::IsTerminal;

use anyhow::Result;
use tracing_subscriber::EnvFilter;

use crate::args::LogFormat;
use crate::exit::usage;

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Installs the global subscriber. Fails (exit 2) on a `WASM_HOST_LOG` that is not a filter, rather than
/// logging at some level the user did not ask for.
pub fn init(verbose: u8, quiet: u8, format: LogFormat) -> Result<()> {
    let filter = match (verbose, quiet) {
        (0, 0) => from_env()?,
        (0, 1) => EnvFilter::new("error"),
        (0, _) => EnvFilter::new("off"),
        (1, _) => EnvFilter::new("info"),
        (2, _) => EnvFilter::new("debug"),
        _ => EnvFilter::new("trace"),
    };
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        LogFormat::Text => builder.with_target(false).with_ansi(std::io::stderr().is_terminal()).init(),
    }
    Ok(())
}

fn from_env() -> Result<EnvFilter> {
    let Some(value) = std::env::var("WASM_HOST_LOG").ok().filter(|v| !v.trim().is_empty()) else {
        return Ok(EnvFilter::new("warn"));
    };
    let help = "write a level (error, warn, info, debug, trace, off) or directives such as \
                wasm_host=debug,wasm_host_runtime=trace";
    // EnvFilter reads a bare word as a target to log at every level, so a misspelt level (`debgu`) would
    // silently log nothing of what was wanted: a bare word must be a level.
    for directive in value.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if !directive.contains('=') && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(directive)) {
            return Err(usage(format!(
                "WASM_HOST_LOG: `{directive}` is not a level; {help} (a target alone needs its level: {directive}=debug)"
            )));
        }
    }
    EnvFilter::builder()
        .parse(&value)
        .map_err(|e| usage(format!("WASM_HOST_LOG=`{value}` is not a log filter ({e}); {help}")))
}
