//! Telling a taken-over `--session` from a lost connection, without I/O.
//!
//! Another client that connects with our client id takes the session over. An MQTT 5
//! broker may say so (DISCONNECT 0x8E, as chat-broker does); mosquitto 2.0 just closes
//! the old connection. Reconnecting would take it back, and be taken over again, for ever. So a
//! session that the broker closed cleanly [`TAKEOVER_AFTER`] times in a row, each time
//! soon after it was resumed and before any message arrived, counts as taken over too: a
//! lost link breaks with an error or a timeout, and a busy one carries messages.

use std::time::Duration;

use crate::error::Error;
use crate::mqtt::tx::LinkError;

/// Quiet closes of a resumed `--session` in a row that count as a takeover.
pub const TAKEOVER_AFTER: u32 = 3;
/// A connection that lasted this long was not refused: the next loss starts a new streak.
pub const STABLE: Duration = Duration::from_secs(10);

/// The streak of quiet closes.
#[derive(Debug, Default)]
pub struct Takeover {
    /// Whether this is a `--session` (a persistent session that another client can take).
    session: bool,
    /// Messages received on the current connection.
    received: u64,
    /// Connections in a row that the broker closed before any message arrived.
    quiet_closes: u32,
}

impl Takeover {
    pub fn new(session: bool) -> Takeover {
        Takeover {
            session,
            ..Takeover::default()
        }
    }

    /// A new connection.
    pub fn connected(&mut self) {
        self.received = 0;
    }

    /// A message arrived on the current connection.
    pub fn received(&mut self) {
        self.received += 1;
    }

    /// The connection named `name` ended with `failure` after `lived`: an error when the
    /// session was taken over.
    pub fn lost(&mut self, failure: &LinkError, lived: Duration, name: &str) -> Result<(), Error> {
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
            && self.received == 0
            && lived < STABLE;
        self.quiet_closes = if quiet { self.quiet_closes + 1 } else { 0 };
        if self.session && self.quiet_closes >= TAKEOVER_AFTER {
            return taken(&format!(
                "the broker closed it {TAKEOVER_AFTER} times in a row right after it was resumed"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOON: Duration = Duration::from_millis(200);

    fn taken(r: Result<(), Error>) -> bool {
        matches!(r, Err(Error::Failed(m)) if m.contains("taken over"))
    }

    #[test]
    fn three_quiet_closes_in_a_row_of_a_session_are_a_takeover() {
        let mut t = Takeover::new(true);
        for _ in 1..TAKEOVER_AFTER {
            t.connected();
            assert!(t.lost(&LinkError::Closed, SOON, "s").is_ok());
        }
        t.connected();
        let r = t.lost(&LinkError::Disconnected(0), SOON, "s");
        assert!(taken(r), "the third quiet close");
    }

    /// A last loss of a streak, told apart by what happened on the connection.
    type Breaker = dyn Fn(&mut Takeover) -> Result<(), Error>;

    #[test]
    fn a_message_a_long_life_or_an_error_breaks_the_streak() {
        let mut t = Takeover::new(true);
        let breakers: [&Breaker; 3] = [
            &|t| {
                t.received();
                t.lost(&LinkError::Closed, SOON, "s")
            },
            &|t| t.lost(&LinkError::Closed, STABLE, "s"),
            &|t| t.lost(&LinkError::NoPingResp, SOON, "s"),
        ];
        for breaker in breakers {
            for _ in 1..TAKEOVER_AFTER {
                t.connected();
                assert!(t.lost(&LinkError::Closed, SOON, "s").is_ok());
            }
            t.connected();
            assert!(breaker(&mut t).is_ok());
        }
    }

    #[test]
    fn the_brokers_word_is_a_takeover_at_once_and_quiet_closes_without_a_session_are_not() {
        let mut t = Takeover::new(false);
        for _ in 0..2 * TAKEOVER_AFTER {
            t.connected();
            assert!(t.lost(&LinkError::Closed, SOON, "c").is_ok());
        }
        assert!(taken(t.lost(&LinkError::Disconnected(0x8E), STABLE, "c")));
    }
}
