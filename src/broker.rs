//! chat-broker: rumqttd behind a small front that serves MQTT 3.1.1 and 5 on one address.
//!
//! rumqttd runs one listener per protocol version (a 3.1.1 listener rejects MQTT 5 and
//! the other way round), logs bind failures inside its own threads, and has no shutdown
//! API. So the front binds the user's addresses itself (a bind error is an exit status,
//! not a log line), reads the protocol level from each client's CONNECT, and splices the
//! connection to rumqttd's internal 3.1.1 or 5 listener on loopback. The process ends on
//! SIGINT or SIGTERM; sessions and retained messages live in memory only.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::time::Duration;

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

use crate::cli::BrokerArgs;
use crate::error::Error;
use crate::signals::Signals;

/// Where chat-broker listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:1883";
/// Largest message the broker accepts.
const MAX_PAYLOAD: usize = 16 << 20;
/// How long a new connection may take to send its CONNECT.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

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
    // Bind everything before starting the engine: a taken port is exit 3, at once.
    let listeners = addrs
        .iter()
        .map(|a| {
            StdListener::bind(a)
                .map_err(|e| Error::Unreachable(format!("cannot listen on {a}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let internal = start_engine()?;
    // One thread for the front: it only copies bytes; rumqttd has threads of its own.
    crate::tool::runtime()?.block_on(serve(listeners, internal))
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

/// The engine's internal listeners, one per protocol version.
#[derive(Debug, Clone, Copy)]
struct Internal {
    v4: SocketAddr,
    v5: SocketAddr,
}

/// Starts rumqttd on two loopback addresses and waits until it listens on both.
///
/// rumqttd takes an address, not a socket, so the ports are picked by binding port 0 and
/// closing it again; another process may take one in between, and rumqttd only logs its
/// bind failure. So the listeners are checked to be this process's own, and on a clash
/// the engine is started again on other ports (the failed one's threads stay idle).
fn start_engine() -> Result<Internal, Error> {
    let mut last = String::new();
    for _ in 0..3 {
        let internal = Internal {
            v4: free_loopback_addr()?,
            v5: free_loopback_addr()?,
        };
        let mut broker = rumqttd::Broker::new(engine_config(internal));
        std::thread::Builder::new()
            .name("rumqttd".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    log::error!("the broker engine stopped: {e}");
                }
            })
            .map_err(|e| Error::Failed(format!("cannot start the broker engine: {e}")))?;
        match wait_listening(&[internal.v4, internal.v5]) {
            Ok(()) => return Ok(internal),
            Err(why) => last = why,
        }
    }
    Err(Error::Unreachable(format!(
        "the broker engine did not start: {last}"
    )))
}

/// Waits until this process listens on every address (at most 5 s).
fn wait_listening(addrs: &[SocketAddr]) -> Result<(), String> {
    let end = std::time::Instant::now() + Duration::from_secs(5);
    for &addr in addrs {
        while !crate::procnet::listens(std::process::id(), addr) {
            if std::time::Instant::now() > end {
                return Err(format!("it is not listening on {addr}"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    Ok(())
}

/// A free port on a random loopback address (all of 127.0.0.0/8 is loopback on Linux),
/// which makes a clash with servers on 127.0.0.1 unlikely to begin with.
fn free_loopback_addr() -> Result<SocketAddr, Error> {
    let mut b = [0u8; 3];
    let random = getrandom::fill(&mut b)
        .ok()
        .map(|()| std::net::Ipv4Addr::new(127, b[0], b[1], b[2].max(2)));
    let ips = random.into_iter().chain([std::net::Ipv4Addr::LOCALHOST]);
    let mut last = None;
    for ip in ips {
        match StdListener::bind((ip, 0)).and_then(|l| l.local_addr()) {
            Ok(addr) => return Ok(addr),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Unreachable(format!(
        "cannot reserve a loopback port: {}",
        last.map_or_else(String::new, |e| e.to_string())
    )))
}

/// rumqttd's configuration, built in code (its `Default` is all zeros).
fn engine_config(internal: Internal) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: CONNECT_WAIT.as_millis() as u16,
        max_payload_size: MAX_PAYLOAD,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = |name: &str, listen| ServerSettings {
        name: name.to_string(),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections: connections.clone(),
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_000,
            max_outgoing_packet_count: 200,
            // Messages live in an in-memory log per filter: 8 segments of 64 MiB at most.
            max_segment_size: 64 << 20,
            max_segment_count: 8,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([(
            "v4".to_string(),
            server("v4", internal.v4),
        )])),
        v5: Some(HashMap::from([(
            "v5".to_string(),
            server("v5", internal.v5),
        )])),
        ..Config::default()
    }
}

/// Accepts on every listener until SIGINT or SIGTERM.
async fn serve(listeners: Vec<StdListener>, internal: Internal) -> Result<(), Error> {
    let mut names = Vec::new();
    for l in listeners {
        l.set_nonblocking(true)
            .and_then(|()| l.local_addr())
            .map(|a| names.push(a.to_string()))
            .map_err(|e| Error::Unreachable(format!("cannot listen: {e}")))?;
        let l = TcpListener::from_std(l)
            .map_err(|e| Error::Unreachable(format!("cannot listen: {e}")))?;
        tokio::spawn(accept_loop(l, internal));
    }
    let mut signals = Signals::install()?;
    eprintln!(
        "chat-broker: listening on {} (MQTT 3.1.1 and 5)",
        names.join(", ")
    );
    // Stopped on purpose: status 0, not 130/143 (SPEC §6).
    signals.recv().await;
    log::info!("stopping");
    Ok(())
}

async fn accept_loop(listener: TcpListener, internal: Internal) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(splice(stream, peer, internal));
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                log::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads the client's CONNECT far enough to know its protocol level, then connects it
/// to the engine's listener for that version and copies bytes both ways.
async fn splice(mut client: TcpStream, peer: SocketAddr, internal: Internal) {
    let _ = client.set_nodelay(true);
    let mut head = Vec::with_capacity(32);
    let (level, client_id) = match timeout(CONNECT_WAIT, read_connect(&mut client, &mut head)).await
    {
        Ok(Ok(connect)) => connect,
        Ok(Err(e)) => {
            log::info!("{peer}: no valid CONNECT ({e}); closing");
            return;
        }
        Err(_) => {
            log::info!(
                "{peer}: no CONNECT within {}s; closing",
                CONNECT_WAIT.as_secs()
            );
            return;
        }
    };
    if client_id.iter().any(|b| b"+#/$".contains(b)) {
        // rumqttd 0.20 drops such a connection without a CONNACK, and panics (holding a
        // lock, so that no client of that version can connect again) when the same id
        // comes back: refuse it here with the proper reason code instead.
        log::info!(
            "{peer}: refused client id {:?}: it contains + # / or $",
            String::from_utf8_lossy(&client_id)
        );
        let connack: &[u8] = match level {
            5 => &[0x20, 3, 0, 0x85, 0], // client identifier not valid, no properties
            _ => &[0x20, 2, 0, 2],       // identifier rejected
        };
        let _ = client.write_all(connack).await;
        return;
    }
    let (target, version) = match level {
        5 => (internal.v5, "5"),
        _ => (internal.v4, "3.1.1"),
    };
    let started = Instant::now();
    let mut engine = match TcpStream::connect(target).await {
        Ok(s) => s,
        Err(e) => {
            log::error!("{peer}: cannot reach the broker engine: {e}");
            return;
        }
    };
    let _ = engine.set_nodelay(true);
    if engine.write_all(&head).await.is_err() {
        return;
    }
    log::info!("{peer} connected (MQTT {version})");
    let result = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok((up, down)) => {
            log::info!("{peer} disconnected after {secs:.1}s ({up} bytes in, {down} out)")
        }
        Err(e) => log::info!("{peer} disconnected after {secs:.1}s: {e}"),
    }
}

/// Largest CONNECT the front reads whole (a will or a long password makes it big).
const MAX_CONNECT: usize = 1 << 20;

/// Reads a whole CONNECT packet into `head`; returns its protocol level and client id.
async fn read_connect(s: &mut TcpStream, head: &mut Vec<u8>) -> io::Result<(u8, Vec<u8>)> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let level = read_protocol_level(s, head).await?;
    let (mut len, mut shift, mut at) = (0usize, 0, 1);
    loop {
        len |= usize::from(head[at] & 0x7f) << shift;
        at += 1;
        if head[at - 1] & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let total = at + len;
    if total > MAX_CONNECT {
        return Err(invalid("CONNECT too large"));
    }
    fill(s, head, total).await?;
    // Protocol name, level, flags (1) and keep-alive (2); MQTT 5 then has properties.
    let name_len = usize::from(u16::from_be_bytes([head[at], head[at + 1]]));
    let mut p = at + 2 + name_len + 1 + 1 + 2;
    if level == 5 {
        let (mut props, mut shift) = (0usize, 0);
        loop {
            let b = *head.get(p).ok_or_else(|| invalid("truncated CONNECT"))?;
            props |= usize::from(b & 0x7f) << shift;
            p += 1;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        p += props;
    }
    let id_len = head
        .get(p..p + 2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or_else(|| invalid("truncated CONNECT"))?;
    let id = head
        .get(p + 2..p + 2 + id_len)
        .ok_or_else(|| invalid("truncated CONNECT"))?;
    Ok((level, id.to_vec()))
}

/// Reads a CONNECT's fixed header, protocol name and level into `head`.
async fn read_protocol_level(s: &mut TcpStream, head: &mut Vec<u8>) -> io::Result<u8> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    // First byte, then the remaining length (1–4 bytes).
    fill(s, head, 2).await?;
    if head[0] != 0x10 {
        return Err(invalid("the first packet is not CONNECT"));
    }
    let mut at = 1;
    while head[at] & 0x80 != 0 {
        at += 1;
        if at > 4 {
            return Err(invalid("malformed remaining length"));
        }
        fill(s, head, at + 1).await?;
    }
    // Protocol name ("MQTT", or "MQIsdp" for 3.1), then the level byte.
    let name_at = at + 1;
    fill(s, head, name_at + 2).await?;
    let name_len = usize::from(u16::from_be_bytes([head[name_at], head[name_at + 1]]));
    if name_len > 6 {
        return Err(invalid("unknown protocol name"));
    }
    let level_at = name_at + 2 + name_len;
    fill(s, head, level_at + 1).await?;
    Ok(head[level_at])
}

/// Reads until `head` holds at least `n` bytes (never more than `n`: what follows the
/// CONNECT is the engine's to read).
async fn fill(s: &mut TcpStream, head: &mut Vec<u8>, n: usize) -> io::Result<()> {
    while head.len() < n {
        let mut chunk = [0u8; 4096];
        let want = (n - head.len()).min(chunk.len());
        let got = s.read(&mut chunk[..want]).await?;
        if got == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..got]);
    }
    Ok(())
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
