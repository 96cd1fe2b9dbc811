//! A deliberately minimal MQTT 3.1.1 publisher written against the spec, for tests that
//! need "some other client" to publish arbitrary bytes (raw payloads, hand-made
//! envelopes, binary) without mosquitto_pub installed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Broker, DEADLINE};

/// Publishes `payload` to `topic` and returns once the broker has it: after PUBACK
/// (QoS 1), PUBCOMP (QoS 2), or — for QoS 0 — after the broker closed the connection
/// following our DISCONNECT.
pub fn publish_raw(broker: &Broker, topic: &str, payload: &[u8], qos: u8, retain: bool) {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut s = TcpStream::connect(("127.0.0.1", broker.port)).expect("connect");
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
    let mut packet = vec![first];
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
    s.write_all(&packet).expect("send packet");
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
    static N: AtomicU64 = AtomicU64::new(0);
    let mut s = TcpStream::connect(("127.0.0.1", broker.port)).expect("connect");
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
        // QoS 0 subscription: no packet id in what the broker sends (rumqttd may send at
        // the subscription's QoS, which is 0 too).
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
