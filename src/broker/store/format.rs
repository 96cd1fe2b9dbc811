//! The store file format: what a [`Record`] is on disk, and the reading of a whole file
//! ([`scan`]), torn tails and damage told apart. No I/O: bytes in, records out.
//!
//! A file is [`MAGIC`], then frames. Each frame is the length of its payload (u32, little
//! endian), the CRC-32 of the payload (u32, little endian), and the payload: one record, a
//! tag byte and its fields. A file always begins with a whole snapshot of the engine's
//! durable state, ended by [`Record::SnapshotEnd`] (the store writes it to a temporary
//! file, syncs it and renames it), so any fault before that end is damage. The log that
//! follows is appended to, and a crash can cut its last writes: a bad frame near the end
//! is such a torn tail and is cut off ([`TORN_MAX`]), one further in is damage. A frame
//! whose checksum holds but whose record does not read is always damage: that is a store
//! of another version, or a bug, never a write cut short.
//!
//! The fields: numbers that count (message ids, delivery numbers, lengths, subscription
//! identifiers) are LEB128 varints, most of them small; the protocol's fixed-size numbers
//! (QoS, packet ids, expiry intervals) keep their size, little endian; a protocol version
//! is its level (4 or 5); a bool is a byte 0 or 1, an `Option` a byte 0 (None) or 1
//! followed by the value; strings and byte strings are a varint length and the bytes; a
//! list is a varint count and the items. A message's own id is not written: it reads back
//! as the id of its record. An `Instant` is an i64 of milliseconds since the Unix epoch
//! (see [`Clock`]), so that a restart, whose monotonic clock starts anew, reads the same
//! wall-clock times back.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::broker::engine::{BROKER_MAX_PACKET, Record};

mod fields;

/// The first bytes of a store file.
pub const MAGIC: &[u8; 16] = b"mqttchat store 1";
/// The largest record (a message of the largest packet, with room to spare).
pub const MAX_RECORD: usize = BROKER_MAX_PACKET + (1 << 20);
/// The most bytes the writer leaves unsynced at the end of the file: a bad record this
/// close to the end is a write that a crash cut (a torn tail), cut off; one further in is
/// damage.
pub const TORN_MAX: usize = 64 << 20;

/// The frame before each payload: its length and its checksum.
const FRAME: usize = 8;
/// How far ahead a time is read when the clock cannot say the time written (further
/// than any MQTT interval, which is u32 seconds).
const FAR: Duration = Duration::from_secs(1 << 33);

/// The pair of clocks that turns the engine's Instants into wall-clock time on disk and
/// back.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub instant: Instant,
    pub unix: SystemTime,
}

impl Clock {
    /// Both clocks now.
    pub fn now() -> Clock {
        Clock {
            instant: Instant::now(),
            unix: SystemTime::now(),
        }
    }

    /// `at` as milliseconds since the Unix epoch.
    fn to_unix_ms(self, at: Instant) -> i64 {
        let ms = match at.checked_duration_since(self.instant) {
            Some(ahead) => self.unix_ms().saturating_add(millis(ahead)),
            None => self
                .unix_ms()
                .saturating_sub(millis(self.instant.duration_since(at))),
        };
        i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
    }

    /// The Instant of `ms` milliseconds since the Unix epoch. One too far in the past for
    /// an Instant is now; one too far ahead is [`FAR`] ahead.
    fn instant_of(self, ms: i64) -> Instant {
        let delta = i128::from(ms) - self.unix_ms();
        let d = Duration::from_millis(u64::try_from(delta.unsigned_abs()).unwrap_or(u64::MAX));
        let at = match delta < 0 {
            true => self.instant.checked_sub(d),
            false => (self.instant.checked_add(d)).or_else(|| self.instant.checked_add(FAR)),
        };
        at.unwrap_or(self.instant)
    }

    /// `self.unix` in milliseconds since the Unix epoch (negative before it).
    fn unix_ms(self) -> i128 {
        match self.unix.duration_since(UNIX_EPOCH) {
            Ok(d) => millis(d),
            Err(before) => -millis(before.duration()),
        }
    }
}

/// `d` in whole milliseconds.
fn millis(d: Duration) -> i128 {
    i128::try_from(d.as_millis()).unwrap_or(i128::MAX)
}

/// Appends one record, framed: u32 LE length of the payload, u32 LE CRC-32 of the payload
/// (crc32fast), the payload.
pub fn encode(rec: &Record, clock: &Clock, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME]);
    fields::write(rec, clock, out);
    let payload = &out[start + FRAME..];
    debug_assert!(
        payload.len() <= MAX_RECORD,
        "a record larger than MAX_RECORD"
    );
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + FRAME].copy_from_slice(&crc.to_le_bytes());
}

