//! A function that misbehaves on request, for the sandbox tests. Input (a JSON string or object):
//! `"panic"` traps, `"exit"` exits instead of returning, `"err"` returns an error, `"log"` prints,
//! `"loop"` never ends, `"memory"` allocates without end, `"recurse"` recurses without end,
//! `"big-output"` returns 10 MiB, `"flood"` writes to stderr without end, `{"header_maps": BYTES}` makes wasi:http
//! header maps with one value of BYTES each and keeps them, without end (each costs host memory, not its own), `{"fetch": URL}` GETs a URL, `{"token_loop": NAME, "n": N}` asks for a
//! token N times, `"leftover"` reports how many bytes of its static and heap memory are not zero and then
//! fills them (what an earlier invocation left behind must never be seen by a later one); anything else is
//! echoed back.

wit_bindgen::generate!({ world: "function", path: "../../../wit", generate_all });

struct Misbehave;

impl Guest for Misbehave {
    fn run(input: String) -> Result<String, String> {
        let value = serde_json::from_str::<serde_json::Value>(&input).ok();
        if let Some(url) = value.as_ref().and_then(|v| v["fetch"].as_str()) {
            return wstd::runtime::block_on(fetch(url));
        }
        // {"concurrent": URL, "n": N}: N GETs of URL all at once; counts answers and refusals.
        if let Some(url) = value.as_ref().and_then(|v| v["concurrent"].as_str()) {
            let n = value.as_ref().and_then(|v| v["n"].as_u64()).unwrap_or(1) as usize;
            let results = wstd::runtime::block_on(all_at_once((0..n).map(|_| fetch(url)).collect()));
            let answered = results.iter().filter(|r| r.is_ok()).count();
            let first_error = results.iter().find_map(|r| r.as_ref().err().cloned());
            return Ok(serde_json::json!({ "answered": answered, "failed": n - answered, "first_error": first_error }).to_string());
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
            Some("leftover") => Ok(leftover()),
            Some("big-output") => Ok(format!("\"{}\"", "x".repeat(10 << 20))),
            _ if value.as_ref().is_some_and(|v| v["header_maps"].is_u64()) => {
                use wasi::http::types::Fields;
                let bytes = value.as_ref().and_then(|v| v["header_maps"].as_u64()).unwrap_or(0) as usize;
                let value = vec![b'v'; bytes];
                let mut kept = Vec::new();
                loop {
                    let fields = Fields::new();
                    if let Err(e) = fields.append("x-big", &value) {
                        return Err(format!("append refused after {} maps: {e:?}", kept.len()));
                    }
                    kept.push(fields);
                }
            }
            Some("flood") => {
                let line = "x".repeat(64 << 10);
                loop {
                    eprintln!("{}", std::hint::black_box(&line));
                }
            }
            _ => Ok(input),
        }
    }
}

/// In .bss: zero in a fresh instance.
static mut SCRATCH: [u8; 64 << 10] = [0; 64 << 10];
/// Grown by `memory.grow`: more than the host resets in place (2 MiB), so both ways of resetting a slot are seen.
const HEAP: usize = 6 << 20;

fn leftover() -> String {
    let count = |bytes: &[u8]| bytes.iter().filter(|b| **b != 0).count();
    // SAFETY: one invocation at a time per instance. The grown pages belong to no allocator (wasi-libc's sbrk
    // grows memory after them); wasm guarantees them zero, and they sit at the same address every invocation, so
    // a slot that kept an earlier invocation's bytes shows them.
    unsafe {
        let scratch = &mut *std::ptr::addr_of_mut!(SCRATCH);
        let first_page = core::arch::wasm32::memory_grow(0, HEAP >> 16);
        assert!(first_page != usize::MAX, "memory.grow refused");
        let heap = std::slice::from_raw_parts_mut((first_page << 16) as *mut u8, HEAP);
        let before = (count(scratch), count(heap));
        scratch.fill(0x5a);
        heap.fill(0xa5);
        let after = (count(std::hint::black_box(scratch)), count(std::hint::black_box(heap)));
        serde_json::json!({ "page": first_page, "static": before.0, "heap": before.1, "static_after_fill": after.0, "heap_after_fill": after.1 })
            .to_string()
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

/// Polls every future together until all are done (no executor crate in this guest).
async fn all_at_once<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (fut, slot) in pinned.iter_mut().zip(done.iter_mut()).filter(|(_, s)| s.is_none()) {
            match fut.as_mut().poll(cx) {
                std::task::Poll::Ready(v) => *slot = Some(v),
                std::task::Poll::Pending => waiting = true,
            }
        }
        if waiting { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    done.into_iter().flatten().collect()
}

export!(Misbehave);
