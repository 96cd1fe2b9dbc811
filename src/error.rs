//! One error type for the three tools; each variant knows its exit status (see EXIT
//! STATUS in the man pages).
//!
//! Errors that end a run early (a bad flag, an unreachable broker, refused credentials)
//! carry their message. Failures of single lines were reported as they happened and only
//! their [`Tally`] is left; a signal and a closed stdout are ends of their own. The
//! [`Signal`] that ended a run is a value here, below the handler that catches it
//! (`signals`), so that state machines can speak of it without touching the handler.

use std::fmt;

/// Why a tool stops, when it does not simply finish its work.
#[derive(Debug)]
pub enum Error {
    /// Bad flag, URL, topic or template: nothing was sent (exit 2).
    Usage(String),
    /// The broker could not be reached within `--connect-timeout`; for chat-broker, an
    /// address it cannot listen on (exit 3).
    Unreachable(String),
    /// The broker refused: bad credentials, or not authorized (exit 4).
    Refused(String),
    /// The run went on but something failed: a lost connection that cannot be made
    /// again, `--count` not reached by `--timeout` (exit 1).
    Failed(String),
    /// Messages failed and were reported one by one as they did (exit 4 when any was
    /// refused, else 1).
    Undelivered(Tally),
    /// SIGINT or SIGTERM, after what was read was drained or given up (exit 130, 143).
    Interrupted(Signal),
    /// The reader of stdout went away (`chat-sub t | head -n 1`): there is nobody left
    /// to tell anything, and the reader got what it wanted, so this ends with status 0,
    /// as `grep` and `head` do, rather than with an error message.
    StdoutClosed,
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Failed(_) => 1,
            Error::Usage(_) => 2,
            Error::Unreachable(_) => 3,
            Error::Refused(_) => 4,
            Error::Undelivered(t) if t.refused > 0 => 4,
            Error::Undelivered(_) => 1,
            Error::Interrupted(signal) => signal.exit_code(),
            Error::StdoutClosed => 0,
        }
    }

    /// The message for stderr, if there is one left to say.
    pub fn message(&self) -> Option<&str> {
        match self {
            Error::Usage(m) | Error::Unreachable(m) | Error::Refused(m) | Error::Failed(m) => {
                Some(m)
            }
            Error::Undelivered(_) | Error::Interrupted(_) | Error::StdoutClosed => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Undelivered(t) => {
                write!(f, "{} message(s) failed, {} refused", t.failed, t.refused)
            }
            Error::Interrupted(signal) => write!(f, "stopped by {signal:?}"),
            Error::StdoutClosed => f.write_str("stdout was closed"),
            other => f.write_str(other.message().unwrap_or_default()),
        }
    }
}

impl std::error::Error for Error {}

/// A signal that asks a tool to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Signal {
    /// The exit status it calls for: 128 + the signal number.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// Counts the messages of a run that failed without stopping it, and keeps what is to be
/// said about each until the driver reports it (state machines do no I/O).
///
/// When failures of several kinds happen, a refusal (exit 4) wins over other failures
/// (exit 1), because it is the thing to fix first.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Messages that failed for any reason but a refusal.
    pub failed: u64,
    /// Messages the broker refused (not authorized).
    pub refused: u64,
    /// Lines for stderr not reported yet.
    notes: Vec<String>,
}

impl Tally {
    /// `n` messages failed, for the reason in `note`.
    pub fn fail(&mut self, n: u64, note: String) {
        self.failed += n;
        self.notes.push(note);
    }

    /// One message was refused by the broker (not authorized).
    pub fn refuse(&mut self, note: String) {
        self.refused += 1;
        self.notes.push(note);
    }

    /// Something to tell the user that is not a failure of its own.
    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// What is to be said, oldest first; the tally forgets it.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Ok when nothing failed, else [`Error::Undelivered`].
    pub fn into_result(self) -> Result<(), Error> {
        match self.failed + self.refused {
            0 => Ok(()),
            _ => Err(Error::Undelivered(self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_decides_the_status_over_other_failures() {
        let mut t = Tally::default();
        assert!(t.clone().into_result().is_ok());
        t.fail(2, "line 1: lost".into());
        assert_eq!(t.clone().into_result().unwrap_err().exit_code(), 1);
        t.refuse("line 2: refused".into());
        assert_eq!(t.clone().into_result().unwrap_err().exit_code(), 4);
        assert_eq!(t.take_notes(), ["line 1: lost", "line 2: refused"]);
        assert!(t.take_notes().is_empty());
    }

    #[test]
    fn signals_and_a_closed_stdout_have_their_statuses() {
        assert_eq!(Error::Interrupted(Signal::Interrupt).exit_code(), 130);
        assert_eq!(Error::Interrupted(Signal::Terminate).exit_code(), 143);
        assert_eq!(Error::StdoutClosed.exit_code(), 0);
        assert_eq!(Error::StdoutClosed.message(), None);
    }
}
