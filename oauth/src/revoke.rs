//! RFC 7009 token revocation, sent directly so that loopback http endpoints (tests, local providers) work too.

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
    let body = read_capped(response, 64 * 1024).await.unwrap_or_default();
    match crate::token::parse_response(status, &body) {
        Err(e) => Err(e),
        Ok(_) => Err(TokenError::Unavailable(format!("the revocation endpoint answered HTTP {status}"))),
    }
}
