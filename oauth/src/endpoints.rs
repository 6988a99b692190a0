//! Where a provider's endpoints are: the connection's explicit URLs first, then built-in presets for providers
//! whose quirks matter (Google, Microsoft Entra, QuickBooks), then OpenID discovery.

use serde::Deserialize;
use thiserror::Error;
use url::Url;

use crate::http::{read_capped, BodyError, Http};
use crate::token::ClientAuth;

/// Everything the flows need to know about one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEndpoints {
    pub authorization: Url,
    pub token: Url,
    pub revocation: Option<Url>,
    pub userinfo: Option<Url>,
    /// The issuer ID tokens must name; `None` skips ID-token validation (plain OAuth2 providers).
    pub issuer: Option<String>,
    pub jwks: Option<Url>,
    /// RFC 8628 §3.1 device authorization endpoint (discovery's `device_authorization_endpoint`, RFC 8414 §2 as
    /// extended by RFC 8628 §4); `None` when not published.
    pub device_authorization: Option<Url>,
    pub client_auth: ClientAuth,
    pub pkce: bool,
    /// Extra authorization-request parameters the provider needs (Google: `access_type=offline`).
    pub extra_params: Vec<(String, String)>,
    /// Scopes always requested (Microsoft: `offline_access`, or no refresh token comes back).
    pub required_scopes: Vec<String>,
    /// Which preset matched, for messages.
    pub preset: Option<&'static str>,
    /// How the authorization request joins scopes: `' '` (RFC 6749 §3.3) or `','` (Slack, Linear, Shopify).
    pub scope_separator: char,
}

impl ProviderEndpoints {
    /// A plain OAuth2 provider known only by its two URLs: no preset, no discovery, PKCE, Basic authentication.
    pub fn explicit(authorization: Url, token: Url) -> Self {
        ProviderEndpoints {
            authorization,
            token,
            revocation: None,
            userinfo: None,
            issuer: None,
            jwks: None,
            device_authorization: None,
            client_auth: ClientAuth::Basic,
            pkce: true,
            extra_params: vec![],
            required_scopes: vec![],
            preset: None,
            scope_separator: ' ',
        }
    }
}

/// The connection's settings that decide its endpoints.
#[derive(Debug, Clone, Default)]
pub struct EndpointSettings {
    pub provider_url: String,
    pub issuer_url: Option<String>,
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
    pub revocation_url: Option<String>,
    pub userinfo_url: Option<String>,
    /// PKCE forced on (`Some(true)`) or off (`Some(false)`, a provider that refuses it); `None`: as resolved.
    pub pkce: Option<bool>,
    /// Client authentication forced; `None`: as resolved.
    pub client_auth: Option<ClientAuth>,
    /// Authorization-request parameters added to the preset's (Dropbox's `token_access_type=offline`).
    pub auth_params: Vec<(String, String)>,
    /// How scopes are joined in the authorization request; `None`: a space.
    pub scope_separator: Option<char>,
}

#[derive(Debug, Error)]
pub enum EndpointError {
    #[error(
        "cannot find the endpoints of {provider}: {detail}. Pass them with `create --auth-url URL --token-url URL` \
         (and --revocation-url, --userinfo-url), or --issuer-url for an OpenID provider that publishes discovery"
    )]
    Unresolved { provider: String, detail: String, unreachable: bool },
    #[error(
        "the discovery document at {url} names the issuer `{found}`, not `{expected}`: refusing it (a document for \
         another issuer could send tokens elsewhere); check --issuer-url"
    )]
    IssuerMismatch { url: String, expected: String, found: String },
    #[error("the discovered {field} `{value}` is not an https URL (http only on loopback)")]
    InsecureEndpoint { field: &'static str, value: String },
}

impl EndpointError {
    /// True when discovery could not reach the provider (at one of the URLs tried): retrying later may work.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, EndpointError::Unresolved { unreachable: true, .. })
    }
}

/// Why one discovery attempt failed.
#[derive(Debug, Error)]
pub enum DiscoveryError {
    /// No connection, or no answer in time.
    #[error("{0}")]
    Unreachable(String),
    /// A document that must not be used (another issuer, plain-http endpoints): stop, do not try elsewhere.
    #[error(transparent)]
    Refused(EndpointError),
    /// Anything else: an error status, not a discovery document.
    #[error("{0}")]
    Invalid(String),
}

fn url(s: &str) -> Url {
    Url::parse(s).expect("preset URLs are valid")
}

