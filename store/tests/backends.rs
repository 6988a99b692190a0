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
                the_lease_has_one_holder_until_released_or_lapsed,
                marks_registration_and_revocation,
                a_wrong_identity_is_refused_before_anything_is_written,
                another_handle_sees_each_change_through_the_generation,
                export_then_import_on_another_identity,
                rekey_switches_the_file_and_retires_the_old_key,
                a_row_the_old_key_cannot_open_aborts_the_whole_rekey,
                a_planted_row_is_reported_as_tampered,
                admin_tokens_are_kept_as_hashes_found_and_revoked,
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

/// redb → PostgreSQL → redb through `store export` / `store import` bundles.
#[test]
fn a_bundle_moves_a_store_from_redb_to_postgres_and_back() {
    suite::cases::a_bundle_moves_a_store_between_backends::<suite::Redb, suite::Postgres>();
}
