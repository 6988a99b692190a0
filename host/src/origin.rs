//! Which origins a connection's token is attached to (`--bind CONNECTION=https://api.example.com`).
//!
//! Matching is exact on scheme, host and port: a binding never widens to subdomains, another port or plain
//! http, so a token can only travel to the origin the operator named. Plain http is accepted only for loopback
//! addresses, where nothing crosses a network.

use std::fmt;
use std::net::IpAddr;

use thiserror::Error;

/// `scheme://host:port`, normalised (lower case, default port filled in, IPv6 without brackets).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    https: bool,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of an outgoing request's URI, if it has a scheme this host sends (http or https).
    pub fn of_uri(uri: &http::Uri) -> Option<Self> {
        let https = match uri.scheme_str()? {
            s if s.eq_ignore_ascii_case("https") => true,
            s if s.eq_ignore_ascii_case("http") => false,
            _ => return None,
        };
        let host = normalise_host(uri.host()?);
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Some(Self { https, host, port })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match (self.https, self.port) {
            (true, 443) | (false, 80) => write!(f, "{scheme}://{host}"),
            _ => write!(f, "{scheme}://{host}:{}", self.port),
        }
    }
}

fn normalise_host(host: &str) -> String {
    host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase()
}

/// One `--bind` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginBinding {
    pub connection: String,
    pub origin: Origin,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BindingError {
    #[error("`{0}` is not CONNECTION=ORIGIN; write e.g. --bind google=https://www.googleapis.com")]
    Shape(String),
    #[error("`{value}`: {reason}")]
    Origin { value: String, reason: String },
    #[error(
        "`{0}` binds a connection to plain http on a host that is not loopback, which would send its token in the \
         clear: use https (http is accepted only for 127.0.0.1, ::1 and localhost)"
    )]
    PlainHttp(String),
    #[error(
        "origin {origin} is bound to both `{first}` and `{second}`: a request can carry only one credential, \
         bind each origin once"
    )]
    Ambiguous { origin: Origin, first: String, second: String },
}

impl std::str::FromStr for OriginBinding {
    type Err = BindingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (connection, origin) = s.split_once('=').ok_or_else(|| BindingError::Shape(s.to_owned()))?;
        let (connection, origin) = (connection.trim(), origin.trim());
        if connection.is_empty() || origin.is_empty() {
            return Err(BindingError::Shape(s.to_owned()));
        }
        let bad = |reason: &str| BindingError::Origin { value: origin.to_owned(), reason: reason.to_owned() };
        let url = url::Url::parse(origin).map_err(|e| bad(&format!("not a URL ({e}); give an origin such as https://api.example.com")))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => return Err(bad(&format!("scheme `{other}` is not http or https"))),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("an origin carries no user name or password"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "an origin is scheme://host[:port] with no path, query or fragment: the binding covers every path of it",
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(bad("it names no host")),
        };
        let port = url.port_or_known_default().unwrap_or(if https { 443 } else { 80 });
        let origin = Origin { https, host, port };
        if !https && !origin.is_loopback() {
            return Err(BindingError::PlainHttp(s.to_owned()));
        }
        Ok(Self { connection: connection.to_owned(), origin })
    }
}

/// The bindings of one invocation; at most one connection per origin.
#[derive(Debug, Clone, Default)]
pub struct OriginBindings {
    bindings: Vec<OriginBinding>,
}

impl OriginBindings {
    pub fn new(bindings: Vec<OriginBinding>) -> Result<Self, BindingError> {
        let mut kept: Vec<OriginBinding> = Vec::with_capacity(bindings.len());
        for b in bindings {
            match kept.iter().find(|k| k.origin == b.origin) {
                Some(k) if k.connection == b.connection => {}
                Some(k) => {
                    return Err(BindingError::Ambiguous {
                        origin: b.origin,
                        first: k.connection.clone(),
                        second: b.connection,
                    });
                }
                None => kept.push(b),
            }
        }
        Ok(Self { bindings: kept })
    }

    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &OriginBinding> {
        self.bindings.iter()
    }

    /// The connection bound to exactly this origin.
    pub fn connection_for(&self, origin: &Origin) -> Option<&str> {
        self.bindings.iter().find(|b| &b.origin == origin).map(|b| b.connection.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(s: &str) -> Result<OriginBinding, BindingError> {
        s.parse()
    }

    fn origin_of(uri: &str) -> Origin {
        Origin::of_uri(&uri.parse().unwrap()).unwrap()
    }

    #[test]
    fn parses_and_normalises() {
        let b = bind("google=https://WWW.GoogleAPIs.com").unwrap();
        assert_eq!(b.connection, "google");
        assert_eq!(b.origin.to_string(), "https://www.googleapis.com");
        assert_eq!(b.origin, origin_of("https://www.googleapis.com/calendar/v3?x=1"));
        assert_eq!(b.origin, origin_of("https://www.googleapis.com:443/"));
        assert_eq!(bind("g=https://api.example.com/").unwrap().origin.to_string(), "https://api.example.com");
        assert_eq!(bind("g=https://api.example.com:8443").unwrap().origin.port(), 8443);
        assert_eq!(bind("m=http://127.0.0.1:9000").unwrap().origin, origin_of("http://127.0.0.1:9000/me"));
        assert_eq!(bind("m=http://[::1]:9000").unwrap().origin, origin_of("http://[::1]:9000/me"));
        assert_eq!(bind("m=http://localhost:9000").unwrap().origin.to_string(), "http://localhost:9000");
    }

    #[test]
    fn exact_match_only() {
        let b = bind("g=https://api.example.com").unwrap().origin;
        for other in [
            "http://api.example.com/",
            "https://api.example.com:8443/",
            "https://x.api.example.com/",
            "https://api.example.com.evil.example/",
            "https://evilapi.example.com/",
        ] {
            assert_ne!(b, origin_of(other), "{other}");
        }
    }

    #[test]
    fn refuses_what_is_not_an_origin() {
        assert!(matches!(bind("https://api.example.com"), Err(BindingError::Shape(_))));
        assert!(matches!(bind("g="), Err(BindingError::Shape(_))));
        assert!(matches!(bind("=https://a.example"), Err(BindingError::Shape(_))));
        assert!(matches!(bind("g=api.example.com"), Err(BindingError::Origin { .. })));
        assert!(matches!(bind("g=https://api.example.com/v1"), Err(BindingError::Origin { .. })));
        assert!(matches!(bind("g=https://api.example.com?x"), Err(BindingError::Origin { .. })));
        assert!(matches!(bind("g=https://u:p@api.example.com"), Err(BindingError::Origin { .. })));
        assert!(matches!(bind("g=ftp://api.example.com"), Err(BindingError::Origin { .. })));
        assert!(matches!(bind("g=http://api.example.com"), Err(BindingError::PlainHttp(_))));
        assert!(matches!(bind("g=http://10.0.0.1:80"), Err(BindingError::PlainHttp(_))));
    }

    #[test]
    fn one_connection_per_origin() {
        let a = bind("a=https://api.example.com").unwrap();
        let b = bind("b=https://api.example.com:443").unwrap();
        assert!(matches!(OriginBindings::new(vec![a.clone(), b]), Err(BindingError::Ambiguous { .. })));
        let set = OriginBindings::new(vec![a.clone(), a.clone()]).unwrap();
        assert_eq!(set.iter().count(), 1);
        assert_eq!(set.connection_for(&origin_of("https://api.example.com/x")), Some("a"));
        assert_eq!(set.connection_for(&origin_of("https://other.example.com/x")), None);
    }
}
