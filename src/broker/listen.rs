//! chat-broker's listeners: plain MQTT (`--listen`), MQTT over TLS (`--tls-listen`) and
//! over WebSocket (`--ws-listen`, wss with a certificate), every one in front of the same
//! engine; the safe default for an address that is not loopback; each connection's
//! handshake before its CONNECT.

use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

use super::auth::cert::common_name;
use super::conn::{self, Link};
use super::engine::BROKER_MAX_PACKET;
use super::gate::Identity;
use super::hub::Shared;
use crate::cli::BrokerArgs;
use crate::defaults;
use crate::error::Error;
use crate::mqtt::transport::{read_certs, ring_provider};

/// How long a TLS or WebSocket handshake may take.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(10);

mod admit;
use admit::MAX_PENDING_PER_ADDRESS;
pub use admit::{MAX_PENDING, Origins, Pending};

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mqtt,
    Tls,
    Ws,
    Wss,
}

impl Kind {
    fn tls(self) -> bool {
        matches!(self, Kind::Tls | Kind::Wss)
    }

    /// How the start line names it.
    fn scheme(self) -> &'static str {
        match self {
            Kind::Mqtt => "mqtt",
            Kind::Tls => "mqtts",
            Kind::Ws => "ws",
            Kind::Wss => "wss",
        }
    }
}

/// The listeners the flags ask for (the default one when none), with their addresses
/// resolved; a bad address or a TLS listener without a certificate is a usage error.
pub fn wanted(args: &BrokerArgs) -> Result<Vec<(SocketAddr, Kind)>, Error> {
    let cert = args.certfile.is_some() || args.keyfile.is_some();
    if args.certfile.is_some() != args.keyfile.is_some() {
        return Err(Error::Usage(
            "--certfile and --keyfile go together: give both or neither".into(),
        ));
    }
    if !args.tls_listen.is_empty() && !cert {
        return Err(Error::Usage(
            "--tls-listen needs --certfile and --keyfile (the broker's certificate and key)".into(),
        ));
    }
    let ws = if cert { Kind::Wss } else { Kind::Ws };
    let plain = match (
        args.listen.is_empty(),
        args.tls_listen.is_empty() && args.ws_listen.is_empty(),
    ) {
        (true, true) => vec![defaults::LISTEN.to_string()],
        _ => args.listen.clone(),
    };
    let mut found = Vec::new();
    for (list, kind, flag) in [
        (&plain, Kind::Mqtt, "--listen"),
        (&args.tls_listen, Kind::Tls, "--tls-listen"),
        (&args.ws_listen, ws, "--ws-listen"),
    ] {
        for a in list {
            found.push((parse_addr(a, flag)?, kind));
        }
    }
    Ok(found)
}

/// The safe default: on an address that is not loopback, a listener lets clients in only
/// with a password file, or by the names in the TLS client certificates it requires
/// (`--use-identity-as-username`), unless `--allow-anonymous` says anyone may. Then what
/// it means is said at start.
pub fn check_exposure(listeners: &[(SocketAddr, Kind)], args: &BrokerArgs) -> Result<(), Error> {
    for (addr, kind) in listeners {
        if args.password_file.is_some() && !kind.tls() && !addr.ip().is_loopback() {
            crate::tool::say(format_args!(
                "warning: passwords cross the network in clear text to {addr}: anyone on the \
                 way can read them; --tls-listen keeps them private"
            ));
        }
        let named = kind.tls() && args.require_certificate && args.use_identity_as_username;
        let guarded = args.password_file.is_some() || named;
        if addr.ip().is_loopback() || (guarded && !args.allow_anonymous) {
            continue;
        }
        if !args.allow_anonymous {
            return Err(Error::Usage(format!(
                "not listening on {addr} without --password-file: anyone who can reach it \
                 could publish and subscribe. Give --password-file FILE (`chat-broker passwd \
                 FILE USER` makes one), or --allow-anonymous on a network you trust"
            )));
        }
        crate::tool::say(format_args!(
            "warning: --allow-anonymous: anyone who reaches {addr} may publish and subscribe{}",
            match args.acl_file {
                Some(_) => " (within --acl-file)",
                None => "",
            }
        ));
    }
    Ok(())
}

