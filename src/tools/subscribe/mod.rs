//! chat-sub: subscribe, receive, write, acknowledge, resubscribe after a reconnect.
//!
//! What a packet means is decided in [`state::SubState`] (no I/O, time passed in); this
//! driver only waits — for the connection, a signal, `--timeout`, `--who`'s quiet, a
//! closed stdout — and moves bytes. Output goes through one buffer written after each
//! batch of packets that arrived together: a single message reaches a pipe at once, a
//! burst is written in large blocks. Acknowledgements are queued while a batch is
//! rendered and sent after the write, so the broker hears "received" only for what
//! reached stdout — except in an encrypted room for a message whose room's key is being
//! derived (on the thread of [`derive`]): it is acknowledged at receipt, and printed
//! when the key is ready (see [`state`]).

mod config;
mod derive;
mod inbox;
mod known;
mod members;
mod printer;
mod room;
mod state;
mod takeover;
mod view;

use std::io;
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until};

use config::SubConfig;
use derive::Deriver;

use crate::cli::{Given, SubArgs};
use crate::error::Error;
use crate::mqtt::connect::Connector;
use crate::mqtt::connection::{Connection, LinkEvent};
use crate::mqtt::link::Link;
use crate::mqtt::tx::LinkError;
use crate::room::seal::RoomKey;
use crate::signals::Signals;
use crate::tool;
use crate::tools::output::{Output, watch_stdout};
use crate::tools::profile;
use state::{Step, SubState};

/// Runs chat-sub until `--count`, `--timeout`, `--who`, a closed stdout or a fatal
/// error.
pub fn run(mut args: SubArgs, given: &Given) -> Result<(), Error> {
    let (common, nick, dialect) = (&mut args.common, &mut args.nick, &mut args.dialect);
    if let Some(settings) = profile::configure(common, nick, dialect, given)? {
        return profile::print(&settings);
    }
    if args.common.fingerprint {
        return crate::tools::identity::print_fingerprint(&args.common);
    }
    if let Some(trust) = &args.trust {
        return known::trust(trust);
    }
    let config = SubConfig::new(&args)?;
    let rt = tool::runtime()?;
    let first = Instant::now() + config.connect_timeout;
    let deriver = match config.secret {
        Some(secret) => Some(Deriver::start(secret).map_err(|e| {
            Error::Failed(format!("cannot start the thread of key derivations: {e}"))
        })?),
        None => None,
    };
    let mut driver = Driver {
        client_id: config.connect.spec.client_id.clone(),
        state: config.state,
        conn: Connection::start(Connector::new(config.connect), first),
        out: Output::stdout(),
        stdout_closed: watch_stdout(),
        run_for: config.run_for,
        stop_at: None,
        deriver,
    };
    let result = rt.block_on(async {
        let mut signals = Signals::install()?;
        driver.run(&mut signals).await
    });
    if let Some(summary) = driver.state.summary() {
        tool::say(summary);
    }
    result
}

/// The state, the connection, stdout, and when the run ends.
struct Driver {
    /// The session's name, for a takeover.
    client_id: String,
    state: SubState,
    conn: Connection,
    out: Output,
    stdout_closed: oneshot::Receiver<()>,
    /// `--timeout`, counted from the first connection.
    run_for: Option<Duration>,
    /// When `--timeout` ends the run, once connected.
    stop_at: Option<Instant>,
    /// In an encrypted room: the thread that derives new rooms' keys.
    deriver: Option<Deriver>,
}

impl Driver {
    /// The loop: a connection, or one being made, until the run ends.
    async fn run(&mut self, signals: &mut Signals) -> Result<(), Error> {
        if self.state.wants_none() {
            return Ok(());
        }
        loop {
            if let Some(d) = &self.deriver {
                self.state
                    .wanted()
                    .into_iter()
                    .for_each(|room| d.want(room));
            }
            let who = self.state.who_deadline().map(Instant::from_std);
            let stop = self.stop_at;
            tokio::select! {
                biased;
                signal = signals.recv() => {
                    // Everything printed is written already; leave the broker politely.
                    goodbye(self.conn.take_link()).await;
                    return Err(Error::Interrupted(signal));
                }
                _ = &mut self.stdout_closed => return Ok(()),
                _ = sleep_until(stop.unwrap_or_else(Instant::now)), if stop.is_some() => {
                    self.flush()?;
                    return self.state.timed_out(self.run_for.unwrap_or_default());
                }
                _ = sleep_until(who.unwrap_or_else(Instant::now)), if who.is_some() => {
                    if let Some(note) = self.state.print_roster() {
                        tool::say(note);
                    }
                    return self.end().await;
                }
                key = next_key(&mut self.deriver) => {
                    if self.key_ready(key)? == Step::Done {
                        return self.end().await;
                    }
                }
                event = self.conn.next_event() => match event? {
                    LinkEvent::Io => {
                        if self.after_io()? == Step::Done {
                            return self.end().await;
                        }
                    }
                    LinkEvent::Lost(lost) => self.lost(&lost)?,
                    LinkEvent::Connected { first } => self.connected(first),
                },
            }
        }
    }

