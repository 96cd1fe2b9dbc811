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
mod state;
mod takeover;
mod view;

use std::io;
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio::time::{Instant, sleep, sleep_until};

pub use config::{DEFAULT_MAX_SIZE, SESSION_EXPIRY, SubConfig};
pub use view::WHO_QUIET;

use crate::cli::SubArgs;
use crate::connect::Connector;
use crate::error::Error;
use crate::output::{Output, watch_stdout};
use crate::session::{Link, LinkError};
use crate::signals::Signals;
use crate::tool;
use state::{Step, SubState};

/// Runs chat-sub until `--count`, `--timeout`, a closed stdout or a fatal error.
pub fn run(args: SubArgs) -> Result<(), Error> {
    let config = SubConfig::new(&args)?;
    let rt = tool::runtime()?;
    let mut driver = Driver {
        state: config.state,
        out: Output::stdout(),
        stdout_closed: watch_stdout(),
        connector: Connector::new(config.connect),
        stop_at: None,
        run_for: config.run_for,
    };
    rt.block_on(async {
        let mut signals = Signals::install()?;
        driver.run(config.connect_timeout, &mut signals).await
    })
}

/// How a connection's service ended, when the run goes on.
enum Served {
    /// `--count`, `--who`, a closed stdout: the run is over.
    End,
    Lost(LinkError),
}

struct Driver {
    state: SubState,
    out: Output,
    stdout_closed: oneshot::Receiver<()>,
    connector: Connector,
    /// When `--timeout` ends the run.
    stop_at: Option<Instant>,
    run_for: Option<Duration>,
}

impl Driver {
    async fn run(&mut self, connect_timeout: Duration, signals: &mut Signals) -> Result<(), Error> {
        if self.state.wants_none() {
            return Ok(());
        }
        let first = Instant::now() + connect_timeout;
        let mut link = tokio::select! {
            l = self.connector.establish(Some(first)) => l?,
            signal = signals.recv() => return Err(Error::Interrupted(signal)),
        };
        self.stop_at = self.run_for.map(|d| Instant::now() + d);
        self.state.connected(&mut link.tx(), now());
        loop {
            let lost = match self.serve(&mut link, signals).await? {
                Served::End => return Ok(()),
                Served::Lost(lost) => lost,
            };
            self.flush()?;
            let client_id = &self.connector.options().spec.client_id;
            let pause = self.state.lost(&lost, client_id, now())?;
            log::warn!("connection lost: {lost}; reconnecting");
            // The next attempt goes to the next broker of the list, if there are several.
            self.connector.lost();
            match self.reconnect(pause, signals).await? {
                Some(l) => link = l,
                None => return Ok(()),
            }
        }
    }

    /// Serves one connection until the run ends or the connection is lost.
    async fn serve(&mut self, link: &mut Link, signals: &mut Signals) -> Result<Served, Error> {
        let stop = self.stop_at.unwrap_or_else(Instant::now);
        loop {
            let who = self.state.who_deadline().map(Instant::from_std);
            tokio::select! {
                biased;
                signal = signals.recv() => {
                    // Everything printed is written already; leave the broker politely.
                    goodbye(link).await;
                    return Err(Error::Interrupted(signal));
                }
                _ = &mut self.stdout_closed => return Ok(Served::End),
                _ = sleep_until(stop), if self.stop_at.is_some() => return self.timed_out(),
                _ = sleep_until(who.unwrap_or_else(Instant::now)), if who.is_some() => {
                    self.state.print_roster();
                    self.flush()?;
                    goodbye(link).await;
                    return Ok(Served::End);
                }
                r = link.io() => match r.and_then(|()| self.handle(link)) {
                    Ok(Step::Continue) => self.flush()?,
                    Ok(Step::Done) => {
                        self.flush()?;
                        goodbye(link).await;
                        return Ok(Served::End);
                    }
                    Ok(Step::Refused(why)) => return Err(Error::Refused(why)),
                    Err(lost) => return Ok(Served::Lost(lost)),
                },
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

    /// The next connection after `pause`; None when the run ended meanwhile.
    async fn reconnect(
        &mut self,
        pause: Duration,
        signals: &mut Signals,
    ) -> Result<Option<Link>, Error> {
        let stop = self.stop_at.unwrap_or_else(Instant::now);
        let mut link = tokio::select! {
            biased;
            signal = signals.recv() => return Err(Error::Interrupted(signal)),
            _ = &mut self.stdout_closed => return Ok(None),
            _ = sleep_until(stop), if self.stop_at.is_some() => {
                self.timed_out()?;
                return Ok(None);
            }
            l = async {
                sleep(pause).await;
                self.connector.establish(None).await
            } => l?,
        };
        let endpoint = self.connector.endpoint();
        if link.connack().session_present {
            log::warn!("reconnected to {endpoint}; session resumed");
            // rumqttd (chat-broker) resumes sending a session's messages only once the
            // client sends something: a ping at once instead of at the next keep-alive.
            link.ping();
        } else {
            log::warn!("reconnected to {endpoint}");
        }
        self.state.reconnected(&mut link.tx(), now());
        Ok(Some(link))
    }

    /// `--timeout` passed: the end, a failure when `--count` was not reached.
    fn timed_out(&mut self) -> Result<Served, Error> {
        self.flush()?;
        self.state.timed_out(self.run_for.unwrap_or_default())?;
        Ok(Served::End)
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

/// Leaves the broker politely: DISCONNECT, and a second for it to close the connection.
async fn goodbye(link: &mut Link) {
    link.disconnect(Instant::now() + Duration::from_secs(1))
        .await;
}
