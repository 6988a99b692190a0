//! The command line: one `Args` struct per verb, resolved into settings before any work starts.
//!
//! Help text rule: every line of every `--help` fits in 100 columns as written (examples are continued with
//! `\`, never left for clap to wrap mid-command); `tests/cli.rs` keeps a snapshot of each verb's help and checks
//! the widths.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValuesParser;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum, ValueHint};

use crate::units;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  run: the function returned an error (printed on stderr)
  2  invalid flags or input (name, URL, type, JSON)
  3  no such connection
  4  a connection of that name already exists
  5  the store or identity cannot be used (wrong identity, damaged or locked file, permissions)
  6  the component file cannot be read
  7  the file is not a valid WebAssembly component
  8  the component is of another world (missing `run` export, or an import wasm-host does not provide)
  9  the function trapped or exited instead of returning
 10  any other failure
 11  the provider refused (access denied, invalid client or scope, invalid ID token)
 12  the provider could not be reached or failed; retrying later may work
 13  no authorization callback arrived before the timeout (authorize --device: the code expired)
 14  run: the function ran past --timeout and was stopped
 15  run: the function hit --max-memory and was stopped
 16  run: the function overflowed its stack (runaway recursion) and was stopped
 17  run: the function's result was larger than --max-output
 18  build-js: the JavaScript does not build (the message gives file and line)
 19  build-js: Node.js or npm is missing, or componentize-js could not be installed
 20  store import: the bundle cannot be used (not encrypted to this identity, damaged, or a newer format)
 21  authorize: the connection's grant has no authorization step (client credentials)
 22  the store's database (postgres://) cannot be reached now; retrying later may work
 23  --remote: this verb works on a local store only
 24  --remote: the admin token was refused (missing, unknown, revoked, expired, read-only),
     or the server could not be reached

Environment:
  WASM_HOST_LOG          what to log on stderr: a level (error, warn, info, debug, trace) or directives
                         such as wasm_host_runtime=debug,wasm_host_oauth=trace [default: warn]; -v and
                         -q override it
  WASM_HOST_LOG_FORMAT   text or json (one JSON object per line), as --log-format
  WASM_HOST_STORE, WASM_HOST_IDENTITY, WASM_HOST_IDENTITY_KEY    see --store and --identity; give a
                         postgres:// URL with a password in WASM_HOST_STORE, not in --store (other
                         users can read argument lists)
  WASM_HOST_CLIENT_SECRET        authconnection create: the client secret
  WASM_HOST_REMOTE, WASM_HOST_REMOTE_CA   see --remote and --remote-ca
  WASM_HOST_ADMIN_TOKEN          --remote: the admin token (or --admin-token-file; never in argv)
  WASM_HOST_CACHE_DIR            compiled components [default: $XDG_CACHE_HOME/wasm-host]
  WASM_HOST_CACHE_MAX            the compile cache's size cap, e.g. 2GiB [default: 1GiB]
  WASM_HOST_JS_TOOLS             where build-js installs componentize-js";

/// `--version`: the crate version, then the commit, wasmtime and componentize-js (see build.rs).
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("WASM_HOST_COMMIT"),
    "\nwasmtime: ",
    "{wasmtime}",
    "\ncomponentize-js: ",
    env!("WASM_HOST_COMPONENTIZE_JS"),
    " (build-js)"
);

/// The long version with the wasmtime version filled in (a `const` from another crate cannot go into
/// `concat!`).
pub fn long_version() -> String {
    LONG_VERSION.replace("{wasmtime}", wasm_host_runtime::WASMTIME_VERSION)
}

