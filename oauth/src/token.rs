//! Token endpoint calls (authorization code, refresh) through `oauth2` 5: it builds the requests (grant, PKCE
//! verifier, client authentication of RFC 6749 §2.3.1) and reads the answers, through our HTTP client
//! ([`Http::send`]: redirects off, capped, wiped) and our token response type ([`Wire`], lenient where providers
//! differ and strict where a mistake would hand out a bad token). No error here carries a secret: response bodies
//! are never echoed, only the provider's own `error` and `error_description`.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use oauth2::basic::{BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType};
use oauth2::{
    AccessToken, AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardRevocableToken, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use thiserror::Error;
use url::Url;

use crate::http::{Answer, BodyError, Http, SendError};
/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// HTTP Basic with the form-urlencoded id and secret. The default, and what every provider must accept.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

pub struct ClientCredentials<'a> {
    pub id: &'a str,
    pub secret: &'a SecretString,
    pub auth: ClientAuth,
}

/// A successful token response.
pub struct TokenResponse {
    pub access_token: SecretString,
    /// "Bearer" in its canonical spelling whatever case the provider used (RFC 6749 §5.1 says case-insensitive).
    pub token_type: String,
    pub expires_in: Option<i64>,
    pub refresh_token: Option<SecretString>,
    pub id_token: Option<SecretString>,
    /// `None` when the response has no `scope` (RFC 6749 §5.1: then it is the requested scope).
    pub scope: Option<Vec<String>>,
    /// Every other field with a string or number value (`instance_url`, `x_refresh_token_expires_in`, ...),
    /// nested ones under dotted keys (Slack's `team.id`).
    pub extra: Vec<(String, String)>,
    /// Fields whose values are credentials (Slack's `authed_user.access_token`, a `*_secret`): to be sealed like
    /// the access token, never kept as metadata or shown.
    pub credentials: Vec<(String, SecretString)>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("has_id_token", &self.id_token.is_some())
            .field("scope", &self.scope)
            .field("credential_fields", &self.credentials.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The provider answered with an OAuth error (RFC 6749 §5.2).
    #[error("the provider refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected { status: u16, error: String, description: Option<String> },
    /// The provider could not be reached or failed (network, timeout, 5xx, 429): worth retrying later.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// A 2xx answer that is not a usable token response.
    #[error("the provider's token response is unusable: {0}")]
    Malformed(String),
    /// A 2xx answer of the device authorization endpoint that is not a usable RFC 8628 §3.2 response.
    #[error("the provider's device authorization response is unusable: {0}")]
    MalformedDeviceAuthorization(String),
}

/// Which endpoint answered, for [`finish_any`]'s words.
#[derive(Clone, Copy)]
pub(crate) enum Endpoint {
    Token,
    /// RFC 8628 §3.1.
    DeviceAuthorization,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Token => "token endpoint",
            Endpoint::DeviceAuthorization => "device authorization endpoint",
        }
    }

    fn malformed(self, why: String) -> TokenError {
        match self {
            Endpoint::Token => TokenError::Malformed(why),
            Endpoint::DeviceAuthorization => TokenError::MalformedDeviceAuthorization(why),
        }
    }
}

impl TokenError {
    /// True when retrying cannot help: the grant or the client registration must change.
    pub fn is_permanent(&self) -> bool {
        match self {
            TokenError::Rejected { error, status, .. } => {
                !matches!(error.as_str(), "temporarily_unavailable" | "server_error" | "slow_down")
                    && *status < 500
                    && *status != 429
            }
            _ => false,
        }
    }

    /// The OAuth error code, when the provider gave one.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            TokenError::Rejected { error, .. } => Some(error),
            _ => None,
        }
    }

    /// True when the provider refused the client itself (RFC 6749 §5.2 `invalid_client`): the client registration (id, secret, authentication method) must change, not the
    /// grant; authorizing again with the same credentials would be refused the same way.
    pub fn is_client_refused(&self) -> bool {
        matches!(self, TokenError::Rejected { error, .. } if error == "invalid_client")
    }
}

/// The longest token lifetime taken as given (100 years): a longer `expires_in` is read as this, so that
/// `now + expires_in` never overflows (`1e300` used to saturate to `i64::MAX` and wrap the expiry sum).
pub const MAX_EXPIRES_IN: i64 = 100 * 365 * 24 * 3600;

