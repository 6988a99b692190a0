//! Records what `wasm-host --version` reports that Cargo does not know: the commit the binary was built from,
//! and the componentize-js version `build-js` installs (from `js/package.json`, the one place it is pinned).
//!
//! The commit comes from `git` when the source is a checkout; a build from a source tarball has no `.git`, so it
//! takes `WASM_HOST_BUILD_COMMIT` from the environment, else says `unknown`.

use std::path::Path;
use std::process::Command;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-env=WASM_HOST_COMMIT={}", commit(Path::new(&dir)));
    println!("cargo:rerun-if-env-changed=WASM_HOST_BUILD_COMMIT");

    let package = Path::new(&dir).join("js/package.json");
    println!("cargo:rerun-if-changed={}", package.display());
    let text = std::fs::read_to_string(&package).expect("cli/js/package.json");
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("\"@bytecodealliance/componentize-js\": \""))
        .and_then(|rest| rest.split('"').next())
        .expect("cli/js/package.json names @bytecodealliance/componentize-js with an exact version");
    println!("cargo:rustc-env=WASM_HOST_COMPONENTIZE_JS={version}");
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()).filter(|s| !s.is_empty())
}

fn commit(dir: &Path) -> String {
    let Some(hash) = git(dir, &["rev-parse", "--short=12", "HEAD"]) else {
        return std::env::var("WASM_HOST_BUILD_COMMIT")
            .ok()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| "unknown (not built from a git checkout)".to_owned());
    };
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the branch it names (a commit), loose or packed.
    let branch = git(dir, &["symbolic-ref", "-q", "HEAD"]);
    for name in ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref()) {
        let path = git(dir, &["rev-parse", "--git-path", name]).map(|p| dir.join(p));
        // A path that does not exist would make cargo run this script at every build.
        if let Some(path) = path.filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    hash
}
