use std::io::Read;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use wasm_host_runtime::{CompileCache, FunctionHost, HostOptions, TokenBroker};

use crate::args::RunArgs;
use crate::context::Context;
use crate::exit::{usage, Exit};
use crate::settings::{self, Overrides};

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
    let (manifest, manifest_path) = settings::load_manifest(&args.component, args.manifest.as_deref())?;
    if let Some(path) = &manifest_path {
        tracing::debug!("grants and limits from {}", path.display());
    }
    let flags = Overrides {
        connections: &args.allow_connection,
        hosts: &args.allow_host,
        binds: &args.bind,
        timeout: args.timeout.as_deref(),
        max_memory: args.max_memory.as_deref(),
        max_output: args.max_output.as_deref(),
        refresh_margin: args.refresh_margin.as_deref(),
    };
    let name = args.component.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let (settings, margin) = settings::resolve(name, &manifest, &flags)?;
    let cache_dir = settings::cache_dir()?;

    let store = Arc::new(ctx.open_store()?);
    settings::check_bindings(&store, &settings)?;
    let keys = ctx.keys(&store)?;
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
