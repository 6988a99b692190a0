//! Pending remote authorizations: what a server keeps between building an authorization request for a laptop
//! (`POST /v1/connections/{name}/authorization`) and exchanging the code the laptop brings back
//! (`POST /v1/authorizations/complete`). The server, not the laptop, keeps the OIDC `nonce` and the PKCE verifier
//! (RFC 7636 §4.1), so the code is useless to whoever intercepts it on the laptop; they live in the store, so that
//! any host behind a load balancer can finish what another started.
//!
//! A request is found by the SHA-256 of its `state` (the `state` itself is never stored). Its public part (the
//! connection, the redirect URI, the scopes, when it was made and when it expires) is a JSON record; the nonce and
//! the verifier are sealed with age to the store's identity, bound to the state's hash ([`Keys::seal`]'s binding),
//! and the record and the sealed value carry one HMAC tag under the identity's record key (record_auth.rs), so a
//! row planted or changed by someone who can write the store but lacks the identity is refused.
//!
//! Single use: [`crate::Backend::take_authorization_request`] marks the row used and wipes its sealed value in one
//! transaction, so of two takes of one state (even at once, on two hosts) exactly one gets the request; a later
//! take is told it was used. A request expires [`AUTHORIZATION_TTL`] seconds after it was made; rows are purged
//! [`PURGE_AFTER`] seconds after they expire (until then a late completion is told "expired", not "unknown").

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ReadError;
use crate::keys::{Keys, SecretError};

/// How long a pending authorization may be completed, in seconds: 10 minutes, the longest an authorization code
/// should live (RFC 6749 §4.1.2).
pub const AUTHORIZATION_TTL: i64 = 600;

/// How long after its expiry a request's row is kept (seconds), so that a late completion is told it expired.
pub const PURGE_AFTER: i64 = 3600;

/// What a pending authorization's sealed value is bound to (with the state's hash).
pub(crate) const SEALED_FIELD: &str = "authorization_request";

/// A pending authorization, as the server keeps it.
pub struct PendingAuthorization {
    /// The connection the request authorizes.
    pub connection: String,
    /// The loopback redirect URI the request carries (RFC 8252 §7.3); the code exchange repeats it.
    pub redirect_uri: String,
    /// The scopes requested.
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; [`AUTHORIZATION_TTL`] after `created_at`.
    pub expires_at: i64,
    /// The OIDC `nonce` the ID token must carry.
    pub nonce: SecretString,
    /// The PKCE verifier, when the request carried a challenge.
    pub verifier: Option<SecretString>,
    /// A device authorization (RFC 8628) instead of a browser's: then `redirect_uri` is empty and `nonce` unused.
    pub device: Option<PendingDevice>,
}

/// What a server keeps of a device authorization (RFC 8628) between the laptop's polls. The row is taken at each
/// poll and put back under a fresh handle while the user has not answered, so two hosts polling at once cannot
/// both ask the provider, and the interval (raised by `slow_down`, §3.5) holds on every host.
pub struct PendingDevice {
    /// The device code (§3.2): sealed like the nonce, never sent to the laptop.
    pub device_code: SecretString,
    /// The polling interval in seconds (§3.2's `interval`, plus 5 s for each `slow_down`).
    pub interval: i64,
    /// Unix seconds: no token request before this (a sooner poll is answered "pending" without one).
    pub next_poll_at: i64,
}

impl std::fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("connection", &self.connection)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("device", &self.device.as_ref().map(|d| (d.interval, d.next_poll_at)))
            .finish_non_exhaustive()
    }
}

/// What taking a state found.
#[derive(Debug)]
pub enum Taken {
    /// The request, now used: no other take will get it.
    Pending(PendingAuthorization),
    /// The request was taken before (completed, or refused): a replay.
    Used { connection: String },
    /// The request expired at `expired_at` (Unix seconds) and was not taken.
    Expired { connection: String, expired_at: i64 },
    /// No request has this state: never made here, or purged.
    Unknown,
}

/// The public part of a pending request, as stored (JSON).
#[derive(Serialize, Deserialize)]
pub(crate) struct Record {
    pub connection: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// A device authorization's interval and next poll time (absent for a browser's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceRecord>,
}

/// The public part of a [`PendingDevice`].
#[derive(Serialize, Deserialize)]
pub(crate) struct DeviceRecord {
    pub interval: i64,
    pub next_poll_at: i64,
}

/// The sealed part (JSON, inside the age ciphertext).
#[derive(Serialize, Deserialize)]
struct Secrets {
    nonce: String,
    verifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_code: Option<String>,
}

