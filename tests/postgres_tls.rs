//! TLS to a PostgreSQL store whose server certificate comes from a private CA (as managed databases' do): a
//! cluster of this test's own with `ssl=on` (scripts/postgres.sh), serving a certificate for `localhost` signed by
//! a CA made here; the real `wasm-host` binary connects with `sslmode` and `sslrootcert` in its store URL.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use wasm_host_tests::postgres::OwnCluster;
use wasm_host_tests::Env;

const BIN: &str = env!("CARGO_BIN_EXE_wasm-host");

/// A test CA's certificate (PEM) in `dir`, with the issuer that signs with it.
fn make_ca(dir: &Path, name: &str) -> (PathBuf, CertifiedIssuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, format!("wasm-host test CA {name}"));
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, issuer.pem()).unwrap();
    (path, issuer)
}

struct TlsDatabase {
    cluster: OwnCluster,
    ca: PathBuf,
    other_ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsDatabase {
    /// The cluster, serving a certificate for the name `localhost` only, signed by `ca`; `other_ca` signed nothing.
    fn start() -> Self {
        // Like every PostgreSQL test: it needs the cluster scripts/test.sh starts, and says so without one.
        wasm_host_tests::postgres::cluster_url();
        let dir = tempfile::tempdir().unwrap();
        let (ca, issuer) = make_ca(dir.path(), "ca");
        let (other_ca, _) = make_ca(dir.path(), "other-ca");
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &issuer).unwrap();
        let (cert_path, key_path) = (dir.path().join("server.crt"), dir.path().join("server.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let cluster = OwnCluster::start_tls(&cert_path, &key_path);
        TlsDatabase { cluster, ca, other_ca, _dir: dir }
    }

    /// The URL reaching the cluster at 127.0.0.1 by the name `host` (`hostaddr`: no name lookup), with `query`.
    fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres:pw-never-shown@{host}:{}/postgres?hostaddr=127.0.0.1&{query}", self.cluster.port())
    }
}

/// Runs `args` with `url` as the store, on `env`'s identity.
fn run_on(env: &Env, url: &str, args: &[&str]) -> wasm_host_tests::Run {
    let mut cmd = env.cmd();
    cmd.env("WASM_HOST_STORE", url);
    let run = env.run_with(cmd, args, None);
    assert!(!run.stderr.contains("pw-never-shown") && !run.stdout.contains("pw-never-shown"), "{}", run.stderr);
    run
}

/// verify-full with the CA that signed the server's certificate works; another CA, the Web PKI roots alone, or a
/// host name the certificate does not hold are refused for good (exit 5, saying what to give), not called
/// retryable (exit 22); verify-ca accepts the other name; a CA file that is missing or not PEM is exit 2 naming it.
#[test]
fn a_private_ca_is_trusted_through_sslrootcert_and_everything_else_is_refused_clearly() {
    let db = TlsDatabase::start();
    let ca = format!("sslrootcert={}", db.ca.display());
    let good = db.url("localhost", &format!("sslmode=verify-full&{ca}"));
    let env = Env::on_postgres(BIN, good.clone());
    env.create("c", "s-tls").success();
    let listed = run_on(&env, &good, &["authconnection", "list", "--json"]).success().json();
    assert_eq!(listed[0]["name"], "c", "{listed}");

    let shown = format!("no TLS connection to the store postgres://postgres@localhost:{}/postgres", db.cluster.port());
    let wrong_ca = db.url("localhost", &format!("sslmode=verify-full&sslrootcert={}", db.other_ca.display()));
    let run = run_on(&env, &wrong_ca, &["authconnection", "list"]);
    run.failure(5, &shown).failure(5, "UnknownIssuer").failure(5, "will not change on retry");
    run_on(&env, &db.url("localhost", "sslmode=require"), &["authconnection", "list"]).failure(5, "UnknownIssuer");

    // The certificate names `localhost`, not 127.0.0.1.
    let other_name = db.url("127.0.0.1", &format!("sslmode=verify-full&{ca}"));
    run_on(&env, &other_name, &["authconnection", "list"]).failure(5, "certificate not valid for name \"127.0.0.1\"");
    let chain_only = db.url("127.0.0.1", &format!("sslmode=verify-ca&{ca}"));
    assert_eq!(run_on(&env, &chain_only, &["authconnection", "list", "--json"]).success().json(), listed);
    let chain_only_wrong_ca = db.url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={}", db.other_ca.display()));
    run_on(&env, &chain_only_wrong_ca, &["authconnection", "list"]).failure(5, "UnknownIssuer");

    let missing = db.ca.with_file_name("missing.pem");
    let run = run_on(
        &env,
        &db.url("localhost", &format!("sslmode=verify-full&sslrootcert={}", missing.display())),
        &["authconnection", "list"],
    );
    run.failure(2, &format!("cannot use the CA file {}", missing.display()));
    let not_pem = db.ca.with_file_name("server.key");
    let run = run_on(
        &env,
        &db.url("localhost", &format!("sslmode=verify-full&sslrootcert={}", not_pem.display())),
        &["authconnection", "list"],
    );
    run.failure(2, &format!("cannot use the CA file {}", not_pem.display())).failure(2, "holds no PEM certificate");
    run_on(&env, &db.url("localhost", "sslmode=allow"), &["authconnection", "list"])
        .failure(2, "sslmode=allow is not supported");
}
