//! Keeping a bound credential usable but never readable: what a bound origin's response could echo back.
//!
//! The host attaches the token to a request the function never sees, but a response can carry the request back:
//! `TRACE` answers with the request itself (RFC 9110 §9.3.8), and any endpoint may echo a header into its own
//! headers or body (debugging endpoints, error pages, httpbin's `/headers`). So, on a bound origin:
//!
//! - `TRACE`, `TRACK` (IIS's TRACE) and `CONNECT` are refused before they leave the host;
//! - the request asks for an uncompressed answer (`Accept-Encoding: identity`), so an echo cannot hide in gzip;
//! - every response header whose value contains the token is removed, and every occurrence of the token in the
//!   body is overwritten with `*` of the same length (the body keeps its length, so `Content-Length` stays true),
//!   also across chunk boundaries.
//!
//! What is not caught: a token the origin transforms before echoing it (re-encoded, split, or compressed
//! although identity was asked for). Binding an origin trusts it with the token (SECURITY.md).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};
use zeroize::Zeroizing;

/// Methods whose response is, or may be, the request itself.
pub(crate) fn reflecting_method(method: &http::Method) -> bool {
    ["TRACE", "TRACK", "CONNECT"].iter().any(|m| method.as_str().eq_ignore_ascii_case(m))
}

/// The token values a response from a bound origin must not carry back.
#[derive(Clone)]
pub(crate) struct Needles(Arc<Vec<Zeroizing<Vec<u8>>>>);

impl Needles {
    pub(crate) fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        Self(Arc::new(tokens.into_iter().filter(|t| !t.is_empty()).map(|t| Zeroizing::new(t.as_bytes().to_vec())).collect()))
    }

    fn longest(&self) -> usize {
        self.0.iter().map(|n| n.len()).max().unwrap_or(0)
    }

    /// Overwrites every occurrence of every needle in `data` with `*`; returns how many there were.
    fn mask(&self, data: &mut [u8]) -> usize {
        let mut found = 0;
        for needle in self.0.iter() {
            let mut at = 0;
            while let Some(i) = find(&data[at..], needle) {
                data[at + i..at + i + needle.len()].fill(b'*');
                at += i + needle.len();
                found += 1;
            }
        }
        found
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Removes response headers that carry a token; returns their names, for the log.
pub(crate) fn strip_headers(headers: &mut http::HeaderMap, needles: &Needles) -> Vec<String> {
    let names: Vec<http::HeaderName> = headers
        .iter()
        .filter(|(_, v)| needles.0.iter().any(|n| find(v.as_bytes(), n).is_some()))
        .map(|(k, _)| k.clone())
        .collect();
    for name in &names {
        headers.remove(name);
    }
    names.iter().map(|n| n.to_string()).collect()
}

/// A response body with every occurrence of the needles masked. It holds back the last `longest - 1` bytes of
/// what it has seen until more arrives (or the body ends), so a token split across chunks is still found.
pub(crate) struct Masked {
    inner: WasiBody,
    needles: Needles,
    held: BytesMut,
    trailers: Option<http::HeaderMap>,
    done: bool,
    /// Called once with the count, when the body ends, if anything was masked.
    on_masked: Option<Box<dyn FnOnce(usize) + Send>>,
    masked: usize,
}

impl Masked {
    pub(crate) fn wrap(inner: WasiBody, needles: Needles, on_masked: Box<dyn FnOnce(usize) + Send>) -> WasiBody {
        Masked { inner, needles, held: BytesMut::new(), trailers: None, done: false, on_masked: Some(on_masked), masked: 0 }
            .boxed_unsync()
    }

    fn finish(&mut self) {
        if self.masked > 0 {
            if let Some(report) = self.on_masked.take() {
                report(self.masked);
            }
        }
    }
}

impl Body for Masked {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                if !this.held.is_empty() {
                    let rest = this.held.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
                this.finish();
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.done = true;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(chunk) => {
                        this.held.extend_from_slice(&chunk);
                        this.masked += this.needles.mask(&mut this.held);
                        let keep = this.needles.longest().saturating_sub(1).min(this.held.len());
                        let ready = this.held.len() - keep;
                        if ready > 0 {
                            return Poll::Ready(Some(Ok(Frame::data(this.held.split_to(ready).freeze()))));
                        }
                    }
                    Err(frame) => {
                        this.trailers = frame.into_trailers().ok();
                        this.done = true;
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.held.is_empty() && self.trailers.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_masked_wherever_the_chunks_split_it() {
        let token = "tok-0123456789";
        let text = format!("{{\"echo\":\"Bearer {token}\",\"again\":\"{token}\"}}");
        for split in 1..text.len() {
            let chunks: Vec<Bytes> =
                text.as_bytes().chunks(split).map(Bytes::copy_from_slice).collect();
            let stream = futures_body(chunks);
            let masked = Masked::wrap(stream, Needles::new([token]), Box::new(|_| {}));
            let out = futures_collect(masked);
            assert_eq!(out.len(), text.len(), "the length is kept (split {split})");
            let out = String::from_utf8(out).unwrap();
            assert!(!out.contains(token), "split {split}: {out}");
            assert_eq!(out.matches(&"*".repeat(token.len())).count(), 2, "{out}");
        }
        let mut headers = http::HeaderMap::new();
        headers.insert("x-echo", format!("Bearer {token}").parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        assert_eq!(strip_headers(&mut headers, &Needles::new([token])), vec!["x-echo".to_owned()]);
        assert_eq!(headers.len(), 1);
        assert!(reflecting_method(&http::Method::TRACE));
        assert!(reflecting_method(&"track".parse().unwrap()));
        assert!(!reflecting_method(&http::Method::GET));
    }

    fn futures_body(chunks: Vec<Bytes>) -> WasiBody {
        crate::http::Frames { frames: chunks.into_iter().map(Frame::data).collect(), rest: None }.boxed_unsync()
    }

    fn futures_collect(body: WasiBody) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async { body.collect().await.unwrap().to_bytes().to_vec() })
    }
}
