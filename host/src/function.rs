//! Loading a component as a function (compile or cache, check its world) and invoking its `run` export.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView};

use crate::authconnection::{self, AuthConnectionCtx, Source};
use crate::bindings::{Function, FunctionPre};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use crate::broker::TokenBroker;
use crate::cache::{CacheOutcome, CompileCache};
use crate::grants::ConnectionGrants;
use crate::http::{HostPattern, OutboundHttp};
use crate::origin::OriginBindings;
use crate::state::InvocationState;

const COMPONENT_HEADER: &[u8; 8] = b"\0asm\x0d\x00\x01\x00";
const CORE_MODULE_HEADER: &[u8; 8] = b"\0asm\x01\x00\x00\x00";

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read the component {path}: {source}")]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a WebAssembly file (no `\\0asm` header); give the .wasm component your build produced")]
    NotWasm { path: PathBuf },
    #[error(
        "{path} is a core WebAssembly module, not a component: build it for the wasm32-wasip2 target, or wrap it \
         with `wasm-tools component new`"
    )]
    CoreModule { path: PathBuf },
    #[error("{path} is not a valid component: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "{path} is a component of another world: {reason}. wasm-host runs components of the `function` world \
         (wit/authconnection.wit): they export `run: func(input: string) -> result<string, string>` and import only \
         what that world offers"
    )]
    WrongWorld { path: PathBuf, reason: String },
    #[error("cannot set up the host: {0}")]
    Host(String),
    #[error("cannot use the compile cache (WASM_HOST_CACHE_DIR): {0}")]
    UnsafeCache(crate::cache::CacheError),
}

#[derive(Debug, Error)]
pub enum InvokeError {
    #[error("the function trapped: {0}")]
    Trap(String),
    #[error("the function ran longer than its time limit of {0:?} and was stopped (raise it with --timeout)")]
    Timeout(Duration),
    #[error("the function tried to use more than its memory limit of {} MiB and was stopped (raise it with --max-memory)", .0 / (1024 * 1024))]
    MemoryLimit(usize),
    #[error("the function overflowed its stack (runaway recursion?) and was stopped")]
    StackOverflow,
    #[error("the function returned {len} bytes, more than the output limit of {max} (raise it with --max-output)")]
    OutputTooLarge { len: usize, max: usize },
    #[error("the function exited early with status {0} instead of returning from `run`")]
    Exit(i32),
    #[error("the function failed: {0}")]
    Host(String),
}

/// A compiled function, checked against its world and ready to be instantiated many times (the kept
/// `InstancePre`: each invocation is a fresh instance in a fresh store).
#[derive(Clone)]
pub struct LoadedFunction {
    kind: Kind,
    pub cache: CacheOutcome,
}

#[derive(Clone)]
enum Kind {
    Json(FunctionPre<InvocationState>),
    Http(ProxyPre<InvocationState>),
}

/// Which world a loaded component is of, and so how it is invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// The `function` world: `run(input: string) -> result<string, string>`, JSON in and out.
    Function,
    /// The `http-function` world (`wasi:http/proxy`, optionally `authconnection`): exports
    /// `wasi:http/incoming-handler` and is handed each HTTP request.
    HttpFunction,
}

impl LoadedFunction {
    pub fn world(&self) -> World {
        match self.kind {
            Kind::Json(_) => World::Function,
            Kind::Http(_) => World::HttpFunction,
        }
    }
}

/// The export that makes a component an HTTP function (any 0.2.x version of the interface).
const INCOMING_HANDLER: &str = "wasi:http/incoming-handler@0.2.";

