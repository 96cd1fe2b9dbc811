//! chat-broker: rumqttd behind a small front that serves MQTT 3.1.1 and 5 on one address.
//!
//! rumqttd runs one listener per protocol version (a 3.1.1 listener rejects MQTT 5 and
//! the other way round), logs bind failures inside its own threads, and has no shutdown
//! API. So the front binds the user's addresses itself (a bind error is an exit status,
//! not a log line), reads the protocol level from each client's CONNECT, and splices the
//! connection to rumqttd's internal 3.1.1 or 5 listener on loopback. The process ends on
//! SIGINT or SIGTERM; sessions and retained messages live in memory only.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::mqttbytes::{self, v4};
use rumqttc::v5::mqttbytes::v5;
use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

use crate::cli::BrokerArgs;
use crate::error::Error;
use crate::signals::Signals;

/// Where chat-broker listens unless told otherwise (defined with the option).
pub use crate::cli::DEFAULT_LISTEN;
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
    let files = crate::tool::raise_open_files();
    log::info!(
        "open files: up to {files}, about {} clients",
        files / FILES_PER_CLIENT
    );
    let internal = start_engine()?;
    // One thread for the front: it only copies bytes; rumqttd has threads of its own.
    crate::tool::runtime()?.block_on(serve(listeners, internal))
}

/// File descriptors a client holds: its connection, and both ends of the hop from the
/// front to the engine.
const FILES_PER_CLIENT: u64 = 3;

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

/// The engine's internal listeners, several per protocol version.
#[derive(Debug, Clone, Copy)]
struct Internal {
    /// The 3.1.1 listeners, then the 5 ones.
    addrs: [SocketAddr; 2 * LANES],
}

/// rumqttd serves each listener on one thread, and its accept loop sleeps for a timer
/// tick (a millisecond) after every connection: a crowd joins through several lanes. A
/// client id keeps its lane: rumqttd reuses connection ids, so an old connection's
/// goodbye that reached it after the new CONNECT from another thread could end the new.
const LANES: usize = 4;

fn lane_of(client_id: &str) -> usize {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(client_id) as usize % LANES
}

