//! A throwaway PKI for `wss` tests: a CA made for one test, a server
//! certificate it signed, their PEM files in a temporary directory (for a
//! peer in another process), and a rustls client configuration that trusts
//! that CA alone.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

/// A CA and a server certificate it signed, written as PEM files that are
/// removed on drop.
pub struct TestPki {
    dir: PathBuf,
    /// The CA certificate: the one root a client should trust.
    pub ca: CertificateDer<'static>,
    /// The CA certificate as PEM.
    pub ca_pem: PathBuf,
    /// The server certificate as PEM.
    pub cert_pem: PathBuf,
    /// The server's private key as PKCS#8 PEM.
    pub key_pem: PathBuf,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
    /// The server key's SubjectPublicKeyInfo, DER.
    spki_der: Vec<u8>,
}

impl TestPki {
    /// A new CA and a server certificate for `names`: DNS names and IP
    /// addresses (an entry that parses as an IP becomes an IP SAN).
    pub fn generate(names: &[&str]) -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "wsstream throwaway test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");

        let key = KeyPair::generate().expect("server key");
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("server certificate names");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &ca, &ca_key)
            .expect("server certificate");

        let dir = unique_dir();
        std::fs::create_dir_all(&dir).expect("certificate directory");
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("writing a PEM file");
            path
        };
        Self {
            ca_pem: write("ca.pem", ca.pem()),
            cert_pem: write("server.pem", cert.pem()),
            key_pem: write("server.key", key.serialize_pem()),
            ca: ca.der().clone(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
            spki_der: key.public_key_der(),
            dir,
        }
    }

    /// The directory holding the PEM files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A rustls client configuration that trusts this CA alone, with the
    /// ring provider passed explicitly (no process-wide provider).
    pub fn client_config(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca.clone())
            .expect("CA certificate as a root");
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
    }
}

impl TestPki {
    /// A rustls server configuration presenting the server certificate
    /// (for a `wss` server in this process), ALPN `http/1.1`.
    pub fn server_config(&self) -> rustls::ServerConfig {
        let key = PrivatePkcs8KeyDer::from(self.key_der.clone());
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![self.cert_der.clone()], key.into())
        .expect("server certificate and key");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }

    /// [`server_config`](Self::server_config) offering the ALPN protocols
    /// `alpn` instead, in order of preference (`[b"h2", b"http/1.1"]` for
    /// a server of both HTTP versions).
    pub fn server_config_with_alpn(&self, alpn: &[&[u8]]) -> rustls::ServerConfig {
        let mut config = self.server_config();
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        config
    }

    /// The base64 of the SHA-256 of the server key's SubjectPublicKeyInfo:
    /// what Chromium's `--ignore-certificate-errors-spki-list` takes, to
    /// accept this certificate without installing the CA.
    pub fn server_spki_sha256(&self) -> String {
        use base64::Engine as _;
        // ring's SHA-256, reached through a rustls cipher suite (ring is
        // not a dependency of the tests themselves).
        let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
            .tls13()
            .expect("a TLS 1.3 suite");
        let digest = suite.common.hash_provider.hash(&self.spki_der);
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unique_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let base = option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
    base.join(format!(
        "wsstream-test-pki-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}