#[derive(Debug, Parser)]
#[command(
    name = "wasm-host",
    version,
    about = "Run serverless WebAssembly functions that call OAuth2 APIs, without any function holding a \
             client secret.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// The connection store: a redb file, or a postgres:// URL several hosts share (see README)
    /// [default: $XDG_DATA_HOME/wasm-host/store.redb]
    #[arg(long, global = true, env = "WASM_HOST_STORE", value_name = "PATH|URL", value_hint = ValueHint::FilePath)]
    pub store: Option<PathBuf>,

    /// The age identity that encrypts the store's secrets [default: $XDG_CONFIG_HOME/wasm-host/identity.txt].
    /// In containers, WASM_HOST_IDENTITY_KEY may hold the key itself instead.
    #[arg(long, global = true, env = "WASM_HOST_IDENTITY", value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub identity: Option<PathBuf>,

    /// Log more on stderr: -v info, -vv debug, -vvv trace (overrides WASM_HOST_LOG)
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Log less on stderr: -q errors only, -qq nothing (overrides WASM_HOST_LOG)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub quiet: u8,

    /// Log lines as text or as one JSON object per line
    #[arg(long, global = true, env = "WASM_HOST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Manage the connections of a remote `wasm-host serve` through its admin API (https://HOST:PORT; http only
    /// to a loopback address) instead of a local store: authconnection create, list, update, delete, revoke,
    /// authorize (the browser here, the tokens on the server; not --device), providers, and admin audit. The admin
    /// token comes from WASM_HOST_ADMIN_TOKEN or --admin-token-file.
    /// Given before the command: `wasm-host --remote URL authconnection list`
    #[arg(long, env = "WASM_HOST_REMOTE", value_name = "URL", value_hint = ValueHint::Url)]
    pub remote: Option<String>,

    /// --remote: a PEM file of the CA that issued the server's certificate (a private CA), trusted besides the
    /// public roots
    #[arg(long, env = "WASM_HOST_REMOTE_CA", value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub remote_ca: Option<PathBuf>,

    /// --remote: a file holding the admin token (`wasm-host admin token create` on the server); by default
    /// WASM_HOST_ADMIN_TOKEN
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub admin_token_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `--json`, shared by every verb that reports something.
#[derive(Debug, Clone, Copy, Args)]
pub struct JsonFlag {
    /// Print the result on stdout as JSON (stable field names, documented in the README; for scripts)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage OAuth2 connections: create, show, list, authorize, revoke, import-token, delete
    #[command(subcommand)]
    Authconnection(AuthConnection),

    /// The same commands as the other runtime's CLI spells them: `workspace authconnection ...`
    #[command(subcommand)]
    Workspace(Workspace),

    /// Manage the store itself: its public key, key rotation (rekey), moving connections between hosts
    #[command(subcommand)]
    Store(StoreCommand),

    /// Manage admin tokens: the bearer credentials operators present to a server's admin API
    #[command(subcommand)]
    Admin(AdminCommand),

