//! `wasm-host`: the command line of wasm-host.

mod args;
mod commands;
mod context;
mod exit;
mod manifest;
mod paths;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{AuthConnection, Cli, Command, Workspace};
use crate::context::Context;
use crate::exit::Exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match dispatch(cli) {
        Ok(exit) => exit.code(),
        Err(err) => {
            // The cause chain, once: "error: top: cause: root".
            eprintln!("error: {err:#}");
            exit::classify(&err).code()
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let ctx = Context::resolve(&cli)?;
    match cli.command {
        Command::Authconnection(verb) | Command::Workspace(Workspace::Authconnection(verb)) => match verb {
            AuthConnection::Create(a) => commands::create::run(&ctx, a),
            AuthConnection::List(a) => commands::list::run(&ctx, a),
            AuthConnection::Delete(a) => commands::delete::run(&ctx, a),
            AuthConnection::ImportToken(a) => commands::import_token::run(&ctx, a),
            AuthConnection::Authorize(a) => commands::authorize::run(&ctx, a),
            AuthConnection::Revoke(a) => commands::revoke::run(&ctx, a),
        },
        Command::Run(a) => commands::run::run(&ctx, a),
        Command::BuildJs(a) => commands::build_js::run(a),
    }
}

/// Log lines go to stderr; `WASM_HOST_LOG=debug` (error, warn, info, debug, trace) shows more.
fn init_logging() {
    let level = std::env::var("WASM_HOST_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::WARN);
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(level).with_target(false).init();
}
