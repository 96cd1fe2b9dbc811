//! A room with many members, as a broker sees it: N clients CONNECT (MQTT 3.1.1, each
//! with a presence-like retained will) and SUBSCRIBE to one topic from one process, then
//! one more client publishes a message and the time until every member has it is
//! measured. Prints the time to join them all, the fan-out time, and (with `--pid`) the
//! broker's peak RSS.
//!
//!     cargo run --release --example roomload -- --port 1883 --members 10000 --pid PID
//!     cargo run --release --example roomload -- --broker mqtt://HOST:PORT --members 500
//!
//! `--port P` is short for `--broker mqtt://127.0.0.1:P` (plain TCP only).
//!
//! Members connect at most `--parallel` at a time (a real crowd does not arrive in one
//! instant either); a member that is refused (its CONNACK or its SUBACK) or closed is
//! counted, never retried.
//!
//! For a broker with an ACL: `--usernames PREFIX` logs member i in as PREFIXi (no
//! password: a broker without a password file believes the name), `--publisher NAME` the
//! publisher as NAME, and `--topic TOPIC` names the room (default: `load/PID`), so that
//! an ACL file written beforehand can grant the members read and the publisher write:
//!
//!     target/release/examples/roomload --port 1883 --members 1000 --topic rooms/shared \
//!         --usernames user --publisher publisher

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rumqttc::mqttbytes::{
    self, QoS,
    v4::{Connect, ConnectReturnCode, LastWill, Packet, Publish, Subscribe, SubscribeReasonCode},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Semaphore};

