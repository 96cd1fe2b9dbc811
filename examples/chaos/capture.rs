//! What the broker sent each reader, from the proxies' captures (`--capture`): to tell a
//! line the broker never delivered from one a reader received and did not print.
//!
//! A proxy keeps each connection's bytes in two files, `conn{N}-up` (client to broker)
//! and `conn{N}-down` (broker to client), as records: the time of the chunk (nanoseconds
//! of a monotonic clock since the run's first record, u64 little-endian), its length
//! (u32 little-endian), its bytes.
//! The client id, protocol version and clean start come from the CONNECT in `-up`; the
//! messages from the PUBLISH packets in `-down`, each timed by the chunk that completed
//! it. A message counts as delivered once the client acknowledged its packet id (in
//! `-up`, later). Every connection of one client id, on every node, merged by time, is
//! what the broker delivered to that reader, in order.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use crate::reader::{Line, parse};

/// Appends one chunk as a record, timed by a monotonic clock (nanoseconds since the
/// first record of the run).
pub fn append(f: &mut File, chunk: &[u8]) -> io::Result<()> {
    static START: OnceLock<Instant> = OnceLock::new();
    let t = START.get_or_init(Instant::now).elapsed();
    let mut record = Vec::with_capacity(12 + chunk.len());
    record.extend_from_slice(&(t.as_nanos() as u64).to_le_bytes());
    record.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
    record.extend_from_slice(chunk);
    f.write_all(&record)
}

/// What the captures say of each client id.
#[derive(Debug, Default)]
pub struct Seen {
    /// The (writer, line) of every message the broker sent it and it acknowledged
    /// (PUBACK, or PUBREC at QoS 2), in the order sent. A message the broker wrote to a
    /// connection that was reset before the client read it is not among them.
    pub delivered: Vec<(usize, u64)>,
    /// Every message the broker wrote to it, acknowledged or not.
    pub sent: std::collections::HashSet<(usize, u64)>,
    /// It connected with a clean start (or, under MQTT 5, a session that expires at once)
    /// or unsubscribed: the broker owed it nothing from then on.
    pub dropped_its_session: bool,
}

/// Per client id, what the captures say.
pub type Sent = HashMap<String, Seen>;

/// A packet of one connection: when it passed the proxy, which way, and what it was.
enum Event {
    /// The broker sent a message (packet id, writer, line).
    Publish(u16, usize, u64),
    /// The client acknowledged packet id.
    Ack(u16),
}

/// Reads every capture under `dir` (one folder per node).
pub fn read(dir: &Path) -> io::Result<Sent> {
    // Per client id: its delivered messages with their times, and the rest of what was seen.
    type Timed = (Vec<(u64, usize, u64)>, Seen);
    let mut timed: HashMap<String, Timed> = HashMap::new();
    for node in std::fs::read_dir(dir)? {
        for entry in std::fs::read_dir(node?.path())? {
            let up = entry?.path();
            let Some(name) = up.to_str().and_then(|n| n.strip_suffix("-up")) else {
                continue;
            };
            let (up_bytes, up_times) = unrecord(&std::fs::read(&up)?);
            let Some((id, level, clean)) = packets(&up_bytes).find_map(|(h, b)| connect(h, b))
            else {
                continue;
            };
            let (down, down_times) = unrecord(&std::fs::read(format!("{name}-down"))?);
            let mut events: Vec<(u64, Event)> = Vec::new();
            let mut unsubscribed = false;
            for (end, (h, body)) in packets_at(&up_bytes) {
                match h >> 4 {
                    4 | 5 => events.push((time_of(&up_times, end), Event::Ack(pkid(body)))),
                    10 => unsubscribed = true,
                    _ => {}
                }
            }
            for (end, (h, body)) in packets_at(&down) {
                let payload = publish_payload(h, body, level == 5);
                if let Some(Line::Message(w, n)) = payload.map(parse_bytes) {
                    let id = publish_pkid(h, body).unwrap_or(0);
                    events.push((time_of(&down_times, end), Event::Publish(id, w, n)));
                }
            }
            // Stable: a message and its acknowledgement in one tick keep this order.
            events.sort_by_key(|&(t, ref e)| (t, matches!(e, Event::Ack(_))));
            let (list, seen) = timed.entry(id).or_default();
            seen.dropped_its_session |= clean || unsubscribed;
            let mut pending: HashMap<u16, (u64, usize, u64)> = HashMap::new();
            for (t, e) in events {
                match e {
                    Event::Publish(id, w, n) => {
                        seen.sent.insert((w, n));
                        match id {
                            0 => list.push((t, w, n)), // QoS 0: nothing to wait for
                            _ => drop(pending.insert(id, (t, w, n))),
                        }
                    }
                    Event::Ack(id) => list.extend(pending.remove(&id)),
                }
            }
        }
    }
    Ok(timed
        .into_iter()
        .map(|(id, (mut v, mut seen))| {
            v.sort_by_key(|&(t, _, _)| t);
            seen.delivered = v.into_iter().map(|(_, w, n)| (w, n)).collect();
            (id, seen)
        })
        .collect())
}

