//! Connections that die young, without I/O. A broker that refuses a message by closing
//! the connection (a message over its size limit under MQTT 3.1.1, a QoS it does not
//! support, a topic it refuses) does so as soon as the message arrives, and the oldest
//! unacknowledged message is sent first on every new connection: the same message ends
//! each one. After [`GIVE_UP_AFTER`] such losses in a row, with no acknowledgement in
//! between, that message is taken for the cause and given up. The streak also sets the
//! pause before the next attempt.

use std::time::{Duration, Instant};

use crate::mqtt::dial::Backoff;

/// Connections lost in a row, with no acknowledgement in between, after which the oldest
/// unacknowledged message is given up.
pub const GIVE_UP_AFTER: u32 = 3;
/// A connection that lived longer than this was lost for another reason (a cluster busy
/// electing a new leader after a node died closes connections after seconds): its loss
/// starts a new streak instead of extending one.
pub const POISON_WINDOW: Duration = Duration::from_millis(1500);

/// The losses in a row and when the current connection was made.
#[derive(Debug, Default)]
pub struct Streak {
    losses: Backoff,
    /// When the current (or last) connection was accepted.
    since: Option<Instant>,
}

impl Streak {
    pub fn connected(&mut self, now: Instant) {
        self.since = Some(now);
    }

    /// Whether a connection was accepted at least once.
    pub fn connected_once(&self) -> bool {
        self.since.is_some()
    }

    /// An acknowledgement: the connection works, the streak ends.
    pub fn acknowledged(&mut self) {
        self.losses.reset();
    }

    /// A connection lost at `now`; true when the streak is long enough to give up the
    /// oldest message (the streak starts over then).
    pub fn lost(&mut self, now: Instant) -> bool {
        let lived = self.since.map(|s| now.saturating_duration_since(s));
        if lived.is_some_and(|l| l > POISON_WINDOW) {
            self.losses.reset();
        }
        if self.losses.failed() < GIVE_UP_AFTER {
            return false;
        }
        self.losses.reset();
        true
    }

    /// The pause before the next attempt.
    pub fn pause(&self) -> Duration {
        self.losses.pause()
    }
}

/// What is said of the message on `line` when it is given up.
pub fn given_up(line: impl std::fmt::Display) -> String {
    format!(
        "{line}: not sent: the broker closed the connection each of the {GIVE_UP_AFTER} times \
         this message was sent; it may be too large for the broker, at a QoS it does not \
         support, on a topic it refuses, or not authorized"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn young_losses_in_a_row_give_up_at_the_third_and_start_over() {
        let t0 = Instant::now();
        let mut s = Streak::default();
        let verdicts: Vec<bool> = (0..2 * GIVE_UP_AFTER)
            .map(|_| {
                s.connected(t0);
                s.lost(t0)
            })
            .collect();
        assert_eq!(verdicts, [false, false, true, false, false, true]);
    }

    #[test]
    fn an_acknowledgement_or_a_long_life_ends_the_streak() {
        let t0 = Instant::now();
        let mut s = Streak::default();
        s.connected(t0);
        assert!(!s.lost(t0) && !s.lost(t0));
        s.acknowledged();
        assert!(!s.lost(t0) && !s.lost(t0));
        let later = t0 + POISON_WINDOW * 2;
        assert!(!s.lost(later), "lived past the poison window: a new streak");
        assert!(!s.lost(later - POISON_WINDOW) && s.lost(t0));
    }

    #[test]
    fn the_pause_grows_with_the_streak() {
        let mut s = Streak::default();
        assert_eq!(s.pause(), Duration::ZERO);
        s.lost(Instant::now());
        let one = s.pause();
        s.lost(Instant::now());
        assert!(s.pause() > one && one > Duration::ZERO);
    }
}
