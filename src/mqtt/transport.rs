//! How bytes reach the broker: TCP, TLS over TCP, WebSocket, WebSocket over TLS.
//!
//! Everything that can be checked before the network is touched is checked in
//! [`Dialer::for_each`] (TLS options without a TLS URL, unreadable or malformed PEM files), so
//! those are usage errors. A certificate that does not verify is not a network hiccup:
//! [`is_certificate_error`] lets the connection layer stop at once instead of retrying.
//! TLS is rustls with the ring provider; the default trust store is the system's.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::error::Error;
use crate::mqtt::endpoint::{Endpoint, Transport};
use crate::mqtt::proxy::Proxy;

/// The TLS options (`--cafile`, `--cert`, `--key`, `--insecure`).
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM CA bundle to trust instead of the system's trust store.
    pub cafile: Option<PathBuf>,
    /// Client certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Skip every check of the broker's certificate.
    pub insecure: bool,
}

impl TlsOptions {
    fn any(&self) -> bool {
        self.cafile.is_some() || self.cert.is_some() || self.key.is_some() || self.insecure
    }
}

/// A byte stream to the broker, whatever carries it.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Opens connections to one endpoint.
#[derive(Clone)]
pub struct Dialer {
    endpoint: Endpoint,
    tls: Option<Arc<ClientConfig>>,
    proxy: Option<Arc<Proxy>>,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dialer({}, tls: {}", self.endpoint, self.tls.is_some())?;
        match &self.proxy {
            Some(p) => write!(f, ", proxy: {p})"),
            None => write!(f, ")"),
        }
    }
}

impl Dialer {
    /// Dialers for every broker URL. The TLS options apply to each encrypted URL (and are
    /// loaded once); given with no encrypted URL at all, they are a usage error, like
    /// every other problem here (unreadable or malformed PEM files), found before
    /// anything is sent. With a proxy, every node is reached through it.
    pub fn for_each(
        endpoints: Vec<Endpoint>,
        tls: &TlsOptions,
        proxy: Option<Proxy>,
    ) -> Result<Vec<Dialer>, Error> {
        let encrypted = endpoints.iter().any(|e| e.transport.is_tls());
        if tls.any() && !encrypted {
            let mut given: Vec<String> = endpoints
                .iter()
                .map(|e| format!("{}://", e.transport.scheme()))
                .collect();
            given.dedup();
            return Err(Error::Usage(format!(
                "--cafile, --cert, --key and --insecure need an encrypted URL (mqtts:// or \
                 wss://), not {}: credentials are never sent in clear",
                given.join(" or ")
            )));
        }
        let config = match encrypted {
            true => Some(Arc::new(client_config(tls)?)),
            false => None,
        };
        let proxy = proxy.map(Arc::new);
        Ok(endpoints
            .into_iter()
            .map(|endpoint| Dialer {
                tls: config.clone().filter(|_| endpoint.transport.is_tls()),
                proxy: proxy.clone(),
                endpoint,
            })
            .collect())
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The proxy every connection goes through, if any.
    pub fn proxy(&self) -> Option<&Proxy> {
        self.proxy.as_deref()
    }

    /// Connects: TCP (with TCP_NODELAY; through the proxy, if any), then TLS and/or the WebSocket handshake. With
    /// `socket`, also a descriptor of the TCP socket of its own (a duplicate, for socket
    /// options: valid as long as it is kept, whatever becomes of the stream), if the
    /// system gives one.
    pub async fn connect(
        &self,
        socket: bool,
    ) -> std::io::Result<(Box<dyn Stream>, Option<OwnedFd>)> {
        let (host, port) = (&self.endpoint.host, self.endpoint.port);
        let tcp = match &self.proxy {
            None => crate::mqtt::resolve::connect(host, port).await?,
            Some(proxy) => proxy.open(host, port).await?,
        };
        let fd = match socket {
            true => (tcp.as_fd().try_clone_to_owned())
                .inspect_err(|e| log::debug!("no read marks on this connection: {e}"))
                .ok(),
            false => None,
        };
        // Nagle's algorithm would hold a line back until the previous one is acknowledged
        // (~40 ms with delayed ACKs): chat wants every line on the wire at once.
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Stream> = match &self.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = ServerName::try_from(self.endpoint.host.clone()).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
                })?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                Box::new(connector.connect(name, tcp).await?)
            }
        };
        let stream = match self.endpoint.transport {
            Transport::Ws | Transport::Wss => websocket(&self.endpoint, stream).await?,
            Transport::Tcp | Transport::Tls => stream,
        };
        Ok((stream, fd))
    }
}

