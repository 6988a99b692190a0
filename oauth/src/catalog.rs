//! The provider catalog: `providers.toml`, compiled into the binary, one entry per provider with its endpoints and
//! quirks, each written from the provider's own documentation (the entry's `docs` link). `create --provider NAME`
//! fills a connection from an entry; the URL presets of [`crate::endpoints::preset`] keep recognising Google,
//! Microsoft and QuickBooks from a `--provider-url`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use url::Url;

/// The catalog's text, as compiled in.
pub const SOURCE: &str = include_str!("../providers.toml");

/// How a provider sends refusals (informational: every shape is read as a refusal, see [`crate::token`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorShape {
    /// RFC 6749 §5.2: `400 {"error": "...", "error_description": "..."}`.
    #[default]
    Rfc6749,
    /// `200 {"error": "..."}` (GitHub; Slack's `{"ok": false, "error": "..."}`).
    #[serde(rename = "200-error")]
    Status200,
}

/// One provider as the catalog describes it; URLs may hold `{placeholder}`s named in `templates`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: String,
    pub name: String,
    /// The provider's documentation this entry was written from.
    pub docs: String,
    pub provider_url: String,
    pub auth_url: String,
    pub token_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_url: Option<String>,
    /// An OpenID provider's issuer: its ID tokens are checked against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Placeholder → default; an empty default must be given (`--domain`, `--tenant`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<String, String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// `" "` (RFC 6749 §3.3) or `","`.
    #[serde(default = "space")]
    pub scope_separator: String,
    #[serde(default)]
    pub auth_params: BTreeMap<String, String>,
    #[serde(default)]
    pub token_params: BTreeMap<String, String>,
    /// `basic` or `post` (RFC 6749 §2.3.1).
    #[serde(default = "basic")]
    pub client_auth: String,
    /// Whether the provider documents PKCE (RFC 7636).
    #[serde(default)]
    pub pkce: bool,
    #[serde(default)]
    pub rotates_refresh_tokens: bool,
    /// Whether the provider documents the client-credentials grant (RFC 6749 §4.4) at `token_url`, for
    /// `create --grant client-credentials`.
    #[serde(default)]
    pub client_credentials: bool,
    /// The RFC 8628 device authorization endpoint, for `authorize --device`; an OpenID provider's comes from
    /// discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_auth_url: Option<String>,
    #[serde(default)]
    pub errors: ErrorShape,
    /// Callback or token-response fields (dotted when nested) kept as the connection's metadata.
    #[serde(default)]
    pub metadata: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// What of the entry was checked against the provider's documentation, when and where
    /// (`"2026-11-30: endpoints, pkce against <url>"`); `""` when nothing could be confirmed.
    pub checked: String,
}

fn space() -> String {
    " ".into()
}

fn basic() -> String {
    "basic".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    provider: Vec<Entry>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CatalogError {
    #[error("no provider `{given}` in the catalog; `wasm-host authconnection providers` lists them")]
    Unknown { given: String },
    #[error("provider `{provider}` needs --{placeholder} (its URLs hold `{{{placeholder}}}`)")]
    Missing { provider: String, placeholder: String },
    #[error("--{placeholder} is not used by provider `{provider}`{}", if used.is_empty() { String::new() } else { format!(" (it takes {used})") })]
    Unused { provider: String, placeholder: String, used: String },
    #[error("--{placeholder} `{value}` is not a host name or path segment (letters, digits, `-`, `.`, `_`)")]
    BadValue { placeholder: String, value: String },
    #[error("catalog entry `{provider}`: {problem}")]
    Invalid { provider: String, problem: String },
}

/// Every entry of the catalog, parsed once. The catalog is part of the build: a test parses and resolves every
/// entry, so a bad one never ships.
pub fn entries() -> &'static [Entry] {
    static PARSED: LazyLock<Vec<Entry>> = LazyLock::new(|| {
        toml::from_str::<File>(SOURCE).expect("providers.toml parses (tested by catalog::tests)").provider
    });
    &PARSED
}

/// The entry called `id` (case-insensitive).
pub fn find(id: &str) -> Result<&'static Entry, CatalogError> {
    entries().iter().find(|e| e.id.eq_ignore_ascii_case(id)).ok_or_else(|| CatalogError::Unknown { given: id.into() })
}

/// An entry with its placeholders filled: what a connection stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub provider_url: String,
    pub auth_url: String,
    pub token_url: String,
    pub revocation_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub issuer: Option<String>,
    pub device_auth_url: Option<String>,
}

