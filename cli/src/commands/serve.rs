//! `wasm-host serve`: resolves the functions and their manifests, opens the store once for every function,
//! and hands the rest to the server crate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use wasm_host_runtime::{CompileCache, FunctionHost, HostOptions, TokenBroker, DEFAULT_REFRESH_MARGIN};
use wasm_host_server::admin::AdminApi;
use wasm_host_server::{FunctionSpec, Limits, Server, Signals};
use wasm_host_store::Store;

use crate::args::ServeArgs;
use crate::context::Context;
use crate::exit::{usage, Exit};
use crate::settings::{self, Overrides};

pub fn run(ctx: &Context, args: ServeArgs) -> Result<Exit> {
    let duration = |s: &str, flag: &str| crate::units::parse_duration(s).map_err(usage).with_context(|| flag.to_owned());
    let size = |s: &str, flag: &str| crate::units::parse_size_usize(s).map_err(usage).with_context(|| flag.to_owned());
    if args.max_concurrent == 0 || args.max_connections == 0 {
        return Err(usage("--max-concurrent and --max-connections must be at least 1"));
    }
    let limits = Limits {
        max_connections: args.max_connections,
        max_concurrent: args.max_concurrent,
        max_queue: args.max_queue,
        queue_timeout: duration(&args.queue_timeout, "--queue-timeout")?,
        max_body: size(&args.max_body, "--max-body")?,
        max_header: size(&args.max_header, "--max-header")?,
        header_timeout: duration(&args.header_timeout, "--header-timeout")?,
        body_timeout: duration(&args.body_timeout, "--body-timeout")?,
        drain_timeout: duration(&args.drain_timeout, "--drain-timeout")?,
        refresh_ahead: match args.refresh_ahead.as_str() {
            "off" => None,
            d => Some(duration(d, "--refresh-ahead")?),
        },
    };
    let listen: SocketAddr = args
        .listen
        .parse()
        .map_err(|e| usage(format!("--listen {}: {e}; give ADDRESS:PORT, e.g. 127.0.0.1:8080", args.listen)))?;
    let metrics_listen: Option<SocketAddr> = match &args.metrics_listen {
        Some(a) => Some(a.parse().map_err(|e| usage(format!("--metrics-listen {a}: {e}; give ADDRESS:PORT")))?),
        None => None,
    };

    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(wasm_host_server::tls::acceptor(cert, key).map_err(|e| usage(e.to_string()))?),
        _ => None,
    };
    let admin_tls = match (&args.admin_tls_cert, &args.admin_tls_key) {
        (Some(cert), Some(key)) => Some(wasm_host_server::tls::acceptor(cert, key).map_err(|e| usage(e.to_string()))?),
        _ => tls.clone(),
    };
    let admin_listen: Option<SocketAddr> = match &args.admin_listen {
        Some(a) => {
            let addr: SocketAddr = a.parse().map_err(|e| usage(format!("--admin-listen {a}: {e}; give ADDRESS:PORT")))?;
            // Admin tokens and client secrets must not cross a network in clear.
            if !addr.ip().is_loopback() && admin_tls.is_none() {
                return Err(usage(format!(
                    "--admin-listen {a}: the admin API takes admin tokens and client secrets, so on another address \
                     than loopback it needs TLS: give --admin-tls-cert and --admin-tls-key (or --tls-cert and \
                     --tls-key), or listen on 127.0.0.1 and reach it through an SSH tunnel"
                )));
            }
            Some(addr)
        }
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let store = Arc::new(ctx.open_store()?);
    let (specs, manifest_margin) = catalog(&args.functions, &store)?;
    let margin = match &args.refresh_margin {
        Some(m) => duration(m, "--refresh-margin")?,
        None => manifest_margin.max(DEFAULT_REFRESH_MARGIN),
    };
    let keys = ctx.keys(&store)?;
    let admin = admin_listen.map(|addr| {
        let authorizer = super::authorizer::ServerAuthorizer {
            store: store.clone(),
            keys: keys.clone(),
            http: wasm_host_oauth::Http::default(),
        };
        let authorizer: Arc<dyn wasm_host_server::admin_authorize::Authorizer> = Arc::new(authorizer);
        (addr, Arc::new(AdminApi { store: store.clone(), keys: keys.clone(), authorizer: Some(authorizer) }))
    });
    let header_timeout = limits.header_timeout;
    let broker = Arc::new(TokenBroker::new(store.clone(), keys).with_margin(margin));
    // Slots for every invocation at once, twice over: an HTTP function's instance lives until its response body
    // has been written, a moment after its slot is given back.
    let pooling = match std::env::var("WASM_HOST_ALLOCATOR").as_deref() {
        Ok("on-demand") => None,
        _ => Some(u32::try_from(args.max_concurrent.saturating_mul(2)).unwrap_or(u32::MAX)),
    };
    let options = HostOptions { pooling, cooperative: true, ..Default::default() };
    let host = Arc::new(FunctionHost::with_options(broker, Some(CompileCache::new(settings::cache_dir()?)), options)?);
    let functions = args.functions.clone();
    let reload_store = store.clone();
    let reread = Box::new(move || catalog(&functions, &reload_store).map(|(specs, _)| specs).map_err(|e| format!("{e:#}")));
    let server = Arc::new(Server::new(host, specs, reread, limits)?);

    let (watch, functions_args) = (args.watch, args.functions.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let signals = Signals::install()?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| usage(format!("cannot listen on {listen}: {e}")))?;
        let local = listener.local_addr()?;
        // The one line on stdout: where to send requests (the port, when --listen gave port 0).
        println!("listening on {scheme}://{local}");
        let operations = match metrics_listen {
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| usage(format!("cannot listen on {addr} (--metrics-listen): {e}")))?;
                println!("operations on http://{}", l.local_addr()?);
                Some(l)
            }
            None => None,
        };
        let _admin = match admin {
            Some((addr, api)) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| usage(format!("cannot listen on {addr} (--admin-listen): {e}")))?;
                let admin_scheme = if admin_tls.is_some() { "https" } else { "http" };
                println!("admin API on {admin_scheme}://{}", l.local_addr()?);
                let serving = wasm_host_server::admin::serve(l, admin_tls, api, header_timeout);
                Some(AbortOnDrop(tokio::spawn(serving)))
            }
            None => None,
        };
        let _watching = match watch {
            true => Some(wasm_host_server::watch::watch(
                server.clone(),
                &watched_dirs(&functions_args),
                wasm_host_server::watch::DEFAULT_DEBOUNCE,
                tokio::runtime::Handle::current(),
            )?),
            false => None,
        };
        tracing::info!(functions = ?server.routes().names(), "serving on {local}");
        server.run(listener, tls, operations, signals).await?;
        anyhow::Ok(())
    })?;
    Ok(Exit::Ok)
}

