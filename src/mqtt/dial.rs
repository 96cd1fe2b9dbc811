//! Whom to connect to next, how, and after what pause: the connection policy as a state
//! machine without I/O. The driver ([`crate::mqtt::connect`]) asks [`Dial::next`] for an
//! attempt, makes it, and reports how it ended; `Dial` answers with a [`Step`].
//!
//! What it decides:
//! - **Several brokers.** The nodes of one cluster, tried in order. A failed attempt moves
//!   on to the next node at once; only after a whole round failed does it pause (the
//!   [`Backoff`]), so one dead node costs a failover nothing. A lost connection moves on
//!   too ([`Dial::lost`]): the node that dropped it is tried last.
//! - **The protocol version** (`-V auto`). MQTT 5 is offered first. A broker that refuses
//!   the level (a 3.1.1 CONNACK with return code 1, an MQTT 5 CONNACK 0x84) gets a 3.1.1
//!   CONNECT at once, and 3.1.1 is kept for the rest of the run, reconnects and other
//!   nodes included. One that closes the connection before any CONNACK gets a 3.1.1
//!   CONNECT at once too, on trial: kept if it is accepted, undone if it fails as well (a
//!   broker in trouble, not one that does not speak 5). A strict `-V 5` or `-V 3` that
//!   the broker refuses is fatal at once: waiting would not change the broker's mind.
//!   Once a broker accepted MQTT 5 (or the will) in this run, a close before CONNACK is a
//!   broker in trouble, as a proxy or load balancer in front of a restarting broker
//!   makes it: an ordinary failure, retried, and nothing is put on trial.
//! - **The will** (chat-pub's presence). A broker may refuse the CONNECT because of the
//!   will (its topic, its retain flag, an ACL): an MQTT 5 reason code that can be about the
//!   will, a 3.1.1 "not authorized", or a 3.1.1 connection closed before CONNACK. The next
//!   attempt goes without it, on trial: if that one is accepted, the will was the cause
//!   and is left out for the rest of the run ([`Note::WillRefused`]); if not, it is put
//!   back.
//! - **Names that do not exist.** Before the first connection, a broker whose host name
//!   does not resolve is not retried until `--connect-timeout`: the next node is tried
//!   at once, and when no node's name resolves the run ends ([`Fatal::Unresolved`]).
//!   Once connected, it is an ordinary failure: a resolver can come back, and chat-sub
//!   retries for ever.

use std::time::Duration;

use crate::mqtt::wire::{Refusal, Version};

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
    /// The broker did not answer our CONNECT within [`Dial::answer_within`].
    Unanswered,
    /// A certificate that does not verify, on either side.
    Certificate,
    /// The broker's host name does not exist (not a resolver that is down).
    Unresolved,
    /// The proxy refused the credentials, or wants some.
    ProxyCredentials,
    /// The proxy will never carry the connection: its rules, its name, its protocol.
    ProxyDenied,
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
    /// No broker's host name resolves, and none ever connected (exit 3).
    Unresolved,
    /// The proxy refused the credentials (exit 4).
    ProxyCredentials,
    /// The proxy will not carry the connection (exit 3).
    Proxy,
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
    /// `-V auto` speaks 3.1.1 for the rest of the run.
    fell_back: bool,
    /// Whether the user was told of the fall-back.
    told_fallback: bool,
    /// Whether connections carry the will.
    will: bool,
    /// What is being tried after a failure that does not say its cause.
    trial: Trial,
    /// Ordinary failures since the last connection.
    failures: u32,
    /// Pauses between rounds of failed attempts.
    backoff: Backoff,
    /// Strict MQTT 5 attempts closed before CONNACK, in a row.
    closed_v5: u32,
    /// A broker accepted MQTT 5: a close or silence later is no reason to try 3.1.1, nor
    /// to give up on MQTT 5 (a broker restarting behind a proxy or a load balancer
    /// accepts connections and closes them before any CONNACK).
    v5_accepted: bool,
    /// A broker accepted the will: a close later is no reason to leave it out.
    will_accepted: bool,
    /// A connection was accepted once in this run.
    connected_once: bool,
    /// Before the first connection: the nodes whose host name does not resolve.
    unresolved: Vec<bool>,
}

