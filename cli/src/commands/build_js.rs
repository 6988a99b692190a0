//! `wasm-host build-js`: a JavaScript module (`export default async (input) => ...`) becomes a component of the
//! `function` world, with componentize-js (pinned, installed on first use) and our `tailor` global.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result};

use crate::args::BuildJsArgs;
use crate::exit::{coded, Exit};
use crate::output::note;
use crate::progress::Step;
use crate::paths;

/// Pinned in `cli/js/package.json` (read by build.rs); `--version` reports it too.
pub const COMPONENTIZE_JS: &str = env!("WASM_HOST_COMPONENTIZE_JS");
const PACKAGE_JSON: &str = include_str!("../../js/package.json");
const PACKAGE_LOCK: &str = include_str!("../../js/package-lock.json");
const BUILD_MJS: &str = include_str!("../../js/build.mjs");
const TAILOR_JS: &str = include_str!("../../js/tailor.js");

/// The generated entry: our global first, then the function's module; `run` parses the input, awaits the
/// default export and returns its JSON. A thrown error becomes `run`'s `err`, with its message.
const ENTRY: &str = r#"import './tailor.js';
import handler from './src/__FUNCTION__';

export async function run(input) {
  if (typeof handler !== 'function') {
    throw 'the module has no default export function: write `export default async (input) => { ... }`';
  }
  try {
    const output = await handler(JSON.parse(input));
    return JSON.stringify(output === undefined ? null : output);
  } catch (e) {
    throw String(e?.message ?? e);
  }
}
"#;

pub fn run(args: BuildJsArgs) -> Result<Exit> {
    let source = args.source.canonicalize().map_err(|e| {
        coded(Exit::BuildFailed, format!("cannot read {}: {e}", args.source.display()))
    })?;
    let node_version = Command::new("node").arg("--version").output();
    if !node_version.as_ref().is_ok_and(|o| o.status.success()) {
        return Err(coded(
            Exit::ToolMissing,
            "Node.js is needed to build JavaScript functions and was not found on PATH: install Node.js 20 or later \
             (for example `apt-get install nodejs npm`), then run build-js again",
        ));
    }
    let work = tempfile_dir()?;
    check_syntax(&source, work.path())?;
    let tools = tools_dir()?;
    install_tools(&tools)?;

    let build = work.path().join("build");
    let src_root = source.parent().expect("a file has a parent");
    copy_sources(src_root, &build.join("src"))?;
    let relative = source.strip_prefix(src_root).expect("inside its parent").to_string_lossy().replace('\\', "/");
    fs::write(build.join("tailor.js"), TAILOR_JS)?;
    fs::write(build.join("entry.js"), ENTRY.replace("__FUNCTION__", &relative))?;
    crate::wit::write_to(&build.join("wit"))?;
    let out_tmp = work.path().join("out.wasm");
    let started = Instant::now();
    let step = Step::start(format!("building {} with componentize-js {COMPONENTIZE_JS}", args.source.display()));
    let output = Command::new("node")
        .arg(tools.join("build.mjs"))
        .arg(build.join("entry.js"))
        .arg(build.join("wit"))
        .arg(&out_tmp)
        .current_dir(&tools)
        .output()
        .context("running componentize-js")?;
    drop(step);
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr)
            .replace(&build.join("src").display().to_string(), &src_root.display().to_string());
        return Err(coded(Exit::BuildFailed, format!("componentize-js could not build {}:\n{}", args.source.display(), text.trim())));
    }
    fs::copy(&out_tmp, &args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let size = fs::metadata(&args.output)?.len();
    note!(
        "wrote {} ({:.1} MiB) in {:.1} s",
        args.output.display(),
        size as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );
    Ok(Exit::Ok)
}

fn tempfile_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("wasm-host-build-js").tempdir().context("creating a temporary directory")
}

/// `node --check` on a copy with an .mjs name (so `import` is legal), its messages pointed back at the file.
fn check_syntax(source: &Path, work: &Path) -> Result<()> {
    let copy = work.join("check.mjs");
    fs::copy(source, &copy).with_context(|| format!("reading {}", source.display()))?;
    let out = Command::new("node").arg("--check").arg(&copy).output().context("running node --check")?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr).replace(&copy.display().to_string(), &source.display().to_string());
    // node prints `FILE:LINE`, the line, a caret, then the error; keep those lines, drop its stack.
    let kept: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("at ") && !l.starts_with("Node.js v")).collect();
    Err(coded(Exit::BuildFailed, format!("JavaScript syntax error:\n{}", kept.join("\n").trim())))
}

/// Where componentize-js lives: `WASM_HOST_JS_TOOLS`, else the cache directory.
fn tools_dir() -> Result<PathBuf> {
    match std::env::var_os("WASM_HOST_JS_TOOLS") {
        Some(d) if !d.is_empty() => Ok(PathBuf::from(d)),
        _ => Ok(paths::default_cache()?.join(format!("js-tools/componentize-js-{COMPONENTIZE_JS}"))),
    }
}

fn install_tools(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // One installer at a time; the others wait, then find it installed.
    let lock = fs::File::create(dir.join(".install.lock"))?;
    lock.lock().context("locking the JavaScript tools directory")?;
    fs::write(dir.join("build.mjs"), BUILD_MJS)?;
    let marker = dir.join("node_modules/@bytecodealliance/componentize-js/package.json");
    if !marker.exists() {
        fs::write(dir.join("package.json"), PACKAGE_JSON)?;
        fs::write(dir.join("package-lock.json"), PACKAGE_LOCK)?;
        let step = Step::start(format!(
            "installing componentize-js {COMPONENTIZE_JS} into {} (first use; about 400 MB)",
            dir.display()
        ));
        // npm's own messages are kept for the error below, not drawn over the spinner.
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .output()
            .context("running npm (it comes with Node.js)")?;
        let status = out.status;
        if status.success() {
            step.finish();
        } else {
            drop(step);
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
        }
        if !status.success() {
            return Err(coded(
                Exit::ToolMissing,
                format!("npm could not install componentize-js into {}; check the network and disk space", dir.display()),
            ));
        }
    }
    Ok(())
}

/// Copies the function's directory (JavaScript and JSON files; no node_modules, no hidden directories).
fn copy_sources(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if name_str != "node_modules" && !name_str.starts_with('.') && name_str != "target" {
                copy_sources(&path, &to.join(&name))?;
            }
        } else if [".js", ".mjs", ".cjs", ".json"].iter().any(|ext| name_str.ends_with(ext)) {
            fs::copy(&path, to.join(&name))?;
        }
    }
    Ok(())
}
