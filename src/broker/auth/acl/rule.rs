//! One rule of an ACL file: its filter split into levels when the file is read, and
//! matched against topics in place, `%u` and `%c` compared where they stand; and two
//! filters compared (do they share a topic, does one cover the other) for subscriptions.

use super::Access;
use crate::escape::escaped;

/// What a rule gives when its filter matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    Deny,
    Read,
    Write,
    ReadWrite,
}

impl Grant {
    /// The access word of a rule line.
    pub(super) fn parse(word: &str) -> Option<Grant> {
        Some(match word {
            "read" => Grant::Read,
            "write" => Grant::Write,
            "readwrite" => Grant::ReadWrite,
            "deny" => Grant::Deny,
            _ => return None,
        })
    }

    /// Whether the rule gives `access` (never, for a `deny`).
    pub(crate) fn gives(self, access: Access) -> bool {
        matches!(
            (self, access),
            (Grant::ReadWrite, _) | (Grant::Read, Access::Read) | (Grant::Write, Access::Write)
        )
    }
}

/// One `topic` or `pattern` line.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) grant: Grant,
    /// The filter as written (`%u` and `%c` not replaced).
    pub(crate) filter: Box<str>,
    levels: Box<[Level]>,
    /// Whether it has `%u`, and so does not apply to a client without username.
    needs_user: bool,
    /// What every topic it matches starts with: the filter up to its first wildcard or
    /// name (`a/b` of `a/b/#`, `a/` of `a/+`), compared first to turn most topics away.
    lead: Box<str>,
}

/// One level of a rule's filter.
#[derive(Debug)]
enum Level {
    Plus,
    Hash,
    Text(Box<str>),
    /// A pattern's level with `%u` or `%c` in it.
    Pieces(Box<[Piece]>),
}

/// A piece of a pattern's level: text, or a name put in.
#[derive(Debug)]
enum Piece {
    Text(Box<str>),
    User,
    Client,
}

/// The client a check is for: its username and client id, for `%u` and `%c`.
#[derive(Clone, Copy)]
pub(super) struct Who<'a> {
    pub(super) user: Option<&'a str>,
    pub(super) client: &'a str,
}

impl Who<'_> {
    /// Whether patterns may apply: no wildcard in the names they would put in a filter,
    /// and no `/`, which would reach into another name's levels (client `bob/x` in
    /// `clients/%c/#` into bob's `clients/bob/...`): mosquitto 1.x refused it too.
    pub(super) fn may_use_patterns(self) -> bool {
        let wild = |s: &str| s.contains(['+', '#', '/']);
        !wild(self.client) && !self.user.is_some_and(wild)
    }
}

impl Rule {
    /// The rule of a line giving `grant` on `filter` (a valid filter; in a pattern, with
    /// `%u` and `%c` as names).
    pub(super) fn new(grant: Grant, filter: &str, pattern: bool) -> Rule {
        let mut needs_user = false;
        let levels = (filter.split('/'))
            .map(|level| match level {
                "+" => Level::Plus,
                "#" => Level::Hash,
                _ if pattern && (level.contains("%u") || level.contains("%c")) => {
                    let pieces = pieces(level);
                    needs_user |= pieces.iter().any(|p| matches!(p, Piece::User));
                    Level::Pieces(pieces.into())
                }
                _ => Level::Text(level.into()),
            })
            .collect();
        let mut lead = filter;
        for (i, c) in filter.char_indices() {
            let after = || filter.get(i + 1..).unwrap_or_default();
            let name = pattern && c == '%' && after().starts_with(['u', 'c']);
            if c == '+' || c == '#' || name {
                // `a/#` matches `a`.
                let end = if c == '#' { i.saturating_sub(1) } else { i };
                lead = filter.get(..end).unwrap_or_default();
                break;
            }
        }
        Rule {
            grant,
            filter: filter.into(),
            levels,
            needs_user,
            lead: lead.into(),
        }
    }

    /// Whether the filter, `%u` and `%c` replaced by `who`'s names, matches `topic`.
    /// Compares in place: a name is matched where it stands, never copied.
    pub(super) fn matches(&self, topic: &str, who: Who) -> bool {
        if strip(topic, &self.lead).is_none() {
            return false;
        }
        if topic.starts_with('$') && matches!(self.levels.first(), Some(Level::Plus | Level::Hash))
        {
            return false;
        }
        // What is left of the topic from the start of a level; None past its end.
        let mut rest = Some(topic);
        for level in &self.levels {
            let Some(now) = rest else {
                // `a/#` matches `a`.
                return matches!(level, Level::Hash);
            };
            let after = match level {
                Level::Hash => return true,
                Level::Plus => {
                    rest = now.split_once('/').map(|(_, r)| r);
                    continue;
                }
                // The byte after the level first: most levels that differ, differ in length.
                Level::Text(text) => match now.as_bytes().get(text.len()) {
                    Some(b'/') | None => strip(now, text),
                    Some(_) => return false,
                },
                Level::Pieces(pieces) => pieces.iter().try_fold(now, |now, piece| {
                    strip(
                        now,
                        match piece {
                            Piece::Text(text) => text,
                            Piece::User => who.user?,
                            Piece::Client => who.client,
                        },
                    )
                }),
            };
            // The level must end where the topic's does.
            rest = match after {
                Some("") => None,
                Some(after) => match after.strip_prefix('/') {
                    Some(next) => Some(next),
                    None => return false,
                },
                None => return false,
            };
        }
        rest.is_none()
    }