/// Changes on trial: a broker that closes the connection before any CONNACK does not say
/// why. MQTT 3.1.1 is tried first (for `-V auto`), then leaving out the will; whatever is
/// accepted is kept for the run, and if nothing is, the trial was wrong and is undone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Trial {
    v311: bool,
    no_will: bool,
}

/// Strict `-V 5` attempts closed before CONNACK in a row that mean "does not speak 5".
const CLOSED_V5_FATAL: u32 = 2;
/// How long `-V auto` waits for the answer to an MQTT 5 CONNECT before it tries 3.1.1:
/// some 3.1.1 brokers (amqtt) read an MQTT 5 CONNECT's properties as the start of the
/// client id and wait for bytes that never come. A broker answers in milliseconds, or a
/// round trip over a slow link; one that takes longer gets 3.1.1 on trial.
pub const V5_ANSWER: Duration = Duration::from_secs(2);

impl Dial {
    /// A policy for `nodes` brokers (at least one); `will`: whether CONNECT has one.
    pub fn new(nodes: usize, choice: VersionChoice, will: bool) -> Dial {
        Dial {
            nodes: nodes.max(1),
            node: 0,
            choice,
            fell_back: false,
            told_fallback: false,
            will,
            trial: Trial::default(),
            failures: 0,
            backoff: Backoff::default(),
            closed_v5: 0,
            v5_accepted: false,
            will_accepted: false,
            connected_once: false,
            unresolved: vec![false; nodes.max(1)],
        }
    }

    /// The attempt to make now.
    pub fn next(&self) -> Try {
        let version = match self.choice {
            VersionChoice::Only(v) => v,
            VersionChoice::Auto if self.fell_back || self.trial.v311 => Version::V311,
            VersionChoice::Auto => Version::V5,
        };
        Try {
            node: self.node,
            version,
            will: self.will && !self.trial.no_will,
        }
    }

    /// How long to wait for the CONNACK once the CONNECT [`Dial::next`] plans was sent
    /// (None: as long as the attempt may take).
    pub fn answer_within(&self) -> Option<Duration> {
        self.may_try_v311().then_some(V5_ANSWER)
    }

    /// Whether a close or silence after an MQTT 5 CONNECT puts 3.1.1 on trial.
    fn may_try_v311(&self) -> bool {
        self.choice == VersionChoice::Auto && !self.fell_back && !self.v5_accepted
    }

    /// Whether connections still carry the will (false once a broker refused it).
    pub fn has_will(&self) -> bool {
        self.will
    }

    /// Whether `node`'s host name was found not to resolve (before the first connection).
    pub fn is_unresolved(&self, node: usize) -> bool {
        self.unresolved.get(node).copied().unwrap_or(false)
    }

    /// The attempt [`Dial::next`] planned was accepted: what was on trial is kept.
    /// Returns what to tell the user.
    pub fn connected(&mut self) -> Vec<Note> {
        self.connected_once = true;
        self.failures = 0;
        self.backoff.reset();
        self.closed_v5 = 0;
        let trial = std::mem::take(&mut self.trial);
        self.will_accepted |= self.will && !trial.no_will;
        self.fell_back |= trial.v311;
        self.v5_accepted |= self.choice != VersionChoice::Only(Version::V311) && !self.fell_back;
        let mut notes = Vec::new();
        if self.fell_back && !std::mem::replace(&mut self.told_fallback, true) {
            notes.push(Note::FellBack);
        }
        if trial.no_will {
            self.will = false;
            notes.push(Note::WillRefused);
        }
        notes
    }

    /// The connection was lost: the next attempt goes to the next node.
    pub fn lost(&mut self) {
        self.node = (self.node + 1) % self.nodes;
    }

