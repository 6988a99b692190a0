//! A function that misbehaves on request, for the sandbox tests. Input (a JSON string or object):
//! `"panic"` traps, `"exit"` exits instead of returning, `"err"` returns an error, `"log"` prints,
//! `"loop"` never ends, `"memory"` allocates without end, `"recurse"` recurses without end,
//! `"big-output"` returns 10 MiB, `{"fetch": URL}` GETs a URL, `{"token_loop": NAME, "n": N}` asks for a
//! token N times; anything else is echoed back.

wit_bindgen::generate!({ world: "function", path: "../../../wit", generate_all });

struct Misbehave;

impl Guest for Misbehave {
    fn run(input: String) -> Result<String, String> {
        let value = serde_json::from_str::<serde_json::Value>(&input).ok();
        if let Some(url) = value.as_ref().and_then(|v| v["fetch"].as_str()) {
            return wstd::runtime::block_on(fetch(url));
        }
        // {"token_loop": NAME, "n": N}: N calls of get-connection-token, for measuring one call's cost.
        if let Some(name) = value.as_ref().and_then(|v| v["token_loop"].as_str()) {
            let n = value.as_ref().and_then(|v| v["n"].as_u64()).unwrap_or(1);
            let mut total = 0usize;
            for _ in 0..n {
                let token = wasm_host::authconnection::authconnection::get_connection_token(name)
                    .map_err(|e| format!("{e:?}"))?;
                total += token.access_token.len();
            }
            return Ok(total.to_string());
        }
        match value.as_ref().and_then(|v| v.as_str()) {
            Some("panic") => panic!("asked to panic"),
            // WASI 0.2 `exit` carries only success or failure: any non-zero status arrives as 1.
            Some("exit") => std::process::exit(3),
            Some("err") => Err("asked to fail".into()),
            Some("log") => {
                println!("to stdout");
                eprintln!("to stderr");
                Ok("\"logged\"".into())
            }
            Some("loop") => {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            Some("memory") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            Some("recurse") => Ok(recurse(std::hint::black_box(1)).to_string()),
            Some("big-output") => Ok(format!("\"{}\"", "x".repeat(10 << 20))),
            _ => Ok(input),
        }
    }
}

#[allow(unconditional_recursion)] // the point: runaway recursion
fn recurse(n: u64) -> u64 {
    let padding = std::hint::black_box([n; 16]);
    recurse(padding[3] + 1) + padding[7]
}

async fn fetch(url: &str) -> Result<String, String> {
    use wstd::http::{error::ErrorCode, Body, Client, Request};
    let request = Request::get(url).body(Body::empty()).map_err(|e| e.to_string())?;
    match Client::new().send(request).await {
        Ok(response) => Ok(serde_json::json!({ "status": response.status().as_u16() }).to_string()),
        Err(e) => match e.downcast_ref::<ErrorCode>() {
            Some(ErrorCode::HttpRequestDenied) => Err("denied: the host refused the request".into()),
            _ => Err(format!("request failed: {e:#}")),
        },
    }
}

export!(Misbehave);
