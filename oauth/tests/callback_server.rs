//! The loopback callback server (§3 of issue 12), for real on 127.0.0.1: connections are served concurrently (an
//! idle local connection holds only itself), the overall deadline holds, the browser is shown the outcome of the
//! code exchange rather than "complete" before it, and the start link that keeps `state` off a browser's command
//! line works once.

use std::time::Duration;

use secrecy::SecretString;
use tokio::net::TcpStream;
use wasm_host_oauth::authorize::{CallbackError, CallbackServer, Outcome};

const STATE: &str = "state-Hq81-callback-test";

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Local connections that connect and send nothing, as a stray or hostile local process may.
async fn idle(port: u16, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    held
}

/// Four idle connections are open before the browser's callback arrives; the wait's deadline (5 s) is shorter
/// than one idle connection's head timeout (10 s), so a server that took connections one at a time would end in
/// a timeout. The browser's request then waits for the code exchange and shows its real outcome.
#[tokio::test]
async fn idle_connections_do_not_hold_the_callback_and_the_page_tells_the_outcome() {
    for (outcome, status, title, text) in [
        (Outcome::Done("Authorized `c`.".into()), 200, "Authorization complete", "Authorized `c`."),
        (Outcome::Failed("the code was refused (invalid_grant)".into()), 400, "Authorization failed", "the code was refused (invalid_grant)"),
    ] {
        let server = CallbackServer::bind(0).await.unwrap();
        let port = server.port();
        let _held = idle(port, 4).await;
        let browser = tokio::spawn(async move {
            let r = client().get(format!("http://127.0.0.1:{port}/callback?code=c-1&state={STATE}")).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        });
        let pending = server.wait(&SecretString::from(STATE), None, Duration::from_secs(5)).await.expect("the callback was served");
        use secrecy::ExposeSecret;
        assert_eq!(pending.callback.code.expose_secret(), "c-1");
        assert!(!browser.is_finished(), "the browser is answered only once the outcome is known");
        pending.finish(outcome).await;
        let (got, page) = browser.await.unwrap();
        assert_eq!(got, status, "{page}");
        assert!(page.contains(title) && page.contains(text), "{page}");
    }
}

#[tokio::test]
async fn the_deadline_holds_however_many_connections_are_idle() {
    let server = CallbackServer::bind(0).await.unwrap();
    let _held = idle(server.port(), 4).await;
    let waited = tokio::time::timeout(Duration::from_secs(8), server.wait(&SecretString::from(STATE), None, Duration::from_secs(1)))
        .await
        .expect("the wait ends at its own deadline, not after the idle connections' timeouts");
    assert!(matches!(waited, Err(CallbackError::Timeout(_))), "{:?}", waited.err());
}

/// The link a browser is started with redirects to the authorization URL once; a second use gets 410.
#[tokio::test]
async fn the_start_link_redirects_once() {
    let server = CallbackServer::bind(0).await.unwrap();
    let port = server.port();
    let authorization = url::Url::parse(&format!("https://provider.example/authorize?state={STATE}&nonce=n-1")).unwrap();
    let start = server.start_url(&authorization);
    assert!(!start.contains(STATE) && !start.contains("n-1"), "{start}");
    let waiting = tokio::spawn(async move { server.wait(&SecretString::from(STATE), None, Duration::from_secs(10)).await });
    let first = client().get(&start).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 302);
    assert_eq!(first.headers()["location"].to_str().unwrap(), authorization.as_str());
    let second = client().get(&start).send().await.unwrap();
    assert_eq!(second.status().as_u16(), 410);
    let forged = client().get(format!("http://127.0.0.1:{port}/start/guess")).send().await.unwrap();
    assert_eq!(forged.status().as_u16(), 410);
    let browser = tokio::spawn(client().get(format!("http://127.0.0.1:{port}/callback?code=c-2&state={STATE}")).send());
    let pending = waiting.await.unwrap().expect("the callback came");
    pending.finish(Outcome::Done("ok".into())).await;
    assert_eq!(browser.await.unwrap().unwrap().status().as_u16(), 200);
}
