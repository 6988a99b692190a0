//! The command line: one `Args` struct per verb, resolved into settings before any work starts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
 13  no authorization callback arrived before the timeout
 14  run: the function ran past --timeout and was stopped
 15  run: the function hit --max-memory and was stopped
 16  run: the function overflowed its stack (runaway recursion) and was stopped
 17  run: the function's result was larger than --max-output
 18  build-js: the JavaScript does not build (the message gives file and line)
 19  build-js: Node.js or npm is missing, or componentize-js could not be installed
 20  store import: the bundle cannot be used (not encrypted to this identity, damaged, or a newer format)";

#[derive(Debug, Parser)]
#[command(
    name = "wasm-host",
    version,
    about = "Run serverless WebAssembly functions that call OAuth2 APIs, without any function holding a client secret.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// The connection store [default: $XDG_DATA_HOME/wasm-host/store.redb]
    #[arg(long, global = true, env = "WASM_HOST_STORE", value_name = "PATH")]
    pub store: Option<PathBuf>,

    /// The age identity that encrypts the store's secrets [default: $XDG_CONFIG_HOME/wasm-host/identity.txt].
    /// In containers, WASM_HOST_IDENTITY_KEY may hold the key itself instead.
    #[arg(long, global = true, env = "WASM_HOST_IDENTITY", value_name = "PATH")]
    pub identity: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage OAuth2 connections: create, list, delete, import-token
    #[command(subcommand)]
    Authconnection(AuthConnection),

    /// The same commands as the other runtime's CLI spells them: `workspace authconnection ...`
    #[command(subcommand)]
    Workspace(Workspace),

    /// Manage the store itself: its public key, key rotation (rekey), moving connections between hosts
    #[command(subcommand)]
    Store(StoreCommand),

    /// Run a function component once: `run(input)` is called and its JSON result printed on stdout
    #[command(after_help = concat!(
        "Example:\n  wasm-host run userinfo.wasm --allow-connection google \\\n",
        "    --allow-host openidconnect.googleapis.com \\\n",
        "    --input '{\"connection\":\"google\",\"url\":\"https://openidconnect.googleapis.com/v1/userinfo\"}'\n\n",
        "The function's own stdout and stderr go to wasm-host's stderr; stdout carries only the result.\n",
        "Compiled components are cached in $XDG_CACHE_HOME/wasm-host/ (WASM_HOST_CACHE_DIR overrides)."
    ))]
    Run(RunArgs),

    /// Build a JavaScript function (`export default async (input) => ...`) into a component
    #[command(after_help = "Example:\n  wasm-host build-js userinfo.js -o userinfo.wasm\n\n\
        Needs Node.js. The first build installs the pinned componentize-js into\n\
        $XDG_CACHE_HOME/wasm-host/js-tools/ (WASM_HOST_JS_TOOLS overrides). The module may call\n\
        tailor.authconnection.getConnectionToken(name) and fetch(); its default export gets the parsed input\n\
        and returns the result, which becomes JSON.")]
    BuildJs(BuildJsArgs),
}

