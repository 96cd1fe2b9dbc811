//! chat-sub: subscribe, receive, write, acknowledge, resubscribe after a reconnect.
//!
//! Output goes through one buffer flushed after each batch of packets that arrived
//! together: a single message reaches a pipe at once, a burst is written in large
//! blocks. Acknowledgements are queued while a batch is rendered and sent after the
//! flush, so the broker hears "received" only for what reached stdout.

use std::collections::HashSet;
use std::io::{self, IsTerminal};
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until};

use crate::cli::ColorWhen;
use crate::cli::SubArgs;
use crate::connect::{self, ConnectOptions, Connector};
use crate::dedup::{Key, Recent};
use crate::dial::Backoff;
use crate::envelope;
use crate::error::Error;
use crate::output::{Output, watch_stdout};
use crate::presence::{self, Roster};
use crate::render::{Delivered, Format, PresenceLine, Renderer, escaped};
use crate::session::{Link, LinkError};
use crate::signals::Signals;
use crate::topic;
use crate::wire::{self, AckKind, Delivery, Inbound};

/// Default `--max-size` of chat-sub: the protocol maximum, so nothing is dropped for size.
pub const DEFAULT_MAX_SIZE: usize = wire::MAX_PACKET;
/// Packet id of our SUBSCRIBE to the chat topics.
const SUBSCRIBE_PKID: u16 = 1;
/// Packet id of our SUBSCRIBE to the presence topics (its refusal is only a warning).
const PRESENCE_PKID: u16 = 2;
/// `--who`: how long no presence message must arrive before the state counts as complete.
pub const WHO_QUIET: Duration = Duration::from_millis(500);
/// How long (seconds) a broker keeps a `--session` after chat-sub disconnects (MQTT 5).
pub const SESSION_EXPIRY: u32 = 7 * 24 * 3600;
/// Quiet closes of a resumed `--session` in a row that count as a takeover.
const TAKEOVER_AFTER: u32 = 3;
/// A connection that lasted this long was not refused: the next loss starts a new streak.
const STABLE: Duration = Duration::from_secs(10);

/// Runs chat-sub until `--count`, `--timeout`, a closed stdout or a fatal error.
pub fn run(args: SubArgs) -> Result<(), Error> {
    for t in &args.topics {
        topic::check_filter(t).map_err(Error::Usage)?;
    }
    let format = format(&args)?;
    let max_in = args.max_size.unwrap_or(DEFAULT_MAX_SIZE);
    let mut opts = connect::options(&args.common, "chat-sub", max_in)?;
    // Under load, fewer wake-ups leave the broker more CPU (src/coalesce.rs).
    opts.reads = crate::coalesce::Reads::Stream;
    if let Some(name) = &args.session {
        persistent(&mut opts, name)?;
    }
    let presence = match (args.who, args.no_presence) {
        (true, _) => Presence::Who,
        (false, true) => Presence::Hidden,
        (false, false) => Presence::Shown,
    };
    let hidden = hidden_nicks(&args)?;
    let rt = crate::runtime()?;
    let stdout_closed = watch_stdout();
    let mut sub = Subscriber {
        renderer: Renderer::new(format, use_color(args.color)),
        out: Output::stdout(),
        presence,
        roster: Roster::default(),
        hidden,
        no_local: args.hide_own,
        who_until: None,
        filters: args.topics.clone(),
        qos: args.common.qos,
        count: args.count,
        printed: 0,
        no_retained: args.no_retained,
        max_size: max_in,
        qos2_pending: HashSet::new(),
        recent: Recent::default(),
        repeats: 0,
        session: args.session.is_some(),
        received_on_link: 0,
        quiet_closes: 0,
    };
    let ends = Ends {
        connect_timeout: args.common.connect_timeout,
        run_for: args.timeout,
        stdout_closed,
    };
    rt.block_on(async {
        let mut signals = Signals::install()?;
        sub.run(&mut Connector::new(opts), ends, &mut signals).await
    })
}

