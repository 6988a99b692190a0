//! The store's behavioural suite, run against every backend: each case in suite/cases.rs becomes one test per
//! backend (`redb::create_get_list_delete`, `postgres::...`), so a backend is done when the whole list passes on it.
//! The PostgreSQL cases need `WASM_HOST_TEST_POSTGRES` (scripts/postgres.sh); without it they fail saying so.

mod suite;

/// One `#[test]` per case for the backend whose fixture is `$fixture`.
macro_rules! backend_suite {
    ($backend:ident, $fixture:ty) => {
        mod $backend {
            backend_suite!(@cases $fixture;
                a_refresh_commits_only_onto_the_revision_it_read,
                create_get_list_delete_and_revisions,
                tokens_replace_keep_remove_and_snapshots,
                the_lease_has_one_holder_until_released,
                a_lease_waiter_is_woken_when_the_lease_ends,
                marks_registration_and_revocation,
                a_wrong_identity_is_refused_before_anything_is_written,
                another_handle_sees_each_change_through_the_generation,
                export_then_import_on_another_identity,
                rekey_switches_the_file_and_retires_the_old_key,
                a_row_the_old_key_cannot_open_aborts_the_whole_rekey,
                a_planted_row_is_reported_as_tampered,
                admin_tokens_are_kept_as_hashes_found_and_revoked,
                the_audit_log_keeps_entries_in_order,
            );
        }
    };
    (@cases $fixture:ty; $($case:ident,)*) => {
        $(
            #[test]
            fn $case() {
                crate::suite::cases::$case::<$fixture>();
            }
        )*
    };
}

backend_suite!(redb, crate::suite::Redb);
backend_suite!(postgres, crate::suite::Postgres);

/// How a lease lapses is the one part of the lease each backend does its own way (store/src/backend.rs).
mod lapse {
    #[test]
    fn postgres_a_lease_lapses_at_its_time() {
        crate::suite::cases::a_lease_lapses_at_its_time::<crate::suite::Postgres>();
    }

    #[test]
    fn redb_a_lease_lapses_when_its_holder_is_gone() {
        crate::suite::cases::a_lease_lapses_when_its_holder_is_gone::<crate::suite::Redb>();
    }

    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use secrecy::SecretString;
    use wasm_host_store::{Keys, Lease, Store, WriteError};

    const CHILD_STORE: &str = "WASM_HOST_TEST_LEASE_CHILD_STORE";

    /// redb: a process that holds a lease and is SIGKILLed loses it at once (the kernel closes its lock file).
    #[test]
    fn redb_a_lease_lapses_when_its_process_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let store = Store::open(&path).unwrap();
        store.create(crate::suite::cases::connection("c"), &SecretString::from("cs"), &Keys::generate()).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "lapse::redb_lease_holder_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_STORE, &path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Waits for the state (the child says it holds the lease), not for a time; EOF means the child failed.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // (libtest prints the test's name on the same line first.)
        assert!(lines.any(|l| l.is_ok_and(|l| l.ends_with("lease held"))), "the child process never took the lease");
        let me = format!("{}-1", std::process::id());
        assert!(matches!(store.try_lease("c", &me, 60_000).unwrap(), Lease::Held { .. }), "the child holds it");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(store.try_lease("c", &me, 60_000).unwrap(), Lease::Acquired, "lapsed with its holder");
    }

    /// Run by [`redb_a_lease_lapses_when_its_process_is_killed`] in a process of its own: takes the lease, says
    /// so, and holds it until its stdin closes or two minutes pass (the parent kills it first; the bound ends a
    /// parent that waits for the wrong line too: it then reads the end of the child's output).
    #[test]
    #[ignore = "the child process of redb_a_lease_lapses_when_its_process_is_killed"]
    fn redb_lease_holder_child() {
        let path = std::env::var_os(CHILD_STORE).expect("run by redb_a_lease_lapses_when_its_process_is_killed");
        let store = Store::open(std::path::Path::new(&path)).unwrap();
        let me = format!("{}-1", std::process::id());
        assert_eq!(store.try_lease("c", &me, 60_000).unwrap(), Lease::Acquired);
        println!("lease held");
        let (closed, stdin_closed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = std::io::stdin().lines().count();
            let _ = closed.send(());
        });
        let _ = stdin_closed.recv_timeout(std::time::Duration::from_secs(120));
    }

    /// redb: where the lock files cannot be made (here `<store>.leases` is a file, not a directory; a read-only
    /// store directory is the same for a user that is not root), reading works and a lease is a clear error.
    #[test]
    fn redb_a_lease_without_its_lock_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        std::fs::write(dir.path().join("store.redb.leases"), b"").unwrap();
        let store = Store::open(&path).unwrap();
        store.create(crate::suite::cases::connection("c"), &SecretString::from("cs"), &Keys::generate()).unwrap();
        assert_eq!(store.list().unwrap().len(), 1);
        let err = store.try_lease("c", "1-1", 60_000).unwrap_err();
        assert!(matches!(err, WriteError::LeaseLock { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("store.redb.leases/") && message.contains("`c`"), "{message}");
        assert!(message.contains("writable"), "{message}");
    }
}

