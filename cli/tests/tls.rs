//! `wsstream connect --ca-file` against a `wss` echo server whose
//! certificate a throwaway CA signed.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::process::Running;
use support::{serve_on_thread, wsstream};
use wsstream::{ServerOptions, WebSocketStream};

/// A CA, the PEM file of its certificate, and a server configuration with
/// a certificate it signed for 127.0.0.1; the directory goes on drop.
struct Pki {
    dir: PathBuf,
    ca_pem: PathBuf,
    server: Arc<rustls::ServerConfig>,
}

impl Pki {
    fn generate() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "wsstream-cli throwaway test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");

        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server params");
        let cert = params
            .signed_by(&key, &ca, &ca_key)
            .expect("server certificate");

        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wsstream-cli-test-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let ca_pem = dir.join("ca.pem");
        std::fs::write(&ca_pem, ca.pem()).expect("writing ca.pem");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the server certificate");
        Self {
            dir,
            ca_pem,
            server: Arc::new(server),
        }
    }

    /// A file in the PKI's directory, with `contents`.
    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).expect("writing a file");
        path
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `wss` echo server on 127.0.0.1 with `config`; returns its address.
fn spawn_tls_echo(config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    serve_on_thread(move |tcp| {
        let acceptor = acceptor.clone();
        async move {
            // A client that does not trust us fails here.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let Ok(ws) = WebSocketStream::accept(tls, ServerOptions::default()).await else {
                return;
            };
            if let Ok(opened) = ws.opened().await {
                let _ = opened.readable.forward(opened.writable).await;
            }
        }
    })
}

/// `wsstream connect [--ca-file CA] wss://ADDR` with `input`.
fn connect(ca_file: Option<&Path>, addr: SocketAddr, input: &str) -> support::process::Finished {
    let url = format!("wss://{addr}/");
    let mut args: Vec<String> = vec!["connect".into()];
    if let Some(ca) = ca_file {
        args.push("--ca-file".into());
        args.push(ca.display().to_string());
    }
    args.push(url);
    Running::run(wsstream(args), input)
}

#[test]
fn ca_file_trusts_a_private_ca() {
    let pki = Pki::generate();
    let addr = spawn_tls_echo(pki.server.clone());
    let done = connect(Some(&pki.ca_pem), addr, "over tls\n");
    assert_eq!(done.stdout, "< over tls\n", "stderr:\n{}", done.stderr);
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
}

#[test]
fn without_the_ca_file_the_server_is_not_trusted() {
    let pki = Pki::generate();
    let addr = spawn_tls_echo(pki.server.clone());
    let done = connect(None, addr, "over tls\n");
    assert_eq!(done.code, Some(1), "stderr:\n{}", done.stderr);
    assert!(done.stderr.contains("could not connect"), "{}", done.stderr);
    assert!(
        done.stderr.to_lowercase().contains("certificate"),
        "{}",
        done.stderr
    );
    assert_eq!(done.stdout, "");
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let pki = Pki::generate();
    let empty = pki.write("empty.pem", "no certificate here\n");
    let done = connect(Some(&empty), "127.0.0.1:9".parse().expect("an address"), "");
    assert_eq!(done.code, Some(1), "stderr:\n{}", done.stderr);
    assert!(
        done.stderr.contains("no PEM certificate"),
        "{}",
        done.stderr
    );
    let missing = pki.dir.join("missing.pem");
    let done = connect(
        Some(&missing),
        "127.0.0.1:9".parse().expect("an address"),
        "",
    );
    assert_eq!(done.code, Some(1), "stderr:\n{}", done.stderr);
    assert!(done.stderr.contains("missing.pem"), "{}", done.stderr);
}
