//! Pending remote authorizations (store/src/authorization_request.rs), on every backend: taken once, also by two
//! handles at once; expired ones refused, then purged; a row the identity did not write refused.

use secrecy::{ExposeSecret, SecretString};
use wasm_host_store::{
    Keys, PendingAuthorization, ReadError, Taken, WriteError, AUTHORIZATION_PURGE_AFTER, AUTHORIZATION_TTL,
};

use super::Fixture;

fn pending(connection: &str, created_at: i64) -> PendingAuthorization {
    PendingAuthorization {
        connection: connection.into(),
        redirect_uri: "http://127.0.0.1:41234/callback".into(),
        scopes: vec!["openid".into(), "email".into()],
        created_at,
        expires_at: created_at + AUTHORIZATION_TTL,
        nonce: SecretString::from(format!("nonce-{connection}-{created_at}")),
        verifier: Some(SecretString::from(format!("verifier-{connection}-{created_at}"))),
        device: None,
    }
}

fn now() -> i64 {
    wasm_host_store::now_unix()
}

/// Kept by one handle, taken by another (another host) once, with every field; a second take is a replay; an
/// unknown state is unknown; another identity is refused and takes nothing; a rekey drops what is pending.
pub fn a_pending_authorization_is_taken_once<F: Fixture>() {
    let fixture = F::new();
    let (store, other) = (fixture.open(), fixture.open());
    let keys = Keys::generate();
    let state = SecretString::from("state-of-one-authorization");
    store.put_authorization_request(&state, &pending("github", now()), &keys, now()).unwrap();

    let stranger = Keys::generate();
    let refused = other.take_authorization_request(state.expose_secret(), &stranger, now());
    assert!(
        matches!(refused, Err(WriteError::Read(ReadError::TamperedAuthorizationRequest { .. }))),
        "{refused:?}"
    );
    let Taken::Pending(taken) = other.take_authorization_request(state.expose_secret(), &keys, now()).unwrap() else {
        panic!("the first take gets the request")
    };
    let expected = pending("github", taken.created_at);
    assert_eq!(taken.connection, "github");
    assert_eq!(taken.redirect_uri, expected.redirect_uri);
    assert_eq!(taken.scopes, expected.scopes);
    assert_eq!(taken.expires_at, taken.created_at + AUTHORIZATION_TTL);
    assert_eq!(taken.nonce.expose_secret(), expected.nonce.expose_secret());
    assert_eq!(taken.verifier.as_ref().unwrap().expose_secret(), expected.verifier.as_ref().unwrap().expose_secret());
    assert!(!format!("{taken:?}").contains("nonce-github"), "{taken:?}");

    for handle in [&store, &other] {
        let again = handle.take_authorization_request(state.expose_secret(), &keys, now()).unwrap();
        assert!(matches!(again, Taken::Used { ref connection } if connection == "github"), "{again:?}");
    }
    let unknown = store.take_authorization_request("never-issued", &keys, now()).unwrap();
    assert!(matches!(unknown, Taken::Unknown), "{unknown:?}");

    // Without a verifier (a provider that refuses PKCE) it comes back without one.
    let plain = SecretString::from("state-without-pkce");
    store.put_authorization_request(&plain, &PendingAuthorization { verifier: None, ..pending("box", now()) }, &keys, now()).unwrap();
    let Taken::Pending(taken) = store.take_authorization_request(plain.expose_secret(), &keys, now()).unwrap() else {
        panic!("taken")
    };
    assert!(taken.verifier.is_none());

    // A request is sealed to the store's identity: another one cannot keep one here.
    let wrong = store.put_authorization_request(&SecretString::from("s2"), &pending("github", now()), &stranger, now());
    assert!(matches!(wrong, Err(WriteError::WrongIdentity { .. })), "{wrong:?}");

    // A rekey drops what is pending (sealed to the old key).
    let left = SecretString::from("state-before-rekey");
    store.put_authorization_request(&left, &pending("github", now()), &keys, now()).unwrap();
    let new = Keys::generate();
    store.reseal(&keys, &new).unwrap();
    let after = other.take_authorization_request(left.expose_secret(), &new, now()).unwrap();
    assert!(matches!(after, Taken::Unknown), "{after:?}");
}

