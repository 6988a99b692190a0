//! `wasm-host new NAME --lang rust|js`: a project that builds and runs as its README says, with the WIT this
//! binary implements and a manifest of grants and limits. `tests/cli.rs` builds and runs one of each.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::args::{Lang, NewArgs};
use crate::exit::{usage, Exit};
use crate::output::note;

const MANIFEST: &str = include_str!("../../templates/manifest.toml");

/// `(path in the project, template)`; `{{name}}` becomes the function's name, `{{crate}}` its name as Cargo
/// names the built file (hyphens become underscores).
const RUST: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../templates/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("../../templates/rust/src/lib.rs")),
    ("README.md", include_str!("../../templates/rust/README.md")),
    (".gitignore", include_str!("../../templates/rust/gitignore")),
    ("{{name}}.toml", MANIFEST),
];

const JS: &[(&str, &str)] = &[
    ("{{name}}.js", include_str!("../../templates/js/function.js")),
    ("README.md", include_str!("../../templates/js/README.md")),
    (".gitignore", include_str!("../../templates/js/gitignore")),
    ("{{name}}.toml", MANIFEST),
];

pub fn run(args: &NewArgs) -> Result<Exit> {
    wasm_host_store::validate_name(&args.name).context("the function's name")?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    check_empty(&dir)?;
    let fill = |text: &str| text.replace("{{name}}", &args.name).replace("{{crate}}", &args.name.replace('-', "_"));
    let files = match args.lang {
        Lang::Rust => RUST,
        Lang::Js => JS,
    };
    for (path, template) in files {
        let path = dir.join(fill(path));
        fs::create_dir_all(path.parent().expect("inside the project")).with_context(|| format!("creating {}", dir.display()))?;
        fs::write(&path, fill(template)).with_context(|| format!("writing {}", path.display()))?;
    }
    crate::wit::write_to(&dir.join("wit")).with_context(|| format!("writing {}", dir.join("wit").display()))?;
    note!("created {} ({}): see {} for how to build and run it", dir.display(), match args.lang {
        Lang::Rust => "Rust",
        Lang::Js => "JavaScript",
    }, dir.join("README.md").display());
    Ok(Exit::Ok)
}

/// The project directory may be new or empty; anything in it would be overwritten, so it is refused.
fn check_empty(dir: &Path) -> Result<()> {
    match fs::read_dir(dir).map(|mut entries| entries.next().is_none()) {
        Ok(false) => Err(usage(format!(
            "{} exists and is not empty; pass another NAME or --dir with a new or empty directory",
            dir.display()
        ))),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(usage(format!("{} cannot be used for the project ({e}); pass --dir with a new directory", dir.display()))),
    }
}
