//! chat-broker: the engine's driver. It listens, reads each client's packets and hands
//! them to the engine, and writes what the engine answers.
//!
//! The engine (`engine`) decides everything and does no I/O; it sits behind one mutex,
//! which every connection takes once per batch of packets it read. Each connection has a
//! reader (this module's `client`) and a writer task fed by a channel, so a client that
//! reads slowly never holds up the others. The process ends on SIGINT or SIGTERM;
//! sessions and retained messages live in memory only.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, timeout};

use crate::cli::BrokerArgs;
use crate::engine::{Action, ConnId, Engine, In, MAX_PACKET, Version, codec};
use crate::error::Error;
use crate::signals::Signals;

/// Where chat-broker listens unless told otherwise (defined with the option).
pub use crate::cli::DEFAULT_LISTEN;
/// How long a new connection may take to send its CONNECT.
const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// How much a connection reads at a time.
const READ_CHUNK: usize = 64 << 10;
/// How much a writer gathers into one write.
const WRITE_BATCH: usize = 64 << 10;

/// Runs the broker until SIGINT or SIGTERM.
pub fn run(args: BrokerArgs) -> Result<(), Error> {
    let wanted = match args.listen.is_empty() {
        true => vec![DEFAULT_LISTEN.to_string()],
        false => args.listen.clone(),
    };
    let addrs = wanted
        .iter()
        .map(|a| parse_addr(a))
        .collect::<Result<Vec<_>, _>>()?;
    // Bind everything before serving: a taken port is exit 3, at once.
    let listeners = addrs
        .iter()
        .map(|a| {
            StdListener::bind(a)
                .map_err(|e| Error::Unreachable(format!("cannot listen on {a}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let files = crate::tool::raise_open_files();
    log::info!("open files: up to {files}, about {files} clients");
    // One thread, as mosquitto: the engine is behind one lock anyway, and the tools of a
    // pipe need the other core.
    crate::tool::runtime()?.block_on(serve(listeners))
}

/// `HOST:PORT` (a name is resolved; IPv6 in brackets); every problem is a usage error.
fn parse_addr(s: &str) -> Result<SocketAddr, Error> {
    let bad = |why: String| Error::Usage(format!("invalid --listen address '{s}': {why}"));
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if !s.contains(':') {
        return Err(bad("expected HOST:PORT, e.g. 127.0.0.1:1883".into()));
    }
    let mut found = s.to_socket_addrs().map_err(|e| bad(e.to_string()))?;
    found
        .next()
        .ok_or_else(|| bad("the name resolves to no address".into()))
}

/// What a connection's writer is told.
enum Out {
    Bytes(Bytes),
    /// Write what came before, then close.
    Close,
}

/// The engine and the way to each connection's writer.
struct Hub {
    engine: Engine,
    writers: HashMap<ConnId, mpsc::UnboundedSender<Out>>,
}

struct Shared {
    hub: Mutex<Hub>,
    next: AtomicU64,
}

impl Shared {
    /// Calls the engine, then hands its actions to the writers.
    fn call(&self, f: impl FnOnce(&mut Engine)) {
        let mut hub = self.hub.lock().unwrap_or_else(PoisonError::into_inner);
        let Hub { engine, writers } = &mut *hub;
        f(engine);
        for a in engine.actions() {
            match a {
                Action::Send(c, b) => {
                    if let Some(w) = writers.get(&c) {
                        let _ = w.send(Out::Bytes(b));
                    }
                }
                Action::Close(c) => {
                    if let Some(w) = writers.remove(&c) {
                        let _ = w.send(Out::Close);
                    }
                }
            }
        }
    }

    fn add_writer(&self, id: ConnId, w: mpsc::UnboundedSender<Out>) {
        let mut hub = self.hub.lock().unwrap_or_else(PoisonError::into_inner);
        hub.writers.insert(id, w);
    }

    /// The connection ended: the engine hears of it (unless it ended it), the writer
    /// finishes what it has.
    fn gone(&self, id: ConnId) {
        self.call(|e| e.lost(id, Instant::now().into_std()));
        let mut hub = self.hub.lock().unwrap_or_else(PoisonError::into_inner);
        hub.writers.remove(&id);
    }
}

/// Accepts on every listener until SIGINT or SIGTERM.
async fn serve(listeners: Vec<StdListener>) -> Result<(), Error> {
    let shared = Arc::new(Shared {
        hub: Mutex::new(Hub {
            engine: Engine::new(),
            writers: HashMap::new(),
        }),
        next: AtomicU64::new(1),
    });
    let mut names = Vec::new();
    for l in listeners {
        l.set_nonblocking(true)
            .and_then(|()| l.local_addr())
            .map(|a| names.push(a.to_string()))
            .map_err(|e| Error::Unreachable(format!("cannot listen: {e}")))?;
        let l = TcpListener::from_std(l)
            .map_err(|e| Error::Unreachable(format!("cannot listen: {e}")))?;
        tokio::spawn(accept_loop(l, shared.clone()));
    }
    tokio::spawn(clock(shared.clone()));
    let mut signals = Signals::install()?;
    crate::tool::say(format_args!(
        "listening on {} (MQTT 3.1.1 and 5)",
        names.join(", ")
    ));
    // Stopped on purpose: status 0 (not 130 or 143, as for a tool a signal interrupts).
    signals.recv().await;
    log::info!("stopping");
    Ok(())
}

/// Gives the engine the time once a second (delayed wills, expired sessions).
async fn clock(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        shared.call(|e| e.tick(Instant::now().into_std()));
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(client(stream, peer, shared.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                log::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection: its CONNECT, then its packets until it ends.
async fn client(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
    let mut buf = BytesMut::new();
    let hello = match timeout(CONNECT_WAIT, first_packet(&mut rd, &mut buf)).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(why)) => return log::info!("{peer}: no valid CONNECT ({why}); closing"),
        Err(_) => {
            let secs = CONNECT_WAIT.as_secs();
            return log::info!("{peer}: no CONNECT within {secs}s; closing");
        }
    };
    let In::Connect(h) = &hello else {
        return;
    };
    let (version, keep_alive) = (h.version, h.keep_alive);
    let id = shared.next.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::unbounded_channel();
    let closed = Arc::new(Notify::new());
    shared.add_writer(id, tx);
    let writer = tokio::spawn(write_loop(wr, rx, closed.clone()));
    let started = Instant::now();
    shared.call(|e| e.handle(id, hello, started.into_std()));
    let name = match version {
        Version::V4 => "3.1.1",
        Version::V5 => "5",
    };
    log::info!("{peer} connected (MQTT {name})");
    // A client silent for one and a half keep-alive periods is gone (MQTT's rule).
    let silence = (keep_alive > 0).then(|| Duration::from_millis(keep_alive as u64 * 1500));
    let ended = read_loop(&mut rd, buf, version, silence, id, &shared, &closed).await;
    shared.gone(id);
    let _ = writer.await;
    let secs = started.elapsed().as_secs_f64();
    log::info!("{peer} disconnected after {secs:.1}s ({ended})");
}

/// Reads until `buf` holds the first packet, which must be a CONNECT.
async fn first_packet(rd: &mut OwnedReadHalf, buf: &mut BytesMut) -> io::Result<In> {
    loop {
        rd.readable().await?;
        match read_some(rd, buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
        match codec::read(buf, None, MAX_PACKET) {
            Ok(Some(p @ In::Connect(_))) => return Ok(p),
            Ok(Some(_)) => return Err(invalid("the first packet is not CONNECT")),
            Ok(None) => {}
            Err(why) => return Err(invalid(&format!("{why:?}"))),
        }
    }
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

/// Reads packets and hands each batch to the engine; says how the connection ended.
async fn read_loop(
    rd: &mut OwnedReadHalf,
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
            match codec::read(&mut buf, Some(version), MAX_PACKET) {
                Ok(Some(p)) => batch.push(p),
                Ok(None) => break,
                Err(why) => {
                    shared.call(|e| {
                        batch.drain(..).for_each(|p| e.handle(id, p, now));
                        e.bad(id, &why, now)
                    });
                    return format!("{why:?}");
                }
            }
        }
        if !batch.is_empty() {
            shared.call(|e| batch.drain(..).for_each(|p| e.handle(id, p, now)));
        }
        let ready = async {
            match silence {
                Some(d) => timeout(d, rd.readable()).await.ok(),
                None => Some(rd.readable().await),
            }
        };
        let ready = tokio::select! {
            r = ready => r,
            () = closed.notified() => return "closed by the broker".into(),
        };
        match ready {
            None => return "keep-alive timeout".into(),
            Some(Err(e)) => return e.to_string(),
            Some(Ok(())) => {}
        }
        match read_some(rd, &mut buf) {
            Ok(0) => return "closed by the client".into(),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return e.to_string(),
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

/// Writes what the engine sends, gathering what is waiting into one write.
async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Out>,
    closed: Arc<Notify>,
) {
    let mut batch = Vec::new();
    let mut close = false;
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(out) = next.take() {
            match out {
                Out::Bytes(b) if batch.is_empty() && rx.is_empty() => {
                    // The common case of one packet: written without a copy.
                    if wr.write_all(&b).await.is_err() {
                        return closed.notify_one();
                    }
                }
                Out::Bytes(b) => batch.extend_from_slice(&b),
                Out::Close => close = true,
            }
            if !close && batch.len() < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() && wr.write_all(&batch).await.is_err() {
            break;
        }
        batch = Vec::new();
        if close {
            let _ = wr.shutdown().await;
            break;
        }
    }
    closed.notify_one();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(parse_addr("127.0.0.1:1883").unwrap().port(), 1883);
        assert!(parse_addr("[::1]:0").unwrap().is_ipv6());
        assert_eq!(parse_addr("localhost:1999").unwrap().port(), 1999);
        for bad in ["1883", "127.0.0.1", "127.0.0.1:99999", ""] {
            assert!(matches!(parse_addr(bad), Err(Error::Usage(_))), "{bad}");
        }
    }
}
