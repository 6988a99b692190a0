//! What every backend must do, one function per case; backends.rs runs each against each backend.

use std::fs;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use wasm_host_store::{
    admin_token_hash, AdminScope, AdminToken, AuditEntry,
    export, import, read_bundle, rekey_identity_file, Endpoints, ImportReport, Keys, Lease, LeaseWait, NewConnection, NewTokens,
    ReadError, RefreshUpdate, Resealed, SecretError, SecretField, Status, Store, WriteError, TYPE_OAUTH2,
};

use super::Fixture;

pub fn connection(name: &str) -> NewConnection {
    NewConnection {
        name: name.into(),
        kind: TYPE_OAUTH2.into(),
        provider_url: "https://p.example".into(),
        issuer_url: None,
        client_id: "id".into(),
        endpoints: Endpoints::default(),
        expose_refresh_token: false,
    }
}

fn open(store: &Store, keys: &Keys, name: &str, field: SecretField) -> Option<String> {
    store.secret(name, field, keys).unwrap().map(|s| s.expose_secret().to_owned())
}

/// A refresh's result is committed only onto the connection it was computed from.
pub fn a_refresh_commits_only_onto_the_revision_it_read<F: Fixture>() {
    let fixture = F::new();
    let store = fixture.open();
    let keys = Keys::generate();
    let (first, written, refreshed) = (SecretString::from("first"), SecretString::from("written"), SecretString::from("refreshed"));
    store.create(connection("c"), &SecretString::from("cs"), &keys).unwrap();
    store.put_tokens("c", NewTokens::bearer(&first), &keys).unwrap();
    let read = store.refresh_grant("c", &keys).unwrap().unwrap().connection.revision;
    store.put_tokens("c", NewTokens::bearer(&written), &keys).unwrap();
    let refused = store.put_refreshed("c", NewTokens::bearer(&refreshed), &keys, read);
    assert!(matches!(refused, Err(WriteError::Changed(_))), "{refused:?}");
    let marked = store.mark_needs_authorization("c", "refused", None, Some(read), &keys);
    assert!(matches!(marked, Err(WriteError::Changed(_))), "{marked:?}");
    assert_eq!(open(&store, &keys, "c", SecretField::AccessToken).as_deref(), Some("written"));
    assert_eq!(store.get("c").unwrap().unwrap().status, Status::Authorized);

    // Deleted and created again: a new connection, whatever its revision history.
    let read = store.refresh_grant("c", &keys).unwrap().unwrap().connection.revision;
    store.delete("c").unwrap();
    assert!(matches!(store.put_refreshed("c", NewTokens::bearer(&refreshed), &keys, read), Err(WriteError::Changed(_))));
    store.create(connection("c"), &SecretString::from("cs"), &keys).unwrap();
    assert!(matches!(store.put_refreshed("c", NewTokens::bearer(&refreshed), &keys, read), Err(WriteError::Changed(_))));
    assert_eq!(store.get("c").unwrap().unwrap().status, Status::Created);

    // Unchanged: committed.
    let read = store.refresh_grant("c", &keys).unwrap().unwrap().connection.revision;
    store.put_refreshed("c", NewTokens::bearer(&refreshed), &keys, read).unwrap();
    assert_eq!(open(&store, &keys, "c", SecretField::AccessToken).as_deref(), Some("refreshed"));
}

/// Records come back as written, in name order; a name is taken once; the revision counts on across a delete.
pub fn create_get_list_delete_and_revisions<F: Fixture>() {
    let fixture = F::new();
    let store = fixture.open();
    let keys = Keys::generate();
    assert!(store.list().unwrap().is_empty());
    assert_eq!(store.get("b").unwrap(), None);
    assert_eq!(store.revision("b").unwrap(), None);
    let made = store.create(connection("b"), &SecretString::from("secret-b"), &keys).unwrap();
    store.create(connection("a"), &SecretString::from("secret-a"), &keys).unwrap();
    assert_eq!((made.revision, made.status), (1, Status::Created));
    assert_eq!(store.get("b").unwrap().as_ref(), Some(&made));
    assert_eq!(store.connection("b", &keys).unwrap().as_ref(), Some(&made));
    let names: Vec<_> = store.list().unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(matches!(
        store.create(connection("b"), &SecretString::from("x"), &keys),
        Err(WriteError::AlreadyExists(n)) if n == "b"
    ));
    assert_eq!(open(&store, &keys, "b", SecretField::ClientSecret).as_deref(), Some("secret-b"));
    assert_eq!(open(&store, &keys, "b", SecretField::AccessToken), None);

    store.delete("b").unwrap();
    assert!(matches!(store.delete("b"), Err(WriteError::NotFound(n)) if n == "b"));
    assert_eq!(store.get("b").unwrap(), None);
    assert_eq!(open(&store, &keys, "b", SecretField::ClientSecret), None);
    let again = store.create(connection("b"), &SecretString::from("secret-b2"), &keys).unwrap();
    assert_eq!(again.revision, 3, "created, deleted, created: never back to 1");
    assert_eq!(store.revision("b").unwrap(), Some(3));
    assert_eq!(open(&store, &keys, "b", SecretField::ClientSecret).as_deref(), Some("secret-b2"));
    assert!(matches!(store.put_tokens("zz", NewTokens::bearer(&SecretString::from("t")), &keys), Err(WriteError::NotFound(_))));
}

