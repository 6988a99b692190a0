//! Hands out access tokens from the store, keeping opened tokens in memory for the life of the process.
//!
//! Opening a sealed token costs an X25519 operation; a cached one costs one atomic load of the store's shared
//! generation counter, which every process bumps after each change it commits. When the counter moved (or a
//! second has passed, see [`wasm_host_store::GENERATION_MAX_AGE`]) the connection's revision is read from the
//! store: that is how a token changed or revoked by another process (the CLI, another host) is noticed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use wasm_host_oauth::{ClientAuth, ClientCredentials, Http};
use wasm_host_store::{
    now_unix, printable, Connection, Grant, GENERATION_MAX_AGE, Keys, Lease, LeaseWait, NewTokens, ReadError, RefreshUpdate,
    ResolvedEndpoints, Status, Store,
};

/// A token as a function receives it. Secret fields stay wrapped until they cross into the guest.
#[derive(Clone)]
pub struct IssuedToken {
    pub access_token: SecretString,
    pub token_type: String,
    pub expires_at: Option<i64>,
    pub refresh_token: Option<SecretString>,
    pub scopes: Vec<String>,
    pub metadata: Vec<(String, String)>,
    /// `expires_at` as RFC 3339, formatted once rather than at every call.
    pub expires_at_text: Option<String>,
    /// Unix seconds when a refresh stored this token; `None` when `authorize` or `import-token` did. Such a token
    /// is not refreshed again within one margin of this (see [`TokenBroker::token`]).
    pub refreshed_at: Option<i64>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl IssuedToken {
    pub fn access_token(&self) -> &str {
        self.access_token.expose_secret()
    }
}

/// Why no token was issued; each maps to a case of the WIT `error` variant.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    #[error("no connection named `{0}`")]
    NotFound(String),
    #[error("{0}")]
    NeedsAuthorization(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

struct Cached {
    revision: u64,
    /// The store's generation loaded before the read this entry came from (or was last confirmed by).
    generation: Option<u64>,
    /// Trusted without reading the store until then (see [`GENERATION_MAX_AGE`]).
    revalidate_at: std::time::Instant,
    /// When the token stops being fresh (expiry minus the margin); `None`: it does not expire.
    fresh_until: Option<std::time::Instant>,
    token: Arc<IssuedToken>,
}

pub struct TokenBroker {
    store: Arc<Store>,
    keys: Arc<Keys>,
    margin: Duration,
    cache: Mutex<HashMap<String, Arc<Cached>>>,
    /// One refresh per connection in this process: the refresher holds it for writing; callers that find it held
    /// wait for reading, so the refresh's end wakes them all at once (not one after another through a mutex),
    /// and each finds what it stored in the cache.
    gates: Mutex<HashMap<String, Arc<tokio::sync::RwLock<()>>>>,
    http: Http,
    /// Names this process in refresh leases.
    holder: String,
    refreshes: AtomicU64,
    cache_hits: AtomicU64,
    refreshes_ok: AtomicU64,
    refreshes_failed: AtomicU64,
    provider_micros: AtomicU64,
    /// Told of every refresh request's time at the provider (see [`TokenBroker::observe_refreshes`]).
    refresh_observer: OnceLock<RefreshObserver>,
    /// When a 401 last made this process refresh each connection (see [`REJECTION_REFRESH_INTERVAL`]).
    rejection_refreshed: Mutex<HashMap<String, std::time::Instant>>,
}

/// What a broker did since it was made, for metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct BrokerStats {
    /// Tokens handed out from memory without reading the store.
    pub cache_hits: u64,
    /// Refresh requests the provider answered with tokens (a client-credentials connection's token requests
    /// count as refreshes).
    pub refreshes_ok: u64,
    /// Refresh requests that failed: refused, unreachable, or an answer that could not be used.
    pub refreshes_failed: u64,
    /// Seconds spent waiting for providers' token endpoints, all refreshes together.
    pub provider_seconds: f64,
}

/// Called once per refresh request with the time the provider's token endpoint took (sent to answered or
/// failed) and whether it answered with tokens: a metrics histogram, say.
pub type RefreshObserver = Box<dyn Fn(Duration, bool) + Send + Sync>;

/// What a caller needs of a token.
#[derive(Clone, Copy)]
enum Need<'a> {
    /// Valid for at least the margin.
    Fresh,
    /// Fresh, and not this access token, which an API has just refused.
    Other(&'a str),
    /// Valid for at least the margin plus this: the background refresher's look ahead.
    Ahead(Duration),
}

/// After a 401 made the host refresh a connection, another 401 within this time is not answered with another
/// refresh: an API that refuses fresh tokens will not be helped by more, and each refresh may rotate the refresh
/// token at the provider. Bounds what the functions of one process can make it send the provider.
pub const REJECTION_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// How long before expiry a token stops being handed out, by default.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// A refresh lease lasts this long unless renewed: a host killed mid-refresh blocks the others at most this long
/// (on one machine, the redb backend takes over from a dead process at once).
const LEASE_MS: i64 = 10_000;
/// The holder renews its lease this often while its provider call runs (the call may take up to the HTTP
/// timeout), so a slow provider never lets a second host in with the same refresh token.
const LEASE_RENEW_EVERY: Duration = Duration::from_secs(3);
/// How long a caller waits for another host's refresh: the longest a live holder can take, plus a lapsed lease.
const LEASE_WAIT: Duration =
    Duration::from_millis(wasm_host_oauth::http::DEFAULT_TIMEOUT.as_millis() as u64 + LEASE_MS as u64 + 5_000);
/// The longest one wait for a held lease lasts before the caller looks again (at the connection, its deadline):
/// also how long the blocking thread of a caller that gave up (its request cancelled) may stay waiting.
const LEASE_WAIT_STEP: Duration = Duration::from_secs(1);
/// Polling a held lease, where the store cannot wait for its end: the first interval, doubling up to the last.
const LEASE_POLL_FIRST: Duration = Duration::from_millis(1);
const LEASE_POLL_MAX: Duration = Duration::from_millis(10);

impl TokenBroker {
    pub fn new(store: Arc<Store>, keys: Arc<Keys>) -> Self {
        let holder = format!("{}-{}", std::process::id(), wasm_host_store::now_millis());
        Self {
            store,
            keys,
            margin: DEFAULT_REFRESH_MARGIN,
            cache: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
            http: Http::default(),
            holder,
            refreshes: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            refreshes_ok: AtomicU64::new(0),
            refreshes_failed: AtomicU64::new(0),
            provider_micros: AtomicU64::new(0),
            refresh_observer: OnceLock::new(),
            rejection_refreshed: Mutex::new(HashMap::new()),
        }
    }

    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// How many refresh requests this broker sent to providers.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// Sets the one observer of refresh requests' provider times; `false` (and `observer` dropped) when one is
    /// set already.
    pub fn observe_refreshes(&self, observer: RefreshObserver) -> bool {
        self.refresh_observer.set(observer).is_ok()
    }

