//! Whom to connect to next, how, and after what pause: the connection policy as a state
//! machine without I/O. The driver ([`crate::connect`]) asks [`Dial::next`] for an
//! attempt, makes it, and reports how it ended; `Dial` answers with a [`Step`].
//!
//! What it decides:
//! - **Several brokers.** The nodes of one cluster, tried in order. A failed attempt moves
//!   on to the next node at once; only after a whole round failed does it pause (the
//!   [`Backoff`]), so one dead node costs a failover nothing. A lost connection moves on
//!   too ([`Dial::lost`]): the node that dropped it is tried last.
//! - **The protocol version** (`-V auto`). MQTT 5 is offered first. A broker that refuses
//!   the level (a 3.1.1 CONNACK with return code 1, an MQTT 5 CONNACK 0x84) or closes the
//!   connection before any CONNACK gets a 3.1.1 CONNECT at once, and 3.1.1 is kept for the
//!   rest of the run, reconnects and other nodes included. A strict `-V 5` or `-V 3` that
//!   the broker refuses is fatal at once: waiting would not change the broker's mind.
//! - **The will** (chat-pub's presence). A broker may refuse the CONNECT because of the
//!   will (its topic, its retain flag, an ACL): an MQTT 5 reason code that can be about the
//!   will, a 3.1.1 "not authorized", or a 3.1.1 connection closed before CONNACK. The next
//!   attempt goes without it; if that one is accepted, the will was the cause and is left
//!   out for the rest of the run ([`Note::WillRefused`]); if not, it is put back.

use std::time::Duration;

use crate::wire::{Refusal, Version};

/// Longest pause between connection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Pauses for a streak of failures: none after a success, then 100 ms doubling up to
/// [`MAX_BACKOFF`]. Used between rounds of connection attempts, and between connections
/// that a broker keeps closing right away (no busy loop in either case).
#[derive(Debug, Default, Clone, Copy)]
pub struct Backoff {
    streak: u32,
}

impl Backoff {
    /// How long to wait before the next attempt.
    pub fn pause(&self) -> Duration {
        match self.streak {
            0 => Duration::ZERO,
            n => (Duration::from_millis(100) * 2u32.saturating_pow(n - 1)).min(MAX_BACKOFF),
        }
    }

    /// Records one more failure in a row; returns the streak length.
    pub fn failed(&mut self) -> u32 {
        self.streak = self.streak.saturating_add(1);
        self.streak
    }

    /// Ends the streak.
    pub fn reset(&mut self) {
        self.streak = 0;
    }
}

/// `-V`: which protocol versions the tools may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionChoice {
    /// Offer MQTT 5; fall back to 3.1.1 for the run when the broker refuses it.
    Auto,
    /// This version only.
    Only(Version),
}

/// One connection attempt as planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Try {
    /// Index into the broker list.
    pub node: usize,
    pub version: Version,
    /// Whether the CONNECT carries the will.
    pub will: bool,
}

/// How a failed attempt ended, as far as the policy cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The broker refused in its CONNACK.
    Refused(Refusal),
    /// The broker closed the connection after our CONNECT, before any CONNACK.
    Closed,
    /// A certificate that does not verify, on either side.
    Certificate,
    /// Anything else: nobody listening, a reset, a timeout, not an MQTT broker.
    Failed,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Make the attempt [`Dial::next`] says after this pause (zero: at once).
    Retry(Duration),
    /// Stop: retrying cannot help.
    Fatal(Fatal),
}

/// Why retrying cannot help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fatal {
    /// The certificate does not verify (exit 3).
    Certificate,
    /// Bad credentials or not authorized (exit 4).
    Credentials,
    /// The broker rejects the client id (exit 4).
    ClientId,
    /// The broker does not speak `version`, which `-V` insists on (exit 3).
    Version(Version),
}

/// Something the user is told once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// `-V auto` fell back to MQTT 3.1.1 for the run.
    FellBack,
    /// The broker refused the will: the run goes on without it.
    WillRefused,
}

