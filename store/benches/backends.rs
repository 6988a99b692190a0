//! redb and PostgreSQL side by side, on what the store does for a function: the read behind a cold
//! `get-connection-token` (`token_snapshot`: the record, its sealed rows and tag in one snapshot, the access token
//! opened), the change-signal load behind a cached one (`generation`), and `list` of every connection.
//!
//! `WASM_HOST_TEST_POSTGRES=postgres://... cargo bench -p wasm-host-store --bench backends` prints the median,
//! min and max over 15 rounds, at 10 and 10,000 connections (the PostgreSQL database is on loopback; it is made
//! and dropped by the bench). Under `cargo test` it runs one small round of each, to show it still works, and
//! times nothing.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use wasm_host_store::secrecy::SecretString;
use wasm_host_store::{Endpoints, Keys, NewConnection, NewTokens, Store, TYPE_OAUTH2};

#[path = "../../tests/support/postgres.rs"]
#[allow(dead_code)] // each includer uses part of it
mod database;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, sizes): (usize, &[usize]) = if full { (15, &[10, 10_000]) } else { (1, &[3]) };
    let keys = Keys::generate();
    for &count in sizes {
        let dir = tempfile::tempdir().unwrap();
        let db = database::Database::new(&format!("bench_{count}"));
        let redb = fill(Store::open(&dir.path().join("store.redb")).unwrap(), &keys, count);
        let pg = fill(Store::open(Path::new(&db.url())).unwrap(), &keys, count);
        for (backend, store) in [("redb", &redb), ("PostgreSQL", &pg)] {
            let mut i = 0;
            let reads = if full { 200 } else { 2 };
            let snapshot = rounds_of(rounds, || {
                let started = Instant::now();
                for _ in 0..reads {
                    i = (i + 7919) % count;
                    black_box(store.token_snapshot(&format!("c{i}"), &keys).unwrap().unwrap());
                }
                started.elapsed().as_secs_f64() * 1e6 / reads as f64
            });
            let loads = if full { 10_000_000 } else { 1_000 };
            let generation = rounds_of(rounds, || {
                let started = Instant::now();
                let mut sum = 0u64;
                for _ in 0..loads {
                    sum = sum.wrapping_add(black_box(store).generation().expect("a change signal"));
                }
                black_box(sum);
                started.elapsed().as_secs_f64() * 1e9 / loads as f64
            });
            let list = rounds_of(rounds.min(9), || {
                let started = Instant::now();
                assert_eq!(black_box(store.list().unwrap()).len(), count);
                started.elapsed().as_secs_f64() * 1e3
            });
            println!("{backend}, {count} connections:");
            println!("  token_snapshot (the cold get's read): {} µs", show(snapshot));
            println!("  generation (the cached get's check):  {} ns", show(generation));
            println!("  list of every connection:             {} ms", show(list));
        }
    }
}

/// `count` authorized connections `c0`, `c1`, ... in `store`, each written as `create` and `authorize` would.
fn fill(store: Store, keys: &Keys, count: usize) -> Store {
    let token = SecretString::from("access-token-of-a-realistic-length-0123456789abcdef0123456789abcdef");
    for i in 0..count {
        let new = NewConnection {
            name: format!("c{i}"),
            kind: TYPE_OAUTH2.into(),
            provider_url: "https://provider.example".into(),
            issuer_url: None,
            client_id: "client".into(),
            endpoints: Endpoints::default(),
            expose_refresh_token: false,
        };
        store.create(new, &SecretString::from("client-secret"), keys).unwrap();
        let tokens = NewTokens { expires_at: Some(4_000_000_000), ..NewTokens::bearer(&token) };
        store.put_tokens(&format!("c{i}"), tokens, keys).unwrap();
    }
    store
}

fn rounds_of(rounds: usize, mut round: impl FnMut() -> f64) -> Vec<f64> {
    (0..rounds).map(|_| round()).collect()
}

fn show(mut samples: Vec<f64>) -> String {
    samples.sort_by(f64::total_cmp);
    format!("{:.2} ({:.2}–{:.2})", samples[samples.len() / 2], samples[0], samples[samples.len() - 1])
}
