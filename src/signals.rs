//! SIGINT and SIGTERM as values the tools' loops can `select!` on (SPEC §8: exit 130 and
//! 143 after the in-flight work was drained; a second signal ends the drain).

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::error::Error;

/// Both signals, caught instead of ending the process at once.
pub struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    /// Installs the handlers; needs a running runtime with its I/O driver.
    pub fn install() -> Result<Signals, Error> {
        let cannot = |e: std::io::Error| Error::Failed(format!("cannot handle signals: {e}"));
        Ok(Signals {
            int: signal(SignalKind::interrupt()).map_err(cannot)?,
            term: signal(SignalKind::terminate()).map_err(cannot)?,
        })
    }

    /// Waits for the next signal; returns the exit status it calls for (128 + signal
    /// number: 130 for SIGINT, 143 for SIGTERM).
    pub async fn recv(&mut self) -> u8 {
        tokio::select! {
            _ = self.int.recv() => 130,
            _ = self.term.recv() => 143,
        }
    }
}
