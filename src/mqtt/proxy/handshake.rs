//! What the proxy handshakes share: the steps a driver carries out, and how one fails.
//!
//! A handshake is a state machine over bytes: it says what to send and how many bytes to
//! read next, and judges what was read; it does no I/O. The driver (`mqtt/proxy`) moves
//! the bytes. Reading exactly the bytes asked for means nothing past the handshake is
//! ever read: the first byte after it is the broker's.

use std::fmt;

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes, then call `sent`.
    Send(Vec<u8>),
    /// Read exactly this many bytes, then pass them to `received`.
    Read(usize),
    /// The tunnel is open: what follows on the connection is the broker's.
    Done,
    /// The proxy said no, or did not speak its protocol.
    Failed(Failure),
}

/// A handshake with a proxy.
pub trait Handshake {
    /// The first step.
    fn start(&mut self) -> Step;
    /// The bytes of the last [`Step::Send`] were written.
    fn sent(&mut self) -> Step;
    /// The bytes of the last [`Step::Read`] arrived.
    fn received(&mut self, bytes: &[u8]) -> Step;
}

/// How a handshake failed, in the proxy's own terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    /// The proxy's reason: the SOCKS reply named, or the HTTP status line.
    pub why: String,
}

/// What a failure means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The proxy refused the credentials, or wants some and none were given (exit 4).
    Credentials,
    /// The proxy will not carry this connection whatever happens (its rules forbid it,
    /// it does not know the command), or it is not the proxy the URL says: retrying
    /// cannot help (exit 3 at once).
    Denied,
    /// The proxy could not reach the broker (refused, unreachable): the broker may come
    /// up, so this is retried as a refused connection is.
    Refused,
}

impl Failure {
    pub fn new(kind: FailureKind, why: impl Into<String>) -> Failure {
        Failure {
            kind,
            why: why.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

/// The failed step of `kind`.
pub fn failed(kind: FailureKind, why: impl Into<String>) -> Step {
    Step::Failed(Failure::new(kind, why))
}