    /// Hands what the connection brought to the state and writes what it printed: the
    /// step the state took (`Done`: `--count` reached).
    fn after_io(&mut self) -> Result<Step, Error> {
        let Some(link) = self.conn.link() else {
            return Ok(Step::Continue);
        };
        match handle(&mut self.state, link) {
            Ok(Step::Continue) => self.flush().map(|()| Step::Continue),
            Ok(Step::Done) => Ok(Step::Done),
            Ok(Step::Refused(why)) => Err(Error::Refused(why)),
            Err(lost) => self.lost(&lost).map(|()| Step::Continue),
        }
    }

    /// A room's key arrived from the thread of derivations: what waited for it is printed
    /// (`Done`: `--count` reached).
    fn key_ready(&mut self, key: Option<(String, RoomKey)>) -> Result<Step, Error> {
        let Some((room, key)) = key else {
            // The thread is gone (it cannot fail, short of a bug): nothing more comes.
            log::error!("the thread of key derivations ended; new rooms are not shown");
            self.deriver = None;
            return Ok(Step::Continue);
        };
        let step = self.state.key_ready(&room, key, std::time::Instant::now());
        self.flush()?;
        Ok(step)
    }

    /// The connection was lost (or its bytes made no sense): what was printed is
    /// written, the state decides the pause (or that the session was taken over), and
    /// the next connection is made.
    fn lost(&mut self, lost: &LinkError) -> Result<(), Error> {
        self.conn.take_link();
        self.flush()?;
        let pause = self
            .state
            .lost(lost, &self.client_id, std::time::Instant::now())?;
        self.conn.say_lost(lost);
        self.conn.reconnect(pause);
        Ok(())
    }

    /// A connection was accepted: subscribe, or resume a kept session.
    fn connected(&mut self, first: bool) {
        let Some(link) = self.conn.link() else {
            return;
        };
        if first {
            self.stop_at = self.run_for.map(|d| Instant::now() + d);
            self.state
                .connected(&mut link.tx(), std::time::Instant::now());
            return;
        }
        if link.connack().session_present {
            // Some brokers (rumqttd) resume sending a session's messages only once the
            // client sends something: a ping at once instead of at the next keep-alive.
            link.ping();
        }
        self.state
            .reconnected(&mut link.tx(), std::time::Instant::now());
    }

    /// The run is over (`--count`, `--who`): write the rest, leave the broker.
    async fn end(&mut self) -> Result<(), Error> {
        self.flush()?;
        goodbye(self.conn.take_link()).await;
        Ok(())
    }

    /// Writes what was printed to stdout, and saves the keys pinned meanwhile.
    fn flush(&mut self) -> Result<(), Error> {
        let pins = self.state.take_pins();
        if let Err(e) = known::append_new(&pins) {
            log::warn!("cannot save the keys seen: {e}");
        }
        self.out
            .write(self.state.output())
            .map_err(|e| match e.kind() {
                // Whoever reads stdout went away: nothing left to do.
                io::ErrorKind::BrokenPipe => Error::StdoutClosed,
                // Disk full, …: nothing printed from now on could be trusted.
                _ => Error::Failed(format!("cannot write to stdout: {e}")),
            })
    }
}

/// Hands every complete packet received to the state, until `--count` is reached.
fn handle(state: &mut SubState, link: &mut Link) -> Result<Step, LinkError> {
    while let Some(p) = link.next_packet()? {
        match state.on_packet(
            p,
            &mut link.tx(),
            std::time::Instant::now(),
            SystemTime::now(),
        ) {
            Step::Continue => {}
            step => return Ok(step),
        }
    }
    Ok(Step::Continue)
}

/// The next key from the thread of derivations; never, without one.
async fn next_key(deriver: &mut Option<Deriver>) -> Option<(String, RoomKey)> {
    match deriver {
        Some(d) => d.next().await,
        None => std::future::pending().await,
    }
}

/// Leaves the broker politely, if connected: DISCONNECT, and a second for the broker to
/// close the connection.
async fn goodbye(link: Option<Link>) {
    if let Some(mut l) = link {
        l.disconnect(Instant::now() + Duration::from_secs(1)).await;
    }
}
