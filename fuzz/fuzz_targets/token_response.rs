//! `token::parse_response`: a token endpoint's answer (status, `Content-Type`, body), reshaped the way providers
//! mean it and read through `oauth2`'s response handling with wasm-host's lenient token response type.
//!
//! Invariants: only a 2xx answer gives tokens; a parsed response never has an empty access token; the token
//! type is one word (`Bearer` canonical); `expires_in` is not negative and can be added to the current time
//! (callers compute `now + expires_in`); scopes are non-empty words; no error message carries the tokens of the
//! body, a control character, or unbounded text.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;
use wasm_host_oauth::token::parse_response;

const STATUSES: [u16; 8] = [200, 201, 204, 400, 401, 429, 500, 503];
const CONTENT_TYPES: [Option<&str>; 4] =
    [Some("application/json"), Some("application/x-www-form-urlencoded"), Some("text/plain; charset=utf-8"), None];

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else { return };
    let status = STATUSES[first as usize % STATUSES.len()];
    let content_type = CONTENT_TYPES[(first as usize / STATUSES.len()) % CONTENT_TYPES.len()];
    match parse_response(status, content_type, body) {
        Ok(r) => {
            assert!((200..300).contains(&status), "HTTP {status} gave tokens");
            assert!(!r.access_token.expose_secret().is_empty(), "an empty access token was accepted");
            let t = &r.token_type;
            assert!(!t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "token type {t:?}");
            assert!(!t.eq_ignore_ascii_case("bearer") || t == "Bearer", "token type {t:?} not canonical");
            if let Some(e) = r.expires_in {
                assert!(e >= 0, "negative expires_in {e}");
                assert!(wasm_host_store::now_unix().checked_add(e).is_some(), "now + expires_in ({e}) overflows");
            }
            for s in r.scope.iter().flatten() {
                assert!(!s.is_empty() && !s.contains([' ', ',']), "scope {s:?}");
            }
            for (k, v) in &r.extra {
                let leaf = k.rsplit('.').next().unwrap_or(k);
                assert!(!leaf.ends_with("token") && !leaf.contains("secret"), "`{k}` (a credential) kept as extra");
                let _ = v;
            }
        }
        Err(e) => {
            common::assert_error_shown_safely("a token error", &e, 600);
            // A 2xx body's own values never appear in the message: they may be tokens. (Long alphanumeric
            // values only: no fixed wording of a message could contain one.)
            if (200..300).contains(&status) {
                let json: Option<serde_json::Map<String, serde_json::Value>> = serde_json::from_slice(body).ok();
                let shown = format!("{e} {e:?}");
                for v in json.iter().flat_map(|j| j.values()).filter_map(|v| v.as_str()) {
                    if v.len() >= 12 && v.chars().all(|c| c.is_ascii_alphanumeric()) {
                        assert!(!shown.contains(v), "the message repeats a value of the body: {shown}");
                    }
                }
            }
        }
    }
});
