//! `wasm-host completion SHELL` (clap_complete) and `wasm-host man --out-dir DIR` (clap_mangen): both generated
//! from the same clap definition as `--help`, so they cannot drift from it.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::args::{CompletionArgs, ManArgs};
use crate::exit::Exit;
use crate::output::note;

pub fn completion(args: &CompletionArgs) -> Result<Exit> {
    let mut command = crate::command();
    clap_complete::generate(args.shell, &mut command, "wasm-host", &mut std::io::stdout());
    Ok(Exit::Ok)
}

pub fn man(args: &ManArgs) -> Result<Exit> {
    std::fs::create_dir_all(&args.out_dir).with_context(|| format!("creating {}", args.out_dir.display()))?;
    let mut command = crate::command();
    command.build();
    let mut written = 0;
    write_pages(&command, "wasm-host", &args.out_dir, &mut written)?;
    note!("wrote {written} manual pages into {}", args.out_dir.display());
    Ok(Exit::Ok)
}

/// One page per command, named as git names its own (`wasm-host-authconnection-create.1`).
fn write_pages(command: &clap::Command, name: &str, dir: &Path, written: &mut usize) -> Result<()> {
    let page = command.clone().name(name.to_owned());
    let path = dir.join(format!("{name}.1"));
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out).with_context(|| format!("rendering {}", path.display()))?;
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    *written += 1;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
