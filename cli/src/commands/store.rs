//! `wasm-host store ...`: the store's public key, key rotation, and bundles that move connections between hosts.

use std::fs;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use wasm_host_store::{RekeyReport, RekeyStep};

use crate::args::{ExportArgs, ImportArgs, RecipientArgs, RekeyArgs, UpgradeArgs};
use crate::context::{Context, IdentityChoice};
use crate::exit::{coded, usage, Exit};
use crate::output::{self, note};

/// `store recipient --json`.
#[derive(serde::Serialize)]
struct Recipient<'a> {
    recipient: &'a str,
}

/// `store rekey --json`.
#[derive(serde::Serialize)]
struct Rekeyed<'a> {
    old_recipient: &'a str,
    new_recipient: &'a str,
    connections: usize,
    secrets: usize,
    /// Where the new identity is: the identity file, or `--new-identity-file`.
    identity_file: &'a Path,
    elapsed_ms: u128,
}

/// `store export --json`.
#[derive(serde::Serialize)]
struct Exported<'a> {
    connections: usize,
    recipient: &'a str,
    output: &'a Path,
}

/// `store import --json`.
#[derive(serde::Serialize)]
struct Imported<'a> {
    imported: &'a [String],
    replaced: &'a [String],
    /// When the bundle was written, RFC 3339.
    exported_at: &'a str,
}

pub fn recipient(ctx: &Context, args: RecipientArgs) -> Result<Exit> {
    let store = ctx.open_store()?;
    let keys = ctx.keys(&store)?;
    if args.out.json {
        output::json(&Recipient { recipient: &keys.recipient().to_string() })?;
    } else {
        println!("{}", keys.recipient());
    }
    Ok(Exit::Ok)
}

/// One connection `store upgrade` vouched for: where its requests go. Field names are stable (add, never rename).
#[derive(serde::Serialize)]
struct Vouched<'a> {
    name: &'a str,
    provider_url: &'a str,
    auth_url: Option<&'a str>,
    token_url: Option<&'a str>,
    revocation_url: Option<&'a str>,
    /// Where a refresh goes (resolved at the last authorization).
    refresh_url: Option<&'a str>,
    /// Where a revocation goes (resolved at the last authorization).
    resolved_revocation_url: Option<&'a str>,
}

/// Tags a schema-1 store's connections (see `Backend::upgrade`), printing what it vouched for.
pub fn upgrade(ctx: &Context, args: UpgradeArgs) -> Result<Exit> {
    let store = ctx.open_store()?;
    let keys = ctx.load_keys(&store)?;
    let upgraded = store.upgrade(&keys).context("upgrading the store")?;
    let vouched: Vec<Vouched<'_>> = upgraded
        .iter()
        .flatten()
        .map(|c| {
            let r = c.resolved.as_ref();
            Vouched {
                name: &c.name,
                provider_url: &c.provider_url,
                auth_url: c.endpoints.auth_url.as_deref(),
                token_url: c.endpoints.token_url.as_deref(),
                revocation_url: c.endpoints.revocation_url.as_deref(),
                refresh_url: r.map(|r| r.token_url.as_str()),
                resolved_revocation_url: r.and_then(|r| r.revocation_url.as_deref()),
            }
        })
        .collect();
    if args.out.json {
        crate::output::json(&serde_json::json!({ "upgraded": upgraded.is_some(), "connections": vouched }))?;
        return Ok(Exit::Ok);
    }
    if upgraded.is_none() {
        println!("the store {} is current; nothing to upgrade", store.location());
        return Ok(Exit::Ok);
    }
    println!(
        "upgraded the store {}: {} connection(s) are now authenticated as they stand. Check their endpoints:",
        store.location(),
        vouched.len()
    );
    let shown = |url: Option<&str>| url.unwrap_or("-").to_owned();
    for v in &vouched {
        println!(
            "  {}: provider {}, authorization {}, token {}, revocation {}; a refresh goes to {}, a revocation to {}",
            v.name,
            v.provider_url,
            shown(v.auth_url),
            shown(v.token_url),
            shown(v.revocation_url),
            shown(v.refresh_url),
            shown(v.resolved_revocation_url),
        );
    }
    Ok(Exit::Ok)
}

pub fn rekey(ctx: &Context, args: RekeyArgs) -> Result<Exit> {
    let store = ctx.open_store()?;
    // Test hook (tests/secrets.rs): announce each step on stderr and pause after it, so a test can kill the
    // process inside every window.
    let pause = std::env::var("WASM_HOST_TEST_REKEY_PAUSE_MS").ok().and_then(|v| v.parse().ok()).map(Duration::from_millis);
    let mut on_step = |step: RekeyStep<'_>| {
        tracing::debug!("rekey: {step}");
        if let Some(pause) = pause {
            eprintln!("rekey-step: {step}");
            std::thread::sleep(pause);
        }
    };
    let started = Instant::now();
    match &ctx.identity {
        IdentityChoice::File(path) => {
            if args.new_identity_file.is_some() {
                return Err(usage(
                    "--new-identity-file is for an identity given in WASM_HOST_IDENTITY_KEY; with an identity file, \
                     rekey replaces that file (drop the flag)",
                ));
            }
            let report = wasm_host_store::rekey_identity_file(&store, path, &mut on_step)?;
            done(&report, started, path, args.out.json)?;
            note!(
                "{} now holds the new identity: back it up (the old one is gone), and restart running hosts",
                path.display()
            );
        }
        IdentityChoice::Inline(_) => {
            let Some(out) = &args.new_identity_file else {
                return Err(usage(
                    "the identity comes from WASM_HOST_IDENTITY_KEY, which wasm-host cannot change: pass \
                     --new-identity-file FILE to receive the new identity, then put its AGE-SECRET-KEY line into \
                     WASM_HOST_IDENTITY_KEY",
                ));
            };
            let keys = ctx.keys(&store)?;
            let report = wasm_host_store::rekey_to_new_file(&store, &keys, out, &mut on_step)?;
            done(&report, started, out, args.out.json)?;
            note!(
                "the new identity is in {0} (0600): set WASM_HOST_IDENTITY_KEY to its AGE-SECRET-KEY line (or pass \
                 --identity {0}), restart running hosts, then delete {0}",
                out.display()
            );
        }
    }
    Ok(Exit::Ok)
}