/// Token responses are small; anything beyond this is refused rather than read into memory.
pub const MAX_TOKEN_RESPONSE: usize = 256 * 1024;

/// The `oauth2` client for one token endpoint. Only the token URL is set: the authorization URL is built by
/// [`crate::AuthorizationRequest`], and revocation does not go through `oauth2` (see [`crate::revoke`]).
pub(crate) type OAuthClient<HasAuthUrl = EndpointNotSet, HasTokenUrl = EndpointSet> = oauth2::Client<
    BasicErrorResponse,
    Wire,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    HasAuthUrl,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    HasTokenUrl,
>;

type Outcome = Result<Wire, RequestTokenError<SendError, BasicErrorResponse>>;

pub(crate) fn oauth_client(client: &ClientCredentials<'_>, token_url: &Url) -> OAuthClient {
    oauth2::Client::new(ClientId::new(client.id.to_owned()))
        // oauth2 keeps the secret in a plain `String` (not wiped on drop); it lives for this one request.
        .set_client_secret(ClientSecret::new(client.secret.expose_secret().to_owned()))
        .set_auth_type(match client.auth {
            ClientAuth::Basic => AuthType::BasicAuth,
            ClientAuth::Post => AuthType::RequestBody,
        })
        .set_token_uri(TokenUrl::from_url(token_url.clone()))
}

/// Extra parameters of a token request (Atlassian's `audience`, ...), added after the grant's own.
pub type ExtraParams<'a> = &'a [(String, String)];

/// The authorization-code grant (RFC 6749 §4.1.3), with the PKCE verifier when one was sent (RFC 7636 §4.5).
pub async fn exchange_code(
    http: &Http,
    token_url: &Url,
    client: &ClientCredentials<'_>,
    code: &SecretString,
    redirect_uri: &str,
    verifier: Option<&SecretString>,
) -> Result<TokenResponse, TokenError> {
    exchange_code_with(http, token_url, client, code, redirect_uri, verifier, &[]).await
}

/// [`exchange_code`] with extra token-request parameters.
pub async fn exchange_code_with(
    http: &Http,
    token_url: &Url,
    client: &ClientCredentials<'_>,
    code: &SecretString,
    redirect_uri: &str,
    verifier: Option<&SecretString>,
    extra: ExtraParams<'_>,
) -> Result<TokenResponse, TokenError> {
    let oauth = oauth_client(client, token_url);
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|_| TokenError::Malformed("the redirect URI is not a URL".into()))?;
    let mut request = oauth
        .exchange_code(AuthorizationCode::new(code.expose_secret().to_owned()))
        .set_redirect_uri(std::borrow::Cow::Owned(redirect));
    if let Some(v) = verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(v.expose_secret().to_owned()));
    }
    for (k, v) in extra {
        request = request.add_extra_param(k.clone(), v.clone());
    }
    let (send, status) = sender(http);
    let outcome = request.request_async(&send).await;
    finish(outcome, status.load(Ordering::Relaxed))
}

/// The refresh-token grant (RFC 6749 §6).
pub async fn refresh(
    http: &Http,
    token_url: &Url,
    client: &ClientCredentials<'_>,
    refresh_token: &SecretString,
) -> Result<TokenResponse, TokenError> {
    refresh_with(http, token_url, client, refresh_token, &[]).await
}

/// [`refresh`] with extra token-request parameters.
pub async fn refresh_with(
    http: &Http,
    token_url: &Url,
    client: &ClientCredentials<'_>,
    refresh_token: &SecretString,
    extra: ExtraParams<'_>,
) -> Result<TokenResponse, TokenError> {
    let oauth = oauth_client(client, token_url);
    let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
    let (send, status) = sender(http);
    let outcome = refresh_request(&oauth, &token, extra, &send).await;
    finish(outcome, status.load(Ordering::Relaxed))
}

/// The client-credentials grant (RFC 6749 §4.4): a token for the client itself, with `scopes` (space-separated,
/// §3.3; none sent when empty) and `extra` parameters (`resource` of RFC 8707, an `audience`). No refresh token
/// is expected (§4.4.3): the grant is simply made again.
pub async fn client_credentials_with(
    http: &Http,
    token_url: &Url,
    client: &ClientCredentials<'_>,
    scopes: &[String],
    extra: ExtraParams<'_>,
) -> Result<TokenResponse, TokenError> {
    let oauth = oauth_client(client, token_url);
    let mut request = oauth.exchange_client_credentials().add_scopes(scopes.iter().cloned().map(Scope::new));
    for (k, v) in extra {
        request = request.add_extra_param(k.clone(), v.clone());
    }
    let (send, status) = sender(http);
    let outcome = request.request_async(&send).await;
    finish(outcome, status.load(Ordering::Relaxed))
}

