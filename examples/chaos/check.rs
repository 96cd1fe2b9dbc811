//! The checker, in the spirit of Jepsen's total-queue: what each reader printed against
//! what each writer wrote and had acknowledged.
//!
//! A writer numbers its lines 1, 2, 3, … and feeds them to a chat-pub in sessions. A
//! session that exited 0 had every line acknowledged by the broker; one that did not is
//! indeterminate: its lines may or may not arrive, and neither counts against the tools.
//! For each reader and each writer:
//!
//! - lost: an acknowledged line the reader never printed;
//! - duplicated: a line printed again after its first print;
//! - reordered: a line printed (first time) after a later line of its writer;
//! - phantom: a printed line no writer wrote (unknown sender, or a number never fed).

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::capture::Seen;

/// One chat-pub run of a writer: lines `first..=last` were fed to it.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub first: u64,
    pub last: u64,
    /// chat-pub exited 0: the broker acknowledged every line.
    pub acked: bool,
    pub code: i32,
}

/// What one reader printed: per writer, the line numbers in the order printed.
#[derive(Debug, Default, Clone)]
pub struct Printed {
    pub by_writer: HashMap<usize, Vec<u64>>,
    /// Lines that name no writer or carry no number (kept for the report).
    pub strange: Vec<String>,
}

/// The findings for one reader (or the sum over readers).
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Verdict {
    pub acked: u64,
    pub indeterminate: u64,
    pub printed: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub phantom: u64,
    /// Of the lost lines, those the broker never sent to this reader (`--capture`).
    pub lost_unsent: u64,
    /// Lines the broker itself sent after a later line of their writer (`--capture`).
    pub reordered_by_broker: u64,
    /// Of the reordered lines, those the broker had sent in order (`--capture`; all of
    /// them without it).
    pub reordered_own: u64,
}

impl Verdict {
    /// Whether the promise held: nothing lost, doubled, reordered or made up.
    pub fn clean(&self) -> bool {
        self.lost + self.duplicated + self.reordered + self.phantom == 0
    }

    /// Whether the tools kept their part where the broker did not: every lost line is one
    /// the broker never delivered, nothing doubled or made up. Reorderings are reported,
    /// with how many the capture does not explain, but do not count here: the broker's
    /// order is read from the capture only approximately (a line whose first delivery
    /// was not acknowledged is placed at its redelivery), and with a broker that
    /// redelivers behind newer messages a reader cannot keep the writer's order anyway.
    pub fn clean_but_the_broker(&self) -> bool {
        self.lost == self.lost_unsent && self.duplicated + self.phantom == 0
    }

    pub fn add(&mut self, o: &Verdict) {
        self.acked += o.acked;
        self.indeterminate += o.indeterminate;
        self.printed += o.printed;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.phantom += o.phantom;
        self.lost_unsent += o.lost_unsent;
        self.reordered_by_broker += o.reordered_by_broker;
        self.reordered_own += o.reordered_own;
    }
}

/// Lines a reader is still waiting for: acknowledged ones it has not printed.
pub fn missing(writers: &[Vec<Session>], printed: &Printed) -> u64 {
    check(writers, printed).lost
}

/// The first `cap` acknowledged lines a reader never printed, as (writer, number).
pub fn lost_lines(writers: &[Vec<Session>], printed: &Printed, cap: usize) -> Vec<(usize, u64)> {
    let mut lost = Vec::new();
    for (w, sessions) in writers.iter().enumerate() {
        let seqs = printed.by_writer.get(&w).map_or(&[][..], Vec::as_slice);
        let seen: std::collections::HashSet<u64> = seqs.iter().copied().collect();
        let acked = sessions.iter().filter(|s| s.acked);
        lost.extend(
            acked
                .flat_map(|s| s.first..=s.last)
                .filter(|n| !seen.contains(n))
                .map(|n| (w, n)),
        );
    }
    lost.truncate(cap);
    lost
}

