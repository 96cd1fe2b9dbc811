//! The lines sent through the pairs, reading them back from a subscriber, and the
//! tally of what arrived.
//!
//! A data line is `seq=NNNNNNNN t=TTTTTTTTTTTTTTTTTTT ` and filler up to the message
//! size: a sequence number, and the harness clock's nanoseconds when the line was
//! written (latency runs; 0 otherwise). A marker line is `mark=TOKEN`. Subscribers may
//! add a prefix (chat-sub prints the time and sender first): both are found anywhere in
//! a line.

use std::io::Read;
use std::process::ChildStdout;
use std::sync::mpsc::Sender;
use std::thread;
use std::time::Instant;

const FILLER: &[u8] = b"The quick brown fox jumps over the lazy dog 0123456789 ";

/// The shortest data line (the newline not counted).
pub const MIN_SIZE: usize = "seq=00000000 t=0000000000000000000 ".len();

/// Nanoseconds since the harness started: the send and receive times of latency runs
/// are both read from it, in this one process.
#[derive(Clone, Copy)]
pub struct Clock(pub Instant);

impl Clock {
    pub fn ns(self) -> u64 {
        self.at(Instant::now())
    }

    pub fn at(self, t: Instant) -> u64 {
        t.saturating_duration_since(self.0).as_nanos() as u64
    }
}

/// One data line of `size` bytes plus its newline.
pub fn make_line(seq: u32, sent_ns: u64, size: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(format!("seq={seq:08} t={sent_ns:019} ").as_bytes());
    while out.len() - start < size {
        let room = size - (out.len() - start);
        out.extend_from_slice(&FILLER[..room.min(FILLER.len())]);
    }
    out.push(b'\n');
}

/// What a subscriber printed, stamped when the harness read it.
#[derive(Debug, PartialEq)]
pub enum Event {
    Data { seq: u32, sent_ns: u64, at_ns: u64 },
    Mark(String),
    Eof,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn digits(b: &[u8], n: usize) -> Option<u64> {
    let d = b.get(..n)?;
    d.iter()
        .all(u8::is_ascii_digit)
        .then(|| d.iter().fold(0u64, |acc, c| acc * 10 + u64::from(c - b'0')))
}

/// The event a line stands for, if any (presence notices and the like are not).
pub fn parse(line: &[u8], at_ns: u64) -> Option<Event> {
    if let Some(i) = find(line, b"seq=") {
        let seq = digits(&line[i + 4..], 8)? as u32;
        let sent_ns = line
            .get(i + 12..)
            .filter(|rest| rest.starts_with(b" t="))
            .and_then(|rest| digits(&rest[3..], 19))
            .unwrap_or(0);
        return Some(Event::Data {
            seq,
            sent_ns,
            at_ns,
        });
    }
    let i = find(line, b"mark=")?;
    let token = line[i + 5..].split(|c| c.is_ascii_whitespace()).next()?;
    Some(Event::Mark(String::from_utf8_lossy(token).into_owned()))
}

/// Reads a subscriber's stdout on a thread of its own; every line read in one go gets
/// the time of that read, and goes to `tx` in one batch with the others (one wake-up of
/// the harness per read, not per line: it shares the CPUs with the tools).
pub fn spawn_reader(mut out: ChildStdout, clock: Clock, tx: Sender<Vec<Event>>) {
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut partial = Vec::new();
        while let Ok(n @ 1..) = out.read(&mut buf) {
            let at_ns = clock.ns();
            partial.extend_from_slice(&buf[..n]);
            let Some(end) = partial.iter().rposition(|&c| c == b'\n') else {
                continue;
            };
            let lines = partial[..end].split(|&c| c == b'\n');
            let batch: Vec<Event> = lines.filter_map(|l| parse(l, at_ns)).collect();
            partial.drain(..=end);
            if !batch.is_empty() && tx.send(batch).is_err() {
                return;
            }
        }
        let _ = tx.send(vec![Event::Eof]);
    });
}

/// What arrived of the messages 0..expected.
#[derive(Default)]
pub struct Tally {
    seen: Vec<bool>,
    pub unique: u32,
    pub duplicated: u32,
    /// Arrived after a message sent later.
    pub reordered: u32,
    pub invalid: u32,
    highest: Option<u32>,
    /// When the last new message arrived (the last one of all, once complete).
    pub last_ns: Option<u64>,
    /// Receive minus send time of each message, for latency runs.
    pub latencies_ns: Vec<u64>,
}

impl Tally {
    pub fn new(expected: u32) -> Tally {
        Tally {
            seen: vec![false; expected as usize],
            ..Tally::default()
        }
    }

    pub fn add(&mut self, seq: u32, sent_ns: u64, at_ns: u64) {
        let Some(seen) = self.seen.get_mut(seq as usize) else {
            self.invalid += 1;
            return;
        };
        if self.highest.is_some_and(|h| seq < h) {
            self.reordered += 1;
        }
        self.highest = self.highest.max(Some(seq));
        if *seen {
            self.duplicated += 1;
            return;
        }
        *seen = true;
        self.unique += 1;
        self.last_ns = Some(at_ns);
        if sent_ns > 0 {
            self.latencies_ns.push(at_ns.saturating_sub(sent_ns));
        }
    }

    pub fn expected(&self) -> u32 {
        self.seen.len() as u32
    }

    pub fn lost(&self) -> u32 {
        self.expected() - self.unique
    }

    pub fn complete(&self) -> bool {
        self.lost() == 0
    }

    pub fn has(&self, seq: u32) -> bool {
        self.seen.get(seq as usize).copied().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_size_asked_for_and_parse_back() {
        for size in [MIN_SIZE, 100, 1000] {
            let mut line = Vec::new();
            make_line(42, 1_234_567, size, &mut line);
            assert_eq!(line.len(), size + 1);
            let prefixed = [b"12:00:00 bench: ".as_slice(), &line[..size]].concat();
            let ev = parse(&prefixed, 9);
            let want = Event::Data {
                seq: 42,
                sent_ns: 1_234_567,
                at_ns: 9,
            };
            assert_eq!(ev, Some(want));
        }
    }

    #[test]
    fn markers_and_other_lines() {
        let ev = parse(b"12:00:00 mark=ready-1f2e", 0);
        assert_eq!(ev, Some(Event::Mark("ready-1f2e".into())));
        assert_eq!(parse(b"12:00:00 -> alice joined", 0), None);
        assert_eq!(parse(b"seq=12", 0), None);
    }

    #[test]
    fn tally_counts_lost_duplicated_and_reordered() {
        let mut t = Tally::new(5);
        for (seq, at) in [(0, 10), (2, 20), (1, 30), (2, 40), (9, 50)] {
            t.add(seq, 0, at);
        }
        assert_eq!((t.unique, t.lost(), t.duplicated), (3, 2, 1));
        assert_eq!((t.reordered, t.invalid), (1, 1));
        assert_eq!(t.last_ns, Some(30));
        assert!(t.has(1) && !t.has(3) && !t.complete());
    }
}