/// A refresh token is replaced, kept or removed as asked; a snapshot hands out the access token of an authorized
/// connection only, and its refresh token only when the connection exposes it.
pub fn tokens_replace_keep_remove_and_snapshots<F: Fixture>() {
    let fixture = F::new();
    let store = fixture.open();
    let keys = Keys::generate();
    store.create(connection("c"), &SecretString::from("cs"), &keys).unwrap();
    assert!(matches!(store.token_snapshot("c", &keys).unwrap(), Some((_, None))), "not authorized: nothing opened");
    assert!(store.token_snapshot("missing", &keys).unwrap().is_none());

    let (access, refresh, id) = (SecretString::from("at-1"), SecretString::from("rt-1"), SecretString::from("id-1"));
    let tokens = NewTokens {
        refresh: RefreshUpdate::Replace(&refresh),
        id_token: RefreshUpdate::Replace(&id),
        expires_at: Some(4_000_000_000),
        scopes: vec!["read".into()],
        metadata: vec![("realmId".into(), "42".into())],
        ..NewTokens::bearer(&access)
    };
    let conn = store.put_tokens("c", tokens, &keys).unwrap();
    let info = conn.token.as_ref().unwrap();
    assert_eq!((conn.status, info.has_refresh_token, info.expires_at), (Status::Authorized, true, Some(4_000_000_000)));
    assert_eq!(info.scopes, ["read"]);
    assert_eq!(conn.metadata["realmId"], "42");
    let (read, snapshot) = store.token_snapshot("c", &keys).unwrap().unwrap();
    let snapshot = snapshot.expect("authorized: the access token is opened");
    assert_eq!(read, conn);
    assert_eq!(snapshot.access_token.expose_secret(), "at-1");
    assert!(snapshot.refresh_token.is_none(), "not exposed to functions");

    // Keep: the refresh and ID tokens stay.
    let access = SecretString::from("at-2");
    let conn = store.put_tokens("c", NewTokens::bearer(&access), &keys).unwrap();
    assert!(conn.token.unwrap().has_refresh_token);
    assert_eq!(open(&store, &keys, "c", SecretField::RefreshToken).as_deref(), Some("rt-1"));
    assert_eq!(open(&store, &keys, "c", SecretField::IdToken).as_deref(), Some("id-1"));
    let grant = store.refresh_grant("c", &keys).unwrap().unwrap();
    assert_eq!(grant.refresh_token.unwrap().expose_secret(), "rt-1");
    assert_eq!(grant.client_secret.unwrap().expose_secret(), "cs");
    assert_eq!(grant.connection.revision, conn.revision);

    // Remove: gone.
    let access = SecretString::from("at-3");
    let tokens = NewTokens { refresh: RefreshUpdate::Remove, id_token: RefreshUpdate::Remove, ..NewTokens::bearer(&access) };
    let conn = store.put_tokens("c", tokens, &keys).unwrap();
    assert!(!conn.token.unwrap().has_refresh_token);
    assert_eq!(open(&store, &keys, "c", SecretField::RefreshToken), None);
    assert_eq!(open(&store, &keys, "c", SecretField::IdToken), None);
    assert_eq!(open(&store, &keys, "c", SecretField::AccessToken).as_deref(), Some("at-3"));

    // Exposed: the snapshot carries the refresh token.
    let mut exposed = connection("e");
    exposed.expose_refresh_token = true;
    store.create(exposed, &SecretString::from("cs"), &keys).unwrap();
    let (access, refresh) = (SecretString::from("at-e"), SecretString::from("rt-e"));
    store.put_tokens("e", NewTokens { refresh: RefreshUpdate::Replace(&refresh), ..NewTokens::bearer(&access) }, &keys).unwrap();
    let snapshot = store.token_snapshot("e", &keys).unwrap().unwrap().1.unwrap();
    assert_eq!(snapshot.refresh_token.unwrap().expose_secret(), "rt-e");
}