    /// The attempt [`Dial::next`] planned failed so.
    pub fn failed(&mut self, outcome: &Outcome) -> Step {
        let now = Step::Retry(Duration::ZERO);
        let attempt = self.next();
        let auto = self.choice == VersionChoice::Auto;
        match outcome {
            Outcome::Certificate => return Step::Fatal(Fatal::Certificate),
            // The same proxy carries every node and every attempt.
            Outcome::ProxyCredentials => return Step::Fatal(Fatal::ProxyCredentials),
            Outcome::ProxyDenied => return Step::Fatal(Fatal::Proxy),
            // Said outright: MQTT 3.1.1 for good (the broker does not speak 5), or no hope.
            // An answer in 3.1.1 to an MQTT 5 CONNECT says so whatever its return code.
            Outcome::Refused(r) if r.is_version() || r.version != attempt.version => {
                if auto && attempt.version == Version::V5 {
                    self.fell_back = true;
                    return now;
                }
                return Step::Fatal(Fatal::Version(attempt.version));
            }
            Outcome::Refused(r) if attempt.will && r.may_be_will() => {
                self.trial.no_will = true;
                return now;
            }
            Outcome::Refused(r) if r.is_auth() => return Step::Fatal(Fatal::Credentials),
            Outcome::Refused(r) if r.is_client_id() => return Step::Fatal(Fatal::ClientId),
            // Closed without a word: try what may help, one change at a time.
            Outcome::Closed | Outcome::Unanswered
                if self.may_try_v311() && attempt.version == Version::V5 =>
            {
                self.trial.v311 = true;
                return now;
            }
            Outcome::Closed
                if attempt.will && attempt.version == Version::V311 && !self.will_accepted =>
            {
                self.trial.no_will = true;
                return now;
            }
            Outcome::Closed if attempt.version == Version::V5 && !self.v5_accepted => {
                self.closed_v5 += 1;
                if self.closed_v5 >= CLOSED_V5_FATAL {
                    return Step::Fatal(Fatal::Version(Version::V5));
                }
            }
            Outcome::Unresolved if !self.connected_once => {
                self.unresolved[attempt.node] = true;
                if self.unresolved.iter().all(|&u| u) {
                    return Step::Fatal(Fatal::Unresolved);
                }
                // Passed over from now on (until a connection): rounds count the others.
                self.trial = Trial::default();
                self.failures = 0;
                self.step();
                return now;
            }
            Outcome::Refused(_)
            | Outcome::Closed
            | Outcome::Unanswered
            | Outcome::Unresolved
            | Outcome::Failed => {}
        }
        self.ordinary_failure()
    }

    /// An ordinary failure: whatever was on trial did not help (put it back), and the
    /// next node is tried, at once until a whole round failed.
    fn ordinary_failure(&mut self) -> Step {
        self.trial = Trial::default();
        self.failures += 1;
        self.step();
        if !self.failures.is_multiple_of(self.live_nodes()) {
            return Step::Retry(Duration::ZERO);
        }
        self.backoff.failed();
        Step::Retry(self.backoff.pause())
    }

    /// Whether `node` is passed over: its name does not resolve, and no connection was
    /// made yet (after one, a name that stops resolving is retried like any failure).
    fn passed_over(&self, node: usize) -> bool {
        !self.connected_once && self.unresolved[node]
    }

    /// The nodes a round tries (at least one).
    fn live_nodes(&self) -> u32 {
        let live = (0..self.nodes).filter(|&n| !self.passed_over(n)).count();
        live.max(1) as u32
    }

