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

/// redb → PostgreSQL → redb through `store export` / `store import` bundles.
#[test]
fn a_bundle_moves_a_store_from_redb_to_postgres_and_back() {
    suite::cases::a_bundle_moves_a_store_between_backends::<suite::Redb, suite::Postgres>();
}
