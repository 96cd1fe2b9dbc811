//! chat-sub: subscribe, receive, write, acknowledge, resubscribe after a reconnect.
//!
//! Output goes through one buffer flushed after each batch of packets that arrived
//! together: a single message reaches a pipe at once, a burst is written in large
//! blocks. Acknowledgements are queued while a batch is rendered and sent after the
//! flush, so the broker hears "received" only for what reached stdout.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until};

use crate::cli::SubArgs;
use crate::dedup::{Key, Recent};
use crate::envelope;
use crate::error::Error;
use crate::render::{Delivered, Format, Renderer, escaped};
use crate::session::{self, Backoff, ConnectOptions, Link, LinkError};
use crate::signals::Signals;
use crate::wire::{self, AckKind, Delivery, Inbound};
use crate::{connect_options, topic};

/// Default `--max-size` of chat-sub: the protocol maximum, so nothing is dropped for size.
pub const DEFAULT_MAX_SIZE: usize = wire::MAX_PACKET;
/// Packet id of our SUBSCRIBE (the only one we send per connection).
const SUBSCRIBE_PKID: u16 = 1;
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
    let format = if args.json {
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
    };
    let max_in = args.max_size.unwrap_or(DEFAULT_MAX_SIZE);
    let mut opts = connect_options(&args.common, "chat-sub", max_in)?;
    if let Some(name) = &args.session {
        if name.is_empty() || name.len() > 65_535 {
            return Err(Error::Usage(
                "--session needs a name of 1 to 65535 bytes".into(),
            ));
        }
        opts.spec.client_id = name.clone();
        opts.spec.clean_start = false;
        opts.spec.session_expiry = Some(SESSION_EXPIRY);
    }
    let rt = crate::runtime()?;
    let stdout_closed = watch_stdout();
    let mut sub = Subscriber {
        renderer: Renderer::new(format),
        out: Output::stdout(),
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
        sub.run(&opts, ends, &mut signals).await
    })
}

/// Everything that can end a run besides `--count`.
struct Ends {
    connect_timeout: Duration,
    /// `--timeout`, counted from the first connection.
    run_for: Option<Duration>,
    stdout_closed: oneshot::Receiver<()>,
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
        opts: &ConnectOptions,
        mut ends: Ends,
        signals: &mut Signals,
    ) -> Result<(), Error> {
        if self.count == Some(0) {
            return Ok(());
        }
        let first = Instant::now() + ends.connect_timeout;
        let mut link = tokio::select! {
            l = session::establish(opts, Some(first)) => l?,
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
            self.check_takeover(&failure, connected_at.elapsed(), &opts.spec.client_id)?;
            log::warn!("connection lost: {failure}; reconnecting");
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
                    session::establish(opts, None).await
                } => l?,
            };
            connected_at = Instant::now();
            self.received_on_link = 0;
            if link.connack.session_present {
                // The broker kept our subscriptions and sends what it holds for us; QoS 2
                // messages it sends again are still recognised as repeats.
                log::warn!("reconnected to {}; session resumed", opts.endpoint);
                // rumqttd (chat-broker) resumes sending a session's messages only once the
                // client sends something: a ping at once instead of at the next keep-alive.
                link.ping();
            } else {
                log::warn!("reconnected to {}", opts.endpoint);
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

    fn subscribe(&self, link: &mut Link) {
        wire::encode_subscribe(
            link.version,
            SUBSCRIBE_PKID,
            &self.filters,
            self.qos,
            &mut link.wbuf,
        );
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
                Inbound::SubAck { codes, .. } => {
                    if let Some(why) = self.check_suback(&codes, link.version) {
                        return Ok(Step::Refused(why));
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

    /// Acknowledges and prints one message; true when `--count` is reached.
    fn deliver(&mut self, link: &mut Link, d: &Delivery) -> bool {
        if self.acknowledge(link, d) || (self.no_retained && d.retain) {
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

    /// Why a SUBACK refuses one of our filters, if it does.
    fn check_suback(&self, codes: &[u8], version: wire::Version) -> Option<String> {
        for (filter, &code) in self.filters.iter().zip(codes) {
            if code >= 0x80 {
                // MQTT 3.1.1 has one failure code, 0x80, with no reason.
                let why = match version {
                    wire::Version::V5 => wire::reason_text(code),
                    wire::Version::V311 => "failure",
                };
                return Some(format!(
                    "the broker refused the subscription to '{}': {why} ({code:#04x})",
                    escaped(filter)
                ));
            }
        }
        log::info!(
            "subscribed to {} (granted QoS {codes:?})",
            self.filters.join(" ")
        );
        None
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

/// stdout with our own buffer: flushed explicitly, never line by line.
struct Output {
    buf: Vec<u8>,
    /// fd 1, not closed on drop.
    file: ManuallyDrop<File>,
}

impl Output {
    fn stdout() -> Output {
        // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop keeps this
        // File from closing it.
        let file = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
        Output {
            buf: Vec::with_capacity(64 * 1024),
            file,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = self.file.write_all(&self.buf);
        self.buf.clear();
        r
    }
}

/// Resolves when stdout's reader goes away (`chat-sub t | head -n 1`), so chat-sub can
/// end at once instead of at its next write, which may never come.
fn watch_stdout() -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("stdout-watch".into())
        .spawn(move || {
            let mut pfd = libc::pollfd {
                fd: 1,
                events: 0,
                revents: 0,
            };
            loop {
                // SAFETY: one valid pollfd, for the duration of the call.
                let r = unsafe { libc::poll(&mut pfd, 1, -1) };
                if r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if r > 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                    let _ = tx.send(());
                    return;
                }
                // POLLNVAL (no stdout at all) or an error: writes will report it. Keep the
                // sender alive, or the receiver would read its drop as "closed".
                loop {
                    std::thread::park();
                }
            }
        });
    if let Err(e) = spawned {
        log::debug!("cannot watch stdout: {e}");
    }
    rx
}
