//! Builds every guest the tests run, for wasm32-wasip2, with the toolchain that builds the tests: the examples
//! in guest-examples/ and the test-only guests in tests/guests/. Their paths reach the tests as env vars.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    // Beside the host's target dir, so incremental guest builds survive `cargo clean -p`.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guests");
    for dir in ["wit", "guest-examples", "tests/guests"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let out = build(&root.join("guest-examples/Cargo.toml"), &target_dir);
    println!("cargo:rustc-env=WASM_HOST_GUESTS_DIR={}", out.display());
    let out = build(&root.join("tests/guests/Cargo.toml"), &target_dir);
    println!("cargo:rustc-env=WASM_HOST_TEST_GUESTS_DIR={}", out.display());
}

fn build(manifest: &Path, target_dir: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir);
    // The outer build's settings are for the host, not for wasm.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "RUSTC_WORKSPACE_WRAPPER"] {
        cmd.env_remove(var);
    }
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_PROFILE_") || key.starts_with("CARGO_CFG_") {
            cmd.env_remove(key);
        }
    }
    let status = cmd.status().expect("cannot run cargo to build the guests");
    assert!(
        status.success(),
        "building {} for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)",
        manifest.display()
    );
    target_dir.join("wasm32-wasip2/release")
}
