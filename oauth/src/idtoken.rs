//! OpenID Connect ID-token validation (Core §3.1.3.7) through `openidconnect` 4: the signature against the
//! provider's JWKS, `aud`, `exp`, `iat` and `nonce` by the library; asymmetric algorithms only (`none` and HMAC
//! are refused). Around it, what the library leaves to its caller: `azp` when there are several audiences, `nbf`,
//! clock skew, and the issuer, checked here so that Microsoft's multi-tenant issuer (the user's own tenant, named
//! by `tid`) can be accepted exactly.

use chrono::{DateTime, TimeZone, Utc};
use openidconnect::core::{CoreGenderClaim, CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm};
use openidconnect::{
    AdditionalClaims, ClaimsVerificationError, ClientId, IdToken, IdTokenClaims, IdTokenVerifier, IssuerUrl, Nonce,
    SignatureVerificationError,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use url::Url;

use crate::http::Http;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdTokenError {
    #[error("the ID token is not a signed JWT")]
    Malformed,
    #[error("the ID token uses the algorithm `{0}`, which wasm-host does not accept")]
    Algorithm(String),
    #[error("no key in the provider's JWKS matches the ID token")]
    NoKey,
    #[error("the ID token's signature does not verify against the provider's JWKS")]
    Signature,
    #[error("the ID token was issued by `{found}`, not `{expected}`")]
    Issuer { expected: String, found: String },
    #[error("the ID token is not meant for this client (aud/azp does not name it)")]
    Audience,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token is not valid yet (nbf or iat in the future)")]
    NotYetValid,
    #[error("the ID token's nonce does not match the one this authorization sent")]
    Nonce,
    #[error("cannot fetch the provider's JWKS: {0}")]
    Jwks(String),
}

/// The provider's signing keys (RFC 7517). Keys of a type or use the library does not know are skipped.
pub type Jwks = CoreJsonWebKeySet;

/// Claims the library does not read and the checks here need.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Extra {
    /// Microsoft's tenant ID: names the tenant a multi-tenant issuer stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// Not before (RFC 7519 §4.1.5), Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}
impl AdditionalClaims for Extra {}

/// The verified claims of an ID token.
pub type Claims = IdTokenClaims<Extra, CoreGenderClaim>;
type Token = IdToken<Extra, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// JWKS documents are small; refuse anything larger.
const MAX_JWKS: usize = 256 * 1024;

/// Fetches the JWKS at `url`, read as JSON whatever `Content-Type` it is served with (some providers say
/// `text/plain` or `application/octet-stream`).
pub async fn fetch_jwks(http: &Http, url: &Url) -> Result<Jwks, IdTokenError> {
    let request = oauth2::http::Request::get(url.as_str()).body(Vec::new()).map_err(|_| IdTokenError::Jwks(format!("{url} is not a URL")))?;
    let answer = http.send(request, MAX_JWKS).await.map_err(|e| IdTokenError::Jwks(format!("{url}: {e}")))?;
    if !(200..300).contains(&answer.status) {
        return Err(IdTokenError::Jwks(format!("{url} answered HTTP {}", answer.status)));
    }
    serde_json::from_slice(&answer.body)
        .map_err(|e| IdTokenError::Jwks(format!("{url} is not a JWKS: {}", crate::shown(&e.to_string(), 200))))
}

/// What the checks compare against.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Unix seconds.
    pub now: i64,
    /// Seconds of clock skew tolerated on `exp`, `iat` and `nbf`.
    pub leeway: i64,
}

/// The algorithms accepted: asymmetric signatures only (an HMAC key would be the client secret, which a
/// provider's JWKS must not stand in for; `none` is no signature).
const ALGORITHMS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

