//! Throwaway certificates for the TLS tests, generated at test time (no key is ever
//! committed): a CA, a server certificate for localhost/127.0.0.1 signed by it, a client
//! certificate signed by it (and more on demand, with a common name of the test's
//! choosing: [`Pki::client_for`]), and the bad cases — a server certificate from another CA,
//! one for the wrong host name, and an expired client certificate.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use super::TempDir;

/// PEM files of one test PKI.
pub struct Pki {
    dir: TempDir,
    pub ca: PathBuf,
    /// The CA's private key (PEM, PKCS#8), for signing further certificates with other
    /// tools (e.g. `openssl x509 -req -CA ca -CAkey ca_key`).
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed nothing the broker uses (for "unknown CA").
    pub other_ca: PathBuf,
    /// A server certificate for "wrong.example", signed by `ca`.
    pub wrong_host_cert: PathBuf,
    pub wrong_host_key: PathBuf,
    /// A client certificate that expired in 2001, signed by `ca`.
    pub expired_client_cert: PathBuf,
    pub expired_client_key: PathBuf,
    /// The CA, for [`Pki::client_for`].
    #[cfg(feature = "broker")]
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = TempDir::new("pki");
        let file = |name: &str, text: String| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write PEM");
            p
        };
        let (ca_params, ca_key) = ca("mqttchat test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
        let ca_key_pem = ca_key.serialize_pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let (other_params, other_key) = ca("another CA");
        let other_cert = other_params.self_signed(&other_key).expect("other CA");

        let leaf = |names: &[&str], client: bool, expired: bool| {
            let mut p =
                CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .expect("params");
            if !client {
                p.subject_alt_names
                    .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
            }
            p.distinguished_name.push(DnType::CommonName, names[0]);
            if expired {
                p.not_before = rcgen::date_time_ymd(2000, 1, 1);
                p.not_after = rcgen::date_time_ymd(2001, 1, 1);
            }
            let key = KeyPair::generate().expect("key");
            let cert = p.signed_by(&key, &issuer).expect("sign");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(&["localhost"], false, false);
        let (client_cert, client_key) = leaf(&["alice"], true, false);
        let (wrong_cert, wrong_key) = leaf(&["wrong.example"], true, false);
        let (expired_cert, expired_key) = leaf(&["old-alice"], true, true);
        Pki {
            ca: file("ca.pem", ca_cert.pem()),
            ca_key: file("ca.key", ca_key_pem),
            server_cert: file("server.pem", server_cert),
            server_key: file("server.key", server_key),
            client_cert: file("client.pem", client_cert),
            client_key: file("client.key", client_key),
            other_ca: file("other-ca.pem", other_cert.pem()),
            wrong_host_cert: file("wrong.pem", wrong_cert),
            wrong_host_key: file("wrong.key", wrong_key),
            expired_client_cert: file("expired.pem", expired_cert),
            expired_client_key: file("expired.key", expired_key),
            dir,
            #[cfg(feature = "broker")]
            issuer,
        }
    }

    /// A client certificate signed by `ca` whose subject's common name is `cn` (None: a
    /// subject without one), and its key: (certificate, key) files.
    #[cfg(feature = "broker")]
    pub fn client_for(&self, cn: Option<&str>) -> (PathBuf, PathBuf) {
        let name = cn.unwrap_or("no-cn");
        let mut p = CertificateParams::new(vec![name.to_string()]).expect("params");
        p.distinguished_name = rcgen::DistinguishedName::new();
        match cn {
            Some(cn) => p.distinguished_name.push(DnType::CommonName, cn),
            None => p
                .distinguished_name
                .push(DnType::OrganizationName, "mqttchat tests"),
        }
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &self.issuer).expect("sign");
        let (cert_path, key_path) = (
            self.path(&format!("client-{name}.pem")),
            self.path(&format!("client-{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).expect("write PEM");
        std::fs::write(&key_path, key.serialize_pem()).expect("write PEM");
        (cert_path, key_path)
    }

    /// A file in the PKI's directory (for extra test files).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn ca(name: &str) -> (CertificateParams, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.distinguished_name.push(DnType::CommonName, name);
    (p, KeyPair::generate().expect("CA key"))
}

/// The path as a string for a config file or a flag.
pub fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}