    pub fn stats(&self) -> BrokerStats {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BrokerStats {
            cache_hits: n(&self.cache_hits),
            refreshes_ok: n(&self.refreshes_ok),
            refreshes_failed: n(&self.refreshes_failed),
            provider_seconds: n(&self.provider_micros) as f64 / 1e6,
        }
    }

    fn fresh(&self, token: &IssuedToken) -> bool {
        token.expires_at.is_none_or(|at| at - (self.margin.as_secs() as i64) > now_unix())
    }

    /// When a token a refresh stored may be refreshed again, if that is still ahead: one margin after it was
    /// stored. A provider whose tokens expire within the margin (`expires_in: 1`, or a skewed clock) would
    /// otherwise be asked for a new token at every call.
    fn refresh_barred_until(&self, token: &IssuedToken) -> Option<i64> {
        token.refreshed_at.map(|at| at + self.margin.as_secs() as i64).filter(|until| *until > now_unix())
    }

    /// Fresh (or just refreshed and not yet expired), and not the token an API just answered 401 to.
    fn usable(&self, token: &IssuedToken, need: Need<'_>) -> bool {
        let just_refreshed =
            || self.refresh_barred_until(token).is_some() && token.expires_at.is_none_or(|at| at > now_unix());
        match need {
            Need::Fresh => self.fresh(token) || just_refreshed(),
            Need::Other(rejected) => self.fresh(token) && token.access_token() != rejected,
            Need::Ahead(ahead) => {
                token.expires_at.is_none_or(|at| at - ((self.margin + ahead).as_secs() as i64) > now_unix())
                    || just_refreshed()
            }
        }
    }

    /// The answer when `token` must be refreshed but a refresh stored it less than a margin ago: it has expired
    /// (a still valid one is handed out by [`Self::usable`]), and the provider is not asked again before `until`.
    fn refreshed_too_recently(&self, name: &str, token: &IssuedToken, until: i64) -> TokenError {
        let lifetime = match (token.expires_at, token.refreshed_at) {
            (Some(at), Some(stored)) => format!("a token valid for {} s", (at - stored).max(0)),
            _ => "a token".to_owned(),
        };
        TokenError::Unavailable(format!(
            "the provider gave `{name}` {lifetime}, less than the refresh margin ({} s), and it has expired; the host \
             refreshes a connection at most once per margin, so the next refresh is at {} (in {} s): give this \
             function a refresh margin shorter than the provider's token lifetime (`--refresh-margin`, or \
             `refresh_margin` in its manifest), or check the clocks of this machine and the provider",
            self.margin.as_secs(),
            wasm_host_store::rfc3339(until),
            (until - now_unix()).max(0),
        ))
    }

    /// Refreshes `name` now if its token would stop being fresh within `ahead` (a background refresher calls
    /// this, so that no request waits on the provider); the same single refresh as [`TokenBroker::token`].
    pub async fn refresh_ahead(&self, name: &str, ahead: Duration) -> Result<Arc<IssuedToken>, TokenError> {
        self.token_unless(name, Need::Ahead(ahead)).await
    }