/// One holder at a time: the others are told until when; the holder renews; a release by anyone else changes
/// nothing; a release, or a write that ends the lease, lets the next one in; a write refused because the
/// connection changed keeps it. How a lease lapses differs by backend (below).
pub fn the_lease_has_one_holder_until_released<F: Fixture>() {
    let fixture = F::new();
    let (store, other) = (fixture.open(), fixture.open());
    let keys = Keys::generate();
    store.create(connection("c"), &SecretString::from("cs"), &keys).unwrap();
    // Holders named as the broker names them, `<pid>-<ms>`: this process, alive.
    let (me, you) = (format!("{}-1", std::process::id()), format!("{}-2", std::process::id()));
    assert_eq!(store.try_lease("c", &me, 60_000).unwrap(), Lease::Acquired);
    assert!(matches!(other.try_lease("c", &you, 60_000).unwrap(), Lease::Held { until_ms } if until_ms > wasm_host_store::now_millis()));
    assert!(matches!(store.try_lease("c", &you, 60_000).unwrap(), Lease::Held { .. }), "another holder, same handle");
    assert_eq!(store.try_lease("c", &me, 60_000).unwrap(), Lease::Acquired, "the holder renews");
    other.release_lease("c", &you).unwrap();
    store.release_lease("c", &you).unwrap();
    assert!(matches!(other.try_lease("c", &you, 60_000).unwrap(), Lease::Held { .. }), "not the holder's release");
    store.release_lease("c", &me).unwrap();
    assert_eq!(other.try_lease("c", &you, 60_000).unwrap(), Lease::Acquired);

    // A write that ends the lease (new tokens, a refusal) releases it with its commit...
    let access = SecretString::from("t");
    other.put_tokens("c", NewTokens { release_lease: Some(&you), ..NewTokens::bearer(&access) }, &keys).unwrap();
    assert_eq!(store.try_lease("c", &me, 60_000).unwrap(), Lease::Acquired);
    // ...and only then: refused (the connection changed since the revision read), it keeps the lease.
    let read = store.refresh_grant("c", &keys).unwrap().unwrap().connection.revision;
    other.put_tokens("c", NewTokens::bearer(&access), &keys).unwrap();
    let refused = store.put_refreshed("c", NewTokens { release_lease: Some(&me), ..NewTokens::bearer(&access) }, &keys, read);
    assert!(matches!(refused, Err(WriteError::Changed(_))), "{refused:?}");
    let refused = store.mark_needs_authorization("c", "refused", Some(&me), Some(read), &keys);
    assert!(matches!(refused, Err(WriteError::Changed(_))), "{refused:?}");
    assert!(matches!(other.try_lease("c", &you, 60_000).unwrap(), Lease::Held { .. }), "a refused write keeps the lease");
    store.mark_needs_authorization("c", "refused", Some(&me), None, &keys).unwrap();
    assert_eq!(other.try_lease("c", &you, 60_000).unwrap(), Lease::Acquired);
}

/// A caller the lease was refused to waits for its end (`wait_lease_end`, given the generation it loaded before
/// asking): woken when the holder commits the write that ends the lease or releases it without one, even when
/// that happened before it began to wait; told `Elapsed` while the holder keeps it. Every wait is bounded and
/// only outcomes are asserted, never how fast they came.
pub fn a_lease_waiter_is_woken_when_the_lease_ends<F: Fixture>() {
    let fixture = F::new();
    let (store, other) = (fixture.open(), fixture.open());
    let keys = Keys::generate();
    store.create(connection("c"), &SecretString::from("cs"), &keys).unwrap();
    let (me, you) = (holder(1), holder(2));

    // Kept: the wait ends with its time, and the lease is still held. (First the other handle hears of the
    // creation: a change it had not heard of yet would wake it, as it should.)
    until_within_10_s("the other handle never heard of the creation", || other.generation() >= store.generation());
    assert_eq!(store.try_lease("c", &me, 60_000).unwrap(), Lease::Acquired);
    let generation = other.generation();
    assert!(matches!(other.try_lease("c", &you, 60_000).unwrap(), Lease::Held { .. }));
    assert_eq!(other.wait_lease_end("c", generation, Duration::from_millis(20)).unwrap(), LeaseWait::Elapsed);
    assert!(matches!(other.try_lease("c", &you, 60_000).unwrap(), Lease::Held { .. }), "still held");

    // Ended by the holder's write (a refresh's commit) while the other waits: woken, the lease free, the
    // holder's tokens there to read.
    let access = SecretString::from("refreshed");
    let outcome = waiting_while(&other, generation, || {
        store.put_tokens("c", NewTokens { release_lease: Some(&me), ..NewTokens::bearer(&access) }, &keys).unwrap();
    });
    assert_eq!(outcome, LeaseWait::Ended);
    assert_eq!(open(&other, &keys, "c", SecretField::AccessToken).as_deref(), Some("refreshed"));
    assert_eq!(other.try_lease("c", &you, 60_000).unwrap(), Lease::Acquired);

    // Released without a write (a refresh that failed): woken too.
    let generation = store.generation();
    assert!(matches!(store.try_lease("c", &me, 60_000).unwrap(), Lease::Held { .. }));
    assert_eq!(waiting_while(&store, generation, || other.release_lease("c", &you).unwrap()), LeaseWait::Ended);
    assert_eq!(store.try_lease("c", &me, 60_000).unwrap(), Lease::Acquired);

    // Released between the refusal and the wait: not missed.
    let generation = other.generation();
    assert!(matches!(other.try_lease("c", &you, 60_000).unwrap(), Lease::Held { .. }));
    store.release_lease("c", &me).unwrap();
    assert_eq!(wait_for_end(&other, generation), LeaseWait::Ended);
    assert_eq!(other.try_lease("c", &you, 60_000).unwrap(), Lease::Acquired);
}

