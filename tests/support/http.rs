//! Blocking HTTP for tests: what a browser does with an authorization URL, and calls to the test provider.

use std::time::Duration;

fn client(cookies: bool) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .cookie_store(cookies)
        .redirect(reqwest::redirect::Policy::limited(20))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn get(url: &str) -> (u16, String) {
    let r = client(false).get(url).send().expect("GET");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

pub fn post_json(url: &str, body: &str) -> (u16, String) {
    let r = client(false)
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .expect("POST");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

pub fn post_form(url: &str, basic: (&str, &str), form: &[(&str, &str)]) -> (u16, String) {
    let r = client(false).post(url).basic_auth(
        url::form_urlencoded::byte_serialize(basic.0.as_bytes()).collect::<String>(),
        Some(url::form_urlencoded::byte_serialize(basic.1.as_bytes()).collect::<String>()),
    )
    .form(form)
    .send()
    .expect("POST");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

pub fn follow_with_cookies(url: &str) -> (u16, String) {
    let r = client(true).get(url).send().expect("follow the authorization URL");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

/// What a browser does with an authorization URL, up to the provider's redirect to the loopback callback: the
/// callback URL (with its `code` and `state`), not yet requested.
pub fn follow_to_callback(url: &str) -> String {
    let client = reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.url().path() == "/callback" || attempt.previous().len() > 20 {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let r = client.get(url).send().expect("follow the authorization URL");
    let location = r.headers().get("location").expect("the provider redirects to the callback");
    let callback = r.url().join(location.to_str().unwrap()).unwrap();
    assert_eq!(callback.path(), "/callback", "not the callback: {callback}");
    callback.to_string()
}

/// A GET whose answer nobody waits for (its sender may be killed): errors are dropped.
pub fn get_unchecked(url: &str) {
    let _ = client(false).get(url).send();
}

pub fn get_bearer(url: &str, token: &str) -> (u16, String) {
    let r = client(false).get(url).bearer_auth(token).send().expect("GET");
    (r.status().as_u16(), r.text().unwrap_or_default())
}
