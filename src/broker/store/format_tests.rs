//! The store format: every kind of record read back as written, and files cut short,
//! changed or of something else read as a torn tail or as damage, as [`scan`] promises.

use std::collections::HashSet;
use std::mem::discriminant;

use super::fields::{self, tag};
use super::*;
use crate::broker::engine::Version;
use crate::broker::fuzzing::store::store_history;

/// A clock whose wall-clock time is not a whole millisecond, as a real one.
fn clock() -> Clock {
    Clock {
        instant: Instant::now(),
        unix: UNIX_EPOCH + Duration::from_nanos(1_800_000_000_123_456_789),
    }
}

/// The history written as a store, and where each record's frame ends in it.
fn written(clock: &Clock, history: &[Record]) -> (Vec<u8>, Vec<usize>) {
    let mut file = MAGIC.to_vec();
    let mut ends = Vec::new();
    for rec in history {
        encode(rec, clock, &mut file);
        ends.push(file.len());
    }
    (file, ends)
}

/// Scans `bytes` with a torn tail of at most `torn_max` bytes, keeping what it reads.
fn read(bytes: &[u8], clock: &Clock, torn_max: usize) -> (Result<Scanned, Damage>, Vec<Record>) {
    let mut got = Vec::new();
    let scanned = scan_with(bytes, clock, torn_max, |rec| got.push(rec));
    (scanned, got)
}

/// A frame with a good checksum around any payload.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(payload.len()).unwrap().to_le_bytes().to_vec();
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Where the snapshot of `history` ends in its store.
fn snapshot_end(history: &[Record], ends: &[usize]) -> usize {
    ends[history
        .iter()
        .position(|r| *r == Record::SnapshotEnd)
        .unwrap()]
}

#[test]
fn every_kind_of_record_reads_back_as_written() {
    let clock = clock();
    let history = store_history(&clock);
    let kinds: HashSet<_> = history.iter().map(discriminant).collect();
    assert_eq!(kinds.len(), 16, "the history has every kind of record");
    let (file, ends) = written(&clock, &history);
    let (scanned, got) = read(&file, &clock, TORN_MAX);
    let records = history.len() as u64;
    let whole = Scanned {
        records,
        end: file.len(),
        cut: 0,
    };
    assert_eq!(scanned, Ok(whole));
    assert_eq!(got, history);
    assert_eq!(ends.last(), Some(&file.len()));
    // Each record alone too: a frame holds exactly one.
    for rec in &history {
        let mut one = Vec::new();
        encode(rec, &clock, &mut one);
        let payload = frame(&one).unwrap();
        assert_eq!(one.len(), FRAME + payload.len());
        let back = fields::read(payload, &clock);
        assert_eq!(back.as_ref(), Ok(rec));
    }
}

#[test]
fn times_read_back_within_a_millisecond_and_any_time_reads() {
    let clock = clock();
    for ahead in [
        -86_400_000_000_i64,
        -1_999_999,
        -1,
        0,
        1,
        1_500_001,
        86_400_000_000,
    ] {
        let at = match ahead < 0 {
            true => clock.instant - Duration::from_nanos(ahead.unsigned_abs()),
            false => clock.instant + Duration::from_nanos(ahead.unsigned_abs()),
        };
        let back = clock.instant_of(clock.to_unix_ms(at));
        let off = back.max(at) - back.min(at);
        assert!(
            off < Duration::from_millis(1),
            "{ahead} ns read back {off:?} off"
        );
    }
    // A restart an hour later, whose monotonic clock started anew (here 5 s on), reads
    // what was two hours ahead as one hour ahead.
    let later = Clock {
        instant: clock.instant + Duration::from_secs(5),
        unix: clock.unix + Duration::from_secs(3600),
    };
    let at = clock.instant + Duration::from_secs(7200);
    let expected = later.instant + Duration::from_secs(3600);
    assert_eq!(later.instant_of(clock.to_unix_ms(at)), expected);
    for ms in [i64::MIN, -1, 0, i64::MAX] {
        let _ = clock.instant_of(ms);
    }
    assert!(clock.instant_of(i64::MAX) > clock.instant + Duration::from_secs(u32::MAX.into()));
}

