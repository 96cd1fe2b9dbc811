//! A room with many members, as a broker sees it: N clients CONNECT (MQTT 3.1.1, each
//! with a presence-like retained will) and SUBSCRIBE to one topic from one process, then
//! one more client publishes a message and the time until every member has it is
//! measured. Prints the time to join them all, the fan-out time, and (with `--pid`) the
//! broker's peak RSS.
//!
//!     cargo run --release --example roomload -- --port 1883 --members 10000 --pid PID
//!
//! Members connect at most `--parallel` at a time (a real crowd does not arrive in one
//! instant either); a member that is refused or closed is counted, never retried.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Semaphore};

struct Args {
    addr: SocketAddr,
    members: usize,
    parallel: usize,
    pid: Option<u32>,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:1883".parse().expect("an address"),
        members: 1000,
        parallel: 64,
        pid: None,
        timeout: Duration::from_secs(120),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |_| format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--port" => a.addr.set_port(value.parse().map_err(bad)?),
            "--members" => a.members = value.parse().map_err(bad)?,
            "--parallel" => a.parallel = value.parse().map_err(bad)?,
            "--pid" => a.pid = Some(value.parse().map_err(bad)?),
            "--timeout" => a.timeout = Duration::from_secs(value.parse().map_err(bad)?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

/// An MQTT packet: its first byte, the remaining length, the body.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let b = (len % 128) as u8;
        len /= 128;
        out.push(if len > 0 { b | 0x80 } else { b });
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// CONNECT (3.1.1, clean session, keep-alive 600 s) with a retained QoS 1 will.
fn connect(id: &str, will_topic: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02 | 0x04 | 0x08 | 0x20];
    body.extend_from_slice(&600u16.to_be_bytes());
    string(id, &mut body);
    string(will_topic, &mut body);
    string("", &mut body);
    packet(0x10, &body)
}

fn subscribe(topic: &str) -> Vec<u8> {
    let mut body = vec![0, 1];
    string(topic, &mut body);
    body.push(0);
    packet(0x82, &body)
}

fn publish(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    string(topic, &mut body);
    body.extend_from_slice(payload);
    packet(0x30, &body)
}

/// Reads until `bytes` holds a whole packet whose first byte has `kind` in its high
/// nibble (packets before it are skipped).
async fn wait_for(s: &mut TcpStream, kind: u8, buf: &mut Vec<u8>) -> std::io::Result<()> {
    loop {
        while let Some((first, total)) = frame(buf) {
            buf.drain(..total);
            if first >> 4 == kind {
                return Ok(());
            }
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The first byte and total size of the whole packet at the start of `buf`, if there is one.
fn frame(buf: &[u8]) -> Option<(u8, usize)> {
    let (mut len, mut shift) = (0usize, 0);
    for (i, b) in buf.iter().enumerate().skip(1).take(4) {
        len |= usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            let total = i + 1 + len;
            return (buf.len() >= total).then_some((buf[0], total));
        }
    }
    None
}

/// One member: join, say so, wait for the message, say so.
async fn member(i: usize, a: Arc<Shared>) {
    let joined = async {
        let _slot = a.slots.acquire().await.expect("open");
        let mut s = TcpStream::connect(a.addr).await?;
        s.set_nodelay(true)?;
        let id = format!("load-{}-{i}", std::process::id());
        let will = format!("mqttchat-presence/{}/{id}", a.topic);
        let mut buf = Vec::new();
        s.write_all(&connect(&id, &will)).await?;
        wait_for(&mut s, 2, &mut buf).await?; // CONNACK
        s.write_all(&subscribe(&a.topic)).await?;
        wait_for(&mut s, 9, &mut buf).await?; // SUBACK
        Ok::<_, std::io::Error>((s, buf))
    }
    .await;
    let Ok((mut s, mut buf)) = joined else {
        a.failed.fetch_add(1, Ordering::Relaxed);
        a.ready.wait().await;
        return;
    };
    a.ready.wait().await;
    if wait_for(&mut s, 3, &mut buf).await.is_ok() {
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
    slots: Semaphore,
    /// Every member and the publisher: all joined (or failed).
    ready: Barrier,
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
    let topic = format!("load/{}", std::process::id());
    let start = Instant::now();
    let shared = Arc::new(Shared {
        addr: a.addr,
        topic: topic.clone(),
        slots: Semaphore::new(a.parallel.max(1)),
        ready: Barrier::new(a.members + 1),
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
                "not all {} members joined within {:?}",
                a.members, a.timeout
            )
        })?;
    let joined = start.elapsed();
    let failed = shared.failed.load(Ordering::Relaxed);
    let mut p = TcpStream::connect(a.addr)
        .await
        .map_err(|e| e.to_string())?;
    p.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    p.write_all(&connect(
        &format!("load-pub-{}", std::process::id()),
        "load/will",
    ))
    .await
    .map_err(|e| e.to_string())?;
    wait_for(&mut p, 2, &mut buf)
        .await
        .map_err(|e| e.to_string())?;
    let sent = start.elapsed();
    p.write_all(&publish(&topic, b"hello, room"))
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
