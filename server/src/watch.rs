//! `serve --watch`: reloads the functions when a component or manifest file changes, exactly as SIGHUP does
//! ([`Server::reload`]: requests in flight finish on the old version; a function that fails to load keeps its
//! old version serving and the log says why). notify-debouncer-mini turns a burst of writes (a copy, an
//! editor's save through a temporary file and a rename) into one batch, delivered once the files have been quiet
//! for the debounce time: one reload per batch.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{new_debouncer, DebounceEventResult, Debouncer};
use thiserror::Error;

use crate::server::Server;

/// How long the files must be quiet before a reload.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(300);

/// Watching until dropped.
pub struct Watching(#[allow(dead_code, reason = "held: dropping it stops the watch")] Debouncer<RecommendedWatcher>);

#[derive(Debug, Error)]
#[error("cannot watch {} for changes (--watch): {reason}", path.display())]
pub struct WatchError {
    pub path: PathBuf,
    pub reason: String,
}

/// Watches `dirs` (not their subdirectories) and reloads `server` after a `.wasm` or `.toml` file in one of them
/// changed, was created, removed or renamed. The reload runs on the watcher's own thread, inside `runtime`'s
/// context, so two reloads never overlap and no request thread compiles.
pub fn watch(
    server: Arc<Server>,
    dirs: &[PathBuf],
    debounce: Duration,
    runtime: tokio::runtime::Handle,
) -> Result<Watching, WatchError> {
    let error = |path: &Path, e: &dyn std::fmt::Display| WatchError { path: path.to_owned(), reason: e.to_string() };
    let mut debouncer = new_debouncer(debounce, move |result: DebounceEventResult| match result {
        Ok(events) => {
            let mut changed: Vec<String> =
                events.iter().filter(|e| is_function_file(&e.path)).map(|e| e.path.display().to_string()).collect();
            if changed.is_empty() {
                return;
            }
            changed.sort();
            changed.dedup();
            tracing::info!(files = ?changed, "changed on disk: reloading the functions");
            let _context = runtime.enter();
            server.reload();
        }
        Err(e) => tracing::warn!("watching the functions' files: {e}"),
    })
    .map_err(|e| error(dirs.first().map_or(Path::new("."), |d| d), &e))?;
    for dir in dirs {
        debouncer.watcher().watch(dir, RecursiveMode::NonRecursive).map_err(|e| error(dir, &e))?;
    }
    Ok(Watching(debouncer))
}

fn is_function_file(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "wasm" || x == "toml")
}
