//! Record authentication: what the store says about a connection is believed only with a tag made with a key
//! that only the identity's holder has.
//!
//! The store's file can be written by whoever reaches it (a shared volume, a restored backup), and its public
//! key is in the file, so anyone can seal a value to it with the standard age tool. Each connection therefore
//! carries one HMAC-SHA256 tag (RFC 2104) over its name, its revision, its record exactly as stored and the
//! SHA-256 of each sealed secret row it holds (or the fact that it holds none), under a key derived from the
//! identity's secret key with HKDF-SHA256 (RFC 5869), domain-separated from everything else derived from it.
//! A changed record (a token URL pointed elsewhere), a planted or swapped sealed value, a row of another
//! revision or of another connection: each changes the tag's input, and the store refuses the connection.
//!
//! The tag belongs to the sealing layer, not to a backend: a backend stores it beside the record and hands both
//! back, so a PostgreSQL row is protected exactly as a redb one.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::keys::SecretField;

/// What a tag is computed over, spelled out so both the writer and the reader build the same input.
pub(crate) struct RecordView<'a> {
    pub name: &'a str,
    pub revision: u64,
    /// The record's bytes exactly as stored.
    pub record: &'a [u8],
    /// The sealed row of each field in [`SecretField::ALL`] order, `None` where the connection has none.
    pub sealed: [Option<&'a [u8]>; 5],
}

/// Tags the format, so a later change of the input's layout cannot be confused with this one.
const DOMAIN: &[u8] = b"wasm-host-record-tag/1";
pub(crate) const TAG_BYTES: usize = 32;

fn mac(key: &[u8; 32], view: &RecordView<'_>) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    let mut put = |bytes: &[u8]| {
        mac.update(&(bytes.len() as u64).to_be_bytes());
        mac.update(bytes);
    };
    put(DOMAIN);
    put(view.name.as_bytes());
    put(&view.revision.to_be_bytes());
    put(view.record);
    for (field, sealed) in SecretField::ALL.iter().zip(view.sealed) {
        // A field added after tags existed adds nothing while absent, so the tags of older stores still verify.
        if *field == SecretField::Credentials && sealed.is_none() {
            continue;
        }
        put(field.as_str().as_bytes());
        match sealed {
            Some(row) => put(&Sha256::digest(row)),
            None => put(b""),
        }
    }
    mac
}

pub(crate) fn tag(key: &[u8; 32], view: &RecordView<'_>) -> [u8; TAG_BYTES] {
    mac(key, view).finalize().into_bytes().into()
}

/// Compares in constant time.
pub(crate) fn verify(key: &[u8; 32], view: &RecordView<'_>, stored: &[u8]) -> bool {
    mac(key, view).verify_slice(stored).is_ok()
}

/// The domain of an admin token's tag: a token's record can never pass for a connection's, nor the reverse.
const ADMIN_TOKEN_DOMAIN: &[u8] = b"wasm-host-admin-token-tag/1";

fn admin_token_mac(key: &[u8; 32], record: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in [ADMIN_TOKEN_DOMAIN, record] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

/// The tag of an admin token's record (its name, scope, creation time and token hash, as stored): without it,
/// anyone who can write the store could plant the hash of a token of their own and be let in.
pub(crate) fn admin_token_tag(key: &[u8; 32], record: &[u8]) -> [u8; TAG_BYTES] {
    admin_token_mac(key, record).finalize().into_bytes().into()
}

/// Compares in constant time.
pub(crate) fn admin_token_verify(key: &[u8; 32], record: &[u8], stored: &[u8]) -> bool {
    admin_token_mac(key, record).verify_slice(stored).is_ok()
}

/// The domain of a pending authorization's tag (authorization_request.rs).
const AUTHORIZATION_REQUEST_DOMAIN: &[u8] = b"wasm-host-authorization-request-tag/1";

fn authorization_request_mac(key: &[u8; 32], row_key: &str, record: &[u8], sealed: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in [AUTHORIZATION_REQUEST_DOMAIN, row_key.as_bytes(), record, &Sha256::digest(sealed)] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

/// The tag of a pending authorization's row: its key (the state's hash), its record (connection, redirect URI,
/// scopes, times) and the SHA-256 of its sealed nonce and verifier. Without it, anyone who can write the store
/// could plant a request of their own (an attacker's verifier for someone's connection).
pub(crate) fn authorization_request_tag(key: &[u8; 32], row_key: &str, record: &[u8], sealed: &[u8]) -> [u8; TAG_BYTES] {
    authorization_request_mac(key, row_key, record, sealed).finalize().into_bytes().into()
}

/// Compares in constant time.
pub(crate) fn authorization_request_verify(key: &[u8; 32], row_key: &str, record: &[u8], sealed: &[u8], stored: &[u8]) -> bool {
    authorization_request_mac(key, row_key, record, sealed).verify_slice(stored).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_the_input_changes_the_tag() {
        let key = [7u8; 32];
        let view = RecordView { name: "a", revision: 3, record: b"{}", sealed: [Some(b"x"), None, None, None, None] };
        let t = tag(&key, &view);
        assert!(verify(&key, &view, &t));
        assert!(!verify(&[8u8; 32], &view, &t));
        let others = [
            RecordView { name: "b", ..view },
            RecordView { revision: 4, ..view },
            RecordView { record: b"{ }", ..view },
            RecordView { sealed: [Some(b"y"), None, None, None, None], ..view },
            RecordView { sealed: [None, Some(b"x"), None, None, None], ..view },
            RecordView { sealed: [Some(b"x"), Some(b""), None, None, None], ..view },
            RecordView { sealed: [Some(b"x"), None, None, None, Some(b"")], ..view },
        ];
        for other in &others {
            assert!(!verify(&key, other, &t));
        }
        // Lengths are part of the input: moving a byte from the name into the record is another input.
        let a = RecordView { name: "ab", record: b"c", ..view };
        let b = RecordView { name: "a", record: b"bc", ..view };
        assert_ne!(tag(&key, &a), tag(&key, &b));
    }
}