struct Args {
    addr: SocketAddr,
    members: usize,
    parallel: usize,
    pid: Option<u32>,
    timeout: Duration,
    topic: Option<String>,
    usernames: Option<String>,
    publisher: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:1883".parse().expect("an address"),
        members: 1000,
        parallel: 64,
        pid: None,
        timeout: Duration::from_secs(120),
        topic: None,
        usernames: None,
        publisher: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |_| format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--port" => a.addr.set_port(value.parse().map_err(bad)?),
            "--broker" => a.addr = broker_addr(&value)?,
            "--members" => a.members = value.parse().map_err(bad)?,
            "--parallel" => a.parallel = value.parse().map_err(bad)?,
            "--pid" => a.pid = Some(value.parse().map_err(bad)?),
            "--timeout" => a.timeout = Duration::from_secs(value.parse().map_err(bad)?),
            "--topic" => a.topic = Some(value),
            "--usernames" => a.usernames = Some(value),
            "--publisher" => a.publisher = Some(value),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

/// `mqtt://HOST:PORT`, `HOST:PORT` or `HOST` (port 1883), resolved.
fn broker_addr(url: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let rest = url.strip_prefix("mqtt://").unwrap_or(url);
    if rest.contains("://") {
        return Err(format!("{url}: only mqtt:// (plain TCP) is measured"));
    }
    let rest = rest.trim_end_matches('/');
    let with_port = match rest.rsplit_once(':') {
        Some((_, p)) if !p.contains(']') => rest.to_string(),
        _ => format!("{rest}:1883"),
    };
    let mut found = with_port
        .to_socket_addrs()
        .map_err(|e| format!("{url}: {e}"))?;
    found.next().ok_or(format!("{url}: no address"))
}

/// Encodes one packet (rumqttc's MQTT 3.1.1 writers).
fn encode(write: impl FnOnce(&mut BytesMut) -> Result<usize, mqttbytes::Error>) -> Vec<u8> {
    let mut out = BytesMut::new();
    write(&mut out).expect("a packet within MQTT's limits");
    out.to_vec()
}

/// CONNECT (3.1.1, clean session, keep-alive 600 s) with a retained QoS 1 will, and a
/// username without a password when `user` is given.
fn connect(id: &str, will_topic: &str, user: Option<&str>) -> Vec<u8> {
    let mut c = Connect::new(id);
    c.keep_alive = 600;
    c.last_will = Some(LastWill::new(will_topic, "", QoS::AtLeastOnce, true));
    if let Some(user) = user {
        c.set_login(user, "");
    }
    encode(|b| c.write(b))
}

/// A CONNACK that lets the client in; a SUBACK that grants every filter.
fn accepted(p: &Packet) -> std::io::Result<()> {
    let refused = match p {
        Packet::ConnAck(c) if c.code != ConnectReturnCode::Success => format!("{:?}", c.code),
        Packet::SubAck(s) if s.return_codes.contains(&SubscribeReasonCode::Failure) => {
            "SUBACK failure".into()
        }
        _ => return Ok(()),
    };
    Err(std::io::Error::other(format!("refused: {refused}")))
}

/// Reads until a whole packet of the kind `wanted` picks arrives (others are skipped);
/// a refusal in it is an error.
async fn wait_for(
    s: &mut TcpStream,
    buf: &mut BytesMut,
    wanted: fn(&Packet) -> bool,
) -> std::io::Result<()> {
    loop {
        match Packet::read(buf, 1 << 20) {
            Ok(p) if wanted(&p) => return accepted(&p),
            Ok(_) => continue,
            Err(mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => return Err(std::io::Error::other(format!("{e:?}"))),
        }
        if s.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// One member: join, say so, wait for the message, say so.
async fn member(i: usize, a: Arc<Shared>) {
    let joined = async {
        let _slot = a.slots.acquire().await.expect("open");
        let mut s = TcpStream::connect(a.addr).await?;
        s.set_nodelay(true)?;
        let id = format!("load-{}-{i}", std::process::id());
        let will = format!("mqttchat-presence/{}/{id}", a.topic);
        let user = a.usernames.as_ref().map(|prefix| format!("{prefix}{i}"));
        let mut buf = BytesMut::new();
        s.write_all(&connect(&id, &will, user.as_deref())).await?;
        wait_for(&mut s, &mut buf, |p| matches!(p, Packet::ConnAck(_))).await?;
        let mut sub = Subscribe::new(a.topic.as_str(), QoS::AtMostOnce);
        sub.pkid = 1; // 0 is not a packet id: mosquitto closes the connection
        s.write_all(&encode(|b| sub.write(b))).await?;
        wait_for(&mut s, &mut buf, |p| matches!(p, Packet::SubAck(_))).await?;
        Ok::<_, std::io::Error>((s, buf))
    }
    .await;
    let Ok((mut s, mut buf)) = joined else {
        a.failed.fetch_add(1, Ordering::Relaxed);
        a.ready.wait().await;
        return;
    };
    a.joined.fetch_add(1, Ordering::Relaxed);
    a.ready.wait().await;
    if wait_for(&mut s, &mut buf, |p| matches!(p, Packet::Publish(_)))
        .await
        .is_ok()
    {
        a.got.fetch_add(1, Ordering::Relaxed);
        a.last_ns
            .fetch_max(a.start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
    // Held open until the run ends.
    let _ = tokio::time::timeout(Duration::from_secs(3600), s.read(&mut [0u8; 1])).await;
}

struct Shared {
    addr: SocketAddr,
    topic: String,
    usernames: Option<String>,
    slots: Semaphore,
    /// Every member and the publisher: all joined (or failed).
    ready: Barrier,
    joined: AtomicU64,
    failed: AtomicU64,
    got: AtomicU64,
    start: Instant,
    last_ns: AtomicU64,
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn run(a: Args) -> Result<(), String> {
    let topic = (a.topic.clone()).unwrap_or_else(|| format!("load/{}", std::process::id()));
    let start = Instant::now();
    let shared = Arc::new(Shared {
        addr: a.addr,
        topic: topic.clone(),
        usernames: a.usernames.clone(),
        slots: Semaphore::new(a.parallel.max(1)),
        ready: Barrier::new(a.members + 1),
        joined: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        got: AtomicU64::new(0),
        start,
        last_ns: AtomicU64::new(0),
    });
    for i in 0..a.members {
        tokio::spawn(member(i, shared.clone()));
    }
    tokio::time::timeout(a.timeout, shared.ready.wait())
        .await
        .map_err(|_| {
            format!(
                "not all {} members joined within {:?} ({} joined, {} failed)",
                a.members,
                a.timeout,
                shared.joined.load(Ordering::Relaxed),
                shared.failed.load(Ordering::Relaxed)
            )
        })?;
    let joined = start.elapsed();
    let failed = shared.failed.load(Ordering::Relaxed);
    let mut p = TcpStream::connect(a.addr)
        .await
        .map_err(|e| e.to_string())?;
    p.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut buf = BytesMut::new();
    let id = format!("load-pub-{}", std::process::id());
    p.write_all(&connect(&id, "load/will", a.publisher.as_deref()))
        .await
        .map_err(|e| e.to_string())?;
    wait_for(&mut p, &mut buf, |p| matches!(p, Packet::ConnAck(_)))
        .await
        .map_err(|e| format!("the publisher: {e}"))?;
    let message = Publish::new(topic.as_str(), QoS::AtMostOnce, "hello, room");
    let sent = start.elapsed();
    p.write_all(&encode(|b| message.write(b)))
        .await
        .map_err(|e| e.to_string())?;
    let want = a.members as u64 - failed;
    let deadline = Instant::now() + a.timeout;
    while shared.got.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let got = shared.got.load(Ordering::Relaxed);
    let fanout = Duration::from_nanos(shared.last_ns.load(Ordering::Relaxed)).saturating_sub(sent);
    let rss = a.pid.and_then(peak_rss_kib);
    println!(
        "members {} joined {:.2} s (failed {failed}) fan-out {:.1} ms (got {got}/{want}) broker peak RSS {}",
        a.members,
        joined.as_secs_f64(),
        fanout.as_secs_f64() * 1000.0,
        rss.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    );
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("roomload: {e}");
            std::process::exit(2);
        }
    };
    mqttchat::tool::raise_open_files();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("roomload: {e}");
        std::process::exit(1);
    }
}
