//! A connection's sealed rows as one value, and what a token write does to them and to its record: the same for
//! every backend, so that redb and PostgreSQL store exactly the same thing for the same write.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};

use crate::backend::{NewTokens, RefreshUpdate};
use crate::error::WriteError;
use crate::keys::{Keys, SecretField};
use crate::record::{now_unix, Connection, Status, TokenInfo};
use crate::record_auth::RecordView;

/// The sealed rows of a connection, in [`SecretField::ALL`] order.
pub(crate) type SealedRows = [Option<Vec<u8>>; 5];

/// The slot of `field` in [`SealedRows`].
pub(crate) fn slot(field: SecretField) -> usize {
    SecretField::ALL.iter().position(|f| *f == field).expect("every field is in ALL")
}

pub(crate) fn view<'a>(name: &'a str, revision: u64, record: &'a [u8], rows: &'a SealedRows) -> RecordView<'a> {
    RecordView { name, revision, record, sealed: [0, 1, 2, 3, 4].map(|i| rows[i].as_deref()) }
}

/// The sealed [`SecretField::Credentials`] row holding `kept` (an earlier row's JSON, when a refresh adds to it)
/// with `new` over it; `None` when there is nothing to hold.
pub(crate) fn sealed_credentials(
    name: &str,
    kept: Option<&SecretString>,
    new: &[(String, SecretString)],
    keys: &Keys,
) -> Result<Option<Vec<u8>>, WriteError> {
    let mut all: BTreeMap<String, SecretString> = match kept {
        // Our own row, opened and authenticated: a row that does not parse was written by no version of this code.
        Some(json) => serde_json::from_str::<BTreeMap<String, String>>(json.expose_secret())
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect(),
        None => BTreeMap::new(),
    };
    all.extend(new.iter().map(|(k, v)| (k.clone(), v.clone())));
    if all.is_empty() {
        return Ok(None);
    }
    let plain: BTreeMap<&str, &str> = all.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect();
    let json = zeroize::Zeroizing::new(serde_json::to_vec(&plain).expect("strings always serialize"));
    Ok(Some(keys.seal(name, SecretField::Credentials, &json)?))
}

/// Stores `tokens` into `conn` and its `rows` (authenticated, as read in the writing transaction): the access
/// token replaced, the refresh and ID tokens per their [`RefreshUpdate`], credential fields and metadata replaced
/// by an authorization or import and added to by a refresh (`refreshed`), the connection authorized. The caller
/// bumps the revision, writes the record and rows and handles `tokens.release_lease`.
pub(crate) fn apply_tokens(
    name: &str,
    conn: &mut Connection,
    rows: &mut SealedRows,
    tokens: NewTokens<'_>,
    keys: &Keys,
    refreshed: bool,
) -> Result<(), WriteError> {
    let seal = |field, value: &SecretString| keys.seal(name, field, value.expose_secret().as_bytes());
    rows[slot(SecretField::AccessToken)] = Some(seal(SecretField::AccessToken, tokens.access_token)?);
    for (field, update) in [(SecretField::RefreshToken, &tokens.refresh), (SecretField::IdToken, &tokens.id_token)] {
        match update {
            RefreshUpdate::Replace(value) => rows[slot(field)] = Some(seal(field, value)?),
            RefreshUpdate::Keep => {}
            RefreshUpdate::Remove => rows[slot(field)] = None,
        }
    }
    // A refresh whose answer has no credential fields leaves the sealed row as it is: nothing to open or seal
    // again. Otherwise a refresh adds to the kept fields, and an authorization replaces them.
    if !(refreshed && tokens.credentials.is_empty()) {
        let credentials = slot(SecretField::Credentials);
        let kept = match (refreshed, &rows[credentials]) {
            (true, Some(row)) => Some(keys.open_string(name, SecretField::Credentials, row)?),
            _ => None,
        };
        rows[credentials] = sealed_credentials(name, kept.as_ref(), &tokens.credentials, keys)?;
    }
    let now = now_unix();
    conn.status = Status::Authorized;
    conn.token = Some(TokenInfo {
        token_type: tokens.token_type,
        expires_at: tokens.expires_at,
        scopes: tokens.scopes,
        has_refresh_token: rows[slot(SecretField::RefreshToken)].is_some(),
        obtained_at: now,
        refreshed,
    });
    // A new authorization (or import) describes a new grant: nothing of the old one's metadata lingers.
    // A refresh answer often repeats only some fields (Slack's `team` comes at authorization): it adds.
    if !refreshed {
        conn.metadata.clear();
    }
    conn.metadata.extend(tokens.metadata);
    conn.status_reason = None;
    if tokens.resolved.is_some() {
        conn.resolved = tokens.resolved;
    }
    conn.updated_at = now;
    Ok(())
}
