//! The broker's ceiling: how many messages per second a broker moves from one publisher
//! to one subscriber when the clients cost (almost) nothing.
//!
//! The publisher writes pre-encoded MQTT 3.1.1 PUBLISH packets (100-byte payloads by
//! default) as fast as the socket takes them; the subscriber parses just enough to count
//! messages and, at QoS 1, acknowledge each. Both are plain std threads with big buffers,
//! and both ask the kernel to wake them only for 32 KiB at a time (SO_RCVLOWAT, with a 1 ms
//! receive timeout for the tail): each wake-up of a sleeping reader costs the broker CPU
//! time in the write that causes it (see src/mqtt/coalesce/).
//! The time is from the first byte written until the subscriber counted the last message.
//! The chat pair's throughput is then reported as a fraction of this (BENCHMARKS.md).
//!
//!     cargo run --release --example ceiling -- --port 1883 --count 100000 --qos 1

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Args {
    host: String,
    port: u16,
    count: u32,
    size: usize,
    qos: u8,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        host: "127.0.0.1".into(),
        port: 1883,
        count: 100_000,
        size: 100,
        qos: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |_| format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--host" => a.host = value,
            "--port" => a.port = value.parse().map_err(bad)?,
            "--count" => a.count = value.parse().map_err(bad)?,
            "--size" => a.size = value.parse().map_err(bad)?,
            "--qos" => a.qos = value.parse().map_err(bad)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.qos > 1 {
        return Err("--qos is 0 or 1".into());
    }
    Ok(a)
}

fn packet(first: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(first);
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
}

fn mqtt_str(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// Connects (MQTT 3.1.1, or 5 with no properties) and waits for CONNACK.
fn connect(a: &Args, id: &str, v5: bool) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect((a.host.as_str(), a.port))?;
    s.set_nodelay(true)?;
    let level = if v5 { 5 } else { 4 };
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', level, 0x02, 0, 60];
    if v5 {
        body.push(0); // no CONNECT properties: no Receive Maximum, so no window but the broker's
    }
    mqtt_str(id.as_bytes(), &mut body);
    let mut p = Vec::new();
    packet(0x10, &body, &mut p);
    s.write_all(&p)?;
    let mut head = [0u8; 2];
    s.read_exact(&mut head)?;
    let mut rest = vec![0u8; usize::from(head[1])];
    s.read_exact(&mut rest)?;
    if head[0] != 0x20 || rest.get(1) != Some(&0) {
        return Err(std::io::Error::other(format!("CONNACK {head:?} {rest:?}")));
    }
    Ok(s)
}

/// Lets reads on `s` sleep until 32 KiB are queued, or 1 ms passed.
fn gulp(s: &TcpStream) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_millis(1)))?;
    mqttchat::mqtt::coalesce::set_rcvlowat(s, 32 * 1024)
}