/// What [`wait_for_end`] on `store` says when `end` runs on this thread once that wait has been started on another.
fn waiting_while(store: &Store, generation: Option<u64>, end: impl FnOnce()) -> LeaseWait {
    std::thread::scope(|s| {
        let (waiting, started) = std::sync::mpsc::channel();
        let waiter = s.spawn(move || {
            waiting.send(()).unwrap();
            wait_for_end(store, generation)
        });
        started.recv().unwrap();
        end();
        waiter.join().unwrap()
    })
}

/// Waits for the lease of `c` to end, as a caller that loaded `generation` before finding it held: wait after wait
/// (PostgreSQL's last at most `LAPSE_CHECK_EVERY`) until one says more than `Elapsed`, for at most 30 s.
fn wait_for_end(store: &Store, generation: Option<u64>) -> LeaseWait {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen = store.wait_lease_end("c", generation, Duration::from_secs(5)).unwrap();
        if seen != LeaseWait::Elapsed || std::time::Instant::now() > deadline {
            return seen;
        }
    }
}

/// PostgreSQL: a lease is a row timed by the database's clock, so a holder that stops renewing (its host gone,
/// or cut off) loses it when it lapses.
pub fn a_lease_lapses_at_its_time<F: Fixture>() {
    let (_fixture, store, _other) = a_lease_of_1_ms::<F>();
    until_within_10_s("a 1 ms lease never lapsed", || match store.try_lease("c", &holder(1), 60_000).unwrap() {
        Lease::Acquired => true,
        Lease::Held { .. } => false,
    });
}

/// Two handles on a new store with connection `c`, whose lease the second one took for 1 ms as `holder(2)`.
fn a_lease_of_1_ms<F: Fixture>() -> (F, Store, Store) {
    let fixture = F::new();
    let (store, other) = (fixture.open(), fixture.open());
    store.create(connection("c"), &SecretString::from("cs"), &Keys::generate()).unwrap();
    assert_eq!(other.try_lease("c", &holder(2), 1).unwrap(), Lease::Acquired);
    (fixture, store, other)
}

/// A holder named as the broker names them, `<pid>-<ms>`: this process, alive.
fn holder(n: u32) -> String {
    format!("{}-{n}", std::process::id())
}