impl Entry {
    /// Fills the placeholders with `values` (placeholder → value), defaults where not given. Every URL that
    /// results is checked to be an https URL.
    pub fn resolve(&self, values: &BTreeMap<String, String>) -> Result<Resolved, CatalogError> {
        for (placeholder, value) in values {
            if !self.templates.contains_key(placeholder) {
                let used = self.templates.keys().map(|k| format!("--{k}")).collect::<Vec<_>>().join(", ");
                return Err(CatalogError::Unused { provider: self.id.clone(), placeholder: placeholder.clone(), used });
            }
            if value.is_empty() || !value.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) {
                return Err(CatalogError::BadValue { placeholder: placeholder.clone(), value: crate::shown(value, 100) });
            }
        }
        let mut filled = BTreeMap::new();
        for (placeholder, default) in &self.templates {
            let value = values.get(placeholder).unwrap_or(default);
            if value.is_empty() {
                return Err(CatalogError::Missing { provider: self.id.clone(), placeholder: placeholder.clone() });
            }
            filled.insert(placeholder.as_str(), value.as_str());
        }
        let fill = |template: &str| -> Result<String, CatalogError> {
            let mut out = template.to_owned();
            for (placeholder, value) in &filled {
                out = out.replace(&format!("{{{placeholder}}}"), value);
            }
            let invalid = |problem: String| CatalogError::Invalid { provider: self.id.clone(), problem };
            if out.contains(['{', '}']) {
                return Err(invalid(format!("`{template}` holds a placeholder not listed in its templates")));
            }
            let url = Url::parse(&out).map_err(|e| invalid(format!("`{out}` is not a URL: {e}")))?;
            if url.scheme() != "https" {
                return Err(invalid(format!("`{out}` is not https")));
            }
            Ok(out)
        };
        Ok(Resolved {
            provider_url: fill(&self.provider_url)?,
            auth_url: fill(&self.auth_url)?,
            token_url: fill(&self.token_url)?,
            revocation_url: self.revocation_url.as_deref().map(fill).transpose()?,
            userinfo_url: self.userinfo_url.as_deref().map(fill).transpose()?,
            issuer: self.issuer.as_deref().map(fill).transpose()?,
            device_auth_url: self.device_auth_url.as_deref().map(fill).transpose()?,
        })
    }

    /// Everything about the entry a check can find without the network: known values, URLs that resolve.
    pub fn check(&self) -> Result<(), CatalogError> {
        let invalid = |problem: String| CatalogError::Invalid { provider: self.id.clone(), problem };
        if self.id.is_empty() || !self.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(invalid("the id must be lower-case letters, digits and `-`".into()));
        }
        if !self.docs.starts_with("https://") {
            return Err(invalid("docs must be an https link to the provider's documentation".into()));
        }
        if !self.checked.is_empty() && !self.checked.contains(": ") {
            return Err(invalid("checked must be \"\" or \"DATE: what against URL\"".into()));
        }
        if !matches!(self.scope_separator.as_str(), " " | ",") {
            return Err(invalid(format!("scope_separator `{}` is neither \" \" nor \",\"", self.scope_separator)));
        }
        if !matches!(self.client_auth.as_str(), "basic" | "post") {
            return Err(invalid(format!("client_auth `{}` is neither basic nor post", self.client_auth)));
        }
        // Required placeholders get a stand-in value: the check is of the shape.
        let values = self.templates.iter().filter(|(_, d)| d.is_empty()).map(|(k, _)| (k.clone(), "example".to_owned())).collect();
        self.resolve(&values).map(|_| ())
    }

    /// The placeholders, as the flags that fill them: `--domain (required)`, `--tenant (common)`.
    pub fn template_flags(&self) -> String {
        let flags: Vec<String> = self
            .templates
            .iter()
            .map(|(k, d)| if d.is_empty() { format!("--{k} (required)") } else { format!("--{k} ({d})") })
            .collect();
        flags.join(", ")
    }

    /// The quirks this entry has, in words, for the README table and `providers`.
    pub fn quirks(&self) -> Vec<String> {
        let mut q = Vec::new();
        if self.scope_separator == "," {
            q.push("comma-separated scopes".to_owned());
        }
        for (k, v) in &self.auth_params {
            q.push(format!("`{k}={v}`"));
        }
        for (k, v) in &self.token_params {
            q.push(format!("token `{k}={v}`"));
        }
        if self.client_auth == "post" {
            q.push("client_secret_post".into());
        }
        if !self.pkce {
            q.push("no PKCE".into());
        }
        if self.rotates_refresh_tokens {
            q.push("rotating refresh tokens".into());
        }
        match self.errors {
            ErrorShape::Rfc6749 => {}
            ErrorShape::Status200 => q.push("errors in a 200".into()),
        }
        if self.client_credentials {
            q.push("client credentials".into());
        }
        if self.device_auth_url.is_some() {
            q.push("device flow".into());
        }
        if !self.metadata.is_empty() {
            q.push(format!("metadata {}", self.metadata.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")));
        }
        q
    }
}

/// The README's table of providers, generated from the catalog (a test compares the two).
pub fn markdown_table() -> String {
    let mut out = String::from("| `--provider` | Provider | Placeholders | Quirks | Documentation |\n|---|---|---|---|---|\n");
    for e in entries() {
        let templates = e.template_flags();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | [docs]({}) |\n",
            e.id,
            e.name,
            if templates.is_empty() { "".into() } else { templates },
            e.quirks().join(", "),
            e.docs
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_parses_checks_and_resolves() {
        let all = entries();
        assert!(all.len() >= 30, "{} entries", all.len());
        let mut ids = std::collections::BTreeSet::new();
        for e in all {
            assert!(ids.insert(e.id.as_str()), "`{}` twice", e.id);
            e.check().unwrap_or_else(|err| panic!("{err}"));
        }
        for required in [
            "google", "microsoft", "quickbooks", "salesforce", "slack", "github", "github-app", "gitlab", "bitbucket",
            "atlassian", "dropbox", "box", "zoom", "hubspot", "xero", "notion", "linear", "asana", "discord",
            "spotify", "x", "linkedin", "okta", "auth0", "keycloak", "shopify", "zendesk", "intercom", "figma",
            "airtable", "docusign",
        ] {
            assert!(ids.contains(required), "`{required}` is missing");
        }
    }

    /// The README's table is the catalog's: regenerated with `WASM_HOST_UPDATE_SNAPSHOTS=1 cargo test -p
    /// wasm-host-oauth readme`, reviewed with `git diff`.
    #[test]
    fn the_readme_table_is_the_catalog() {
        const BEGIN: &str = "<!-- providers table: generated from oauth/providers.toml -->\n";
        const END: &str = "<!-- end of providers table -->";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let start = readme.find(BEGIN).expect("the README marks where the providers table begins") + BEGIN.len();
        let end = start + readme[start..].find(END).expect("the README marks where the providers table ends");
        let table = markdown_table();
        if readme[start..end] != table {
            if std::env::var_os("WASM_HOST_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
                std::fs::write(&path, format!("{}{table}{}", &readme[..start], &readme[end..])).unwrap();
                return;
            }
            panic!(
                "README.md's providers table differs from oauth/providers.toml; rewrite it with \
                 WASM_HOST_UPDATE_SNAPSHOTS=1 cargo test -p wasm-host-oauth readme. Expected:\n{table}"
            );
        }
    }

    #[test]
    fn placeholders_are_filled_defaulted_or_asked_for() {
        let values = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let ms = find("Microsoft").unwrap();
        let r = ms.resolve(&BTreeMap::new()).unwrap();
        assert_eq!(r.auth_url, "https://login.microsoftonline.com/common/oauth2/v2.0/authorize");
        let r = ms.resolve(&values(&[("tenant", "contoso.onmicrosoft.com")])).unwrap();
        assert_eq!(r.issuer.as_deref(), Some("https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"));
        assert_eq!(
            r.device_auth_url.as_deref(),
            Some("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"),
            "the device endpoint is templated like the others"
        );
        assert!(ms.client_credentials && !find("github").unwrap().client_credentials);
        let kc = find("keycloak").unwrap();
        assert_eq!(
            kc.resolve(&values(&[("domain", "sso.example.com")])).unwrap_err(),
            CatalogError::Missing { provider: "keycloak".into(), placeholder: "realm".into() }
        );
        let r = kc.resolve(&values(&[("domain", "sso.example.com"), ("realm", "staff")])).unwrap();
        assert_eq!(r.token_url, "https://sso.example.com/realms/staff/protocol/openid-connect/token");
        let e = find("slack").unwrap().resolve(&values(&[("tenant", "x")])).unwrap_err();
        assert!(e.to_string().contains("--tenant is not used by provider `slack`"), "{e}");
        let e = find("shopify").unwrap().resolve(&values(&[("shop", "a/b")])).unwrap_err();
        assert!(matches!(e, CatalogError::BadValue { .. }), "{e}");
        assert!(matches!(find("nope"), Err(CatalogError::Unknown { .. })));
    }
}
