//! Churn on a broker, as a network fuzzer's traffic makes it: clients that connect (half
//! of them with a persistent session under a fresh id, so sessions pile up), subscribe to
//! a wildcard, publish 0 to `--publishes` (20) messages of up to 2,000 bytes at QoS 0–2
//! (at `--rate` connections a second, or as fast as they go), a third of the time
//! send mangled bytes (noise, a PUBLISH with a broken remaining length, a second CONNECT),
//! then disconnect or just drop the socket, never reading what the broker sends after the
//! CONNACK. It shows whether the broker's memory stays within its limits (with `--pid`,
//! its RSS now and at peak) and whether a well-behaved client is still served meanwhile:
//! every `--probe-every` seconds a probe subscribes, publishes one QoS 1 message to itself
//! and times the round trip to both its PUBACK and its delivery.
//!
//!     cargo build --release --examples
//!     target/release/chat-broker -l 127.0.0.1:1890 &
//!     target/release/examples/churn --port 1890 --pid $! --seconds 120 --rate 500 --publishes 2
//!
//! Every connection tried is counted; it is refused when TCP or the CONNACK refuses it, or
//! no CONNACK comes within 2 s. A write that takes over 1 s (the broker stopped reading)
//! ends that connection, and is no failure. As the broker's answers are never read, the
//! close resets the connection, whether a DISCONNECT went before it or not.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;

/// Churns an MQTT broker on 127.0.0.1 with fuzzer-like clients and probes it meanwhile.
#[derive(Parser)]
#[command(name = "churn")]
struct Args {
    /// The broker's port on 127.0.0.1 (loopback only)
    #[arg(long)]
    port: u16,
    /// How long to churn, in seconds
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Worker threads, each with one connection at a time
    #[arg(long, default_value_t = 4)]
    threads: u64,
    /// Seed of the random choices (worker i uses seed + i)
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds from one probe by a well-behaved client to the next
    #[arg(long, default_value_t = 2)]
    probe_every: u64,
    /// The broker's process id: its RSS is reported every 10 s and at the end
    #[arg(long)]
    pid: Option<u32>,
    /// Connections per second, all workers together (0: as fast as they go)
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Most PUBLISH packets one connection sends (each sends 0 to this many)
    #[arg(long, default_value_t = 20)]
    publishes: u64,
}

const FILTERS: [&str; 5] = ["#", "churn/#", "churn/+", "+/x", "churn/+/y"];
const PROBE_TOPIC: &str = "probe/churn";
const DISCONNECT: [u8; 2] = [0xe0, 0x00];

/// xorshift64*: small, fast, and the same run for the same seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Spread nearby seeds apart; the state must never be 0.
        Rng(seed.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// Appends `lo..=hi` random bytes.
    fn bytes(&mut self, lo: u64, hi: u64, out: &mut Vec<u8>) {
        let end = out.len() + self.range(lo, hi) as usize;
        while out.len() < end {
            let word = self.next().to_le_bytes();
            out.extend_from_slice(&word[..(end - out.len()).min(8)]);
        }
    }
}

/// MQTT's remaining length: 7 bits a byte, low bits first, the high bit for "more".
fn varint(mut len: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        out.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            return;
        }
    }
}

/// A UTF-8 string (or binary data) after its u16 length.
fn mqtt_str(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    varint(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// CONNECT: MQTT 3.1.1 ("MQTT", level 4), keep-alive 30 s.
fn connect_packet(id: &str, clean: bool) -> Vec<u8> {
    let mut body = b"\0\x04MQTT\x04".to_vec();
    body.extend_from_slice(&[if clean { 0x02 } else { 0 }, 0, 30]);
    mqtt_str(id.as_bytes(), &mut body);
    packet(0x10, &body)
}

fn subscribe_packet(pkid: u16, filter: &str, qos: u8) -> Vec<u8> {
    let mut body = pkid.to_be_bytes().to_vec();
    mqtt_str(filter.as_bytes(), &mut body);
    body.push(qos);
    packet(0x82, &body)
}

/// The body of a PUBLISH: topic, packet id (QoS 1 and 2), payload.
fn publish_body(topic: &str, qos: u8, pkid: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(topic.len() + payload.len() + 4);
    mqtt_str(topic.as_bytes(), &mut body);
    if qos > 0 {
        body.extend_from_slice(&pkid.to_be_bytes());
    }
    body.extend_from_slice(payload);
    body
}

/// What a fuzzer sends that a broker must survive: noise, a PUBLISH whose remaining length
/// claims more than follows (up to MQTT's most, 256 MiB) or takes five bytes (four at
/// most), or a second CONNECT.
fn mangled(rng: &mut Rng, connect: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match rng.range(0, 2) {
        0 => rng.bytes(1, 64, &mut out),
        1 => {
            let mut payload = Vec::new();
            rng.bytes(10, 2000, &mut payload);
            let body = publish_body("churn/mangled", 0, 0, &payload);
            out.push(0x30);
            match rng.range(0, 2) {
                0 => varint(body.len() + rng.range(1, 100_000) as usize, &mut out),
                1 => varint(268_435_455, &mut out),
                _ => out.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x7f]),
            }
            out.extend_from_slice(&body);
        }
        _ => out.extend_from_slice(connect),
    }
    out
}