async fn refresh_request<'c, C>(oauth: &'c OAuthClient, token: &'c RefreshToken, extra: ExtraParams<'c>, send: &'c C) -> Outcome
where
    C: oauth2::AsyncHttpClient<'c, Error = SendError>,
{
    let mut request = oauth.exchange_refresh_token(token);
    for (k, v) in extra {
        request = request.add_extra_param(k.as_str(), v.as_str());
    }
    request.request_async(send).await
}

/// The HTTP client `oauth2` is given, and where it notes the provider's real status for [`finish`]. Its futures
/// own what they use (`Send` and `'static`, as a host's async calls need).
#[allow(clippy::type_complexity)]
pub(crate) fn sender(
    http: &Http,
) -> (impl Fn(oauth2::HttpRequest) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, SendError>> + Send>>, Arc<AtomicU16>) {
    let status = Arc::new(AtomicU16::new(0));
    let (http, noted) = (http.clone(), status.clone());
    let send = move |r| -> std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>> {
        Box::pin(through(http.clone(), noted.clone(), r))
    };
    (send, status)
}

/// One token endpoint call as `oauth2` makes it: sent by our client, the answer reshaped (see [`crate::answer`])
/// and its real status noted for [`finish`].
async fn through(http: Http, status: Arc<AtomicU16>, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, SendError> {
    let answer = http.send(request, MAX_TOKEN_RESPONSE).await?;
    status.store(answer.status, Ordering::Relaxed);
    let reshaped = crate::answer::token_answer(answer.status, answer.content_type.as_deref(), answer.body);
    Ok(Answer::into_library(reshaped.status, reshaped.body))
}

/// Parses a token endpoint's answer (status, `Content-Type`, body) exactly as a refresh reads it: reshaped, then
/// through `oauth2`'s response handling and [`Wire`]. No request is sent. For the fuzz target and tests.
pub fn parse_response(status: u16, content_type: Option<&str>, body: &[u8]) -> Result<TokenResponse, TokenError> {
    let secret = SecretString::from("-");
    let client = ClientCredentials { id: "-", secret: &secret, auth: ClientAuth::Post };
    let oauth = oauth_client(&client, &Url::parse("http://127.0.0.1/token").expect("a URL"));
    let token = RefreshToken::new("-".into());
    let body = zeroize::Zeroizing::new(body.to_vec());
    let reshaped = crate::answer::token_answer(status, content_type, body);
    let canned = |_| std::future::ready(Ok::<_, SendError>(Answer::into_library(reshaped.status, reshaped.body.clone())));
    let mut future = std::pin::pin!(refresh_request(&oauth, &token, &[], &canned));
    // Nothing in it waits: the canned answer is ready, so one poll finishes it.
    let std::task::Poll::Ready(outcome) = future.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    else {
        unreachable!("a canned answer needs no waiting")
    };
    finish(outcome, status)
}

use std::future::Future as _;

/// `oauth2`'s outcome as a [`TokenError`], `status` being the provider's own. `RequestTokenError::Parse` carries
/// the raw body, which may hold tokens: it is wiped here and never shown.
fn finish(outcome: Outcome, status: u16) -> Result<TokenResponse, TokenError> {
    finish_any(outcome, status, Endpoint::Token).map(Wire::into_response)
}

/// [`finish`] for any answer `oauth2` reads (a token response, a device authorization response) and any of its
/// error-code enums (RFC 6749 §5.2's, RFC 8628 §3.5's).
pub(crate) fn finish_any<R, T>(
    outcome: Result<R, RequestTokenError<SendError, oauth2::StandardErrorResponse<T>>>,
    status: u16,
    endpoint: Endpoint,
) -> Result<R, TokenError>
where
    T: oauth2::ErrorResponseType + AsRef<str> + std::fmt::Display,
{
    let success = (200..300).contains(&status);
    let no_oauth_error = || match status {
        // RFC 6749 §5.2: a failed client authentication "MAY" be answered 401; some providers send no OAuth body
        // with it. Retrying with the same credentials gets the same answer, so it is the client refused.
        401 => TokenError::Rejected {
            status,
            error: "invalid_client".to_owned(),
            description: Some(format!("the {} answered HTTP 401 without an OAuth error", endpoint.name())),
        },
        _ => TokenError::Unavailable(format!("the {} answered HTTP {status} without an OAuth error", endpoint.name())),
    };
    match outcome {
        Ok(answer) => Ok(answer),
        Err(RequestTokenError::ServerResponse(e)) => Err(TokenError::Rejected {
            status,
            error: crate::shown(e.error().as_ref(), 100),
            description: e.error_description().map(|d| crate::shown(d, 300)),
        }),
        Err(RequestTokenError::Request(SendError::Unreachable(why))) => Err(TokenError::Unavailable(why)),
        Err(RequestTokenError::Request(SendError::Body { status, error })) => match error {
            // A success too large to be a token response is a broken provider, not a passing failure.
            BodyError::TooLarge(_) if (200..300).contains(&status) => Err(endpoint.malformed(error.to_string())),
            _ => Err(TokenError::Unavailable(error.to_string())),
        },
        Err(RequestTokenError::Parse(e, body)) => {
            let body = zeroize::Zeroizing::new(body);
            if !success {
                return Err(no_oauth_error());
            }
            let object = serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() && body.trim_ascii_start().starts_with(b"{");
            Err(endpoint.malformed(if !object {
                format!("HTTP {status} with a body that is not a JSON object ({} bytes)", body.len())
            } else if e.inner().classify() == serde_json::error::Category::Data {
                // Our own reasons from `Wire::deserialize`: they name a field, never a value.
                crate::shown(&e.inner().to_string(), 200)
            } else {
                format!("the {} answer could not be read", endpoint.name())
            }))
        }
        Err(RequestTokenError::Other(why)) if success => Err(endpoint.malformed(crate::shown(&why, 200))),
        Err(RequestTokenError::Other(_)) => Err(no_oauth_error()),
    }
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64-encoded. Used only by
/// [`crate::revoke`], which sends its request itself.
pub fn basic_authorization(id: &str, secret: &str) -> SecretString {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let joined = zeroize::Zeroizing::new(format!("{}:{}", enc(id), enc(secret)));
    SecretString::from(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(joined.as_bytes())))
}

/// Adds the client's credentials to a request to the revocation endpoint: a Basic header, or two form fields.
pub(crate) fn authenticate<'a>(
    req: reqwest::RequestBuilder,
    form: &mut Vec<(&'a str, &'a str)>,
    client: &ClientCredentials<'a>,
) -> reqwest::RequestBuilder {
    match client.auth {
        ClientAuth::Basic => {
            let auth = basic_authorization(client.id, client.secret.expose_secret());
            req.header("authorization", auth.expose_secret())
        }
        ClientAuth::Post => {
            form.push(("client_id", client.id));
            form.push(("client_secret", client.secret.expose_secret()));
            req
        }
    }
}

