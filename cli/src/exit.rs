//! Exit codes, one per kind of failure a script may want to tell apart, and the mapping from errors to them.

use std::process::ExitCode;

use wasm_host_runtime::{InvokeError, LoadError};
use wasm_host_server::manage::{ChangeError, ErrorKind};
use wasm_host_server::{RouteError, ServeError};
use wasm_host_store::{BundleError, IdentityError, OpenError, ReadError, RekeyError, SecretError, WriteError};

/// Every exit code wasm-host uses. The README lists them; keep both in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    /// `run`: the function returned `Err`.
    FunctionError = 1,
    /// Bad flags or input: a malformed name, URL, type, JSON.
    Usage = 2,
    /// No connection of that name.
    NotFound = 3,
    /// A connection of that name exists already.
    Conflict = 4,
    /// The store or the identity cannot be used: wrong identity, damaged or locked file, no permission.
    Store = 5,
    /// The component file cannot be read.
    ComponentMissing = 6,
    /// The file is not a valid component.
    NotAComponent = 7,
    /// A component of another world (missing export or import).
    WrongWorld = 8,
    /// The function trapped or exited instead of returning.
    Trap = 9,
    /// Anything else (an I/O error reading input, say); the message tells what.
    Failure = 10,
    /// The provider refused: access denied, invalid client, scope or grant, an ID token that does not verify.
    ProviderRefused = 11,
    /// The provider could not be reached or failed (network, 5xx): retrying later may work.
    ProviderUnavailable = 12,
    /// No authorization callback before the timeout.
    CallbackTimeout = 13,
    /// `run`: the function ran past its time limit.
    Timeout = 14,
    /// `run`: the function hit its memory limit.
    MemoryLimit = 15,
    /// `run`: the function overflowed its stack.
    StackOverflow = 16,
    /// `run`: the function's result was larger than allowed.
    OutputTooLarge = 17,
    /// `build-js`: the source does not build (syntax error, an exception while it loads).
    BuildFailed = 18,
    /// `build-js`: Node.js or npm is missing, or the tools could not be installed.
    ToolMissing = 19,
    /// `store import`: the bundle is not encrypted to this identity, is damaged, or is of a newer format.
    BadBundle = 20,
    /// `authorize`: the connection's grant has no authorization step (client credentials).
    NoAuthorizationStep = 21,
    /// The store's database cannot be reached now (down, restarting, no pooled connection free): retrying later
    /// may work.
    StoreUnavailable = 22,
    /// `--remote`: the verb works on a local store only (`show`, `import-token`, `store`, `run`, ...).
    NotRemote = 23,
    /// `--remote`: the admin API refused the admin token (missing, unknown, revoked, expired) or its scope
    /// (read-only), or the server could not be reached or answered something else than its API.
    Remote = 24,
}

/// A failure that already knows its exit code (the provider refused, a build failed, a tool is missing).
#[derive(Debug)]
pub struct CodedError {
    pub exit: Exit,
    pub message: String,
}

impl std::fmt::Display for CodedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CodedError {}

pub fn coded(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    CodedError { exit, message: message.into() }.into()
}

