//! chat-broker's access control list (`--acl-file`), in mosquitto's `acl_file` format:
//! which topics a client may publish to and receive. Pure: [`Acl::parse`] reads the text,
//! [`Acl::allows`] and [`Acl::may_subscribe`] answer; the driver reads the file and asks.
//!
//! The format is mosquitto 2.0's (man mosquitto.conf, `acl_file`), checked against
//! mosquitto 2.0.11:
//!
//! ```text
//! # Before any `user` line: anonymous clients (no username).
//! topic read news/#
//! user alice
//! topic readwrite rooms/+/alice
//! topic deny rooms/secret/#
//! pattern readwrite users/%u/#
//! ```
//!
//! A line whose first character is `#` is a comment (here also after leading blanks,
//! which mosquitto refuses); blank lines are skipped and trailing blanks ignored. Words
//! are separated by spaces, not tabs. `topic [ACCESS] FILTER` adds a rule to the current
//! section: before any `user` line that of anonymous clients, after `user NAME` (the rest
//! of the line, blanks trimmed) that of the user NAME; a name given again adds to its
//! section. ACCESS is `read`, `write`, `readwrite` or `deny`; FILTER is the rest of the
//! line, blanks trimmed, and may hold spaces. Without ACCESS (one word after `topic`),
//! the access is readwrite: `topic read` is the filter `read`. `pattern [ACCESS] FILTER`
//! is a rule for every client, wherever it stands, with `%u` replaced by the client's
//! username and `%c` by its client id; a pattern with `%u` does not apply to a client
//! without one. Any other keyword or access, a `topic` without a filter, a `user` without
//! a name or an invalid MQTT filter is an error, with its line number.
//!
//! A check (access, username or none, client id, topic) is mosquitto 2.0's, in order:
//! 1. the client's own section (its user's, or the anonymous one): a `deny` rule that
//!    matches the topic refuses; else a rule that matches and grants the access allows;
//! 2. then the patterns the same way, but a client whose username or client id holds a
//!    `+`, `#` or `/` gets nothing from them (the name would widen the pattern, or reach
//!    into another name's levels: mosquitto 2.0 allows `/`, 1.x refused it, and so do we);
//! 3. anything else is refused.
//!
//! So a `deny` in a user's section always wins, while a user's own grant wins over a
//! `pattern deny`. Matching is MQTT's: `+` one level, `#` any levels from there (its
//! parent too), and a topic starting with `$` only by a filter starting with `$`.
//!
//! Subscriptions are our addition: mosquitto 2.0 accepts every SUBSCRIBE and filters at
//! delivery, while chat-broker refuses one that can never deliver anything
//! ([`Acl::may_subscribe`]) and checks each delivery with [`Acl::allows`].
//!
//! Speed: [`Acl::allows`] runs once per message per subscriber. Sections are found in
//! one hash lookup; rules are split into levels when the file is read, each with the
//! text every topic it matches starts with, compared first; patterns are matched by
//! comparing their pieces in place. A check allocates nothing: about 100 ns in a file of
//! 10,000 rules for 1,000 users (`acl_speed` in the tests).

use std::collections::HashMap;
use std::fmt;

use crate::escape::escaped;

mod rule;

use rule::Who;
pub(crate) use rule::{Grant, Rule, check_filter, covers, intersects};

/// What a client wants to do with a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Receive messages published to it.
    Read,
    /// Publish to it.
    Write,
}

/// The rules of anonymous clients, of one user, or the patterns: denials apart, as they
/// are looked at first.
#[derive(Debug, Default)]
struct Section {
    deny: Vec<Rule>,
    grant: Vec<Rule>,
}

impl Section {
    fn add(&mut self, rule: Rule) {
        match rule.grant {
            Grant::Deny => self.deny.push(rule),
            _ => self.grant.push(rule),
        }
    }

    /// False when a denial matches, true when a rule that gives `access` matches, None
    /// when neither does.
    fn decide(&self, access: Access, topic: &str, who: Who) -> Option<bool> {
        if self.deny.iter().any(|r| r.matches(topic, who)) {
            return Some(false);
        }
        let grants = |r: &Rule| r.grant.gives(access) && r.matches(topic, who);
        self.grant.iter().any(grants).then_some(true)
    }

    fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.deny.iter().chain(&self.grant)
    }
}

/// An access control list, read from an `acl_file`.
#[derive(Debug, Default)]
pub struct Acl {
    anonymous: Section,
    users: HashMap<Box<str>, Section>,
    patterns: Section,
    rules: usize,
}

/// Why a file could not be read: the line (from 1) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    pub line: usize,
    pub why: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.why)
    }
}

impl std::error::Error for FileError {}