/// A token response as `oauth2` reads it (its `TokenResponse` trait), parsed by our rules rather than its strict
/// ones: `expires_in` as a string, `0` meaning no expiry, a lower-case or missing `token_type`, comma-separated
/// scopes, nested metadata.
#[derive(Debug)]
pub struct Wire {
    access_token: AccessToken,
    refresh_token: Option<RefreshToken>,
    token_type: BasicTokenType,
    scopes: Option<Vec<Scope>>,
    rest: TokenResponse,
}

impl Wire {
    pub(crate) fn into_response(self) -> TokenResponse {
        TokenResponse {
            access_token: SecretString::from(self.access_token.into_secret()),
            refresh_token: self.refresh_token.map(|r| SecretString::from(r.into_secret())),
            ..self.rest
        }
    }
}

impl oauth2::TokenResponse for Wire {
    type TokenType = BasicTokenType;
    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<std::time::Duration> {
        self.rest.expires_in.map(|s| std::time::Duration::from_secs(s as u64))
    }
    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

/// Required by `oauth2`'s trait bounds, never used: a token response is not written anywhere.
impl Serialize for Wire {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("a token response is never serialised"))
    }
}

impl<'de> Deserialize<'de> for Wire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = serde_json::Map::<String, Value>::deserialize(d)?;
        read_fields(json).map_err(serde::de::Error::custom)
    }
}

