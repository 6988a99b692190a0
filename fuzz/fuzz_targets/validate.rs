//! Connection name and URL validation, as `create`, `run --allow-connection` and the manifest use it.
//!
//! Invariants: an accepted name is 1 to 63 of [a-z0-9-] with single inner hyphens, and is shown as it is; an
//! accepted URL is https (or http on a loopback host) with a host and no credentials, and validating its
//! serialisation gives it back unchanged; error messages carry no control character and are of bounded length.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use wasm_host_store::{is_loopback_host, printable, validate_name, validate_url};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    match validate_name(s) {
        Ok(()) => {
            assert!((1..=63).contains(&s.len()), "name of {} bytes accepted", s.len());
            assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{s:?} accepted");
            assert!(!s.starts_with('-') && !s.ends_with('-') && !s.contains("--"), "{s:?} accepted");
            assert_eq!(printable(s), s, "an accepted name is not shown as it is");
        }
        Err(e) => common::assert_error_shown_safely("a name error", &e, 400),
    }
    match validate_url("--provider-url", s) {
        Ok(u) => {
            assert!(u.scheme() == "https" || (u.scheme() == "http" && is_loopback_host(&u)), "{u} accepted");
            assert!(u.host().is_some(), "{u} has no host");
            assert!(u.username().is_empty() && u.password().is_none(), "{u} carries credentials");
            let again = validate_url("--provider-url", u.as_str());
            assert_eq!(again.as_ref(), Ok(&u), "validating {u} again does not give it back");
        }
        Err(e) => common::assert_error_shown_safely("a URL error", &e, 400),
    }
});
