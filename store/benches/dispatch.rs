//! What the store interface costs on the hot path: [`Backend::generation`], the one store call a cached token
//! read makes, through the [`Store`] handle (what the broker holds) against a [`RedbStore`] called directly (what
//! the broker called before the interface existed). `cargo bench -p wasm-host-store --bench dispatch` prints the
//! median, min and max of 15 rounds of 50 million loads each, in nanoseconds per load; under `cargo test` it runs
//! one short round of each, to show it still works, and times nothing.

use std::hint::black_box;
use std::time::Instant;

use wasm_host_store::{Backend, RedbStore, Store};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, loads) = if full { (15, 50_000_000u64) } else { (1, 1_000) };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let handle = Store::open(&dir.path().join("handle.redb")).expect("a store");
    let direct = RedbStore::open(&dir.path().join("direct.redb")).expect("a store");
    let (mut through_handle, mut called_directly) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        through_handle.push(ns_per_load(loads, || black_box(&handle).generation()));
        called_directly.push(ns_per_load(loads, || Backend::generation(black_box(&direct))));
    }
    let show = |mut samples: Vec<f64>| {
        samples.sort_by(f64::total_cmp);
        format!("{:.2} ns ({:.2}–{:.2})", samples[samples.len() / 2], samples[0], samples[samples.len() - 1])
    };
    println!("generation() through the Store handle: {}", show(through_handle));
    println!("generation() on RedbStore directly:    {}", show(called_directly));
}

/// Nanoseconds per call of `load`, averaged over `loads` calls; generic so that nothing but the load is timed.
fn ns_per_load(loads: u64, load: impl Fn() -> Option<u64>) -> f64 {
    let started = Instant::now();
    let mut sum = 0u64;
    for _ in 0..loads {
        sum = sum.wrapping_add(load().expect("a generation counter beside the store"));
    }
    black_box(sum);
    started.elapsed().as_secs_f64() * 1e9 / loads as f64
}
