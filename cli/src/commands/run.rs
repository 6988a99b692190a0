use std::io::Read;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use wasm_host_runtime::{FunctionHost, HostOptions, TokenBroker};

use crate::args::RunArgs;
use crate::context::Context;
use crate::exit::{coded, usage, Exit};
use crate::progress::Step;


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
    let (manifest, manifest_path) = crate::settings::load_manifest(&args.component, args.manifest.as_deref())?;
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
    let connections = &effective.connections;
    let flags = crate::settings::Overrides {
        grants: Some(crate::settings::Grants { connections, hosts: &effective.hosts, binds: &effective.bind }),
        timeout: args.timeout,
        max_memory: args.max_memory,
        max_output: args.max_output,
        max_log: args.max_log,
        refresh_margin: args.refresh_margin,
    };
    let (settings, margin) = crate::settings::resolve(function_name, &manifest, &flags)?;

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
    let host = FunctionHost::with_options(broker, Some(super::cache::compile_cache()?), options)?;
    let started = std::time::Instant::now();
    // Compiling is the one slow step (seconds for a JavaScript component, once per machine): say so.
    let mut step = None;
    let function = host.load_observed(&args.component, &mut || {
        step = Some(Step::start(format!(
            "compiling {} (first run; cached for the next ones)",
            args.component.display()
        )));
    });
    if let Some(step) = step {
        step.finish();
    }
    let function = function?;
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