    /// Run a function component once: `run(input)` is called and its JSON result printed on stdout
    #[command(after_help = concat!(
        "Example:\n  wasm-host run userinfo.wasm --allow-connection google \\\n",
        "    --allow-host openidconnect.googleapis.com \\\n",
        "    --input '{\"connection\":\"google\",\n",
        "              \"url\":\"https://openidconnect.googleapis.com/v1/userinfo\"}'\n\n",
        "Durations: 500ms, 1.5s, 90 (seconds), 5m, 1h30m, 2d. Sizes: 64MiB, 1.5GiB, 500MB (10^6 bytes).\n",
        "The function's own stdout and stderr go to wasm-host's stderr; stdout carries only the result.\n",
        "Compiled components are cached in $XDG_CACHE_HOME/wasm-host/ (WASM_HOST_CACHE_DIR overrides);\n",
        "`wasm-host cache list` shows them."
    ))]
    Run(RunArgs),

    /// Serve functions over HTTP: each function answers its route, in a fresh instance per request
    #[command(after_help = concat!(
        "Example:\n  wasm-host serve --listen 127.0.0.1:8080 --metrics-listen 127.0.0.1:9090 userinfo.wasm hello=hello.wasm functions/\n",
        "  curl -X POST http://127.0.0.1:8080/userinfo -d '{\"connection\":\"google\",\"url\":\"...\"}'\n\n",
        "A FUNCTION is FILE.wasm (named after the file), NAME=FILE.wasm, or a directory whose .wasm files are each\n",
        "a function. Each takes its grants, limits and route from the TOML manifest beside it (FILE.toml; route\n",
        "defaults to /NAME). A component of the `function` world answers POST /ROUTE with run(body); one of the\n",
        "`http-function` world (wasi:http/proxy) answers every request under /ROUTE.\n",
        "SIGHUP, or with --watch a changed .wasm or .toml file, reloads components and manifests;\n",
        "SIGTERM or SIGINT stops accepting, lets requests in flight finish (at most --drain-timeout) and\n",
        "exits 0."
    ))]
    Serve(ServeArgs),

    /// Build a JavaScript function (`export default async (input) => ...`) into a component
    #[command(after_help = "Example:\n  wasm-host build-js userinfo.js -o userinfo.wasm\n\n\
        Needs Node.js. The first build installs the pinned componentize-js into\n\
        $XDG_CACHE_HOME/wasm-host/js-tools/ (WASM_HOST_JS_TOOLS overrides). The module may call\n\
        tailor.authconnection.getConnectionToken(name) and fetch(); its default export gets the\n\
        parsed input and returns the result, which becomes JSON.")]
    BuildJs(BuildJsArgs),

    /// Start a function: write a project (WIT, manifest, README) that builds and runs as written
    #[command(after_help = "Example:\n  wasm-host new my-function --lang rust\n  \
        cd my-function && cat README.md\n\n\
        The project gets the WIT this binary implements, a manifest (NAME.toml) with its grants and\n\
        limits, and a README with the commands that build and run it.")]
    New(NewArgs),

    /// Inspect or empty the cache of compiled components
    #[command(subcommand)]
    Cache(CacheCommand),

    /// Print a shell completion script on stdout
    #[command(after_help = "Example:\n  \
        wasm-host completion bash > ~/.local/share/bash-completion/completions/wasm-host\n  \
        wasm-host completion zsh > ~/.zfunc/_wasm-host     # with fpath+=~/.zfunc in ~/.zshrc\n  \
        wasm-host completion fish > ~/.config/fish/completions/wasm-host.fish")]
    Completion(CompletionArgs),

    /// Write manual pages (man 1) for wasm-host and each of its commands into a directory
    #[command(after_help = "Example:\n  wasm-host man --out-dir ~/.local/share/man/man1 && man wasm-host-run")]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct BuildJsArgs {
    /// The JavaScript module; other .js/.json files in its directory may be imported relatively
    #[arg(value_name = "FUNCTION.js", value_hint = ValueHint::FilePath)]
    pub source: PathBuf,
    /// Where to write the component
    #[arg(short, long, value_name = "FUNCTION.wasm", value_hint = ValueHint::FilePath)]
    pub output: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Workspace {
    /// Manage OAuth2 connections: create, show, list, authorize, revoke, import-token, delete
    #[command(subcommand)]
    Authconnection(AuthConnection),
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Print this host's public key (age1...), creating the identity on first use: what another host
    /// passes to `store export --recipient` to send its connections here
    #[command(after_help = "Example:\n  wasm-host store recipient\n  \
        age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p")]
    Recipient(RecipientArgs),
    /// Authenticate the connections of a store written by a wasm-host older than record authentication, as they
    /// stand now, listing each one's endpoints so you can check what is being vouched for
    #[command(after_help = "Example:\n  wasm-host store upgrade\n\n\
        Needed once, after upgrading wasm-host, for a store that holds connections; every other command\n\
        refuses such a store (exit 5) rather than vouch for records that anyone able to write the file\n\
        could have changed. Check the endpoints it prints: a token or authorization URL you did not set\n\
        means the store was tampered with (restore it from a backup and rotate the client secrets).")]
    Upgrade(UpgradeArgs),
    /// Create or update a PostgreSQL store's tables to this version's schema (done on first use too)
    #[command(after_help = "Example:\n  WASM_HOST_STORE=postgres://wasm_host@db.internal:5432/wasm_host wasm-host store migrate\n\n\
        Run it once when deploying a new version, before starting its hosts; a database whose schema is\n\
        newer than this wasm-host is refused (exit 5): upgrade wasm-host. A redb store needs no migration.")]
    Migrate(UpgradeArgs),
    /// Re-encrypt every secret to a new identity, in one transaction, and retire the old identity
    #[command(after_help = "Example:\n  wasm-host store rekey\n  \
        WASM_HOST_IDENTITY_KEY=... wasm-host store rekey --new-identity-file /run/secrets/new-key.txt\n\n\
        With an identity file, rekey replaces the file with the new identity. A kill at any moment\n\
        leaves a store that opens with the old or the new identity (the next command finishes an\n\
        interrupted switch). With WASM_HOST_IDENTITY_KEY, the new identity goes to\n\
        --new-identity-file (0600, never overwritten): put its AGE-SECRET-KEY line into\n\
        WASM_HOST_IDENTITY_KEY, then delete the file. Restart running hosts afterwards: they hold\n\
        the old identity, which the store now refuses.")]
    Rekey(RekeyArgs),
    /// Write every connection with its secrets to a file encrypted to another host's public key
    #[command(after_help = "Example:\n  wasm-host store export -o connections.age \\\n    \
        --recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n\n\
        The other host prints its key with `wasm-host store recipient` and reads the file with\n\
        `wasm-host store import`. Only that host's identity can decrypt it, not even this host's.")]
    Export(ExportArgs),
    /// Read a bundle written by `store export` on another host into this store
    #[command(after_help = "Example:\n  wasm-host store import connections.age\n  \
        wasm-host store import --replace connections.age   # overwrite connections of the same name\n\n\
        Without --replace, a name that exists already refuses the whole import (exit 4) and nothing\n\
        changes. Imported connections keep their status and tokens; their secrets are re-encrypted\n\
        to this host's identity.")]
    Import(ImportArgs),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create, list and revoke admin tokens (the store keeps only a hash of each)
    #[command(subcommand)]
    Token(AdminTokenCommand),
    /// The admin API's audit log: who changed what and when, refused attempts included (also with --remote)
    #[command(after_help = "Example:\n  wasm-host admin audit --limit 20\n  wasm-host --remote https://host:9443 admin audit --json")]
    Audit(AdminAuditArgs),
}

