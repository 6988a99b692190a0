use std::io::Read;
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
    let (manifest, manifest_path) = manifest::load(&args.component, args.manifest.as_deref())?;
    if let Some(path) = &manifest_path {
        tracing::debug!("grants and limits from {}", path.display());
    }
    // A flag replaces the manifest's value (lists included), so the command line always says what runs.
    let connections =
        if args.allow_connection.is_empty() { &manifest.grants.connections } else { &args.allow_connection };
    let hosts = if args.allow_host.is_empty() { &manifest.grants.hosts } else { &args.allow_host };
    let binds = if args.bind.is_empty() { &manifest.grants.bind } else { &args.bind };
    let pick = |flag: &Option<String>, from_manifest: &Option<String>, default: &str| -> String {
        flag.clone().or_else(|| from_manifest.clone()).unwrap_or_else(|| default.to_owned())
    };
    let limits = &manifest.limits;
    let timeout = pick(&args.timeout, &limits.timeout, "30s");
    let max_memory = pick(&args.max_memory, &limits.max_memory, "256MiB");
    let max_output = pick(&args.max_output, &limits.max_output, "6MiB");
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
        name: args.component.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        timeout: super::authorize::parse_duration(&timeout).context("--timeout")?,
        max_memory: parse_size(&max_memory).context("--max-memory")?,
        max_output: parse_size(&max_output).context("--max-output")?,
    };

    let store = Arc::new(ctx.open_store()?);
    // A binding to a connection that does not exist is a typo: say so now, not at the function's first request.
    for binding in settings.bindings.iter() {
        if store.get(&binding.connection)?.is_none() {
            return Err(coded(
                Exit::NotFound,
                format!(
                    "--bind: no connection named `{}`; `wasm-host authconnection list` shows them",
                    binding.connection
                ),
            ));
        }
    }
    let keys = ctx.keys(&store)?;
    let margin = super::authorize::parse_duration(&refresh_margin).context("--refresh-margin")?;
    let broker = Arc::new(TokenBroker::new(store, keys).with_margin(margin));
    // Invocations run one at a time here: two reusable instance slots are all `--repeat` needs, and resetting a
    // slot is cheaper than mapping fresh memory for each invocation. WASM_HOST_ALLOCATOR=on-demand turns it off.
    let pooling = match std::env::var("WASM_HOST_ALLOCATOR").as_deref() {
        Ok("on-demand") => None,
        _ => Some(2),
    };
    let options = HostOptions { pooling, ..Default::default() };
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

/// `512KiB`, `256MiB`, `1GiB`, `1MB`, or plain bytes.
pub fn parse_size(s: &str) -> Result<usize> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| usage(format!("`{s}` is not a size; use e.g. 64MiB or 1GiB")))?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return Err(usage(format!("`{s}` is not a size; use e.g. 64MiB or 1GiB"))),
    };
    n.checked_mul(factor).filter(|v| *v > 0).ok_or_else(|| usage(format!("`{s}` is not a usable size")))
}
