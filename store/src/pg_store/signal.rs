//! The change signal of a PostgreSQL store: every committed change bumps the one row of `wasm_host_generation` and
//! sends `NOTIFY wasm_host_changes` with the new value in the same transaction. Each host keeps the highest value
//! it has seen in an atomic that [`crate::Backend::generation`] loads (the cached-token hot path: no round trip).
//!
//! A dedicated connection (not a pooled one) listens; since notifications sent while it was disconnected are
//! lost, it also reads the counter every [`CHECK_EVERY`], and while it is disconnected `generation()` answers
//! `None`, so callers read the store itself rather than trust a signal that cannot move.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::Fail;

/// The channel writers notify.
pub(super) const CHANNEL: &str = "wasm_host_changes";
/// How often the listener reads the counter itself.
pub(super) const CHECK_EVERY: Duration = Duration::from_millis(500);

#[derive(Default)]
pub(super) struct Signal {
    value: AtomicU64,
    live: AtomicBool,
    stopped: AtomicBool,
}

impl Signal {
    pub(super) fn load(&self) -> Option<u64> {
        self.live.load(Ordering::Acquire).then(|| self.value.load(Ordering::Acquire))
    }

    /// Records a counter value read, notified or written (they may arrive out of order: the highest wins).
    pub(super) fn seen(&self, value: u64) {
        self.value.fetch_max(value, Ordering::AcqRel);
    }

    /// Whether the signal can be trusted: a listener is connected, or the store has just read the counter.
    pub(super) fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Release);
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