    /// The filter with `%u` and `%c` replaced by `who`'s names; None when it needs a
    /// username and the client has none.
    pub(super) fn replaced(&self, who: Who) -> Option<String> {
        if self.needs_user && who.user.is_none() {
            return None;
        }
        let mut out = String::with_capacity(self.filter.len());
        for (i, level) in self.levels.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            match level {
                Level::Plus => out.push('+'),
                Level::Hash => out.push('#'),
                Level::Text(text) => out.push_str(text),
                Level::Pieces(pieces) => pieces.iter().for_each(|p| match p {
                    Piece::Text(text) => out.push_str(text),
                    Piece::User => out.push_str(who.user.unwrap_or_default()),
                    Piece::Client => out.push_str(who.client),
                }),
            }
        }
        Some(out)
    }
}

/// `s` without `prefix`, if it starts with it. Compared byte by byte in place: levels are
/// short, and a call to `memcmp` (what `strip_prefix` makes) costs more than comparing.
fn strip<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.as_bytes().get(..prefix.len())?;
    let same = head.iter().zip(prefix.as_bytes()).all(|(a, b)| a == b);
    if same { s.get(prefix.len()..) } else { None }
}

/// A pattern's level cut at each `%u` and `%c`, read from the left as mosquitto does
/// (`%%u` is a `%` and the username).
fn pieces(level: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let (mut start, mut i) = (0, 0);
    let bytes = level.as_bytes();
    while let Some(&b) = bytes.get(i) {
        let piece = match (b, bytes.get(i + 1)) {
            (b'%', Some(b'u')) => Piece::User,
            (b'%', Some(b'c')) => Piece::Client,
            _ => {
                i += 1;
                continue;
            }
        };
        // `%` is ASCII: `start..i` are whole characters.
        if let Some(text) = level.get(start..i).filter(|t| !t.is_empty()) {
            pieces.push(Piece::Text(text.into()));
        }
        pieces.push(piece);
        i += 2;
        start = i;
    }
    if let Some(text) = level.get(start..).filter(|t| !t.is_empty()) {
        pieces.push(Piece::Text(text.into()));
    }
    pieces
}

/// Whether some topic matches both filters (valid MQTT filters).
pub(crate) fn intersects(a: &str, b: &str) -> bool {
    // A topic starting with `$` is matched only by a filter starting with `$`.
    let dollar_wild = |x: &str, y: &str| x.starts_with('$') && y.starts_with(['+', '#']);
    if dollar_wild(a, b) || dollar_wild(b, a) {
        return false;
    }
    let (mut a, mut b) = (topics_only(a).split('/'), topics_only(b).split('/'));
    loop {
        match (a.next(), b.next()) {
            (None, None) | (Some("#"), _) | (_, Some("#")) => return true,
            (Some(x), Some(y)) if x == "+" || y == "+" || x == y => {}
            _ => return false,
        }
    }
}

/// Whether `wide` matches every topic `narrow` matches (both valid MQTT filters).
pub(crate) fn covers(wide: &str, narrow: &str) -> bool {
    if wide.starts_with(['+', '#']) && narrow.starts_with('$') {
        return false;
    }
    let (mut w, mut n) = (wide.split('/'), topics_only(narrow).split('/'));
    loop {
        match (w.next(), n.next()) {
            (Some("#"), _) | (None, None) => return true,
            (Some("+"), Some(y)) if y != "#" => {}
            (Some(x), Some(y)) if x == y && y != "+" && y != "#" => {}
            _ => return false,
        }
    }
}

/// The filter, but for the empty topic, which `#` and `/#` match as a filter would, but
/// which is no topic (MQTT's topics have at least one character): `#` is `+/#` and `/#`
/// is `/+/#` when filters are compared.
fn topics_only(filter: &str) -> &str {
    match filter {
        "#" => "+/#",
        "/#" => "/+/#",
        _ => filter,
    }
}

/// Checks a rule's filter as mosquitto does: not empty, `+` a whole level, `#` the whole
/// last level, at most 65,535 bytes; and no NUL, which MQTT forbids.
pub(crate) fn check_filter(filter: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid topic filter '{}': {why}", escaped(filter)));
    if filter.is_empty() {
        return bad("empty");
    }
    if filter.len() > 65_535 {
        return bad("longer than 65,535 bytes");
    }
    if filter.contains('\0') {
        return bad("it contains a NUL character");
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('+') && level != "+" {
            return bad("+ must be a whole level");
        }
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return bad("# must be the whole last level");
        }
    }
    Ok(())
}