/// What a scan found.
#[derive(Debug, PartialEq)]
pub struct Scanned {
    /// Records read.
    pub records: u64,
    /// Where the good part of the file ends (the writer appends from here).
    pub end: usize,
    /// Bytes after `end` cut off as a torn tail (0: none).
    pub cut: usize,
}

/// Why a store cannot be read.
#[derive(Debug, PartialEq)]
pub struct Damage {
    pub offset: usize,
    pub why: String,
}

/// Reads a whole store file: the header, then records, handing each to `each` in order
/// ([`Record::SnapshotEnd`] too).
pub fn scan(bytes: &[u8], clock: &Clock, each: impl FnMut(Record)) -> Result<Scanned, Damage> {
    scan_with(bytes, clock, TORN_MAX, each)
}

/// [`scan`], with a bad frame up to `torn_max` bytes from the end taken for a torn tail.
fn scan_with(
    bytes: &[u8],
    clock: &Clock,
    torn_max: usize,
    mut each: impl FnMut(Record),
) -> Result<Scanned, Damage> {
    check_magic(bytes).map_err(|why| Damage { offset: 0, why })?;
    let mut at = MAGIC.len();
    let mut records = 0;
    let mut snapshot = true;
    loop {
        let left = bytes.len() - at;
        let damage = |why: String| Err(Damage { offset: at, why });
        if left == 0 && snapshot {
            return damage("the snapshot is incomplete: the file ends before its end".into());
        }
        if left == 0 {
            return Ok(Scanned {
                records,
                end: at,
                cut: 0,
            });
        }
        let payload = match frame(&bytes[at..]) {
            Ok(payload) => payload,
            Err(why) if snapshot => return damage(format!("the snapshot is incomplete: {why}")),
            Err(_) if left <= torn_max => {
                return Ok(Scanned {
                    records,
                    end: at,
                    cut: left,
                });
            }
            Err(why) => {
                return damage(format!(
                    "{why}, {left} bytes before the end of the file (more than a crash can \
                     leave unwritten, {torn_max})"
                ));
            }
        };
        let rec = match fields::read(payload, clock) {
            Ok(rec) => rec,
            Err(why) => return damage(format!("a record that does not read: {why}")),
        };
        if matches!(rec, Record::SnapshotEnd) {
            if !snapshot {
                return damage("a second end of the snapshot".into());
            }
            snapshot = false;
        }
        at += FRAME + payload.len();
        records += 1;
        each(rec);
    }
}

/// Whether the file begins with [`MAGIC`], and if not, what it is.
fn check_magic(bytes: &[u8]) -> Result<(), String> {
    let family = &MAGIC[..MAGIC.len() - 1];
    match bytes.get(..MAGIC.len()) {
        Some(head) if head == MAGIC => Ok(()),
        Some(head) if head.starts_with(family) => Err(format!(
            "a chat-broker store of another version ('{}'; this one reads '{}')",
            head.escape_ascii(),
            MAGIC.escape_ascii()
        )),
        None if bytes.is_empty() => Err("an empty file, not a chat-broker store".into()),
        None if MAGIC.starts_with(bytes) => Err(format!(
            "the header is cut short ({} of {} bytes)",
            bytes.len(),
            MAGIC.len()
        )),
        _ => Err("not a chat-broker store".into()),
    }
}

/// The payload of the frame that `bytes` begin with, if it is whole and its checksum holds.
fn frame(bytes: &[u8]) -> Result<&[u8], String> {
    let Some((head, body)) = bytes.split_first_chunk::<FRAME>() else {
        return Err(format!(
            "a frame cut short ({} of {FRAME} bytes)",
            bytes.len()
        ));
    };
    let [l0, l1, l2, l3, c0, c1, c2, c3] = *head;
    let len = usize::try_from(u32::from_le_bytes([l0, l1, l2, l3])).unwrap_or(usize::MAX);
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    if len == 0 {
        return Err("a record of length 0".into());
    }
    if len > MAX_RECORD {
        return Err(format!(
            "a record of {len} bytes, more than the largest ({MAX_RECORD})"
        ));
    }
    let Some(payload) = body.get(..len) else {
        return Err(format!("a record of {len} bytes with {} left", body.len()));
    };
    if crc32fast::hash(payload) != crc {
        return Err("a record whose checksum does not match".into());
    }
    Ok(payload)
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
