//! The device authorization grant (RFC 8628) through `oauth2` 5's `devicecode` module: the device authorization
//! request (§3.1, §3.2), then polling the token endpoint (§3.4) at the provider's interval, waiting 5 s more after
//! each `slow_down` (§3.5, done by `oauth2`), until tokens, a refusal (`access_denied`), or expiry
//! (`expired_token`, or the code's own `expires_in` passing). Requests go through our HTTP client as the other
//! grants' do ([`crate::token`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

use oauth2::{DeviceAuthorizationUrl, Scope, StandardDeviceAuthorizationResponse};
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