/// PostgreSQL, every pooled connection busy: a host whose pool holds one connection (`pool_max_size=1`), stuck in
/// a write that waits on a row another session locked (as a long transaction elsewhere would). A call then waits
/// the bounded 5 s for a connection and fails as `unavailable` (the CLI's exit 22), naming the database and
/// never the URL's password, in its message and its Debug form; once the connection is free, calls succeed.
#[test]
fn postgres_an_exhausted_pool_is_a_bounded_wait_then_unavailable_then_works_again() {
    use secrecy::SecretString;
    use std::time::{Duration, Instant};
    use wasm_host_store::{Keys, NewTokens, Store};

    let db = suite::database::Database::new("pool_exhausted");
    let url = db.url().replacen("postgres://postgres@", "postgres://postgres:pw-not-in-errors@", 1);
    assert!(url.contains("pw-not-in-errors"), "{url}");
    let store = std::sync::Arc::new(Store::open(std::path::Path::new(&format!("{url}?pool_max_size=1"))).unwrap());
    let keys = std::sync::Arc::new(Keys::generate());
    store.create(suite::cases::connection("c"), &SecretString::from("cs"), &keys).unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let session = || {
        let config: tokio_postgres::Config = db.url().parse().unwrap();
        let (client, connection) = runtime.block_on(config.connect(tokio_postgres::NoTls)).unwrap();
        runtime.spawn(connection);
        client
    };
    let (locker, watcher) = (session(), session());
    runtime.block_on(locker.batch_execute("BEGIN; SELECT 1 FROM wasm_host_revisions WHERE name = 'c' FOR UPDATE")).unwrap();
    let writer = {
        let (store, keys) = (store.clone(), keys.clone());
        std::thread::spawn(move || store.put_tokens("c", NewTokens::bearer(&SecretString::from("t1")), &keys))
    };
    // Wait for the state: the write waits on the lock, holding the pool's only connection.
    let deadline = Instant::now() + Duration::from_secs(30);
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
    while runtime.block_on(watcher.query_one(waiting, &[])).unwrap().get::<_, i64>(0) == 0 {
        assert!(Instant::now() < deadline, "the write never reached the locked row");
        std::thread::sleep(Duration::from_millis(20));
    }

    let started = Instant::now();
    let err = store.list().expect_err("no connection is free");
    eprintln!("an exhausted pool answered after {:?}", started.elapsed());
    assert!(err.is_unavailable(), "{err:?}");
    let (message, debug) = (err.to_string(), format!("{err:?}"));
    assert!(message.contains("no database connection could be had within 5 s"), "{message}");
    assert!(message.contains(&format!("the store {} cannot be reached", db.url())), "{message}");
    assert!(!message.contains("pw-not-in-errors") && !debug.contains("pw-not-in-errors"), "{message}\n{debug}");
    assert!(!writer.is_finished(), "the write still waits: the pool was exhausted throughout");

    runtime.block_on(locker.batch_execute("COMMIT")).unwrap();
    writer.join().unwrap().expect("the write goes through once the row is free");
    assert_eq!(store.list().unwrap().len(), 1);
    let token = store.secret("c", wasm_host_store::SecretField::AccessToken, &keys).unwrap().unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&token), "t1");
}

