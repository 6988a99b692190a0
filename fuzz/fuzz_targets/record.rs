//! What the store reads back: a connection record (the JSON of the `connections` table) and a sealed secret
//! (age ciphertext bound to its connection and field). An even first byte picks the record, an odd one the secret.
//!
//! Invariants: a decoded record encodes and decodes back to itself; a sealed value opens only as the field of
//! the connection it was sealed for, and opens to the same value after sealing it again; error messages carry
//! no control character and are of bounded length.

#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use secrecy::{ExposeSecret, SecretString};
use wasm_host_store::{Connection, Keys, SecretError, SecretField};

/// A key made for these fuzz runs only (the seeds in fuzz/seeds/record/ are sealed to it); it guards nothing.
const FUZZ_IDENTITY: &str = "AGE-SECRET-KEY-1ZEFVCM0HEQJD5DARQ0KFYQSU6AUZ3Q50Y8Z0PQ8USPHMNZ3WW89QTDQJNY";

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys::from_inline(&SecretString::from(FUZZ_IDENTITY)).expect("a valid identity"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    if first % 2 == 0 {
        match Connection::decode(rest) {
            Ok(conn) => {
                let again = Connection::decode(&conn.encode()).expect("an encoded record decodes");
                assert_eq!(again, conn, "a record does not survive encode/decode");
            }
            Err(e) => common::assert_error_shown_safely("a record decoding error", &e, 1000),
        }
        return;
    }
    let keys = keys();
    match keys.open("conn", SecretField::AccessToken, rest) {
        Ok(value) => {
            let value = value.expose_secret();
            for (name, field) in [("conn", SecretField::RefreshToken), ("conn2", SecretField::AccessToken), ("con", SecretField::AccessToken)] {
                assert!(
                    matches!(keys.open(name, field, rest), Err(SecretError::Misplaced { .. })),
                    "a sealed value opened as the {} of `{name}`",
                    field.as_str()
                );
            }
            let resealed = keys.seal("conn", SecretField::AccessToken, value).expect("sealing works");
            let reopened = keys.open("conn", SecretField::AccessToken, &resealed).expect("a fresh seal opens");
            assert_eq!(reopened.expose_secret(), value, "seal/open changed the value");
        }
        Err(e) => common::assert_error_shown_safely("a secret opening error", &e, 1000),
    }
});
