//! A `postgres://` store location: parsed into the driver's configuration, named without its password, and the
//! TLS the connections use.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::OpenError;

/// Whether a store location names a PostgreSQL database (`postgres://` or `postgresql://`) rather than a redb file.
pub fn is_postgres(location: &Path) -> bool {
    location.to_str().is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// The driver's configuration for `url`, and the location messages print: `postgres://USER@HOST:PORT/DATABASE`.
///
/// libpq's `sslmode=verify-ca` and `verify-full` are read as `require`: the driver knows only disable, prefer and
/// require, and with rustls every TLS session verifies the server's certificate chain and host name anyway.
pub(super) fn parse(url: &str) -> Result<(tokio_postgres::Config, PathBuf), OpenError> {
    let url = url.replace("sslmode=verify-full", "sslmode=require").replace("sslmode=verify-ca", "sslmode=require");
    // The driver's parse errors quote no part of the URL, so they cannot leak its password.
    let mut config = tokio_postgres::Config::from_str(&url)
        .map_err(|e| OpenError::BadLocation { detail: super::one_line(&e) })?;
    if config.get_hosts().is_empty() {
        return Err(OpenError::BadLocation { detail: "it names no host".into() });
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(super::POOL_WAIT);
    }
    config.keepalives_idle(Duration::from_secs(30));
    config.application_name("wasm-host");
    Ok((config.clone(), PathBuf::from(describe(&config))))
}

/// `postgres://USER@HOST:PORT/DATABASE` (each host when there are several), without the password.
fn describe(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("{}:{port}", dir.display()),
            }
        })
        .collect();
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let db = config.get_dbname().or(config.get_user()).unwrap_or("postgres");
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

/// rustls with the Web PKI roots, used whenever `sslmode` asks for TLS (and offered when it prefers it).
pub(super) fn tls() -> MakeRustlsConnect {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    MakeRustlsConnect::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_never_shows_the_password() {
        let (config, shown) = parse("postgres://app:hunter2-secret@db.example:6543/hosts?sslmode=verify-full").unwrap();
        assert_eq!(shown, PathBuf::from("postgres://app@db.example:6543/hosts"));
        assert_eq!(config.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        let err = parse("postgres://app:hunter2-secret@db.example:notaport/x").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(is_postgres(Path::new("postgresql://h/d")) && !is_postgres(Path::new("/var/lib/store.redb")));
    }
}
