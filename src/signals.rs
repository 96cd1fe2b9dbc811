//! SIGINT and SIGTERM as values the tools' loops can `select!` on: the tools drain the
//! work in flight first, and a second signal ends the drain.

use tokio::signal::unix::{self, SignalKind};

use crate::error::{Error, Signal};

/// Both signals, caught instead of ending the process at once.
pub struct Signals {
    int: unix::Signal,
    term: unix::Signal,
}

impl Signals {
    /// Installs the handlers; needs a running runtime with its I/O driver.
    pub fn install() -> Result<Signals, Error> {
        let cannot = |e: std::io::Error| Error::Failed(format!("cannot handle signals: {e}"));
        Ok(Signals {
            int: unix::signal(SignalKind::interrupt()).map_err(cannot)?,
            term: unix::signal(SignalKind::terminate()).map_err(cannot)?,
        })
    }

    /// Waits for the next signal.
    pub async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.int.recv() => Signal::Interrupt,
            _ = self.term.recv() => Signal::Terminate,
        }
    }
}