#[derive(Debug, Args)]
pub struct AdminAuditArgs {
    /// Show the last N entries
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub limit: usize,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Make a token and print it once on stdout; the store keeps only its SHA-256, name, scope and time
    #[command(after_help = "Example:\n  (umask 077; wasm-host admin token create --name ci --read-only > ci-token.txt)\n\n\
        The token (wha_ followed by 43 characters) is printed once and cannot be shown again: keep it in\n\
        a secret manager. Lost or leaked, revoke it with `wasm-host admin token revoke NAME` and create\n\
        another.")]
    Create(AdminTokenCreateArgs),
    /// List the admin tokens: name, scope and creation time (never a token, never a hash)
    #[command(after_help = "Example:\n  wasm-host admin token list --json")]
    List(AdminTokenListArgs),
    /// Delete an admin token: requests presenting it are refused from then on
    #[command(after_help = "Example:\n  wasm-host admin token revoke ci")]
    Revoke(AdminTokenRevokeArgs),
}

#[derive(Debug, Args)]
pub struct AdminTokenCreateArgs {
    /// Token name: lowercase letters, digits and single hyphens, at most 63 characters
    #[arg(long, allow_hyphen_values = true)]
    pub name: String,
    /// The token may read but not change anything
    #[arg(long)]
    pub read_only: bool,
    /// Refuse the token after this long, e.g. 30d, 12h [default: it does not expire]
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    pub expires_in: Option<Duration>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct AdminTokenListArgs {
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct AdminTokenRevokeArgs {
    /// The token's name, as given to `create` (`admin token list` shows them)
    #[arg(value_name = "NAME")]
    pub name: String,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct RecipientArgs {
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// Where to write the new identity when the current one comes from WASM_HOST_IDENTITY_KEY (a file
    /// that must not exist yet; created 0600)
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub new_identity_file: Option<PathBuf>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The age public key (age1...) of the host that will import the bundle
    #[arg(long, value_name = "AGE_PUBLIC_KEY")]
    pub recipient: String,
    /// Write the bundle here (0600) instead of stdout
    #[arg(short, long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub output: Option<PathBuf>,
    /// Print what was exported as JSON on stdout (needs -o: without it, stdout carries the bundle)
    #[arg(long, requires = "output")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The bundle `store export` wrote (`-` for stdin)
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub file: PathBuf,
    /// Overwrite connections that exist already with the bundle's (by default such a name refuses the
    /// import)
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Subcommand)]
pub enum AuthConnection {
    /// Register an OAuth2 connection; its client secret is stored encrypted
    #[command(after_help = "Example:\n  wasm-host authconnection create --name google --type TYPE_OAUTH2 \\\n    \
        --provider-url https://accounts.google.com \\\n    \
        --client-id 123.apps.googleusercontent.com --client-secret-stdin < secret.txt\n\n\
        The secret comes from --client-secret-stdin, WASM_HOST_CLIENT_SECRET or --client-secret; at a\n\
        terminal, without any of them, it is asked for without echo.")]
    Create(CreateArgs),
    /// Show one connection: its settings, status, token expiry and scopes (never a secret)
    #[command(after_help = "Example:\n  wasm-host authconnection show google\n  \
        wasm-host authconnection show google --json | jq -r .status")]
    Show(ShowArgs),
    /// List connections: name, type, provider, status, token expiry, scopes (never a secret)
    #[command(after_help = "Example:\n  wasm-host authconnection list --json | jq -r '.[].status'\n\n\
        At a terminal the table is aligned under a header; into a pipe it is one tab-separated line per\n\
        connection, without the header.")]
    List(ListArgs),
    /// Delete a connection and every secret it holds
    #[command(after_help = "Example:\n  wasm-host authconnection delete google")]
    Delete(DeleteArgs),
    /// Authorize a connection: opens the provider's consent page and stores the tokens it grants
    #[command(after_help = "Example:\n  wasm-host authconnection authorize google \\\n    \
        --scopes 'openid email https://www.googleapis.com/auth/drive.readonly'\n  \
        wasm-host authconnection authorize quickbooks --no-browser --port 0   # prints the URL\n\n\
        The callback server listens on 127.0.0.1:PORT at /callback: register\n\
        http://127.0.0.1:PORT/callback as a redirect URI with the provider (native/desktop apps may\n\
        use any port).\n\n\
        With --remote URL, the browser and the callback server are on this machine, while the\n\
        server named by URL builds the request and exchanges the code: the tokens stay there.")]
    Authorize(AuthorizeArgs),
    /// Change a connection's client registration (ID, secret, endpoints, options); its tokens and grant stay
    #[command(after_help = "Example:\n  printf %s \"$NEW_SECRET\" | wasm-host authconnection update google --client-secret-stdin\n  \
        wasm-host authconnection update dropbox --auth-param token_access_type=offline --client-auth post\n\n\
        After the provider refused the client (status client-refused, e.g. a rotated secret), update it: the\n\
        stored refresh token is used with the new registration at the next refresh, no new authorization needed.")]
    Update(UpdateArgs),
    /// List the providers of the built-in catalog, for `create --provider NAME`
    #[command(after_help = "Example:\n  wasm-host authconnection providers\n  \
        wasm-host authconnection providers --json | jq -r '.[].id'\n\n\
        Each entry was written from the provider's documentation, linked in its `docs` field.")]
    Providers(ProvidersArgs),
    /// Revoke a connection's tokens at the provider and forget them; the registration stays
    #[command(after_help = "Example:\n  wasm-host authconnection revoke google\n\n\
        `authorize` can run again afterwards. Without a revocation endpoint (Microsoft has none) the\n\
        tokens are deleted locally and the grant must be removed in the provider's account settings.")]
    Revoke(RevokeArgs),
    /// Store tokens obtained elsewhere, read as JSON on stdin
    #[command(after_help = "Example:\n  \
        echo '{\"access_token\":\"ya29...\",\"refresh_token\":\"1//...\",\"expires_in\":3599}' \\\n    \
        | wasm-host authconnection import-token google\n\n\
        Accepted fields: access_token (required), refresh_token, id_token, token_type (default\n\
        Bearer), expires_at (RFC 3339 or Unix seconds) or expires_in (seconds), scope (space-separated\n\
        or a list). Other string fields (instance_url, ...) are kept as the connection's metadata.")]
    ImportToken(ImportTokenArgs),
}

/// The NAME argument of the verbs that act on one connection.
#[derive(Debug, Args)]
pub struct NameArg {
    /// The connection's name, as given to `create` (`authconnection list` shows them)
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Connection name: lowercase letters, digits and single hyphens, at most 63 characters
    #[arg(long, allow_hyphen_values = true)]
    pub name: String,
    /// Connection type
    #[arg(long = "type", value_name = "TYPE", value_parser = PossibleValuesParser::new(wasm_host_store::CONNECTION_TYPES.iter().copied()))]
    pub kind: String,
    /// The provider's base URL, e.g. https://accounts.google.com (with --provider: the catalog's, unless given)
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url, required_unless_present = "provider")]
    pub provider_url: Option<String>,
    /// A provider of the built-in catalog (`authconnection providers` lists them): fills the endpoints, scopes and
    /// protocol options; flags given explicitly override what it fills
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    #[command(flatten)]
    pub placeholders: PlaceholderArgs,
    /// The OpenID Connect issuer, when it differs from the provider URL
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url)]
    pub issuer_url: Option<String>,
    /// The client ID the provider issued for your app (public; shown by `list` and `show`)
    #[arg(long, value_name = "ID")]
    pub client_id: String,
    /// The client secret. Visible to other users in the process list and kept in shell history: prefer
    /// --client-secret-stdin or WASM_HOST_CLIENT_SECRET
    #[arg(long, value_name = "SECRET", conflicts_with = "client_secret_stdin")]
    pub client_secret: Option<String>,
    /// Read the client secret from stdin (one line; a trailing newline is dropped). At a terminal it is
    /// asked for without echo
    #[arg(long)]
    pub client_secret_stdin: bool,
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    /// Hand the refresh token to functions too (by default only the host holds it)
    #[arg(long)]
    pub expose_refresh_token: bool,
    /// How the connection gets its tokens: authorization-code (a user authorizes once with `authorize`, or
    /// `authorize --device`) or client-credentials (RFC 6749 §4.4, no user: the host requests tokens with the
    /// client's own credentials at first use and before expiry, with --default-scopes and --token-param)
    #[arg(long, value_name = "GRANT", default_value = "authorization-code",
          value_parser = PossibleValuesParser::new(["authorization-code", "client-credentials"]))]
    pub grant: String,
    #[command(flatten)]
    pub protocol: ProtocolArgs,
    #[command(flatten)]
    pub out: JsonFlag,
}