fn done(report: &RekeyReport, started: Instant, identity_file: &Path, json: bool) -> Result<()> {
    let elapsed_ms = started.elapsed().as_millis();
    if json {
        output::json(&Rekeyed {
            old_recipient: &report.old_recipient.to_string(),
            new_recipient: &report.new_recipient.to_string(),
            connections: report.resealed.connections,
            secrets: report.resealed.secrets,
            identity_file,
            elapsed_ms,
        })?;
    }
    note!(
        "re-encrypted {} secrets of {} connections to {} in {elapsed_ms} ms; the old identity {} no longer opens \
         this store",
        report.resealed.secrets,
        report.resealed.connections,
        report.new_recipient,
        report.old_recipient
    );
    Ok(())
}

/// `store migrate --json`.
#[derive(serde::Serialize)]
struct Migrated {
    store: String,
    backend: &'static str,
    /// The schema version the store had (0: a database without wasm-host's tables).
    from: u64,
    to: u64,
}

pub fn migrate(ctx: &Context, args: UpgradeArgs) -> Result<Exit> {
    let location = &ctx.store_path;
    let migrated = if wasm_host_store::is_postgres(location) {
        let url = location.to_str().expect("a postgres:// location is UTF-8");
        let (store, from) = wasm_host_store::PgStore::migrate(url)?;
        let to = wasm_host_store::PG_SCHEMA_VERSION;
        Migrated { store: wasm_host_store::Backend::location(&store).to_string(), backend: "postgres", from, to }
    } else {
        // redb stores are made whole at their current schema; older ones are upgraded by `store upgrade`.
        let store = ctx.open_store()?;
        let version = wasm_host_store::SCHEMA_VERSION;
        Migrated { store: store.location().to_string(), backend: "redb", from: version, to: version }
    };
    if args.out.json {
        output::json(&migrated)?;
    } else if migrated.from == migrated.to {
        println!("the store {} is at schema {}; nothing to migrate", migrated.store, migrated.to);
    } else {
        println!("migrated the store {} from schema {} to {}", migrated.store, migrated.from, migrated.to);
    }
    Ok(Exit::Ok)
}

pub fn export(ctx: &Context, args: ExportArgs) -> Result<Exit> {
    // A mistyped key is reported before anything is opened.
    wasm_host_store::parse_recipient(&args.recipient)?;
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(usage("the bundle is binary: pass -o FILE, or redirect stdout to a file"));
    }
    // Nothing to export without a store; creating an empty one (and an identity) would hide a wrong path.
    let store = ctx.existing_store()?.ok_or_else(|| {
        coded(
            Exit::NotFound,
            format!(
                "there is no store at {}, so there is nothing to export; pass --store with the store's path",
                ctx.store_path.display()
            ),
        )
    })?;
    let keys = ctx.keys(&store)?;
    let count = match &args.output {
        Some(path) => write_private(path, |out| Ok(wasm_host_store::export(&store, &keys, &args.recipient, out)?))
            .with_context(|| format!("exporting to {}", path.display()))?,
        None => wasm_host_store::export(&store, &keys, &args.recipient, std::io::stdout().lock())?,
    };
    if let (true, Some(path)) = (args.json, &args.output) {
        output::json(&Exported { connections: count, recipient: args.recipient.trim(), output: path })?;
    }
    note!(
        "exported {count} connections, encrypted to {} only; on that host: `wasm-host store import FILE`",
        args.recipient.trim()
    );
    Ok(Exit::Ok)
}

/// Writes a file that is either complete or absent, 0600 from the start: a temporary file beside it, fsynced,
/// then renamed over `path`.
fn write_private<T>(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<T>) -> Result<T> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| usage(format!("cannot create {} ({e}); pass -o with a writable path", tmp.display())))?;
    let mut out = std::io::BufWriter::new(file);
    let result = write(&mut out).and_then(|value| {
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        Ok(value)
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

pub fn import(ctx: &Context, args: ImportArgs) -> Result<Exit> {
    let store = ctx.open_store()?;
    let keys = ctx.keys(&store)?;
    let shown = args.file.display();
    let bundle = if args.file.as_os_str() == "-" {
        wasm_host_store::read_bundle(&keys, std::io::stdin().lock())
    } else {
        let file = fs::File::open(&args.file)
            .map_err(|e| usage(format!("cannot read the bundle {shown} ({e}); pass the file `store export` wrote")))?;
        wasm_host_store::read_bundle(&keys, file)
    }
    .with_context(|| format!("reading the bundle {shown}"))?;
    let exported_at = bundle.exported_at.clone();
    let report = wasm_host_store::import(&store, &keys, bundle, args.replace)?;
    let replaced = if report.replaced.is_empty() {
        String::new()
    } else {
        format!("; replaced: {}", report.replaced.join(", "))
    };
    if args.out.json {
        output::json(&Imported { imported: &report.imported, replaced: &report.replaced, exported_at: &exported_at })?;
    }
    note!(
        "imported {} connections exported at {exported_at}: {}{replaced}",
        report.imported.len(),
        report.imported.join(", ")
    );
    Ok(Exit::Ok)
}
