//! From the connection options ([`ConnectOptions`], which the tools resolve from their
//! flags) to an established [`Link`]:
//! the [`Connector`] makes connection attempts as [`crate::mqtt::dial`] decides —
//! several brokers in turn, `-V auto` falling back to MQTT 3.1.1, the will left out when
//! a broker refuses it — until one is accepted or a deadline passes.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, sleep, sleep_until, timeout_at};

use crate::error::Error;
use crate::mqtt::coalesce::Reads;
use crate::mqtt::dial::{Dial, Fatal, Note, Outcome, Step, Try, VersionChoice};
use crate::mqtt::endpoint::Endpoint;
use crate::mqtt::link::{Attempt, Link, connect_once};
use crate::mqtt::proxy::{ErrorKind as ProxyErrorKind, FailureKind};
use crate::mqtt::transport::Dialer;
use crate::mqtt::wire::{ConnectSpec, Version};

/// Everything needed to (re)connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The brokers, in the order they are tried (at least one).
    pub nodes: Vec<Dialer>,
    pub version: VersionChoice,
    pub spec: ConnectSpec,
    /// Largest packet accepted from the broker.
    pub max_in: usize,
    /// How long one attempt (TCP connect + CONNECT/CONNACK) may take.
    pub attempt_timeout: Duration,
    /// `--connect-timeout`: how long the first connection may take, retries included.
    pub connect_timeout: Duration,
    /// How eagerly to read; see [`crate::mqtt::coalesce`].
    pub reads: Reads,
}

/// How many failed attempts a note cites: the ones a trial made (MQTT 5, then 3.1.1).
const NOTED_ATTEMPTS: usize = 2;

/// How long the first connection is tried before the tool says, once, that it is still
/// trying and why (a broker that answers at once costs a script nothing on stderr).
pub const STILL_TRYING_AFTER: Duration = Duration::from_secs(1);

/// Makes connection attempts for the whole run, keeping what was learnt on the way (the
/// protocol version, whether the will is accepted, which node is next).
pub struct Connector {
    opts: ConnectOptions,
    dial: Dial,
    /// The node of the last accepted connection.
    node: usize,
    /// Connections accepted so far.
    connections: u64,
    /// The last failed attempts before a connection, as text (what the notes cite).
    refused: Vec<String>,
}

impl Connector {
    pub fn new(opts: ConnectOptions) -> Connector {
        let will = opts.spec.will.is_some();
        let dial = Dial::new(opts.nodes.len(), opts.version, will);
        Connector {
            opts,
            dial,
            node: 0,
            connections: 0,
            refused: Vec::new(),
        }
    }

    /// The broker of the last accepted connection.
    pub fn endpoint(&self) -> &Endpoint {
        self.opts.nodes[self.node].endpoint()
    }

    /// Whether connections carry the will (false once a broker refused it).
    pub fn has_will(&self) -> bool {
        self.dial.has_will()
    }

    /// The will's payload from the next connection on (an encrypted room seals a new
    /// goodbye for each connection).
    pub fn set_will_payload(&mut self, payload: Vec<u8>) {
        if let Some(will) = &mut self.opts.spec.will {
            will.payload = payload;
        }
    }

    /// The connection was lost: the next one is tried on the next broker of the list.
    pub fn lost(&mut self) {
        self.dial.lost();
    }

    /// Connects, trying the brokers in turn and pausing after each round of failures,
    /// until `deadline` (None: for ever). Failures that retrying cannot fix end at once.
    pub async fn establish(&mut self, deadline: Option<Instant>) -> Result<Link, Error> {
        let mut last: Option<(usize, Attempt)> = None;
        // Only the first connection has a deadline, and only it says it is still trying
        // (reconnects are told as they happen); not when the deadline comes soon after.
        let started = Instant::now();
        let worth = |d: &Instant| *d > started + 2 * STILL_TRYING_AFTER;
        let mut notice = deadline.filter(worth).map(|_| started + STILL_TRYING_AFTER);
        loop {
            let plan = self.dial.next();
            let dialer = &self.opts.nodes[plan.node];
            let spec = self.spec_for(plan);
            let attempt_end = Instant::now() + self.opts.attempt_timeout;
            let end = deadline.map_or(attempt_end, |d| d.min(attempt_end));
            let (max_in, reads) = (self.opts.max_in, self.opts.reads);
            let answer = self.dial.answer_within();
            let attempt = connect_once(dialer, plan.version, &spec, max_in, reads, answer);
            let still = || self.still_trying(last.as_ref());
            let result = noting(timeout_at(end, attempt), &mut notice, still)
                .await
                .unwrap_or(Err(Attempt::TimedOut));
            let attempt = match result {
                Ok(link) => {
                    self.connected(plan.node, &link);
                    return Ok(link);
                }
                Err(attempt) => attempt,
            };
            let pause = self.failed(plan, &attempt)?;
            // Keep the most telling reason: a refusal beats running out of time.
            if !(matches!(attempt, Attempt::TimedOut) && last.is_some()) {
                last = Some((plan.node, attempt));
            }
            let now = Instant::now();
            let pause = match deadline {
                Some(d) if now >= d => return Err(self.unreachable(last)),
                Some(d) => pause.min(d - now),
                None => pause,
            };
            let still = || self.still_trying(last.as_ref());
            noting(sleep(pause), &mut notice, still).await;
        }
    }