fn at(unix: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(unix, 0).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Validates `token` and returns its claims.
pub fn validate(token: &str, jwks: &Jwks, expected: &Expected<'_>) -> Result<Claims, IdTokenError> {
    let token: Token = token.parse().map_err(|_| IdTokenError::Malformed)?;
    match token.signing_alg() {
        Ok(alg) if ALGORITHMS.contains(alg) => {}
        Ok(alg) => return Err(IdTokenError::Algorithm(crate::shown(&serde_plain_name(alg), 20))),
        Err(SignatureVerificationError::NoSignature) => return Err(IdTokenError::Algorithm("none".into())),
        Err(_) => return Err(IdTokenError::Malformed),
    }
    // The verifier wants an issuer URL; the issuer is compared below, where a multi-tenant one is understood.
    let placeholder = IssuerUrl::new("https://issuer.invalid".into()).expect("a URL");
    let (now, leeway) = (expected.now, expected.leeway);
    let verifier: IdTokenVerifier<'_, CoreJsonWebKey> =
        IdTokenVerifier::new_public_client(ClientId::new(expected.client_id.to_owned()), placeholder, jwks.clone())
            .set_allowed_algs(ALGORITHMS)
            .require_issuer_match(false)
            // Several audiences: accepted when `azp` names this client (checked below).
            .set_other_audience_verifier_fn(|_| true)
            .set_time_fn(move || at(now - leeway))
            .set_issue_time_verifier_fn(move |iat| {
                if iat.timestamp() > now + leeway { Err("issued in the future".into()) } else { Ok(()) }
            });
    let claims = token.into_claims(&verifier, &Nonce::new(expected.nonce.to_owned())).map_err(|e| match e {
        ClaimsVerificationError::Expired(why) if why.contains("future") => IdTokenError::NotYetValid,
        ClaimsVerificationError::Expired(_) => IdTokenError::Expired,
        ClaimsVerificationError::InvalidAudience(_) => IdTokenError::Audience,
        ClaimsVerificationError::InvalidNonce(_) => IdTokenError::Nonce,
        ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey) => IdTokenError::NoKey,
        ClaimsVerificationError::SignatureVerification(_) => IdTokenError::Signature,
        _ => IdTokenError::Malformed,
    })?;
    let azp = claims.authorized_party().map(|a| a.as_str());
    if azp.is_some_and(|a| a != expected.client_id) || (claims.audiences().len() > 1 && azp.is_none()) {
        return Err(IdTokenError::Audience);
    }
    if claims.additional_claims().nbf.is_some_and(|nbf| nbf > now + leeway) {
        return Err(IdTokenError::NotYetValid);
    }
    let iss = claims.issuer().as_str();
    if !issuer_matches(expected.issuer, iss, claims.additional_claims().tid.as_deref()) {
        return Err(IdTokenError::Issuer { expected: expected.issuer.into(), found: crate::shown(iss, 200) });
    }
    Ok(claims)
}

/// The JOSE name of an algorithm (`HS256`), as the library spells it in JSON.
fn serde_plain_name(alg: &CoreJwsSigningAlgorithm) -> String {
    serde_json::to_value(alg).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| "unknown".into())
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
    use base64::Engine;

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
        let jwks = Jwks::new(vec![]);
        let exp = Expected { issuer: "i", client_id: "c", nonce: "n", now: 0, leeway: 0 };
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let claims = enc(r#"{"iss":"https://i.example","aud":"c","exp":10,"iat":0,"sub":"u","nonce":"n"}"#);
        let none = format!("{}.{claims}.", enc(r#"{"alg":"none"}"#));
        assert_eq!(validate(&none, &jwks, &exp).unwrap_err(), IdTokenError::Algorithm("none".into()));
        let hs = format!("{}.{claims}.{}", enc(r#"{"alg":"HS256"}"#), enc("x"));
        assert_eq!(validate(&hs, &jwks, &exp).unwrap_err(), IdTokenError::Algorithm("HS256".into()));
        assert_eq!(validate("a.b", &jwks, &exp).unwrap_err(), IdTokenError::Malformed);
    }
}
