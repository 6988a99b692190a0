//! Loading a component as a function (compile or cache, check its world) and invoking its `run` export.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;

use crate::authconnection::{self, AuthConnectionCtx};
use crate::bindings::{Function, FunctionPre};
use crate::broker::TokenBroker;
use crate::cache::{CacheOutcome, CompileCache};
use crate::grants::ConnectionGrants;
use crate::http::OutboundHttp;
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
}

#[derive(Debug, Error)]
pub enum InvokeError {
    #[error("the function trapped: {0}")]
    Trap(String),
    #[error("the function exited early with status {0} instead of returning from `run`")]
    Exit(i32),
    #[error("the function failed: {0}")]
    Host(String),
}

/// A compiled function, checked against the `function` world and ready to be instantiated many times.
#[derive(Clone)]
pub struct LoadedFunction {
    pre: FunctionPre<InvocationState>,
    pub cache: CacheOutcome,
}

/// Everything an invocation needs besides its input.
#[derive(Clone, Default)]
pub struct InvocationSettings {
    pub grants: ConnectionGrants,
}

/// The engine and linker shared by every function this process runs.
pub struct FunctionHost {
    engine: Engine,
    linker: Linker<InvocationState>,
    broker: Arc<TokenBroker>,
    cache: Option<CompileCache>,
}

impl FunctionHost {
    pub fn new(broker: Arc<TokenBroker>, cache: Option<CompileCache>) -> Result<Self, LoadError> {
        let host_err = |e: wasmtime::Error| LoadError::Host(format!("{e:#}"));
        let config = Config::new();
        let engine = Engine::new(&config).map_err(host_err)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(host_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(host_err)?;
        authconnection::add_to_linker(&mut linker, InvocationState::auth_view).map_err(host_err)?;
        Ok(Self { engine, linker, broker, cache })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn broker(&self) -> &Arc<TokenBroker> {
        &self.broker
    }

    /// Reads, compiles (or loads from the cache) and checks the component at `path`.
    pub fn load(&self, path: &Path) -> Result<LoadedFunction, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Unreadable { path: path.into(), source })?;
        let header = bytes.get(..8);
        if header == Some(CORE_MODULE_HEADER) {
            return Err(LoadError::CoreModule { path: path.into() });
        }
        if header != Some(COMPONENT_HEADER) {
            return Err(LoadError::NotWasm { path: path.into() });
        }
        let (component, outcome) = self.compile_or_load(path, &bytes)?;
        self.check_world(path, &component)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::WrongWorld { path: path.into(), reason: format!("{e:#}") })?;
        let pre = FunctionPre::new(pre)
            .map_err(|e| LoadError::WrongWorld { path: path.into(), reason: format!("{e:#}") })?;
        Ok(LoadedFunction { pre, cache: outcome })
    }

    fn compile_or_load(&self, path: &Path, bytes: &[u8]) -> Result<(Component, CacheOutcome), LoadError> {
        let compile = || {
            Component::from_binary(&self.engine, bytes)
                .map_err(|e| LoadError::Invalid { path: path.into(), reason: format!("{e:#}") })
        };
        let Some(cache) = &self.cache else { return Ok((compile()?, CacheOutcome::Uncached)) };
        let entry = cache.entry_path(&self.engine, bytes);
        let outcome = match cache.load(&self.engine, &entry) {
            Some(Ok(component)) => return Ok((component, CacheOutcome::Hit)),
            Some(Err(())) => {
                tracing::warn!(entry = %entry.display(), "damaged compile cache entry; compiling again");
                CacheOutcome::Repaired
            }
            None => CacheOutcome::Compiled,
        };
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

    /// Names what is wrong with a component of another world before the linker's message would.
    fn check_world(&self, path: &Path, component: &Component) -> Result<(), LoadError> {
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(&self.engine).map(|(name, _)| name.to_owned()).collect();
        if !exports.iter().any(|n| n == "run") {
            let found = if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") };
            return Err(LoadError::WrongWorld {
                path: path.into(),
                reason: format!("it does not export `run` (it exports {found})"),
            });
        }
        Ok(())
    }

    /// Instantiates the function in a fresh store and calls `run(input)`: `Ok(Ok(json))` on success,
    /// `Ok(Err(message))` when the function returned an error, `Err` when it trapped or exited.
    pub async fn invoke(
        &self,
        function: &LoadedFunction,
        input: &str,
        settings: &InvocationSettings,
    ) -> Result<Result<String, String>, InvokeError> {
        let mut wasi = WasiCtx::builder();
        // The function's stdout and stderr are logs: the host's stdout carries only `run`'s result.
        wasi.stdout(wasmtime_wasi::cli::stderr()).stderr(wasmtime_wasi::cli::stderr());
        let state = InvocationState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHttp::default(),
            table: Default::default(),
            auth: AuthConnectionCtx::new(self.broker.clone(), settings.grants.clone()),
        };
        let mut store = Store::new(&self.engine, state);
        let instance: Function = function.pre.instantiate_async(&mut store).await.map_err(classify)?;
        instance.call_run(&mut store, input).await.map_err(classify)
    }
}

fn classify(e: wasmtime::Error) -> InvokeError {
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return InvokeError::Exit(exit.0);
    }
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return InvokeError::Trap(format!("{trap}\n{e:?}"));
    }
    InvokeError::Host(format!("{e:#}"))
}
