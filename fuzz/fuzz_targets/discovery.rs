//! `endpoints::parse_discovery`: an OpenID discovery document fetched for a known issuer.
//!
//! Invariants: an accepted document names the issuer it was fetched for; every endpoint taken from it is https,
//! or http on loopback; error messages carry no control character and are of bounded length.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use wasm_host_oauth::endpoints::parse_discovery;

const ISSUERS: [&str; 3] = ["https://issuer.example", "https://login.example/tenant/v2.0/", "http://127.0.0.1:8080"];

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else { return };
    let issuer = ISSUERS[first as usize % ISSUERS.len()];
    match parse_discovery(issuer, body) {
        Ok(ep) => {
            let named = ep.issuer.as_deref().expect("a discovered provider has an issuer");
            assert_eq!(named.trim_end_matches('/'), issuer.trim_end_matches('/'), "a document for another issuer was accepted");
            let urls = [Some(&ep.authorization), Some(&ep.token), ep.revocation.as_ref(), ep.userinfo.as_ref(), ep.jwks.as_ref()];
            for u in urls.into_iter().flatten() {
                let loopback = matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                    || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                    || u.host_str() == Some("localhost");
                assert!(u.scheme() == "https" || (u.scheme() == "http" && loopback), "insecure endpoint {u} accepted");
            }
        }
        Err(e) => common::assert_error_shown_safely("a discovery error", &e, 1000),
    }
});
