//! The device authorization grant (RFC 8628) through `oauth2` 5's `devicecode` module: the device authorization
//! request (§3.1, §3.2), then polling the token endpoint (§3.4) at the provider's interval, waiting 5 s more after
//! each `slow_down` (§3.5, done by `oauth2`), until tokens, a refusal (`access_denied`), or expiry
//! (`expired_token`, or the code's own `expires_in` passing). Requests go through our HTTP client as the other
//! grants' do ([`crate::token`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

use oauth2::{DeviceAuthorizationUrl, Scope, StandardDeviceAuthorizationResponse};
use std::future::Future as _;

use url::Url;

use crate::token::{finish_any, oauth_client, Endpoint, sender, ClientCredentials, ExtraParams, TokenError, TokenResponse};
use crate::Http;

/// The shortest wait between polls: a provider's `interval` of 0 would otherwise have us poll without pause
/// (RFC 8628 §3.2 gives no lower bound; hundreds of requests a second against a loopback provider).
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// What the user is shown (RFC 8628 §3.2), and what polling needs.
pub struct DeviceAuthorization {
    /// Where the user enters the code (`verification_uri`; Google's `verification_url` is read too).
    pub verification_uri: String,
    /// The same with the code in it, for a link or a QR code (`verification_uri_complete`), when given.
    pub verification_uri_complete: Option<String>,
    /// The code the user types (`user_code`): short-lived, and useless without the device code, which stays here.
    pub user_code: String,
    /// How long the codes live (`expires_in`).
    pub expires_in: Duration,
    /// The first polling interval (`interval`, 5 s when absent, at least [`MIN_INTERVAL`]).
    pub interval: Duration,
    response: StandardDeviceAuthorizationResponse,
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl DeviceAuthorization {
    /// The device code (§3.2), for a server that keeps it between the polls of a remote client
    /// ([`poll_once`]); it never leaves that server.
    pub fn device_code(&self) -> secrecy::SecretString {
        secrecy::SecretString::from(self.response.device_code().secret().clone())
    }
}

/// What one token request of the device grant found (RFC 8628 §3.5).
pub enum Polled {
    /// The user approved: the tokens.
    Tokens(TokenResponse),
    /// `authorization_pending` (the interval unchanged) or `slow_down` (5 s more): ask again after `interval`.
    Pending { interval: Duration },
}

/// ONE token request (§3.4) for `device_code`, polled at `interval` so far: for a server polling on behalf of a
/// client that comes back at the interval, rather than [`poll`]'s loop. It goes through `oauth2`'s own polling,
/// stopped at its first wait: the interval `oauth2` asks to wait tells `authorization_pending` (unchanged) from
/// `slow_down` (5 s more); `access_denied`, `expired_token` and other failures are errors as [`poll`]'s.
pub async fn poll_once(
    http: &Http,
    token_url: &Url,
    client: &ClientCredentials<'_>,
    device_code: &secrecy::SecretString,
    interval: Duration,
    extra: ExtraParams<'_>,
) -> Result<Polled, TokenError> {
    use secrecy::ExposeSecret;
    // `oauth2` polls from its own device authorization response; only the device code and interval matter here
    // (the expiry is the caller's to keep: set far enough for `oauth2` never to stop first).
    let response: StandardDeviceAuthorizationResponse = serde_json::from_value(serde_json::json!({
        "device_code": device_code.expose_secret(),
        "user_code": "-",
        "verification_uri": "http://127.0.0.1/",
        "expires_in": 86_400,
        "interval": interval.as_secs(),
    }))
    .map_err(|_| TokenError::Unavailable("the stored device code could not be read".into()))?;
    let oauth = oauth_client(client, token_url);
    let (send, status) = sender(http);
    let mut request = oauth.exchange_device_access_token(&response);
    for (k, v) in extra {
        request = request.add_extra_param(k.clone(), v.clone());
    }
    let asked = std::sync::Arc::new(std::sync::Mutex::new(None));
    let noted = asked.clone();
    // Called by `oauth2` after a pending or slow_down answer: noted, and never finished (the poll ends there).
    let sleep = move |wait: Duration| {
        *noted.lock().expect("not poisoned") = Some(wait);
        std::future::pending::<()>()
    };
    let mut polling = std::pin::pin!(request.request_async(&send, sleep, Some(Duration::from_secs(86_400))));
    let outcome = std::future::poll_fn(|cx| match polling.as_mut().poll(cx) {
        std::task::Poll::Ready(outcome) => std::task::Poll::Ready(Ok(outcome)),
        std::task::Poll::Pending => match *asked.lock().expect("not poisoned") {
            Some(wait) => std::task::Poll::Ready(Err(wait)),
            None => std::task::Poll::Pending,
        },
    })
    .await;
    match outcome {
        Ok(outcome) => finish_any(outcome, status.load(Ordering::Relaxed), Endpoint::Token)
            .map(|wire| Polled::Tokens(wire.into_response())),
        // `oauth2` retries a request that got no answer at all, after a backoff: no status was noted.
        Err(_) if status.load(Ordering::Relaxed) == 0 => {
            Err(TokenError::Unavailable("the token endpoint could not be reached".into()))
        }
        Err(wait) => Ok(Polled::Pending { interval: wait.max(MIN_INTERVAL) }),
    }
}

/// The device authorization request (RFC 8628 §3.1) for `scopes`, with the client's credentials as at the token
/// endpoint. Errors as [`crate::token`]'s (a refused client, an unknown scope: `Rejected`).
pub async fn start(
    http: &Http,
    device_url: &Url,
    token_url: &Url,
    client: &ClientCredentials<'_>,
    scopes: &[String],
) -> Result<DeviceAuthorization, TokenError> {
    let oauth = oauth_client(client, token_url).set_device_authorization_url(DeviceAuthorizationUrl::from_url(device_url.clone()));
    let (send, status) = sender(http);
    let outcome = oauth
        .exchange_device_code()
        .add_scopes(scopes.iter().cloned().map(Scope::new))
        .request_async::<_, oauth2::EmptyExtraDeviceAuthorizationFields>(&send)
        .await;
    let response = finish_any(outcome, status.load(Ordering::Relaxed), Endpoint::DeviceAuthorization)?;
    Ok(DeviceAuthorization {
        verification_uri: crate::shown(response.verification_uri().as_str(), 500),
        verification_uri_complete: response.verification_uri_complete().map(|u| crate::shown(u.secret(), 500)),
        user_code: crate::shown(response.user_code().secret(), 100),
        expires_in: response.expires_in(),
        interval: response.interval().max(MIN_INTERVAL),
        response,
    })
}

/// Polls the token endpoint (RFC 8628 §3.4) until the user approves (tokens), denies (`access_denied`), the code
/// expires (`expired_token`: from the provider, or once `expires_in` or `timeout`, whichever is first, has passed),
/// or the provider fails otherwise. `extra` token parameters go with every poll.
pub async fn poll(
    http: &Http,
    token_url: &Url,
    client: &ClientCredentials<'_>,
    authorization: &DeviceAuthorization,
    timeout: Duration,
    extra: ExtraParams<'_>,
) -> Result<TokenResponse, TokenError> {
    let oauth = oauth_client(client, token_url);
    let (send, status) = sender(http);
    let mut request = oauth.exchange_device_access_token(&authorization.response);
    for (k, v) in extra {
        request = request.add_extra_param(k.clone(), v.clone());
    }
    let limit = timeout.min(authorization.expires_in);
    // `oauth2` checks its deadline only before each poll, after sleeping the whole interval (which `slow_down`
    // lengthens): bounded here too, so that the limit holds however long the interval.
    let sleep = |interval: Duration| tokio::time::sleep(interval.max(MIN_INTERVAL));
    match tokio::time::timeout(limit, request.request_async(&send, sleep, Some(limit))).await {
        Ok(outcome) => finish_any(outcome, status.load(Ordering::Relaxed), Endpoint::Token).map(crate::token::Wire::into_response),
        Err(_) => Err(TokenError::Rejected {
            status: 400,
            error: "expired_token".into(),
            description: Some("the device code expired, or the wait for the approval reached its limit".into()),
        }),
    }
}