/// HTTP authentication schemes a token type can be sent as (RFC 6750 Bearer, RFC 9449 DPoP). Any other
/// `token_type` (Slack's `bot`, `user`) is not a scheme an API accepts: the token is sent as Bearer and the
/// provider's word kept as `provider_token_type` metadata.
const SCHEMES: [&str; 2] = ["Bearer", "DPoP"];

/// Field names (dotted for nested ones) whose values are credentials: a name ending in `token`, or holding
/// `secret` or `password`, or `key`/`*_key` (Slack's `authed_user.access_token`). Never kept as plain metadata.
pub fn is_credential(key: &str) -> bool {
    let leaf = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    leaf.ends_with("token") || leaf.contains("secret") || leaf.contains("password") || leaf == "key" || leaf.ends_with("_key")
}

/// At most this many metadata fields are kept from one response.
const MAX_EXTRA: usize = 64;

fn read_fields(mut json: serde_json::Map<String, Value>) -> Result<Wire, String> {
    let mut take_string = |field: &str| -> Result<Option<String>, String> {
        match json.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("`{field}` is not a string")),
        }
    };
    let access_token = take_string("access_token")?.ok_or("no `access_token`")?;
    let refresh_token = take_string("refresh_token")?;
    let id_token = take_string("id_token")?;
    let mut extra = Vec::new();
    let token_type = match json.remove("token_type") {
        // Some providers (and old Salesforce) omit it; Bearer is the only type in use.
        None | Some(Value::Null) => "Bearer".to_owned(),
        Some(Value::String(t)) if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) => {
            match SCHEMES.iter().find(|s| s.eq_ignore_ascii_case(&t)) {
                Some(scheme) => (*scheme).to_owned(),
                None => {
                    extra.push(("provider_token_type".to_owned(), t));
                    "Bearer".to_owned()
                }
            }
        }
        Some(_) => return Err("`token_type` is not a single word".into()),
    };
    const NOT_SECONDS: &str = "`expires_in` is not a number of seconds";
    let expires_in = match json.remove("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_f64().map(|f| f as i64).ok_or(NOT_SECONDS)?),
        // Some providers send it as a string.
        Some(Value::String(s)) => Some(s.trim().parse::<i64>().map_err(|_| NOT_SECONDS)?),
        Some(_) => return Err(NOT_SECONDS.into()),
    };
    // Negative: refused, not read as "already expired" (a token dead on arrival would be refreshed on every call).
    if expires_in.is_some_and(|e| e < 0) {
        return Err("`expires_in` is negative".into());
    }
    // 0: some servers mean "does not expire"; read as "expiring now", every use would refresh it.
    let expires_in = expires_in.filter(|e| *e > 0).map(|e| e.min(MAX_EXPIRES_IN));
    let scope: Option<Vec<String>> = match json.remove("scope") {
        None | Some(Value::Null) => None,
        // Space-separated per RFC 6749; Slack and a few others use commas.
        Some(Value::String(s)) => Some(s.split([' ', ',']).filter(|s| !s.is_empty()).map(String::from).collect()),
        Some(Value::Array(a)) => Some(a.iter().filter_map(|v| v.as_str()).filter(|s| !s.is_empty() && !s.contains([' ', ','])).map(String::from).collect()),
        Some(_) => return Err("`scope` is neither a string nor a list".into()),
    };
    let mut credentials = Vec::new();
    for (k, v) in json {
        flatten(k, v, &mut Fields { extra: &mut extra, credentials: &mut credentials }, 0);
    }
    extra.truncate(MAX_EXTRA);
    Ok(Wire {
        access_token: AccessToken::new(access_token),
        refresh_token: refresh_token.map(RefreshToken::new),
        token_type: BasicTokenType::Bearer,
        scopes: scope.as_ref().map(|s| s.iter().cloned().map(Scope::new).collect()),
        rest: TokenResponse {
            access_token: SecretString::from(""),
            token_type,
            expires_in,
            refresh_token: None,
            id_token: id_token.map(SecretString::from),
            scope,
            extra,
            credentials,
        },
    })
}

/// Where [`flatten`] puts what it reads.
struct Fields<'a> {
    extra: &'a mut Vec<(String, String)>,
    credentials: &'a mut Vec<(String, SecretString)>,
}

