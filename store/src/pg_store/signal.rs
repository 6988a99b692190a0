//! The change signal of a PostgreSQL store: every committed change bumps the one row of `wasm_host_generation` and
//! sends `NOTIFY wasm_host_changes` with the new value in the same transaction. Each host keeps the highest value
//! it has seen in an atomic that [`crate::Backend::generation`] loads (the cached-token hot path: no round trip).
//!
//! A dedicated connection (not a pooled one) listens; since notifications sent while it was disconnected are
//! lost, it also reads the counter every [`CHECK_EVERY`], and while it is disconnected `generation()` answers
//! `None`, so callers read the store itself rather than trust a signal that cannot move.
//!
//! A caller waiting for another host's refresh lease to end sleeps on the signal ([`Signal::wait_past`]), woken
//! when the counter passes the value it loaded (the winner's commit, or a lease released without one, moves it)
//! or when the listener disconnects.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::Fail;
use crate::backend::LeaseWait;

/// The channel writers notify.
pub(super) const CHANNEL: &str = "wasm_host_changes";
/// How often the listener reads the counter itself.
pub(super) const CHECK_EVERY: Duration = Duration::from_millis(500);

#[derive(Default)]
pub(super) struct Signal {
    value: AtomicU64,
    live: AtomicBool,
    stopped: AtomicBool,
    /// Taken by whoever moves `value` or `live` before telling the waiters in [`Signal::wait_past`] through
    /// `moved`, so that a waiter that has checked them and is about to sleep cannot miss the news.
    waiters: Mutex<()>,
    moved: Condvar,
}

impl Signal {
    pub(super) fn load(&self) -> Option<u64> {
        self.live.load(Ordering::Acquire).then(|| self.value.load(Ordering::Acquire))
    }

    /// Records a counter value read, notified or written (they may arrive out of order: the highest wins).
    pub(super) fn seen(&self, value: u64) {
        if self.value.fetch_max(value, Ordering::AcqRel) < value {
            self.wake();
        }
    }

    /// Whether the signal can be trusted: a listener is connected, or the store has just read the counter.
    pub(super) fn set_live(&self, live: bool) {
        if self.live.swap(live, Ordering::AcqRel) != live {
            self.wake();
        }
    }

    fn wake(&self) {
        let _turn = self.waiters.lock().expect("signal waiters poisoned");
        self.moved.notify_all();
    }

    /// Waits, at most `timeout`, for the counter to pass `seen`: [`LeaseWait::Ended`] when it has,
    /// [`LeaseWait::Unwatched`] when the signal is not live (or stops being), [`LeaseWait::Elapsed`] otherwise.
    pub(super) fn wait_past(&self, seen: u64, timeout: Duration) -> LeaseWait {
        let outcome = || {
            if !self.live.load(Ordering::Acquire) {
                Some(LeaseWait::Unwatched)
            } else if self.value.load(Ordering::Acquire) > seen {
                Some(LeaseWait::Ended)
            } else {
                None
            }
        };
        let turn = self.waiters.lock().expect("signal waiters poisoned");
        let (_turn, _) = self
            .moved
            .wait_timeout_while(turn, timeout, |_| outcome().is_none())
            .expect("signal waiters poisoned");
        outcome().unwrap_or(LeaseWait::Elapsed)
    }

    pub(super) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

pub(super) async fn read_counter(pool: &Pool) -> Result<u64, Fail> {
    let client = pool.get().await?;
    let row = client.query_one("SELECT value FROM wasm_host_generation WHERE id = 1", &[]).await?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Listens until the store is dropped, reconnecting (100 ms, doubling up to 2 s) whenever the connection ends.
pub(super) async fn listen(config: tokio_postgres::Config, tls: MakeRustlsConnect, signal: Arc<Signal>) {
    let mut backoff = Duration::from_millis(100);
    while !signal.stopped() {
        let connected = session(&config, &tls, &signal).await;
        signal.set_live(false);
        if connected {
            backoff = Duration::from_millis(100);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One listening connection, until it fails or the store is dropped; whether it got as far as listening.
async fn session(config: &tokio_postgres::Config, tls: &MakeRustlsConnect, signal: &Signal) -> bool {
    // Bounded like the pool's connections: a server that accepts and never answers does not stall the listener.
    let connecting = tokio::time::timeout(super::POOL_WAIT, config.connect(tls.clone()));
    let Ok(Ok((client, mut connection))) = connecting.await else { return false };
    let (tx, mut notified) = tokio::sync::mpsc::unbounded_channel();
    // The listening connection's messages are read here, which also drives the client's queries.
    let driver = tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message {
                if tx.send(n.payload().parse::<u64>().ok()).is_err() {
                    break;
                }
            }
        }
    });
    let listening = client.batch_execute(&format!("LISTEN {CHANNEL}")).await.is_ok();
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while listening && !signal.stopped() {
        tokio::select! {
            message = notified.recv() => match message {
                Some(Some(value)) => signal.seen(value),
                Some(None) => {}
                None => break,
            },
            _ = tick.tick() => {
                match client.query_one("SELECT value FROM wasm_host_generation WHERE id = 1", &[]).await {
                    Ok(row) => {
                        signal.seen(row.get::<_, i64>(0) as u64);
                        signal.set_live(true);
                    }
                    Err(_) => break,
                }
            }
        }
    }
    driver.abort();
    listening
}