/// The connection policy's state.
#[derive(Debug, Clone)]
pub struct Dial {
    nodes: usize,
    node: usize,
    choice: VersionChoice,
    /// `-V auto` fell back to 3.1.1 (for good).
    fell_back: bool,
    /// Whether connections carry the will.
    will: bool,
    /// The will is left out on trial after a refusal it may have caused.
    will_on_trial: bool,
    /// Ordinary failures since the last connection.
    failures: u32,
    /// Pauses between rounds of failed attempts.
    backoff: Backoff,
    /// Strict MQTT 5 attempts closed before CONNACK, in a row.
    closed_v5: u32,
}

/// Strict `-V 5` attempts closed before CONNACK in a row that mean "does not speak 5".
const CLOSED_V5_FATAL: u32 = 2;

impl Dial {
    /// A policy for `nodes` brokers (at least one); `will`: whether CONNECT has one.
    pub fn new(nodes: usize, choice: VersionChoice, will: bool) -> Dial {
        Dial {
            nodes: nodes.max(1),
            node: 0,
            choice,
            fell_back: false,
            will,
            will_on_trial: false,
            failures: 0,
            backoff: Backoff::default(),
            closed_v5: 0,
        }
    }

    /// The attempt to make now.
    pub fn next(&self) -> Try {
        Try {
            node: self.node,
            version: self.version(),
            will: self.will && !self.will_on_trial,
        }
    }

    /// The version offered now.
    pub fn version(&self) -> Version {
        match self.choice {
            VersionChoice::Only(v) => v,
            VersionChoice::Auto if self.fell_back => Version::V311,
            VersionChoice::Auto => Version::V5,
        }
    }

    /// Whether connections still carry the will (false once a broker refused it).
    pub fn has_will(&self) -> bool {
        self.will
    }

    /// The attempt [`Dial::next`] planned was accepted.
    pub fn connected(&mut self) -> Option<Note> {
        self.failures = 0;
        self.backoff.reset();
        self.closed_v5 = 0;
        if std::mem::take(&mut self.will_on_trial) {
            self.will = false;
            return Some(Note::WillRefused);
        }
        None
    }

    /// The connection was lost: the next attempt goes to the next node.
    pub fn lost(&mut self) {
        self.node = (self.node + 1) % self.nodes;
    }

    /// The attempt [`Dial::next`] planned failed so.
    pub fn failed(&mut self, outcome: &Outcome) -> (Step, Option<Note>) {
        let now = Step::Retry(Duration::ZERO);
        let attempt = self.next();
        let auto_v5 = self.choice == VersionChoice::Auto && !self.fell_back;
        match outcome {
            Outcome::Certificate => return (Step::Fatal(Fatal::Certificate), None),
            Outcome::Refused(r) if r.is_version() => {
                return self.version_refused(attempt.version);
            }
            Outcome::Closed if auto_v5 => return self.version_refused(attempt.version),
            Outcome::Refused(r) if attempt.will && r.may_be_will() => {
                self.will_on_trial = true;
                return (now, None);
            }
            Outcome::Closed if attempt.will && attempt.version == Version::V311 => {
                self.will_on_trial = true;
                return (now, None);
            }
            Outcome::Refused(r) if r.is_auth() => return (Step::Fatal(Fatal::Credentials), None),
            Outcome::Refused(r) if r.is_client_id() => {
                return (Step::Fatal(Fatal::ClientId), None);
            }
            Outcome::Closed if attempt.version == Version::V5 => {
                self.closed_v5 += 1;
                if self.closed_v5 >= CLOSED_V5_FATAL {
                    return (Step::Fatal(Fatal::Version(Version::V5)), None);
                }
            }
            Outcome::Refused(_) | Outcome::Closed | Outcome::Failed => {}
        }
        // Not the will's fault after all (if it was on trial): put it back.
        self.will_on_trial = false;
        self.failures += 1;
        self.node = (self.node + 1) % self.nodes;
        if !self.failures.is_multiple_of(self.nodes as u32) {
            return (now, None);
        }
        self.backoff.failed();
        (Step::Retry(self.backoff.pause()), None)
    }