/// Nested objects become dotted keys (Slack's `team.id`), two levels deep; lists are left out. A credential's
/// string value goes to `credentials`, never to `extra`.
fn flatten(key: String, value: Value, out: &mut Fields<'_>, depth: usize) {
    if out.extra.len() + out.credentials.len() >= MAX_EXTRA {
        return;
    }
    if is_credential(&key) {
        if let Value::String(s) = value {
            out.credentials.push((key, SecretString::from(s)));
        }
        return;
    }
    match value {
        Value::String(s) => out.extra.push((key, s)),
        Value::Number(n) => out.extra.push((key, n.to_string())),
        Value::Bool(b) => out.extra.push((key, b.to_string())),
        Value::Object(map) if depth < 2 => {
            for (k, v) in map {
                flatten(format!("{key}.{k}"), v, out, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");

    #[test]
    fn basic_auth_urlencodes_before_base64() {
        use base64::Engine;
        let header = basic_authorization("my client", "p@ss+w/rd=:%&?~ x");
        let b64 = header.expose_secret().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "my+client:p%40ss%2Bw%2Frd%3D%3A%25%26%3F%7E+x");
    }

    #[test]
    fn lenient_where_providers_differ() {
        let r = parse_response(200, JSON,
            br#"{"access_token":"a","token_type":"bearer","expires_in":"3599","scope":"x,y","instance_url":"https://na1.example","x_refresh_token_expires_in":8726400}"#,
        )
        .unwrap();
        assert_eq!(r.token_type, "Bearer");
        assert_eq!(r.expires_in, Some(3599));
        assert_eq!(r.scope, Some(vec!["x".into(), "y".into()]));
        assert!(r.extra.contains(&("instance_url".into(), "https://na1.example".into())));
        assert!(r.extra.contains(&("x_refresh_token_expires_in".into(), "8726400".into())));
        let r = parse_response(200, JSON, br#"{"access_token":"a"}"#).unwrap();
        assert_eq!((r.token_type.as_str(), r.expires_in, r.scope), ("Bearer", None, None));
    }

    #[test]
    fn strict_where_a_mistake_would_hand_out_a_bad_token() {
        let cases: [(&[u8], &str); 6] = [
            (b"<html>", "not a JSON object"),
            (br#"{"token_type":"Bearer"}"#, "no `access_token`"),
            (br#"{"access_token":5}"#, "`access_token` is not a string"),
            (br#"{"access_token":"a","expires_in":-1}"#, "negative"),
            (br#"{"access_token":"a","expires_in":"soon"}"#, "not a number"),
            (br#"{"access_token":"a","token_type":"Bearer x"}"#, "single word"),
        ];
        for (body, msg) in cases {
            let e = parse_response(200, JSON, body).unwrap_err();
            assert!(e.to_string().contains(msg), "{e}");
        }
    }

    /// Found by review (the fuzz runs never built such a number): `now + expires_in` overflowed for `1e300`
    /// (saturated to `i64::MAX`) or `"9223372036854775807"`.
    #[test]
    fn a_huge_expires_in_is_capped() {
        for body in [
            br#"{"access_token":"a","expires_in":1e300}"#.as_slice(),
            br#"{"access_token":"a","expires_in":"9223372036854775807"}"#,
            br#"{"access_token":"a","expires_in":18446744073709551615}"#,
        ] {
            let e = parse_response(200, JSON, body).unwrap().expires_in.unwrap();
            assert_eq!(e, MAX_EXPIRES_IN);
            assert!(i64::MAX.checked_sub(e).unwrap() > 4_102_444_800, "now + expires_in fits for centuries");
        }
        assert_eq!(parse_response(200, JSON, br#"{"access_token":"a","expires_in":3599.9}"#).unwrap().expires_in, Some(3599));
    }

    /// Found by the `token_response` fuzz target: a provider's `error_description` reached the terminal with its
    /// control characters (an escape sequence could rewrite what the user sees).
    #[test]
    fn provider_texts_lose_their_control_characters() {
        let body = br#"{"error":"invalid_grant\u001b[2J","error_description":"Token expired \u007f\u001b]0;x\u0007"}"#;
        let e = parse_response(400, JSON, body).unwrap_err();
        let shown = e.to_string();
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.contains("invalid_grant\\u{1b}[2J"), "{shown}");
        let long = format!("{{\"error\":\"x\",\"error_description\":\"{}\"}}", "\\n".repeat(400));
        let TokenError::Rejected { description, .. } = parse_response(400, JSON, long.as_bytes()).unwrap_err() else { panic!() };
        assert_eq!(description.unwrap().chars().count(), 300);
    }

    #[test]
    fn errors_are_classified() {
        let e = parse_response(400, JSON, br#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#)
            .unwrap_err();
        assert!(e.is_permanent());
        assert_eq!(e.oauth_error(), Some("invalid_grant"));
        assert!(!parse_response(503, JSON, b"busy").unwrap_err().is_permanent());
        assert!(!parse_response(400, JSON, br#"{"error":"temporarily_unavailable"}"#).unwrap_err().is_permanent());
        assert!(!parse_response(429, JSON, br#"{"error":"slow_down"}"#).unwrap_err().is_permanent());
    }

    #[test]
    fn no_secret_in_messages() {
        let e = parse_response(200, JSON, br#"{"access_token":"a","refresh_token":7}"#).unwrap_err();
        assert!(!e.to_string().contains('7'));
        let e = parse_response(200, JSON, br#"{"access_token":["SECRET"]}"#).unwrap_err();
        assert!(!e.to_string().contains("SECRET"));
    }

    /// Fault kinds 1, 3, 4, 5 and 9 of issue 12, as the parser sees them (the through-the-network tests are in
    /// `tests/hostile_provider.rs`).
    #[test]
    fn answers_read_the_way_providers_mean_them() {
        // 1: a refusal in a 200, and one whose `error` is an object, are refusals.
        let e = parse_response(200, JSON, br#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}"#).unwrap_err();
        assert!(e.is_permanent() && e.to_string().contains("bad_verification_code (The code passed is incorrect or expired.)"), "{e}");
        let e = parse_response(400, JSON, br#"{"error":{"message":"Invalid verification code","type":"OAuthException","code":100}}"#).unwrap_err();
        assert!(e.is_permanent() && e.to_string().contains("OAuthException (Invalid verification code)"), "{e}");
        // 3: a form-encoded body, whatever it is labelled.
        for ct in ["application/x-www-form-urlencoded", "text/plain"] {
            let r = parse_response(200, Some(ct), b"access_token=gho_x&scope=repo,gist&token_type=bearer").unwrap();
            assert_eq!((r.access_token.expose_secret(), r.token_type.as_str()), ("gho_x", "Bearer"));
            assert_eq!(r.scope, Some(vec!["repo".into(), "gist".into()]));
        }
        // 4: `expires_in: 0` does not expire.
        assert_eq!(parse_response(200, JSON, br#"{"access_token":"a","expires_in":0}"#).unwrap().expires_in, None);
        // 5: a token type that is no HTTP scheme is sent as Bearer; the provider's word stays readable.
        let r = parse_response(200, JSON, br#"{"access_token":"xoxb-1","token_type":"bot"}"#).unwrap();
        assert_eq!(r.token_type, "Bearer");
        assert!(r.extra.contains(&("provider_token_type".into(), "bot".into())), "{:?}", r.extra);
        assert_eq!(parse_response(200, JSON, br#"{"access_token":"a","token_type":"dpop"}"#).unwrap().token_type, "DPoP");
        // 9: nested values are kept under dotted keys; credentials among them are not kept as metadata.
        let r = parse_response(
            200,
            JSON,
            br#"{"access_token":"xoxb-1","team":{"id":"T1","name":"Acme"},"authed_user":{"id":"U1","access_token":"xoxp-SECRET"},"signing_secret":"s-SECRET"}"#,
        )
        .unwrap();
        assert!(r.extra.contains(&("team.id".into(), "T1".into())) && r.extra.contains(&("authed_user.id".into(), "U1".into())), "{:?}", r.extra);
        assert!(!format!("{:?}", r.extra).contains("SECRET"), "{:?}", r.extra);
        // ... they are kept apart, to be sealed.
        let sealed: Vec<_> = r.credentials.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect();
        assert_eq!(sealed, [("authed_user.access_token", "xoxp-SECRET"), ("signing_secret", "s-SECRET")]);
        assert!(!format!("{r:?}").contains("SECRET"), "{r:?}");
    }
}
