//! TLS to the database (rustls): the roots a server certificate must lead to (the Web PKI's, or the CA file
//! `sslrootcert` names) and how much of it is checked (`sslmode`, location.rs).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::OpenError;

/// How much of the server's certificate is checked (libpq's `sslmode`, location.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verify {
    /// The chain leads to a trusted root and the certificate names the host the URL gives (`verify-full`;
    /// `require` and `prefer` too).
    Full,
    /// The chain leads to a trusted root; the name is not checked (`verify-ca`).
    ChainOnly,
}

/// The TLS connector for the pool and the listener: the Web PKI roots, or only the CA certificates in the PEM
/// file `root_cert` (a missing, unreadable or certificate-less file is [`OpenError::RootCert`]).
pub(super) fn connector(verify: Verify, root_cert: Option<&Path>) -> Result<MakeRustlsConnect, OpenError> {
    let roots = match root_cert {
        None => RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
        Some(path) => read_roots(path)?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions");
    let config = match verify {
        Verify::Full => builder.with_root_certificates(roots).with_no_client_auth(),
        Verify::ChainOnly => {
            // It fails only without roots (or with bad revocation lists, none given); `roots` is never empty.
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("a verifier with roots and no revocation lists builds");
            builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly(inner))).with_no_client_auth()
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

fn read_roots(path: &Path) -> Result<RootCertStore, OpenError> {
    let fail = |detail: String| OpenError::RootCert { path: path.to_owned(), detail };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| fail(format!("it is not a PEM file of certificates ({e})")))?;
        roots.add(cert).map_err(|e| fail(format!("a certificate in it cannot be used ({e})")))?;
    }
    if roots.is_empty() {
        return Err(fail("it holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)".into()));
    }
    Ok(roots)
}

/// libpq's `verify-ca`: rustls's own verifier, with its host-name check alone forgiven. rustls offers no setting
/// for this; its verifier checks the chain (to the roots, validity dates, signatures) before the name, so a
/// name error means everything else passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_non_pem_root_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-ca.pem");
        let err = connector(Verify::Full, Some(&missing)).err().unwrap().to_string();
        assert!(err.contains(&missing.display().to_string()) && err.contains("No such file"), "{err}");
        let text = dir.path().join("ca.txt");
        std::fs::write(&text, "not a certificate\n").unwrap();
        let err = connector(Verify::ChainOnly, Some(&text)).err().unwrap().to_string();
        assert!(err.contains(&text.display().to_string()) && err.contains("holds no PEM certificate"), "{err}");
        let broken = dir.path().join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n").unwrap();
        let err = connector(Verify::Full, Some(&broken)).err().unwrap().to_string();
        assert!(err.contains(&broken.display().to_string()), "{err}");
        assert!(connector(Verify::Full, None).is_ok() && connector(Verify::ChainOnly, None).is_ok());
    }
}
