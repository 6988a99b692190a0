//! Reading a request body within the server's limits, and refusing one that is too large so that the client
//! can read the refusal.
//!
//! A server that answers 413 and closes while the client is still sending makes the client's next write fail
//! (EPIPE or RST), and most clients (curl, reqwest, browsers) then report the broken pipe, not the 413. Like
//! nginx's `lingering_close`, the server reads and discards what the client goes on sending, for a bounded
//! time and number of bytes, before it answers and closes the connection.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Instant;

/// How long a refused body is read and discarded before the server answers anyway.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// How many bytes of a refused body are read and discarded before the server answers anyway.
pub const LINGER_BYTES: u64 = 16 << 20;

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyRefused {
    /// More than the limit arrived (what followed was discarded, within [`LINGER_TIME`] and [`LINGER_BYTES`]).
    TooLarge,
    /// The whole body did not arrive within the time given.
    Timeout,
    /// The connection failed or the client closed it mid-body.
    Broken,
}

/// The whole body, at most `max` bytes, arriving within `timeout`.
pub async fn read_capped(mut body: Incoming, max: usize, timeout: Duration) -> Result<Bytes, BodyRefused> {
    let deadline = Instant::now() + timeout;
    let mut out = BytesMut::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(BodyRefused::Timeout),
            Ok(None) => return Ok(out.freeze()),
            Ok(Some(Err(_))) => return Err(BodyRefused::Broken),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                linger(body).await;
                return Err(BodyRefused::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
}

/// Reads and discards the rest of a refused body, until it ends or [`LINGER_TIME`] or [`LINGER_BYTES`] is
/// reached, whichever is first.
pub async fn linger(mut body: Incoming) {
    let deadline = Instant::now() + LINGER_TIME;
    let mut discarded = 0u64;
    while discarded < LINGER_BYTES {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => discarded += frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => return,
        }
    }
}

/// Whether the client waits for `100 Continue` before it sends the body (RFC 9110 §10.1.1): reading the body
/// would invite it, so a refused body is not read.
pub fn expects_continue(headers: &HeaderMap) -> bool {
    headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}
