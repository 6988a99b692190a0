//! Which grants a `run` gets, and from where: decided once, then printed, so nothing is granted unseen.
//!
//! The rule: grants come from the operator. Any grant flag (`--allow-connection`, `--allow-host`, `--bind`)
//! replaces the manifest's whole `[grants]` table; without one, the grants of a manifest named with `--manifest`
//! apply. A manifest that merely lies beside the component (`FUNCTION.toml`) travels with it and may have come
//! with it, so it gives limits only: if it carries grants, the run is refused until the operator accepts the file
//! with `--manifest` or states the grants as flags.

use std::path::{Path, PathBuf};

use crate::exit::usage;
use crate::manifest::Grants;

/// Where the effective grants came from.
pub enum GrantSource {
    Flags,
    Manifest(PathBuf),
    Nowhere,
}

/// The grants one `run` gets.
pub struct EffectiveGrants {
    pub connections: Vec<String>,
    pub hosts: Vec<String>,
    pub bind: Vec<String>,
    pub source: GrantSource,
    /// A manifest beside the component whose grants the flags replaced.
    pub ignored: Option<PathBuf>,
}

/// The manifest as `run` found it.
pub struct FoundManifest<'a> {
    pub grants: &'a Grants,
    pub path: &'a Path,
    /// Named with `--manifest` (accepted by the operator), not merely found beside the component.
    pub explicit: bool,
}

fn is_empty(g: &Grants) -> bool {
    g.connections.is_empty() && g.hosts.is_empty() && g.bind.is_empty()
}

/// Applies the rule of this module to the flags' lists and the manifest, if any.
pub fn decide(
    connections: &[String],
    hosts: &[String],
    bind: &[String],
    manifest: Option<FoundManifest<'_>>,
) -> anyhow::Result<EffectiveGrants> {
    let flags_given = !(connections.is_empty() && hosts.is_empty() && bind.is_empty());
    if flags_given {
        let ignored = manifest.filter(|m| !is_empty(m.grants)).map(|m| m.path.to_path_buf());
        return Ok(EffectiveGrants {
            connections: connections.to_vec(),
            hosts: hosts.to_vec(),
            bind: bind.to_vec(),
            source: GrantSource::Flags,
            ignored,
        });
    }
    let Some(m) = manifest.filter(|m| !is_empty(m.grants)) else {
        return Ok(EffectiveGrants {
            connections: vec![],
            hosts: vec![],
            bind: vec![],
            source: GrantSource::Nowhere,
            ignored: None,
        });
    };
    if !m.explicit {
        return Err(usage(format!(
            "{} beside the component grants {}; a file that travels with a component grants it nothing unseen: \
             review it and pass `--manifest {}` to accept its grants, or give the grants as flags \
             (--allow-connection, --allow-host, --bind)",
            m.path.display(),
            lists(m.grants),
            m.path.display()
        )));
    }
    Ok(EffectiveGrants {
        connections: m.grants.connections.clone(),
        hosts: m.grants.hosts.clone(),
        bind: m.grants.bind.clone(),
        source: GrantSource::Manifest(m.path.to_path_buf()),
        ignored: None,
    })
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
}

fn lists(g: &Grants) -> String {
    format!("connections: {}; hosts: {}; bind: {}", list(&g.connections), list(&g.hosts), list(&g.bind))
}

impl EffectiveGrants {
    /// One line for stderr: every grant, and where it came from.
    pub fn describe(&self, function: &str) -> String {
        let from = match &self.source {
            GrantSource::Flags => "from the command line".to_owned(),
            GrantSource::Manifest(p) => format!("from --manifest {}", p.display()),
            GrantSource::Nowhere => "none given".to_owned(),
        };
        let grants = Grants { connections: self.connections.clone(), hosts: self.hosts.clone(), bind: self.bind.clone() };
        let mut line = format!("wasm-host: grants of `{function}` ({from}): {}", lists(&grants));
        if let Some(p) = &self.ignored {
            line.push_str(&format!("; the grants in {} are ignored: flags replace them all", p.display()));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(bind: &[&str]) -> Grants {
        Grants { bind: bind.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    #[test]
    fn a_manifest_beside_the_component_grants_nothing_unseen() {
        let beside = grants(&["api=http://127.0.0.1:18082"]);
        let path = Path::new("report.toml");
        let found = |explicit| Some(FoundManifest { grants: &beside, path, explicit });
        // Found beside, no flags: refused, naming what it grants and how to accept it.
        let e = decide(&[], &[], &[], found(false)).err().unwrap().to_string();
        assert!(e.contains("api=http://127.0.0.1:18082") && e.contains("--manifest report.toml"), "{e}");
        // A flag replaces the whole table: the manifest's bind is gone.
        let g = decide(&[], &["127.0.0.1:18081".into()], &[], found(false)).unwrap();
        assert!(g.bind.is_empty() && g.hosts == ["127.0.0.1:18081"]);
        assert!(g.describe("report").contains("report.toml are ignored"), "{}", g.describe("report"));
        let g = decide(&[], &["127.0.0.1:18081".into()], &[], found(true)).unwrap();
        assert!(g.bind.is_empty());
        // Named with --manifest: its grants apply, and say so.
        let g = decide(&[], &[], &[], found(true)).unwrap();
        assert_eq!(g.bind, ["api=http://127.0.0.1:18082"]);
        assert!(g.describe("report").contains("from --manifest report.toml"), "{}", g.describe("report"));
        // A manifest beside the component with limits only is fine.
        let empty = Grants::default();
        let g = decide(&[], &[], &[], Some(FoundManifest { grants: &empty, path, explicit: false })).unwrap();
        assert!(g.describe("report").contains("none given"));
    }
}
