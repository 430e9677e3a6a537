//! `--ca-file`: a rustls client configuration that trusts the
//! certificates of a PEM file.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// A configuration whose roots are the certificates in the PEM file at
/// `path` (and nothing else), with the ring provider, as the library's
/// default configuration is built; `Err` says what is wrong with the file.
pub(crate) fn client_config(path: &Path) -> Result<Arc<ClientConfig>, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path).map_err(|err| format!("{shown}: {err}"))?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        let cert = cert.map_err(|err| format!("{shown}: {err}"))?;
        roots
            .add(cert)
            .map_err(|err| format!("{shown}: unusable certificate: {err}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{shown}: no PEM certificate in the file"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("TLS configuration: {err}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // What the library's own configuration offers: HTTP/1.1 for the upgrade.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_file_is_refused_with_its_name() {
        let missing = Path::new("/nonexistent/wsstream-ca.pem");
        let err = client_config(missing).unwrap_err();
        assert!(err.contains("/nonexistent/wsstream-ca.pem"), "{err}");

        let empty =
            std::env::temp_dir().join(format!("wsstream-cli-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config(&empty).unwrap_err();
        std::fs::remove_file(&empty).unwrap();
        assert!(err.contains("no PEM certificate"), "{err}");
    }
}
