//! How chat-pub's run ends, without I/O: end of input, signals, and the drain deadline
//! by which everything read must be acknowledged.

use std::time::{Duration, Instant};

use crate::error::Signal;

/// The end of the input and the drain that follows it.
#[derive(Debug)]
pub struct Drain {
    /// False after end of input, or after a signal stopped reading.
    input_open: bool,
    /// The signal that stopped reading, if one did: it decides the exit status.
    stopped_by: Option<Signal>,
    /// `--drain-timeout`.
    timeout: Duration,
    /// Set once input ended and a connection was made: acknowledgements must arrive by
    /// then. Until the first connection `--connect-timeout` is the only limit.
    deadline: Option<Instant>,
}

impl Drain {
    pub fn new(timeout: Duration) -> Drain {
        Drain {
            input_open: true,
            stopped_by: None,
            timeout,
            deadline: None,
        }
    }

    pub fn input_open(&self) -> bool {
        self.input_open
    }

    /// What is said when the drain timeout passed with `missing` messages unacknowledged.
    pub fn expired(&self, missing: u64) -> String {
        format!(
            "{missing} message(s) not acknowledged by the broker within the drain timeout \
             ({}s)",
            self.timeout.as_secs_f64()
        )
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// When the drain ends, once it started.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// End of input at `now`; the drain starts at once when `connected`.
    pub fn end_of_input(&mut self, now: Instant, connected: bool) {
        self.input_open = false;
        if connected {
            self.start(now);
        }
    }

    /// The first connection, at `now`: input that ended before starts the drain now.
    pub fn connected(&mut self, now: Instant) {
        if !self.input_open {
            self.start(now);
        }
    }

    /// Starts the drain (an earlier deadline stays).
    fn start(&mut self, now: Instant) {
        let end = now + self.timeout;
        self.deadline = Some(self.deadline.map_or(end, |d| d.min(end)));
    }

    /// A signal stops the run; returns the one before it, if any.
    pub fn stop(&mut self, signal: Signal) -> Option<Signal> {
        self.stopped_by.replace(signal)
    }

    /// A signal that came with the last acknowledgements still decides the status: the
    /// user asked for it (nothing is left to drain).
    pub fn late_signal(&mut self, signal: Signal) {
        self.stopped_by.get_or_insert(signal);
    }

    pub fn stopped_by(&self) -> Option<Signal> {
        self.stopped_by
    }

    /// The time allowed for the DISCONNECT handshake: the rest of the drain, at least a
    /// second.
    pub fn disconnect_deadline(&self, now: Instant) -> Instant {
        let second = now + Duration::from_secs(1);
        self.deadline.map_or(second, |d| d.max(second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn the_drain_starts_at_end_of_input_or_at_the_first_connection_whichever_is_later() {
        let t0 = Instant::now();
        let mut early = Drain::new(T);
        early.end_of_input(t0, false);
        assert_eq!(early.deadline(), None);
        early.connected(t0 + T);
        assert_eq!(early.deadline(), Some(t0 + 2 * T));
        let mut late = Drain::new(T);
        late.connected(t0);
        assert_eq!(late.deadline(), None, "input still open");
        late.end_of_input(t0 + T, true);
        assert_eq!(late.deadline(), Some(t0 + 2 * T));
        late.end_of_input(t0 + 3 * T, true);
        assert_eq!(
            late.deadline(),
            Some(t0 + 2 * T),
            "a later end does not extend it"
        );
    }

    #[test]
    fn disconnecting_gets_the_rest_of_the_drain_or_a_second() {
        let t0 = Instant::now();
        let mut d = Drain::new(T);
        assert_eq!(d.disconnect_deadline(t0), t0 + Duration::from_secs(1));
        d.end_of_input(t0, true);
        assert_eq!(d.disconnect_deadline(t0), t0 + T);
        assert_eq!(
            d.disconnect_deadline(t0 + T),
            t0 + T + Duration::from_secs(1)
        );
    }

    #[test]
    fn the_first_signal_decides_unless_a_second_one_comes() {
        let mut d = Drain::new(T);
        assert_eq!(d.stop(Signal::Terminate), None);
        d.late_signal(Signal::Interrupt);
        assert_eq!(d.stopped_by(), Some(Signal::Terminate));
        assert_eq!(d.stop(Signal::Interrupt), Some(Signal::Terminate));
        assert_eq!(d.stopped_by(), Some(Signal::Interrupt));
    }
}