/// A built-in preset for the provider URL, if one matches.
pub fn preset(provider_url: &Url) -> Option<ProviderEndpoints> {
    let host = provider_url.host_str()?.to_ascii_lowercase();
    if host == "accounts.google.com" || host.ends_with(".googleapis.com") || host == "google.com" {
        return Some(ProviderEndpoints {
            authorization: url("https://accounts.google.com/o/oauth2/v2/auth"),
            token: url("https://oauth2.googleapis.com/token"),
            revocation: Some(url("https://oauth2.googleapis.com/revoke")),
            userinfo: Some(url("https://openidconnect.googleapis.com/v1/userinfo")),
            issuer: Some("https://accounts.google.com".into()),
            jwks: Some(url("https://www.googleapis.com/oauth2/v3/certs")),
            device_authorization: None,
            client_auth: ClientAuth::Basic,
            pkce: true,
            // Without both, Google returns no refresh token (or only on the very first consent).
            extra_params: vec![("access_type".into(), "offline".into()), ("prompt".into(), "consent".into())],
            required_scopes: vec![],
            preset: Some("google"),
            scope_separator: ' ',
        });
    }
    if host == "login.microsoftonline.com" || host == "login.microsoft.com" {
        let tenant = provider_url
            .path_segments()
            .and_then(|mut s| s.next())
            .filter(|t| !t.is_empty() && *t != "oauth2")
            .unwrap_or("common")
            .to_owned();
        let base = format!("https://login.microsoftonline.com/{tenant}");
        // Multi-tenant endpoints issue tokens whose issuer names the user's own tenant: checked by pattern.
        let issuer = format!("{base}/v2.0");
        return Some(ProviderEndpoints {
            authorization: url(&format!("{base}/oauth2/v2.0/authorize")),
            token: url(&format!("{base}/oauth2/v2.0/token")),
            revocation: None,
            userinfo: Some(url("https://graph.microsoft.com/oidc/userinfo")),
            issuer: Some(issuer),
            jwks: Some(url(&format!("{base}/discovery/v2.0/keys"))),
            device_authorization: None,
            client_auth: ClientAuth::Basic,
            pkce: true,
            extra_params: vec![],
            required_scopes: vec!["offline_access".into()],
            preset: Some("microsoft"),
            scope_separator: ' ',
        });
    }
    if host == "appcenter.intuit.com" || host == "oauth.platform.intuit.com" || host == "developer.intuit.com" {
        return Some(ProviderEndpoints {
            authorization: url("https://appcenter.intuit.com/connect/oauth2"),
            token: url("https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"),
            revocation: Some(url("https://developer.api.intuit.com/v2/oauth2/tokens/revoke")),
            userinfo: Some(url("https://accounts.platform.intuit.com/v1/openid_connect/userinfo")),
            issuer: Some("https://oauth.platform.intuit.com/op/v1".into()),
            jwks: Some(url("https://oauth.platform.intuit.com/op/v1/jwks")),
            device_authorization: None,
            client_auth: ClientAuth::Basic,
            pkce: true,
            extra_params: vec![],
            required_scopes: vec![],
            preset: Some("quickbooks"),
            scope_separator: ' ',
        });
    }
    None
}

/// The fields of a discovery document we use. Our own reader rather than `openidconnect`'s
/// `ProviderMetadata::discover_async`, which refuses what real providers serve: it requires
/// `response_types_supported`, `subject_types_supported` and `id_token_signing_alg_values_supported` (OpenID
/// Discovery §3; OAuth-only servers under RFC 8414 omit them), accepts only `Content-Type: application/json`
/// (some serve `text/plain`), and compares the issuer byte for byte (a trailing `/` differs in practice).
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
}

/// Discovery documents are small; refuse anything larger.
const MAX_DISCOVERY: usize = 512 * 1024;

/// Fetches and checks `<issuer>/.well-known/openid-configuration`.
pub async fn discover(http: &Http, issuer: &str) -> Result<ProviderEndpoints, DiscoveryError> {
    let doc_url = discovery_url(issuer);
    let response = http.client().get(&doc_url).send().await.map_err(|e| {
        let text = crate::http::describe(&e);
        if e.is_connect() || e.is_timeout() { DiscoveryError::Unreachable(text) } else { DiscoveryError::Invalid(text) }
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(DiscoveryError::Invalid(format!("{doc_url} answered HTTP {}", status.as_u16())));
    }
    let body = read_capped(response, MAX_DISCOVERY).await.map_err(|e| match e {
        BodyError::TooLarge(_) => DiscoveryError::Invalid(format!("{doc_url}: {e}")),
        BodyError::Broken(_) => DiscoveryError::Unreachable(e.to_string()),
    })?;
    parse_discovery(issuer, &body)
}

/// Where the discovery document of `issuer` is.
pub fn discovery_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
}

