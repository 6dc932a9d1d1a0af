//! Certificates made in the test, with rcgen: a CA, a server certificate for
//! localhost and 127.0.0.1, and client certificates, written as PEM files
//! into a fresh directory the way an operator would hand them to a broker.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

/// A certificate and its key, as PEM text and as files.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// A certificate for `cn` with DNS/IP subject alternative names `sans`,
    /// written to `dir/<file>.pem` and `dir/<file>.key`.
    pub fn issue(&self, dir: &Path, file: &str, cn: &str, sans: &[&str]) -> Issued {
        self.issue_with(dir, file, cn, sans, |_| {})
    }

    pub fn issue_with(
        &self,
        dir: &Path,
        file: &str,
        cn: &str,
        sans: &[&str],
        edit: impl FnOnce(&mut CertificateParams),
    ) -> Issued {
        let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Warren tests");
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        edit(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let issued = Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert: dir.join(format!("{file}.pem")),
            key: dir.join(format!("{file}.key")),
        };
        std::fs::write(&issued.cert, &issued.cert_pem).unwrap();
        std::fs::write(&issued.key, &issued.key_pem).unwrap();
        issued
    }

    pub fn write(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(format!("{file}.pem"));
        std::fs::write(&path, &self.pem).unwrap();
        path
    }
}

/// The usual set: a CA, the server's certificate, and a client `alice`.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: Ca,
    pub ca_file: PathBuf,
    pub server: Issued,
    pub client: Issued,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(super::unique(&format!("warren-tls-{name}")));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = Ca::new("Warren test CA");
        let ca_file = ca.write(&dir, "ca");
        let server = ca.issue(&dir, "server", "localhost", &["localhost", "127.0.0.1"]);
        let client = ca.issue(&dir, "client", "alice", &["alice.example"]);
        Pki { dir, ca, ca_file, server, client }
    }

    /// TLS settings for the broker: this server certificate; with
    /// `verify_peer`, client certificates are checked against the CA.
    pub fn settings(&self, verify_peer: bool, fail_if_no_peer_cert: bool) -> warren::tls::TlsSettings {
        let mut s = warren::tls::TlsSettings::new(&self.server.cert, &self.server.key);
        if verify_peer {
            s.ca = Some(self.ca_file.clone());
            s.verify_peer = true;
            s.fail_if_no_peer_cert = fail_if_no_peer_cert;
        }
        s
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
