//! A deliberately minimal MQTT 3.1.1 publisher written against the spec, for tests that
//! need "some other client" to publish arbitrary bytes (raw payloads, hand-made
//! envelopes, binary) without mosquitto_pub installed; and raw CONNECT probes, for what
//! a broker answers byte for byte (MQTT 5 refused how?) and for whether it serves yet.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Broker, DEADLINE};

/// The port of an `mqtt://127.0.0.1:PORT` URL (the only kind the test brokers have).
#[track_caller]
pub fn url_port(url: &str) -> u16 {
    url.strip_prefix("mqtt://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not an mqtt://127.0.0.1:PORT URL: {url}"))
}

/// Publishes `payload` to `topic` and returns once the broker has it: after PUBACK
/// (QoS 1), PUBCOMP (QoS 2), or — for QoS 0 — after the broker closed the connection
/// following our DISCONNECT.
pub fn publish_raw(broker: &Broker, topic: &str, payload: &[u8], qos: u8, retain: bool) {
    publish_raw_at(&broker.url(), topic, payload, qos, retain);
}

/// [`publish_raw`] to the broker at `url` (a node of a cluster, a foreign broker).
pub fn publish_raw_at(url: &str, topic: &str, payload: &[u8], qos: u8, retain: bool) {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut s = TcpStream::connect(("127.0.0.1", url_port(url))).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let id = format!(
        "raw-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );

    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60];
    push_str(&mut body, id.as_bytes());
    send(&mut s, 0x10, &body);
    assert_eq!(read_packet(&mut s), (0x20, vec![0, 0]), "CONNACK");

    let pkid = [0u8, 1];
    let mut body = Vec::new();
    push_str(&mut body, topic.as_bytes());
    if qos > 0 {
        body.extend_from_slice(&pkid);
    }
    body.extend_from_slice(payload);
    send(&mut s, 0x30 | (qos << 1) | u8::from(retain), &body);
    match qos {
        0 => {}
        1 => assert_eq!(read_packet(&mut s), (0x40, pkid.to_vec()), "PUBACK"),
        _ => {
            assert_eq!(read_packet(&mut s), (0x50, pkid.to_vec()), "PUBREC");
            send(&mut s, 0x62, &pkid);
            assert_eq!(read_packet(&mut s), (0x70, pkid.to_vec()), "PUBCOMP");
        }
    }
    send(&mut s, 0xE0, &[]);
    // The broker closes the connection once it has processed everything before DISCONNECT.
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}

fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn send(s: &mut TcpStream, first: u8, body: &[u8]) {
    let mut packet = Vec::new();
    encode(&mut packet, first, body);
    s.write_all(&packet).expect("send packet");
}

/// Appends a packet: the first byte, the remaining length, the body.
fn encode(packet: &mut Vec<u8>, first: u8, body: &[u8]) {
    packet.push(first);
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        packet.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(body);
}

/// Reads one packet: (first byte, body).
fn read_packet(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut first = [0u8; 1];
    s.read_exact(&mut first).expect("read packet type");
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).expect("read length");
        len |= usize::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("read body");
    (first[0], body)
}

/// A message as [`retained_messages`] received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// What a fresh subscriber of `filter` receives before anything newer: the retained
/// messages (plus any live message that happened to arrive meanwhile). MQTT has no
/// end-of-retained marker, so after SUBACK this publishes a probe (QoS 0, not retained) to
/// `probe_topic`, which must match `filter`, and collects until the probe comes back: a
/// broker sends a subscription's retained messages before what is published after it.
pub fn retained_messages(broker: &Broker, filter: &str, probe_topic: &str) -> Vec<Received> {
    retained_messages_at(&broker.url(), filter, probe_topic)
}