/// Connects and has the connection accepted; `None` when refused or unanswered.
fn open(addr: SocketAddr, connect: &[u8]) -> Option<TcpStream> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_nodelay(true).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    // A broker that stops reading must not hold a worker for ever.
    s.set_write_timeout(Some(Duration::from_secs(1))).ok()?;
    s.write_all(connect).ok()?;
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).ok()?;
    (connack[..2] == [0x20, 2] && connack[3] == 0).then_some(s)
}

/// Everything after the CONNACK; an error (a write timed out, the broker closed) ends it.
fn traffic(s: &mut TcpStream, rng: &mut Rng, connect: &[u8], most: u64) -> io::Result<()> {
    let filter = FILTERS[rng.range(0, FILTERS.len() as u64 - 1) as usize];
    s.write_all(&subscribe_packet(1, filter, rng.range(0, 2) as u8))?;
    let mut payload = Vec::with_capacity(2000);
    for pkid in 1..=rng.range(0, most) as u16 {
        let (topic, qos) = (format!("churn/{}", rng.range(0, 99)), rng.range(0, 2) as u8);
        payload.clear();
        rng.bytes(10, 2000, &mut payload);
        let body = publish_body(&topic, qos, pkid, &payload);
        s.write_all(&packet(0x30 | qos << 1, &body))?;
    }
    if rng.range(0, 2) == 0 {
        s.write_all(&mangled(rng, connect))?;
    }
    if rng.coin() {
        s.write_all(&DISCONNECT)?;
    }
    Ok(())
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    connections: AtomicU64,
    refused: AtomicU64,
    /// The round trips of the probes that succeeded, and how many failed.
    probes: Mutex<(Vec<Duration>, u64)>,
}

fn worker(addr: SocketAddr, seed: u64, pace: Option<Duration>, most: u64, shared: &Shared) {
    let mut rng = Rng::new(seed);
    let mut next = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        if let Some(every) = pace {
            next += every;
            thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let id = format!("churn-{:016x}", rng.next());
        let connect = connect_packet(&id, rng.coin());
        if let Some(mut s) = open(addr, &connect) {
            // However it ends, the socket is dropped here: closed, or reset.
            let _ = traffic(&mut s, &mut rng, &connect, most);
        } else {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            // A broker that is down refuses at once: do not spin on it.
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// One packet (first byte, body), read within `deadline` (give or take a read).
fn read_packet(s: &mut TcpStream, deadline: Instant) -> io::Result<(u8, Vec<u8>)> {
    let left = deadline.saturating_duration_since(Instant::now());
    s.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
    let mut byte = [0u8];
    s.read_exact(&mut byte)?;
    let (first, mut len) = (byte[0], 0);
    for shift in [0, 7, 14, 21] {
        s.read_exact(&mut byte)?;
        len |= usize::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            let mut body = vec![0; len];
            s.read_exact(&mut body)?;
            return Ok((first, body));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "a remaining length over 4 bytes",
    ))
}

/// The packet id (at QoS 1 and 2) and the payload of a PUBLISH's body.
fn split_publish(body: &[u8], qos: u8) -> Option<(Option<[u8; 2]>, &[u8])> {
    let (len, rest) = body.split_first_chunk::<2>()?;
    let rest = rest.get(usize::from(u16::from_be_bytes(*len))..)?;
    if qos == 0 {
        return Some((None, rest));
    }
    let (pkid, payload) = rest.split_first_chunk::<2>()?;
    Some((Some(*pkid), payload))
}

/// One well-behaved client: the time from its PUBLISH until it has both the PUBACK and the
/// message back, or the step that failed and why.
fn probe(addr: SocketAddr, n: u64) -> Result<Duration, String> {
    let at = |step: &'static str| {
        move |e: io::Error| match e.kind() {
            io::ErrorKind::UnexpectedEof => format!("{step}: the broker closed the connection"),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!("{step}: no answer"),
            _ => format!("{step}: {e}"),
        }
    };
    let wait = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&addr, wait).map_err(at("connect"))?;
    s.set_nodelay(true).map_err(at("connect"))?;
    s.set_write_timeout(Some(wait)).map_err(at("connect"))?;
    s.write_all(&connect_packet("churn-probe", true))
        .map_err(at("connect"))?;
    let (first, body) = read_packet(&mut s, Instant::now() + wait).map_err(at("connack"))?;
    if first != 0x20 || body.get(1) != Some(&0) {
        return Err(format!("connack: refused ({first:#04x} {body:?})"));
    }
    s.write_all(&subscribe_packet(1, PROBE_TOPIC, 1))
        .map_err(at("subscribe"))?;
    let (first, body) = read_packet(&mut s, Instant::now() + wait).map_err(at("suback"))?;
    if first != 0x90 || body.get(2).is_none_or(|&code| code > 1) {
        return Err(format!("suback: refused ({first:#04x} {body:?})"));
    }
    let payload = format!("probe {n}");
    let publish = packet(0x32, &publish_body(PROBE_TOPIC, 1, 2, payload.as_bytes()));
    let sent = Instant::now();
    s.write_all(&publish).map_err(at("publish"))?;
    let (mut acked, mut delivered) = (false, false);
    while !(acked && delivered) {
        let missing = match (acked, delivered) {
            (false, false) => "puback and delivery",
            (false, true) => "puback",
            _ => "delivery",
        };
        let (first, body) = read_packet(&mut s, sent + wait).map_err(at(missing))?;
        match first >> 4 {
            4 => acked |= body == [0, 2],
            3 => {
                let qos = (first >> 1) & 3;
                let (pkid, got) = split_publish(&body, qos)
                    .ok_or_else(|| format!("{missing}: a malformed PUBLISH {body:?}"))?;
                if let (1, Some(pkid)) = (qos, pkid) {
                    s.write_all(&[0x40, 2, pkid[0], pkid[1]])
                        .map_err(at(missing))?;
                }
                delivered |= got == payload.as_bytes();
            }
            _ => {}
        }
    }
    let round_trip = sent.elapsed();
    s.write_all(&DISCONNECT).map_err(at("disconnect"))?;
    Ok(round_trip)
}