    /// A token for `name` valid for at least the margin, refreshed first when it is not.
    pub async fn token(&self, name: &str) -> Result<Arc<IssuedToken>, TokenError> {
        self.token_unless(name, Need::Fresh).await
    }

    /// A token for `name` other than `rejected`, which an API has just refused (401) although it had not
    /// expired by our clock: the provider revoked or rotated it early. Refreshes at most once however many
    /// callers report the same rejected token; those that come later get the token the first one stored.
    pub async fn token_after_rejection(
        &self,
        name: &str,
        rejected: &SecretString,
    ) -> Result<Arc<IssuedToken>, TokenError> {
        self.token_unless(name, Need::Other(rejected.expose_secret())).await
    }

    async fn token_unless(&self, name: &str, need: Need<'_>) -> Result<Arc<IssuedToken>, TokenError> {
        // The hot path: a cached token, nothing changed in the store, still fresh. No clock but the monotonic one.
        if matches!(need, Need::Fresh) {
            if let Some(token) = self.cached_fresh(name) {
                self.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(token);
            }
        }
        if let Some(token) = self.ready(self.current(name)?, need) {
            return Ok(token);
        }
        let gate = self.gates.lock().expect("gates poisoned").entry(name.to_owned()).or_default().clone();
        let _turn = match gate.try_write() {
            Ok(turn) => turn,
            Err(_) => {
                // A refresh is under way: wait for its end, then look at what it stored.
                drop(gate.read().await);
                if let Some(token) = self.ready(self.current(name)?, need) {
                    return Ok(token);
                }
                gate.write().await
            }
        };
        // Whoever held the gate before us may have refreshed already.
        let token = self.current(name)?;
        let token = match token {
            Some(t) if self.usable(&t, need) => return Ok(t),
            Some(t) => t,
            // A client-credentials connection without a token yet: fetch one.
            None => return self.refresh(name, need).await,
        };
        if matches!(need, Need::Other(_)) && self.fresh(&token) {
            let now = std::time::Instant::now();
            let mut last = self.rejection_refreshed.lock().expect("rejection times poisoned");
            if last.get(name).is_some_and(|at| now.duration_since(*at) < REJECTION_REFRESH_INTERVAL) {
                return Err(TokenError::Unavailable(format!(
                    "the API refused a token of `{name}` that was refreshed after a 401 less than {} s ago; the host \
                     does not refresh it again so soon (a refresh may rotate the provider's refresh token): check \
                     the connection's scopes and the API's access rules",
                    REJECTION_REFRESH_INTERVAL.as_secs()
                )));
            }
            last.insert(name.to_owned(), now);
        }
        if let (false, Some(until)) = (matches!(need, Need::Other(_)), self.refresh_barred_until(&token)) {
            return Err(self.refreshed_too_recently(name, &token, until));
        }
        self.refresh(name, need).await
    }

    /// The cached token for `name` when the store's generation is unchanged, the entry was confirmed less than
    /// [`GENERATION_MAX_AGE`] ago, and the token is fresh.
    fn cached_fresh(&self, name: &str) -> Option<Arc<IssuedToken>> {
        let generation = self.store.generation()?;
        let cache = self.cache.lock().expect("token cache poisoned");
        let c = cache.get(name)?;
        let now = std::time::Instant::now();
        (c.generation == Some(generation) && now < c.revalidate_at && c.fresh_until.is_none_or(|f| now < f))
            .then(|| c.token.clone())
    }

    fn entry(&self, revision: u64, generation: Option<u64>, token: Arc<IssuedToken>) -> Arc<Cached> {
        let now = std::time::Instant::now();
        // Freshness turned into a monotonic deadline once, so the hot path reads no wall clock.
        let fresh_until = token.expires_at.map(|at| {
            let left = at - self.margin.as_secs() as i64 - now_unix();
            now + Duration::from_secs(left.max(0) as u64)
        });
        Arc::new(Cached { revision, generation, revalidate_at: now + GENERATION_MAX_AGE, fresh_until, token })
    }

    /// `token` when there is one and it meets `need`.
    fn ready(&self, token: Option<Arc<IssuedToken>>, need: Need<'_>) -> Option<Arc<IssuedToken>> {
        token.filter(|t| self.usable(t, need))
    }

    /// The stored token as it is now (from the cache when nothing changed), fresh or not; `None` for a
    /// client-credentials connection that holds none yet (or whose token was revoked): the host fetches one.
    fn current(&self, name: &str) -> Result<Option<Arc<IssuedToken>>, TokenError> {
        // Loaded before anything is read from the store; see wasm_host_store::Backend::generation.
        let generation = self.store.generation();
        let cached = self.cache.lock().expect("token cache poisoned").get(name).cloned();
        // Nothing cached: the full read answers "not found" too, so no separate revision read first.
        let Some(c) = cached else { return self.load(name) };
        if generation.is_some() && c.generation == generation && std::time::Instant::now() < c.revalidate_at {
            return Ok(Some(c.token.clone()));
        }
        match self.store.revision(name).map_err(internal)? {
            Some(rev) if c.revision == rev => {
                let confirmed = self.entry(rev, generation, c.token.clone());
                self.cache.lock().expect("token cache poisoned").insert(name.to_owned(), confirmed);
                Ok(Some(c.token.clone()))
            }
            None => Err(TokenError::NotFound(printable(name))),
            Some(_) => self.load(name),
        }
    }

