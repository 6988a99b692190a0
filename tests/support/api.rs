//! A tiny HTTP/1.1 server on 127.0.0.1 that answers like a userinfo API: only a request with the expected
//! bearer token gets the JSON; every request is recorded. Stopped when dropped.
//!
//! Some paths behave otherwise: `/redirect?to=URL` answers `302 Found` to `URL` (to anyone), `/always-401`
//! answers 401 whatever the request carries, and `/echo` answers 200 to any method (TRACE included) with the
//! request's `Authorization` echoed in an `x-echo-authorization` header and in the body, as a debugging endpoint
//! or a TRACE would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

/// Makes servers wait for each other: each request is answered only once `expected` requests have arrived
/// across all servers sharing it (or after 10 s). `met` tells whether they all arrived together, which proves
/// that the client sent them concurrently, with no timing assertion.
#[derive(Default)]
pub struct Rendezvous {
    arrived: Mutex<u32>,
    cond: std::sync::Condvar,
    expected: u32,
    pub met: AtomicBool,
}

impl Rendezvous {
    pub fn new(expected: u32) -> Arc<Self> {
        Arc::new(Self { expected, ..Default::default() })
    }

    fn arrive(&self) {
        let mut n = self.arrived.lock().unwrap();
        *n += 1;
        self.cond.notify_all();
        let (n, timeout) = self.cond.wait_timeout_while(n, Duration::from_secs(10), |n| *n < self.expected).unwrap();
        if !timeout.timed_out() && *n >= self.expected {
            self.met.store(true, Ordering::SeqCst);
        }
    }
}

pub struct Api {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Api {
    /// Serves `body` to requests carrying `Authorization: Bearer <token>`, 401 to others.
    pub fn start(token: &str, body: &str) -> Self {
        Self::start_with(token, body, None)
    }

    /// Like [`Api::start`], answering only when the rendezvous is met (see [`Rendezvous`]).
    pub fn start_with(token: &str, body: &str, rendezvous: Option<Arc<Rendezvous>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (token, body) = (token.to_owned(), body.to_owned());
        let (reqs, stopped) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (token, body, reqs, rendezvous) = (token.clone(), body.clone(), reqs.clone(), rendezvous.clone());
                        // A thread per connection, so a held answer does not block the next request.
                        std::thread::spawn(move || {
                            let _ = serve(stream, &token, &body, &reqs, rendezvous.as_deref());
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { port, requests, stop, thread: Some(thread) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    token: &str,
    body: &str,
    reqs: &Mutex<Vec<Recorded>>,
    rendezvous: Option<&Rendezvous>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let mut authorization = None;
    let mut content_length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let v = v.trim().to_owned();
            match k.to_ascii_lowercase().as_str() {
                "authorization" => authorization = Some(v),
                "content-length" => content_length = v.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut received = vec![0; content_length];
    reader.read_exact(&mut received)?;
    let ok = authorization.as_deref() == Some(&format!("Bearer {token}"));
    let redirect = path.strip_prefix("/redirect?to=").map(str::to_owned);
    let always_401 = path == "/always-401";
    let echo = path == "/echo";
    let echoed = authorization.clone().unwrap_or_default();
    reqs.lock().unwrap().push(Recorded { method, path, authorization, body: String::from_utf8_lossy(&received).into() });
    if let Some(r) = rendezvous {
        r.arrive();
    }
    let mut stream = stream;
    if let Some(to) = redirect {
        return write!(stream, "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    }
    if echo {
        let payload = format!("{{\"authorization\":\"{echoed}\",\"again\":\"{echoed}\"}}");
        return write!(
            stream,
            "HTTP/1.1 200 OK\r\nx-echo-authorization: {echoed}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
            payload.len()
        );
    }
    let (status, payload) = if ok && !always_401 {
        ("200 OK", body.to_owned())
    } else {
        ("401 Unauthorized", r#"{"error":"invalid_token"}"#.to_owned())
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
        payload.len()
    )?;
    stream.flush()
}