impl Acl {
    /// Reads an `acl_file`; the first wrong line is an error. Linear in the text.
    pub fn parse(text: &str) -> Result<Acl, FileError> {
        let mut acl = Acl::default();
        // The section `topic` lines go to: None for anonymous clients.
        let mut user: Option<&str> = None;
        for (i, line) in text.split('\n').enumerate() {
            let fail = |why: String| FileError { line: i + 1, why };
            let line = line.trim_end_matches(is_space);
            let body = line.trim_start_matches(is_space);
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            let (word, rest) = split_word(line);
            match word {
                "topic" | "pattern" => {
                    let rest = rest.trim_start_matches(' ');
                    if rest.is_empty() {
                        return Err(fail(format!("'{word}' without a topic filter")));
                    }
                    // One word is the filter; more are the access and the filter.
                    let (grant, filter) = match split_word(rest) {
                        (access, filter) if !filter.trim_matches(is_space).is_empty() => {
                            let grant = Grant::parse(access).ok_or_else(|| {
                                fail(format!(
                                    "unknown access '{}': give read, write, readwrite or deny",
                                    escaped(access)
                                ))
                            })?;
                            (grant, filter.trim_matches(is_space))
                        }
                        _ => (Grant::ReadWrite, rest),
                    };
                    check_filter(filter).map_err(fail)?;
                    let pattern = word == "pattern";
                    let rule = Rule::new(grant, filter, pattern);
                    acl.rules += 1;
                    match (pattern, user) {
                        (true, _) => acl.patterns.add(rule),
                        (false, None) => acl.anonymous.add(rule),
                        (false, Some(name)) => match acl.users.get_mut(name) {
                            Some(section) => section.add(rule),
                            None => {
                                let mut section = Section::default();
                                section.add(rule);
                                acl.users.insert(name.into(), section);
                            }
                        },
                    }
                }
                "user" => {
                    let name = rest.trim_matches(is_space);
                    if name.is_empty() {
                        return Err(fail("'user' without a name".into()));
                    }
                    user = Some(name);
                }
                _ => {
                    return Err(fail(format!(
                        "unknown keyword '{}': give topic, pattern or user",
                        escaped(word)
                    )));
                }
            }
        }
        Ok(acl)
    }

    /// How many `topic` and `pattern` rules the file gave.
    pub fn rules(&self) -> usize {
        self.rules
    }

    /// Whether a client (username or None, client id) may read or write `topic`: its
    /// section first, then the patterns (see the module's doc). Allocates nothing.
    pub fn allows(&self, access: Access, user: Option<&str>, client: &str, topic: &str) -> bool {
        let who = Who { user, client };
        if let Some(section) = self.section(user)
            && let Some(answer) = section.decide(access, topic, who)
        {
            return answer;
        }
        who.may_use_patterns() && self.patterns.decide(access, topic, who) == Some(true)
    }

    /// Whether a client may subscribe to `filter` (a valid MQTT filter; of a shared
    /// subscription `$share/GROUP/FILTER`, FILTER is judged): false when no topic the
    /// filter matches could be read. That is when a denial covers it (matches every
    /// topic it matches), or when no rule giving read shares a topic with it, looking at
    /// the client's section and then at the patterns as [`Acl::allows`] does. True
    /// otherwise, which is no promise: each delivery is checked with [`Acl::allows`].
    /// Never false when some topic the filter matches may be read.
    pub fn may_subscribe(&self, user: Option<&str>, client: &str, filter: &str) -> bool {
        let filter = match filter
            .strip_prefix("$share/")
            .and_then(|r| r.split_once('/'))
        {
            Some((_, inner)) => inner,
            None => filter,
        };
        let reads = |r: &&Rule| r.grant.gives(Access::Read);
        if let Some(section) = self.section(user) {
            if section.deny.iter().any(|r| covers(&r.filter, filter)) {
                return false;
            }
            if section
                .grant
                .iter()
                .filter(reads)
                .any(|r| intersects(&r.filter, filter))
            {
                return true;
            }
        }
        let who = Who { user, client };
        if !who.may_use_patterns() {
            return false;
        }
        let mut deny = self.patterns.deny.iter().filter_map(|r| r.replaced(who));
        if deny.any(|d| covers(&d, filter)) {
            return false;
        }
        let mut grant = self.patterns.grant.iter().filter(reads);
        grant.any(|r| r.replaced(who).is_some_and(|g| intersects(&g, filter)))
    }

    /// The section of a client's own rules: its user's, or the anonymous one.
    fn section(&self, user: Option<&str>) -> Option<&Section> {
        match user {
            None => Some(&self.anonymous),
            Some(name) => self.users.get(name),
        }
    }

    /// The `topic` rules of a client's section (denials first), for checks that redo
    /// [`Acl::allows`] another way (the fuzz target's).
    pub(crate) fn own_rules(&self, user: Option<&str>) -> impl Iterator<Item = &Rule> {
        self.section(user).into_iter().flat_map(Section::rules)
    }

    /// The `pattern` rules (denials first), as written.
    pub(crate) fn pattern_rules(&self) -> impl Iterator<Item = &Rule> {
        self.patterns.rules()
    }
}

/// The blanks C's `isspace` knows, which mosquitto trims.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// The first word of `s` (leading spaces skipped) and what follows the space after it.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches(' ');
    s.split_once(' ').unwrap_or((s, ""))
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
