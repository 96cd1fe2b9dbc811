//! One connection: its CONNECT, its login (`gate`), then its packets, handed to the
//! engine a batch at a time. Plain TCP is read into one scratch buffer per thread;
//! TLS and WebSocket connections, through their layers, into their own buffer.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::Notify;
use tokio::time::{Instant, timeout};

use super::gate::Identity;
use super::hub::Shared;
use crate::broker::engine::{BROKER_MAX_PACKET, ConnId, In, Version, codec};
use crate::mqtt::transport::Stream;

/// How long a new connection may take to send its CONNECT.
const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// The largest CONNECT taken (a will makes it big): less than any other packet, since
/// anyone who can connect may send one.
const MAX_CONNECT: usize = 1 << 20;
/// How much a connection reads at a time.
const READ_CHUNK: usize = 64 << 10;
/// How much a TLS or WebSocket connection reads at a time (a TLS record holds 16 KiB).
const LAYERED_CHUNK: usize = 16 << 10;
/// How long what is left to write may take once a connection has ended.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// A client's connection, as accepted: plain TCP, or through TLS or WebSocket.
pub enum Link {
    Tcp(TcpStream),
    Layered(Box<dyn Stream>),
}

/// Serves one connection: its CONNECT, then its packets until it ends.
/// `pending` is held until the login is judged (see `listen::MAX_PENDING`).
pub async fn client(
    link: Link,
    peer: SocketAddr,
    identity: Identity,
    shared: Arc<Shared>,
    pending: impl Send + 'static,
) {
    let who = (peer, identity, pending);
    match link {
        Link::Tcp(stream) => {
            let _ = stream.set_nodelay(true);
            let (rd, wr) = stream.into_split();
            serve(Reader::Tcp(rd), wr, who, shared).await
        }
        Link::Layered(stream) => {
            let (rd, wr) = tokio::io::split(stream);
            serve(Reader::Layered(rd), wr, who, shared).await
        }
    }
}

async fn serve<W: AsyncWrite + Unpin + Send + 'static, P: Send + 'static>(
    mut rd: Reader,
    mut wr: W,
    (peer, identity, pending): (SocketAddr, Identity, P),
    shared: Arc<Shared>,
) {
    let mut buf = BytesMut::new();
    let mut hello = match timeout(CONNECT_WAIT, first_packet(&mut rd, &mut buf)).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(why)) => {
            if why.kind() == io::ErrorKind::Unsupported {
                // CONNACK "unacceptable protocol version", as MQTT 3.1.1 and 5 both read it.
                let _ = wr.write_all(&[0x20, 2, 0, 1]).await;
            }
            return log::info!("{peer}: no valid CONNECT ({why}); closing");
        }
        Err(_) => {
            let secs = CONNECT_WAIT.as_secs();
            return log::info!("{peer}: no CONNECT within {secs}s; closing");
        }
    };
    let In::Connect(h) = &mut hello else {
        return;
    };
    shared.gate.admit(h, peer.ip(), identity).await;
    drop(pending);
    let (version, keep_alive) = (h.version, h.keep_alive);
    let closed = Arc::new(Notify::new());
    let (id, mut writer) = shared.open(wr, closed.clone());
    let started = Instant::now();
    shared.feed(id, &mut vec![hello], started.into_std());
    let name = match version {
        Version::V311 => "3.1.1",
        Version::V5 => "5",
    };
    log::info!("{peer} connected (MQTT {name})");
    // A client silent for one and a half keep-alive periods is gone (MQTT's rule).
    let silence = (keep_alive > 0).then(|| Duration::from_millis(keep_alive as u64 * 1500));
    let ended = read_loop(&mut rd, buf, version, silence, id, &shared, &closed).await;
    shared.gone(id);
    // What was left to write gets a moment (a refusal, a DISCONNECT), not for ever.
    if timeout(FLUSH_WAIT, &mut writer).await.is_err() {
        writer.abort();
    }
    let secs = started.elapsed().as_secs_f64();
    log::info!("{peer} disconnected after {secs:.1}s ({ended})");
}

