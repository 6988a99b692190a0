//! The per-connection protocol options of `create` and `update` (the CLI's flags and the admin API's fields) (`--pkce`, `--client-auth`, `--auth-param`,
//! `--token-param`, `--default-scopes`), checked and applied to a connection's [`ProtocolOptions`].

use wasm_host_oauth::ClientAuth;
use wasm_host_store::{printable, ProtocolOptions};

use super::request::ProtocolRequest;
use super::{bad_input as usage, ChangeError};

type Result<T> = std::result::Result<T, ChangeError>;

/// Parameters the flows set themselves: an extra parameter may not replace one (a `state` or `code_challenge`
/// given here would defeat the checks made on the callback).
const RESERVED: [&str; 14] = [
    "response_type", "client_id", "client_secret", "redirect_uri", "scope", "state", "nonce", "code",
    "code_challenge", "code_challenge_method", "code_verifier", "grant_type", "refresh_token", "client_assertion",
];

/// Applies `args` onto `options`: a flag given replaces that option; `NAME=` removes a parameter.
pub fn apply(args: &ProtocolRequest, options: &mut ProtocolOptions) -> Result<()> {
    if let Some(p) = &args.pkce {
        options.pkce = match p.as_str() {
            "auto" => None,
            "on" => Some(true),
            "off" => Some(false),
            other => return Err(usage(format!("--pkce `{}` is not one of auto, on, off", printable(other)))),
        };
    }
    if let Some(a) = &args.client_auth {
        client_auth(Some(a))?;
        options.client_auth = Some(a.clone());
    }
    merge("--auth-param", &args.auth_params, &mut options.auth_params)?;
    merge("--token-param", &args.token_params, &mut options.token_params)?;
    if let Some(list) = &args.default_scopes {
        options.default_scopes = scopes(list);
    }
    if let Some(url) = &args.device_auth_url {
        options.device_auth_url = Some(wasm_host_store::validate_url("--device-auth-url", url)?.to_string());
    }
    Ok(())
}

/// Refuses, on a client-credentials connection `name`, the flags that shape only a user's authorization (the
/// authorization request, PKCE, the device flow, the refresh token): RFC 6749 §4.4 has none of these, so a value
/// given would be stored and never used. `given` pairs each such flag with whether it was given.
pub fn refuse_authorization_flags(name: &str, given: &[(&str, bool)]) -> Result<()> {
    let flags: Vec<&str> = given.iter().filter(|(_, g)| *g).map(|(f, _)| *f).collect();
    if flags.is_empty() {
        return Ok(());
    }
    Err(usage(format!(
        "{} {} only to the authorization-code grant, and `{name}` uses the client-credentials grant (RFC 6749 §4.4: \
         no authorization request, PKCE, device code or refresh token); leave {} out (its token request takes \
         --token-url, --client-auth, --token-param and --default-scopes)",
        flags.join(", "),
        if flags.len() == 1 { "applies" } else { "apply" },
        if flags.len() == 1 { "it" } else { "them" }
    )))
}

/// The flags of `args` that [`refuse_authorization_flags`] refuses, each with whether it was given.
pub fn authorization_flags(args: &ProtocolRequest) -> [(&'static str, bool); 3] {
    [
        ("--pkce", args.pkce.is_some()),
        ("--auth-param", !args.auth_params.is_empty()),
        ("--device-auth-url", args.device_auth_url.is_some()),
    ]
}

/// `basic` or `post` as the OAuth library's [`ClientAuth`]; `None` when not set.
pub fn client_auth(value: Option<&str>) -> Result<Option<ClientAuth>> {
    match value {
        None => Ok(None),
        Some("basic") => Ok(Some(ClientAuth::Basic)),
        Some("post") => Ok(Some(ClientAuth::Post)),
        Some(other) => Err(usage(format!("--client-auth `{}` is not one of basic, post", printable(other)))),
    }
}

/// A scope list as given on the command line: comma or space separated.
pub fn scopes(list: &str) -> Vec<String> {
    list.split([',', ' ']).filter(|s| !s.is_empty()).map(String::from).collect()
}

fn merge(flag: &str, given: &[String], into: &mut Vec<(String, String)>) -> Result<()> {
    for pair in given {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(usage(format!("{flag} `{}` is not NAME=VALUE", printable(pair))));
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
            return Err(usage(format!("{flag}: `{}` is not a parameter name (letters, digits, _ - .)", printable(name))));
        }
        if RESERVED.contains(&name) {
            return Err(usage(format!("{flag}: `{name}` is set by wasm-host itself and cannot be given")));
        }
        into.retain(|(k, _)| k != name);
        if !value.is_empty() {
            into.push((name.to_owned(), value.to_owned()));
        }
    }
    Ok(())
}
