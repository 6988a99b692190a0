//! Outgoing HTTP of a function: every request passes through these hooks on its way out, and only hosts the
//! function was granted are reached. Fail closed: an empty allow-list reaches nothing.

use std::future::Future;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// One `--allow-host` entry: `api.example.com`, `api.example.com:8443`, `*.googleapis.com`, or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com`: any subdomain, not `example.com` itself.
    Suffix(String),
}

impl std::str::FromStr for HostPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        if s == "*" {
            return Ok(Self { host: HostMatch::Any, port: None });
        }
        if s.contains("://") || s.contains('/') {
            return Err(format!("`{s}` is a URL; give a host, e.g. api.example.com or api.example.com:8443"));
        }
        let parse_port = |p: &str| p.parse::<u16>().map_err(|_| format!("`{p}` in `{s}` is not a port"));
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            // An IPv6 literal in brackets, with or without a port: [::1] or [::1]:8080.
            let (h, after) = rest.split_once(']').ok_or_else(|| format!("`{s}` lacks its closing `]`"))?;
            match after.strip_prefix(':') {
                Some(p) => (h.to_owned(), Some(parse_port(p)?)),
                None if after.is_empty() => (h.to_owned(), None),
                None => return Err(format!("`{s}` has text after `]`")),
            }
        } else if s.matches(':').count() == 1 {
            let (h, p) = s.split_once(':').expect("one colon");
            (h.to_owned(), Some(parse_port(p)?))
        } else {
            (s.clone(), None)
        };
        if host.is_empty() {
            return Err(format!("`{s}` names no host"));
        }
        let host = match host.strip_prefix("*.") {
            Some(rest) if !rest.is_empty() && !rest.contains('*') => HostMatch::Suffix(format!(".{rest}")),
            _ if host.contains('*') => {
                return Err(format!("`{s}`: a wildcard may only be `*` or lead the host, as in *.example.com"));
            }
            _ => HostMatch::Exact(host),
        };
        Ok(Self { host, port })
    }
}

impl HostPattern {
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(h) => *h == host,
            HostMatch::Suffix(s) => host.ends_with(s.as_str()),
        }
    }
}

/// The outgoing-request policy of one invocation.
#[derive(Debug, Clone, Default)]
pub struct OutboundHttp {
    allowed: Arc<Vec<HostPattern>>,
}

impl OutboundHttp {
    pub fn new(allowed: Vec<HostPattern>) -> Self {
        Self { allowed: Arc::new(allowed) }
    }
}

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>), HttpError>,
            > + Send,
    > {
        let allowed = self.allowed.clone();
        Box::new(async move {
            let uri = request.uri();
            let host = uri.host().unwrap_or_default().to_owned();
            let https = uri.scheme_str() == Some("https");
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            if !allowed.iter().any(|p| p.matches(&host, port)) {
                tracing::warn!(host = %host, port, "refused an outgoing request to a host this function was not granted (--allow-host)");
                return Err(HttpError::HttpRequestDenied);
            }
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        s.parse().unwrap()
    }

    #[test]
    fn patterns() {
        assert!(p("*").matches("anything.example", 1));
        assert!(p("api.example.com").matches("API.example.com", 443));
        assert!(!p("api.example.com").matches("evil-api.example.com", 443));
        assert!(p("api.example.com:8443").matches("api.example.com", 8443));
        assert!(!p("api.example.com:8443").matches("api.example.com", 443));
        assert!(p("*.googleapis.com").matches("www.googleapis.com", 443));
        assert!(!p("*.googleapis.com").matches("googleapis.com", 443));
        assert!(!p("*.googleapis.com").matches("googleapis.com.evil.example", 443));
        assert!(p("127.0.0.1:8080").matches("127.0.0.1", 8080));
        assert!(p("[::1]:8080").matches("[::1]", 8080));
        assert!("https://x.example".parse::<HostPattern>().is_err());
        assert!("a.*.example".parse::<HostPattern>().is_err());
        assert!("x.example:http".parse::<HostPattern>().is_err());
    }
}