/// The parts of a catalog provider's URLs that differ between accounts (`create --provider`).
#[derive(Debug, Args, Default)]
pub struct PlaceholderArgs {
    /// Microsoft Entra tenant (ID, domain, `common`, `organizations`) for --provider microsoft
    #[arg(long, value_name = "TENANT", requires = "provider")]
    pub tenant: Option<String>,
    /// The account's host for --provider okta, auth0, keycloak, gitlab, salesforce (My Domain), docusign
    #[arg(long, value_name = "HOST", requires = "provider")]
    pub domain: Option<String>,
    /// Keycloak realm for --provider keycloak
    #[arg(long, value_name = "REALM", requires = "provider")]
    pub realm: Option<String>,
    /// Zendesk subdomain for --provider zendesk
    #[arg(long, value_name = "SUBDOMAIN", requires = "provider")]
    pub subdomain: Option<String>,
    /// Shopify shop name (SHOP.myshopify.com) for --provider shopify
    #[arg(long, value_name = "SHOP", requires = "provider")]
    pub shop: Option<String>,
}

impl PlaceholderArgs {
    /// Placeholder name → value, for those given.
    pub fn given(&self) -> std::collections::BTreeMap<String, String> {
        [("tenant", &self.tenant), ("domain", &self.domain), ("realm", &self.realm), ("subdomain", &self.subdomain), ("shop", &self.shop)]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), v.clone())))
            .collect()
    }
}