/// Polls `done` every 5 ms until it is true, failing with `what` after 10 s.
fn until_within_10_s(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// redb: a lease is an OS lock, so it outlives its stated time while its holder lives, and ends when the
/// holder's handle is gone (closed, or its process dead: tests/backends.rs kills one).
pub fn a_lease_lapses_when_its_holder_is_gone<F: Fixture>() {
    let (_fixture, store, other) = a_lease_of_1_ms::<F>();
    until_within_10_s("the holder's stated time never passed", || match store.try_lease("c", &holder(1), 60_000).unwrap() {
        Lease::Held { until_ms } => until_ms < wasm_host_store::now_millis(),
        Lease::Acquired => panic!("a live holder's lease was taken over"),
    });
    drop(other);
    assert_eq!(store.try_lease("c", &holder(1), 60_000).unwrap(), Lease::Acquired);
}

/// Refusals keep every secret; a new registration makes a refused client authorized again; a revocation forgets
/// the tokens and keeps the registration.
pub fn marks_registration_and_revocation<F: Fixture>() {
    let fixture = F::new();
    let store = fixture.open();
    let keys = Keys::generate();
    store.create(connection("c"), &SecretString::from("cs-1"), &keys).unwrap();
    let (access, refresh) = (SecretString::from("at"), SecretString::from("rt"));
    store.put_tokens("c", NewTokens { refresh: RefreshUpdate::Replace(&refresh), ..NewTokens::bearer(&access) }, &keys).unwrap();

    store.mark_client_refused("c", "invalid_client", None, None, &keys).unwrap();
    let conn = store.get("c").unwrap().unwrap();
    assert_eq!((conn.status, conn.status_reason.as_deref()), (Status::ClientRefused, Some("invalid_client")));
    assert_eq!(open(&store, &keys, "c", SecretField::RefreshToken).as_deref(), Some("rt"));

    let new_secret = SecretString::from("cs-2");
    let conn = store
        .update_registration("c", Box::new(|c| c.client_id = "id-2".into()), Some(&new_secret), &keys)
        .unwrap();
    assert_eq!((conn.status, conn.client_id.as_str(), conn.status_reason.as_deref()), (Status::Authorized, "id-2", None));
    assert_eq!(store.connection("c", &keys).unwrap().unwrap(), conn);
    assert_eq!(open(&store, &keys, "c", SecretField::ClientSecret).as_deref(), Some("cs-2"));
    assert_eq!(open(&store, &keys, "c", SecretField::AccessToken).as_deref(), Some("at"));

    store.mark_needs_authorization("c", "invalid_grant", None, Some(conn.revision), &keys).unwrap();
    assert_eq!(store.get("c").unwrap().unwrap().status, Status::NeedsAuthorization);
    assert_eq!(open(&store, &keys, "c", SecretField::RefreshToken).as_deref(), Some("rt"), "a refusal never destroys it");

    store.mark_revoked("c", &keys).unwrap();
    let conn = store.get("c").unwrap().unwrap();
    assert_eq!((conn.status, conn.token), (Status::Revoked, None));
    for field in [SecretField::AccessToken, SecretField::RefreshToken, SecretField::IdToken] {
        assert_eq!(open(&store, &keys, "c", field), None, "{field:?}");
    }
    assert_eq!(open(&store, &keys, "c", SecretField::ClientSecret).as_deref(), Some("cs-2"));
    assert!(matches!(store.mark_revoked("missing", &keys), Err(WriteError::NotFound(_))));
}

/// The first identity used is the store's; another is refused before it writes or opens anything.
pub fn a_wrong_identity_is_refused_before_anything_is_written<F: Fixture>() {
    let fixture = F::new();
    let store = fixture.open();
    let (keys, stranger) = (Keys::generate(), Keys::generate());
    assert_eq!(store.recipient().unwrap(), None);
    store.bind_keys(&keys).unwrap();
    assert_eq!(store.recipient().unwrap(), Some(keys.recipient()));
    assert!(matches!(store.bind_keys(&stranger), Err(WriteError::WrongIdentity { .. })));
    assert!(matches!(
        store.create(connection("c"), &SecretString::from("cs"), &stranger),
        Err(WriteError::WrongIdentity { .. })
    ));
    assert_eq!(store.get("c").unwrap(), None);
    store.create(connection("c"), &SecretString::from("cs"), &keys).unwrap();
    let access = SecretString::from("t");
    assert!(matches!(store.put_tokens("c", NewTokens::bearer(&access), &stranger), Err(WriteError::WrongIdentity { .. })));
    assert!(matches!(
        store.secret("c", SecretField::ClientSecret, &stranger),
        Err(ReadError::Secret(SecretError::Decrypt { .. }))
    ));
    assert_eq!(store.get("c").unwrap().unwrap().status, Status::Created);
}

/// A change made through one handle moves the generation another handle on the same store loads (at once for
/// redb's shared counter, within moments for a database's notification), and that handle then reads the change.
pub fn another_handle_sees_each_change_through_the_generation<F: Fixture>() {
    let fixture = F::new();
    let (store, other) = (fixture.open(), fixture.open());
    let keys = Keys::generate();
    let mut seen = other.generation().expect("the backend has a change signal");
    let mut changed = |what: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let now = loop {
            match other.generation().unwrap() {
                now if now > seen => break now,
                _ if std::time::Instant::now() > deadline => panic!("{what}: the generation did not move in 10 s"),
                _ => std::thread::sleep(std::time::Duration::from_millis(2)),
            }
        };
        seen = now;
    };
    store.create(connection("c"), &SecretString::from("cs"), &keys).unwrap();
    changed("create");
    let access = SecretString::from("t");
    store.put_tokens("c", NewTokens::bearer(&access), &keys).unwrap();
    changed("put_tokens");
    let (_, snapshot) = other.token_snapshot("c", &keys).unwrap().unwrap();
    assert_eq!(snapshot.unwrap().access_token.expose_secret(), "t");
    store.mark_revoked("c", &keys).unwrap();
    changed("mark_revoked");
    assert!(other.token_snapshot("c", &keys).unwrap().unwrap().1.is_none());
    store.delete("c").unwrap();
    changed("delete");
    assert_eq!(other.revision("c").unwrap(), Some(4));
}

