//! The wss mode (`SOAK_TLS=1`): the parent makes a throwaway CA and a
//! server certificate for the IP 127.0.0.1 that it signed, fresh for each
//! run (nothing committed, nothing to expire), and hands them to the
//! children as PEM text in environment variables (nothing written to
//! disk, so nothing to remove, even after a crash). The server presents
//! the certificate; the client trusts that CA alone. Both sides speak
//! TLS 1.3 only, with the ring provider passed explicitly (no process-wide
//! provider), and resume sessions as rustls does by default (the server
//! keeps up to 256 sessions, the client their tickets).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::process::env_u64;

/// `1` for wss, `0` (the default) for ws.
pub(crate) const TLS: &str = "SOAK_TLS";
/// The CA certificate (PEM), for the client.
const CA_PEM: &str = "SOAK_TLS_CA_PEM";
/// The server certificate (PEM), for the server.
const CERT_PEM: &str = "SOAK_TLS_CERT_PEM";
/// The server certificate's private key (PKCS#8 PEM), for the server.
const KEY_PEM: &str = "SOAK_TLS_KEY_PEM";

/// Whether `SOAK_TLS` asks for wss.
pub(crate) fn enabled() -> bool {
    match env_u64(TLS, 0) {
        0 => false,
        1 => true,
        n => panic!("SOAK_TLS={n}: 1 for wss, 0 for ws"),
    }
}

/// The run's CA and server certificate, as PEM.
pub(crate) struct Pki {
    ca: String,
    cert: String,
    key: String,
}

impl Pki {
    /// A new CA, and a certificate for 127.0.0.1 that it signed.
    pub(crate) fn generate() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "wsstream soak throwaway CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca.self_signed(&ca_key).expect("CA certificate");

        let key = KeyPair::generate().expect("server key");
        // An IP address SAN: rcgen makes one of a name that parses as an IP.
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server certificate");
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &ca, &ca_key)
            .expect("server certificate");
        Self {
            ca: ca.pem(),
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// The server's environment: its certificate and key.
    pub(crate) fn server_vars(&self) -> [(&'static str, String); 2] {
        [(CERT_PEM, self.cert.clone()), (KEY_PEM, self.key.clone())]
    }

    /// The client's environment: the CA to trust.
    pub(crate) fn client_vars(&self) -> [(&'static str, String); 1] {
        [(CA_PEM, self.ca.clone())]
    }
}

fn pem_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: SOAK_TLS=1 needs it"))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's configuration: the certificate and key from the
/// environment, TLS 1.3, ALPN `http/1.1`.
pub(crate) fn server_config() -> Arc<ServerConfig> {
    let certs = CertificateDer::pem_slice_iter(pem_var(CERT_PEM).as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("the server certificate's PEM");
    let key = PrivateKeyDer::from_pem_slice(pem_var(KEY_PEM).as_bytes()).expect("the key's PEM");
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("ring supports TLS 1.3")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate and key");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The client's configuration: the run's CA as the only root, TLS 1.3,
/// ALPN `http/1.1` (as the library's default configuration offers).
pub(crate) fn client_config() -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(pem_var(CA_PEM).as_bytes()) {
        roots
            .add(ca.expect("the CA's PEM"))
            .expect("the CA certificate as a root");
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("ring supports TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}
