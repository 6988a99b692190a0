//! The admin API's audit log: one entry per change asked for (and per refused attempt by a known admin token):
//! who, what, when, and how it ended. Kept in the store, so that every host behind a load balancer writes one log.
//!
//! An entry holds names and outcome classes only: never a secret, a token or a request body.

use serde::{Deserialize, Serialize};

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Unix seconds (UTC).
    pub at: i64,
    /// The admin token's name.
    pub actor: String,
    /// What was asked: `create`, `update`, `delete`, `revoke`, ...
    pub action: String,
    /// The connection it was about, where there is one.
    pub connection: Option<String>,
    /// `ok`, or the class of the refusal (`read-only`, `bad-input`, `not-found`, `conflict`, ...).
    pub outcome: String,
}

impl AuditEntry {
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an audit entry serializes")
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