/// PostgreSQL: every kind of error a store URL with a password can lead to (a URL that does not parse, a CA file
/// missing, the server unreachable, refusing the database, refusing TLS; a wrong identity, a tampered row on an
/// open store) names the store without the password, in its message and in its `Debug` form, as does the store.
#[test]
fn postgres_no_error_shows_the_password_of_the_url() {
    use secrecy::SecretString;
    use wasm_host_store::{Keys, NewTokens, OpenError, ReadError, Store, StoreLocation, WriteError};
    const PW: &str = "pw-must-stay-hidden";
    let db = suite::database::Database::new("no_password_shown");
    let url = db.url().replacen("postgres://postgres@", &format!("postgres://postgres:{PW}@"), 1);
    let (server, _) = url.rsplit_once('/').unwrap();
    let shown = |e: &dyn std::fmt::Debug, text: String| {
        let debug = format!("{e:?}");
        assert!(!text.contains(PW) && !debug.contains(PW), "{text}\n{debug}");
        text
    };
    let open = |url: String| Store::open(std::path::Path::new(&url)).expect_err(&url);
    let opened = [
        open("postgres://app:pw-must-stay-hidden@127.0.0.1:notaport/x".into()),
        open(format!("{url}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")),
        open("postgres://app:pw-must-stay-hidden@127.0.0.1:1/x".into()),
        open(format!("{server}/no_such_database_here")),
        open(format!("{url}?sslmode=require")),
    ];
    assert!(matches!(opened[0], OpenError::BadLocation { .. }), "{:?}", opened[0]);
    assert!(matches!(opened[1], OpenError::RootCert { .. }), "{:?}", opened[1]);
    assert!(matches!(opened[2], OpenError::Unavailable { .. }), "{:?}", opened[2]);
    assert!(matches!(opened[3], OpenError::Refused { .. }), "{:?}", opened[3]);
    // The test cluster has no TLS: `require` cannot be met, and retrying will not change that.
    assert!(matches!(&opened[4], OpenError::Untrusted { detail, .. } if detail.contains("does not support TLS")), "{:?}", opened[4]);
    for e in &opened {
        shown(e, e.to_string());
    }
    assert!(shown(&opened[4], opened[4].to_string()).contains(&format!("the store {}", db.url())));

    let store = Store::open(std::path::Path::new(&url)).unwrap();
    let location = store.location();
    assert!(matches!(&location, StoreLocation::Postgres(l) if l.as_str() == db.url()), "{location:?}");
    shown(&store, format!("{store:?}"));
    let keys = Keys::generate();
    store.create(suite::cases::connection("c"), &SecretString::from("cs"), &keys).unwrap();
    let wrong = store.put_tokens("c", NewTokens::bearer(&SecretString::from("t")), &Keys::generate()).unwrap_err();
    assert!(matches!(wrong, WriteError::WrongIdentity { .. }), "{wrong:?}");
    assert!(shown(&wrong, wrong.to_string()).contains(&db.url()));
    db.execute("UPDATE wasm_host_connections SET tag = '\\x00' WHERE name = 'c'");
    let tampered = store.connection("c", &keys).unwrap_err();
    assert!(matches!(tampered, ReadError::Tampered { .. }), "{tampered:?}");
    assert!(shown(&tampered, tampered.to_string()).contains(&db.url()));
}

/// redb → PostgreSQL → redb through `store export` / `store import` bundles.
#[test]
fn a_bundle_moves_a_store_from_redb_to_postgres_and_back() {
    suite::cases::a_bundle_moves_a_store_between_backends::<suite::Redb, suite::Postgres>();
}

/// Pending remote authorizations (suite/authorization_requests.rs), on each backend.
mod authorization_requests {
    macro_rules! on_both {
        ($($case:ident),* $(,)?) => {
            mod redb { $( #[test] fn $case() { crate::suite::authorization_requests::$case::<crate::suite::Redb>(); } )* }
            mod postgres { $( #[test] fn $case() { crate::suite::authorization_requests::$case::<crate::suite::Postgres>(); } )* }
        };
    }
    on_both!(
        a_pending_authorization_is_taken_once,
        expired_authorizations_are_refused_then_purged,
        two_concurrent_takes_have_one_winner,
        a_pending_device_authorization_keeps_its_code_sealed,
    );
}