    /// The CONNECT of `plan`: with the will or without it.
    fn spec_for(&self, plan: Try) -> Cow<'_, ConnectSpec> {
        match (plan.will, &self.opts.spec.will) {
            (false, Some(_)) => Cow::Owned(ConnectSpec {
                will: None,
                ..self.opts.spec.clone()
            }),
            _ => Cow::Borrowed(&self.opts.spec),
        }
    }

    /// Bookkeeping and messages for the failed attempt `plan`; the pause before the next
    /// one, or the error that ends the run.
    fn failed(&mut self, plan: Try, attempt: &Attempt) -> Result<Duration, Error> {
        let endpoint = self.opts.nodes[plan.node].endpoint();
        log::debug!(
            "connecting to {endpoint}: {attempt} (MQTT {})",
            plan.version
        );
        if self.refused.len() == NOTED_ATTEMPTS {
            self.refused.remove(0);
        }
        self.refused.push(format!("{endpoint}: {attempt}"));
        let newly_unresolved = !self.dial.is_unresolved(plan.node);
        let pause = match self.dial.failed(&outcome(attempt)) {
            Step::Fatal(why) => return Err(self.fatal(why, endpoint, attempt)),
            Step::Retry(pause) => pause,
        };
        if newly_unresolved && self.dial.is_unresolved(plan.node) {
            log::warn!("{attempt} ({endpoint}); trying the other brokers");
        }
        Ok(pause)
    }

    /// The note of a first connection that takes longer than [`STILL_TRYING_AFTER`].
    fn still_trying(&self, last: Option<&(usize, Attempt)>) -> String {
        let why = match last {
            Some((node, a)) if self.opts.nodes.len() > 1 => {
                let endpoint = self.opts.nodes[*node].endpoint();
                format!("last: {endpoint}: {a}{}", hint(a, endpoint, false))
            }
            Some((node, a)) => {
                let endpoint = self.opts.nodes[*node].endpoint();
                format!("{a}{}", hint(a, endpoint, false))
            }
            None => "no answer yet".into(),
        };
        let whom = match self.opts.nodes.as_slice() {
            [one] => one.endpoint().to_string(),
            all => format!("any of the {} brokers", all.len()),
        };
        format!(
            "still trying to reach {whom}: {why}; giving up after {:.1}s (--connect-timeout)",
            self.opts.connect_timeout.as_secs_f64()
        )
    }

    /// Bookkeeping and messages for an accepted connection.
    fn connected(&mut self, node: usize, link: &Link) {
        self.node = node;
        self.connections += 1;
        let level = match self.connections {
            // With several brokers, say which one answered (later moves are told by the
            // tools as they reconnect).
            1 if self.opts.nodes.len() > 1 => log::Level::Warn,
            _ => log::Level::Info,
        };
        let through = (self.opts.nodes[node].proxy()).map(|p| format!(" through the proxy {p}"));
        log::log!(
            level,
            "connected to {}{} (MQTT {}{})",
            self.endpoint(),
            through.unwrap_or_default(),
            link.version(),
            link.connack()
        );
        // What the attempts before this one met, for the notes.
        let before = std::mem::take(&mut self.refused).join("; ");
        for note in self.dial.connected() {
            match note {
                Note::FellBack => log::info!(
                    "the broker does not speak MQTT 5 ({before}); using MQTT 3.1.1 for the \
                     rest of this run"
                ),
                Note::WillRefused => log::warn!(
                    "{} refused the connection with the presence will ({before}); going on \
                     without presence",
                    self.endpoint()
                ),
            }
        }
    }

    /// The error for a failure that retrying cannot fix.
    fn fatal(&self, why: Fatal, endpoint: &Endpoint, attempt: &Attempt) -> Error {
        let reason = match attempt {
            Attempt::Refused(r) => r.describe(),
            other => other.to_string(),
        };
        match why {
            Fatal::Certificate => {
                Error::Unreachable(format!("cannot connect to {endpoint}: {reason}"))
            }
            Fatal::Proxy => Error::Unreachable(format!("cannot connect to {endpoint} {reason}")),
            Fatal::ProxyCredentials => {
                Error::Refused(format!("cannot connect to {endpoint} {reason}"))
            }
            Fatal::Credentials => {
                let hint = match &self.opts.spec.login {
                    Some(_) => "; check the user name (-u) and the password",
                    None => "; it may want a user name (-u) and a password",
                };
                Error::Refused(format!(
                    "the broker at {endpoint} refused the connection: {reason}{hint}"
                ))
            }
            Fatal::ClientId => Error::Refused(format!(
                "the broker at {endpoint} refused the client id '{}': {reason}",
                crate::escape::escaped(&self.opts.spec.client_id),
            )),
            Fatal::Version(Version::V5) => Error::Unreachable(format!(
                "the broker at {endpoint} does not accept MQTT 5: {reason} (try -V 3, or \
                 -V auto to fall back to MQTT 3.1.1 by itself)"
            )),
            Fatal::Unresolved if self.opts.nodes.len() > 1 => Error::Unreachable(format!(
                "cannot resolve the host name of any of the {} brokers (last: {reason}); \
                 check the names given with -b or CHAT_BROKER",
                self.opts.nodes.len()
            )),
            Fatal::Unresolved => Error::Unreachable(format!(
                "{reason} ({endpoint}); check the name given with -b or CHAT_BROKER"
            )),
            Fatal::Version(Version::V311) => Error::Unreachable(format!(
                "the broker at {endpoint} does not accept MQTT 3.1.1: {reason}{}",
                match self.opts.version {
                    VersionChoice::Only(_) => " (try -V 5)",
                    VersionChoice::Auto => " (nor MQTT 5)",
                }
            )),
        }
    }

    /// The error when `--connect-timeout` passed without a connection.
    fn unreachable(&self, last: Option<(usize, Attempt)>) -> Error {
        let within = format!("within {:.1}s", self.opts.connect_timeout.as_secs_f64());
        let why = match last {
            Some((node, a)) if self.opts.nodes.len() > 1 => {
                let endpoint = self.opts.nodes[node].endpoint();
                format!("{endpoint}: {a}{}", hint(&a, endpoint, true))
            }
            Some((node, a)) => format!("{a}{}", hint(&a, self.opts.nodes[node].endpoint(), true)),
            None => "timed out".into(),
        };
        match self.opts.nodes.as_slice() {
            [one] => Error::Unreachable(format!(
                "cannot reach the broker at {} {within}: {why}",
                one.endpoint()
            )),
            all => Error::Unreachable(format!(
                "cannot reach any of the {} brokers {within} (last: {why})",
                all.len()
            )),
        }
    }
}

