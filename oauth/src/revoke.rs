//! RFC 7009 token revocation. Sent directly, not through `oauth2`: its `revoke_token` refuses every revocation URL
//! that is not https, loopback included, and local providers (tests, a provider on this machine) serve http.

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::http::{read_capped, Http};
use crate::token::{authenticate, ClientCredentials, TokenError};

/// Revokes one token; `hint` is `refresh_token` or `access_token`. A 200 means revoked or already invalid.
pub async fn revoke(
    http: &Http,
    url: &Url,
    client: &ClientCredentials<'_>,
    token: &SecretString,
    hint: &str,
) -> Result<(), TokenError> {
    let mut form = vec![("token", token.expose_secret()), ("token_type_hint", hint)];
    let req = authenticate(http.client().post(url.clone()), &mut form, client);
    let response = req.form(&form).send().await.map_err(|e| TokenError::Unavailable(crate::http::describe(&e)))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let content_type = response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = read_capped(response, 64 * 1024).await.unwrap_or_default();
    match crate::token::parse_response(status, content_type.as_deref(), &body) {
        Err(e) => Err(e),
        Ok(_) => Err(TokenError::Unavailable(format!("the revocation endpoint answered HTTP {status}"))),
    }
}
