//! One error type for both tools; each variant knows its exit status (SPEC §8).
//!
//! Errors that end a run early (a bad flag, an unreachable broker, refused credentials)
//! carry their message. Failures that were already reported line by line while the run
//! went on are summed up as [`Error::Reported`], which only carries the status.

use std::fmt;

/// Why a tool stops with a non-zero status.
#[derive(Debug)]
pub enum Error {
    /// Bad flag, URL, topic or template: nothing was sent (exit 2).
    Usage(String),
    /// The broker could not be reached within `--connect-timeout`; for chat-broker, an
    /// address it cannot listen on (exit 3).
    Unreachable(String),
    /// The broker refused: bad credentials, or not authorized (exit 4).
    Refused(String),
    /// The run went on but something failed: a line not delivered, a lost connection,
    /// `--count` not reached by `--timeout` (exit 1).
    Failed(String),
    /// Failures already reported on stderr as they happened; only the status is left.
    Reported(u8),
}

impl Error {
    /// The process exit status for this error (SPEC §8).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Failed(_) => 1,
            Error::Usage(_) => 2,
            Error::Unreachable(_) => 3,
            Error::Refused(_) => 4,
            Error::Reported(code) => *code,
        }
    }

    /// Writes the message (if any) to stderr as `tool: message`.
    pub fn report(&self, tool: &str) {
        if !matches!(self, Error::Reported(_)) {
            eprintln!("{tool}: {self}");
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Unreachable(m) | Error::Refused(m) | Error::Failed(m) => {
                f.write_str(m)
            }
            Error::Reported(code) => write!(f, "failed (exit status {code})"),
        }
    }
}

impl std::error::Error for Error {}

/// Tallies the outcome of a run in which single messages may fail without stopping it.
///
/// When failures of several kinds happen, a refusal (4) wins over other failures (1),
/// because it is the thing to fix first (SPEC §8).
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Messages that failed for any reason but a refusal.
    pub failed: u64,
    /// Messages the broker refused (not authorized).
    pub refused: u64,
}

impl Tally {
    /// Ok when nothing failed, else the status to exit with.
    pub fn into_result(self) -> Result<(), Error> {
        if self.refused > 0 {
            Err(Error::Reported(4))
        } else if self.failed > 0 {
            Err(Error::Reported(1))
        } else {
            Ok(())
        }
    }
}