/// The packet id at the start of an acknowledgement's body.
fn pkid(body: &[u8]) -> u16 {
    u16::from_be_bytes([
        body.first().copied().unwrap_or(0),
        body.get(1).copied().unwrap_or(0),
    ])
}

/// A PUBLISH's packet id (None at QoS 0).
fn publish_pkid(header: u8, body: &[u8]) -> Option<u16> {
    let (_, rest) = string(body)?;
    ((header >> 1) & 3 > 0).then(|| pkid(rest))
}

fn parse_bytes(payload: &[u8]) -> Line {
    parse(&String::from_utf8_lossy(payload), None)
}

/// The bytes of a capture file, and for each record the offset where it ends and its time.
fn unrecord(file: &[u8]) -> (Vec<u8>, Vec<(usize, u64)>) {
    let (mut bytes, mut times) = (Vec::new(), Vec::new());
    let mut rest = file;
    while rest.len() >= 12 {
        let t = u64::from_le_bytes(rest[..8].try_into().unwrap_or_default());
        let n = u32::from_le_bytes(rest[8..12].try_into().unwrap_or_default()) as usize;
        let Some(chunk) = rest.get(12..12 + n) else {
            break;
        };
        bytes.extend_from_slice(chunk);
        times.push((bytes.len(), t));
        rest = &rest[12 + n..];
    }
    (bytes, times)
}

/// The time of the record holding byte `end - 1`.
fn time_of(times: &[(usize, u64)], end: usize) -> u64 {
    let i = times.partition_point(|&(e, _)| e < end);
    times.get(i).map_or(u64::MAX, |&(_, t)| t)
}

/// MQTT packets (first byte, body) of a byte stream, up to the first incomplete one.
fn packets(b: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    packets_at(b).map(|(_, p)| p)
}

/// Like [`packets`], with the offset where each packet ends.
fn packets_at(b: &[u8]) -> impl Iterator<Item = (usize, (u8, &[u8]))> {
    let mut i = 0;
    std::iter::from_fn(move || {
        let header = *b.get(i)?;
        let (len, used) = varint(b.get(i + 1..)?)?;
        let start = i + 1 + used;
        let body = b.get(start..start + len)?;
        i = start + len;
        Some((i, (header, body)))
    })
}

/// A variable byte integer: its value and how many bytes it took.
fn varint(b: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, &d) in b.iter().take(4).enumerate() {
        value += usize::from(d & 0x7f) << (7 * i);
        if d & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// A length-prefixed string at the start of `b`, and what follows it.
fn string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = usize::from(u16::from_be_bytes([*b.first()?, *b.get(1)?]));
    Some((b.get(2..2 + n)?, b.get(2 + n..)?))
}

/// The client id and protocol level of a CONNECT, and whether it starts clean (the clean
/// start flag, or under MQTT 5 no Session Expiry Interval, which means 0).
fn connect(header: u8, body: &[u8]) -> Option<(String, u8, bool)> {
    if header >> 4 != 1 {
        return None;
    }
    let (_, rest) = string(body)?;
    let (level, flags) = (*rest.first()?, *rest.get(1)?);
    let mut rest = rest.get(4..)?; // level, flags, keep-alive
    let mut expires = level != 5;
    if level == 5 {
        let (len, used) = varint(rest)?;
        let props = rest.get(used..used + len)?;
        // Session Expiry Interval (0x11), four bytes, as the first property or later.
        expires = props
            .windows(5)
            .any(|p| p[0] == 0x11 && p[1..] != [0, 0, 0, 0]);
        rest = rest.get(used + len..)?;
    }
    let (id, _) = string(rest)?;
    let clean = flags & 0x02 != 0 || !expires;
    Some((String::from_utf8_lossy(id).into_owned(), level, clean))
}

