//! TLS for `https://` plugins, from a `.json` spec's `TLSConfig` (Docker's `tlsconfig.Client`):
//! a CA file to verify against, or no verification (`InsecureSkipVerify`, forced when the CA
//! file is empty); a client certificate when both files are given. A `.json` without
//! `TLSConfig` verifies against the system's CA bundle, as Go's default transport does.

use super::discovery::TlsFiles;
use super::error::PluginError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::sync::Arc;

/// Where Debian-like systems keep the CA bundle.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn err(what: &str, e: impl std::fmt::Display) -> PluginError {
    PluginError::Lookup(format!("{what}: {e}"))
}

fn roots(file: &str) -> Result<RootCertStore, PluginError> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(file).map_err(|e| err(file, e))? {
        let c = c.map_err(|e| err(file, e))?;
        // a system bundle may hold certificates rustls refuses; Go skips them too
        let _ = roots.add(c);
    }
    if roots.is_empty() {
        return Err(err(file, "failed to append certificates from PEM file"));
    }
    Ok(roots)
}

/// The client configuration and the server name to verify.
pub fn client(
    files: &TlsFiles,
    system_roots: bool,
    host: &str,
) -> Result<(Arc<ClientConfig>, ServerName<'static>), PluginError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err("tls", e))?;
    let builder = if files.insecure_skip_verify && !system_roots {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else if system_roots {
        builder.with_root_certificates(roots(SYSTEM_BUNDLE)?)
    } else {
        builder.with_root_certificates(roots(&files.ca_file)?)
    };
    let cfg = if !files.cert_file.is_empty() && !files.key_file.is_empty() {
        let certs = CertificateDer::pem_file_iter(&files.cert_file)
            .map_err(|e| err(&files.cert_file, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(&files.cert_file, e))?;
        let key =
            PrivateKeyDer::from_pem_file(&files.key_file).map_err(|e| err(&files.key_file, e))?;
        builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| err("tls", e))?
    } else {
        builder.with_no_client_auth()
    };
    let name = ServerName::try_from(host.to_string()).map_err(|e| err(host, e))?;
    Ok((Arc::new(cfg), name))
}

/// `InsecureSkipVerify`: any certificate is accepted, signatures are still checked.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