/// Adds to `v` (a reader's verdict) what the broker's part was, from the captures of
/// that reader's connections. Nothing is the broker's when the captures cannot be
/// trusted for it: no capture, a session the reader itself dropped (clean start,
/// unsubscribe), or a printed line the broker never sent (a gap in the capture).
pub fn attribute(
    v: &mut Verdict,
    writers: &[Vec<Session>],
    printed: &Printed,
    seen: Option<&Seen>,
) {
    let Some(seen) = seen.filter(|s| !s.dropped_its_session) else {
        return;
    };
    let gap = printed
        .by_writer
        .iter()
        .any(|(&w, ns)| ns.iter().any(|&n| !seen.sent.contains(&(w, n))));
    if gap {
        return;
    }
    let delivered: HashSet<(usize, u64)> = seen.delivered.iter().copied().collect();
    let lost = lost_lines(writers, printed, usize::MAX);
    v.lost_unsent = lost.iter().filter(|l| !delivered.contains(l)).count() as u64;
    let mut as_sent = Printed::default();
    for &(w, n) in &seen.delivered {
        as_sent.by_writer.entry(w).or_default().push(n);
    }
    let broker_late = late_lines(&as_sent);
    v.reordered_by_broker = broker_late.len() as u64;
    v.reordered_own = late_lines(printed).difference(&broker_late).count() as u64;
}

/// The lines printed (for the first time) after a later line of their writer.
fn late_lines(printed: &Printed) -> HashSet<(usize, u64)> {
    let mut late = HashSet::new();
    for (&w, ns) in &printed.by_writer {
        let (mut highest, mut seen) = (0, HashSet::new());
        for &n in ns {
            if seen.insert(n) {
                if n < highest {
                    late.insert((w, n));
                }
                highest = highest.max(n);
            }
        }
    }
    late
}

