//! The `store` target: chat-broker's store files, whole, cut short and changed, read back
//! into an engine; and the history of a store it writes, which the store format's tests
//! use too.

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;

use super::Script;
use crate::broker::engine::codec::{self, Message, Props};
use crate::broker::engine::{Engine, Limits, Record, SubOpts};
use crate::broker::store::format::{self, Clock, MAGIC};

/// chat-broker's store files, read back into an engine at a restart. First the bytes as
/// they are, as a whole file, and again as records that the bytes give the payloads of,
/// framed with good checksums so that the reading gets past them: no panic, and when the
/// scan reads the file, the engine it restored holds its accounting ([`Engine::audit`]).
/// Then a store of a true history ([`store_history`]), cut short where the first bytes
/// say, zeros appended (as a power loss leaves them) and up to two bytes changed: no
/// panic; a cut or a change inside the snapshot is damage, one after it a torn tail,
/// never damage; and what a scan reads is the history's first records, byte for byte
/// what was written (a cut is only ever at the tail, nothing is invented), and restores.
pub fn store(data: &[u8]) {
    let clock = Clock {
        instant: Instant::now(),
        unix: UNIX_EPOCH + Duration::from_millis(1_800_000_000_000),
    };
    let _ = restore(data, &clock, |_| {});
    let mut framed = MAGIC.to_vec();
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        let (payload, tail) = tail.split_at(usize::from(n).min(tail.len()));
        // Framed as format::encode frames a record.
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        framed.extend_from_slice(&len.to_le_bytes());
        framed.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        framed.extend_from_slice(payload);
        rest = tail;
    }
    let _ = restore(&framed, &clock, |_| {});
    store_damaged(data, &clock);
}

/// The `store` target on a true history, cut and changed as `data` says.
fn store_damaged(data: &[u8], clock: &Clock) {
    let history = store_history(clock);
    let mut written = MAGIC.to_vec();
    // Where each record's frame ends.
    let mut ends = Vec::new();
    for rec in &history {
        format::encode(rec, clock, &mut written);
        ends.push(written.len());
    }
    let snapshot = history.iter().position(|r| *r == Record::SnapshotEnd);
    let snapshot_end = snapshot.map_or(written.len(), |i| ends[i]);
    let mut s = Script { data };
    let keep = match (s.byte(), s.byte()) {
        (Some(a), Some(b)) => usize::from(u16::from_le_bytes([a, b])) % (written.len() + 1),
        _ => written.len(),
    };
    let mut image = written[..keep].to_vec();
    let zeros = usize::from(s.byte().unwrap_or(0));
    image.resize(keep + zeros, 0);
    let mut changed = false;
    // Two at most: CRC-32 then misses a change all but never, and a change it missed
    // would read as a record of its own, no fault of the scan's.
    for _ in 0..2 {
        let (Some(a), Some(b), Some(x)) = (s.byte(), s.byte(), s.byte()) else {
            break;
        };
        let len = image.len().max(1);
        if let Some(byte) = image.get_mut(usize::from(u16::from_le_bytes([a, b])) % len) {
            *byte ^= x;
            changed |= x != 0;
        }
    }
    let mut got = Vec::new();
    let scanned = restore(&image, clock, |rec| got.push(rec.clone()));
    let intact = image.get(..snapshot_end) == written.get(..snapshot_end);
    match scanned {
        Err(damage) => assert!(
            !intact,
            "{damage:?} in a store whose snapshot is whole (cut at {keep} of {}, {zeros} \
             zeros, changed: {changed})",
            written.len()
        ),
        Ok(scanned) => {
            assert!(
                intact,
                "a store read whose snapshot was cut at {keep} or changed"
            );
            let n = got.len();
            assert_eq!(got[..], history[..n], "records read that were not written");
            assert_eq!(scanned.records, n as u64, "the count of records read");
            assert_eq!(Some(&scanned.end), ends.get(n.wrapping_sub(1)), "the end");
            assert_eq!(image[..scanned.end], written[..scanned.end], "bytes read");
            assert_eq!(scanned.end + scanned.cut, image.len(), "the cut");
            if zeros == 0 && !changed {
                let whole = ends.iter().filter(|&&end| end <= keep).count();
                assert_eq!(n, whole, "records read from a store cut at {keep}");
            }
        }
    }
}