fn populated<F: Fixture>(fixture: &F, keys: &Keys) -> Store {
    let store = fixture.open();
    store.create(connection("crm"), &SecretString::from("client-secret-bundle-test"), keys).unwrap();
    let (at, rt) = (SecretString::from("access-bundle-test"), SecretString::from("refresh-bundle-test"));
    let tokens = NewTokens {
        refresh: RefreshUpdate::Replace(&rt),
        id_token: RefreshUpdate::Remove,
        expires_at: Some(4_000_000_000),
        scopes: vec!["a".into()],
        metadata: vec![("realmId".into(), "42".into())],
        ..NewTokens::bearer(&at)
    };
    store.put_tokens("crm", tokens, keys).unwrap();
    store
}

/// A bundle carries every connection, readable only by the identity it was made for, into another store.
pub fn export_then_import_on_another_identity<F: Fixture>() {
    let (from, to) = (F::new(), F::new());
    let (here, there, stranger) = (Keys::generate(), Keys::generate(), Keys::generate());
    let source = populated(&from, &here);
    let mut bundle = Vec::new();
    assert_eq!(export(&source, &here, &there.recipient(), &mut bundle).unwrap(), 1);
    for needle in ["client-secret-bundle-test", "access-bundle-test", "refresh-bundle-test", "crm", "realmId"] {
        assert!(!bundle.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} in the bundle");
    }
    assert!(read_bundle(&stranger, bundle.as_slice()).is_err());
    assert!(read_bundle(&here, bundle.as_slice()).is_err());
    let target = to.open();
    let read = read_bundle(&there, bundle.as_slice()).unwrap();
    assert!(!format!("{read:?}").contains("bundle-test"), "{read:?}");
    let generation = target.generation().expect("the backend has a change signal");
    let report = import(&target, &there, read, false).unwrap();
    assert!(target.generation().unwrap() > generation, "processes caching tokens are told");
    assert_eq!(report, ImportReport { imported: vec!["crm".into()], replaced: vec![] });
    let conn = target.get("crm").unwrap().unwrap();
    assert_eq!(conn.metadata["realmId"], "42");
    assert_eq!(conn.token.as_ref().unwrap().expires_at, Some(4_000_000_000));
    assert_eq!(open(&target, &there, "crm", SecretField::ClientSecret).as_deref(), Some("client-secret-bundle-test"));
    assert_eq!(open(&target, &there, "crm", SecretField::RefreshToken).as_deref(), Some("refresh-bundle-test"));
    // Again: a conflict changes nothing; --replace overwrites and counts the revision on.
    let again = || read_bundle(&there, bundle.as_slice()).unwrap();
    let err = import(&target, &there, again(), false).unwrap_err();
    assert!(err.to_string().contains("already has `crm`"), "{err}");
    assert_eq!(target.revision("crm").unwrap(), Some(1));
    let report = import(&target, &there, again(), true).unwrap();
    assert_eq!(report.replaced, vec!["crm".to_owned()]);
    assert_eq!(target.revision("crm").unwrap(), Some(2));
}

/// A store with connections `a` and `b` (client secrets `secret-a`, `secret-b`) sealed to a new identity file,
/// kept in `dir`.
fn with_identity_file<F: Fixture>(fixture: &F, dir: &std::path::Path) -> (Store, std::path::PathBuf) {
    let identity = dir.join("id/identity.txt");
    let keys = Keys::create(&identity).unwrap();
    let store = fixture.open();
    for name in ["a", "b"] {
        store.create(connection(name), &SecretString::from(format!("secret-{name}")), &keys).unwrap();
    }
    (store, identity)
}

pub fn rekey_switches_the_file_and_retires_the_old_key<F: Fixture>() {
    let (fixture, dir) = (F::new(), tempfile::tempdir().unwrap());
    let (store, identity) = with_identity_file(&fixture, dir.path());
    let old = Keys::load(&identity).unwrap().unwrap();
    let mut steps = Vec::new();
    let report = rekey_identity_file(&store, &identity, &mut |s| steps.push(s.to_string())).unwrap();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_eq!(report.resealed, Resealed { connections: 2, secrets: 2 });
    let new = Keys::load(&identity).unwrap().unwrap();
    assert_eq!(new.recipient(), report.new_recipient);
    assert_eq!(store.recipient().unwrap().as_deref(), Some(report.new_recipient.as_str()));
    assert_eq!(open(&store, &new, "b", SecretField::ClientSecret).as_deref(), Some("secret-b"));
    assert!(matches!(store.bind_keys(&old), Err(WriteError::WrongIdentity { .. })));
    assert!(matches!(
        store.secret("a", SecretField::ClientSecret, &old),
        Err(ReadError::Secret(SecretError::Decrypt { .. }))
    ));
    let left: Vec<_> = fs::read_dir(identity.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("identity.txt")]);
}