#[test]
fn a_log_cut_anywhere_reads_up_to_the_cut() {
    let clock = clock();
    let history = store_history(&clock);
    let (file, ends) = written(&clock, &history);
    let snapshot = snapshot_end(&history, &ends);
    for keep in snapshot..=file.len() {
        let (scanned, got) = read(&file[..keep], &clock, TORN_MAX);
        let n = ends.iter().filter(|&&end| end <= keep).count();
        let end = ends[n - 1];
        let expected = Scanned {
            records: n as u64,
            end,
            cut: keep - end,
        };
        assert_eq!(scanned, Ok(expected), "cut at {keep}");
        assert_eq!(got, history[..n], "cut at {keep}");
    }
}

#[test]
fn a_snapshot_cut_short_is_damage() {
    let clock = clock();
    let history = store_history(&clock);
    let (file, ends) = written(&clock, &history);
    for keep in 0..snapshot_end(&history, &ends) {
        let (scanned, _) = read(&file[..keep], &clock, TORN_MAX);
        let Err(Damage { why, .. }) = scanned else {
            panic!("cut at {keep}: {scanned:?}");
        };
        let expected = match keep < MAGIC.len() {
            true => ["empty file", "header is cut short"],
            false => ["snapshot is incomplete"; 2],
        };
        assert!(
            expected.iter().any(|e| why.contains(e)),
            "cut at {keep}: {why}"
        );
    }
}

#[test]
fn a_changed_byte_is_damage_in_the_snapshot_and_a_torn_tail_after_it() {
    let clock = clock();
    let history = store_history(&clock);
    let (file, ends) = written(&clock, &history);
    let snapshot = snapshot_end(&history, &ends);
    for at in 0..file.len() {
        let mut changed = file.clone();
        changed[at] ^= 0x5a;
        let (scanned, got) = read(&changed, &clock, TORN_MAX);
        if at < snapshot {
            assert!(
                scanned.is_err(),
                "byte {at} of the snapshot changed: {scanned:?}"
            );
            continue;
        }
        // Cut from the record the change is in.
        let n = ends.iter().filter(|&&end| end <= at).count();
        let end = ends[n - 1];
        let expected = Scanned {
            records: n as u64,
            end,
            cut: file.len() - end,
        };
        assert_eq!(scanned, Ok(expected), "byte {at} changed");
        assert_eq!(got, history[..n]);
    }
}

#[test]
fn zeros_after_the_last_record_are_a_torn_tail() {
    let clock = clock();
    let history = store_history(&clock);
    let (mut file, _) = written(&clock, &history);
    let end = file.len();
    file.resize(end + 4096, 0);
    let records = history.len() as u64;
    let (scanned, got) = read(&file, &clock, TORN_MAX);
    assert_eq!(
        scanned,
        Ok(Scanned {
            records,
            end,
            cut: 4096
        })
    );
    assert_eq!(got, history);
}

#[test]
fn a_bad_record_far_from_the_end_is_damage() {
    let clock = clock();
    let history = store_history(&clock);
    let (mut file, _) = written(&clock, &history);
    let end = file.len();
    let records = history.len() as u64;
    // A length larger than any record, then more bytes than a crash leaves unwritten.
    file.extend_from_slice(&u32::MAX.to_le_bytes());
    file.resize(end + 1000, 7);
    let (scanned, _) = read(&file, &clock, 1000);
    assert_eq!(
        scanned,
        Ok(Scanned {
            records,
            end,
            cut: 1000
        })
    );
    let (scanned, _) = read(&file, &clock, 999);
    let damage = scanned.unwrap_err();
    assert_eq!(damage.offset, end);
    assert!(
        damage.why.contains("more than the largest"),
        "{}",
        damage.why
    );
    assert!(
        damage.why.contains("1000 bytes before the end"),
        "{}",
        damage.why
    );
}