/// Where a connection's bytes come from.
enum Reader {
    Tcp(OwnedReadHalf),
    Layered(ReadHalf<Box<dyn Stream>>),
}

impl Reader {
    /// Waits for bytes and appends them to `buf`: how many (0: the connection ended), and
    /// whether the read was full (more is likely waiting).
    async fn fill(&mut self, buf: &mut BytesMut) -> io::Result<(usize, bool)> {
        match self {
            Reader::Tcp(rd) => loop {
                rd.readable().await?;
                match read_some(rd, buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                    Ok(n) => return Ok((n, n == READ_CHUNK)),
                }
            },
            Reader::Layered(rd) => {
                buf.reserve(LAYERED_CHUNK);
                let n = rd.read_buf(buf).await?;
                Ok((n, n >= LAYERED_CHUNK))
            }
        }
    }
}

/// Reads until `buf` holds the first packet, which must be a CONNECT.
async fn first_packet(rd: &mut Reader, buf: &mut BytesMut) -> io::Result<In> {
    loop {
        if rd.fill(buf).await?.0 == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        match codec::read(buf, None, MAX_CONNECT) {
            Ok(Some(p @ In::Connect(_))) => return Ok(p),
            Ok(Some(_)) => return Err(invalid("the first packet is not CONNECT")),
            Ok(None) => {}
            Err(codec::Bad::Level(level)) => {
                let why = format!("protocol level {level}: only 4 (MQTT 3.1.1) and 5 are served");
                return Err(io::Error::new(io::ErrorKind::Unsupported, why));
            }
            Err(why) => return Err(invalid(&format!("{why:?}"))),
        }
    }
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

/// Reads packets and hands each batch to the engine; says how the connection ended.
async fn read_loop(
    rd: &mut Reader,
    mut buf: BytesMut,
    version: Version,
    silence: Option<Duration>,
    id: ConnId,
    shared: &Shared,
    closed: &Notify,
) -> String {
    let mut batch = Vec::new();
    loop {
        // What is buffered first: packets may have come with the CONNECT.
        let now = Instant::now().into_std();
        loop {
            match codec::read(&mut buf, Some(version), BROKER_MAX_PACKET) {
                Ok(Some(p)) => batch.push(p),
                Ok(None) => break,
                Err(why) => {
                    shared.feed(id, &mut batch, now);
                    shared.call(|e| e.bad(id, &why, now));
                    return format!("{why:?}");
                }
            }
        }
        if !batch.is_empty() {
            shared.feed(id, &mut batch, now);
        }
        let ready = async {
            match silence {
                Some(d) => timeout(d, rd.fill(&mut buf)).await.ok(),
                None => Some(rd.fill(&mut buf).await),
            }
        };
        let ready = tokio::select! {
            r = ready => r,
            () = closed.notified() => return "closed by the broker".into(),
        };
        match ready {
            None => return "keep-alive timeout".into(),
            Some(Err(e)) => return e.to_string(),
            Some(Ok((0, _))) => return "closed by the client".into(),
            // A full read: more is waiting. The writers go first, so that a fast
            // publisher cannot fill their queues while they wait for their turn.
            Some(Ok((_, true))) => tokio::task::yield_now().await,
            Some(Ok(_)) => {}
        }
    }
}

thread_local! {
    /// Where every connection of this thread reads into, before what it read is copied
    /// into a buffer of its size: a connection holds no read buffer while idle, and the
    /// heap is not left with holes of a fixed read size.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_CHUNK]);
}

/// Reads what is there without waiting and appends it to `buf`.
fn read_some(rd: &OwnedReadHalf, buf: &mut BytesMut) -> io::Result<usize> {
    SCRATCH.with_borrow_mut(|scratch| {
        let n = rd.try_read(scratch)?;
        buf.extend_from_slice(&scratch[..n]);
        Ok(n)
    })
}
