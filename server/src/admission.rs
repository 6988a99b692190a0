//! How many invocations run at once, and how many wait for a turn: past both, a request is refused at once
//! (503 with `Retry-After`) instead of piling up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Admission {
    running: Arc<Semaphore>,
    slots: usize,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

/// Why a request got no turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot busy and `max_waiting` requests waiting already.
    QueueFull,
    /// Waited `max_wait` without a slot coming free.
    WaitedTooLong,
}

impl Admission {
    /// `concurrent` invocations at once; up to `queue` more wait, each at most `max_wait`.
    pub fn new(concurrent: usize, queue: usize, max_wait: Duration) -> Self {
        Self { running: Arc::new(Semaphore::new(concurrent)), slots: concurrent, waiting: AtomicUsize::new(0), max_waiting: queue, max_wait }
    }

    /// A turn to run: held until the permit is dropped (for an HTTP function, when its response body ends).
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, Refused> {
        if let Ok(permit) = self.running.clone().try_acquire_owned() {
            return Ok(permit);
        }
        // Count ourselves in the queue only if there is room; never past the limit, even for an instant.
        let admitted = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| (w < self.max_waiting).then_some(w + 1))
            .is_ok();
        if !admitted {
            return Err(Refused::QueueFull);
        }
        let turn = tokio::time::timeout(self.max_wait, self.running.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match turn {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Refused::WaitedTooLong),
        }
    }

    /// Invocations holding a slot now.
    pub fn running(&self) -> usize {
        self.slots - self.running.available_permits()
    }

    /// Requests waiting for a slot now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").field("running", &self.running()).field("queue_depth", &self.queue_depth()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queue_then_refuse() {
        let gate = Arc::new(Admission::new(1, 1, Duration::from_secs(30)));
        let first = gate.enter().await.unwrap();
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await.map(drop) }
        });
        // Wait for the state (one in the queue), not for a time.
        for _ in 0..10_000 {
            if gate.queue_depth() == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(gate.queue_depth(), 1);
        assert_eq!(gate.enter().await.unwrap_err(), Refused::QueueFull);
        drop(first);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(gate.queue_depth(), 0);
    }
}