/// A pending request's row: its key, record, sealed value and tag.
pub(crate) struct Row {
    pub key: String,
    pub record: Vec<u8>,
    pub sealed: Vec<u8>,
    pub tag: Vec<u8>,
    pub expires_at: i64,
}

/// The row's key: the lowercase hex SHA-256 of `state`.
pub fn state_key(state: &str) -> String {
    Sha256::digest(state.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Seals `pending` under `state` for storing.
pub(crate) fn seal(state: &SecretString, pending: &PendingAuthorization, keys: &Keys) -> Result<Row, SecretError> {
    let key = state_key(state.expose_secret());
    let record = serde_json::to_vec(&Record {
        connection: pending.connection.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        scopes: pending.scopes.clone(),
        created_at: pending.created_at,
        expires_at: pending.expires_at,
        device: pending.device.as_ref().map(|d| DeviceRecord { interval: d.interval, next_poll_at: d.next_poll_at }),
    })
    .expect("a record serializes");
    let secrets = zeroize::Zeroizing::new(
        serde_json::to_vec(&Secrets {
            nonce: pending.nonce.expose_secret().to_owned(),
            verifier: pending.verifier.as_ref().map(|v| v.expose_secret().to_owned()),
            device_code: pending.device.as_ref().map(|d| d.device_code.expose_secret().to_owned()),
        })
        .expect("secrets serialize"),
    );
    let sealed = keys.seal_labeled(&key, SEALED_FIELD, &secrets)?;
    let tag = keys.authorization_request_tag(&key, &record, &sealed).to_vec();
    Ok(Row { key, record, sealed, tag, expires_at: pending.expires_at })
}

/// Checks a stored row's tag; the decoded record. `location` names the store in errors.
fn verify(
    location: &crate::StoreLocation,
    key: &str,
    record: &[u8],
    sealed: &[u8],
    tag: &[u8],
    keys: &Keys,
) -> Result<Record, ReadError> {
    let tampered = || ReadError::TamperedAuthorizationRequest { store: location.clone() };
    if !keys.authorization_request_tag_matches(key, record, sealed, tag) {
        return Err(tampered());
    }
    serde_json::from_slice(record).map_err(|_| tampered())
}

/// Opens a verified row's sealed value.
fn open(key: &str, record: Record, sealed: &[u8], keys: &Keys) -> Result<PendingAuthorization, ReadError> {
    let plain = keys.open_labeled(key, SEALED_FIELD, sealed)?;
    let secrets: Secrets = serde_json::from_slice(plain.expose_secret()).map_err(|_| {
        ReadError::Secret(SecretError::Misplaced { name: format!("(authorization request {key})"), field: SEALED_FIELD })
    })?;
    let device = match (record.device, secrets.device_code) {
        (Some(d), Some(code)) => {
            Some(PendingDevice { device_code: SecretString::from(code), interval: d.interval, next_poll_at: d.next_poll_at })
        }
        (None, None) => None,
        _ => {
            return Err(ReadError::Secret(SecretError::Misplaced {
                name: format!("(authorization request {key})"),
                field: SEALED_FIELD,
            }))
        }
    };
    Ok(PendingAuthorization {
        connection: record.connection,
        redirect_uri: record.redirect_uri,
        scopes: record.scopes,
        created_at: record.created_at,
        expires_at: record.expires_at,
        nonce: SecretString::from(secrets.nonce),
        verifier: secrets.verifier.map(SecretString::from),
        device,
    })
}

/// What a take does with the row it found.
pub(crate) enum Decision {
    /// Answer this, writing nothing.
    Refuse(Taken),
    /// Hand out the request, and mark the row used: its sealed value wiped, its tag `used_tag`.
    Take { pending: PendingAuthorization, used_tag: Vec<u8> },
}

/// Judges a stored row for a take at `now`: the part of a take both backends share. `location` names the store.
#[allow(clippy::too_many_arguments)]
pub(crate) fn decide(
    location: &crate::StoreLocation,
    key: &str,
    record_bytes: &[u8],
    sealed: &[u8],
    tag: &[u8],
    used: bool,
    keys: &Keys,
    now: i64,
) -> Result<Decision, ReadError> {
    let record = verify(location, key, record_bytes, sealed, tag, keys)?;
    if used {
        return Ok(Decision::Refuse(Taken::Used { connection: record.connection }));
    }
    if now > record.expires_at {
        return Ok(Decision::Refuse(Taken::Expired { connection: record.connection, expired_at: record.expires_at }));
    }
    let pending = open(key, record, sealed, keys)?;
    Ok(Decision::Take { pending, used_tag: keys.authorization_request_tag(key, record_bytes, b"").to_vec() })
}
