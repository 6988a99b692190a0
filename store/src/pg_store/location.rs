//! A `postgres://` store location: parsed into the driver's configuration, named without its password, and the
//! TLS the connections use (tls.rs).

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode};
use url::form_urlencoded;

use super::tls::Verify;
use crate::error::OpenError;
use crate::location::PostgresLocation;

/// What a `postgres://` URL asks for.
pub(super) struct Parsed {
    /// The driver's configuration (its `sslmode` only says whether TLS is tried: see `verify`).
    pub config: tokio_postgres::Config,
    /// `postgres://USER@HOST:PORT/DATABASE`: what messages print.
    pub shown: PostgresLocation,
    /// How the server's certificate is checked when TLS is used.
    pub verify: Verify,
    /// `sslrootcert=PATH`: the PEM file of the CA(s) to trust instead of the Web PKI roots.
    pub root_cert: Option<std::path::PathBuf>,
    /// `pool_max_size=N`: connections this host keeps to the database at most.
    pub pool_max_size: usize,
}

/// The largest `pool_max_size` taken: PostgreSQL's own default `max_connections` is 100 for every client together.
const POOL_MAX_SIZE_LIMIT: usize = 1000;

/// Parses libpq's URL form (<https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS>).
/// The parameters wasm-host reads itself are taken out before the driver sees the rest:
/// - `sslmode` (libpq's §34.19.1 table): `disable` (no TLS), `prefer` (the default: TLS when the server offers it,
///   verified as `verify-full`), `require` and `verify-full` (TLS or nothing; the chain must lead to a trusted
///   root and the certificate must name the URL's host; stricter than libpq's `require`, which checks nothing
///   unless a root certificate is given), `verify-ca` (TLS, the chain checked, the name not); `allow` is refused.
/// - `sslrootcert=PATH`: a PEM file of the CA certificate(s) to trust instead of the Web PKI roots.
/// - `pool_max_size=N` (1 to 1000, default [`super::POOL_SIZE`]): connections this host keeps at most.
///
/// Errors: [`OpenError::BadLocation`], whose detail never quotes the password.
pub(super) fn parse(url: &str) -> Result<Parsed, OpenError> {
    let bad = |detail: String| OpenError::BadLocation { detail };
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut rest = Vec::new();
    let (mut verify, mut root_cert, mut pool_max_size, mut mode) = (Verify::Full, None, super::POOL_SIZE, None);
    for segment in query.split('&').filter(|s| !s.is_empty()) {
        // Percent-decoding only, as libpq and the driver read a URL: a `+` is a plus sign, not a space.
        let plus_kept = segment.replace('+', "%2B");
        let Some((key, value)) = form_urlencoded::parse(plus_kept.as_bytes()).next() else {
            continue;
        };
        match &*key {
            "sslmode" => {
                let (driver, check) = match &*value {
                    "disable" => (SslMode::Disable, Verify::Full),
                    "prefer" => (SslMode::Prefer, Verify::Full),
                    "require" | "verify-full" => (SslMode::Require, Verify::Full),
                    "verify-ca" => (SslMode::Require, Verify::ChainOnly),
                    "allow" => {
                        return Err(bad(
                            "sslmode=allow is not supported (it tries without TLS first); use sslmode=disable, \
                             prefer, require, verify-ca or verify-full"
                                .into(),
                        ))
                    }
                    other => {
                        return Err(bad(format!(
                            "sslmode={} is not one of disable, prefer, require, verify-ca, verify-full",
                            crate::printable(other)
                        )))
                    }
                };
                mode = Some(driver);
                verify = check;
            }
            "sslrootcert" if value == "system" => {
                return Err(bad(
                    "sslrootcert=system (the operating system's roots) is not supported; leave sslrootcert out to \
                     trust the Web PKI roots, or give the PEM file of your database's CA"
                        .into(),
                ))
            }
            "sslrootcert" => root_cert = Some(std::path::PathBuf::from(&*value)),
            "pool_max_size" => {
                pool_max_size =
                    value.parse().ok().filter(|n| (1..=POOL_MAX_SIZE_LIMIT).contains(n)).ok_or_else(|| {
                        bad(format!("pool_max_size must be a whole number from 1 to {POOL_MAX_SIZE_LIMIT}"))
                    })?;
            }
            // The driver's own parameters reach it as they were written.
            _ => rest.push(segment),
        }
    }
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    // The driver's parse errors quote no part of the URL, so they cannot leak its password.
    let mut config = tokio_postgres::Config::from_str(&url).map_err(|e| bad(super::one_line(&e)))?;
    if config.get_hosts().is_empty() {
        return Err(bad("it names no host".into()));
    }
    if let Some(mode) = mode {
        config.ssl_mode(mode);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(super::POOL_WAIT);
    }
    config.keepalives_idle(Duration::from_secs(30));
    config.application_name("wasm-host");
    let shown = PostgresLocation::new(describe(&config));
    Ok(Parsed { config, shown, verify, root_cert, pool_max_size })
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn refused(url: &str) -> String {
        match parse(url) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{url} was accepted"),
        }
    }

    #[test]
    fn the_location_never_shows_the_password() {
        let parsed = parse("postgres://app:hunter2-secret@db.example:6543/hosts?sslmode=verify-full").unwrap();
        assert_eq!(parsed.shown.as_str(), "postgres://app@db.example:6543/hosts");
        assert_eq!(parsed.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(parsed.verify, Verify::Full);
        let err = refused("postgres://app:hunter2-secret@db.example:notaport/x");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn sslmode_sslrootcert_and_pool_max_size_are_read_and_kept_from_the_driver() {
        let parsed = parse(
            "postgres://app@db:5432/d?sslrootcert=%2Fetc%2Fca+1.pem&sslmode=verify-ca&pool_max_size=3&connect_timeout=2&options=-c%20statement_timeout%3D5s",
        )
        .unwrap();
        assert_eq!(parsed.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(parsed.verify, Verify::ChainOnly);
        assert_eq!(parsed.root_cert.as_deref(), Some(Path::new("/etc/ca+1.pem")));
        assert_eq!(parsed.pool_max_size, 3);
        assert_eq!(parsed.config.get_connect_timeout(), Some(&Duration::from_secs(2)), "the rest reaches the driver");
        assert_eq!(parsed.config.get_options(), Some("-c statement_timeout=5s"), "as it was written");
        let default = parse("postgres://app@db/d").unwrap();
        assert_eq!((default.config.get_ssl_mode(), default.verify), (SslMode::Prefer, Verify::Full));
        assert_eq!((default.root_cert, default.pool_max_size), (None, super::super::POOL_SIZE));
        assert_eq!(parse("postgres://app@db/d?sslmode=disable").unwrap().config.get_ssl_mode(), SslMode::Disable);
    }

    #[test]
    fn unsupported_settings_are_refused_saying_what_is_supported() {
        assert!(refused("postgres://h/d?sslmode=allow").contains("sslmode=allow is not supported"));
        assert!(refused("postgres://h/d?sslmode=bogus").contains("sslmode=bogus is not one of disable, prefer"));
        assert!(refused("postgres://h/d?sslrootcert=system").contains("sslrootcert=system"));
        for size in ["0", "-1", "many", "1001"] {
            let err = refused(&format!("postgres://h/d?pool_max_size={size}"));
            assert!(err.contains("pool_max_size must be a whole number from 1 to 1000"), "{err}");
        }
    }
}
