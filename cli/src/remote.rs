//! `--remote URL`: the admin API of a `wasm-host serve` in place of a local store (server/src/admin.rs answers).
//!
//! The admin token comes from `WASM_HOST_ADMIN_TOKEN` or `--admin-token-file`, never from the command line (every
//! local user can read a process's arguments). `https://` is required unless the host is a loopback address: the
//! token and any client secret travel in the requests. `--remote-ca` adds a private CA to the public roots.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use url::Url;
use wasm_host_server::manage::ErrorKind;

use crate::exit::{change_exit, coded, usage, Exit};

/// Where `--remote` points and with what credentials, as given; read into a [`RemoteClient`] when a verb needs it.
pub struct RemoteSettings {
    pub url: String,
    pub ca: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
}

/// A client of one server's admin API.
pub struct RemoteClient {
    base: Url,
    token: SecretString,
    http: Client,
}

impl RemoteClient {
    /// Checks the URL (https, or http to a loopback address), reads the admin token and the CA.
    pub fn new(settings: &RemoteSettings) -> Result<Self> {
        let base = Url::parse(settings.url.trim_end_matches('/')).map_err(|e| {
            usage(format!("--remote `{}` is not a URL ({e}); give https://HOST:PORT", wasm_host_store::printable(&settings.url)))
        })?;
        let loopback = match base.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        match base.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(usage(format!(
                    "--remote {base}: http:// sends the admin token and client secrets in clear; use https:// (the \
                     server's --admin-tls-cert), or http:// to a loopback address only (an SSH tunnel)"
                )));
            }
            other => return Err(usage(format!("--remote {base}: scheme `{other}` is not https:// (or http:// to a loopback address)"))),
        }
        let token = match &settings.token_file {
            Some(path) => read_token_file(path)?,
            None => crate::secret_env::admin_token().cloned().ok_or_else(|| {
                coded(
                    Exit::Remote,
                    "--remote needs an admin token: set WASM_HOST_ADMIN_TOKEN or give --admin-token-file PATH \
                     (`wasm-host admin token create` on the server makes one)",
                )
            })?,
        };
        if !token.expose_secret().starts_with(wasm_host_store::ADMIN_TOKEN_PREFIX) {
            return Err(usage(format!(
                "the admin token does not start with `{}`: give the token `wasm-host admin token create` printed",
                wasm_host_store::ADMIN_TOKEN_PREFIX
            )));
        }
        let mut builder = Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &settings.ca {
            let pem = std::fs::read(path).with_context(|| format!("reading --remote-ca {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| usage(format!("--remote-ca {}: {e}; give a PEM file of CA certificates", path.display())))?;
            if certs.is_empty() {
                return Err(usage(format!("--remote-ca {}: no certificate in it; give a PEM file of CA certificates", path.display())));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().context("building the HTTP client")?;
        Ok(Self { base, token, http })
    }

    /// Sends `method path` with `body` as JSON; the answer's status and JSON body when it is a success. An error
    /// answer (`{"error": {"kind", "message"}}`) becomes the exit code the same failure has on a local store;
    /// a refused token, or a server that cannot be reached, exit code 24.
    pub fn send(&self, method: Method, path: &str, body: Option<&serde_json::Value>) -> Result<(StatusCode, serde_json::Value)> {
        self.send_with(method, path, body, |_| None)
    }

    /// As [`RemoteClient::send`], with `route_exit` naming the exit code of error kinds that only this route
    /// answers (remote authorize's `state-expired`, say); the kinds every route shares are mapped first.
    pub fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        route_exit: fn(&str) -> Option<Exit>,
    ) -> Result<(StatusCode, serde_json::Value)> {
        let url = format!("{}{path}", self.base.as_str().trim_end_matches('/'));
        let mut request = self.http.request(method.clone(), &url).bearer_auth(self.token.expose_secret());
        if let Some(body) = body {
            // The body may carry a client secret: it goes to this server only, in this one request.
            let bytes = zeroize::Zeroizing::new(serde_json::to_vec(body)?);
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes.to_vec());
        }
        let response = request.send().map_err(|e| {
            coded(Exit::Remote, format!("cannot reach the admin API at {}: {}", self.base, without_url(&e)))
        })?;
        let status = response.status();
        let text = response.text().map_err(|e| coded(Exit::Remote, format!("reading the admin API's answer: {}", without_url(&e))))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
            coded(Exit::Remote, format!("{} {path} answered {status} with a body that is not JSON: is {} a wasm-host admin API?", method, self.base))
        })?;
        if status.is_success() {
            return Ok((status, value));
        }
        let kind = value["error"]["kind"].as_str().unwrap_or("");
        let message = value["error"]["message"].as_str().unwrap_or("(no message)");
        let exit = match ErrorKind::parse(kind) {
            Some(kind) => change_exit(kind),
            None => match route_exit(kind) {
                Some(exit) => exit,
                None if status == StatusCode::BAD_REQUEST => Exit::Usage,
                None => Exit::Remote,
            },
        };
        Err(coded(exit, format!("the server refused: {message}")))
    }
}

/// A reqwest error's text without its URL (which is ours, and already said).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" ({url})"), "").replace(url.as_str(), "the server");
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The admin token in `path`: its first line, trimmed.
fn read_token_file(path: &Path) -> Result<SecretString> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading --admin-token-file {}", path.display()))?,
    );
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(usage(format!("--admin-token-file {} is empty: put the admin token in it", path.display())));
    }
    Ok(SecretString::from(token))
}

/// The path segment of a connection name (names are `[a-z0-9-]`, checked before this is used).
pub fn connection_path(name: &str) -> String {
    format!("/v1/connections/{name}")
}