#[test]
fn a_record_that_does_not_read_is_damage_even_at_the_end() {
    let clock = clock();
    let history = store_history(&clock);
    let (file, _) = written(&clock, &history);
    let mut session = Vec::new();
    let rec = Record::Session {
        client: "c".into(),
        version: Version::V5,
        expiry: 1,
    };
    encode(&rec, &clock, &mut session);
    let payload = session[FRAME..].to_vec();
    let with = |bytes: &[u8]| [payload.clone(), bytes.to_vec()].concat();
    let mut bad = vec![
        (vec![99], "unknown kind of record (99)"),
        (vec![0], "unknown kind of record (0)"),
        (with(&[0]), "bytes after its end (1)"),
        (payload[..payload.len() - 1].to_vec(), "ends early"),
        (vec![tag::END, 2, 0xc3, 0x28], "not UTF-8"),
        (
            vec![tag::SESSION, 1, b'c', 3, 1, 0, 0, 0],
            "protocol level 3",
        ),
        (vec![tag::RELEASED, 1, b'c', 0x80], "ends early"),
        (vec![tag::QOS2_IN, 1, b'c', 1, 0, 2], "a bool"),
        (vec![tag::RETAIN, 1, b't', 2], "a bool"),
        (vec![tag::SNAPSHOT_END], "a second end of the snapshot"),
    ];
    let mut queued = vec![tag::QUEUED, 1, b'c', 1, 1, 3];
    bad.push((queued.clone(), "QoS 3"));
    queued[5] = 1;
    bad.push((
        [&queued[..], &[0, 0xff, 0xff, 0xff, 0xff, 0x0f]].concat(),
        "list of",
    ));
    for (payload, expected) in bad {
        let changed = [&file[..], &framed(&payload)].concat();
        let (scanned, got) = read(&changed, &clock, TORN_MAX);
        let damage = scanned.unwrap_err();
        assert_eq!(damage.offset, file.len(), "{payload:?}");
        assert!(damage.why.contains(expected), "{payload:?}: {}", damage.why);
        assert_eq!(got, history);
    }
}

#[test]
fn numbers_hold_64_bits() {
    let clock = clock();
    for seq in [
        0,
        1,
        127,
        128,
        300,
        u64::from(u32::MAX),
        u64::MAX - 1,
        u64::MAX,
    ] {
        let rec = Record::Done {
            client: "c".into(),
            seq,
        };
        let mut payload = Vec::new();
        fields::write(&rec, &clock, &mut payload);
        assert!(payload.len() <= 3 + 10, "{seq}: {payload:?}");
        assert_eq!(fields::read(&payload, &clock), Ok(rec));
    }
    let mut done = vec![tag::DONE, 1, b'c'];
    done.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
    let why = fields::read(&done, &clock).unwrap_err();
    assert!(why.contains("more than 64 bits"), "{why}");
}

#[test]
fn a_file_of_something_else_is_damage() {
    let clock = clock();
    let cases: [(&[u8], &str); 5] = [
        (b"", "an empty file"),
        (b"mqttchat st", "the header is cut short (11 of 16 bytes)"),
        (
            b"mqttchat store 2\x00\x00\x00\x00",
            "another version ('mqttchat store 2'",
        ),
        (b"{\"retained\": []}\n", "not a chat-broker store"),
        (b"mqttchat store 1", "the snapshot is incomplete"),
    ];
    for (bytes, expected) in cases {
        let (scanned, got) = read(bytes, &clock, TORN_MAX);
        let damage = scanned.unwrap_err();
        assert!(damage.why.contains(expected), "{bytes:?}: {}", damage.why);
        assert!(got.is_empty());
    }
    // A log without its snapshot's end.
    let mut file = MAGIC.to_vec();
    encode(&Record::End { client: "c".into() }, &clock, &mut file);
    let (scanned, _) = read(&file, &clock, TORN_MAX);
    assert_eq!(scanned.unwrap_err().offset, file.len());
}

/// The fuzz target's own checks (a store cut, zeros appended, bytes changed, the records
/// read restored into an engine) at every cut of the history.
#[test]
fn the_store_fuzz_target_holds_at_every_cut() {
    let clock = clock();
    let (file, _) = written(&clock, &store_history(&clock));
    for keep in 0..=u16::try_from(file.len()).unwrap() {
        let [a, b] = keep.to_le_bytes();
        crate::broker::fuzzing::store(&[a, b]);
        let [c, d] = (keep / 2).to_le_bytes();
        crate::broker::fuzzing::store(&[a, b, 16, c, d, 0x5a]);
    }
}