    /// Reads `name` from the store (and caches its token); `None` as for [`Self::current`].
    fn load(&self, name: &str) -> Result<Option<Arc<IssuedToken>>, TokenError> {
        let generation = self.store.generation();
        let (connection, snapshot) = match self.store.token_snapshot(name, &self.keys).map_err(internal)? {
            Some(found) => found,
            None => return Err(TokenError::NotFound(printable(name))),
        };
        let client_credentials = connection.options.grant == Grant::ClientCredentials;
        let snapshot = match (connection.status, snapshot) {
            (Status::Authorized, Some(s)) => s,
            (status, _) if client_credentials && fetches_itself(status) => return Ok(None),
            (status, _) => {
                return Err(TokenError::NeedsAuthorization(needs_authorization_text(
                    name,
                    connection.options.grant,
                    status,
                    connection.status_reason.as_deref(),
                )));
            }
        };
        let revision = connection.revision;
        let token = issued(connection, snapshot.access_token, snapshot.refresh_token);
        self.remember(name, revision, generation, token.clone());
        Ok(Some(token))
    }

    fn remember(&self, name: &str, revision: u64, generation: Option<u64>, token: Arc<IssuedToken>) {
        let cached = self.entry(revision, generation, token);
        self.cache.lock().expect("token cache poisoned").insert(name.to_owned(), cached);
    }

