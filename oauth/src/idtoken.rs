//! OpenID Connect ID-token validation (Core §3.1.3.7): signature against the provider's JWKS, then `iss`,
//! `aud`, `azp`, `exp`, `iat` and `nonce`. Asymmetric algorithms only: `none` and HMAC are refused.

use base64::Engine;
use ring::signature::{self, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;
use url::Url;

use crate::http::{read_capped, Http};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdTokenError {
    #[error("the ID token is not a signed JWT")]
    Malformed,
    #[error("the ID token uses the algorithm `{0}`, which wasm-host does not accept")]
    Algorithm(String),
    #[error("no key in the provider's JWKS matches the ID token (kid {0:?})")]
    NoKey(Option<String>),
    #[error("the ID token's signature does not verify against the provider's JWKS")]
    Signature,
    #[error("the ID token was issued by `{found}`, not `{expected}`")]
    Issuer { expected: String, found: String },
    #[error("the ID token is not meant for this client (aud/azp does not name it)")]
    Audience,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token's nonce does not match the one this authorization sent")]
    Nonce,
    #[error("cannot fetch the provider's JWKS: {0}")]
    Jwks(String),
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Deserialize, Clone)]
pub struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    usage: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

#[derive(Deserialize, Clone)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

pub async fn fetch_jwks(http: &Http, url: &Url) -> Result<Jwks, IdTokenError> {
    let response = http.client().get(url.clone()).send().await.map_err(|e| IdTokenError::Jwks(crate::http::describe(&e)))?;
    if !response.status().is_success() {
        return Err(IdTokenError::Jwks(format!("{url} answered HTTP {}", response.status().as_u16())));
    }
    let body = read_capped(response, 256 * 1024).await.map_err(|e| IdTokenError::Jwks(format!("{url}: {e}")))?;
    serde_json::from_slice(&body)
        .map_err(|e| IdTokenError::Jwks(format!("{url} is not a JWKS: {}", crate::shown(&e.to_string(), 200))))
}

fn b64(s: &str) -> Result<Vec<u8>, IdTokenError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).map_err(|_| IdTokenError::Malformed)
}

/// What the checks compare against.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now: i64,
    /// Seconds of clock skew tolerated on `exp`.
    pub leeway: i64,
}

/// Validates `token` and returns its claims.
pub fn validate(token: &str, jwks: &Jwks, expected: &Expected<'_>) -> Result<serde_json::Map<String, Value>, IdTokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(IdTokenError::Malformed);
    };
    let header: Header = serde_json::from_slice(&b64(h)?).map_err(|_| IdTokenError::Malformed)?;
    let sig = b64(s)?;
    let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
    let (kty, rsa_alg, ec_alg): (&str, Option<&'static signature::RsaParameters>, Option<&'static signature::EcdsaVerificationAlgorithm>) =
        match header.alg.as_str() {
            "RS256" => ("RSA", Some(&signature::RSA_PKCS1_2048_8192_SHA256), None),
            "RS384" => ("RSA", Some(&signature::RSA_PKCS1_2048_8192_SHA384), None),
            "RS512" => ("RSA", Some(&signature::RSA_PKCS1_2048_8192_SHA512), None),
            "PS256" => ("RSA", Some(&signature::RSA_PSS_2048_8192_SHA256), None),
            "PS384" => ("RSA", Some(&signature::RSA_PSS_2048_8192_SHA384), None),
            "PS512" => ("RSA", Some(&signature::RSA_PSS_2048_8192_SHA512), None),
            "ES256" => ("EC", None, Some(&signature::ECDSA_P256_SHA256_FIXED)),
            "ES384" => ("EC", None, Some(&signature::ECDSA_P384_SHA384_FIXED)),
            other => return Err(IdTokenError::Algorithm(crate::shown(other, 20))),
        };
    let candidates: Vec<&Jwk> = jwks
        .keys
        .iter()
        .filter(|k| k.kty == kty && k.usage.as_deref().is_none_or(|u| u == "sig"))
        .filter(|k| header.kid.is_none() || k.kid == header.kid)
        .collect();
    if candidates.is_empty() {
        return Err(IdTokenError::NoKey(header.kid.map(|k| crate::shown(&k, 100))));
    }
    let verified = candidates.iter().any(|k| match (rsa_alg, ec_alg) {
        (Some(alg), _) => match (k.n.as_deref().map(b64), k.e.as_deref().map(b64)) {
            (Some(Ok(n)), Some(Ok(e))) => signature::RsaPublicKeyComponents { n: &n, e: &e }.verify(alg, signed, &sig).is_ok(),
            _ => false,
        },
        (_, Some(alg)) => {
            let want_crv = if header.alg == "ES256" { "P-256" } else { "P-384" };
            match (k.crv.as_deref(), k.x.as_deref().map(b64), k.y.as_deref().map(b64)) {
                (Some(crv), Some(Ok(x)), Some(Ok(y))) if crv == want_crv => {
                    let mut point = vec![4u8];
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    UnparsedPublicKey::new(alg, &point).verify(signed, &sig).is_ok()
                }
                _ => false,
            }
        }
        _ => false,
    });
    if !verified {
        return Err(IdTokenError::Signature);
    }
    let claims: serde_json::Map<String, Value> = serde_json::from_slice(&b64(p)?).map_err(|_| IdTokenError::Malformed)?;
    check_claims(&claims, expected)?;
    Ok(claims)
}

