//! chat-broker: the engine's driver. It listens (here), reads each client's packets and
//! hands them to the engine (`conn`), and writes what the engine answers (`hub`).
//!
//! The engine (`engine`) decides everything and does no I/O; it sits behind one mutex,
//! which every connection takes once per batch of packets it read. Each connection has a
//! reader and a writer task fed by a channel, so a client that reads slowly never holds up
//! the others. On SIGINT or SIGTERM it stops gracefully (see [`stop`]). With `--data-dir`,
//! the store (`store`) keeps what the engine records of its durable state, and the hub
//! holds back what depends on a record until it is on disk.

mod auth;
mod conn;
mod engine;
#[doc(hidden)]
pub mod fuzzing;
mod hub;
mod store;

use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::cli::BrokerArgs;
use crate::error::Error;
use crate::signals::Signals;
use engine::{Engine, Limits};
use hub::Shared;
use store::Store;

/// Open files kept for other than clients: the listeners, the process's own.
const RESERVED_FILES: u64 = 64;

use crate::defaults;

/// Runs the broker until SIGINT or SIGTERM.
pub fn run(args: BrokerArgs) -> Result<(), Error> {
    let wanted = match args.listen.is_empty() {
        true => vec![defaults::LISTEN.to_string()],
        false => args.listen.clone(),
    };
    let addrs = wanted
        .iter()
        .map(|a| parse_addr(a))
        .collect::<Result<Vec<_>, _>>()?;
    // Bind everything before serving: a taken port is exit 3, at once.
    let listeners = addrs
        .iter()
        .map(|a| StdListener::bind(a).map_err(|e| cannot_listen(a, &e)))
        .collect::<Result<Vec<_>, _>>()?;
    let files = crate::tool::raise_open_files();
    // One file per client, and a few for the listeners (and the process's own).
    let fit = match files {
        0 => usize::MAX,
        n => usize::try_from(n.saturating_sub(RESERVED_FILES).max(1)).unwrap_or(usize::MAX),
    };
    let max_connections =
        (args.max_connections).map_or(fit, |n| usize::try_from(n).unwrap_or(usize::MAX));
    log::info!("open files: up to {files}; at most {max_connections} clients at once");
    // A quarter of the memory by default, at least 64 MiB.
    let budget = (args.max_queued_bytes)
        .or_else(|| memory_total().map(|m| (m / 4).max(64 << 20)))
        .map_or(usize::MAX, |b| usize::try_from(b).unwrap_or(usize::MAX));
    log::info!("queues: at most {budget} bytes for all clients together");
    let limits = Limits {
        max_connections,
        max_queued_bytes: budget,
        max_queued: usize::try_from(args.max_queued_messages).unwrap_or(usize::MAX),
        persistent_expiry: args.persistent_client_expiration,
    };
    let mut engine = Engine::with_limits(limits);
    let store = match &args.data_dir {
        Some(dir) => Some(store::open(dir, &mut engine)?),
        None => None,
    };
    // One thread, as mosquitto: the engine is behind one lock anyway, and the tools of a
    // pipe need the other core. (The store's writer has a thread of its own.)
    crate::tool::runtime()?.block_on(serve(listeners, engine, store))
}

/// The machine's memory in bytes (`MemTotal` of /proc/meminfo), if it says.
fn memory_total() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
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
fn parse_addr(s: &str) -> Result<SocketAddr, Error> {
    let bad = |why: String| Error::Usage(format!("invalid --listen address '{s}': {why}"));
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

/// Accepts on every listener until SIGINT or SIGTERM.
async fn serve(
    listeners: Vec<StdListener>,
    engine: Engine,
    mut store: Option<Store>,
) -> Result<(), Error> {
    let journal = store.as_ref().map(Store::journal);
    let shared = Arc::new(Shared::new(engine, journal));
    // A store that cannot be written stops the broker: it must not acknowledge more.
    let (fail, mut failed) = tokio::sync::mpsc::unbounded_channel();
    if let Some(store) = &mut store {
        let sh = shared.clone();
        store.start(
            move |synced| sh.released(synced),
            move |why| drop(fail.send(why)),
        );
    }
    let mut names = Vec::new();
    let mut accepting = Vec::new();
    for l in listeners {
        l.set_nonblocking(true)
            .and_then(|()| l.local_addr())
            .map(|a| names.push(a.to_string()))
            .map_err(|e| Error::Unreachable(format!("cannot listen: {e}")))?;
        let l = TcpListener::from_std(l)
            .map_err(|e| Error::Unreachable(format!("cannot listen: {e}")))?;
        accepting.push(tokio::spawn(accept_loop(l, shared.clone())));
    }
    tokio::spawn(clock(shared.clone()));
    let mut signals = Signals::install()?;
    crate::tool::say(format_args!(
        "listening on {} (MQTT 3.1.1 and 5)",
        names.join(", ")
    ));
    // Stopped on purpose: status 0 (not 130 or 143, as for a tool a signal interrupts).
    let broken = tokio::select! {
        _ = signals.recv() => None,
        why = failed.recv() => why,
    };
    stop(&shared, accepting, &mut signals).await;
    if let Some(store) = &mut store {
        store.close();
    }
    match broken {
        None => Ok(()),
        Some(why) => Err(Error::Failed(why)),
    }
}

/// How long a stopping broker gives its clients to take what was queued for them.
const FLUSH_ON_STOP: Duration = Duration::from_secs(3);

/// A graceful stop: no new connection is accepted, every client is told (MQTT 5:
/// DISCONNECT 0x8B) and its connection closed once what was queued for it is written, for
/// at most [`FLUSH_ON_STOP`]; a second signal stops at once.
async fn stop(shared: &Shared, accepting: Vec<tokio::task::JoinHandle<()>>, signals: &mut Signals) {
    for a in &accepting {
        a.abort();
    }
    log::info!(
        "stopping: telling the clients, writing what is queued for them (at most {} s)",
        FLUSH_ON_STOP.as_secs()
    );
    shared.shutdown();
    tokio::select! {
        () = shared.flushed() => {}
        () = tokio::time::sleep(FLUSH_ON_STOP) => {
            log::warn!("stopping: some clients did not take what was queued for them in time");
        }
        _ = signals.recv() => log::info!("stopping at once"),
    }
}

/// Gives the engine the time once a second (delayed wills, expired sessions).
async fn clock(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        shared.call(|e| e.tick(Instant::now()));
        shared.compact();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(conn::client(stream, peer, shared.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                log::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(parse_addr("127.0.0.1:1883").unwrap().port(), 1883);
        assert!(parse_addr("[::1]:0").unwrap().is_ipv6());
        assert_eq!(parse_addr("localhost:1999").unwrap().port(), 1999);
        for bad in ["1883", "127.0.0.1", "127.0.0.1:99999", "", ":1883", ":x"] {
            assert!(matches!(parse_addr(bad), Err(Error::Usage(_))), "{bad}");
        }
        let no_host = parse_addr(":1883").unwrap_err().to_string();
        assert!(
            no_host.contains("give the host too: 127.0.0.1:1883"),
            "{no_host}"
        );
    }
}