pub fn a_row_the_old_key_cannot_open_aborts_the_whole_rekey<F: Fixture>() {
    let (fixture, dir) = (F::new(), tempfile::tempdir().unwrap());
    let (store, identity) = with_identity_file(&fixture, dir.path());
    let old = Keys::load(&identity).unwrap().unwrap();
    // A row sealed to a stranger (a damaged or tampered store).
    let planted = Keys::generate().seal("b", SecretField::AccessToken, b"t").unwrap();
    let store = fixture.plant_sealed_row(store, "b", SecretField::AccessToken, &planted);
    let err = rekey_identity_file(&store, &identity, &mut |_| {}).unwrap_err();
    // The planted row fails the connection's tag before anything is opened (record_auth.rs).
    assert!(err.to_string().contains("connection `b` in the store"), "{err}");
    assert!(err.to_string().contains("without the store's identity"), "{err}");
    assert_eq!(store.recipient().unwrap(), Some(old.recipient()));
    assert_eq!(Keys::load(&identity).unwrap().unwrap().recipient(), old.recipient());
    assert_eq!(open(&store, &old, "a", SecretField::ClientSecret).as_deref(), Some("secret-a"));
    let left = fs::read_dir(identity.parent().unwrap()).unwrap().count();
    assert_eq!(left, 1, "the unused side file was removed");
}

/// A row sealed with the store's own identity but written behind its back (another connection's secret moved
/// over) is refused by every read that acts on the connection: its tag no longer covers it.
pub fn a_planted_row_is_reported_as_tampered<F: Fixture>() {
    let fixture = F::new();
    let store = fixture.open();
    let keys = Keys::generate();
    store.create(connection("c"), &SecretString::from("cs"), &keys).unwrap();
    let access = SecretString::from("genuine");
    store.put_tokens("c", NewTokens::bearer(&access), &keys).unwrap();
    let planted = keys.seal("c", SecretField::AccessToken, b"planted").unwrap();
    let store = fixture.plant_sealed_row(store, "c", SecretField::AccessToken, &planted);
    let tampered = |r: Result<(), ReadError>| assert!(matches!(r, Err(ReadError::Tampered { ref name, .. }) if name == "c"), "{r:?}");
    tampered(store.secret("c", SecretField::AccessToken, &keys).map(drop));
    tampered(store.connection("c", &keys).map(drop));
    tampered(store.token_snapshot("c", &keys).map(drop));
    tampered(store.refresh_grant("c", &keys).map(drop));
    assert!(matches!(store.put_tokens("c", NewTokens::bearer(&access), &keys), Err(WriteError::Read(ReadError::Tampered { .. }))));
    let mut bundle = Vec::new();
    assert!(export(&store, &keys, &keys.recipient(), &mut bundle).is_err(), "a bundle never carries it");
}