/// Endpoints given by hand, on `create` and `update`: they override presets and discovery.
#[derive(Debug, Args)]
pub struct EndpointArgs {
    /// Authorization endpoint, overriding presets and discovery
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url)]
    pub auth_url: Option<String>,
    /// Token endpoint, overriding presets and discovery
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url)]
    pub token_url: Option<String>,
    /// RFC 7009 revocation endpoint, overriding presets and discovery
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url)]
    pub revocation_url: Option<String>,
    /// Userinfo endpoint, overriding presets and discovery
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url)]
    pub userinfo_url: Option<String>,
}

/// Per-connection protocol options, on `create` and `update`.
#[derive(Debug, Args)]
pub struct ProtocolArgs {
    /// PKCE S256: auto (when the provider publishes it, RFC 8414), on, or off (a provider that refuses it)
    #[arg(long, value_name = "auto|on|off")]
    pub pkce: Option<String>,
    /// Client authentication at the token endpoint: basic (client_secret_basic) or post (client_secret_post)
    #[arg(long, value_name = "basic|post")]
    pub client_auth: Option<String>,
    /// Extra authorization-request parameter (repeatable), e.g. token_access_type=offline; NAME= removes one
    #[arg(long = "auth-param", value_name = "NAME=VALUE")]
    pub auth_params: Vec<String>,
    /// Extra token-request parameter, sent with the code exchange and every refresh (repeatable), e.g.
    /// audience=api.atlassian.com; NAME= removes one
    #[arg(long = "token-param", value_name = "NAME=VALUE")]
    pub token_params: Vec<String>,
    /// Scopes `authorize` requests when given no --scopes (a client-credentials connection: with every token),
    /// comma or space separated
    #[arg(long, value_name = "LIST")]
    pub default_scopes: Option<String>,
    /// RFC 8628 device authorization endpoint for `authorize --device`, overriding the catalog and discovery
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url)]
    pub device_auth_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub name: NameArg,
    /// The new client ID
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// The new client secret. Visible in the process list: prefer --client-secret-stdin or
    /// WASM_HOST_CLIENT_SECRET (read when set)
    #[arg(long, value_name = "SECRET", conflicts_with = "client_secret_stdin")]
    pub client_secret: Option<String>,
    /// Read the new client secret from stdin (one line; a trailing newline is dropped)
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// The OpenID Connect issuer
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url)]
    pub issuer_url: Option<String>,
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    #[command(flatten)]
    pub protocol: ProtocolArgs,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub name: NameArg,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print a JSON array (stable field names, for scripts)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProvidersArgs {
    /// Print a JSON array of the catalog's entries (every field, for scripts)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub name: NameArg,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct AuthorizeArgs {
    #[command(flatten)]
    pub name: NameArg,
    /// Scopes to request, comma or space separated [default: the connection's --default-scopes, else
    /// openid,profile,email]
    #[arg(long, value_name = "LIST")]
    pub scopes: Option<String>,
    /// Port of the loopback callback server (0 = any free port)
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Do not open a browser: print the authorization URL alone on one stdout line
    #[arg(long)]
    pub no_browser: bool,
    /// Authorize from a machine without a browser (RFC 8628): print a URL and a code to enter on any device,
    /// then wait (polling the provider) until the user has approved, at most --timeout
    #[arg(long, conflicts_with_all = ["no_browser", "port"])]
    pub device: bool,
    /// How long to wait for the callback (with --device: for the approval), e.g. 90s, 5m, 1h30m
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = units::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub name: NameArg,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct ImportTokenArgs {
    #[command(flatten)]
    pub name: NameArg,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The function: a WebAssembly component of the `function` world
    #[arg(value_name = "COMPONENT.wasm", value_hint = ValueHint::FilePath)]
    pub component: PathBuf,
    /// The input, as JSON [default: null]
    #[arg(long, value_name = "JSON", conflicts_with = "input_file")]
    pub input: Option<String>,
    /// Read the JSON input from a file (`-` for stdin)
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub input_file: Option<PathBuf>,
    /// Let the function read this connection's token (repeatable; `*` for every connection). Deny by
    /// default
    #[arg(long = "allow-connection", value_name = "NAME")]
    pub allow_connection: Vec<String>,
    /// Let the function send HTTP requests to this host (repeatable): api.example.com,
    /// api.example.com:8443, *.googleapis.com, or `*` for any. Deny by default
    #[arg(long = "allow-host", value_name = "HOST[:PORT]", value_hint = ValueHint::Hostname)]
    pub allow_host: Vec<String>,
    /// Attach this connection's token to every request the function sends to ORIGIN (repeatable), e.g.
    /// google=https://www.googleapis.com. The function never sees the token and may not set
    /// Authorization there; the origin needs no --allow-host. Without --allow-connection for it, the
    /// function cannot read it
    #[arg(long = "bind", value_name = "CONNECTION=ORIGIN")]
    pub bind: Vec<String>,
    /// Stop the function after this much wall-clock time, e.g. 500ms, 1.5s, 2m [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    pub timeout: Option<Duration>,
    /// The most linear memory the function may use, e.g. 64MiB, 1.5GiB [default: 256MiB]
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size_usize)]
    pub max_memory: Option<usize>,
    /// The largest result `run` may return, e.g. 1MiB, 500kB [default: 6MiB]
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size_usize)]
    pub max_output: Option<usize>,
    /// The most the function may write to stdout and stderr together per invocation, e.g. 64KiB; the
    /// rest is dropped with a notice [default: 1MiB]
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size_usize)]
    pub max_log: Option<usize>,
    /// Refresh a token that expires sooner than this, e.g. 60s, 5m [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    pub refresh_margin: Option<Duration>,
    /// Invoke the function N times in this process (a fresh instance each time) and report the time per
    /// invocation on stderr; the last result is printed
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u32,
    /// Grants and limits from this TOML file [default: COMPONENT.toml beside the component, if present].
    /// Flags override it
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub manifest: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The functions: FILE.wasm, NAME=FILE.wasm, or a directory of .wasm files
    #[arg(value_name = "FUNCTION", required = true)]
    pub functions: Vec<String>,
    /// Address to listen on; another address than loopback only when given
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub listen: String,
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first); needs --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve /healthz, /readyz and /metrics (Prometheus) on this address, apart from the functions
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,
    /// Serve the admin API (`--remote` of the command line, for `admin token` holders) on this address
    /// [default: off]. Another address than loopback requires TLS: --admin-tls-cert, or --tls-cert
    #[arg(long, value_name = "ADDR:PORT")]
    pub admin_listen: Option<String>,
    /// The admin API's own certificate chain (PEM) [default: --tls-cert's]; needs --admin-tls-key
    #[arg(long, value_name = "FILE", requires = "admin_tls_key")]
    pub admin_tls_cert: Option<PathBuf>,
    /// The private key of --admin-tls-cert (PEM)
    #[arg(long, value_name = "FILE", requires = "admin_tls_cert")]
    pub admin_tls_key: Option<PathBuf>,
    /// Invocations running at once (the instance pool's size); more requests queue
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_concurrent: usize,
    /// Requests that may wait for an invocation slot; past this, 503 with Retry-After
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_queue: usize,
    /// How long a request may wait in the queue before 503
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub queue_timeout: String,
    /// Open connections at once; more wait to be accepted
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
    /// Largest request body; past this, 413
    #[arg(long, default_value = "6MiB", value_name = "SIZE")]
    pub max_body: String,
    /// Largest request head (request line and headers); past this, 431
    #[arg(long, default_value = "16KiB", value_name = "SIZE")]
    pub max_header: String,
    /// Time a client has to send a request head, on a new or an idle kept-alive connection; then it is closed
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub header_timeout: String,
    /// Time a client has to send a JSON function's request body; then 408
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub body_timeout: String,
    /// On SIGTERM/SIGINT, how long requests in flight may take to finish before the server exits anyway
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub drain_timeout: String,
    /// Renew a granted connection's token in the background once it would need a refresh within this (`off`:
    /// only requests refresh)
    #[arg(long, default_value = "5m", value_name = "DURATION|off")]
    pub refresh_ahead: String,
    /// Refresh a token that expires sooner than this [default: 60s, or the largest refresh-margin of the
    /// manifests]
    #[arg(long, value_name = "DURATION")]
    pub refresh_margin: Option<String>,
    /// Reload when a .wasm or .toml file changes in the functions' directories, as SIGHUP does
    #[arg(long)]
    pub watch: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// A Rust crate built for wasm32-wasip2 (needs rustup's wasm32-wasip2 target)
    Rust,
    /// A JavaScript module built with `wasm-host build-js` (needs Node.js)
    Js,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The function's name (lowercase letters, digits and single hyphens); also the directory created
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The language to write the function in
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
    /// Create the project here instead of ./NAME (the directory must not exist, or be empty)
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List the compiled components in the cache, most recently used first, with their sizes
    #[command(after_help = "Example:\n  wasm-host cache list\n  wasm-host cache list --json | jq .total_bytes\n\n\
        The cache keeps at most WASM_HOST_CACHE_MAX bytes (default 1GiB): after each compile, the least\n\
        recently used entries are removed until it fits.")]
    List(CacheListArgs),
    /// Remove every compiled component from the cache (each is compiled again at its next run)
    #[command(after_help = "Example:\n  wasm-host cache clean")]
    Clean(CacheCleanArgs),
}

#[derive(Debug, Args)]
pub struct CacheListArgs {
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct CacheCleanArgs {
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Where to write the pages (wasm-host.1, wasm-host-run.1, ...); created if missing
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub out_dir: PathBuf,
}