/// The TLS setup of `--tls-listen` and wss: the certificate and key, and with --cafile
/// the client certificates trusted (required with --require-certificate).
pub fn tls_config(args: &BrokerArgs) -> Result<Option<Arc<ServerConfig>>, Error> {
    let (Some(certfile), Some(keyfile)) = (&args.certfile, &args.keyfile) else {
        if args.cafile.is_some() {
            return Err(Error::Usage(
                "--cafile is for TLS listeners: give --certfile and --keyfile too".into(),
            ));
        }
        return Ok(None);
    };
    let chain = read_certs(certfile, "--certfile")?;
    let key = PrivateKeyDer::from_pem_file(keyfile)
        .map_err(|e| Error::Usage(format!("cannot read --keyfile {}: {e}", keyfile.display())))?;
    let provider = Arc::new(ring_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Usage(format!("TLS setup: {e}")))?;
    let builder = match &args.cafile {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = client_roots(ca)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match args.require_certificate {
                true => verifier,
                false => verifier.allow_unauthenticated(),
            };
            let verifier = (verifier.build())
                .map_err(|e| Error::Usage(format!("--cafile {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = (builder.with_single_cert(chain, key))
        .map_err(|e| Error::Usage(format!("--certfile and --keyfile do not fit together: {e}")))?;
    Ok(Some(Arc::new(config)))
}

fn client_roots(ca: &Path) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca, "--cafile")? {
        roots
            .add(cert)
            .map_err(|e| Error::Usage(format!("--cafile {}: {e}", ca.display())))?;
    }
    Ok(roots)
}

/// One bound listener and what it needs for its handshakes.
pub struct Listener {
    pub socket: StdListener,
    pub kind: Kind,
    pub tls: Option<TlsAcceptor>,
    /// `--use-identity-as-username`.
    pub identity: bool,
    pub origins: Arc<Origins>,
}

impl Listener {
    /// How the start line names it: `mqtts://127.0.0.1:8883`, or the address alone for
    /// plain MQTT.
    pub fn name(&self) -> Result<String, Error> {
        let addr = (self.socket.local_addr())
            .map_err(|e| Error::Unreachable(format!("cannot listen: {e}")))?;
        Ok(match self.kind {
            Kind::Mqtt => addr.to_string(),
            k => format!("{}://{addr}", k.scheme()),
        })
    }
}

/// Accepts connections for ever; each one's handshake and session run in a task of its
/// own, the handshake and login holding one of the `pending` permits ([`MAX_PENDING`]).
pub async fn accept_loop(
    l: Listener,
    shared: Arc<Shared>,
    pending: Arc<Semaphore>,
    counted: Arc<Pending>,
) {
    let Listener {
        socket,
        kind,
        tls,
        identity,
        origins,
    } = l;
    let listener = match socket
        .set_nonblocking(true)
        .and_then(|()| TcpListener::from_std(socket))
    {
        Ok(l) => l,
        Err(e) => return log::error!("cannot listen: {e}"),
    };
    loop {
        let Ok(permit) = pending.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Some(permit) = counted.admit(peer.ip(), permit) else {
                    log::info!(
                        "{peer}: closed: {MAX_PENDING_PER_ADDRESS} connections from it wait to log in"
                    );
                    continue;
                };
                let (tls, shared, origins) = (tls.clone(), shared.clone(), origins.clone());
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let link = tokio::time::timeout(
                        HANDSHAKE_WAIT,
                        handshake(stream, kind, tls, identity, &origins),
                    );
                    match link.await {
                        Ok(Ok((link, who))) => conn::client(link, peer, who, shared, permit).await,
                        Ok(Err(e)) => log::info!("{peer}: {} handshake failed: {e}", kind.scheme()),
                        Err(_) => log::info!(
                            "{peer}: no {} handshake within {}s",
                            kind.scheme(),
                            HANDSHAKE_WAIT.as_secs()
                        ),
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                log::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The TLS and WebSocket handshakes a listener of `kind` does before MQTT, and who the
/// client's certificate says it is (with `--use-identity-as-username`).
async fn handshake(
    stream: TcpStream,
    kind: Kind,
    tls: Option<TlsAcceptor>,
    identity: bool,
    origins: &Origins,
) -> std::io::Result<(Link, Identity)> {
    let (stream, who): (Box<dyn crate::mqtt::transport::Stream>, Identity) = match (kind, tls) {
        (Kind::Mqtt, _) => return Ok((Link::Tcp(stream), Identity::Login)),
        (Kind::Ws, _) => (Box::new(stream), Identity::Login),
        (_, None) => return Err(std::io::Error::other("no TLS setup")),
        (_, Some(acceptor)) => {
            let s = acceptor.accept(stream).await?;
            let who = match identity {
                false => Identity::Login,
                true => {
                    let leaf = s.get_ref().1.peer_certificates().and_then(|c| c.first());
                    Identity::Certificate(leaf.and_then(|c| common_name(c)))
                }
            };
            (Box::new(s), who)
        }
    };
    match kind {
        Kind::Ws | Kind::Wss => Ok((Link::Layered(websocket(stream, origins).await?), who)),
        _ => Ok((Link::Layered(stream), who)),
    }
}

/// The server side of the WebSocket handshake: any path; the subprotocol `mqtt` (or the
/// older `mqttv3.1`) is confirmed when the client offers it; a web page's handshake is
/// refused unless [`Origins`] admits it. A message may be as large as the largest packet,
/// no larger.
async fn websocket(
    stream: Box<dyn crate::mqtt::transport::Stream>,
    origins: &Origins,
) -> std::io::Result<Box<dyn crate::mqtt::transport::Stream>> {
    use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
    use async_tungstenite::tungstenite::http::StatusCode;
    use async_tungstenite::tungstenite::protocol::WebSocketConfig;
    // The error type is tungstenite's, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let confirm = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let origin = req
            .headers()
            .get("Origin")
            .map(|o| o.to_str().unwrap_or("?"));
        if !origins.admit(origin) {
            let why = "this page's origin may not use this broker (chat-broker --ws-origin)";
            let mut refusal = ErrorResponse::new(Some(why.into()));
            *refusal.status_mut() = StatusCode::FORBIDDEN;
            log::warn!("a WebSocket handshake from {origin:?} refused: not in --ws-origin");
            return Err(refusal);
        }
        let offered = (req.headers().get_all("Sec-WebSocket-Protocol").iter())
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(',').map(str::trim))
            .find(|p| *p == "mqtt" || *p == "mqttv3.1")
            .map(str::to_string);
        if let Some(p) = offered.and_then(|p| p.parse().ok()) {
            resp.headers_mut().insert("Sec-WebSocket-Protocol", p);
        }
        Ok(resp)
    };
    let largest = Some(BROKER_MAX_PACKET + 16);
    let config = (WebSocketConfig::default())
        .read_buffer_size(16 << 10)
        .max_message_size(largest)
        .max_frame_size(largest);
    let ws = async_tungstenite::tokio::accept_hdr_async_with_config(stream, confirm, Some(config))
        .await
        .map_err(|e| std::io::Error::other(format!("WebSocket: {e}")))?;
    Ok(Box::new(ws_stream_tungstenite::WsStream::new(ws)))
}

/// Binds every listener before serving: a taken port is exit 3, at once.
pub fn bind(addr: &SocketAddr) -> Result<StdListener, Error> {
    StdListener::bind(addr).map_err(|e| cannot_listen(addr, &e))
}

/// Why `addr` cannot be listened on, and what to do about it (exit 3).
fn cannot_listen(addr: &SocketAddr, e: &std::io::Error) -> Error {
    use std::io::ErrorKind;
    let hint = match e.kind() {
        ErrorKind::AddrInUse => {
            let reach = match addr.ip().is_unspecified() {
                true => format!("localhost:{}", addr.port()),
                false => addr.to_string(),
            };
            let other = SocketAddr::new(addr.ip(), addr.port().wrapping_add(1).max(1024));
            format!(
                ": another program listens there, usually a broker (chat-broker or \
                 mosquitto): the clients can use it as it is (-b {reach}), or give this \
                 broker another port (--listen {other})"
            )
        }
        ErrorKind::AddrNotAvailable => format!(
            ": {} is not an address of this machine (0.0.0.0 listens on all of them)",
            addr.ip()
        ),
        ErrorKind::PermissionDenied if addr.port() < 1024 => {
            ": ports below 1024 need root; MQTT's own port is 1883".to_string()
        }
        _ => String::new(),
    };
    Error::Unreachable(format!("cannot listen on {addr}: {e}{hint}"))
}

/// `HOST:PORT` (a name is resolved; IPv6 in brackets); every problem is a usage error.
fn parse_addr(s: &str, flag: &str) -> Result<SocketAddr, Error> {
    let bad = |why: String| Error::Usage(format!("invalid {flag} address '{s}': {why}"));
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Some(port) = s.strip_prefix(':').or((!s.contains(':')).then_some(s)) {
        let port = match port.parse::<u16>() {
            Ok(p) => p,
            Err(_) => return Err(bad("expected HOST:PORT, e.g. 127.0.0.1:1883".into())),
        };
        return Err(bad(format!(
            "give the host too: 127.0.0.1:{port} (this machine only) or 0.0.0.0:{port} \
             (every network interface)"
        )));
    }
    let mut found = s.to_socket_addrs().map_err(|e| bad(e.to_string()))?;
    found
        .next()
        .ok_or_else(|| bad("the name resolves to no address".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_addr_l(s: &str) -> Result<SocketAddr, Error> {
        parse_addr(s, "--listen")
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_addr_l("127.0.0.1:1883").unwrap().port(), 1883);
        assert!(parse_addr_l("[::1]:0").unwrap().is_ipv6());
        assert_eq!(parse_addr_l("localhost:1999").unwrap().port(), 1999);
        for bad in ["1883", "127.0.0.1", "127.0.0.1:99999", "", ":1883", ":x"] {
            assert!(matches!(parse_addr_l(bad), Err(Error::Usage(_))), "{bad}");
        }
        let no_host = parse_addr_l(":1883").unwrap_err().to_string();
        assert!(
            no_host.contains("give the host too: 127.0.0.1:1883"),
            "{no_host}"
        );
    }
}
