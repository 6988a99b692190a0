//! The background refresher: the tokens of every connection a loaded function is granted (or bound to) are
//! renewed ahead of expiry, so no request waits on a provider. A connection whose refresh fails is tried again
//! after a delay that doubles with each failure (at most five minutes), never in a tight loop.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::server::Server;

const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub(crate) async fn run(server: Arc<Server>, ahead: Duration) {
    // Often enough to catch a token within its look-ahead window, rarely enough to cost nothing.
    let tick = (ahead / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    let mut failing: HashMap<String, (u32, Instant)> = HashMap::new();
    loop {
        for name in granted(&server) {
            if failing.get(&name).is_some_and(|(_, retry_at)| Instant::now() < *retry_at) {
                continue;
            }
            let broker = server.host().broker();
            let before = broker.stats();
            let result = broker.refresh_ahead(&name, ahead).await;
            let after = broker.stats();
            match result {
                Ok(_) => {
                    if after.refreshes_ok > before.refreshes_ok {
                        tracing::info!(connection = %name, "background refresh");
                    }
                    failing.remove(&name);
                }
                Err(e) => {
                    let failures = failing.get(&name).map_or(1, |(n, _)| n + 1);
                    let delay = (tick * 2u32.saturating_pow(failures.min(16))).min(MAX_BACKOFF);
                    tracing::warn!(connection = %name, retry_in_s = delay.as_secs(), "background refresh failed: {e}");
                    failing.insert(name, (failures, Instant::now() + delay));
                }
            }
        }
        tokio::time::sleep(tick).await;
    }
}

/// Every connection some loaded function may read or is bound to; `*` stands for every connection in the store.
fn granted(server: &Server) -> BTreeSet<String> {
    let routes = server.routes();
    let mut names = BTreeSet::new();
    let mut all = false;
    for spec in routes.specs() {
        let grants = &spec.settings.grants;
        all |= grants.all_granted();
        names.extend(grants.names().iter().cloned());
        names.extend(spec.settings.bindings.iter().map(|b| b.connection.clone()));
    }
    if all {
        match server.host().broker().store().list() {
            Ok(connections) => names.extend(connections.into_iter().map(|c| c.name)),
            Err(e) => tracing::warn!("background refresh cannot list the connections: {e}"),
        }
    }
    names
}