    /// The broker does not speak `version`: fall back under `-V auto`, else give up.
    fn version_refused(&mut self, version: Version) -> (Step, Option<Note>) {
        if self.choice == VersionChoice::Auto && version == Version::V5 {
            self.fell_back = true;
            return (Step::Retry(Duration::ZERO), Some(Note::FellBack));
        }
        (Step::Fatal(Fatal::Version(version)), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V311: Version = Version::V311;
    const V5: Version = Version::V5;

    fn refusal(version: Version, code: u8) -> Outcome {
        Outcome::Refused(Refusal { code, version })
    }

    fn at_node_0(version: Version, will: bool) -> Try {
        Try {
            node: 0,
            version,
            will,
        }
    }

    fn at_once() -> (Step, Option<Note>) {
        (Step::Retry(Duration::ZERO), None)
    }

    #[test]
    fn one_broker_backs_off_after_each_failure() {
        let mut d = Dial::new(1, VersionChoice::Only(V5), false);
        let pauses: Vec<Step> = (0..6).map(|_| d.failed(&Outcome::Failed).0).collect();
        let ms = |n| Step::Retry(Duration::from_millis(n));
        assert_eq!(
            pauses,
            [ms(100), ms(200), ms(400), ms(800), ms(1600), ms(2000)]
        );
        assert_eq!(d.next().node, 0);
        assert_eq!(d.connected(), None);
        assert_eq!(
            d.failed(&Outcome::Failed).0,
            ms(100),
            "a connection ends the streak"
        );
    }

    #[test]
    fn several_brokers_are_tried_in_turn_pausing_after_each_round() {
        let mut d = Dial::new(3, VersionChoice::Auto, false);
        let mut seen = Vec::new();
        for _ in 0..6 {
            let node = d.next().node;
            seen.push((node, d.failed(&Outcome::Failed).0));
        }
        let now = Step::Retry(Duration::ZERO);
        let ms = |n| Step::Retry(Duration::from_millis(n));
        assert_eq!(
            seen,
            [
                (0, now),
                (1, now),
                (2, ms(100)),
                (0, now),
                (1, now),
                (2, ms(200))
            ]
        );
    }

    #[test]
    fn a_lost_connection_moves_on_to_the_next_node_round_robin() {
        let mut d = Dial::new(3, VersionChoice::Auto, false);
        let mut nodes = vec![d.next().node];
        for _ in 0..3 {
            d.connected();
            d.lost();
            nodes.push(d.next().node);
        }
        assert_eq!(nodes, [0, 1, 2, 0]);
        // A failed attempt after the loss moves on again, still without pausing.
        d.lost();
        assert_eq!(d.failed(&Outcome::Failed), at_once());
        assert_eq!(d.next().node, 2);
    }

    #[test]
    fn auto_falls_back_to_v311_at_once_and_keeps_it() {
        for why in [refusal(V311, 1), refusal(V5, 0x84), Outcome::Closed] {
            let mut d = Dial::new(2, VersionChoice::Auto, false);
            assert_eq!(d.next().version, V5);
            let step = d.failed(&why);
            assert_eq!(
                step,
                (Step::Retry(Duration::ZERO), Some(Note::FellBack)),
                "{why:?}"
            );
            assert_eq!(d.next(), at_node_0(V311, false), "same node");
            d.connected();
            d.lost();
            assert_eq!(d.next().version, V311, "kept after a reconnect");
            // Closes after the fall-back are ordinary failures: no second note.
            assert_eq!(d.failed(&Outcome::Closed), at_once());
            assert_eq!(d.next().version, V311, "kept on other nodes");
        }
    }

    #[test]
    fn auto_does_not_fall_back_for_other_failures() {
        let mut d = Dial::new(1, VersionChoice::Auto, false);
        d.failed(&Outcome::Failed);
        d.failed(&refusal(V5, 0x88));
        assert_eq!(d.next().version, V5);
    }

    #[test]
    fn a_strict_version_refused_is_fatal_at_once() {
        let mut d = Dial::new(3, VersionChoice::Only(V5), false);
        assert_eq!(
            d.failed(&refusal(V311, 1)).0,
            Step::Fatal(Fatal::Version(V5))
        );
        let mut d = Dial::new(1, VersionChoice::Only(V5), false);
        assert_eq!(
            d.failed(&refusal(V5, 0x84)).0,
            Step::Fatal(Fatal::Version(V5))
        );
        let mut d = Dial::new(1, VersionChoice::Only(V311), false);
        assert_eq!(
            d.failed(&refusal(V311, 1)).0,
            Step::Fatal(Fatal::Version(V311))
        );
        // A 3.1.1 refusal after falling back is fatal too (the broker speaks neither).
        let mut d = Dial::new(1, VersionChoice::Auto, false);
        d.failed(&Outcome::Closed);
        assert_eq!(
            d.failed(&refusal(V311, 1)).0,
            Step::Fatal(Fatal::Version(V311))
        );
    }

    #[test]
    fn strict_v5_closed_twice_in_a_row_before_connack_is_fatal() {
        let mut d = Dial::new(1, VersionChoice::Only(V5), false);
        assert!(matches!(d.failed(&Outcome::Closed).0, Step::Retry(_)));
        assert_eq!(
            d.failed(&Outcome::Closed).0,
            Step::Fatal(Fatal::Version(V5))
        );
        // A connection in between ends the streak.
        let mut d = Dial::new(1, VersionChoice::Only(V5), false);
        d.failed(&Outcome::Closed);
        d.connected();
        assert!(matches!(d.failed(&Outcome::Closed).0, Step::Retry(_)));
    }

    #[test]
    fn credentials_and_client_ids_are_fatal() {
        let mut d = Dial::new(2, VersionChoice::Auto, false);
        assert_eq!(
            d.failed(&refusal(V5, 0x86)).0,
            Step::Fatal(Fatal::Credentials)
        );
        assert_eq!(
            d.failed(&refusal(V311, 4)).0,
            Step::Fatal(Fatal::Credentials)
        );
        assert_eq!(d.failed(&refusal(V5, 0x85)).0, Step::Fatal(Fatal::ClientId));
        assert_eq!(
            d.failed(&Outcome::Certificate).0,
            Step::Fatal(Fatal::Certificate)
        );
    }

    #[test]
    fn a_will_the_broker_refuses_is_dropped_once_the_retry_without_it_is_accepted() {
        for why in [refusal(V5, 0x90), refusal(V5, 0x87), refusal(V5, 0x9A)] {
            let mut d = Dial::new(1, VersionChoice::Only(V5), true);
            assert!(d.next().will);
            assert_eq!(d.failed(&why), at_once(), "{why:?}");
            assert_eq!(d.next(), at_node_0(V5, false));
            assert_eq!(d.connected(), Some(Note::WillRefused));
            assert!(!d.has_will());
            d.lost();
            assert!(!d.next().will, "left out for the rest of the run");
        }
    }

    #[test]
    fn refused_again_without_the_will_means_it_was_not_the_will() {
        // Not authorized without the will either: the credentials are the problem.
        let mut d = Dial::new(1, VersionChoice::Only(V5), true);
        d.failed(&refusal(V5, 0x87));
        assert_eq!(
            d.failed(&refusal(V5, 0x87)).0,
            Step::Fatal(Fatal::Credentials)
        );
        // Unreachable without the will: it comes back for the next attempt.
        let mut d = Dial::new(1, VersionChoice::Only(V311), true);
        assert_eq!(d.failed(&Outcome::Closed), at_once());
        assert!(!d.next().will);
        d.failed(&Outcome::Failed);
        assert!(d.next().will);
        assert_eq!(d.connected(), None);
        assert!(d.has_will());
    }

    #[test]
    fn auto_first_falls_back_then_tries_without_the_will() {
        // A 3.1.1-only broker that closes the connection for the will's topic.
        let mut d = Dial::new(1, VersionChoice::Auto, true);
        assert_eq!(d.failed(&Outcome::Closed).1, Some(Note::FellBack));
        assert_eq!(d.next(), at_node_0(V311, true));
        assert_eq!(d.failed(&Outcome::Closed), at_once());
        assert_eq!(d.next(), at_node_0(V311, false));
        assert_eq!(d.connected(), Some(Note::WillRefused));
    }

    #[test]
    fn bad_credentials_under_3_1_1_are_not_blamed_on_the_will() {
        let mut d = Dial::new(1, VersionChoice::Only(V311), true);
        assert_eq!(
            d.failed(&refusal(V311, 4)).0,
            Step::Fatal(Fatal::Credentials)
        );
    }
}