/// A request past its expiry is refused (and stays refused); rows expired for longer than the purge delay are
/// removed by the next put or take.
pub fn expired_authorizations_are_refused_then_purged<F: Fixture>() {
    let fixture = F::new();
    let store = fixture.open();
    let keys = Keys::generate();
    let t = now();
    let (late, old) = (SecretString::from("late-state"), SecretString::from("old-state"));
    store.put_authorization_request(&late, &pending("a", t - AUTHORIZATION_TTL - 5), &keys, t).unwrap();
    store
        .put_authorization_request(&old, &pending("b", t - AUTHORIZATION_TTL - AUTHORIZATION_PURGE_AFTER - 5), &keys, t - 10_000)
        .unwrap();
    for _ in 0..2 {
        let taken = store.take_authorization_request(late.expose_secret(), &keys, t).unwrap();
        assert!(
            matches!(taken, Taken::Expired { ref connection, expired_at } if connection == "a" && expired_at == t - 5),
            "{taken:?}"
        );
    }
    // The take above purged the row that expired more than the purge delay ago.
    let purged = store.take_authorization_request(old.expose_secret(), &keys, t).unwrap();
    assert!(matches!(purged, Taken::Unknown), "{purged:?}");
    // Once its own purge delay has passed, the late one goes too.
    let later = t + AUTHORIZATION_PURGE_AFTER + 1;
    store.put_authorization_request(&SecretString::from("fresh"), &pending("c", later), &keys, later).unwrap();
    assert!(matches!(store.take_authorization_request(late.expose_secret(), &keys, later).unwrap(), Taken::Unknown));
    assert!(matches!(store.take_authorization_request("fresh", &keys, later).unwrap(), Taken::Pending(_)));
}

/// Two handles (two hosts) take one state at the same moment: exactly one gets the request, the other is told it
/// was used.
pub fn two_concurrent_takes_have_one_winner<F: Fixture>() {
    let fixture = F::new();
    let keys = Keys::generate();
    let (a, b) = (fixture.open(), fixture.open());
    for round in 0..8 {
        let state = SecretString::from(format!("raced-state-{round}"));
        a.put_authorization_request(&state, &pending("github", now()), &keys, now()).unwrap();
        let barrier = std::sync::Barrier::new(2);
        let results: Vec<Taken> = std::thread::scope(|s| {
            let takes: Vec<_> = [&a, &b]
                .into_iter()
                .map(|store| {
                    let (barrier, keys, state) = (&barrier, &keys, &state);
                    s.spawn(move || {
                        barrier.wait();
                        store.take_authorization_request(state.expose_secret(), keys, now()).unwrap()
                    })
                })
                .collect();
            takes.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let won = results.iter().filter(|t| matches!(t, Taken::Pending(_))).count();
        let used = results.iter().filter(|t| matches!(t, Taken::Used { .. })).count();
        assert_eq!((won, used), (1, 1), "round {round}: {results:?}");
    }
}

/// A pending device authorization (RFC 8628) keeps its device code sealed and its interval and next poll time in
/// the record, read back by another handle; the Debug text shows no device code; a browser's row has no device part.
pub fn a_pending_device_authorization_keeps_its_code_sealed<F: Fixture>() {
    let fixture = F::new();
    let (store, other) = (fixture.open(), fixture.open());
    let keys = Keys::generate();
    let handle = SecretString::from("handle-of-one-device-authorization");
    let device_code = "device-code-that-stays-sealed-8628";
    let made = now();
    let device = wasm_host_store::PendingDevice {
        device_code: SecretString::from(device_code),
        interval: 10,
        next_poll_at: made + 10,
    };
    let request =
        PendingAuthorization { redirect_uri: String::new(), verifier: None, device: Some(device), ..pending("tv", made) };
    store.put_authorization_request(&handle, &request, &keys, made).unwrap();
    let Taken::Pending(taken) = other.take_authorization_request(handle.expose_secret(), &keys, now()).unwrap() else {
        panic!("the first take gets the device authorization")
    };
    let device = taken.device.as_ref().expect("the device part comes back");
    assert_eq!((device.device_code.expose_secret(), device.interval, device.next_poll_at), (device_code, 10, made + 10));
    assert!(!format!("{taken:?}").contains(device_code), "{taken:?}");
    let browser = pending("web", made);
    store.put_authorization_request(&SecretString::from("browser-state"), &browser, &keys, made).unwrap();
    let Taken::Pending(taken) = other.take_authorization_request("browser-state", &keys, now()).unwrap() else {
        panic!("a browser authorization is taken too")
    };
    assert!(taken.device.is_none());
}