impl Exit {
    pub fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// A usage error found by our own checks (clap reports its own with code 2 too).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// Picks the exit code for an error by the first typed cause in its chain.
pub fn classify(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(p) = cause.downcast_ref::<CodedError>() {
            return p.exit;
        }
        if cause.is::<UsageError>()
            || cause.is::<wasm_host_store::NameError>()
            || cause.is::<wasm_host_store::UrlError>()
        {
            return Exit::Usage;
        }
        if let Some(e) = cause.downcast_ref::<ChangeError>() {
            return change_exit(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<WriteError>() {
            return write_exit(e);
        }
        if cause.downcast_ref::<ReadError>().is_some_and(ReadError::is_unavailable)
            || matches!(cause.downcast_ref::<OpenError>(), Some(OpenError::Unavailable { .. }))
        {
            return Exit::StoreUnavailable;
        }
        if matches!(cause.downcast_ref::<OpenError>(), Some(OpenError::BadLocation { .. } | OpenError::RootCert { .. })) {
            return Exit::Usage;
        }
        if let Some(e) = cause.downcast_ref::<BundleError>() {
            return match e {
                BundleError::BadRecipient(_) => Exit::Usage,
                BundleError::Conflict { .. } => Exit::Conflict,
                BundleError::NotABundle(_)
                | BundleError::NotForThisIdentity { .. }
                | BundleError::Damaged(_)
                | BundleError::NewerVersion { .. } => Exit::BadBundle,
                BundleError::Output(_) => Exit::Failure,
                BundleError::Write(e) => write_exit(e),
                BundleError::Read(_) | BundleError::Secret(_) => Exit::Store,
            };
        }
        if let Some(e) = cause.downcast_ref::<RekeyError>() {
            return match e {
                RekeyError::Exists { .. } => Exit::Usage,
                RekeyError::Write(e) => write_exit(e),
                _ => Exit::Store,
            };
        }
        if cause.is::<OpenError>()
            || cause.is::<ReadError>()
            || cause.is::<IdentityError>()
            || cause.is::<SecretError>()
        {
            return Exit::Store;
        }
        if let Some(e) = cause.downcast_ref::<LoadError>() {
            return match e {
                LoadError::Unreadable { .. } => Exit::ComponentMissing,
                LoadError::NotWasm { .. } | LoadError::CoreModule { .. } | LoadError::Invalid { .. } => {
                    Exit::NotAComponent
                }
                LoadError::WrongWorld { .. } => Exit::WrongWorld,
                LoadError::Host(_) | LoadError::UnsafeCache(_) => Exit::Store,
            };
        }
        if let Some(e) = cause.downcast_ref::<InvokeError>() {
            return match e {
                InvokeError::Timeout(_) => Exit::Timeout,
                InvokeError::MemoryLimit(_) => Exit::MemoryLimit,
                InvokeError::StackOverflow => Exit::StackOverflow,
                InvokeError::OutputTooLarge { .. } => Exit::OutputTooLarge,
                InvokeError::Trap(_) | InvokeError::Exit(_) | InvokeError::Host(_) => Exit::Trap,
            };
        }
        if let Some(e) = cause.downcast_ref::<ServeError>() {
            match e {
                ServeError::Empty
                | ServeError::Routes(RouteError::BadRoute { .. } | RouteError::Duplicate { .. }) => return Exit::Usage,
                // The load error below it in the chain says which code.
                ServeError::Routes(RouteError::Load { .. }) | ServeError::Signals(_) => {}
            }
        }
        if cause.is::<crate::context::MissingIdentity>() {
            return Exit::Store;
        }
        if cause.is::<NotFound>() {
            return Exit::NotFound;
        }
    }
    Exit::Failure
}

/// The exit code of a change's error class, locally and through the admin API alike.
pub fn change_exit(kind: ErrorKind) -> Exit {
    match kind {
        ErrorKind::BadInput => Exit::Usage,
        ErrorKind::NotFound => Exit::NotFound,
        ErrorKind::Conflict => Exit::Conflict,
        ErrorKind::ProviderRefused => Exit::ProviderRefused,
        ErrorKind::ProviderUnavailable => Exit::ProviderUnavailable,
        ErrorKind::StoreUnavailable => Exit::StoreUnavailable,
        ErrorKind::Store => Exit::Store,
    }
}

fn write_exit(e: &WriteError) -> Exit {
    match e {
        WriteError::NotFound(_) => Exit::NotFound,
        WriteError::AlreadyExists(_) | WriteError::AdminTokenExists(_) => Exit::Conflict,
        e if e.is_unavailable() => Exit::StoreUnavailable,
        _ => Exit::Store,
    }
}

/// A connection that a read-only command could not find.
#[derive(Debug)]
pub struct NotFound(pub String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no connection named `{}`; `wasm-host authconnection list` shows the existing ones", self.0)
    }
}

impl std::error::Error for NotFound {}
