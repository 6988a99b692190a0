//! A function's stdout and stderr: log lines the host passes on to its own stderr, within a budget per
//! invocation, and never by waiting.
//!
//! wasmtime-wasi's own stderr writes with a blocking `write_all` on the runtime's thread: a function that writes
//! gigabytes fills the disk or the terminal, and one whose host's stderr is a pipe nobody reads blocks the host
//! inside the write, past its `--timeout` (for ever, if nobody reads). Here:
//!
//! - stdout and stderr together may write `max_log` bytes per invocation; past that, one notice line is written
//!   and the rest is dropped (the function goes on; its writes succeed);
//! - when the host's stderr is a pipe, a write goes out only if the pipe has room for it and a reserve for the
//!   host's own messages (FIONREAD and F_GETPIPE_SZ, Linux pipe(7)); when it is a socket, it is sent without
//!   waiting (MSG_DONTWAIT). What does not fit is dropped, never waited for. A file or a terminal is written as
//!   usual.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes a function may write to stdout and stderr together, per invocation, by default.
pub const DEFAULT_MAX_LOG: usize = 1024 * 1024;

/// Room left in the host's stderr pipe for its own messages (the result's error, the grants line).
const RESERVE: usize = 16 * 1024;

/// The most a function may write in one call (what `check-write` grants).
const WRITE_PERMIT: usize = 64 * 1024;

/// The output budget of one invocation, shared by its stdout and stderr.
#[derive(Clone)]
pub(crate) struct FunctionOutput {
    budget: Arc<Mutex<Budget>>,
}

struct Budget {
    max: usize,
    written: usize,
    /// Bytes the function wrote that were not passed on (over the budget, or no room in the pipe).
    dropped: u64,
    noted: bool,
}

impl FunctionOutput {
    pub(crate) fn new(max: usize) -> Self {
        Self { budget: Arc::new(Mutex::new(Budget { max, written: 0, dropped: 0, noted: false })) }
    }

    /// Bytes the function wrote that were not passed on.
    pub(crate) fn dropped(&self) -> u64 {
        self.budget.lock().expect("output budget poisoned").dropped
    }

    /// Passes on what the budget allows and the host's stderr has room for; counts the rest.
    fn record(&self, bytes: &[u8]) {
        let mut budget = self.budget.lock().expect("output budget poisoned");
        let allowed = bytes.len().min(budget.max - budget.written);
        budget.written += allowed;
        let mut dropped = (bytes.len() - allowed) as u64;
        if allowed > 0 {
            dropped += (allowed - pass_on(&bytes[..allowed])) as u64;
        }
        if allowed < bytes.len() && !budget.noted {
            budget.noted = true;
            let note = format!(
                "\n[wasm-host: the function wrote more than {} bytes to stdout and stderr; the rest of its output is dropped (raise it with --max-log)]\n",
                budget.max
            );
            pass_on(note.as_bytes());
        }
        budget.dropped += dropped;
    }
}

/// What the host's stderr is, found once.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sink {
    Pipe,
    Socket,
    Other,
}

fn sink() -> Sink {
    static SINK: OnceLock<Sink> = OnceLock::new();
    *SINK.get_or_init(|| {
        // SAFETY: fstat on fd 2 with a zeroed stat buffer of the right type; on failure the buffer is unused.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(2, &mut st) } != 0 {
            return Sink::Other;
        }
        match st.st_mode & libc::S_IFMT {
            libc::S_IFIFO => Sink::Pipe,
            libc::S_IFSOCK => Sink::Socket,
            _ => Sink::Other,
        }
    })
}

/// Writes what fits to the host's stderr without waiting; returns how many bytes went out.
fn pass_on(bytes: &[u8]) -> usize {
    let stderr = std::io::stderr();
    let mut lock = stderr.lock();
    let fd = std::io::stderr().as_raw_fd();
    match sink() {
        Sink::Pipe => {
            // SAFETY: both calls only read the pipe's state into the integers given.
            let size = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
            let mut queued: libc::c_int = 0;
            let ok = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut queued) } == 0;
            if size <= 0 || !ok {
                return 0;
            }
            let free = (size as usize).saturating_sub(queued.max(0) as usize).saturating_sub(RESERVE);
            let n = bytes.len().min(free);
            if n > 0 && lock.write_all(&bytes[..n]).is_ok() { n } else { 0 }
        }
        Sink::Socket => {
            // SAFETY: sends from a valid buffer of the given length; never blocks (MSG_DONTWAIT).
            let sent = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
            sent.max(0) as usize
        }
        Sink::Other => {
            if lock.write_all(bytes).is_ok() { bytes.len() } else { 0 }
        }
    }
}

impl IsTerminal for FunctionOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for FunctionOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for FunctionOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.record(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

#[async_trait::async_trait]
impl Pollable for FunctionOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for FunctionOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.record(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, _cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
