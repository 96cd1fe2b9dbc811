//! What the broker sent each reader, from the proxies' captures (`--capture`): to tell a
//! line the broker never delivered from one a reader received and did not print.
//!
//! A proxy keeps each connection's bytes in two files, `conn{N}-up` (client to broker)
//! and `conn{N}-down` (broker to client), as records: the time of the chunk (nanoseconds
//! since the Unix epoch, u64 little-endian), its length (u32 little-endian), its bytes.
//! The client id and protocol version come from the CONNECT in `-up`; the messages from
//! the PUBLISH packets in `-down`, each timed by the chunk that completed it. Every
//! connection of one client id, on every node, merged by time, is what the broker
//! delivered to that reader, in order.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::reader::{Line, parse};

/// Appends one chunk as a record.
pub fn append(f: &mut File, chunk: &[u8]) -> io::Result<()> {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut record = Vec::with_capacity(12 + chunk.len());
    record.extend_from_slice(&(t.as_nanos() as u64).to_le_bytes());
    record.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
    record.extend_from_slice(chunk);
    f.write_all(&record)
}

/// Per client id: the (writer, line) of every message the broker sent it, in order.
pub type Sent = HashMap<String, Vec<(usize, u64)>>;

/// Reads every capture under `dir` (one folder per node).
pub fn read(dir: &Path) -> io::Result<Sent> {
    let mut timed: HashMap<String, Vec<(u64, usize, u64)>> = HashMap::new();
    for node in std::fs::read_dir(dir)? {
        for entry in std::fs::read_dir(node?.path())? {
            let up = entry?.path();
            let Some(name) = up.to_str().and_then(|n| n.strip_suffix("-up")) else {
                continue;
            };
            let (up_bytes, _) = unrecord(&std::fs::read(&up)?);
            let Some((id, level)) = packets(&up_bytes).find_map(|(h, body)| connect(h, body))
            else {
                continue;
            };
            let down = std::fs::read(format!("{name}-down")).unwrap_or_default();
            let (bytes, times) = unrecord(&down);
            let list = timed.entry(id).or_default();
            for (end, (h, body)) in packets_at(&bytes) {
                let payload = publish_payload(h, body, level == 5);
                if let Some(Line::Message(w, n)) = payload.map(parse_bytes) {
                    list.push((time_of(&times, end), w, n));
                }
            }
        }
    }
    Ok(timed
        .into_iter()
        .map(|(id, mut v)| {
            v.sort_by_key(|&(t, _, _)| t);
            (id, v.into_iter().map(|(_, w, n)| (w, n)).collect())
        })
        .collect())
}

fn parse_bytes(payload: &[u8]) -> Line {
    parse(&String::from_utf8_lossy(payload))
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

/// The client id and protocol level of a CONNECT.
fn connect(header: u8, body: &[u8]) -> Option<(String, u8)> {
    if header >> 4 != 1 {
        return None;
    }
    let (_, rest) = string(body)?;
    let level = *rest.first()?;
    let mut rest = rest.get(4..)?; // level, flags, keep-alive
    if level == 5 {
        let (len, used) = varint(rest)?;
        rest = rest.get(used + len..)?;
    }
    let (id, _) = string(rest)?;
    Some((String::from_utf8_lossy(id).into_owned(), level))
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
        let v311: &[u8] = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04r0-x";
        let v5: &[u8] = b"\x10\x11\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x04r1-y";
        let id = |b: &[u8]| packets(b).find_map(|(h, body)| connect(h, body));
        assert_eq!(id(v311), Some(("r0-x".to_string(), 4)));
        assert_eq!(id(v5), Some(("r1-y".to_string(), 5)));
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