/// [`retained_messages`] from the broker at `url`.
pub fn retained_messages_at(url: &str, filter: &str, probe_topic: &str) -> Vec<Received> {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut s = TcpStream::connect(("127.0.0.1", url_port(url))).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let n = N.fetch_add(1, Ordering::Relaxed);
    let id = format!("retained-{}-{n}", std::process::id());
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60];
    push_str(&mut body, id.as_bytes());
    send(&mut s, 0x10, &body);
    assert_eq!(read_packet(&mut s), (0x20, vec![0, 0]), "CONNACK");

    let mut body = vec![0, 1];
    push_str(&mut body, filter.as_bytes());
    body.push(0); // QoS 0: nothing to acknowledge
    send(&mut s, 0x82, &body);
    assert_eq!(read_packet(&mut s), (0x90, vec![0, 1, 0]), "SUBACK");

    let probe = format!("probe {id}").into_bytes();
    let mut body = Vec::new();
    push_str(&mut body, probe_topic.as_bytes());
    body.extend_from_slice(&probe);
    send(&mut s, 0x30, &body);

    let mut got = Vec::new();
    loop {
        let (first, body) = read_packet(&mut s);
        if first & 0xF0 != 0x30 {
            continue;
        }
        let len = usize::from(u16::from_be_bytes([body[0], body[1]]));
        let topic = String::from_utf8_lossy(&body[2..2 + len]).into_owned();
        // QoS 0 subscription: no packet id in what the broker sends.
        let payload = body[2 + len..].to_vec();
        if topic == probe_topic && payload == probe {
            break;
        }
        got.push(Received {
            topic,
            payload,
            retain: first & 1 == 1,
        });
    }
    send(&mut s, 0xE0, &[]);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    got
}

/// A CONNECT packet with a clean session and keepalive 60: MQTT 3.1.1 (`level` 4) or 5
/// (`level` 5, with empty properties), with a will (QoS 0, not retained) on `will_topic`.
pub fn connect_packet(level: u8, client_id: &str, will_topic: Option<&str>) -> Vec<u8> {
    let will_flag = if will_topic.is_some() { 0x04 } else { 0 };
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', level, 0x02 | will_flag, 0, 60];
    if level == 5 {
        body.push(0); // no CONNECT properties
    }
    push_str(&mut body, client_id.as_bytes());
    if let Some(topic) = will_topic {
        if level == 5 {
            body.push(0); // no will properties
        }
        push_str(&mut body, topic.as_bytes());
        push_str(&mut body, b"gone");
    }
    let mut packet = Vec::new();
    encode(&mut packet, 0x10, &body);
    packet
}

/// A SUBSCRIBE (packet id 1) to one filter at QoS 0: MQTT 3.1.1 (`level` 4) or 5.
#[cfg(feature = "broker")]
pub fn subscribe_packet(level: u8, filter: &str) -> Vec<u8> {
    let mut body = vec![0, 1];
    if level == 5 {
        body.push(0); // no SUBSCRIBE properties
    }
    push_str(&mut body, filter.as_bytes());
    body.push(0);
    let mut packet = Vec::new();
    encode(&mut packet, 0x82, &body);
    packet
}

/// What a server answered on a fresh connection to the bytes a test sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub bytes: Vec<u8>,
    /// Whether the server closed the connection (or reset it) within the wait.
    pub closed: bool,
}

/// Connects to 127.0.0.1:`port`, sends `bytes`, and collects the answer until the
/// server closes the connection, `want` bytes have come, or `wait` has passed.
pub fn exchange(port: u16, bytes: &[u8], want: usize, wait: Duration) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    s.write_all(bytes)?;
    let end = Instant::now() + wait;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while got.len() < want {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Answer {
                bytes: got,
                closed: false,
            });
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut chunk) {
            Ok(0) => {
                return Ok(Answer {
                    bytes: got,
                    closed: true,
                });
            }
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok(Answer {
                    bytes: got,
                    closed: true,
                });
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(Answer {
                    bytes: got,
                    closed: false,
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Answer {
        bytes: got,
        closed: false,
    })
}

/// Whether the server on 127.0.0.1:`port` accepts an MQTT 3.1.1 CONNECT (a CONNACK with
/// return code 0) within `wait`: a broker that is listening but not yet serving (NATS
/// before its JetStream is up) closes the connection or answers later.
pub fn accepts_connect(port: u16, wait: Duration) -> bool {
    static N: AtomicU64 = AtomicU64::new(0);
    let id = format!(
        "ready-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    matches!(
        exchange(port, &connect_packet(4, &id, None), 4, wait),
        Ok(Answer { bytes, .. }) if bytes == [0x20, 2, 0, 0]
    )
}