/// rustls's provider on *ring*. rustls 0.23.48 deprecated it ("no support for
/// post-quantum algorithms"), pointing to aws-lc-rs, whose X25519MLKEM768 key exchange
/// *ring* lacks. It is kept on purpose: aws-lc-rs needs a C toolchain with cmake-like
/// steps and builds several times slower (Cargo.toml says more), and the brokers the
/// tools meet offer no post-quantum key exchange yet (mosquitto on OpenSSL 3.0 does not).
/// `allow`, not `expect`: the versions in Cargo.lock, older, do not deprecate it, and the
/// code must build without warnings on both.
#[allow(deprecated)]
pub(crate) fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The WebSocket handshake (subprotocol `mqtt`, which brokers require) over `stream`.
async fn websocket(
    endpoint: &Endpoint,
    stream: Box<dyn Stream>,
) -> std::io::Result<Box<dyn Stream>> {
    use async_tungstenite::tungstenite::client::IntoClientRequest;
    let scheme = if endpoint.transport == Transport::Wss {
        "wss"
    } else {
        "ws"
    };
    let url = format!("{scheme}://{}{}", endpoint.socket_addr(), endpoint.path);
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let mut request = url
        .into_client_request()
        .map_err(|e| invalid(e.to_string()))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "mqtt".parse().map_err(|_| invalid("header".into()))?,
    );
    let (ws, response) = async_tungstenite::tokio::client_async(request, stream)
        .await
        .map_err(|e| std::io::Error::other(format!("WebSocket handshake: {e}")))?;
    let agreed = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok());
    if agreed != Some("mqtt") {
        log::debug!("the WebSocket server did not confirm subprotocol mqtt ({agreed:?})");
    }
    Ok(Box::new(ws_stream_tungstenite::WsStream::new(ws)))
}

/// Whether an I/O error is a certificate problem (retrying cannot fix it), and which.
pub fn is_certificate_error(e: &std::io::Error) -> Option<String> {
    let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    use rustls::AlertDescription as A;
    let what = match tls {
        rustls::Error::InvalidCertificate(c) => {
            format!(
                "the broker's certificate does not verify: {}",
                describe_cert_error(c)
            )
        }
        rustls::Error::AlertReceived(A::CertificateRequired) => {
            "the broker requires a client certificate (give --cert and --key)".into()
        }
        rustls::Error::AlertReceived(A::CertificateExpired) => {
            "the broker rejected the client certificate: it has expired".into()
        }
        rustls::Error::AlertReceived(
            a @ (A::BadCertificate
            | A::CertificateRevoked
            | A::CertificateUnknown
            | A::UnknownCA
            | A::UnsupportedCertificate),
        ) => format!("the broker rejected the client certificate ({a:?})"),
        rustls::Error::NoCertificatesPresented => "the broker presented no certificate".into(),
        _ => return None,
    };
    Some(what)
}

fn describe_cert_error(c: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match c {
        C::UnknownIssuer => "it is signed by an unknown certificate authority (give the CA with \
                             --cafile)"
            .into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "it is not valid for this host name".into()
        }
        C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".into(),
        C::Revoked => "it has been revoked".into(),
        C::BadSignature => "its signature is bad".into(),
        other => format!("{other:?}"),
    }
}

fn client_config(tls: &TlsOptions) -> Result<ClientConfig, Error> {
    let provider = Arc::new(ring_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Usage(format!("TLS setup: {e}")))?;
    let builder = if tls.insecure {
        // Said on stderr every time: the connection is encrypted but not authenticated.
        log::warn!(
            "--insecure: the broker's certificate is not checked; anyone in between can \
             read and change this connection"
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        builder.with_root_certificates(roots(tls.cafile.as_deref())?)
    };
    match (&tls.cert, &tls.key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "--cert")?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| Error::Usage(format!("cannot read --key {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Usage(format!("--cert and --key do not fit together: {e}")))
        }
        _ => Err(Error::Usage(
            "--cert and --key go together: give both or neither".into(),
        )),
    }
}

/// The trust store: `--cafile`, else the system's certificates.
fn roots(cafile: Option<&Path>) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    match cafile {
        Some(path) => {
            for cert in read_certs(path, "--cafile")? {
                roots
                    .add(cert)
                    .map_err(|e| Error::Usage(format!("--cafile {}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                log::debug!("system trust store: {e}");
            }
            let (added, _) = roots.add_parsable_certificates(found.certs);
            log::debug!("{added} certificates from the system trust store");
        }
    }
    Ok(roots)
}

pub(crate) fn read_certs(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bad = |e: String| Error::Usage(format!("cannot read {flag} {}: {e}", path.display()));
    // Read it ourselves first, so an unreadable file says why in the usual words.
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// `--insecure`: accepts any certificate, but still checks the handshake signatures.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
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
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
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
