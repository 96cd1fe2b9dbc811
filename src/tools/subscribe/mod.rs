//! chat-sub: subscribe, receive, write, acknowledge, resubscribe after a reconnect.
//!
//! What a packet means is decided in [`state::SubState`] (no I/O, time passed in); this
//! driver only waits — for the connection, a signal, `--timeout`, `--who`'s quiet, a
//! closed stdout — and moves bytes. Output goes through one buffer written after each
//! batch of packets that arrived together: a single message reaches a pipe at once, a
//! burst is written in large blocks. Acknowledgements are queued while a batch is
//! rendered and sent after the write, so the broker hears "received" only for what
//! reached stdout.

mod config;
mod inbox;
mod printer;
mod room;
mod state;
mod takeover;
mod view;

use std::io;
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until};

pub use config::SubConfig;

use crate::cli::SubArgs;
use crate::error::Error;
use crate::mqtt::connect::{Connector, Dialing, dial, io, reconnect};
use crate::mqtt::link::Link;
use crate::mqtt::tx::LinkError;
use crate::signals::Signals;
use crate::tool;
use crate::tools::output::{Output, watch_stdout};
use state::{Step, SubState};

/// Runs chat-sub until `--count`, `--timeout`, `--who`, a closed stdout or a fatal
/// error.
pub fn run(args: SubArgs) -> Result<(), Error> {
    let config = SubConfig::new(&args)?;
    let rt = tool::runtime()?;
    let mut driver = Driver {
        client_id: config.connect.spec.client_id.clone(),
        state: config.state,
        out: Output::stdout(),
        stdout_closed: watch_stdout(),
        run_for: config.run_for,
        stop_at: None,
        connected_once: false,
    };
    let mut connector = Connector::new(config.connect);
    let first = Instant::now() + config.connect_timeout;
    let result = rt.block_on(async {
        let mut signals = Signals::install()?;
        driver.run(&mut connector, first, &mut signals).await
    });
    if let Some(summary) = driver.state.summary() {
        tool::say(summary);
    }
    result
}

/// What a connection's I/O led to.
enum After {
    Continue,
    /// `--count` reached.
    Done,
    /// The connection was lost: the next attempt after this pause.
    Lost(Duration),
}

/// The state, stdout, and when the run ends.
struct Driver {
    /// The session's name, for a takeover.
    client_id: String,
    state: SubState,
    out: Output,
    stdout_closed: oneshot::Receiver<()>,
    /// `--timeout`, counted from the first connection.
    run_for: Option<Duration>,
    /// When `--timeout` ends the run, once connected.
    stop_at: Option<Instant>,
    connected_once: bool,
}

impl Driver {
    /// The loop: a connection, or one being made, until the run ends.
    async fn run(
        &mut self,
        connector: &mut Connector,
        first: Instant,
        signals: &mut Signals,
    ) -> Result<(), Error> {
        if self.state.wants_none() {
            return Ok(());
        }
        let mut dialing: Option<Dialing> = Some(Box::pin(connector.establish(Some(first))));
        let mut link: Option<Link> = None;
        loop {
            let who = self.state.who_deadline().map(Instant::from_std);
            let stop = self.stop_at;
            tokio::select! {
                biased;
                signal = signals.recv() => {
                    // Everything printed is written already; leave the broker politely.
                    goodbye(&mut link).await;
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
                    return self.end(&mut link).await;
                }
                r = io(&mut link) => match self.after_io(&mut link, r)? {
                    After::Continue => {}
                    After::Done => return self.end(&mut link).await,
                    After::Lost(pause) => {
                        // No connection is being made while one is up; assigning None
                        // tells the borrow checker that `connector` is free again.
                        #[allow(unused_assignments)]
                        {
                            dialing = None;
                        }
                        dialing = Some(Box::pin(reconnect(connector, pause)));
                    }
                },
                r = dial(&mut dialing) => {
                    dialing = None;
                    let endpoint = connector.endpoint().to_string();
                    link = Some(self.connected(r?, &endpoint));
                }
            }
        }
    }

    /// Hands what the connection brought to the state and writes what it printed. A
    /// lost connection is gone then.
    fn after_io(
        &mut self,
        link: &mut Option<Link>,
        io: Result<(), LinkError>,
    ) -> Result<After, Error> {
        let Some(l) = link.as_mut() else {
            return Ok(After::Continue);
        };
        match io.and_then(|()| self.handle(l)) {
            Ok(Step::Continue) => self.flush().map(|()| After::Continue),
            Ok(Step::Done) => Ok(After::Done),
            Ok(Step::Refused(why)) => Err(Error::Refused(why)),
            Err(lost) => {
                *link = None;
                self.flush()?;
                let pause = self.state.lost(&lost, &self.client_id, now())?;
                log::warn!("connection lost: {lost}; reconnecting");
                Ok(After::Lost(pause))
            }
        }
    }

    /// Hands every complete packet received to the state, until `--count` is reached.
    fn handle(&mut self, link: &mut Link) -> Result<Step, LinkError> {
        while let Some(p) = link.next_packet()? {
            match self
                .state
                .on_packet(p, &mut link.tx(), now(), SystemTime::now())
            {
                Step::Continue => {}
                step => return Ok(step),
            }
        }
        Ok(Step::Continue)
    }

    /// A connection was accepted: subscribe, or resume a kept session.
    fn connected(&mut self, mut link: Link, endpoint: &str) -> Link {
        if !std::mem::replace(&mut self.connected_once, true) {
            self.stop_at = self.run_for.map(|d| Instant::now() + d);
            self.state.connected(&mut link.tx(), now());
            return link;
        }
        if link.connack().session_present {
            log::warn!("reconnected to {endpoint}; session resumed");
            // Some brokers (rumqttd) resume sending a session's messages only once the
            // client sends something: a ping at once instead of at the next keep-alive.
            link.ping();
        } else {
            log::warn!("reconnected to {endpoint}");
        }
        self.state.reconnected(&mut link.tx(), now());
        link
    }

    /// The run is over (`--count`, `--who`): write the rest, leave the broker.
    async fn end(&mut self, link: &mut Option<Link>) -> Result<(), Error> {
        self.flush()?;
        goodbye(link).await;
        Ok(())
    }

    /// Writes what was printed to stdout.
    fn flush(&mut self) -> Result<(), Error> {
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

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Leaves the broker politely, if connected: DISCONNECT, and a second for the broker to
/// close the connection.
async fn goodbye(link: &mut Option<Link>) {
    if let Some(l) = link {
        l.disconnect(Instant::now() + Duration::from_secs(1)).await;
    }
}
