//! The loopback callback server's parsing: the request line (`request_target`) and the judging of the callback
//! query (`judge`), against a fixed `state` and issuer.
//!
//! Invariants: a `Done` callback carries the expected `state`, a non-empty `code` equal to the query's and no
//! mix-up `iss`; extra parameters are bounded; nothing with another `state` ends the wait; every message and
//! every provider-given text is safe to print.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use secrecy::{ExposeSecret, SecretString};
use wasm_host_oauth::authorize::{judge, request_target, Verdict};

const STATE: &str = "s1-Xq8";
const ISSUER: &str = "https://issuer.example";

fuzz_target!(|data: &[u8]| {
    // Inputs starting with a method are a request head, as read from the socket; others are a request target.
    let target = if data.starts_with(b"GET ") || data.starts_with(b"POST ") {
        match request_target(data) {
            Some(t) => {
                assert!(t.starts_with('/') && !t.contains(' ') && !t.contains('\r'), "bad target {t:?}");
                t.to_owned()
            }
            None => return,
        }
    } else {
        match std::str::from_utf8(data) {
            Ok(s) => s.to_owned(),
            Err(_) => return,
        }
    };
    let state = SecretString::from(STATE);
    // The query as a reader independent of `judge` sees it: the last value of each parameter counts.
    let url = url::Url::parse(&format!("http://127.0.0.1{target}")).ok();
    let last = |name: &str| -> Option<String> {
        url.as_ref()?.query_pairs().filter(|(k, _)| k == name).last().map(|(_, v)| v.into_owned())
    };
    match judge(&target, &state, Some(ISSUER)) {
        Verdict::NotCallback => {
            assert!(url.as_ref().is_none_or(|u| u.path() != "/callback"), "a /callback request was not judged: {target:?}");
        }
        Verdict::Retry(why) => common::assert_shown_safely("a retry message", &why, 300),
        Verdict::Refused { error, description } => {
            assert_eq!(last("state").as_deref(), Some(STATE), "a refusal with another state ended the wait");
            common::assert_shown_safely("the provider's error", &error, 100);
            if let Some(d) = &description {
                common::assert_shown_safely("the provider's error description", d, 300);
            }
        }
        Verdict::Done(cb) => {
            assert_eq!(last("state").as_deref(), Some(STATE), "a callback with another state was accepted");
            assert!(last("error").is_none(), "a callback with an error was accepted");
            let code = cb.code.expose_secret();
            assert!(!code.is_empty(), "an empty code was accepted");
            assert_eq!(last("code").as_deref(), Some(code), "the code is not the query's");
            if let Some(iss) = last("iss") {
                assert_eq!(iss.trim_end_matches('/'), ISSUER, "a callback naming another issuer was accepted");
            }
            assert!(cb.params.len() <= 32, "{} extra parameters kept", cb.params.len());
            for (k, v) in &cb.params {
                assert!(k.chars().count() <= 64 && v.chars().count() <= 1024, "an extra parameter is too long");
                assert!(!["state", "code", "error", "iss"].contains(&k.as_str()), "`{k}` kept as metadata");
            }
        }
    }
});