/// Checks the discovery document `body` fetched for `issuer`: it must name that issuer, and every endpoint must
/// be https (http only on loopback). Pure, so that it can be fuzzed.
pub fn parse_discovery(issuer: &str, body: &[u8]) -> Result<ProviderEndpoints, DiscoveryError> {
    let trimmed = issuer.trim_end_matches('/');
    let doc_url = discovery_url(issuer);
    let doc: Discovery = serde_json::from_slice(body)
        .map_err(|e| DiscoveryError::Invalid(format!("{doc_url} is not a discovery document: {}", crate::shown(&e.to_string(), 200))))?;
    if doc.issuer.trim_end_matches('/') != trimmed {
        return Err(DiscoveryError::Refused(EndpointError::IssuerMismatch {
            url: doc_url,
            expected: issuer.into(),
            found: crate::shown(&doc.issuer, 200),
        }));
    }
    let checked = |field: &'static str, value: &str| -> Result<Url, DiscoveryError> {
        let u = Url::parse(value).map_err(|e| {
            DiscoveryError::Invalid(format!("{field} `{}` in {doc_url}: {e}", crate::shown(value, 200)))
        })?;
        let loopback = matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
        if u.scheme() != "https" && !(u.scheme() == "http" && loopback) {
            return Err(DiscoveryError::Invalid(EndpointError::InsecureEndpoint { field, value: crate::shown(value, 200) }.to_string()));
        }
        Ok(u)
    };
    let methods = doc.token_endpoint_auth_methods_supported.unwrap_or_default();
    // Basic is the default a server must support (RFC 8414 §2); use post only where basic is not offered.
    let client_auth = if methods.is_empty() || methods.iter().any(|m| m == "client_secret_basic") {
        ClientAuth::Basic
    } else if methods.iter().any(|m| m == "client_secret_post") {
        ClientAuth::Post
    } else {
        ClientAuth::Basic
    };
    Ok(ProviderEndpoints {
        authorization: checked("authorization_endpoint", &doc.authorization_endpoint)?,
        token: checked("token_endpoint", &doc.token_endpoint)?,
        revocation: doc.revocation_endpoint.as_deref().map(|u| checked("revocation_endpoint", u)).transpose()?,
        userinfo: doc.userinfo_endpoint.as_deref().map(|u| checked("userinfo_endpoint", u)).transpose()?,
        jwks: doc.jwks_uri.as_deref().map(|u| checked("jwks_uri", u)).transpose()?,
        device_authorization: doc
            .device_authorization_endpoint
            .as_deref()
            .map(|u| checked("device_authorization_endpoint", u))
            .transpose()?,
        issuer: Some(doc.issuer),
        client_auth,
        // RFC 8414 §2: omitted means the server does not support PKCE.
        pkce: doc.code_challenge_methods_supported.is_some_and(|m| m.iter().any(|x| x == "S256")),
        extra_params: vec![],
        required_scopes: vec![],
        preset: None,
        scope_separator: ' ',
    })
}

