//! What an encrypted room does not show, said: each kind of payload that did not open
//! reported once and counted for the summary at exit, and the marks an output without
//! marks (`--raw`, a `--format` without `{verified}`) cannot show, told on stderr.

use super::{Kind, Room};
use crate::escape::escaped;
use crate::room::seal::Rejected;
use crate::room::sign::Mark;

impl Room {
    /// Says on stderr what a message's mark would have said, for an output that cannot
    /// show marks (`--raw`, a `--format` without them): a changed key or an unsigned
    /// record under a signing nick every time, a new key once (it is new once), an
    /// unsigned one once per run.
    pub fn mark_unshown(&mut self, topic: &[u8], nick: Option<&str>, mark: Mark) {
        let why = match mark {
            Mark::Verified(_) | Mark::Nameless(_) => return,
            Mark::Unsigned if std::mem::replace(&mut self.told_unsigned, true) => return,
            Mark::Unsigned => {
                "is unsigned (format version 1); more like it are not reported".to_owned()
            }
            Mark::Downgraded => "is unsigned, but its nick signs: not verified".to_owned(),
            Mark::NewKey(fp) => format!("is signed with a key new to this nick ({fp})"),
            Mark::Changed(fp) => {
                format!(
                    "is signed with a key other than its nick's ({fp}): KEY CHANGED, not verified"
                )
            }
        };
        log::warn!(
            "a message on '{}' from '{}' {why}",
            escaped(&String::from_utf8_lossy(topic)),
            escaped(nick.unwrap_or_default())
        );
    }

    /// Counts a payload that was not shown; the first of its kind is reported.
    pub fn rejected(&mut self, topic: &[u8], why: Kind, is_presence: bool) {
        self.counts[index(why)] += 1;
        if !self.reported.insert((why, is_presence)) {
            return;
        }
        let what = match is_presence {
            true => "a presence announcement",
            false => "a message",
        };
        log::warn!(
            "not shown: {what} on '{}' {}; more like it are only counted",
            escaped(&String::from_utf8_lossy(topic)),
            phrase(why)
        );
    }

    /// What to say at the end of the run: how many payloads were not shown, by kind.
    /// And how many were still waiting for their room's key (`--timeout`, a signal).
    pub fn summary(&self) -> Option<String> {
        let waiting = (self.load.0 > 0).then(|| {
            format!(
                "{} payload(s) not shown: still waiting for their room's key at the end",
                self.load.0
            )
        });
        match (self.rejected_summary(), waiting) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        }
    }

    fn rejected_summary(&self) -> Option<String> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        let kinds = [
            Kind::Rejected(Rejected::Plain),
            Kind::Rejected(Rejected::UnknownVersion),
            Kind::Rejected(Rejected::Malformed),
            Kind::Rejected(Rejected::Forged),
            Kind::Throttled,
            Kind::BadSignature,
        ];
        let parts: Vec<String> = kinds
            .iter()
            .filter(|&&k| self.counts[index(k)] > 0)
            .map(|&k| format!("{} {}", self.counts[index(k)], code(k)))
            .collect();
        let what = match self.counts[index(Kind::BadSignature)] {
            0 => "not sealed with the room's secret",
            _ => "not sealed with the room's secret, or not signed right",
        };
        Some(format!(
            "{total} payload(s) not shown: {what} ({})",
            parts.join(", ")
        ))
    }
}

fn index(why: Kind) -> usize {
    match why {
        Kind::Rejected(Rejected::Plain) => 0,
        Kind::Rejected(Rejected::UnknownVersion) => 1,
        Kind::Rejected(Rejected::Malformed) => 2,
        Kind::Rejected(Rejected::Forged) => 3,
        Kind::Throttled => 4,
        Kind::BadSignature => 5,
    }
}

/// The kind of a payload not shown, as `--json` and the summary name it.
pub fn code(why: Kind) -> &'static str {
    match why {
        Kind::Rejected(Rejected::Plain) => "plain",
        Kind::Rejected(Rejected::UnknownVersion) => "unknown-version",
        Kind::Rejected(Rejected::Malformed) => "malformed",
        Kind::Rejected(Rejected::Forged) => "forged",
        Kind::Throttled => "throttled",
        Kind::BadSignature => "bad-signature",
    }
}

fn phrase(why: Kind) -> &'static str {
    match why {
        Kind::Rejected(Rejected::Plain) => "is not encrypted",
        Kind::Rejected(Rejected::UnknownVersion) => {
            "is encrypted with a format version this build does not know"
        }
        Kind::Rejected(Rejected::Malformed) => "is a malformed encrypted payload",
        Kind::Rejected(Rejected::Forged) => {
            "does not open with the room's secret (another secret, copied from another topic, \
             or changed on the way)"
        }
        Kind::Throttled => {
            "was not opened: too many new rooms at once, or too much waiting for their keys \
             (a flood of new topics?); a new room's key is derived when the pace drops"
        }
        Kind::BadSignature => {
            "opens with the room's secret but its signature does not check (forged or \
             changed by someone who has the secret)"
        }
    }
}