/// The output format the flags ask for.
fn format(args: &SubArgs) -> Result<Format, Error> {
    Ok(if args.json {
        Format::Json
    } else if args.raw {
        Format::Raw
    } else if let Some(t) = &args.format {
        Format::template(t).map_err(Error::Usage)?
    } else {
        let prefix = args.topics.len() > 1 || args.topics.iter().any(|t| topic::has_wildcard(t));
        Format::Text {
            topic_prefix: prefix,
        }
    })
}

/// `--session NAME`: a fixed client id and a session the broker keeps.
fn persistent(opts: &mut ConnectOptions, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > 65_535 {
        return Err(Error::Usage(
            "--session needs a name of 1 to 65535 bytes".into(),
        ));
    }
    opts.spec.client_id = name.to_string();
    opts.spec.clean_start = false;
    opts.spec.session_expiry = Some(SESSION_EXPIRY);
    Ok(())
}

/// `--ignore` nicks, and with `--hide-own` the nick chat-pub would send for this user.
fn hidden_nicks(args: &SubArgs) -> Result<HashSet<String>, Error> {
    let mut hidden: HashSet<String> = args.ignore.iter().cloned().collect();
    if args.hide_own {
        let own = crate::own_nick(args.nick.as_deref())
            .ok_or_else(|| Error::Usage("--hide-own needs --nick (or CHAT_NICK)".into()))?;
        hidden.insert(own);
    }
    Ok(hidden)
}

/// Whether to colour nicks: `--color`, and for `auto` a terminal without NO_COLOR.
fn use_color(when: ColorWhen) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// Everything that can end a run besides `--count`.
struct Ends {
    connect_timeout: Duration,
    /// `--timeout`, counted from the first connection.
    run_for: Option<Duration>,
    stdout_closed: oneshot::Receiver<()>,
}

/// What chat-sub does with presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    /// Show joins and leaves (the default).
    Shown,
    /// `--no-presence`: do not even subscribe to presence.
    Hidden,
    /// `--who`: collect who is online, print it, exit.
    Who,
}

/// What handling a batch of packets led to.
enum Step {
    Continue,
    /// `--count` reached.
    Done,
    /// stdout was closed by its reader: a normal end.
    StdoutClosed,
    /// The broker refused a subscription (exit 4).
    Refused(String),
    /// stdout failed (disk full, …): nothing printed from now on could be trusted.
    StdoutFailed(io::Error),
}

struct Subscriber {
    renderer: Renderer,
    out: Output,
    presence: Presence,
    roster: Roster,
    /// Nicks whose messages and presence are not shown (--ignore, --hide-own).
    hidden: HashSet<String>,
    /// --hide-own: ask an MQTT 5 broker not to send back this connection's own messages.
    no_local: bool,
    /// --who: print the roster once nothing arrived until then.
    who_until: Option<Instant>,
    filters: Vec<String>,
    qos: u8,
    count: Option<u64>,
    printed: u64,
    no_retained: bool,
    max_size: usize,
    /// Incoming QoS 2 packet ids printed and waiting for PUBREL (a resend is not printed).
    qos2_pending: HashSet<u16>,
    /// Recently printed messages, so that one delivered again is printed once.
    recent: Recent,
    /// Repeats dropped so far (for -vv).
    repeats: u64,
    /// Whether this is a `--session` (a persistent session that another client can take).
    session: bool,
    /// Messages received on the current connection.
    received_on_link: u64,
    /// Connections in a row that the broker closed before any message arrived.
    quiet_closes: u32,
}

