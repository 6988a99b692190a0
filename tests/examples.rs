//! Every example in guest-examples/, in Rust and in JavaScript, run through the real host.

use wasm_host_tests::api::{Api, Rendezvous};
use wasm_host_tests::{example, js_example, Env};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");

/// (language, component) for an example that exists in both languages.
fn both(name: &str) -> Vec<(&'static str, std::path::PathBuf)> {
    vec![("rust", example(name)), ("js", js_example(BIN, name))]
}


#[test]
fn multi_provider_calls_both_apis_at_once_and_reports_each_failure() {
    for (lang, component) in both("multi-provider") {
        let env = Env::new(BIN);
        for (name, token) in [("google", "g-token"), ("microsoft", "m-token"), ("ungranted", "u-token")] {
            env.create(name, "s").success();
            env.import_token(name, &format!(r#"{{"access_token":"{token}"}}"#)).success();
        }
        let together = Rendezvous::new(2);
        let calendar = Api::start_with("g-token", r#"{"events":3}"#, Some(together.clone()));
        // This API refuses the token it is given: the failure is reported for that call only.
        let mail = Api::start_with("another-token", r#"{"unread":1}"#, Some(together.clone()));
        let input = serde_json::json!({ "calls": {
            "calendar": { "connection": "google", "url": calendar.url("/events") },
            "mail": { "connection": "microsoft", "url": mail.url("/messages") },
            "files": { "connection": "ungranted", "url": calendar.url("/files") },
        }})
        .to_string();
        let out = env.run_cached(&component, &[
            "--input", &input, "--allow-connection", "google", "--allow-connection", "microsoft", "--allow-host", "127.0.0.1",
        ]);
        let json = out.success().json();
        assert_eq!(json["calendar"], serde_json::json!({"events": 3}), "{lang}: {json}");
        assert_eq!(json["mail"]["error"], "http", "{lang}: {json}");
        assert_eq!(json["mail"]["status"], 401, "{lang}: {json}");
        assert_eq!(json["files"]["error"], "access-denied", "{lang}: {json}");
        assert!(together.met.load(std::sync::atomic::Ordering::SeqCst), "{lang}: the two requests were not in flight together");
    }
}

#[test]
fn needs_auth_tells_the_cases_apart() {
    for (lang, component) in both("needs-auth") {
        let env = Env::new(BIN);
        env.create("crm", "s").success();
        let ask = |allow: &[&str]| {
            let mut args = vec!["--input", r#"{"connection":"crm"}"#];
            for a in allow {
                args.extend(["--allow-connection", a]);
            }
            env.run_cached(&component, &args).success().json()
        };
        let out = ask(&["crm"]);
        assert_eq!(out["status"], "needs-authorization", "{lang}: {out}");
        assert!(out["message"].as_str().unwrap().contains("ask an administrator"), "{lang}: {out}");
        assert_eq!(out["retry"], false);
        assert_eq!(ask(&[])["status"], "access-denied", "{lang}");
        env.import_token("crm", r#"{"access_token":"t","expires_at":"2099-01-01T00:00:00Z"}"#).success();
        let out = ask(&["crm"]);
        assert_eq!(out["status"], "ok", "{lang}: {out}");
        assert_eq!(out["expires_at"], "2099-01-01T00:00:00Z", "{lang}: {out}");
    }
}