/// Checks one reader's output against every writer's sessions.
pub fn check(writers: &[Vec<Session>], printed: &Printed) -> Verdict {
    let mut v = Verdict {
        phantom: printed.strange.len() as u64,
        ..Verdict::default()
    };
    for (w, sessions) in writers.iter().enumerate() {
        let written = sessions.last().map_or(0, |s| s.last);
        let seqs = printed.by_writer.get(&w).map_or(&[][..], Vec::as_slice);
        // seen[n] for n in 1..=written.
        let mut seen = vec![false; written as usize + 1];
        let mut highest = 0;
        for &n in seqs {
            v.printed += 1;
            if n == 0 || n > written {
                v.phantom += 1;
                continue;
            }
            if std::mem::replace(&mut seen[n as usize], true) {
                v.duplicated += 1;
                continue;
            }
            if n < highest {
                v.reordered += 1;
                v.reordered_own += 1;
            }
            highest = highest.max(n);
        }
        for s in sessions {
            let n = s.last + 1 - s.first;
            if s.acked {
                v.acked += n;
                v.lost += (s.first..=s.last).filter(|&i| !seen[i as usize]).count() as u64;
            } else {
                v.indeterminate += n;
            }
        }
    }
    for (w, seqs) in &printed.by_writer {
        if *w >= writers.len() {
            v.printed += seqs.len() as u64;
            v.phantom += seqs.len() as u64;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(first: u64, last: u64, acked: bool) -> Session {
        let code = if acked { 0 } else { 1 };
        Session {
            first,
            last,
            acked,
            code,
        }
    }

    fn printed(w0: &[u64]) -> Printed {
        let mut p = Printed::default();
        p.by_writer.insert(0, w0.to_vec());
        p
    }

    #[test]
    fn every_acknowledged_line_once_in_order_is_clean() {
        let writers = vec![vec![session(1, 3, true), session(4, 5, true)]];
        let v = check(&writers, &printed(&[1, 2, 3, 4, 5]));
        assert!(v.clean(), "{v:?}");
        assert_eq!((v.acked, v.printed), (5, 5));
    }

    #[test]
    fn a_missing_acknowledged_line_is_lost_an_indeterminate_one_is_not() {
        let writers = vec![vec![session(1, 3, true), session(4, 6, false)]];
        let v = check(&writers, &printed(&[1, 3, 5]));
        assert_eq!((v.lost, v.acked, v.indeterminate), (1, 3, 3));
        assert_eq!(lost_lines(&writers, &printed(&[1, 3, 5]), 10), [(0, 2)]);
        assert_eq!(missing(&writers, &printed(&[1, 2, 3])), 0);
    }

    #[test]
    fn a_second_print_is_a_duplicate_and_an_earlier_line_after_a_later_is_reordered() {
        let writers = vec![vec![session(1, 4, true)]];
        let v = check(&writers, &printed(&[1, 3, 2, 3, 4]));
        assert_eq!((v.duplicated, v.reordered, v.lost), (1, 1, 0));
        assert!(!v.clean());
    }

    #[test]
    fn lines_never_written_are_phantoms() {
        let writers = vec![vec![session(1, 2, true)]];
        let mut p = printed(&[1, 2, 9]);
        p.by_writer.insert(5, vec![1]);
        p.strange.push("hello".into());
        let v = check(&writers, &p);
        assert_eq!(v.phantom, 3);
    }

    fn seen(delivered: &[u64], sent_too: &[u64]) -> Seen {
        let delivered: Vec<(usize, u64)> = delivered.iter().map(|&n| (0, n)).collect();
        let mut sent: HashSet<(usize, u64)> = delivered.iter().copied().collect();
        sent.extend(sent_too.iter().map(|&n| (0, n)));
        Seen {
            delivered,
            sent,
            dropped_its_session: false,
        }
    }

    #[test]
    fn what_the_broker_never_delivered_or_delivered_out_of_order_is_its_own() {
        let writers = vec![vec![session(1, 6, true)]];
        // The broker delivered 1, 3, 2, 5 (never 4; 6 written but reset unread); the
        // reader printed 1, 3, 2 and lost 5.
        let judged = |p: &[u64], s: &Seen| {
            let p = printed(p);
            let mut v = check(&writers, &p);
            attribute(&mut v, &writers, &p, Some(s));
            v
        };
        let broker = seen(&[1, 3, 2, 5], &[6]);
        let v = judged(&[1, 3, 2], &broker);
        assert_eq!((v.lost, v.lost_unsent), (3, 2));
        assert_eq!(
            (v.reordered, v.reordered_by_broker, v.reordered_own),
            (1, 1, 0)
        );
        assert!(!v.clean_but_the_broker(), "5 was delivered and not printed");
        let v = judged(&[1, 3, 2, 5], &broker);
        assert!(v.clean_but_the_broker() && !v.clean(), "{v:?}");
        // A reordering of its own is not explained by another of the broker's.
        let v = judged(&[1, 2, 5, 3], &broker);
        assert_eq!((v.reordered, v.reordered_own), (1, 1));
    }

    #[test]
    fn an_untrustworthy_capture_excuses_nothing() {
        let writers = vec![vec![session(1, 3, true)]];
        let p = printed(&[1, 3]);
        let excused = |s: &Seen| {
            let mut v = check(&writers, &p);
            attribute(&mut v, &writers, &p, Some(s));
            v.lost_unsent
        };
        assert_eq!(excused(&seen(&[1, 3], &[])), 1);
        // 3 was printed but the capture has no sign of it: a gap.
        assert_eq!(excused(&seen(&[1], &[])), 0);
        let mut dropped = seen(&[1, 3], &[]);
        dropped.dropped_its_session = true;
        assert_eq!(excused(&dropped), 0);
    }

    #[test]
    fn verdicts_add_up() {
        let writers = vec![vec![session(1, 2, true)]];
        let mut sum = Verdict::default();
        sum.add(&check(&writers, &printed(&[1])));
        sum.add(&check(&writers, &printed(&[1, 2, 2])));
        assert_eq!(
            (sum.acked, sum.lost, sum.duplicated, sum.printed),
            (4, 1, 1, 4)
        );
    }
}