/// Scans `bytes` into a new engine, showing `each` record, and checks the engine's
/// accounting when the scan read the file.
fn restore(
    bytes: &[u8],
    clock: &Clock,
    mut each: impl FnMut(&Record),
) -> Result<format::Scanned, format::Damage> {
    let mut e = Engine::with_limits(Limits::default());
    let now = clock.instant;
    let scanned = format::scan(bytes, clock, |rec| {
        each(&rec);
        e.restore(rec, now);
    })?;
    e.restored();
    e.audit()
        .unwrap_or_else(|why| panic!("the engine's accounting after a restore: {why}"));
    Ok(scanned)
}

/// A store's history, for the `store` target and the format's tests: a snapshot (a
/// retained message, a session with a subscription and a delivery queued for it while
/// its client is away), then a log of what followed (the client back, deliveries at QoS 1
/// and 2 sent and acknowledged, QoS 2 from the client, a will, a second session that
/// subscribes, goes and ends). Every kind of record is here, messages with properties,
/// with empty ones and with none. Times are whole milliseconds from `clock`, so that they
/// read back as they were.
pub(crate) fn store_history(clock: &Clock) -> Vec<Record> {
    let ms = |ms: u64| clock.instant + Duration::from_millis(ms);
    let msg = |id, topic: &str, qos, retain, props: Option<Props>, expires| {
        let payload = Bytes::from(format!("payload of {id}: é"));
        let (topic, props) = (topic.to_string(), props.map(Box::new));
        let msg = Arc::new(Message {
            topic,
            payload,
            qos,
            retain,
            props,
            expires,
            id,
        });
        Record::Message { id, msg }
    };
    let full = Props {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(60),
        topic_alias: Some(3),
        response_topic: Some("t/reply".into()),
        correlation_data: Some(Bytes::from_static(b"\0\xff")),
        user_properties: vec![("k".into(), "v".into()), ("k".into(), "".into())],
        subscription_identifiers: vec![7, 300_000],
        content_type: Some("text/plain".into()),
    };
    let (c1, c2): (Arc<str>, Arc<str>) = ("c1".into(), "c2".into());
    let client = || c1.clone();
    let opts = |qos, id| SubOpts {
        qos,
        no_local: qos == 1,
        keep_retain: true,
        id,
    };
    let queued = |seq, msg, qos| Record::Queued {
        client: c1.clone(),
        seq,
        msg,
        qos,
        retain: false,
        sub_ids: vec![7],
        share: None,
    };
    vec![
        msg(1, "t/a", 1, true, Some(full), Some(ms(60_000))),
        Record::Retain {
            topic: "t/a".into(),
            id: Some(1),
        },
        Record::Session {
            client: client(),
            version: codec::Version::V5,
            expiry: 3600,
        },
        Record::User {
            client: client(),
            user: Some("alice".into()),
        },
        Record::Subscribe {
            client: client(),
            filter: "t/#".into(),
            opts: opts(2, Some(7)),
        },
        queued(1, 1, 1),
        Record::Away {
            client: client(),
            expires: Some(ms(3_600_000)),
        },
        Record::SnapshotEnd,
        msg(2, "t/b", 2, false, None, None),
        queued(2, 2, 2),
        Record::Session {
            client: client(),
            version: codec::Version::V5,
            expiry: 3600,
        },
        Record::Sent {
            client: client(),
            seq: 1,
            pkid: 1,
        },
        Record::Sent {
            client: client(),
            seq: 2,
            pkid: 2,
        },
        Record::Done {
            client: client(),
            seq: 1,
        },
        Record::Released {
            client: client(),
            seq: 2,
        },
        Record::Done {
            client: client(),
            seq: 2,
        },
        Record::Qos2In {
            client: client(),
            pkid: 9,
            held: true,
        },
        Record::Qos2In {
            client: client(),
            pkid: 9,
            held: false,
        },
        msg(3, "t/will", 1, false, Some(Props::default()), None),
        Record::Will {
            client: client(),
            at: ms(30_000),
            msg: 3,
        },
        Record::Away {
            client: client(),
            expires: None,
        },
        Record::WillDone { client: client() },
        Record::Session {
            client: c2.clone(),
            version: codec::Version::V311,
            expiry: u32::MAX,
        },
        Record::Subscribe {
            client: c2.clone(),
            filter: "$share/g/t/#".into(),
            opts: opts(1, None),
        },
        Record::Unsubscribe {
            client: c2.clone(),
            filter: "$share/g/t/#".into(),
        },
        Record::End { client: c2 },
        Record::Retain {
            topic: "t/a".into(),
            id: None,
        },
    ]
}
