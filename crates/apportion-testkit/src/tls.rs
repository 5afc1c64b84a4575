//! Certificates for a test etcd that speaks TLS: a CA, a server certificate for loopback
//! signed by it, and a client certificate signed by it, made fresh for each test (no
//! certificate is checked in, so none expires or leaks).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA and the server and client certificates it signed, as PEM files in a temporary
/// directory (etcd and the CLI read files), removed when the last clone is dropped.
#[derive(Clone)]
pub struct TestCerts {
    dir: Arc<tempfile::TempDir>,
}

impl TestCerts {
    /// Makes a new CA, a server certificate for `127.0.0.1` and `localhost`, and a client
    /// certificate (common name `apportion-test`, not a user etcd knows, so a test of
    /// passwords is not answered by the certificate).
    ///
    /// # Panics
    /// When a certificate cannot be made or written.
    pub fn generate() -> TestCerts {
        let dir = tempfile::Builder::new()
            .prefix("apportion-certs-")
            .tempdir()
            .expect("cannot create a temporary directory for certificates");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(DnType::CommonName, "apportion test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        write(dir.path(), "ca.pem", &ca.pem());
        let leaf = |name: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose| {
            let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
            let mut params = CertificateParams::new(sans).expect("certificate parameters");
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().expect("key");
            let cert = params.signed_by(&key, &ca).expect("certificate");
            write(dir.path(), &format!("{name}.pem"), &cert.pem());
            write(dir.path(), &format!("{name}-key.pem"), &key.serialize_pem());
        };
        leaf(
            "server",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        leaf("apportion-test", &[], ExtendedKeyUsagePurpose::ClientAuth);
        TestCerts { dir: Arc::new(dir) }
    }

    /// The CA certificate's file.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The client certificate's file.
    pub fn client_cert_file(&self) -> PathBuf {
        self.dir.path().join("apportion-test.pem")
    }

    /// The client key's file.
    pub fn client_key_file(&self) -> PathBuf {
        self.dir.path().join("apportion-test-key.pem")
    }

    /// The contents of one of the files above.
    ///
    /// # Panics
    /// When it cannot be read.
    pub fn read(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// etcd's flags for serving clients with the server certificate, trusting this CA.
    pub(crate) fn server_flags(&self) -> Vec<String> {
        let file = |name: &str| self.dir.path().join(name).display().to_string();
        vec![
            format!("--cert-file={}", file("server.pem")),
            format!("--key-file={}", file("server-key.pem")),
            format!("--trusted-ca-file={}", file("ca.pem")),
        ]
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text)
        .unwrap_or_else(|e| panic!("cannot write the certificate file {name}: {e}"));
}