    /// Refreshes `name` unless another process is doing it, in which case its result is used. New tokens are
    /// committed (the lease ending with that write) before anyone receives them.
    ///
    /// A caller that finds the lease held waits for it to end ([`wasm_host_store::Backend::wait_lease_end`]: on
    /// redb the lock itself, on PostgreSQL the change signal) rather than on a tick, so it learns of the
    /// holder's commit when it happens; then it looks at the connection, and asks for the lease only if the
    /// holder did not store what it needs. Where the store cannot wait (PostgreSQL with its listening
    /// connection down) it polls, from 1 ms doubling to 10 ms.
    async fn refresh(&self, name: &str, need: Need<'_>) -> Result<Arc<IssuedToken>, TokenError> {
        let started = std::time::Instant::now();
        let deadline = started + LEASE_WAIT;
        let mut poll = LEASE_POLL_FIRST;
        loop {
            // Loaded before the lease is asked for: a commit after it wakes the wait below (see wait_lease_end).
            let generation = self.store.generation();
            match blocking(|| self.store.try_lease(name, &self.holder, LEASE_MS)).map_err(write_internal)? {
                Lease::Acquired => break,
                Lease::Held { .. } => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(TokenError::Unavailable(format!(
                            "another process has been refreshing `{name}` for too long; try again"
                        )));
                    }
                    if self.wait_lease_end(name, generation, left.min(LEASE_WAIT_STEP)).await? == LeaseWait::Unwatched
                    {
                        tokio::time::sleep(poll.min(left)).await;
                        poll = (poll * 2).min(LEASE_POLL_MAX);
                    }
                    if let Some(token) = self.ready(self.current(name)?, need) {
                        return Ok(token);
                    }
                }
            }
        }
        let leased = started.elapsed();
        let renewing = async {
            loop {
                tokio::time::sleep(LEASE_RENEW_EVERY).await;
                // A failed renewal changes nothing here: the commit is refused if another holder took over.
                let _ = blocking(|| self.store.try_lease(name, &self.holder, LEASE_MS));
            }
        };
        // The renewal runs only while the refresh is pending, in this task: never after the commit that ends it.
        let result = tokio::select! {
            result = self.refresh_holding_lease(name, need, leased) => result,
            never = renewing => never,
        };
        if result.is_err() {
            // Success and a refused refresh release the lease in their own write; this covers the rest.
            let _ = blocking(|| self.store.release_lease(name, &self.holder));
        }
        result
    }

    /// [`wasm_host_store::Backend::wait_lease_end`] on a blocking thread, so that neither flavour of runtime is
    /// held up by it (on a current-thread runtime `blocking` would stop every other task).
    async fn wait_lease_end(
        &self,
        name: &str,
        generation: Option<u64>,
        timeout: Duration,
    ) -> Result<LeaseWait, TokenError> {
        let (store, key) = (self.store.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || store.wait_lease_end(&key, generation, timeout))
            .await
            .map_err(|e| TokenError::Internal(format!("waiting for another process's refresh of `{name}`: {e}")))?
            .map_err(write_internal)
    }

    /// `leased`: how long taking the lease took, for the refresh's log line.
    async fn refresh_holding_lease(
        &self,
        name: &str,
        need: Need<'_>,
        leased: Duration,
    ) -> Result<Arc<IssuedToken>, TokenError> {
        // A command that changes the connection while we refresh (import-token, revoke, authorize, delete) wins:
        // our result is dropped and we look again, a bounded number of times.
        for _ in 0..3 {
            if let Some(token) = self.refresh_once(name, need, leased).await? {
                return Ok(token);
            }
        }
        Err(TokenError::Unavailable(format!("`{name}` kept changing while it was being refreshed; try again")))
    }

    /// One refresh from what the store holds now; `None` when the connection changed before our result could be
    /// committed (nothing was written).
    async fn refresh_once(
        &self,
        name: &str,
        need: Need<'_>,
        leased: Duration,
    ) -> Result<Option<Arc<IssuedToken>>, TokenError> {
        let read_started = std::time::Instant::now();
        // The connection, its refresh token and client secret from one snapshot, whose revision our commit needs.
        let grant = self
            .store
            .refresh_grant(name, &self.keys)
            .map_err(internal)?
            .ok_or_else(|| TokenError::NotFound(printable(name)))?;
        // Another process may have finished a refresh between our check and our lease: the revision says so. The
        // token judged unusable (cached, of this revision) needs no second decrypt.
        let revision = grant.connection.revision;
        let same = self.cache.lock().expect("token cache poisoned").get(name).filter(|c| c.revision == revision).map(|c| c.token.clone());
        let token = match same {
            Some(token) => Some(token),
            None => self.load(name)?,
        };
        if let Some(token) = self.ready(token.clone(), need) {
            let _ = blocking(|| self.store.release_lease(name, &self.holder));
            return Ok(Some(token));
        }
        if let (false, Some((token, until))) =
            (matches!(need, Need::Other(_)), token.as_ref().and_then(|t| Some((t, self.refresh_barred_until(t)?))))
        {
            return Err(self.refreshed_too_recently(name, token, until));
        }
        let read = read_started.elapsed();
        let connection = grant.connection;
        let client_credentials = connection.options.grant == Grant::ClientCredentials;
        let (request, resolved) = if client_credentials {
            if !fetches_itself(connection.status) {
                // Marked refused between the load above and this read.
                return Ok(None);
            }
            (Request::ClientCredentials, client_credentials_endpoints(name, &connection)?)
        } else {
            if connection.token.is_none() || connection.status != Status::Authorized {
                // Changed between the load above and this read.
                return Ok(None);
            }
            let Some(refresh_token) = grant.refresh_token else {
                return Err(TokenError::NeedsAuthorization(format!(
                    "the access token of `{name}` has expired or was refused, and the provider gave no refresh \
                     token: run `wasm-host authconnection authorize {name}`"
                )));
            };
            let Some(resolved) = connection.resolved.clone() else {
                return Err(TokenError::NeedsAuthorization(format!(
                    "the access token of `{name}` has expired or was refused, and its token endpoint is unknown \
                     (the tokens were imported): run `wasm-host authconnection authorize {name}`"
                )));
            };
            (Request::Refresh(refresh_token), resolved)
        };
        let client_secret = grant
            .client_secret
            .ok_or_else(|| TokenError::Internal(format!("connection `{name}` has no client secret stored")))?;
        let token_url = url::Url::parse(&resolved.token_url)
            .map_err(|e| TokenError::Internal(format!("stored token URL of `{name}` is invalid: {e}")))?;
        let client = ClientCredentials {
            id: &connection.client_id,
            secret: &client_secret,
            auth: if resolved.client_auth == "post" { ClientAuth::Post } else { ClientAuth::Basic },
        };
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        // `expires_in` counts from when the provider issued the token, which is after we sent the request: counting
        // from the send (not from the answer) never puts the expiry later than the provider's.
        let sent = now_unix();
        let options = &connection.options;
        let response = match &request {
            Request::Refresh(refresh_token) => {
                wasm_host_oauth::token::refresh_with(&self.http, &token_url, &client, refresh_token, &options.token_params)
                    .await
            }
            Request::ClientCredentials => {
                let scopes = &options.default_scopes;
                wasm_host_oauth::token::client_credentials_with(&self.http, &token_url, &client, scopes, &options.token_params)
                    .await
            }
        };
        let elapsed = started.elapsed();
        self.provider_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        let outcome = if response.is_ok() { &self.refreshes_ok } else { &self.refreshes_failed };
        outcome.fetch_add(1, Ordering::Relaxed);
        if let Some(observe) = self.refresh_observer.get() {
            observe(elapsed, response.is_ok());
        }
        let response_ok = response.is_ok();
        let commit_started = std::time::Instant::now();
        // Where a refresh's time goes, in µs: the lease (a durable commit), the read of the grant, the provider,
        // and the commit of the result (`commit_us`: 0 when there is nothing to store).
        let log = |commit: Option<Duration>| {
            tracing::info!(
                connection = name,
                grant = connection.options.grant.as_str(),
                elapsed_ms = elapsed.as_millis() as u64,
                ok = response_ok,
                lease_us = leased.as_micros() as u64,
                read_us = read.as_micros() as u64,
                provider_us = elapsed.as_micros() as u64,
                commit_us = commit.map_or(0, |c| c.as_micros() as u64),
                "refresh"
            )
        };
        match response {
            Ok(r) => {
                let (refresh, requested, resolved) = match &r.refresh_token {
                    // RFC 6749 §4.4.3: no refresh token is expected; one sent anyway would never be used.
                    _ if client_credentials => (RefreshUpdate::Remove, options.default_scopes.clone(), Some(resolved)),
                    Some(new) => (RefreshUpdate::Replace(new), Vec::new(), None),
                    None => (RefreshUpdate::Keep, Vec::new(), None),
                };
                let id_token = match &r.id_token {
                    Some(new) => RefreshUpdate::Replace(new),
                    None => RefreshUpdate::Keep,
                };
                let previous = connection.token.as_ref().map(|t| t.scopes.clone());
                let stored = blocking(|| self.store.put_refreshed(
                        name,
                        NewTokens {
                            access_token: &r.access_token,
                            refresh,
                            id_token,
                            token_type: r.token_type.clone(),
                            expires_at: r.expires_in.map(|s| sent + s),
                            scopes: r.scope.clone().or(previous.filter(|_| !client_credentials)).unwrap_or(requested),
                            metadata: r.extra.clone(),
                            credentials: r.credentials.clone(),
                            resolved,
                            release_lease: Some(&self.holder),
                        },
                        &self.keys,
                        connection.revision,
                    ));
                log(Some(commit_started.elapsed()));
                match stored {
                    // Built from what was just committed: no read, no decrypt. The store's generation moved with
                    // the commit, and another process's change may have followed it: the entry carries none, so
                    // the next call confirms its revision (a read, no decrypt) before trusting it.
                    Ok(stored) => {
                        let refresh_token = match (&request, &r.refresh_token) {
                            _ if client_credentials || !stored.expose_refresh_token => None,
                            (_, Some(new)) => Some(new.clone()),
                            (Request::Refresh(kept), None) => Some(kept.clone()),
                            (Request::ClientCredentials, None) => None,
                        };
                        let revision = stored.revision;
                        let token = issued(stored, r.access_token, refresh_token);
                        self.remember(name, revision, None, token.clone());
                        Ok(Some(token))
                    }
                    Err(e) => changed(e),
                }
            }
            // The client itself was refused (a rotated secret): the grant is fine, the registration is not.
            // Recorded, so that no later call sends the provider the same refused request.
            Err(e) if e.is_client_refused() => {
                let kept = if client_credentials { "" } else { "; the grant is kept" };
                let reason = format!(
                    "the provider refused the client registration ({e}): update it with `wasm-host authconnection \
                     update {name} --client-secret-stdin` (or --client-id, --client-auth){kept}"
                );
                log(None);
                if let Err(e) = blocking(|| self.store.mark_client_refused(name, &reason, Some(&self.holder), Some(connection.revision), &self.keys)) {
                    return changed(e);
                }
                Err(TokenError::NeedsAuthorization(format!("connection `{name}`: {reason}")))
            }
            // Any answer that will be the same on every retry, whatever its shape: recorded, so later calls are
            // told at once instead of asking the provider again.
            Err(e) if e.is_permanent() => {
                log(None);
                let reason = e.to_string();
                let marked = blocking(|| {
                    self.store.mark_needs_authorization(name, &reason, Some(&self.holder), Some(connection.revision), &self.keys)
                });
                if let Err(e) = marked {
                    return changed(e);
                }
                Err(TokenError::NeedsAuthorization(needs_authorization_text(
                    name,
                    connection.options.grant,
                    Status::NeedsAuthorization,
                    Some(&reason),
                )))
            }
            Err(e) => {
                log(None);
                let what = if client_credentials { "requesting a token for" } else { "refreshing" };
                Err(TokenError::Unavailable(format!("{what} `{name}` failed, try again later: {e}")))
            }
        }
    }
}