fn prober(addr: SocketAddr, every: Duration, shared: &Shared) {
    let mut next = Instant::now();
    for n in 1.. {
        while Instant::now() < next {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        next += every;
        let result = probe(addr, n);
        let mut probes = shared.probes.lock().expect("the probe log");
        match result {
            Ok(round_trip) => probes.0.push(round_trip),
            Err(e) => {
                probes.1 += 1;
                eprintln!("churn: probe {n} failed at {e}");
            }
        }
    }
}

/// The broker's resident memory now and at its peak (VmRSS, VmHWM), in MiB, or "-".
fn rss_mib(pid: Option<u32>) -> (String, String) {
    let status = pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok());
    let field = |name: &str| -> Option<String> {
        let line = status.as_deref()?.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(format!("{:.1}", kib / 1024.0))
    };
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    (or_dash(field("VmRSS:")), or_dash(field("VmHWM:")))
}

fn ms(d: Option<&Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1000.0))
}

fn progress(start: Instant, pid: Option<u32>, shared: &Shared) {
    let (now, peak) = rss_mib(pid);
    let probes = shared.probes.lock().expect("the probe log");
    eprintln!(
        "churn: {} s  connections {}  refused {}  broker RSS {now} MiB (peak {peak})  probes ok {} failed {}  max {} ms",
        start.elapsed().as_secs(),
        shared.connections.load(Ordering::Relaxed),
        shared.refused.load(Ordering::Relaxed),
        probes.0.len(),
        probes.1,
        ms(probes.0.iter().max()),
    );
}

fn main() {
    let a = Args::parse();
    let addr = SocketAddr::from(([127, 0, 0, 1], a.port));
    let shared = Arc::new(Shared::default());
    let start = Instant::now();
    let mut threads: Vec<_> = (0..a.threads)
        .map(|i| {
            let shared = shared.clone();
            // Each worker's share of --rate.
            let pace = (a.rate > 0.0).then(|| Duration::from_secs_f64(a.threads as f64 / a.rate));
            let (seed, most) = (a.seed.wrapping_add(i), a.publishes);
            thread::spawn(move || worker(addr, seed, pace, most, &shared))
        })
        .collect();
    let every = Duration::from_secs(a.probe_every.max(1));
    let probe_shared = shared.clone();
    threads.push(thread::spawn(move || prober(addr, every, &probe_shared)));

    let end = start + Duration::from_secs(a.seconds);
    let mut report = start + Duration::from_secs(10);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        thread::sleep(left.min(report.saturating_duration_since(Instant::now())));
        if Instant::now() >= report && report < end {
            report += Duration::from_secs(10);
            if a.pid.is_some() {
                progress(start, a.pid, &shared);
            }
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    let churned = start.elapsed();
    for t in threads {
        t.join().expect("a churn thread");
    }

    let connections = shared.connections.load(Ordering::Relaxed);
    let per_second = connections as f64 / churned.as_secs_f64();
    let (rss_end, rss_peak) = rss_mib(a.pid);
    let mut probes = shared.probes.lock().expect("the probe log");
    probes.0.sort();
    let trips = &probes.0;
    println!(
        "connections {connections} (per second {per_second:.0}) refused {}  broker peak RSS {rss_peak} MiB  RSS at end {rss_end} MiB  probes ok {} failed {}  probe round trip p50 {} ms max {} ms",
        shared.refused.load(Ordering::Relaxed),
        trips.len(),
        probes.1,
        ms(trips.get(trips.len().saturating_sub(1) / 2)),
        ms(trips.last()),
    );
}
