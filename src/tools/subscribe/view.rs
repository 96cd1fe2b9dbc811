//! chat-sub's view of presence, without I/O: who is online (the [`Roster`]), which joins
//! and leaves to show, and for `--who` when the roster is complete.

use std::collections::HashSet;
use std::time::Instant;

use crate::room::presence::{Change, Online, Roster};
use crate::room::seal;
use crate::room::sign::Mark;

/// Encrypted joins remembered at most (without the secret).
const SEALED_MAX: usize = 4096;

/// What chat-sub does with presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Show joins and leaves (the default).
    Shown,
    /// `--no-presence`: do not even subscribe to presence.
    Hidden,
    /// `--who`: collect who is online, print it, exit.
    Who,
}

/// Presence as chat-sub follows it.
#[derive(Debug)]
pub struct View {
    mode: Mode,
    roster: Roster,
    /// Nicks not shown (`--ignore`, `--hide-own`).
    hidden: HashSet<String>,
    /// `--who`: when to print the roster, unless more presence arrives first.
    who_until: Option<Instant>,
    /// Presence topics with an encrypted join this reader cannot open (no secret): their
    /// leave is not news either.
    sealed: HashSet<Vec<u8>>,
}

impl View {
    pub fn new(mode: Mode, hidden: HashSet<String>) -> View {
        View {
            mode,
            roster: Roster::default(),
            hidden,
            who_until: None,
            sealed: HashSet::new(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The broker granted the presence subscription, or a presence message arrived:
    /// `--who` waits for quiet from `now` on.
    pub fn heard(&mut self, now: Instant) {
        if self.mode == Mode::Who {
            self.who_until = Some(now + crate::defaults::WHO_QUIET);
        }
    }

    /// When `--who` has heard enough.
    pub fn who_deadline(&self) -> Option<Instant> {
        self.who_until
    }

    /// A presence message at `now`: updates the roster; returns the join or leave to show.
    pub fn message(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        now: Instant,
        mark: Option<Mark>,
    ) -> Option<Change> {
        if self.mode == Mode::Hidden {
            return None;
        }
        self.heard(now);
        if seal::is_sealed(payload) {
            // Bounded: a stranger can invent presence topics without end.
            if self.sealed.len() >= SEALED_MAX {
                self.sealed.clear();
            }
            self.sealed.insert(topic.to_vec());
            return None;
        }
        if payload.is_empty() && self.sealed.remove(topic) {
            return None;
        }
        let topic = String::from_utf8_lossy(topic);
        let change = self.roster.update(&topic, payload, retain, mark)?;
        let shown = self.mode == Mode::Shown && !self.hidden.contains(&change.nick);
        shown.then_some(change)
    }

    /// The nick of the join on a presence topic, if one is online there.
    pub fn joined_nick(&self, topic: &str) -> Option<String> {
        self.roster.nick_at(topic).map(str::to_owned)
    }

    /// Everyone online who is not hidden.
    pub fn online(&self) -> Vec<Online<'_>> {
        let mut all = self.roster.online();
        all.retain(|(_, nick, _, _)| !self.hidden.contains(*nick));
        all
    }
}