/// Waits for `fut`; if `notice` comes first, says `note()` once (as a warning: it is
/// shown without -v) and goes on waiting.
async fn noting<F: Future>(
    fut: F,
    notice: &mut Option<Instant>,
    note: impl FnOnce() -> String,
) -> F::Output {
    let Some(at) = *notice else {
        return fut.await;
    };
    tokio::pin!(fut);
    // The notice first: once its time has come, it is said before anything else ends.
    tokio::select! {
        biased;
        () = sleep_until(at) => {}
        out = &mut fut => return out,
    }
    *notice = None;
    log::warn!("{}", note());
    fut.await
}

/// What a failed attempt means, when the failure says it: a refused TCP connection means
/// that nothing listens on that address and port. `advice`: and what to do about it.
fn hint(attempt: &Attempt, endpoint: &Endpoint, advice: bool) -> String {
    match attempt {
        Attempt::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            let mut hint = format!(": nothing listens on {}", endpoint.socket_addr());
            if advice {
                hint += &format!(
                    "; is a broker running there? (chat-broker listens on {} only, unless \
                     started with --listen)",
                    crate::defaults::LISTEN
                );
            }
            hint
        }
        _ => String::new(),
    }
}

/// What the policy needs to know of a failed attempt.
fn outcome(attempt: &Attempt) -> Outcome {
    match attempt {
        Attempt::Unresolved(_) => Outcome::Unresolved,
        Attempt::Refused(r) => Outcome::Refused(*r),
        Attempt::Closed => Outcome::Closed,
        Attempt::Unanswered => Outcome::Unanswered,
        Attempt::Certificate(_) => Outcome::Certificate,
        Attempt::Proxy(p) => match p.kind {
            ProxyErrorKind::Said(FailureKind::Credentials) => Outcome::ProxyCredentials,
            ProxyErrorKind::Said(FailureKind::Denied) | ProxyErrorKind::Unresolved => {
                Outcome::ProxyDenied
            }
            ProxyErrorKind::Said(FailureKind::Refused) | ProxyErrorKind::Unreachable => {
                Outcome::Failed
            }
        },
        Attempt::Io(_) | Attempt::Protocol(_) | Attempt::TimedOut => Outcome::Failed,
    }
}
