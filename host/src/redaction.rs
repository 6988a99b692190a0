//! The host's secret-bearing type, `IssuedToken`, formats without its tokens.

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use crate::broker::IssuedToken;

    #[test]
    fn issued_token_debug_never_shows_a_token() {
        let token = IssuedToken {
            access_token: SecretString::from("at-host-debug"),
            token_type: "Bearer".into(),
            expires_at: Some(1),
            refresh_token: Some(SecretString::from("rt-host-debug")),
            scopes: vec!["a".into()],
            metadata: vec![("realmId".into(), "9".into())],
            expires_at_text: None,
            refreshed_at: None,
        };
        let shown = format!("{token:?}");
        assert!(!shown.contains("at-host-debug") && !shown.contains("rt-host-debug"), "{shown}");
        assert!(shown.contains("Bearer"), "{shown}");
    }
}
