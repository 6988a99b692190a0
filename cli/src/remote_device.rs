//! `--remote URL authconnection authorize NAME --device`: the laptop's half of a remote device authorization
//! (RFC 8628; the server's half is server/src/admin_device.rs). The server sends the device authorization request
//! and keeps the device code; the laptop shows the user code and where to enter it as local `--device` does, then
//! asks the server to poll at the interval it answers (raised by `slow_down`, §3.5), until approved, denied or
//! expired, with local `--device`'s exit codes. The laptop never holds the device code, the client secret or a
//! token.

use anyhow::{Context as _, Result};
use reqwest::Method;
use serde_json::{json, Value};

use crate::args::AuthorizeArgs;
use crate::commands::device::show_code;
use crate::exit::{coded, Exit};
use crate::output::{self, note};
use crate::remote::{connection_path, RemoteClient};
use crate::remote_authorize::{authorized, route_exit};

/// Where the laptop asks the server to poll.
const POLL: &str = "/v1/device-authorizations/poll";

/// Runs `authorize --device` through the admin API of `remote`.
pub fn run(remote: &RemoteClient, args: &AuthorizeArgs) -> Result<Exit> {
    let name = &args.name.name;
    let mut start = json!({});
    if let Some(scopes) = args.scopes.as_deref().map(wasm_host_server::manage::options::scopes) {
        start["scopes"] = json!(scopes);
    }
    let path = format!("{}/device-authorization", connection_path(name));
    let (_, started) = remote.send_with(Method::POST, &path, Some(&start), route_exit)?;
    let text = |field: &str| started[field].as_str().with_context(|| format!("the server's answer has no `{field}`"));
    let seconds = |field: &str| started[field].as_u64().with_context(|| format!("the server's answer has no `{field}`"));
    let mut handle = text("handle")?.to_owned();
    let expires_in = std::time::Duration::from_secs(seconds("expires_in")?);
    let mut interval = std::time::Duration::from_secs(seconds("interval")?.max(1));
    show_code(name, text("verification_uri")?, text("user_code")?, started["verification_uri_complete"].as_str());
    let limit = args.timeout.min(expires_in);
    note!(
        "Waiting up to {} for the approval (the server asks the provider every {} s) ...",
        humantime::format_duration(limit),
        interval.as_secs()
    );
    let waiting = std::time::Instant::now();
    // Bounded: each round sleeps at least a second, and the loop ends once `limit` has passed.
    let stored = loop {
        if waiting.elapsed() + interval > limit {
            return Err(coded(
                Exit::CallbackTimeout,
                format!(
                    "the request was not approved within {}; nothing was stored; run `wasm-host --remote ... \
                     authconnection authorize {name} --device` again{}",
                    humantime::format_duration(limit),
                    if limit < expires_in { " with a longer --timeout" } else { " and enter the new code sooner" }
                ),
            ));
        }
        std::thread::sleep(interval);
        let (_, answer) = remote.send_with(Method::POST, POLL, Some(&json!({ "handle": handle })), route_exit)?;
        match answer["status"].as_str() {
            Some("authorized") => break answer["connection"].clone(),
            Some("pending") => {
                handle = answer["handle"].as_str().context("the server's pending answer has no `handle`")?.to_owned();
                interval = std::time::Duration::from_secs(answer["interval"].as_u64().unwrap_or(5).max(1));
            }
            _ => return Err(coded(Exit::Remote, format!("the server's poll answer is not understood: {}", status_of(&answer)))),
        }
    };
    if args.out.json {
        output::json(&stored)?;
    }
    note!("{}", authorized(&stored));
    Ok(Exit::Ok)
}

/// The `status` of an answer, for an error (never the whole answer).
fn status_of(answer: &Value) -> String {
    answer["status"].as_str().map_or_else(|| "no `status`".to_owned(), |s| format!("status `{}`", wasm_host_store::printable(s)))
}