    /// Moves on to the next node that is not passed over.
    fn step(&mut self) {
        for _ in 0..self.nodes {
            self.node = (self.node + 1) % self.nodes;
            if !self.passed_over(self.node) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V311: Version = Version::V311;
    const V5: Version = Version::V5;
    const NOW: Step = Step::Retry(Duration::ZERO);

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

    fn ms(n: u64) -> Step {
        Step::Retry(Duration::from_millis(n))
    }

    #[test]
    fn one_broker_backs_off_after_each_failure() {
        let mut d = Dial::new(1, VersionChoice::Only(V5), false);
        let pauses: Vec<Step> = (0..6).map(|_| d.failed(&Outcome::Failed)).collect();
        assert_eq!(
            pauses,
            [ms(100), ms(200), ms(400), ms(800), ms(1600), ms(2000)]
        );
        assert_eq!(d.next().node, 0);
        assert_eq!(d.connected(), []);
        assert_eq!(
            d.failed(&Outcome::Failed),
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
            seen.push((node, d.failed(&Outcome::Failed)));
        }
        let expected = [
            (0, NOW),
            (1, NOW),
            (2, ms(100)),
            (0, NOW),
            (1, NOW),
            (2, ms(200)),
        ];
        assert_eq!(seen, expected);
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
        assert_eq!(d.failed(&Outcome::Failed), NOW);
        assert_eq!(d.next().node, 2);
    }

    #[test]
    fn auto_falls_back_to_v311_at_once_and_keeps_it() {
        let whys = [
            refusal(V311, 1),
            refusal(V5, 0x84),
            Outcome::Closed,
            Outcome::Unanswered,
        ];
        for why in whys {
            let mut d = Dial::new(2, VersionChoice::Auto, false);
            assert_eq!(d.next().version, V5);
            assert_eq!(d.failed(&why), NOW, "{why:?}");
            assert_eq!(d.next(), at_node_0(V311, false), "same node");
            assert_eq!(d.connected(), [Note::FellBack], "{why:?}");
            d.lost();
            assert_eq!(d.next().version, V311, "kept after a reconnect");
            // Closes after the fall-back are ordinary failures: moving on, no second note.
            assert_eq!(d.failed(&Outcome::Closed), NOW);
            assert_eq!(d.next(), at_node_0(V311, false), "kept on other nodes");
            assert_eq!(d.connected(), []);
        }
    }

    #[test]
    fn a_close_that_3_1_1_does_not_cure_was_not_about_the_version() {
        // A broker in trouble that closes every connection: MQTT 3.1.1 is tried once,
        // then MQTT 5 is offered again.
        let mut d = Dial::new(1, VersionChoice::Auto, false);
        assert_eq!(d.failed(&Outcome::Closed), NOW);
        assert_eq!(d.next().version, V311);
        assert_eq!(d.failed(&Outcome::Closed), ms(100));
        assert_eq!(d.next().version, V5);
        assert_eq!(d.connected(), []);
    }

    #[test]
    fn once_a_broker_accepted_mqtt_5_only_a_refusal_of_it_means_falling_back() {
        let mut d = Dial::new(2, VersionChoice::Auto, false);
        assert_eq!(d.answer_within(), Some(V5_ANSWER));
        d.connected();
        assert_eq!(
            d.answer_within(),
            None,
            "no silence limit for a known MQTT 5 broker"
        );
        d.lost();
        // A broker restarting, or busy: closes and silence are ordinary failures now,
        // however many (a proxy in front of a broker that is down accepts and closes).
        assert_eq!(d.failed(&Outcome::Closed), NOW);
        assert_eq!(d.failed(&Outcome::Unanswered), ms(100));
        for _ in 0..5 {
            assert!(matches!(d.failed(&Outcome::Closed), Step::Retry(_)));
        }
        assert_eq!(d.next().version, V5);
        // Another node that does not speak MQTT 5 says so: then 3.1.1 it is.
        assert_eq!(d.failed(&refusal(V311, 1)), NOW);
        assert_eq!(d.next().version, V311);
        assert_eq!(d.connected(), [Note::FellBack]);
        // Strict versions never wait for less than the attempt's time.
        assert_eq!(
            Dial::new(1, VersionChoice::Only(V5), false).answer_within(),
            None
        );
    }

    #[test]
    fn any_3_1_1_answer_to_mqtt_5_means_3_1_1() {
        // "Not authorized" in 3.1.1 to an MQTT 5 CONNECT: first speak its version.
        let mut d = Dial::new(1, VersionChoice::Auto, true);
        assert_eq!(d.failed(&refusal(V311, 5)), NOW);
        assert_eq!(d.next(), at_node_0(V311, true));
        let strict = Dial::new(1, VersionChoice::Only(V5), false).failed(&refusal(V311, 5));
        assert_eq!(strict, Step::Fatal(Fatal::Version(V5)));
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
        let fatal = |choice, why: Outcome| Dial::new(3, choice, false).failed(&why);
        let only = VersionChoice::Only;
        let v5 = Step::Fatal(Fatal::Version(V5));
        assert_eq!(fatal(only(V5), refusal(V311, 1)), v5);
        assert_eq!(fatal(only(V5), refusal(V5, 0x84)), v5);
        let v311 = Step::Fatal(Fatal::Version(V311));
        assert_eq!(fatal(only(V311), refusal(V311, 1)), v311);
        // A 3.1.1 refusal after falling back is fatal too (the broker speaks neither).
        let mut d = Dial::new(1, VersionChoice::Auto, false);
        d.failed(&refusal(V5, 0x84));
        assert_eq!(d.failed(&refusal(V311, 1)), v311);
    }

    #[test]
    fn strict_v5_closed_twice_in_a_row_before_connack_is_fatal() {
        let mut d = Dial::new(1, VersionChoice::Only(V5), false);
        assert_eq!(d.failed(&Outcome::Closed), ms(100));
        assert_eq!(d.failed(&Outcome::Closed), Step::Fatal(Fatal::Version(V5)));
        // Once a connection at MQTT 5 was accepted, closes are a broker in trouble.
        let mut d = Dial::new(1, VersionChoice::Only(V5), false);
        d.failed(&Outcome::Closed);
        d.connected();
        d.lost();
        for _ in 0..5 {
            assert!(matches!(d.failed(&Outcome::Closed), Step::Retry(_)));
        }
    }

    #[test]
    fn once_the_will_was_accepted_a_close_does_not_put_it_on_trial() {
        // A 3.1.1 broker that accepted the will, then restarts behind a proxy that
        // accepts connections and closes them: the will stays.
        let mut d = Dial::new(1, VersionChoice::Only(V311), true);
        assert_eq!(d.connected(), []);
        d.lost();
        for _ in 0..5 {
            d.failed(&Outcome::Closed);
            assert!(d.next().will);
        }
        assert_eq!(d.connected(), []);
        assert!(d.has_will());
    }

    #[test]
    fn credentials_client_ids_and_certificates_are_fatal() {
        let mut d = Dial::new(2, VersionChoice::Auto, false);
        assert_eq!(
            d.failed(&refusal(V5, 0x86)),
            Step::Fatal(Fatal::Credentials)
        );
        assert_eq!(d.failed(&refusal(V5, 0x85)), Step::Fatal(Fatal::ClientId));
        let mut v311 = Dial::new(2, VersionChoice::Only(V311), false);
        assert_eq!(
            v311.failed(&refusal(V311, 4)),
            Step::Fatal(Fatal::Credentials)
        );
        assert_eq!(v311.failed(&refusal(V311, 2)), Step::Fatal(Fatal::ClientId));
        assert_eq!(
            d.failed(&Outcome::Certificate),
            Step::Fatal(Fatal::Certificate)
        );
    }

    #[test]
    fn a_proxy_that_refuses_credentials_or_the_connection_is_fatal_for_every_node() {
        // With three nodes and none tried yet: the proxy carries them all.
        let mut d = Dial::new(3, VersionChoice::Auto, true);
        assert_eq!(
            d.failed(&Outcome::ProxyCredentials),
            Step::Fatal(Fatal::ProxyCredentials)
        );
        let mut d = Dial::new(3, VersionChoice::Auto, true);
        assert_eq!(d.failed(&Outcome::ProxyDenied), Step::Fatal(Fatal::Proxy));
        // A broker the proxy cannot reach is an ordinary failure: the next node, at once.
        let mut d = Dial::new(3, VersionChoice::Auto, false);
        assert_eq!(d.failed(&Outcome::Failed), Step::Retry(Duration::ZERO));
        assert_eq!(d.next().node, 1);
    }

    #[test]
    fn a_will_the_broker_refuses_is_dropped_once_the_retry_without_it_is_accepted() {
        for why in [refusal(V5, 0x90), refusal(V5, 0x87), refusal(V5, 0x9A)] {
            let mut d = Dial::new(1, VersionChoice::Only(V5), true);
            assert!(d.next().will);
            assert_eq!(d.failed(&why), NOW, "{why:?}");
            assert_eq!(d.next(), at_node_0(V5, false));
            assert_eq!(d.connected(), [Note::WillRefused]);
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
            d.failed(&refusal(V5, 0x87)),
            Step::Fatal(Fatal::Credentials)
        );
        // Unreachable without the will: it comes back for the next attempt.
        let mut d = Dial::new(1, VersionChoice::Only(V311), true);
        assert_eq!(d.failed(&Outcome::Closed), NOW);
        assert!(!d.next().will);
        d.failed(&Outcome::Failed);
        assert!(d.next().will);
        assert_eq!(d.connected(), []);
        assert!(d.has_will());
    }

    #[test]
    fn auto_tries_3_1_1_then_leaves_out_the_will() {
        // A 3.1.1-only broker that closes the connection for the will's topic.
        let mut d = Dial::new(1, VersionChoice::Auto, true);
        assert_eq!(d.failed(&Outcome::Closed), NOW);
        assert_eq!(d.next(), at_node_0(V311, true));
        assert_eq!(d.failed(&Outcome::Closed), NOW);
        assert_eq!(d.next(), at_node_0(V311, false));
        assert_eq!(d.connected(), [Note::FellBack, Note::WillRefused]);
        // Had neither helped, both would have been undone.
        let mut d = Dial::new(1, VersionChoice::Auto, true);
        d.failed(&Outcome::Closed);
        d.failed(&Outcome::Closed);
        assert_eq!(d.failed(&Outcome::Closed), ms(100));
        assert_eq!(d.next(), at_node_0(V5, true));
    }

    #[test]
    fn a_name_that_does_not_resolve_is_fatal_at_once_unless_another_node_may_answer() {
        let mut one = Dial::new(1, VersionChoice::Auto, false);
        assert_eq!(
            one.failed(&Outcome::Unresolved),
            Step::Fatal(Fatal::Unresolved)
        );
        // With a list, the next node is tried at once, and a name that does not resolve
        // is passed over from then on: rounds are of the others, which decide the pauses
        // (and whose failures the messages cite).
        let mut three = Dial::new(3, VersionChoice::Auto, false);
        assert_eq!(three.failed(&Outcome::Unresolved), NOW);
        assert!(three.is_unresolved(0) && !three.is_unresolved(1));
        assert_eq!(three.next().node, 1);
        assert_eq!(three.failed(&Outcome::Failed), NOW);
        assert_eq!(three.next().node, 2);
        assert_eq!(
            three.failed(&Outcome::Failed),
            ms(100),
            "a round of nodes 1 and 2"
        );
        let order: Vec<(usize, Step)> = (0..4)
            .map(|_| (three.next().node, three.failed(&Outcome::Failed)))
            .collect();
        assert_eq!(order, [(1, NOW), (2, ms(200)), (1, NOW), (2, ms(400))]);
        assert_eq!(
            three.failed(&Outcome::Unresolved),
            NOW,
            "node 1's name went away"
        );
        assert_eq!(three.next().node, 2);
        assert_eq!(
            three.failed(&Outcome::Unresolved),
            Step::Fatal(Fatal::Unresolved),
            "no node's name resolves"
        );
        // Once connected, every node is tried again.
        let mut two = Dial::new(2, VersionChoice::Auto, false);
        two.failed(&Outcome::Unresolved);
        two.connected();
        two.lost();
        assert_eq!(two.next().node, 0);
    }

    #[test]
    fn once_connected_a_name_that_does_not_resolve_is_retried() {
        let mut d = Dial::new(1, VersionChoice::Auto, false);
        d.connected();
        d.lost();
        assert_eq!(d.failed(&Outcome::Unresolved), ms(100));
        assert_eq!(d.failed(&Outcome::Unresolved), ms(200));
    }

    #[test]
    fn bad_credentials_under_3_1_1_are_not_blamed_on_the_will() {
        let mut d = Dial::new(1, VersionChoice::Only(V311), true);
        assert_eq!(d.failed(&refusal(V311, 4)), Step::Fatal(Fatal::Credentials));
    }
}
