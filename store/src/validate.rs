//! The rules a connection's name and URLs must follow, checked before anything is stored.

use thiserror::Error;
use url::Url;

/// Longest accepted connection name: a DNS label, so names fit in hostnames and file names.
pub const MAX_NAME_LEN: usize = 63;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("connection name is empty: use lowercase letters, digits and single hyphens, e.g. `google-drive`")]
    Empty,
    #[error(
        "connection name is {0} characters long; at most {MAX_NAME_LEN} are allowed"
    )]
    TooLong(usize),
    #[error(
        "connection name `{name}` has {what}: use lowercase letters, digits and single hyphens, e.g. `google-drive`"
    )]
    BadCharacter { name: String, what: String },
    #[error(
        "connection name `{0}` starts or ends with a hyphen or has two in a row: use single hyphens between letters or digits"
    )]
    BadHyphen(String),
}

/// Checks a connection name: lowercase ASCII letters, digits and single inner hyphens, 1 to 63 characters.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_LEN {
        return Err(NameError::TooLong(chars));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        let what = if c.is_ascii_uppercase() {
            format!("an uppercase letter `{c}`")
        } else if c.is_control() {
            format!("a control character (U+{:04X})", c as u32)
        } else {
            format!("the character `{}`", c.escape_default())
        };
        return Err(NameError::BadCharacter { name: printable(name), what });
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err(NameError::BadHyphen(name.to_owned()));
    }
    Ok(())
}

/// A name as it may be shown in a message: control characters escaped, cut short when long.
pub fn printable(name: &str) -> String {
    let escaped: String = name.chars().flat_map(char::escape_default).collect();
    if escaped.chars().count() > 80 {
        let cut: String = escaped.chars().take(77).collect();
        format!("{cut}...")
    } else {
        escaped
    }
}

/// A library's error (age's, serde's) as one line of a message: whitespace runs become one space, control
/// characters are escaped (a damaged record's bytes can end up in serde's text), at most `max_chars` characters.
pub fn one_line(e: &impl std::fmt::Display, max_chars: usize) -> String {
    let text = e.to_string();
    let mut out = String::new();
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(|c| {
            let (escaped, plain) = if c.is_control() { (Some(c.escape_default()), None) } else { (None, Some(c)) };
            escaped.into_iter().flatten().chain(plain)
        }));
    }
    out.chars().take(max_chars).collect()
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("{flag} `{value}` is not a URL ({reason}): give an absolute URL such as https://accounts.example.com")]
    Unparsable { flag: &'static str, value: String, reason: String },
    #[error(
        "{flag} `{value}` uses `{scheme}`: only https is accepted (http only for 127.0.0.1, ::1 and localhost)"
    )]
    Scheme { flag: &'static str, value: String, scheme: String },
    #[error(
        "{flag} `{value}` uses plain http to a host that is not loopback: use https (http is only accepted for 127.0.0.1, ::1 and localhost)"
    )]
    InsecureHttp { flag: &'static str, value: String },
    #[error("{flag} `{value}` carries a user name or password: put credentials in --client-id / --client-secret instead")]
    Credentials { flag: &'static str, value: String },
}

/// True for hosts that never leave this machine, where plain http cannot be observed by others.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Parses a provider or endpoint URL given for `flag`: absolute, https (or http on loopback), no credentials.
pub fn validate_url(flag: &'static str, value: &str) -> Result<Url, UrlError> {
    let shown = printable(value);
    let url = Url::parse(value).map_err(|e| UrlError::Unparsable {
        flag,
        value: shown.clone(),
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&url) => {}
        "http" => return Err(UrlError::InsecureHttp { flag, value: shown }),
        other => {
            return Err(UrlError::Scheme { flag, value: shown, scheme: printable(other) });
        }
    }
    if url.host().is_none() {
        return Err(UrlError::Unparsable { flag, value: shown, reason: "no host".into() });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials { flag, value: shown });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("google-drive").is_ok());
        assert!(validate_name("a").is_ok());
        assert!(validate_name(&"a".repeat(63)).is_ok());
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(validate_name(&"a".repeat(64)), Err(NameError::TooLong(64)));
        assert!(matches!(validate_name("Google"), Err(NameError::BadCharacter { .. })));
        assert!(matches!(validate_name("a_b"), Err(NameError::BadCharacter { .. })));
        assert!(matches!(validate_name("a\nb"), Err(NameError::BadCharacter { .. })));
        assert!(matches!(validate_name("é"), Err(NameError::BadCharacter { .. })));
        assert_eq!(validate_name("-a"), Err(NameError::BadHyphen("-a".into())));
        assert_eq!(validate_name("a-"), Err(NameError::BadHyphen("a-".into())));
        assert_eq!(validate_name("a--b"), Err(NameError::BadHyphen("a--b".into())));
    }

    #[test]
    fn control_characters_are_escaped_in_messages() {
        let msg = validate_name("a\u{1b}[31m").unwrap_err().to_string();
        assert!(!msg.contains('\u{1b}'), "{msg}");
        assert!(msg.contains("U+001B"), "{msg}");
    }

    /// Found by the `validate` fuzz target: the scheme was repeated in full, so a long one made a message of
    /// any length (the value beside it was already cut short).
    #[test]
    fn a_long_scheme_is_cut_short_in_the_message() {
        let url = format!("{}://x.example", "h".repeat(5000));
        let e = validate_url("--provider-url", &url).unwrap_err();
        assert!(matches!(e, UrlError::Scheme { .. }), "{e:?}");
        assert!(e.to_string().chars().count() < 400, "{e}");
    }

    #[test]
    fn urls() {
        assert!(validate_url("--provider-url", "https://accounts.google.com").is_ok());
        assert!(validate_url("--provider-url", "http://127.0.0.1:9000/x").is_ok());
        assert!(validate_url("--provider-url", "http://[::1]:9000/").is_ok());
        assert!(validate_url("--provider-url", "http://localhost/").is_ok());
        assert!(matches!(
            validate_url("--provider-url", "http://example.com"),
            Err(UrlError::InsecureHttp { .. })
        ));
        assert!(matches!(
            validate_url("--provider-url", "ftp://example.com"),
            Err(UrlError::Scheme { .. })
        ));
        assert!(matches!(
            validate_url("--provider-url", "example.com"),
            Err(UrlError::Unparsable { .. })
        ));
        assert!(matches!(
            validate_url("--provider-url", "https://u:p@example.com"),
            Err(UrlError::Credentials { .. })
        ));
    }
}
