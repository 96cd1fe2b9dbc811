//! From the shared options to an established [`Link`]: broker URLs, client id, login,
//! and the [`Connector`] that makes connection attempts as [`crate::dial`] decides —
//! several brokers in turn, `-V auto` falling back to MQTT 3.1.1, the will left out when
//! a broker refuses it — until one is accepted or a deadline passes.

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use tokio::time::{Instant, sleep, timeout_at};

use crate::cli::Common;
use crate::coalesce::Reads;
use crate::dial::{Dial, Fatal, Note, Outcome, Step, VersionChoice};
use crate::endpoint::Endpoint;
use crate::envelope::IdSource;
use crate::error::Error;
use crate::session::{Attempt, Link, connect_once};
use crate::transport::{Dialer, TlsOptions};
use crate::wire::{ConnectSpec, Login, Secret, Version};

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
    /// How eagerly to read; see [`crate::coalesce`].
    pub reads: Reads,
}

/// Turns the shared options into connection options; every problem is a usage error.
pub fn options(common: &Common, tool: &str, max_in: usize) -> Result<ConnectOptions, Error> {
    let endpoints = brokers(&common.broker)?;
    let client_id = match &common.client_id {
        Some(id) if id.is_empty() => return Err(Error::Usage("the client id is empty".into())),
        Some(id) if id.len() > 65_535 => {
            return Err(Error::Usage(
                "the client id is longer than 65535 bytes".into(),
            ));
        }
        Some(id) => id.clone(),
        None => format!("{tool}-{}", &IdSource::default().next_id()[..12]),
    };
    let tls = TlsOptions {
        cafile: common.cafile.clone(),
        cert: common.cert.clone(),
        key: common.key.clone(),
        insecure: common.insecure,
    };
    let login = login(common)?;
    let attempt_timeout = attempt_timeout(common.connect_timeout, endpoints.len());
    Ok(ConnectOptions {
        nodes: Dialer::for_each(endpoints, &tls)?,
        version: common.mqtt_version,
        spec: ConnectSpec {
            client_id,
            keepalive: common.keepalive,
            clean_start: true,
            session_expiry: None,
            max_packet_in: u32::try_from(max_in).unwrap_or(u32::MAX),
            login,
            will: None,
        },
        max_in,
        attempt_timeout,
        reads: Reads::Eager,
    })
}

/// Every `-b` value (and `CHAT_BROKER`) may hold several URLs, separated by commas or
/// white space; each is checked here, before anything is sent.
fn brokers(values: &[String]) -> Result<Vec<Endpoint>, Error> {
    let urls = values
        .iter()
        .flat_map(|v| v.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|u| !u.is_empty());
    let endpoints = urls.map(Endpoint::parse).collect::<Result<Vec<_>, _>>()?;
    match endpoints.is_empty() {
        true => Err(Error::Usage(
            "no broker URL given (-b or CHAT_BROKER)".into(),
        )),
        false => Ok(endpoints),
    }
}

/// One attempt's share of `--connect-timeout`: all of it for one broker; with several, a
/// node that swallows packets must not use up the time of the others (but every attempt
/// gets at least a second, as TLS handshakes can take that long).
fn attempt_timeout(connect_timeout: Duration, nodes: usize) -> Duration {
    let share = (connect_timeout / nodes.max(1) as u32).max(Duration::from_secs(1));
    share.min(connect_timeout).max(Duration::from_millis(100))
}

/// User name (`-u`/`CHAT_USERNAME`) and password (`--password-file`, else
/// `CHAT_PASSWORD`). A password without a user name is a usage error.
fn login(common: &Common) -> Result<Option<Login>, Error> {
    let password = match &common.password_file {
        Some(path) => Some(read_password(path)?),
        None => std::env::var("CHAT_PASSWORD").ok(),
    };
    match (&common.username, password) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(Error::Usage(
            "a password (--password-file or CHAT_PASSWORD) needs a user name (-u or \
             CHAT_USERNAME)"
                .into(),
        )),
        (Some(user), password) => Ok(Some(Login {
            username: user.clone(),
            password: password.map(Secret::new),
        })),
    }
}