/// Everything an invocation needs besides its input: what it may reach and how much it may use.
#[derive(Clone)]
pub struct InvocationSettings {
    pub grants: ConnectionGrants,
    /// Hosts outgoing HTTP may reach; empty reaches none.
    pub allowed_hosts: Vec<HostPattern>,
    /// Origins whose requests get a connection's token attached by the host (and are reachable without an
    /// `allowed_hosts` entry). Independent of `grants`: a bound connection need not be readable.
    pub bindings: OriginBindings,
    /// Names the function in log lines.
    pub name: String,
    /// Wall-clock limit, enforced by epoch interruption while wasm runs and by a timer while it waits.
    pub timeout: Duration,
    /// Linear memory, all memories of the instance together.
    pub max_memory: usize,
    /// Bytes of `run`'s result (ok or err).
    pub max_output: usize,
    /// Bytes the function may write to stdout and stderr together; the rest is dropped (see output.rs).
    pub max_log: usize,
    /// Entries of the invocation's resource table (wasi:http requests, responses, header maps, streams, ...):
    /// each is host memory the function makes the host hold. Past it, creating one traps the function.
    pub max_resources: usize,
    /// Bytes of one wasi:http header map (names and values); the append or set that passes it traps the
    /// function (wasmtime-wasi-http's behaviour). With `max_resources`, bounds what header maps make the host hold.
    pub max_header_bytes: usize,
    /// Outgoing HTTP requests open at once (each holds a socket); one more is refused, not queued.
    pub max_open_requests: usize,
}

/// Default of [`InvocationSettings::max_open_requests`]: ample for fan-out (`Promise.all` over tens of APIs),
/// far below the file descriptors a process has (the probe opened 16,248 in 8 s).
pub const DEFAULT_MAX_OPEN_REQUESTS: usize = 64;

/// Default of [`InvocationSettings::max_resources`]: far more than a function has open at once (a request with
/// its headers, body, stream and pollables is about ten), a 244th of wasmtime's default (a million).
pub const DEFAULT_MAX_RESOURCES: usize = 4_096;
/// Default of [`InvocationSettings::max_header_bytes`]: 64 KiB, four times what common servers accept in a
/// header section (nginx 8–32 KiB), half wasmtime-wasi-http's default. With [`DEFAULT_MAX_RESOURCES`]: at most
/// 256 MiB of header maps per invocation, the default `--max-memory` (wasmtime's defaults allowed 128 GiB).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;

impl Default for InvocationSettings {
    fn default() -> Self {
        Self {
            grants: ConnectionGrants::none(),
            allowed_hosts: Vec::new(),
            bindings: OriginBindings::default(),
            name: "function".to_owned(),
            timeout: Duration::from_secs(30),
            max_memory: 256 * 1024 * 1024,
            max_output: 6 * 1024 * 1024,
            max_log: crate::output::DEFAULT_MAX_LOG,
            max_resources: DEFAULT_MAX_RESOURCES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_open_requests: DEFAULT_MAX_OPEN_REQUESTS,
        }
    }
}

/// How often the epoch advances: the granularity of `timeout`.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How a host allocates its instances.
#[derive(Clone, Default)]
pub struct HostOptions {
    /// Keep this many instance slots reserved and reuse them (wasmtime's pooling allocator): instantiation
    /// becomes resetting a slot instead of mapping fresh memory, at the price of address space reserved up front
    /// and at most this many invocations at once. `None`: allocate each instance on demand.
    pub pooling: Option<u32>,
    /// Answer every granted `get-connection-token` with this token, without a store (the benchmarks' baseline).
    #[doc(hidden)]
    pub constant_token: Option<Arc<crate::broker::IssuedToken>>,
    /// Write /tmp/perf-PID.map so `perf report` names the function's compiled wasm code.
    pub perf_map: bool,
    /// Make wasm that computes yield to the async runtime at every epoch tick instead of holding its thread
    /// until its deadline traps it; the deadline is then the invocation's timer alone. For a server, where one
    /// function spinning on each worker thread would otherwise stall every other request until it times out.
    pub cooperative: bool,
}

/// The engine and linker shared by every function this process runs.
pub struct FunctionHost {
    cooperative: bool,
    engine: Engine,
    linker: Linker<InvocationState>,
    broker: Arc<TokenBroker>,
    source: Source,
    cache: Option<CompileCache>,
}

