//! `--tls`: a throwaway CA and a server certificate for 127.0.0.1 and localhost, made for
//! the run (rcgen; no key outlives the work directory), the PEM files the brokers and
//! the clients are given, and the harness's own TLS client (rustls with ring, as chat-pub
//! and chat-sub use) for the readiness markers.

use std::io;
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// The run's PKI: PEM files in the work directory, and a client that trusts the CA.
pub struct Pki {
    /// The CA's certificate: the clients' `--cafile`.
    pub ca: PathBuf,
    /// The server's certificate (signed by the CA) and its key (ECDSA P-256, PKCS#8).
    pub cert: PathBuf,
    pub key: PathBuf,
    client: Arc<ClientConfig>,
}

fn other(what: &str) -> impl Fn(rcgen::Error) -> io::Error + '_ {
    move |e| io::Error::other(format!("{what}: {e}"))
}

impl Pki {
    /// Makes the CA and the server certificate, and writes them into `dir`.
    pub fn new(dir: &Path) -> io::Result<Pki> {
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(other("CA"))?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "pipebench throwaway CA");
        let ca_key = KeyPair::generate().map_err(other("CA key"))?;
        let ca_cert = ca.self_signed(&ca_key).map_err(other("CA"))?;
        let issuer = Issuer::new(ca, ca_key);
        let mut server =
            CertificateParams::new(vec!["localhost".to_string()]).map_err(other("server"))?;
        server
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().map_err(other("server key"))?;
        let cert = server.signed_by(&key, &issuer).map_err(other("server"))?;
        let write = |name: &str, text: String| -> io::Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, text)?;
            Ok(path)
        };
        let mut roots = RootCertStore::empty();
        roots
            .add(ca_cert.der().clone())
            .map_err(|e| io::Error::other(format!("CA: {e}")))?;
        let provider = Arc::new(ring_provider());
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| io::Error::other(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Pki {
            ca: write("ca.pem", ca_cert.pem())?,
            cert: write("server.pem", cert.pem())?,
            key: write("server.key", key.serialize_pem())?,
            client: Arc::new(client),
        })
    }

    /// A TLS connection over `tcp` to the server at 127.0.0.1 (its certificate checked).
    pub fn connect(&self, tcp: TcpStream) -> io::Result<StreamOwned<ClientConnection, TcpStream>> {
        let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
        let conn = ClientConnection::new(self.client.clone(), name).map_err(io::Error::other)?;
        Ok(StreamOwned::new(conn, tcp))
    }

    /// What a rustls client (the chat pair's TLS) and the server at `port` agree on:
    /// "TLSv1_3 TLS13_AES_256_GCM_SHA384".
    pub fn negotiated(&self, port: u16) -> io::Result<String> {
        let tcp = TcpStream::connect((crate::broker::HOST, port))?;
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        let mut s = self.connect(tcp)?;
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        let version = s.conn.protocol_version().map(|v| format!("{v:?}"));
        let suite = s
            .conn
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()));
        s.conn.send_close_notify();
        let _ = s.conn.complete_io(&mut s.sock);
        Ok(format!(
            "{} {}",
            version.unwrap_or_default(),
            suite.unwrap_or_default()
        ))
    }
}

/// rustls's ring provider. `allow`, not `expect`: the versions in Cargo.lock do not
/// deprecate it, newer ones do, and the harness must build without warnings on both.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
