//! `wasm-host`: the command line of wasm-host.

mod args;
mod commands;
mod context;
mod exit;
mod grants;
mod logging;
mod manifest;
mod output;
mod paths;
mod progress;
mod remote;
mod remote_authorize;
mod remote_device;
mod report;
mod settings;
mod secret_env;
mod units;
mod wit;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::args::{AdminCommand, AdminTokenCommand, AuthConnection, CacheCommand, Cli, Command, StoreCommand, Workspace};
use crate::context::Context;
use crate::exit::Exit;

fn main() -> ExitCode {
    // Before anything else (one thread yet): no child process may inherit a secret from our environment.
    secret_env::take();
    install_panic_hook();
    let cli = parse_args();
    output::set_quiet(cli.quiet > 0);
    if let Err(err) = logging::init(cli.verbose, cli.quiet, cli.log_format) {
        eprintln!("error: {}", report::render(&err));
        return exit::classify(&err).code();
    }
    match dispatch(cli) {
        Ok(exit) => exit.code(),
        Err(err) => {
            eprintln!("error: {}", report::render(&err));
            exit::classify(&err).code()
        }
    }
}

/// The clap command with what derive cannot say: the long version, built from constants of other crates.
pub fn command() -> clap::Command {
    Cli::command().long_version(args::long_version())
}

fn parse_args() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    // Test hook: proves that a panic's message never reaches the terminal (tests/secrets.rs).
    if let Some(text) = std::env::var_os("WASM_HOST_TEST_PANIC") {
        panic!("test panic carrying {}", text.to_string_lossy());
    }
    // Resolving reads the environment only; verbs that use neither store nor identity never look at it.
    let ctx = Context::resolve(&cli);
    if cli.remote.is_some() {
        refuse_unless_remote(&cli.command)?;
    }
    match cli.command {
        Command::Authconnection(verb) | Command::Workspace(Workspace::Authconnection(verb)) => {
            let ctx = ctx?;
            match verb {
                AuthConnection::Create(a) => commands::create::run(&ctx, a),
                AuthConnection::Show(a) => commands::show::run(&ctx, a),
                AuthConnection::List(a) => commands::list::run(&ctx, a),
                AuthConnection::Delete(a) => commands::delete::run(&ctx, a),
                AuthConnection::ImportToken(a) => commands::import_token::run(&ctx, a),
                AuthConnection::Authorize(a) => commands::authorize::run(&ctx, a),
                AuthConnection::Revoke(a) => commands::revoke::run(&ctx, a),
                AuthConnection::Update(a) => commands::update::run(&ctx, a),
                AuthConnection::Providers(a) => commands::providers::run(&ctx, a),
            }
        }
        Command::Store(verb) => {
            let ctx = ctx?;
            match verb {
                StoreCommand::Recipient(a) => commands::store::recipient(&ctx, a),
                StoreCommand::Upgrade(a) => commands::store::upgrade(&ctx, a),
                StoreCommand::Migrate(a) => commands::store::migrate(&ctx, a),
                StoreCommand::Rekey(a) => commands::store::rekey(&ctx, a),
                StoreCommand::Export(a) => commands::store::export(&ctx, a),
                StoreCommand::Import(a) => commands::store::import(&ctx, a),
            }
        }
        Command::Admin(AdminCommand::Token(verb)) => {
            let ctx = ctx?;
            match verb {
                AdminTokenCommand::Create(a) => commands::admin_token::create(&ctx, a),
                AdminTokenCommand::List(a) => commands::admin_token::list(&ctx, a),
                AdminTokenCommand::Revoke(a) => commands::admin_token::revoke(&ctx, a),
            }
        }
        Command::Admin(AdminCommand::Audit(a)) => commands::admin_token::audit(&ctx?, a),
        Command::Run(a) => commands::run::run(&ctx?, a),
        Command::Serve(a) => commands::serve::run(&ctx?, a),
        Command::BuildJs(a) => commands::build_js::run(a),
        Command::New(a) => commands::new::run(&a),
        Command::Cache(CacheCommand::List(a)) => commands::cache::list(a),
        Command::Cache(CacheCommand::Clean(a)) => commands::cache::clean(a),
        Command::Completion(a) => commands::completion::completion(&a),
        Command::Man(a) => commands::completion::man(&a),
    }
}

/// With `--remote`, the verbs the admin API serves go on; every other one is refused (exit 23) before it could
/// read or create a local store the user did not mean.
fn refuse_unless_remote(command: &Command) -> anyhow::Result<()> {
    let verb = match command {
        Command::Authconnection(verb) | Command::Workspace(Workspace::Authconnection(verb)) => match verb {
            AuthConnection::Create(_)
            | AuthConnection::List(_)
            | AuthConnection::Update(_)
            | AuthConnection::Delete(_)
            | AuthConnection::Revoke(_)
            | AuthConnection::Authorize(_)
            | AuthConnection::Providers(_) => return Ok(()),
            AuthConnection::Show(_) => "authconnection show",
            AuthConnection::ImportToken(_) => "authconnection import-token",
        },
        Command::Admin(AdminCommand::Audit(_)) => return Ok(()),
        Command::Store(_) => "store",
        Command::Admin(_) => "admin token",
        Command::Run(_) => "run",
        Command::Serve(_) => "serve",
        Command::BuildJs(_) => "build-js",
        Command::New(_) => "new",
        Command::Cache(_) => "cache",
        Command::Completion(_) | Command::Man(_) => return Ok(()),
    };
    Err(exit::coded(
        Exit::NotRemote,
        format!(
            "`{verb}` works on a local store only, not through --remote (the admin API serves authconnection create, \
             list, update, delete, revoke, authorize and providers, and admin audit); run it on the server, or leave out \
             --remote and WASM_HOST_REMOTE"
        ),
    ))
}

/// A panic's message may hold whatever value was at hand (a failed slice of a string prints the string), so by
/// default only its location is shown. `WASM_HOST_PANIC_DETAIL=1` restores Rust's own report for debugging.
fn install_panic_hook() {
    if std::env::var_os("WASM_HOST_PANIC_DETAIL").is_some_and(|v| v == "1") {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!(
            "wasm-host: internal error (a bug){at}; its message is withheld because it could contain secret data. \
             Rerun with WASM_HOST_PANIC_DETAIL=1 to see it, and remove any secret from it before reporting the bug."
        );
    }));
}