fn check_claims(claims: &serde_json::Map<String, Value>, expected: &Expected<'_>) -> Result<(), IdTokenError> {
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
    if !issuer_matches(expected.issuer, iss, claims.get("tid").and_then(Value::as_str)) {
        return Err(IdTokenError::Issuer { expected: expected.issuer.into(), found: crate::shown(iss, 200) });
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == expected.client_id,
        Some(Value::Array(a)) => {
            a.iter().any(|v| v.as_str() == Some(expected.client_id))
                && (a.len() == 1 || claims.get("azp").and_then(Value::as_str) == Some(expected.client_id))
        }
        _ => false,
    };
    if !aud_ok {
        return Err(IdTokenError::Audience);
    }
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp + expected.leeway > expected.now => {}
        _ => return Err(IdTokenError::Expired),
    }
    if claims.get("nonce").and_then(Value::as_str) != Some(expected.nonce) {
        return Err(IdTokenError::Nonce);
    }
    Ok(())
}

/// Microsoft's multi-tenant endpoints (`common`, `organizations`, `consumers`) issue tokens whose issuer names
/// the user's own tenant; such an issuer is accepted when it is exactly the tenant the token's `tid` names.
fn issuer_matches(expected: &str, found: &str, tid: Option<&str>) -> bool {
    let norm = |s: &str| s.trim_end_matches('/').to_owned();
    if norm(expected) == norm(found) {
        return true;
    }
    for multi in ["/common/", "/organizations/", "/consumers/"] {
        if let (true, Some(tid)) = (expected.contains(multi), tid) {
            return norm(&expected.replace(multi, &format!("/{tid}/"))) == norm(found);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_tenant_issuer() {
        let common = "https://login.microsoftonline.com/common/v2.0";
        assert!(issuer_matches(common, "https://login.microsoftonline.com/abc/v2.0", Some("abc")));
        assert!(!issuer_matches(common, "https://login.microsoftonline.com/abc/v2.0", Some("xyz")));
        assert!(!issuer_matches("https://a.example", "https://b.example", None));
    }

    #[test]
    fn unsigned_and_hmac_tokens_are_refused() {
        let jwks = Jwks { keys: vec![] };
        let exp = Expected { issuer: "i", client_id: "c", nonce: "n", now: 0, leeway: 0 };
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let none = format!("{}.{}.", enc(r#"{"alg":"none"}"#), enc("{}"));
        assert_eq!(validate(&none, &jwks, &exp), Err(IdTokenError::Algorithm("none".into())));
        let hs = format!("{}.{}.{}", enc(r#"{"alg":"HS256"}"#), enc("{}"), enc("x"));
        assert_eq!(validate(&hs, &jwks, &exp), Err(IdTokenError::Algorithm("HS256".into())));
        assert_eq!(validate("a.b", &jwks, &exp), Err(IdTokenError::Malformed));
    }
}