impl FunctionHost {
    /// A host that allocates instances on demand (any number at once).
    pub fn new(broker: Arc<TokenBroker>, cache: Option<CompileCache>) -> Result<Self, LoadError> {
        Self::with_options(broker, cache, HostOptions::default())
    }

    pub fn with_options(
        broker: Arc<TokenBroker>,
        cache: Option<CompileCache>,
        options: HostOptions,
    ) -> Result<Self, LoadError> {
        let host_err = |e: wasmtime::Error| LoadError::Host(format!("{e:#}"));
        let mut config = Config::new();
        config.epoch_interruption(true);
        if options.perf_map {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        if let Some(slots) = options.pooling {
            config.allocation_strategy(pooling(slots));
        }
        let engine = Engine::new(&config).map_err(host_err)?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wasm-host-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| LoadError::Host(format!("cannot start the epoch timer: {e}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(host_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(host_err)?;
        authconnection::add_to_linker(&mut linker, InvocationState::auth_view).map_err(host_err)?;
        let source = match options.constant_token {
            Some(token) => Source::Constant(token),
            None => Source::Broker(broker.clone()),
        };
        Ok(Self { cooperative: options.cooperative, engine, linker, broker, source, cache })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn broker(&self) -> &Arc<TokenBroker> {
        &self.broker
    }

    /// Reads, compiles (or loads from the cache) and checks the component at `path`, which must be of the
    /// `function` world (what `run` invokes).
    pub fn load(&self, path: &Path) -> Result<LoadedFunction, LoadError> {
        self.load_observed(path, &mut || {})
    }

    /// [`FunctionHost::load`], calling `on_compile` just before the component is compiled (not when it comes
    /// from the cache), so a command line can say that something slow is under way.
    pub fn load_observed(&self, path: &Path, on_compile: &mut dyn FnMut()) -> Result<LoadedFunction, LoadError> {
        self.load_as(path, false, on_compile)
    }

    /// Like [`FunctionHost::load`], also accepting a component of the `http-function` world (what `serve`
    /// hands HTTP requests to).
    pub fn load_servable(&self, path: &Path) -> Result<LoadedFunction, LoadError> {
        self.load_as(path, true, &mut || {})
    }

    fn load_as(&self, path: &Path, http: bool, on_compile: &mut dyn FnMut()) -> Result<LoadedFunction, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Unreadable { path: path.into(), source })?;
        let header = bytes.get(..8);
        if header == Some(CORE_MODULE_HEADER) {
            return Err(LoadError::CoreModule { path: path.into() });
        }
        if header != Some(COMPONENT_HEADER) {
            return Err(LoadError::NotWasm { path: path.into() });
        }
        let (component, outcome) = self.compile_or_load(path, &bytes, on_compile)?;
        let world = self.check_world(path, &component, http)?;
        let wrong = |e: wasmtime::Error| LoadError::WrongWorld { path: path.into(), reason: format!("{e:#}") };
        let pre = self.linker.instantiate_pre(&component).map_err(wrong)?;
        let kind = match world {
            World::Function => Kind::Json(FunctionPre::new(pre).map_err(wrong)?),
            World::HttpFunction => Kind::Http(ProxyPre::new(pre).map_err(wrong)?),
        };
        Ok(LoadedFunction { kind, cache: outcome })
    }

    fn compile_or_load(
        &self,
        path: &Path,
        bytes: &[u8],
        on_compile: &mut dyn FnMut(),
    ) -> Result<(Component, CacheOutcome), LoadError> {
        let mut compile = || {
            on_compile();
            Component::from_binary(&self.engine, bytes)
                .map_err(|e| LoadError::Invalid { path: path.into(), reason: format!("{e:#}") })
        };
        let Some(cache) = &self.cache else { return Ok((compile()?, CacheOutcome::Uncached)) };
        // Entries are native code this process runs: never from a directory someone else could write.
        cache.open().map_err(LoadError::UnsafeCache)?;
        let entry = cache.entry_path(&self.engine, bytes);
        let mut outcome = match cache.load(&self.engine, &entry) {
            Some(Ok(component)) => return Ok((component, CacheOutcome::Hit)),
            Some(Err(())) => CacheOutcome::Repaired,
            None => CacheOutcome::Compiled,
        };
        // Compile under the entry's lock; whoever held it before us may have written the entry meanwhile.
        let _lock = cache.compile_lock(&entry);
        match cache.load(&self.engine, &entry) {
            Some(Ok(component)) => return Ok((component, CacheOutcome::Hit)),
            Some(Err(())) => outcome = CacheOutcome::Repaired,
            None => {}
        }
        if outcome == CacheOutcome::Repaired {
            tracing::warn!(entry = %entry.display(), "damaged compile cache entry; compiling again");
        }
        let component = compile()?;
        match component.serialize() {
            Ok(serialized) => {
                if let Err(e) = cache.store(&entry, &serialized) {
                    tracing::warn!(dir = %cache.dir().display(), "cannot write the compile cache: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot serialize the compiled component: {e:#}"),
        }
        Ok((component, outcome))
    }

    /// Which world the component is of; names what is wrong with a component of another world before the
    /// linker's message would.
    fn check_world(&self, path: &Path, component: &Component, http: bool) -> Result<World, LoadError> {
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(&self.engine).map(|(name, _)| name.to_owned()).collect();
        let handler = exports.iter().any(|n| n.starts_with(INCOMING_HANDLER));
        if exports.iter().any(|n| n == "run") {
            return Ok(World::Function);
        }
        if handler && http {
            return Ok(World::HttpFunction);
        }
        if handler {
            return Err(LoadError::WrongWorld {
                path: path.into(),
                reason: "it is an HTTP function (it exports wasi:http/incoming-handler, not `run`): serve it with \
                         `wasm-host serve`"
                    .into(),
            });
        }
        let found = if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") };
        Err(LoadError::WrongWorld { path: path.into(), reason: format!("it does not export `run` (it exports {found})") })
    }

    /// Instantiates the function in a fresh store and calls `run(input)`: `Ok(Ok(json))` on success,
    /// `Ok(Err(message))` when the function returned an error, `Err` when it trapped or exited.
    pub async fn invoke(
        &self,
        function: &LoadedFunction,
        input: &str,
        settings: &InvocationSettings,
    ) -> Result<Result<String, String>, InvokeError> {
        let Kind::Json(pre) = &function.kind else {
            return Err(InvokeError::Host("an HTTP function has no `run` to call: serve it with `wasm-host serve`".into()));
        };
        let (mut store, log) = self.new_store(settings);
        let call = async {
            let instance: Function = pre.instantiate_async(&mut store).await?;
            instance.call_run(&mut store, input).await
        };
        // Epochs stop wasm that computes; the timer also stops a function that waits (on HTTP, say).
        let result = tokio::time::timeout(settings.timeout, call).await;
        // Said however the invocation ended (the in-stream notice itself may have found no room).
        if log.dropped() > 0 {
            tracing::warn!(function = %settings.name, dropped_bytes = log.dropped(), max_log = settings.max_log, "dropped function output: over --max-log, or the host's stderr had no room");
        }
        let output = match result {
            Err(_) => return Err(InvokeError::Timeout(settings.timeout)),
            Ok(Ok(output)) => output,
            Ok(Err(_)) if store.data().limits.exceeded => return Err(InvokeError::MemoryLimit(settings.max_memory)),
            Ok(Err(e)) => return Err(classify(e, settings.timeout)),
        };
        let len = match &output {
            Ok(s) | Err(s) => s.len(),
        };
        if len > settings.max_output {
            return Err(InvokeError::OutputTooLarge { len, max: settings.max_output });
        }
        Ok(output)
    }

    /// Hands `request` to an HTTP function, in a fresh instance: the response once the function has set it,
    /// its body streamed by the function as it writes. The whole invocation (response and body) is bounded by
    /// `settings.timeout`; a function that traps or runs out of time before responding gives the error.
    /// `https`: the request came over TLS, so the function's `incoming-request.scheme` is `https` (else `http`).
    pub async fn handle_http<B>(
        &self,
        function: &LoadedFunction,
        request: http::Request<B>,
        https: bool,
        settings: &InvocationSettings,
    ) -> Result<http::Response<HyperOutgoingBody>, InvokeError>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let Kind::Http(pre) = &function.kind else {
            return Err(InvokeError::Host("a JSON function takes no HTTP request: invoke its `run`".into()));
        };
        let host_err = |e: wasmtime::Error| InvokeError::Host(format!("{e:#}"));
        let (mut store, log) = self.new_store(settings);
        let (name, max_log) = (settings.name.clone(), settings.max_log);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut view = store.data_mut().http();
        let scheme = if https { Scheme::Https } else { Scheme::Http };
        let req = view.new_incoming_request(scheme, request).map_err(host_err)?;
        let out = view.new_response_outparam(tx).map_err(host_err)?;
        let pre = pre.clone();
        let timeout = settings.timeout;
        // A task of its own, so the function goes on writing the body after the response head has gone; the
        // timer bounds the whole of it (epochs stop wasm that computes, the timer one that waits).
        let task = tokio::spawn(async move {
            let call = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
            };
            let result = tokio::time::timeout(timeout, call).await;
            if log.dropped() > 0 {
                tracing::warn!(function = %name, dropped_bytes = log.dropped(), max_log, "dropped function output: over max-log, or the host's stderr had no room");
            }
            (result, store.data().limits.exceeded)
        });
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(InvokeError::Timeout(timeout)),
            Ok(Ok(Ok(response))) => Ok(response),
            Ok(Ok(Err(code))) => Err(InvokeError::Host(format!("the function answered with the error {code:?}"))),
            // The function returned, trapped or ran out of time without responding: its task says which.
            Ok(Err(_)) => match task.await {
                Ok((Err(_), _)) => Err(InvokeError::Timeout(timeout)),
                Ok((Ok(Err(_)), true)) => Err(InvokeError::MemoryLimit(settings.max_memory)),
                Ok((Ok(Err(e)), false)) => Err(classify(e, timeout)),
                Ok((Ok(Ok(())), _)) => Err(InvokeError::Host("the function returned without setting a response".into())),
                Err(e) => Err(InvokeError::Host(format!("the invocation task failed: {e}"))),
            },
        }
    }

    /// A fresh store for one invocation, with its grants, limits and time budget, and the function's output.
    fn new_store(&self, settings: &InvocationSettings) -> (Store<InvocationState>, crate::output::FunctionOutput) {
        let mut wasi = WasiCtx::builder();
        // The function's stdout and stderr are logs: the host's stdout carries only `run`'s result. Bounded, and
        // never waited for (output.rs).
        let log = crate::output::FunctionOutput::new(settings.max_log);
        wasi.stdout(log.clone()).stderr(log.clone());
        let state = InvocationState {
            wasi: wasi.build(),
            http: {
                let mut http = WasiHttpCtx::new();
                http.set_field_size_limit(settings.max_header_bytes);
                http
            },
            hooks: OutboundHttp::with_bindings(
                settings.allowed_hosts.clone(),
                settings.bindings.clone(),
                self.broker.clone(),
                settings.name.clone(),
                settings.max_open_requests,
            ),
            table: {
                let mut table = wasmtime::component::ResourceTable::new();
                table.set_max_capacity(settings.max_resources);
                table
            },
            auth: AuthConnectionCtx::with_source(self.source.clone(), settings.grants.clone()),
            limits: MemoryLimit { max: settings.max_memory, exceeded: false },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        if self.cooperative {
            // Every tick: let other tasks run; the invocation's timer ends it at its timeout.
            store.set_epoch_deadline(1);
            store.epoch_deadline_async_yield_and_update(1);
        } else {
            store.set_epoch_deadline((settings.timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1);
            store.epoch_deadline_trap();
        }
        (store, log)
    }
}

/// Bytes of a slot's linear memory reset in place between invocations (see `pooling`): more than a Rust
/// function dirties; a JavaScript one dirties more and has the rest released.
const KEEP_RESIDENT: usize = 2 << 20;

/// Slots for `slots` concurrent invocations of a function the size of a JavaScript one (componentize-js: a
/// handful of core instances, memories and tables per component, tables of tens of thousands of entries).
fn pooling(slots: u32) -> wasmtime::InstanceAllocationStrategy {
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(slots)
        .total_core_instances(slots * 8)
        .total_memories(slots * 4)
        .total_tables(slots * 8)
        .total_stacks(slots)
        .max_core_instances_per_component(32)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .max_memories_per_module(2)
        .max_tables_per_module(4)
        .table_elements(200_000)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(4 << 20);
    // PAGEMAP_SCAN needs Linux 6.7 or later; elsewhere slots are released with madvise.
    let reset_dirty_pages = wasmtime::PoolingAllocationConfig::is_pagemap_scan_available();
    tracing::debug!(reset_dirty_pages, "pooling allocator with {slots} slots");
    if reset_dirty_pages {
        // A slot's dirty pages (found with the PAGEMAP_SCAN ioctl) are reset in place, up to KEEP_RESIDENT bytes,
        // instead of being released with madvise and faulted in again by the next invocation: no page faults,
        // and no TLB shootdown of the other cores running this process's threads. 2.1-2.8x more invocations per
        // second and a trivial invocation in less than half the time (BENCHMARKS.md). Without the ioctl the same
        // setting would memset the first 2 MiB on every reuse, which measured slower than madvise.
        pool.pagemap_scan(wasmtime::Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(64 << 10);
    }
    wasmtime::InstanceAllocationStrategy::Pooling(pool)
}

fn self_recursing(e: &wasmtime::Error) -> bool {
    let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() else { return false };
    let frames = bt.frames();
    frames.len() >= 16 && frames[1..].iter().all(|f| f.func_index() == frames[1].func_index())
}

/// The trap and the innermost frames of its backtrace: enough to find the bug, short enough to read.
fn trap_summary(trap: &wasmtime::Trap, e: &wasmtime::Error) -> String {
    let mut out = trap.to_string();
    if let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
        let text = bt.to_string();
        let lines: Vec<&str> = text.lines().collect();
        for line in lines.iter().take(12) {
            out.push('\n');
            out.push_str(line);
        }
        if lines.len() > 12 {
            out.push_str(&format!("\n    ... {} more lines", lines.len() - 12));
        }
    }
    out
}

/// Caps an instance's linear memory; remembers that the cap was hit, so the trap that follows (a guest's
/// allocation failure) is reported as what it is.
pub(crate) struct MemoryLimit {
    max: usize,
    exceeded: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimit {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

fn classify(e: wasmtime::Error, timeout: Duration) -> InvokeError {
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return InvokeError::Exit(exit.0);
    }
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::Interrupt => InvokeError::Timeout(timeout),
            wasmtime::Trap::StackOverflow => InvokeError::StackOverflow,
            // Rust and C guests keep a shadow stack in linear memory; runaway recursion runs it off the bottom
            // of memory before the wasm stack fills. A fault under a full backtrace of one function calling
            // itself is that overflow.
            wasmtime::Trap::MemoryOutOfBounds if self_recursing(&e) => InvokeError::StackOverflow,
            _ => InvokeError::Trap(trap_summary(trap, &e)),
        };
    }
    InvokeError::Host(format!("{e:#}"))
}
