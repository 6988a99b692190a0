//! TLS for the functions' listener (`--tls-cert`, `--tls-key`): rustls with the ring provider, TLS 1.2 and 1.3,
//! HTTP/1.1. The certificate chain and key are PEM files, read once at start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio_rustls::rustls;
pub use tokio_rustls::TlsAcceptor;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain {path}: {reason}; give a PEM file of certificates, the server's first")]
    Certificates { path: PathBuf, reason: String },
    #[error("cannot read the private key {path}: {reason}; give a PEM file with one PKCS#8, PKCS#1 or SEC1 key")]
    Key { path: PathBuf, reason: String },
    #[error("the certificate and key cannot be used together: {0}")]
    Config(String),
}

/// An acceptor for the certificate chain at `cert` and the private key at `key` (both PEM).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificates { path: cert.into(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Certificates { path: cert.into(), reason: "it holds no certificate".into() });
    }
    // The key's bytes never reach a message: only what kind of failure it was.
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key { path: key.into(), reason: pem_reason(&e) })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn pem_reason(e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        rustls_pki_types::pem::Error::NoItemsFound => "it holds no private key".into(),
        _ => "it is not a PEM private key".into(),
    }
}