/// The token a function is given, from a connection's record and its opened secrets.
fn issued(connection: Connection, access_token: SecretString, refresh_token: Option<SecretString>) -> Arc<IssuedToken> {
    let info = connection.token.expect("an authorized connection's record has token info");
    Arc::new(IssuedToken {
        access_token,
        token_type: info.token_type,
        expires_at: info.expires_at,
        refresh_token,
        scopes: info.scopes,
        metadata: connection.metadata.into_iter().collect(),
        expires_at_text: info.expires_at.map(wasm_host_store::rfc3339),
        refreshed_at: info.refreshed.then_some(info.obtained_at),
    })
}

/// Runs blocking store work (a commit waits for fsyncs: milliseconds on a virtual disk) without stalling the
/// requests that share this runtime thread: on a multi-threaded runtime they move to another worker first. On a
/// current-thread runtime (`run`, one invocation) it simply runs.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// What a token request of the broker sends.
enum Request {
    /// RFC 6749 §6.
    Refresh(SecretString),
    /// RFC 6749 §4.4.
    ClientCredentials,
}

/// Whether a client-credentials connection in this state gets its token from the host: not when the provider
/// refused it (the registration must change first, or every use would send the same refused request).
fn fetches_itself(status: Status) -> bool {
    matches!(status, Status::Created | Status::Authorized | Status::Revoked)
}