#[derive(Debug, Args)]
pub struct BuildJsArgs {
    /// The JavaScript module; other .js/.json files in its directory may be imported relatively
    #[arg(value_name = "FUNCTION.js")]
    pub source: PathBuf,
    /// Where to write the component
    #[arg(short, long, value_name = "FUNCTION.wasm")]
    pub output: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Workspace {
    /// Manage OAuth2 connections: create, list, delete, import-token
    #[command(subcommand)]
    Authconnection(AuthConnection),
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Print this host's public key (age1...), creating the identity on first use: what another host passes to
    /// `store export --recipient` to send its connections here
    #[command(after_help = "Example:\n  wasm-host store recipient\n  age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p")]
    Recipient(RecipientArgs),
    /// Authenticate the connections of a store written by a wasm-host older than record authentication, as they
    /// stand now, listing each one's endpoints so you can check what is being vouched for
    #[command(after_help = "Example:\n  wasm-host store upgrade\n\n\
        Needed once, after upgrading wasm-host, for a store that holds connections; every other command\n\
        refuses such a store (exit 5) rather than vouch for records that anyone able to write the file\n\
        could have changed. Check the endpoints it prints: a token or authorization URL you did not set\n\
        means the store was tampered with (restore it from a backup and rotate the client secrets).")]
    Upgrade(UpgradeArgs),
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

#[derive(Debug, Args)]
pub struct RecipientArgs {}

#[derive(Debug, Args)]
pub struct UpgradeArgs {}

#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// Where to write the new identity when the current one comes from WASM_HOST_IDENTITY_KEY (a file that must
    /// not exist yet; created 0600)
    #[arg(long, value_name = "FILE")]
    pub new_identity_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The age public key (age1...) of the host that will import the bundle
    #[arg(long, value_name = "AGE_PUBLIC_KEY")]
    pub recipient: String,
    /// Write the bundle here (0600) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The bundle `store export` wrote (`-` for stdin)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Overwrite connections that exist already with the bundle's (by default such a name refuses the import)
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuthConnection {
    /// Register an OAuth2 connection; its client secret is stored encrypted
    #[command(after_help = "Example:\n  printf %s \"$SECRET\" | wasm-host authconnection create --name google \\\n    \
        --type TYPE_OAUTH2 --provider-url https://accounts.google.com \\\n    \
        --client-id 123.apps.googleusercontent.com --client-secret-stdin")]
    Create(CreateArgs),
    /// List connections: name, type, provider, status, token expiry, scopes (never a secret)
    #[command(after_help = "Example:\n  wasm-host authconnection list --json | jq '.[].status'")]
    List(ListArgs),
    /// Delete a connection and every secret it holds
    #[command(after_help = "Example:\n  wasm-host authconnection delete google")]
    Delete(DeleteArgs),
    /// Authorize a connection: opens the provider's consent page and stores the tokens it grants
    #[command(after_help = "Example:\n  wasm-host authconnection authorize google --scopes 'openid email https://www.googleapis.com/auth/drive.readonly'\n  \
        wasm-host authconnection authorize quickbooks --no-browser --port 0   # prints the URL to open elsewhere\n\n\
        The callback server listens on 127.0.0.1:PORT at /callback: register http://127.0.0.1:PORT/callback as a\n\
        redirect URI with the provider (native/desktop apps may use any port).")]
    Authorize(AuthorizeArgs),
    /// Change a connection's client registration (ID, secret, endpoints, options); its tokens and grant stay
    #[command(after_help = "Example:\n  printf %s \"$NEW_SECRET\" | wasm-host authconnection update google --client-secret-stdin\n  \
        wasm-host authconnection update dropbox --auth-param token_access_type=offline --client-auth post\n\n\
        After the provider refused the client (status client-refused, e.g. a rotated secret), update it: the\n\
        stored refresh token is used with the new registration at the next refresh, no new authorization needed.")]
    Update(UpdateArgs),
    /// Revoke a connection's tokens at the provider and forget them; the registration stays
    #[command(after_help = "Example:\n  wasm-host authconnection revoke google\n\n\
        `authorize` can run again afterwards. Without a revocation endpoint (Microsoft has none) the tokens are\n\
        deleted locally and the grant must be removed in the provider's account settings.")]
    Revoke(RevokeArgs),
    /// Store tokens obtained elsewhere, read as JSON on stdin
    #[command(after_help = "Example:\n  echo '{\"access_token\":\"ya29...\",\"refresh_token\":\"1//...\",\"expires_in\":3599,\
        \"scope\":\"openid email\"}' \\\n    | wasm-host authconnection import-token google\n\n\
        Accepted fields: access_token (required), refresh_token, id_token, token_type (default Bearer),\n\
        expires_at (RFC 3339 or Unix seconds) or expires_in (seconds), scope (space-separated or a list).\n\
        Other string fields (instance_url, ...) are kept as the connection's metadata.")]
    ImportToken(ImportTokenArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Connection name: lowercase letters, digits and single hyphens, at most 63 characters
    #[arg(long, allow_hyphen_values = true)]
    pub name: String,
    /// Connection type; accepted: TYPE_OAUTH2
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: String,
    /// The provider's base URL, e.g. https://accounts.google.com
    #[arg(long, value_name = "URL")]
    pub provider_url: String,
    /// The OpenID Connect issuer, when it differs from the provider URL
    #[arg(long, value_name = "URL")]
    pub issuer_url: Option<String>,
    #[arg(long, value_name = "ID")]
    pub client_id: String,
    /// The client secret. Visible to other users in the process list and kept in shell history: prefer
    /// --client-secret-stdin or WASM_HOST_CLIENT_SECRET
    #[arg(long, value_name = "SECRET", conflicts_with = "client_secret_stdin")]
    pub client_secret: Option<String>,
    /// Read the client secret from stdin (one line; a trailing newline is dropped)
    #[arg(long)]
    pub client_secret_stdin: bool,
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    /// Hand the refresh token to functions too (by default only the host holds it)
    #[arg(long)]
    pub expose_refresh_token: bool,
    #[command(flatten)]
    pub protocol: ProtocolArgs,
}

/// Endpoints given by hand, on `create` and `update`: they override presets and discovery.
#[derive(Debug, Args)]
pub struct EndpointArgs {
    /// Authorization endpoint, overriding presets and discovery
    #[arg(long, value_name = "URL")]
    pub auth_url: Option<String>,
    /// Token endpoint, overriding presets and discovery
    #[arg(long, value_name = "URL")]
    pub token_url: Option<String>,
    /// RFC 7009 revocation endpoint, overriding presets and discovery
    #[arg(long, value_name = "URL")]
    pub revocation_url: Option<String>,
    /// Userinfo endpoint, overriding presets and discovery
    #[arg(long, value_name = "URL")]
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
    /// Scopes `authorize` requests when given no --scopes, comma or space separated
    #[arg(long, value_name = "LIST")]
    pub default_scopes: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub name: String,
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
    #[arg(long, value_name = "URL")]
    pub issuer_url: Option<String>,
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    #[command(flatten)]
    pub protocol: ProtocolArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print a JSON array (stable field names, for scripts)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    pub name: String,
}

#[derive(Debug, Args)]
pub struct AuthorizeArgs {
    pub name: String,
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
    /// How long to wait for the callback, e.g. 90s, 5m
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub timeout: String,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ImportTokenArgs {
    pub name: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The function: a WebAssembly component of the `function` world
    #[arg(value_name = "COMPONENT.wasm")]
    pub component: PathBuf,
    /// The input, as JSON [default: null]
    #[arg(long, value_name = "JSON", conflicts_with = "input_file")]
    pub input: Option<String>,
    /// Read the JSON input from a file (`-` for stdin)
    #[arg(long, value_name = "FILE")]
    pub input_file: Option<PathBuf>,
    /// Let the function read this connection's token (repeatable; `*` for every connection). Deny by default
    #[arg(long = "allow-connection", value_name = "NAME")]
    pub allow_connection: Vec<String>,
    /// Let the function send HTTP requests to this host (repeatable): api.example.com, api.example.com:8443,
    /// *.googleapis.com, or `*` for any. Deny by default
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    pub allow_host: Vec<String>,
    /// Attach this connection's token to every request the function sends to ORIGIN (repeatable), e.g.
    /// google=https://www.googleapis.com. The function never sees the token and may not set Authorization
    /// there; the origin needs no --allow-host. Without --allow-connection for it, the function cannot read it
    #[arg(long = "bind", value_name = "CONNECTION=ORIGIN")]
    pub bind: Vec<String>,
    /// Stop the function after this much wall-clock time, e.g. 500ms, 30s, 2m [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// The most linear memory the function may use, e.g. 64MiB, 1GiB [default: 256MiB]
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<String>,
    /// The largest result `run` may return, e.g. 1MiB [default: 6MiB]
    #[arg(long, value_name = "SIZE")]
    pub max_output: Option<String>,
    /// The most the function may write to stdout and stderr together per invocation, e.g. 64KiB; the rest is
    /// dropped with a notice [default: 1MiB]
    #[arg(long, value_name = "SIZE")]
    pub max_log: Option<String>,
    /// Refresh a token that expires sooner than this, e.g. 60s, 5m [default: 60s]
    #[arg(long, value_name = "DURATION")]
    pub refresh_margin: Option<String>,
    /// Invoke the function N times in this process (a fresh instance each time) and report the time per
    /// invocation on stderr; the last result is printed
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u32,
    /// Grants and limits from this TOML file [default: COMPONENT.toml beside the component, if present].
    /// Flags override it
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
}