/// Stops the admin listener's task when `serve` returns (after the drain).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Every function the arguments name, with its manifest resolved; and the largest refresh margin a manifest
/// asks for (the broker is shared, so it uses the largest).
fn catalog(functions: &[String], store: &Store) -> Result<(Vec<FunctionSpec>, Duration)> {
    let mut specs = Vec::new();
    let mut margin = Duration::ZERO;
    for arg in functions {
        for (name, component) in expand(arg)? {
            let (manifest, _) = settings::load_manifest(&component, None)?;
            let route = manifest.route.clone().unwrap_or_else(|| format!("/{name}"));
            let (settings, m) = settings::resolve(name.clone(), &manifest, &Overrides::default())
                .with_context(|| format!("function `{name}` ({})", component.display()))?;
            settings::check_bindings(store, &settings)?;
            margin = margin.max(m);
            specs.push(FunctionSpec { name, route, component, settings });
        }
    }
    Ok((specs, margin))
}

/// The directories `--watch` watches: each directory argument, and the directory of each file argument (so that
/// a manifest created beside it, or a file replaced by a rename, is seen too).
fn watched_dirs(functions: &[String]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = functions
        .iter()
        .map(|arg| {
            let path = Path::new(arg.split_once('=').map_or(arg.as_str(), |(_, p)| p));
            match path.is_dir() {
                true => path.to_owned(),
                false => path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned(),
            }
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// `FILE.wasm`, `NAME=FILE.wasm` or a directory (each `.wasm` in it, named after its file) as (name, path).
fn expand(arg: &str) -> Result<Vec<(String, PathBuf)>> {
    if let Some((name, path)) = arg.split_once('=') {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(usage(format!("`{arg}`: a function's name may hold letters, digits, `-` and `_` only")));
        }
        return Ok(vec![(name.to_owned(), PathBuf::from(path))]);
    }
    let path = Path::new(arg);
    if path.is_dir() {
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| usage(format!("cannot read the directory {arg}: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
            .collect();
        found.sort();
        if found.is_empty() {
            return Err(usage(format!("the directory {arg} holds no .wasm file")));
        }
        return Ok(found.into_iter().map(|p| (stem(&p), p)).collect());
    }
    Ok(vec![(stem(path), path.to_path_buf())])
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}