/// Where a client-credentials connection asks for tokens: fixed by its first token (`resolved`), else the token
/// endpoint `create` stored.
fn client_credentials_endpoints(name: &str, c: &Connection) -> Result<ResolvedEndpoints, TokenError> {
    if let Some(r) = &c.resolved {
        return Ok(r.clone());
    }
    let token_url = c.endpoints.token_url.clone().ok_or_else(|| {
        TokenError::NeedsAuthorization(format!(
            "connection `{name}` uses the client-credentials grant but has no token endpoint: set one with \
             `wasm-host authconnection update {name} --token-url URL`"
        ))
    })?;
    Ok(ResolvedEndpoints {
        token_url,
        revocation_url: c.endpoints.revocation_url.clone(),
        userinfo_url: c.endpoints.userinfo_url.clone(),
        issuer: c.issuer_url.clone(),
        client_auth: c.options.client_auth.clone().unwrap_or_else(|| "basic".to_owned()),
    })
}

fn needs_authorization_text(name: &str, grant: Grant, status: Status, reason: Option<&str>) -> String {
    let why = match status {
        Status::NeedsAuthorization if grant == Grant::ClientCredentials => {
            let reason = reason.map(|r| format!(" ({r})")).unwrap_or_default();
            return format!(
                "the provider refused to issue connection `{name}` a token{reason}: correct its scopes, parameters \
                 or client with `wasm-host authconnection update {name}`, after which the next use asks again"
            );
        }
        Status::Created => "has never been authorized".to_owned(),
        Status::Revoked => "was revoked".to_owned(),
        Status::NeedsAuthorization => match reason {
            Some(r) => format!("must be authorized again ({r})"),
            None => "must be authorized again".to_owned(),
        },
        Status::Authorized => "holds no access token".to_owned(),
        // The reason says what to do (update the registration), not authorize.
        Status::ClientRefused => {
            return format!("connection `{name}`: {}", reason.unwrap_or("the provider refused its client registration: run `wasm-host authconnection update`"));
        }
    };
    format!("connection `{name}` {why}: run `wasm-host authconnection authorize {name}`")
}

/// A refresh's write was refused because the connection changed meanwhile: `Ok(None)`, look again.
fn changed(e: wasm_host_store::WriteError) -> Result<Option<Arc<IssuedToken>>, TokenError> {
    match e {
        wasm_host_store::WriteError::Changed(_) | wasm_host_store::WriteError::NotFound(_) => Ok(None),
        e => Err(write_internal(e)),
    }
}

/// A store that cannot be reached now (a database down or restarting) is `unavailable`: the call may succeed later.
fn write_internal(e: wasm_host_store::WriteError) -> TokenError {
    if e.is_unavailable() { TokenError::Unavailable(e.to_string()) } else { TokenError::Internal(e.to_string()) }
}