/// Admin tokens: only a hash is stored, with name, scope and creation time; a name is taken once; a presented
/// token is found by its hash and authenticated with the identity; a revoked token is found no more.
pub fn admin_tokens_are_kept_as_hashes_found_and_revoked<F: Fixture>() {
    let fixture = F::new();
    let store = fixture.open();
    let keys = Keys::generate();
    assert!(store.admin_tokens().unwrap().is_empty());
    assert!(!store.revoke_admin_token("ops").unwrap(), "nothing to revoke yet");
    let (ops, ops_token) = AdminToken::issue("ops", AdminScope::Admin).unwrap();
    let (audit, audit_token) = AdminToken::issue("audit", AdminScope::ReadOnly).unwrap();
    store.create_admin_token(&ops, &keys).unwrap();
    store.create_admin_token(&audit, &keys).unwrap();
    let (again, _) = AdminToken::issue("ops", AdminScope::ReadOnly).unwrap();
    let taken = store.create_admin_token(&again, &keys);
    assert!(matches!(taken, Err(WriteError::AdminTokenExists(ref n)) if n == "ops"), "{taken:?}");

    // Another handle (another process, another host) sees them, in name order, as written: never the token.
    let other = fixture.open();
    assert_eq!(other.admin_tokens().unwrap(), vec![audit.clone(), ops.clone()]);
    for token in other.admin_tokens().unwrap() {
        assert!(!format!("{token:?}").contains(ops_token.expose_secret()));
        assert!(!format!("{token:?}").contains(audit_token.expose_secret()));
    }
    let found = other.admin_token_by_hash(&admin_token_hash(audit_token.expose_secret()), &keys).unwrap();
    assert_eq!(found, Some(audit.clone()));
    assert_eq!(found.unwrap().scope, AdminScope::ReadOnly);
    assert_eq!(other.admin_token_by_hash(&admin_token_hash("wha_not-a-token"), &keys).unwrap(), None);

    // A row the identity did not vouch for grants nothing.
    let stranger = Keys::generate();
    let refused = other.admin_token_by_hash(&admin_token_hash(ops_token.expose_secret()), &stranger);
    assert!(matches!(refused, Err(ReadError::TamperedAdminToken { ref name, .. }) if name == "ops"), "{refused:?}");
    let (planted, _) = AdminToken::issue("planted", AdminScope::Admin).unwrap();
    let wrong = store.create_admin_token(&planted, &stranger);
    assert!(matches!(wrong, Err(WriteError::WrongIdentity { .. })), "{wrong:?}");

    assert!(store.revoke_admin_token("ops").unwrap());
    assert!(!store.revoke_admin_token("ops").unwrap());
    assert_eq!(other.admin_token_by_hash(&admin_token_hash(ops_token.expose_secret()), &keys).unwrap(), None);
    assert_eq!(other.admin_tokens().unwrap(), vec![audit]);
    // The name is free again.
    store.create_admin_token(&again, &keys).unwrap();

    // A rekey vouches for the tokens with the new identity: found with it, refused with the retired one.
    let new = Keys::generate();
    store.reseal(&keys, &new).unwrap();
    let audit_hash = admin_token_hash(audit_token.expose_secret());
    assert_eq!(other.admin_token_by_hash(&audit_hash, &new).unwrap().map(|t| t.name), Some("audit".to_owned()));
    assert!(matches!(other.admin_token_by_hash(&audit_hash, &keys), Err(ReadError::TamperedAdminToken { .. })));
}

/// A bundle moves a store from backend `A` to `B` and back to another `A`: every connection, secret, token and
/// field as it was, on the same identity (`store export` then `store import`, as an operator moves hosts).
pub fn a_bundle_moves_a_store_between_backends<A: Fixture, B: Fixture>() {
    let (first, middle, last) = (A::new(), B::new(), A::new());
    let keys = Keys::generate();
    let source = populated(&first, &keys);
    let carry = |from: &Store, to: &Store| {
        let mut bundle = Vec::new();
        export(from, &keys, &keys.recipient(), &mut bundle).unwrap();
        import(to, &keys, read_bundle(&keys, bundle.as_slice()).unwrap(), false).unwrap()
    };
    let (there, back) = (middle.open(), last.open());
    assert_eq!(carry(&source, &there).imported, vec!["crm".to_owned()]);
    assert_eq!(carry(&there, &back).imported, vec!["crm".to_owned()]);
    let (was, is) = (source.connection("crm", &keys).unwrap().unwrap(), back.connection("crm", &keys).unwrap().unwrap());
    assert_eq!((is.metadata, is.token, is.status), (was.metadata, was.token, was.status));
    for (field, value) in [
        (SecretField::ClientSecret, "client-secret-bundle-test"),
        (SecretField::AccessToken, "access-bundle-test"),
        (SecretField::RefreshToken, "refresh-bundle-test"),
    ] {
        assert_eq!(open(&back, &keys, "crm", field).as_deref(), Some(value), "{field:?}");
    }
}

/// The audit log: entries appended by one handle are read by another (another host), the last `limit` of them,
/// oldest first, exactly as written.
pub fn the_audit_log_keeps_entries_in_order<F: Fixture>() {
    let fixture = F::new();
    let store = fixture.open();
    assert_eq!(store.audit(10).unwrap(), vec![]);
    let entry = |n: i64, outcome: &str| AuditEntry {
        at: 1_700_000_000 + n,
        actor: "ops".into(),
        action: "create".into(),
        connection: (n != 2).then(|| format!("c{n}")),
        outcome: outcome.into(),
    };
    let written = [entry(1, "ok"), entry(2, "read-only"), entry(3, "conflict")];
    for e in &written {
        store.append_audit(e).unwrap();
    }
    let other = fixture.open();
    assert_eq!(other.audit(10).unwrap(), written.to_vec());
    assert_eq!(other.audit(2).unwrap(), written[1..].to_vec());
    assert_eq!(other.audit(0).unwrap(), vec![]);
    other.append_audit(&entry(4, "ok")).unwrap();
    assert_eq!(store.audit(1).unwrap(), vec![entry(4, "ok")]);
}