impl Subscriber {
    async fn run(
        &mut self,
        connector: &mut Connector,
        mut ends: Ends,
        signals: &mut Signals,
    ) -> Result<(), Error> {
        if self.count == Some(0) {
            return Ok(());
        }
        let first = Instant::now() + ends.connect_timeout;
        let mut link = tokio::select! {
            l = connector.establish(Some(first)) => l?,
            code = signals.recv() => return Err(Error::Reported(code)),
        };
        let run_for = ends.run_for;
        let stop_at = run_for.map(|d| Instant::now() + d);
        let stop = stop_at.unwrap_or_else(Instant::now);
        self.subscribe(&mut link);
        let mut connected_at = Instant::now();
        let mut losses = Backoff::default();
        loop {
            let failure = tokio::select! {
                biased;
                code = signals.recv() => {
                    // Everything printed is flushed already; leave the broker politely.
                    link.disconnect(Instant::now() + Duration::from_secs(1)).await;
                    return Err(Error::Reported(code));
                }
                _ = &mut ends.stdout_closed => return Ok(()),
                _ = sleep_until(stop), if stop_at.is_some() => return self.timed_out(run_for),
                _ = sleep_until(self.who_until.unwrap_or_else(Instant::now)),
                    if self.who_until.is_some() => {
                    self.print_roster();
                    self.out.flush().map_err(stdout_error)?;
                    link.disconnect(Instant::now() + Duration::from_secs(1)).await;
                    return Ok(());
                }
                r = link.io() => match r.and_then(|()| self.handle(&mut link)) {
                    Ok(Step::Continue) => continue,
                    Ok(Step::StdoutClosed) => return Ok(()),
                    Ok(Step::Done) => {
                        link.disconnect(Instant::now() + Duration::from_secs(1)).await;
                        return Ok(());
                    }
                    Ok(Step::Refused(why)) => return Err(Error::Refused(why)),
                    Ok(Step::StdoutFailed(e)) => return Err(stdout_error(e)),
                    Err(e) => e,
                },
            };
            self.out.flush().map_err(stdout_error)?;
            let client_id = &connector.options().spec.client_id;
            self.check_takeover(&failure, connected_at.elapsed(), client_id)?;
            log::warn!("connection lost: {failure}; reconnecting");
            // The next attempt goes to the next broker of the list, if there are several.
            connector.lost();
            // A connection that lived a while ends any streak; one the broker keeps closing
            // at once is retried with growing pauses, not in a busy loop.
            if connected_at.elapsed() >= STABLE {
                losses.reset();
            }
            losses.failed();
            let pause = losses.pause();
            link = tokio::select! {
                biased;
                code = signals.recv() => return Err(Error::Reported(code)),
                _ = &mut ends.stdout_closed => return Ok(()),
                _ = sleep_until(stop), if stop_at.is_some() => return self.timed_out(run_for),
                l = async {
                    tokio::time::sleep(pause).await;
                    connector.establish(None).await
                } => l?,
            };
            connected_at = Instant::now();
            self.received_on_link = 0;
            if link.connack.session_present {
                // The broker kept our subscriptions and sends what it holds for us; QoS 2
                // messages it sends again are still recognised as repeats.
                log::warn!("reconnected to {}; session resumed", connector.endpoint());
                // rumqttd (chat-broker) resumes sending a session's messages only once the
                // client sends something: a ping at once instead of at the next keep-alive.
                link.ping();
            } else {
                log::warn!("reconnected to {}", connector.endpoint());
                self.qos2_pending.clear();
                self.subscribe(&mut link);
            }
        }
    }

    /// Ends the run when another client has taken our `--session` over, rather than take
    /// it back (and be taken over again, for ever). An MQTT 5 broker may say so
    /// (DISCONNECT 0x8E); mosquitto 2.0.11 and rumqttd just close the old connection. So a
    /// session closed cleanly by the broker [`TAKEOVER_AFTER`] times in a row, each time
    /// soon after it was resumed and before any message arrived, counts as taken over too:
    /// a lost link breaks with an error or a timeout, and a busy one carries messages.
    fn check_takeover(
        &mut self,
        failure: &LinkError,
        lived: Duration,
        name: &str,
    ) -> Result<(), Error> {
        let taken = |how: &str| {
            Err(Error::Failed(format!(
                "the session '{name}' was taken over by another client with the same client \
                 id ({how}); exiting rather than taking it back"
            )))
        };
        if matches!(failure, LinkError::Disconnected(0x8E)) {
            return taken("the broker said so");
        }
        let quiet = matches!(failure, LinkError::Closed | LinkError::Disconnected(_))
            && self.received_on_link == 0
            && lived < STABLE;
        self.quiet_closes = if quiet { self.quiet_closes + 1 } else { 0 };
        if self.session && self.quiet_closes >= TAKEOVER_AFTER {
            return taken(&format!(
                "the broker closed it {TAKEOVER_AFTER} times in a row right after it was resumed"
            ));
        }
        Ok(())
    }

