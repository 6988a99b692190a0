use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use wasm_host_runtime::{
    CompileCache, ConnectionGrants, FunctionHost, HostOptions, HostPattern, InvocationSettings, OriginBinding, OriginBindings,
    TokenBroker,
};

use crate::args::RunArgs;
use crate::context::Context;
use crate::exit::{coded, usage, Exit};
use crate::manifest;
use crate::paths;

pub fn run(ctx: &Context, args: RunArgs) -> Result<Exit> {
    let input = match (&args.input, &args.input_file) {
        (Some(json), _) => json.clone(),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("reading the input from stdin")?;
            s
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read --input-file {}: {e}", path.display())))?,
        (None, None) => "null".to_owned(),
    };
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&input) {
        return Err(usage(format!("the input is not JSON ({e}); pass a JSON value, e.g. --input '{{\"a\": 1}}'")));
    }
    let (manifest, manifest_path) = load_manifest(&args.component, args.manifest.as_deref())?;
    if let Some(path) = &manifest_path {
        tracing::debug!("limits (and grants, if given with --manifest) from {}", path.display());
    }
    // Grants come from the operator (crate::grants), and are printed with where they came from.
    let found = manifest_path.as_deref().map(|path| crate::grants::FoundManifest {
        grants: &manifest.grants,
        path,
        explicit: args.manifest.is_some(),
    });
    let effective = crate::grants::decide(&args.allow_connection, &args.allow_host, &args.bind, found)?;
    let function_name = args.component.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    eprintln!("{}", effective.describe(&function_name));
    let (connections, hosts, binds) = (&effective.connections, &effective.hosts, &effective.bind);
    let pick = |flag: &Option<String>, from_manifest: &Option<String>, default: &str| -> String {
        flag.clone().or_else(|| from_manifest.clone()).unwrap_or_else(|| default.to_owned())
    };
    let limits = &manifest.limits;
    let timeout = pick(&args.timeout, &limits.timeout, "30s");
    let max_memory = pick(&args.max_memory, &limits.max_memory, "256MiB");
    let max_output = pick(&args.max_output, &limits.max_output, "6MiB");
    let max_log = pick(&args.max_log, &limits.max_log, "1MiB");
    let refresh_margin = pick(&args.refresh_margin, &limits.refresh_margin, "60s");
    for name in connections {
        if name != "*" {
            wasm_host_store::validate_name(name).context("--allow-connection")?;
        }
    }
    let cache_dir = match std::env::var_os("WASM_HOST_CACHE_DIR") {
        Some(dir) if !dir.is_empty() => dir.into(),
        _ => paths::default_cache()?,
    };
    let allowed_hosts = hosts
        .iter()
        .map(|h| h.parse::<HostPattern>().map_err(|e| usage(format!("--allow-host: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let bindings = binds
        .iter()
        .map(|b| {
            let binding = b.parse::<OriginBinding>().map_err(|e| usage(format!("--bind: {e}")))?;
            wasm_host_store::validate_name(&binding.connection).context("--bind")?;
            Ok(binding)
        })
        .collect::<Result<Vec<_>>>()?;
    let bindings = OriginBindings::new(bindings).map_err(|e| usage(format!("--bind: {e}")))?;
    let settings = InvocationSettings {
        grants: ConnectionGrants::from_names(connections.iter().cloned()),
        allowed_hosts,
        bindings,
        name: function_name,
        timeout: manifest::parse_duration(&timeout).map_err(usage).context("--timeout")?,
        max_memory: manifest::parse_size(&max_memory).map_err(usage).context("--max-memory")?,
        max_output: manifest::parse_size(&max_output).map_err(usage).context("--max-output")?,
        max_log: manifest::parse_size(&max_log).map_err(usage).context("--max-log")?,
        // Resource table, header-map and open-request limits: the host's defaults (no flag yet).
        ..InvocationSettings::default()
    };

    let store = Arc::new(ctx.open_store()?);
    let keys = ctx.keys(&store)?;
    // Each named connection is authenticated before the function starts, so a store changed without the identity
    // stops the run (exit 5) instead of surfacing inside the function; `*` is checked at each use.
    for name in connections.iter().filter(|n| *n != "*") {
        store.connection(name, &keys)?;
    }
    // A binding to a connection that does not exist is a typo: say so now, not at the function's first request.
    for binding in settings.bindings.iter() {
        if store.connection(&binding.connection, &keys)?.is_none() {
            return Err(coded(
                Exit::NotFound,
                format!(
                    "--bind: no connection named `{}`; `wasm-host authconnection list` shows them",
                    binding.connection
                ),
            ));
        }
    }
    let margin = manifest::parse_duration(&refresh_margin).map_err(usage).context("--refresh-margin")?;
    let broker = Arc::new(TokenBroker::new(store, keys).with_margin(margin));
    // Invocations run one at a time here: two reusable instance slots are all `--repeat` needs, and resetting a
    // slot is cheaper than mapping fresh memory for each invocation. WASM_HOST_ALLOCATOR=on-demand turns it off.
    let pooling = match std::env::var("WASM_HOST_ALLOCATOR").as_deref() {
        Ok("on-demand") => None,
        _ => Some(2),
    };
    // WASM_HOST_PERF_MAP=1: name the function's compiled code for `perf record` / `perf report`.
    let perf_map = std::env::var_os("WASM_HOST_PERF_MAP").is_some_and(|v| v == "1");
    let options = HostOptions { pooling, perf_map, ..Default::default() };
    let host = FunctionHost::with_options(broker, Some(CompileCache::new(cache_dir)), options)?;
    let started = std::time::Instant::now();
    let function = host.load(&args.component)?;
    tracing::debug!(cache = ?function.cache, elapsed_us = started.elapsed().as_micros() as u64, "loaded {}", args.component.display());

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if args.repeat == 0 {
        return Err(usage("--repeat must be at least 1"));
    }
    let mut times = Vec::with_capacity(args.repeat as usize);
    let mut last = None;
    for _ in 0..args.repeat {
        let started = std::time::Instant::now();
        let outcome = runtime.block_on(host.invoke(&function, &input, &settings))?;
        times.push(started.elapsed());
        last = Some(outcome);
    }
    if args.repeat > 1 {
        times.sort();
        let total: std::time::Duration = times.iter().sum();
        eprintln!(
            "{} invocations: mean {:.1} us, median {:.1} us, min {:.1} us, max {:.1} us, {:.0} invocations/s",
            times.len(),
            total.as_secs_f64() * 1e6 / times.len() as f64,
            times[times.len() / 2].as_secs_f64() * 1e6,
            times[0].as_secs_f64() * 1e6,
            times[times.len() - 1].as_secs_f64() * 1e6,
            times.len() as f64 / total.as_secs_f64()
        );
    }
    match last.expect("at least one invocation") {
        Ok(output) => {
            println!("{output}");
            Ok(Exit::Ok)
        }
        Err(message) => {
            eprintln!("function error: {message}");
            Ok(Exit::FunctionError)
        }
    }
}

/// The manifest for `component`: the explicit one, else `<stem>.toml` beside it when present.
fn load_manifest(component: &Path, explicit: Option<&Path>) -> Result<(manifest::Manifest, Option<PathBuf>)> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let beside = component.with_extension("toml");
            if !beside.exists() {
                return Ok((manifest::Manifest::default(), None));
            }
            beside
        }
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| usage(format!("cannot read the manifest {}: {e}", path.display())))?;
    let parsed = manifest::parse(&text).map_err(|e| usage(format!("the manifest {} is not valid: {e}", path.display())))?;
    Ok((parsed, Some(path)))
}