fn internal(e: ReadError) -> TokenError {
    if e.is_unavailable() { TokenError::Unavailable(e.to_string()) } else { TokenError::Internal(e.to_string()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_host_store::{Endpoints, NewConnection, NewTokens, RefreshUpdate, TYPE_OAUTH2};

    fn new_connection(name: &str) -> NewConnection {
        NewConnection {
            name: name.into(),
            kind: TYPE_OAUTH2.into(),
            provider_url: "https://p.example/".into(),
            issuer_url: None,
            client_id: "c".into(),
            endpoints: Endpoints::default(),
            expose_refresh_token: false,
        }
    }

    fn put(store: &Store, keys: &Keys, name: &str, token: &str, expires_at: Option<i64>) {
        let token = SecretString::from(token);
        store
            .put_tokens(
                name,
                NewTokens {
                    access_token: &token,
                    refresh: RefreshUpdate::Remove,
                    id_token: RefreshUpdate::Remove,
                    token_type: "Bearer".into(),
                    expires_at,
                    scopes: vec![],
                    metadata: vec![],
                    credentials: vec![],
                    resolved: None,
                    release_lease: None,
                },
                keys,
            )
            .unwrap();
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    #[test]
    fn cached_tokens_follow_changes_made_through_another_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let keys = Arc::new(Keys::generate());
        let store = Arc::new(Store::open(&path).unwrap());
        store.create(new_connection("c"), &SecretString::from("s"), &keys).unwrap();
        put(&store, &keys, "c", "first", None);
        let broker = TokenBroker::new(store, keys.clone());
        assert_eq!(block(broker.token("c")).unwrap().access_token(), "first");
        assert_eq!(block(broker.token("c")).unwrap().access_token(), "first", "served from the cache");

        // Another handle on the same file, as another process would have.
        let other = Store::open(&path).unwrap();
        put(&other, &keys, "c", "second", None);
        assert_eq!(block(broker.token("c")).unwrap().access_token(), "second");
        other.delete("c").unwrap();
        assert_eq!(block(broker.token("c")).unwrap_err(), TokenError::NotFound("c".into()));
        // Re-created under the same name: never the deleted connection's cached token.
        other.create(new_connection("c"), &SecretString::from("s"), &keys).unwrap();
        assert!(matches!(block(broker.token("c")), Err(TokenError::NeedsAuthorization(_))));
    }

    #[test]
    fn a_token_inside_the_margin_is_not_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(Keys::generate());
        let store = Arc::new(Store::open(&dir.path().join("s.redb")).unwrap());
        store.create(new_connection("c"), &SecretString::from("s"), &keys).unwrap();
        put(&store, &keys, "c", "soon", Some(now_unix() + 30));
        let broker = TokenBroker::new(store.clone(), keys.clone());
        // Expiring, and imported (no token endpoint known): the function is told to have it authorized.
        assert!(matches!(block(broker.token("c")), Err(TokenError::NeedsAuthorization(_))));
        let lenient = TokenBroker::new(store, keys).with_margin(Duration::from_secs(5));
        assert_eq!(block(lenient.token("c")).unwrap().access_token(), "soon");
    }

    /// Fault kind 4 of issue 12: a token a refresh stored less than a margin ago is not refreshed again. Valid,
    /// it is handed out though inside the margin; expired, the answer says so and when the next refresh may come,
    /// without asking the provider (this connection has no token endpoint: a refresh would fail otherwise).
    #[test]
    fn a_token_refreshed_less_than_a_margin_ago_is_not_refreshed_again() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(Keys::generate());
        let store = Arc::new(Store::open(&dir.path().join("s.redb")).unwrap());
        store.create(new_connection("c"), &SecretString::from("s"), &keys).unwrap();
        let refreshed = |token: &str, expires_at: i64| {
            let revision = store.revision("c").unwrap().unwrap();
            let token = SecretString::from(token);
            let tokens = NewTokens { expires_at: Some(expires_at), ..NewTokens::bearer(&token) };
            store.put_refreshed("c", tokens, &keys, revision).unwrap();
        };
        refreshed("short", now_unix() + 30);
        let broker = TokenBroker::new(store.clone(), keys.clone());
        for _ in 0..3 {
            assert_eq!(block(broker.token("c")).unwrap().access_token(), "short");
            assert_eq!(block(broker.refresh_ahead("c", Duration::from_secs(10))).unwrap().access_token(), "short");
        }
        refreshed("expired", now_unix() - 1);
        let TokenError::Unavailable(e) = block(broker.token("c")).unwrap_err() else { panic!("not unavailable") };
        assert!(e.contains("less than the refresh margin (60 s), and it has expired") && e.contains("--refresh-margin"), "{e}");
        assert!(!e.contains("try again later"), "{e}");
        assert_eq!(broker.refreshes(), 0);
        // The same token stored by an authorization is due for a refresh (here: none possible, so it says so).
        put(&store, &keys, "c", "authorized", Some(now_unix() + 30));
        assert!(matches!(block(broker.token("c")), Err(TokenError::NeedsAuthorization(_))));
    }

    /// A caller that finds another process refreshing waits for that refresh to end and hands out what it stored,
    /// asking the provider nothing (here it could not: the connection has no refresh token); when the other
    /// process gives the lease back without storing anything, the caller takes it and refreshes itself. On a
    /// current-thread runtime, as `wasm-host run` has: the wait is on a blocking thread, never on the runtime's.
    #[test]
    fn a_caller_waits_for_another_process_refresh_and_uses_its_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let keys = Arc::new(Keys::generate());
        let store = Arc::new(Store::open(&path).unwrap());
        store.create(new_connection("c"), &SecretString::from("s"), &keys).unwrap();
        put(&store, &keys, "c", "expired", Some(now_unix() - 10));
        let broker = TokenBroker::new(store, keys.clone());
        // Another handle on the file, as another process has it, holds the lease while it "refreshes".
        let other = Store::open(&path).unwrap();
        assert_eq!(other.try_lease("c", "other-1", 60_000).unwrap(), Lease::Acquired);
        let got = std::thread::scope(|s| {
            s.spawn(|| {
                // Not a timed assertion: only gives the caller time to start waiting, which the outcome does not
                // depend on.
                std::thread::sleep(Duration::from_millis(200));
                let revision = other.revision("c").unwrap().unwrap();
                let token = SecretString::from("stored by the other process");
                let tokens = NewTokens {
                    expires_at: Some(now_unix() + 3600),
                    release_lease: Some("other-1"),
                    ..NewTokens::bearer(&token)
                };
                other.put_refreshed("c", tokens, &keys, revision).unwrap();
            });
            block(broker.token("c"))
        });
        assert_eq!(got.unwrap().access_token(), "stored by the other process");
        assert_eq!(broker.refreshes(), 0, "no request of its own");

        // Given back without a write (its refresh failed): the caller takes the lease and tries itself.
        put(&other, &keys, "c", "expired again", Some(now_unix() - 10));
        assert_eq!(other.try_lease("c", "other-1", 60_000).unwrap(), Lease::Acquired);
        let got = std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(200));
                other.release_lease("c", "other-1").unwrap();
            });
            block(broker.token("c"))
        });
        let Err(TokenError::NeedsAuthorization(e)) = got else { panic!("not its own refresh: {got:?}") };
        assert!(e.contains("gave no refresh token"), "{e}");
    }
}