/// The payload of a PUBLISH (under MQTT 5, properties follow the packet id).
fn publish_payload(header: u8, body: &[u8], v5: bool) -> Option<&[u8]> {
    if header >> 4 != 3 {
        return None;
    }
    let (_, mut rest) = string(body)?;
    if (header >> 1) & 3 > 0 {
        rest = rest.get(2..)?;
    }
    if !v5 {
        return Some(rest);
    }
    let (len, used) = varint(rest)?;
    rest.get(used + len..)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str, pkid: Option<u16>, props: Option<&[u8]>, payload: &str) -> Vec<u8> {
        let mut body = (topic.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(topic.as_bytes());
        let qos = pkid.map_or(0, |p| {
            body.extend_from_slice(&p.to_be_bytes());
            1
        });
        if let Some(p) = props {
            body.push(p.len() as u8);
            body.extend_from_slice(p);
        }
        body.extend_from_slice(payload.as_bytes());
        let mut packet = vec![0x30 | (qos << 1), body.len() as u8];
        packet.extend(body);
        packet
    }

    #[test]
    fn publishes_of_both_versions_and_connect_ids_are_read() {
        let envelope = r#"{"id":"i","from":"w2","ts":"t","text":"7 xx"}"#;
        let v311 = publish("c/w2", Some(9), None, envelope);
        let mut v5 = publish("c/w2", Some(10), Some(&[0x23, 0, 1]), envelope);
        v5.extend(publish("c/w2", None, Some(&[]), envelope));
        let read = |stream: &[u8], v5| -> Vec<Line> {
            packets(stream)
                .filter_map(|(h, b)| publish_payload(h, b, v5).map(parse_bytes))
                .collect()
        };
        assert_eq!(read(&v311, false), [Line::Message(2, 7)]);
        assert_eq!(read(&v5, true), [Line::Message(2, 7), Line::Message(2, 7)]);
        // CONNECT 3.1.1 and 5.
        let v311: &[u8] = b"\x10\x10\x00\x04MQTT\x04\x00\x00\x3c\x00\x04r0-x";
        let v311_clean: &[u8] = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04r0-x";
        let v5_clean: &[u8] = b"\x10\x11\x00\x04MQTT\x05\x00\x00\x3c\x00\x00\x04r1-y";
        let v5: &[u8] = b"\x10\x16\x00\x04MQTT\x05\x00\x00\x3c\x05\x11\x00\x00\x0e\x10\x00\x04r1-y";
        let id = |b: &[u8]| packets(b).find_map(|(h, body)| connect(h, body));
        let (r0, r1) = ("r0-x".to_string(), "r1-y".to_string());
        assert_eq!(id(v311), Some((r0.clone(), 4, false)));
        assert_eq!(id(v311_clean), Some((r0, 4, true)));
        assert_eq!(id(v5), Some((r1.clone(), 5, false)));
        assert_eq!(
            id(v5_clean),
            Some((r1, 5, true)),
            "no session expiry: it ends at once"
        );
    }

    #[test]
    fn records_keep_bytes_and_times_and_a_torn_packet_ends_the_stream() {
        let dir = std::env::temp_dir().join(format!("chaos-capture-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let mut f = File::create(&path).unwrap();
        append(&mut f, b"\x30\x05\x00\x01a").unwrap();
        append(&mut f, b"xy\x30").unwrap();
        let (bytes, times) = unrecord(&std::fs::read(&path).unwrap());
        assert_eq!(bytes, b"\x30\x05\x00\x01axy\x30");
        assert_eq!(times.len(), 2);
        let ends: Vec<usize> = packets_at(&bytes).map(|(e, _)| e).collect();
        assert_eq!(
            ends,
            [7],
            "the packet ends in the second record; the torn one is left"
        );
        assert_eq!(time_of(&times, 7), times[1].1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