/// A read that returns 0 bytes (not an error) when the receive timeout passed.
fn read_some(s: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
    match s.read(buf) {
        Ok(0) => Err(std::io::ErrorKind::UnexpectedEof.into()),
        Ok(n) => Ok(Some(n)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Subscribes, reports readiness, then counts `count` messages (acknowledging at QoS 1).
fn subscriber(
    a: &Args,
    topic: &str,
    ready: std::sync::mpsc::Sender<()>,
) -> std::io::Result<Instant> {
    // MQTT 5 without a Receive Maximum: the broker may keep as many messages in flight to
    // us as it likes (under 3.1.1 mosquitto would hold it to max_inflight_messages, 20).
    let mut s = connect(a, "ceiling-sub", true)?;
    let mut body = vec![0, 1, 0];
    mqtt_str(topic.as_bytes(), &mut body);
    body.push(a.qos);
    let mut p = Vec::new();
    packet(0x82, &body, &mut p);
    s.write_all(&p)?;
    let mut head = [0u8; 2];
    s.read_exact(&mut head)?;
    let mut suback = vec![0u8; usize::from(head[1])];
    s.read_exact(&mut suback)?;
    gulp(&s)?;
    let _ = ready.send(());
    let mut buf = vec![0u8; 1 << 20];
    let (mut have, mut seen) = (0usize, 0u32);
    let mut acks = Vec::with_capacity(64 * 1024);
    while seen < a.count {
        let Some(n) = read_some(&mut s, &mut buf[have..])? else {
            continue;
        };
        have += n;
        let mut at = 0;
        // Walk whole packets; keep a partial one for the next read.
        while let Some((first, body_at, end)) = frame(&buf[at..have]) {
            if first >> 4 == 3 {
                seen += 1;
                if (first >> 1) & 3 == 1 {
                    let b = &buf[at + body_at..];
                    let topic_len = usize::from(u16::from_be_bytes([b[0], b[1]]));
                    acks.extend_from_slice(&[0x40, 2, b[2 + topic_len], b[3 + topic_len]]);
                }
                // (MQTT 5 PUBLISH carries a property length after the packet id; only
                // the packet id matters here.)
            }
            at += end;
        }
        buf.copy_within(at..have, 0);
        have -= at;
        if !acks.is_empty() {
            s.write_all(&acks)?;
            acks.clear();
        }
    }
    Ok(Instant::now())
}

/// (first byte, offset of the body, length of the packet) of a whole packet at the start.
fn frame(b: &[u8]) -> Option<(u8, usize, usize)> {
    let (mut len, mut shift, mut at) = (0usize, 0, 1);
    loop {
        let byte = *b.get(at)?;
        len |= usize::from(byte & 0x7f) << shift;
        at += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (b.len() >= at + len).then_some((b[0], at, at + len))
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ceiling: {e}");
            std::process::exit(2);
        }
    };
    let topic = format!("ceiling/{}", std::process::id());
    // Pre-encode everything: the publisher's cost is one write of a big buffer.
    let mut wire = Vec::with_capacity(a.count as usize * (a.size + 32));
    for i in 0..a.count {
        let mut body = Vec::with_capacity(a.size + topic.len() + 4);
        mqtt_str(topic.as_bytes(), &mut body);
        if a.qos == 1 {
            body.extend_from_slice(&((i % 65_535) as u16 + 1).to_be_bytes());
        }
        body.resize(body.len() + a.size, b'x');
        packet(0x30 | (a.qos << 1), &body, &mut wire);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let sub = {
        let a2 = a.clone();
        let topic = topic.clone();
        std::thread::spawn(move || subscriber(&a2, &topic, tx))
    };
    if rx.recv_timeout(Duration::from_secs(10)).is_err() {
        eprintln!(
            "ceiling: the subscriber did not subscribe: {:?}",
            sub.join()
        );
        std::process::exit(1);
    }
    // MQTT 3.1.1 publisher: no Receive Maximum from the broker to respect, so it writes
    // everything at once.
    let mut publisher = match connect(&a, "ceiling-pub", false) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ceiling: cannot connect: {e}");
            std::process::exit(1);
        }
    };
    // Drain PUBACKs (QoS 1) so the broker never blocks writing to us.
    let mut acks_in = publisher.try_clone().expect("clone socket");
    if let Err(e) = gulp(&acks_in) {
        eprintln!("ceiling: SO_RCVLOWAT: {e}");
    }
    std::thread::spawn(move || {
        let mut sink = vec![0u8; 1 << 16];
        while read_some(&mut acks_in, &mut sink).is_ok() {}
    });
    let start = Instant::now();
    if let Err(e) = publisher.write_all(&wire) {
        eprintln!("ceiling: publishing: {e}");
        std::process::exit(1);
    }
    let end = match sub.join() {
        Ok(Ok(end)) => end,
        other => {
            eprintln!("ceiling: subscriber failed: {other:?}");
            std::process::exit(1);
        }
    };
    let secs = (end - start).as_secs_f64();
    println!(
        "qos {} count {} size {}: {:.3} s, {:.0} messages/s",
        a.qos,
        a.count,
        a.size,
        secs,
        f64::from(a.count) / secs
    );
}
