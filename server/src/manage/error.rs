//! Why a change was refused, and its class: the command line turns the class into an exit code, the admin API
//! into an HTTP status and the `kind` of its error body, and the remote command line back into the same exit code.

use thiserror::Error;
use wasm_host_store::{NameError, ReadError, SecretError, UrlError, WriteError};

/// A refused or failed change. Messages name flags, fields and connections, never a secret.
#[derive(Debug, Error)]
pub enum ChangeError {
    /// A malformed or contradictory input: what is wrong and what to give instead.
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("no connection named `{0}`; `wasm-host authconnection list` shows the existing ones")]
    NotFound(String),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The provider answered and refused (invalid client, a 4xx): retrying the same request cannot help.
    #[error("{0}")]
    ProviderRefused(String),
    /// The provider could not be reached or failed (network, 5xx): retrying later may work.
    #[error("{0}")]
    ProviderUnavailable(String),
}

/// A malformed input, said in `message`.
pub fn bad_input(message: impl Into<String>) -> ChangeError {
    ChangeError::BadInput(message.into())
}

/// The classes of [`ChangeError`], each with one HTTP status on the admin API and one exit code on the command
/// line (README's tables list both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadInput,
    NotFound,
    Conflict,
    ProviderRefused,
    ProviderUnavailable,
    /// The store's database cannot be reached now: retrying later may work.
    StoreUnavailable,
    /// The store or the identity cannot be used (damaged, wrong identity, no permission).
    Store,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::BadInput,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::ProviderRefused,
        ErrorKind::ProviderUnavailable,
        ErrorKind::StoreUnavailable,
        ErrorKind::Store,
    ];

    /// The `kind` of the admin API's error body.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadInput => "bad-input",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::ProviderRefused => "provider-refused",
            ErrorKind::ProviderUnavailable => "provider-unavailable",
            ErrorKind::StoreUnavailable => "store-unavailable",
            ErrorKind::Store => "store",
        }
    }

    pub fn parse(kind: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The admin API's HTTP status for this class.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadInput => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::ProviderRefused | ErrorKind::ProviderUnavailable => 502,
            ErrorKind::StoreUnavailable => 503,
            ErrorKind::Store => 500,
        }
    }
}

impl ChangeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ChangeError::BadInput(_) | ChangeError::Name(_) | ChangeError::Url(_) => ErrorKind::BadInput,
            ChangeError::NotFound(_) | ChangeError::Write(WriteError::NotFound(_)) => ErrorKind::NotFound,
            ChangeError::Write(WriteError::AlreadyExists(_) | WriteError::AdminTokenExists(_)) => ErrorKind::Conflict,
            ChangeError::Write(e) if e.is_unavailable() => ErrorKind::StoreUnavailable,
            ChangeError::Read(e) if e.is_unavailable() => ErrorKind::StoreUnavailable,
            ChangeError::Write(_) | ChangeError::Read(_) | ChangeError::Secret(_) => ErrorKind::Store,
            ChangeError::ProviderRefused(_) => ErrorKind::ProviderRefused,
            ChangeError::ProviderUnavailable(_) => ErrorKind::ProviderUnavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_reads_back_from_its_name_with_its_status() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(kind.as_str()), Some(kind));
            assert!((400..600).contains(&kind.status()), "{kind:?}");
        }
        assert_eq!(ErrorKind::parse("unauthorized"), None, "the API's own refusals are no change error");
        assert_eq!(bad_input("x").kind(), ErrorKind::BadInput);
        assert_eq!(ChangeError::NotFound("c".into()).kind().status(), 404);
        assert_eq!(ChangeError::Write(WriteError::AlreadyExists("c".into())).kind(), ErrorKind::Conflict);
        assert_eq!(ChangeError::ProviderUnavailable("down".into()).kind().status(), 502);
    }
}