    /// Subscribes to the chat topics and, in a SUBSCRIBE of its own (a refusal of which
    /// is only a warning), to their presence topics.
    fn subscribe(&self, link: &mut Link) {
        if self.presence != Presence::Who {
            let (filters, qos) = (&self.filters, self.qos);
            let nl = self.no_local;
            wire::encode_subscribe(
                link.version,
                SUBSCRIBE_PKID,
                filters,
                qos,
                nl,
                &mut link.wbuf,
            );
        }
        if self.presence != Presence::Hidden {
            let filters: Vec<String> = self.filters.iter().map(|f| presence::filter(f)).collect();
            wire::encode_subscribe(
                link.version,
                PRESENCE_PKID,
                &filters,
                1,
                false,
                &mut link.wbuf,
            );
        }
    }

    /// Handles every complete packet received, then flushes stdout.
    fn handle(&mut self, link: &mut Link) -> Result<Step, LinkError> {
        let mut step = Step::Continue;
        while let Some(p) = link.next_packet()? {
            if matches!(p, Inbound::Publish(_) | Inbound::Oversized { .. }) {
                self.received_on_link += 1;
            }
            match p {
                Inbound::Publish(d) => {
                    if self.deliver(link, &d) {
                        step = Step::Done;
                        break;
                    }
                }
                Inbound::Oversized { delivery, size } => self.skip_oversized(link, &delivery, size),
                Inbound::Ack {
                    kind: AckKind::PubRel,
                    pkid,
                    ..
                } => {
                    self.qos2_pending.remove(&pkid);
                    wire::encode_ack(AckKind::PubComp, pkid, &mut link.wbuf);
                }
                Inbound::SubAck { pkid, codes } => {
                    let presence = pkid == PRESENCE_PKID;
                    let filters: Vec<String> = match presence {
                        true => self.filters.iter().map(|f| presence::filter(f)).collect(),
                        false => self.filters.clone(),
                    };
                    match refusal(&filters, &codes, link.version) {
                        Some(why) if presence && self.presence != Presence::Who => {
                            log::warn!("{why}; joins and leaves will not be shown");
                        }
                        Some(why) => return Ok(Step::Refused(why)),
                        None if presence => {
                            log::debug!("presence: following {}", filters.join(" "));
                            self.who_quiet();
                        }
                        None => log::info!(
                            "subscribed to {} (granted QoS {codes:?})",
                            filters.join(" ")
                        ),
                    }
                }
                other => log::debug!("ignoring {other:?}"),
            }
        }
        match self.out.flush() {
            Ok(()) => Ok(step),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Step::StdoutClosed),
            Err(e) => Ok(Step::StdoutFailed(e)),
        }
    }

    /// `--who`: (re)starts the quiet period after which the roster is printed.
    fn who_quiet(&mut self) {
        if self.presence == Presence::Who {
            self.who_until = Some(Instant::now() + WHO_QUIET);
        }
    }

    /// A presence message: updates the roster, shows a join or leave (never counted).
    fn presence_message(&mut self, d: &Delivery) {
        if self.presence == Presence::Hidden {
            return;
        }
        self.who_quiet();
        let topic = String::from_utf8_lossy(&d.topic);
        let Some(change) = self.roster.update(&topic, &d.payload, d.retain) else {
            return;
        };
        if self.presence != Presence::Shown || self.hidden.contains(&change.nick) {
            return;
        }
        let line = PresenceLine {
            room: &change.room,
            nick: &change.nick,
            joined: change.joined,
            ts: change.ts.as_deref(),
            received: SystemTime::now(),
        };
        self.renderer.render_presence(&mut self.out.buf, &line);
    }

    /// `--who`: prints everyone online.
    fn print_roster(&mut self) {
        for (room, nick, ts) in self.roster.online() {
            if !self.hidden.contains(nick) {
                self.renderer.render_who(&mut self.out.buf, room, nick, ts);
            }
        }
    }

    /// Acknowledges and prints one message; true when `--count` is reached.
    fn deliver(&mut self, link: &mut Link, d: &Delivery) -> bool {
        if self.acknowledge(link, d) {
            return false;
        }
        if presence::is_presence(&d.topic) {
            self.presence_message(d);
            return false;
        }
        if self.no_retained && d.retain {
            return false;
        }
        let m = Delivered {
            topic: &d.topic,
            payload: &d.payload,
            qos: d.qos,
            retain: d.retain,
            received: SystemTime::now(),
        };
        let decoded = envelope::decode(&d.payload);
        let key = match (&decoded.id, d.retain) {
            (Some(id), _) => Some(Key::Id(id)),
            (None, true) => Some(Key::Retained {
                topic: &d.topic,
                payload: &d.payload,
            }),
            (None, false) => None,
        };
        if decoded
            .from
            .as_ref()
            .is_some_and(|f| self.hidden.contains(f.as_ref()))
        {
            return false;
        }
        if key.is_some_and(|k| !self.recent.first_time(k)) {
            self.repeats += 1;
            log::debug!(
                "dropped a repeat ({} so far; packet id {}, dup {}, retain {})",
                self.repeats,
                d.pkid,
                d.dup,
                d.retain
            );
            return false;
        }
        self.renderer.render(&mut self.out.buf, &m, &decoded);
        self.printed += 1;
        self.count.is_some_and(|n| self.printed >= n)
    }

    /// Queues the acknowledgement of `d`; true if it repeats a QoS 2 message already
    /// printed (and not yet released).
    fn acknowledge(&mut self, link: &mut Link, d: &Delivery) -> bool {
        match d.qos {
            1 => {
                wire::encode_ack(AckKind::PubAck, d.pkid, &mut link.wbuf);
                false
            }
            2 => {
                wire::encode_ack(AckKind::PubRec, d.pkid, &mut link.wbuf);
                !self.qos2_pending.insert(d.pkid)
            }
            _ => false,
        }
    }

    /// A message larger than --max-size (possible under MQTT 3.1.1, which cannot tell the
    /// broker our limit): acknowledged, so the broker does not send it again, and reported.
    fn skip_oversized(&mut self, link: &mut Link, d: &Delivery, size: usize) {
        self.acknowledge(link, d);
        log::warn!(
            "skipped a message of {size} bytes on '{}': larger than --max-size ({} bytes)",
            escaped(&String::from_utf8_lossy(&d.topic)),
            self.max_size
        );
    }

    fn timed_out(&mut self, run_for: Option<Duration>) -> Result<(), Error> {
        self.out.flush().map_err(stdout_error)?;
        match self.count {
            Some(n) if self.printed < n => {
                eprintln!(
                    "chat-sub: timed out after {}s with {} of {n} message(s)",
                    run_for.unwrap_or_default().as_secs_f64(),
                    self.printed
                );
                Err(Error::Reported(1))
            }
            _ => Ok(()),
        }
    }
}

fn stdout_error(e: io::Error) -> Error {
    match e.kind() {
        // A closed stdout is a normal end, but there is nothing left to do either way.
        io::ErrorKind::BrokenPipe => Error::Reported(0),
        _ => Error::Failed(format!("cannot write to stdout: {e}")),
    }
}

/// Why a SUBACK refuses one of `filters`, if it does.
fn refusal(filters: &[String], codes: &[u8], version: wire::Version) -> Option<String> {
    let (filter, &code) = filters.iter().zip(codes).find(|(_, c)| **c >= 0x80)?;
    // MQTT 3.1.1 has one failure code, 0x80, with no reason.
    let why = match version {
        wire::Version::V5 => wire::reason_text(code),
        wire::Version::V311 => "failure",
    };
    Some(format!(
        "the broker refused the subscription to '{}': {why} ({code:#04x})",
        escaped(filter)
    ))
}