/// The first line of a password file, without its line end. Errors name the file, never
/// its content.
fn read_password(path: &Path) -> Result<String, Error> {
    let bad = |why: String| {
        Error::Usage(format!(
            "cannot read --password-file {}: {why}",
            path.display()
        ))
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    String::from_utf8(first.to_vec()).map_err(|_| bad("the password is not UTF-8".into()))
}

/// How many failed attempts a note cites: the ones a trial made (MQTT 5, then 3.1.1).
const NOTED_ATTEMPTS: usize = 2;

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

    pub fn options(&self) -> &ConnectOptions {
        &self.opts
    }

    /// The broker of the last accepted connection.
    pub fn endpoint(&self) -> &Endpoint {
        self.opts.nodes[self.node].endpoint()
    }

    /// Whether connections carry the will (false once a broker refused it).
    pub fn has_will(&self) -> bool {
        self.dial.has_will()
    }

    /// The connection was lost: the next one is tried on the next broker of the list.
    pub fn lost(&mut self) {
        self.dial.lost();
    }

    /// Connects, trying the brokers in turn and pausing after each round of failures,
    /// until `deadline` (None: for ever). Failures that retrying cannot fix end at once.
    pub async fn establish(&mut self, deadline: Option<Instant>) -> Result<Link, Error> {
        let started = Instant::now();
        let mut last: Option<(usize, Attempt)> = None;
        loop {
            let plan = self.dial.next();
            let dialer = &self.opts.nodes[plan.node];
            let spec = match (plan.will, &self.opts.spec.will) {
                (false, Some(_)) => Cow::Owned(ConnectSpec {
                    will: None,
                    ..self.opts.spec.clone()
                }),
                _ => Cow::Borrowed(&self.opts.spec),
            };
            let attempt_end = Instant::now() + self.opts.attempt_timeout;
            let end = deadline.map_or(attempt_end, |d| d.min(attempt_end));
            let (max_in, reads) = (self.opts.max_in, self.opts.reads);
            let answer = self.dial.answer_within();
            let attempt = connect_once(dialer, plan.version, &spec, max_in, reads, answer);
            let result = timeout_at(end, attempt)
                .await
                .unwrap_or(Err(Attempt::TimedOut));
            let attempt = match result {
                Ok(link) => {
                    self.connected(plan.node, &link);
                    return Ok(link);
                }
                Err(attempt) => attempt,
            };
            let endpoint = dialer.endpoint();
            log::debug!(
                "connecting to {endpoint}: {attempt} (MQTT {})",
                plan.version
            );
            if self.refused.len() == NOTED_ATTEMPTS {
                self.refused.remove(0);
            }
            self.refused.push(format!("{endpoint}: {attempt}"));
            let pause = match self.dial.failed(&outcome(&attempt)) {
                Step::Fatal(why) => return Err(self.fatal(why, endpoint, &attempt)),
                Step::Retry(pause) => pause,
            };
            // Keep the most telling reason: a refusal beats running out of time.
            if !(matches!(attempt, Attempt::TimedOut) && last.is_some()) {
                last = Some((plan.node, attempt));
            }
            let now = Instant::now();
            match deadline {
                Some(d) if now >= d => return Err(self.unreachable(now - started, last)),
                Some(d) => sleep(pause.min(d - now)).await,
                None => sleep(pause).await,
            }
        }
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
        log::log!(
            level,
            "connected to {} (MQTT {}{})",
            self.endpoint(),
            link.version,
            link.connack
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
                crate::render::escaped(&self.opts.spec.client_id),
            )),
            Fatal::Version(Version::V5) => Error::Unreachable(format!(
                "the broker at {endpoint} does not accept MQTT 5: {reason} (try -V 3, or \
                 -V auto to fall back to MQTT 3.1.1 by itself)"
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

    /// The error when the deadline passed without a connection.
    fn unreachable(&self, waited: Duration, last: Option<(usize, Attempt)>) -> Error {
        let within = format!("within {:.1}s", waited.as_secs_f64());
        let why = match last {
            Some((node, a)) if self.opts.nodes.len() > 1 => {
                format!("{}: {a}", self.opts.nodes[node].endpoint())
            }
            Some((_, a)) => a.to_string(),
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

/// What the policy needs to know of a failed attempt.
fn outcome(attempt: &Attempt) -> Outcome {
    match attempt {
        Attempt::Refused(r) => Outcome::Refused(*r),
        Attempt::Closed => Outcome::Closed,
        Attempt::Unanswered => Outcome::Unanswered,
        Attempt::Certificate(_) => Outcome::Certificate,
        Attempt::Io(_) | Attempt::Protocol(_) | Attempt::TimedOut => Outcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(values: &[&str]) -> Vec<String> {
        let v: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        brokers(&v)
            .unwrap_or_else(|e| panic!("{values:?}: {e}"))
            .iter()
            .map(Endpoint::to_string)
            .collect()
    }

    #[test]
    fn broker_lists_split_on_commas_and_white_space() {
        assert_eq!(urls(&["a"]), ["mqtt://a:1883"]);
        assert_eq!(
            urls(&["a:1, mqtts://b", "ws://c:2/x\td"]),
            [
                "mqtt://a:1",
                "mqtts://b:8883",
                "ws://c:2/x",
                "mqtt://d:1883"
            ]
        );
        assert_eq!(
            urls(&["[::1]:1,[::1]:2"]),
            ["mqtt://[::1]:1", "mqtt://[::1]:2"]
        );
    }

    #[test]
    fn a_bad_url_anywhere_in_the_list_is_a_usage_error() {
        for bad in [&["a", "http://b"][..], &["a,,b:0"], &[" , "]] {
            let v: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            assert!(matches!(brokers(&v), Err(Error::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn each_attempt_gets_a_share_of_the_connect_timeout() {
        let s = Duration::from_secs;
        assert_eq!(attempt_timeout(s(10), 1), s(10));
        assert_eq!(attempt_timeout(s(9), 3), s(3));
        assert_eq!(attempt_timeout(s(10), 20), s(1));
        assert_eq!(
            attempt_timeout(Duration::from_millis(500), 3),
            Duration::from_millis(500)
        );
        assert_eq!(
            attempt_timeout(Duration::ZERO, 1),
            Duration::from_millis(100)
        );
    }
}