/// Resolves a connection's endpoints: explicit URLs override whatever a preset or discovery found.
pub async fn resolve(http: &Http, settings: &EndpointSettings) -> Result<ProviderEndpoints, EndpointError> {
    let provider = Url::parse(&settings.provider_url).map_err(|e| EndpointError::Unresolved {
        provider: settings.provider_url.clone(),
        detail: e.to_string(),
        unreachable: false,
    })?;
    let mut found = preset(&provider);
    let explicit = settings.auth_url.is_some() && settings.token_url.is_some();
    if found.is_none() && !explicit {
        let mut tried = Vec::new();
        for candidate in settings.issuer_url.iter().chain(std::iter::once(&settings.provider_url)) {
            match discover(http, candidate).await {
                Ok(d) => {
                    found = Some(d);
                    break;
                }
                Err(e @ DiscoveryError::Refused(_)) => {
                    return Err(EndpointError::Unresolved {
                        provider: settings.provider_url.clone(),
                        detail: e.to_string(),
                        unreachable: false,
                    });
                }
                Err(e) => tried.push(e),
            }
        }
        if found.is_none() {
            let unreachable = tried.iter().any(|e| matches!(e, DiscoveryError::Unreachable(_)));
            let detail = tried.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            return Err(EndpointError::Unresolved {
                provider: settings.provider_url.clone(),
                detail: format!("no preset matches and discovery failed ({detail})"),
                unreachable,
            });
        }
    }
    let parse = |s: &String| Url::parse(s).ok();
    let mut endpoints = match found {
        Some(e) => e,
        None => ProviderEndpoints::explicit(
            parse(settings.auth_url.as_ref().expect("explicit")).expect("validated at create"),
            parse(settings.token_url.as_ref().expect("explicit")).expect("validated at create"),
        ),
    };
    if let Some(u) = settings.auth_url.as_ref().and_then(parse) {
        endpoints.authorization = u;
    }
    if let Some(u) = settings.token_url.as_ref().and_then(parse) {
        endpoints.token = u;
    }
    if let Some(u) = settings.revocation_url.as_ref().and_then(parse) {
        endpoints.revocation = Some(u);
    }
    if let Some(u) = settings.userinfo_url.as_ref().and_then(parse) {
        endpoints.userinfo = Some(u);
    }
    if let Some(pkce) = settings.pkce {
        endpoints.pkce = pkce;
    }
    if let Some(auth) = settings.client_auth {
        endpoints.client_auth = auth;
    }
    if let Some(separator) = settings.scope_separator {
        endpoints.scope_separator = separator;
    }
    for (k, v) in &settings.auth_params {
        endpoints.extra_params.retain(|(key, _)| key != k);
        endpoints.extra_params.push((k.clone(), v.clone()));
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(issuer: &str, token: &str) -> Vec<u8> {
        serde_json::json!({ "issuer": issuer, "authorization_endpoint": "https://i.example/a", "token_endpoint": token })
            .to_string()
            .into_bytes()
    }

    #[test]
    fn discovery_documents() {
        let ok = parse_discovery("https://i.example/", &doc("https://i.example", "https://i.example/t")).unwrap();
        assert_eq!(ok.token.as_str(), "https://i.example/t");
        assert_eq!(ok.client_auth, ClientAuth::Basic);
        let local = parse_discovery("http://127.0.0.1:8080", &doc("http://127.0.0.1:8080", "http://localhost:8080/t"));
        assert!(local.is_ok());
        let e = parse_discovery("https://i.example", &doc("https://evil.example", "https://evil.example/t")).unwrap_err();
        assert!(matches!(e, DiscoveryError::Refused(EndpointError::IssuerMismatch { .. })), "{e:?}");
        let e = parse_discovery("https://i.example", &doc("https://i.example", "http://i.example/t")).unwrap_err();
        assert!(e.to_string().contains("is not an https URL"), "{e}");
    }

    /// Found by the `discovery` fuzz target: a document's values (an issuer, an endpoint that is not a URL)
    /// reached error messages with their control characters and at any length.
    #[test]
    fn document_values_in_messages_are_escaped_and_bounded() {
        let evil = format!("https://evil.example/\u{1b}[2J{}", "x".repeat(10_000));
        let e = parse_discovery("https://i.example", &doc(&evil, "https://i.example/t")).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.chars().any(char::is_control) && shown.len() < 1500, "{} chars", shown.len());
        let e = parse_discovery("https://i.example", &doc("https://i.example", "ht\u{7f}tp://[::0]:99999/")).unwrap_err();
        assert!(!e.to_string().chars().any(char::is_control), "{e}");
        let e = parse_discovery("https://i.example", b"{\"issuer\": 5}").unwrap_err();
        assert!(matches!(e, DiscoveryError::Invalid(_)), "{e:?}");
    }

    #[test]
    fn presets() {
        let g = preset(&url("https://accounts.google.com")).unwrap();
        assert!(g.extra_params.contains(&("access_type".into(), "offline".into())));
        assert!(g.extra_params.contains(&("prompt".into(), "consent".into())));
        let m = preset(&url("https://login.microsoftonline.com/contoso.onmicrosoft.com/")).unwrap();
        assert_eq!(m.token.as_str(), "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
        assert_eq!(m.required_scopes, vec!["offline_access".to_string()]);
        let common = preset(&url("https://login.microsoftonline.com")).unwrap();
        assert!(common.authorization.as_str().contains("/common/oauth2/v2.0/authorize"));
        let qb = preset(&url("https://appcenter.intuit.com/connect/oauth2")).unwrap();
        assert_eq!(qb.preset, Some("quickbooks"));
        assert!(preset(&url("https://auth.example.com")).is_none());
    }
}
