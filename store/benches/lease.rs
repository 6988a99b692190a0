//! The redb backend's refresh lease as it is (a lock file beside the store, lease_lock.rs) against what it was (a
//! row upserted in one write transaction: in multi-process mode redb makes each commit durable, two fsyncs),
//! interleaved round by round on the same disk.
//!
//! `cargo bench -p wasm-host-store --bench lease` prints the median, min and max over 15 rounds of 20 take-and-
//! release each. Under `cargo test` it runs one small round, to show it still works, and times nothing.

use std::time::Instant;

use wasm_host_store::redb::{ConcurrencyMode, Database};
use wasm_host_store::secrecy::SecretString;
use wasm_host_store::{Endpoints, Keys, NewConnection, Store, LEASES, TYPE_OAUTH2};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, per) = if full { (15, 20) } else { (1, 2) };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    let new = NewConnection {
        name: "c".into(),
        kind: TYPE_OAUTH2.into(),
        provider_url: "https://provider.example".into(),
        issuer_url: None,
        client_id: "client".into(),
        endpoints: Endpoints::default(),
        expose_refresh_token: false,
    };
    store.create(new, &SecretString::from("client-secret"), &Keys::generate()).unwrap();
    let row = Database::builder().set_concurrency_mode(ConcurrencyMode::MultiWriter).create(dir.path().join("rows.redb")).unwrap();
    let holder = format!("{}-1", std::process::id());
    let (mut rows, mut locks) = (vec![], vec![]);
    for _ in 0..rounds {
        let started = Instant::now();
        for i in 0..per {
            let txn = row.begin_write().unwrap();
            txn.open_table(LEASES).unwrap().insert("c", format!("{holder}\n{i}").as_str()).unwrap();
            txn.commit().unwrap();
        }
        rows.push(started.elapsed().as_secs_f64() * 1e6 / per as f64);
        let started = Instant::now();
        for _ in 0..per {
            store.try_lease("c", &holder, 10_000).unwrap();
            store.release_lease("c", &holder).unwrap();
        }
        locks.push(started.elapsed().as_secs_f64() * 1e6 / per as f64);
    }
    if full {
        println!("lease as a row, one durable commit: {} µs", show(rows));
        println!("lease as a lock file, take + release: {} µs", show(locks));
    }
}

fn show(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!("{:.1} ({:.1}–{:.1})", v[v.len() / 2], v[0], v[v.len() - 1])
}