/// Starts rumqttd on loopback addresses and waits until it listens on all of them.
///
/// rumqttd takes an address, not a socket, so the ports are picked by binding port 0 and
/// closing it again; another process may take one in between, and rumqttd only logs its
/// bind failure. So the listeners are checked to be this process's own, and on a clash
/// the engine is started again on other ports (the failed one's threads stay idle).
fn start_engine() -> Result<Internal, Error> {
    let mut last = String::new();
    for _ in 0..3 {
        let mut addrs = [free_loopback_addr()?; 2 * LANES];
        for a in &mut addrs[1..] {
            *a = free_loopback_addr()?;
        }
        let internal = Internal { addrs };
        let mut broker = rumqttd::Broker::new(engine_config(internal));
        std::thread::Builder::new()
            .name("rumqttd".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    log::error!("the broker engine stopped: {e}");
                }
            })
            .map_err(|e| Error::Failed(format!("cannot start the broker engine: {e}")))?;
        match wait_listening(&internal.addrs) {
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
    let server = |name: String, listen| ServerSettings {
        name,
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections: connections.clone(),
    };
    let lanes = |version: &str, addrs: &[SocketAddr]| {
        let names = (0..LANES).map(|i| format!("{version}-{i}"));
        let servers = names.zip(addrs).map(|(n, &a)| (n.clone(), server(n, a)));
        Some(servers.collect())
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
        v4: lanes("v4", &internal.addrs[..LANES]),
        v5: lanes("v5", &internal.addrs[LANES..]),
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
    crate::tool::say(format_args!(
        "listening on {} (MQTT 3.1.1 and 5)",
        names.join(", ")
    ));
    // Stopped on purpose: status 0 (not 130 or 143, as for a tool a signal interrupts).
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

/// Reads the client's CONNECT, then connects it to the engine's listener for its protocol
/// version and copies bytes both ways.
async fn splice(mut client: TcpStream, peer: SocketAddr, internal: Internal) {
    let _ = client.set_nodelay(true);
    let mut head = Vec::with_capacity(32);
    let Some(hello) = await_connect(&mut client, &mut head, peer).await else {
        return;
    };
    if hello.client_id.contains(['+', '#', '/', '$']) {
        refuse_client_id(&mut client, peer, &hello).await;
        return;
    }
    let lane = lane_of(&hello.client_id);
    let (target, version) = match hello.level {
        5 => (internal.addrs[LANES + lane], "5"),
        _ => (internal.addrs[lane], "3.1.1"),
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

/// What the front needs from a CONNECT.
struct Hello {
    /// The protocol level: 4 (MQTT 3.1.1) or 5.
    level: u8,
    client_id: String,
}

/// The client's CONNECT, read whole into `head` within [`CONNECT_WAIT`]; None (said at
/// `-v`) when there is no valid one.
async fn await_connect(
    client: &mut TcpStream,
    head: &mut Vec<u8>,
    peer: SocketAddr,
) -> Option<Hello> {
    match timeout(CONNECT_WAIT, read_connect(client, head)).await {
        Ok(Ok(hello)) => Some(hello),
        Ok(Err(e)) => {
            log::info!("{peer}: no valid CONNECT ({e}); closing");
            None
        }
        Err(_) => {
            log::info!(
                "{peer}: no CONNECT within {}s; closing",
                CONNECT_WAIT.as_secs()
            );
            None
        }
    }
}

/// rumqttd 0.20 drops a connection whose client id has `+ # / $` without a CONNACK, and
/// panics (holding a lock, so that no client of that version can connect again) when the
/// same id comes back: the front refuses it with the proper reason code instead.
async fn refuse_client_id(client: &mut TcpStream, peer: SocketAddr, hello: &Hello) {
    log::info!(
        "{peer}: refused client id {:?}: it contains + # / or $",
        hello.client_id
    );
    let connack: &[u8] = match hello.level {
        5 => &[0x20, 3, 0, 0x85, 0], // client identifier not valid, no properties
        _ => &[0x20, 2, 0, 2],       // identifier rejected
    };
    let _ = client.write_all(connack).await;
}

/// Largest CONNECT the front reads whole (a will or a long password makes it big).
const MAX_CONNECT: usize = 1 << 20;

fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// Reads a whole CONNECT packet into `head` (and not a byte more: what follows is the
/// engine's to read) and parses it.
async fn read_connect(s: &mut TcpStream, head: &mut Vec<u8>) -> io::Result<Hello> {
    fill(s, head, 2).await?;
    if head[0] != 0x10 {
        return Err(invalid("the first packet is not CONNECT"));
    }
    loop {
        // rumqttc frames the packet: it says how many bytes are missing, one at a time
        // while the remaining length is still coming in.
        let missing = match mqttbytes::check(head.iter(), MAX_CONNECT) {
            Ok(_) => break,
            Err(mqttbytes::Error::InsufficientBytes(n)) => n,
            Err(mqttbytes::Error::PayloadSizeLimitExceeded(_)) => {
                return Err(invalid("CONNECT too large"));
            }
            Err(e) => return Err(invalid(e.to_string())),
        };
        if head.len() + missing > MAX_CONNECT {
            return Err(invalid("CONNECT too large"));
        }
        fill(s, head, head.len() + missing).await?;
    }
    parse_connect(head).map_err(invalid)
}

/// The protocol level and client id of a whole CONNECT packet, read by rumqttc's
/// decoders: the MQTT 5 one first, then, for another level, the 3.1.1 one (which would
/// also take a level-5 CONNECT, without its properties). A CONNECT neither can read is
/// one the engine could not read either.
fn parse_connect(frame: &[u8]) -> Result<Hello, String> {
    let bytes = Bytes::copy_from_slice(frame);
    let header = v5::check(frame.iter(), None).map_err(|e| e.to_string())?;
    match v5::Connect::read(header, bytes.clone()) {
        Ok((connect, _will, _login)) => Ok(Hello {
            level: 5,
            client_id: connect.client_id,
        }),
        Err(rumqttc::v5::mqttbytes::Error::InvalidProtocolLevel(_)) => {
            let header = mqttbytes::check(frame.iter(), frame.len()).map_err(|e| e.to_string())?;
            let connect = v4::Connect::read(header, bytes).map_err(|e| e.to_string())?;
            Ok(Hello {
                level: 4,
                client_id: connect.client_id,
            })
        }
        Err(e) => Err(e.to_string()),
    }
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
    use crate::wire::{ConnectSpec, Login, Secret, Version, Will, encode_connect};

    #[test]
    fn addresses() {
        assert_eq!(parse_addr("127.0.0.1:1883").unwrap().port(), 1883);
        assert!(parse_addr("[::1]:0").unwrap().is_ipv6());
        assert_eq!(parse_addr("localhost:1999").unwrap().port(), 1999);
        for bad in ["1883", "127.0.0.1", "127.0.0.1:99999", ""] {
            assert!(matches!(parse_addr(bad), Err(Error::Usage(_))), "{bad}");
        }
    }

    fn connect_packet(version: Version, client_id: &str) -> Vec<u8> {
        let spec = ConnectSpec {
            client_id: client_id.into(),
            keepalive: 30,
            clean_start: true,
            session_expiry: Some(60),
            max_packet_in: 1000,
            login: Some(Login {
                username: "u".into(),
                password: Some(Secret::new("p".into())),
            }),
            will: Some(Will {
                topic: "w".into(),
                payload: vec![b'x'; 300],
                qos: 1,
                retain: true,
            }),
        };
        let mut buf = bytes::BytesMut::new();
        encode_connect(version, &spec, &mut buf);
        buf.to_vec()
    }

    #[test]
    fn connects_of_both_versions_give_their_level_and_client_id() {
        for (version, level) in [(Version::V311, 4), (Version::V5, 5)] {
            let hello = parse_connect(&connect_packet(version, "a/b")).unwrap();
            assert_eq!((hello.level, hello.client_id.as_str()), (level, "a/b"));
        }
        // MQTT 3.1, which neither the engine nor rumqttc reads.
        let mqisdp = b"\x10\x0f\0\x06MQIsdp\x03\x02\0\x3c\0\x01x";
        assert!(parse_connect(mqisdp).is_err());
        let mut level_3 = connect_packet(Version::V311, "x");
        // Type, two bytes of remaining length (the will makes it over 127), "MQTT", level.
        assert_eq!((&level_3[5..9], level_3[9]), (&b"MQTT"[..], 4));
        level_3[9] = 3;
        assert!(parse_connect(&level_3).is_err());
        assert!(parse_connect(&[0x10, 0]).is_err());
    }

    /// The CONNECT is read whole, a byte at a time or not, and not a byte past it.
    #[test]
    fn the_connect_is_read_whole_and_no_further() {
        let rt = crate::tool::runtime().unwrap();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            for version in [Version::V311, Version::V5] {
                let connect = connect_packet(version, "id");
                let mut sent = connect.clone();
                sent.extend_from_slice(&[0xC0, 0]); // PINGREQ: the engine's to read
                let writer = tokio::spawn(async move {
                    let mut c = TcpStream::connect(addr).await.unwrap();
                    c.set_nodelay(true).unwrap();
                    for b in sent {
                        c.write_all(&[b]).await.unwrap();
                        tokio::task::yield_now().await;
                    }
                    c
                });
                let (mut server, _) = listener.accept().await.unwrap();
                let mut head = Vec::new();
                let hello = read_connect(&mut server, &mut head).await.unwrap();
                assert_eq!(hello.client_id, "id");
                assert_eq!(head, connect);
                let _client = writer.await.unwrap();
                let mut rest = [0u8; 2];
                server.read_exact(&mut rest).await.unwrap();
                assert_eq!(rest, [0xC0, 0]);
            }
        });
    }

    #[test]
    fn oversized_and_malformed_connects_are_refused_before_reading_them() {
        let rt = crate::tool::runtime().unwrap();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let cases: [(&[u8], &str); 3] = [
                (&[0x10, 0xff, 0xff, 0x7f], "CONNECT too large"),
                (
                    &[0x10, 0xff, 0xff, 0xff, 0xff],
                    "Malformed remaining length",
                ),
                (&[0x30, 0], "the first packet is not CONNECT"),
            ];
            for (bytes, why) in cases {
                let mut c = TcpStream::connect(addr).await.unwrap();
                c.write_all(bytes).await.unwrap();
                let (mut server, _) = listener.accept().await.unwrap();
                let err = read_connect(&mut server, &mut Vec::new())
                    .await
                    .err()
                    .unwrap();
                assert_eq!(err.to_string(), why);
            }
        });
    }
}
