//! `Debug` for the types that hold a secret (client secret, authorization code, `state`, `nonce`, PKCE
//! verifier, tokens): they show what is safe to log and never the secret, so a `{:?}` in a log line or a panic
//! message cannot leak one.

use crate::authorize::{AuthorizationRequest, Callback};
use crate::token::ClientCredentials;

impl std::fmt::Debug for ClientCredentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials").field("id", &self.id).field("auth", &self.auth).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Callback").field("params", &names).finish_non_exhaustive()
    }
}

/// The URL is left out too: it carries `state` and `nonce`.
impl std::fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("pkce", &self.verifier.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::{ExposeSecret, SecretString};

    use crate::endpoints::ProviderEndpoints;
    use crate::token::{ClientAuth, TokenResponse};

    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        const S: &str = "s3cr3t-oauth-debug";
        let secret = SecretString::from(S);
        let endpoints = ProviderEndpoints::explicit(
            "https://p.example/authorize".parse().unwrap(),
            "https://p.example/token".parse().unwrap(),
        );
        let request = AuthorizationRequest::new(&endpoints, "client", "http://127.0.0.1:1/callback", &["openid".into()]);
        let response = TokenResponse {
            access_token: secret.clone(),
            token_type: "Bearer".into(),
            expires_in: Some(60),
            refresh_token: Some(secret.clone()),
            id_token: Some(secret.clone()),
            scope: None,
            extra: vec![],
            credentials: vec![("authed_user.access_token".into(), secret.clone())],
        };
        let shown = [
            format!("{:?}", ClientCredentials { id: "client", secret: &secret, auth: ClientAuth::Post }),
            format!("{:?}", Callback { code: secret.clone(), params: vec![("realmId".into(), "1".into())], iss: None }),
            format!("{request:?}"),
            format!("{response:?}"),
        ];
        let request_secrets =
            [request.state.expose_secret(), request.nonce.expose_secret(), request.verifier.as_ref().unwrap().expose_secret()];
        for text in &shown {
            assert!(!text.contains(S), "{text}");
            for s in request_secrets {
                assert!(!text.contains(s), "{text}");
            }
        }
        assert!(shown[0].contains("client") && shown[1].contains("realmId"), "{shown:?}");
    }
}
