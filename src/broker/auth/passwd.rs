//! chat-broker's password file (`--password-file`), in the format of mosquitto's
//! `mosquitto_passwd`, so that one file serves both brokers: reading it ([`Passwords`]),
//! checking a login against it ([`Passwords::check`]), and setting a user's password in
//! it ([`set_user`], for `chat-broker passwd`). No I/O: text in, answers out.
//!
//! A file is lines of `USER:HASH`. A hash is either
//!
//! - `$7$ITERATIONS$SALT$HASH`: PBKDF2 with HMAC-SHA512 over the password, `ITERATIONS`
//!   rounds (mosquitto_passwd's default, and ours, is [`DEFAULT_ITERATIONS`]), or
//! - `$6$SALT$HASH`: one SHA-512 over the password's bytes followed by the salt's (what
//!   mosquitto 1.6 and earlier wrote; read, never written),
//!
//! with `SALT` 12 bytes and `HASH` 64 bytes, each in standard base64 with its padding.
//!
//! The reading follows mosquitto's where that is sane, and is stricter where mosquitto
//! quietly drops a line: a line whose first non-blank character is `#` is a comment, a
//! blank line is skipped, and blanks (spaces, tabs, a `\r` before the `\n`) around the
//! user name and around the hash are ignored. Everything else is an error that names the
//! line and the reason, and the file is refused: a line without a `:`, an empty user
//! name, one longer than MQTT allows (65535 bytes), a user without a hash, a hash of a
//! kind other than `$6$` and `$7$` (a plain-text password, or mosquitto 2.1's argon2id),
//! an iteration count outside 1 to [`MAX_ITERATIONS`] (each login pays for them), a salt
//! or hash of the wrong length, and a user named twice (mosquitto would keep one of the
//! two, and which is not obvious). An error never quotes the hash or the salt: the file
//! is a secret of sorts, and the error goes to a log.
//!
//! A password is any bytes (MQTT's password is binary data), hashed whole; mosquitto
//! hashes it up to its first zero byte, so a password with a zero byte in it is the one
//! case where the two brokers disagree. (As with any PBKDF2-HMAC, zero bytes at the end
//! of a password of up to 128 bytes make no difference to a `$7$` hash: HMAC pads its
//! key with them.)

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// The iterations of a hash that [`hash`] writes: mosquitto_passwd's default.
pub const DEFAULT_ITERATIONS: u32 = 101;
/// The most iterations a `$7$` hash may ask for. Each login with that user pays for them
/// (ten million are about ten seconds of one core), so more than this is a mistake or an
/// attack on the broker's time.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// The longest user name: MQTT's strings are at most 65535 bytes.
pub const MAX_USER: usize = 65535;

/// The length of a salt, in bytes.
const SALT: usize = 12;
/// The length of a hash, in bytes: SHA-512's output.
const HASH: usize = 64;
/// The longest user name an error quotes, in characters; a longer one is cut short.
const QUOTED: usize = 64;
/// The salt that a check for an unknown user derives with; any will do.
const DUMMY_SALT: [u8; SALT] = *b"no such user";

/// The users of a password file and their hashes.
#[derive(Clone, Default)]
pub struct Passwords {
    users: BTreeMap<String, Entry>,
    /// How the hash of a user not in the file is derived: as most users' are, so that a
    /// refusal takes as long either way.
    usual: Kind,
}

/// One user's line of the file.
#[derive(Clone)]
struct Entry {
    /// The line (from 1) that names the user.
    line: usize,
    hash: Hash,
}

/// A stored hash, decoded.
#[derive(Clone)]
struct Hash {
    kind: Kind,
    salt: [u8; SALT],
    hash: [u8; HASH],
}

/// How a hash was derived from the password and the salt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// `$6$`: SHA-512 over the password then the salt.
    Sha512,
    /// `$7$`: PBKDF2-HMAC-SHA512 with this many iterations.
    Pbkdf2(u32),
}

/// Why a password file (or a change to one) was refused: the line (from 1) and the
/// reason. A line of 0 is about no line of the file (a bad user name given to
/// [`set_user`]). The reason never quotes a hash or a salt.
#[derive(Clone, Debug, PartialEq)]
pub struct FileError {
    pub line: usize,
    pub why: String,
}

impl fmt::Display for FileError {
    /// `line N: why`, or only `why` when it is about no line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => f.write_str(&self.why),
            n => write!(f, "line {n}: {}", self.why),
        }
    }
}

impl Default for Kind {
    fn default() -> Kind {
        Kind::Pbkdf2(DEFAULT_ITERATIONS)
    }
}

impl std::error::Error for FileError {}

impl fmt::Debug for Passwords {
    /// The user names only: never a hash.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passwords")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Passwords {
    /// Reads a password file's text, the whole of it or nothing (see the module's doc for
    /// what is refused).
    pub fn parse(text: &str) -> Result<Passwords, FileError> {
        let mut users = BTreeMap::new();
        for (i, raw) in text.split('\n').enumerate() {
            let line = i + 1;
            let Some((user, hash)) = parse_line(raw).map_err(|why| FileError { line, why })? else {
                continue;
            };
            let hash = parse_hash(hash).map_err(|why| FileError {
                line,
                why: format!("user {}: {why}", quote(user)),
            })?;
            if let Some(first) = users.get(user).map(|e: &Entry| e.line) {
                let why = format!("user {} is on line {first} already", quote(user));
                return Err(FileError { line, why });
            }
            users.insert(user.to_string(), Entry { line, hash });
        }
        let mut kinds: std::collections::HashMap<Kind, usize> = Default::default();
        for e in users.values() {
            *kinds.entry(e.hash.kind).or_default() += 1;
        }
        let usual = (kinds.into_iter()).max_by_key(|(k, n)| (*n, *k == Kind::Sha512));
        let usual = usual.map_or(Kind::Pbkdf2(DEFAULT_ITERATIONS), |(k, _)| k);
        Ok(Passwords { users, usual })
    }

    /// How many users have `$6$` hashes: salted SHA-512, fast to try offline.
    pub fn weak(&self) -> usize {
        (self.users.values())
            .filter(|e| e.hash.kind == Kind::Sha512)
            .count()
    }

    /// How many users the file has.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file has no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `user` is in the file.
    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// The users, in the order of their names.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// True when `user` is in the file and `password` is theirs. The derived hash is
    /// compared with the stored one in constant time (`subtle`). For a user not in the
    /// file it still derives a hash, as most users' are derived, so that the time a refusal
    /// takes does not tell which users exist (users whose hash is of another kind or cost
    /// than most take another time).
    pub fn check(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(entry) => {
                let h = &entry.hash;
                let derived = derive(h.kind, password, &h.salt);
                bool::from(derived.ct_eq(&h.hash))
            }
            None => {
                let derived = derive(self.usual, password, &DUMMY_SALT);
                // Compared too, as for a user in the file, and the answer is no all the same.
                let _ = std::hint::black_box(derived.ct_eq(&[0; HASH]));
                false
            }
        }
    }

    /// The iterations `user`'s hash asks for (1 for a `$6$` hash), if the user is in the
    /// file: what a check of their password costs.
    pub fn cost(&self, user: &str) -> Option<u32> {
        self.users.get(user).map(|e| match e.hash.kind {
            Kind::Sha512 => 1,
            Kind::Pbkdf2(n) => n,
        })
    }
}

/// A new `$7$101$SALT$HASH` for `password`, with a fresh 12-byte salt from the OS.
fn try_hash(password: &[u8]) -> Result<String, getrandom::Error> {
    let mut salt = [0; SALT];
    getrandom::fill(&mut salt)?;
    Ok(hash_with_salt(password, &salt))
}

/// `$7$101$SALT$HASH` for `password` and `salt`.
fn hash_with_salt(password: &[u8], salt: &[u8; SALT]) -> String {
    let derived = derive(Kind::Pbkdf2(DEFAULT_ITERATIONS), password, salt);
    format!(
        "$7${DEFAULT_ITERATIONS}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(derived)
    )
}

/// The file's text with `user`'s line set to a new hash of `password` ([`try_hash`]):
/// replaced where the user's line is (keeping its line ending), or appended as a line of
/// its own when the user is not in the file. Every other line is kept byte for byte,
/// comments and blank lines too.
///
/// Refused: a file that does not read ([`Passwords::parse`]), and a user name that the
/// file cannot hold as it is: an empty one, one longer than 65535 bytes, one with a `:`
/// or a control character (a newline, a tab...) in it, one that begins or ends with a
/// blank (the reading would drop it), or one that begins with `#` (the line would read as
/// a comment). Those errors have line 0.
pub fn set_user(text: &str, user: &str, password: &[u8]) -> Result<String, FileError> {
    check_user(user).map_err(|why| FileError { line: 0, why })?;
    let passwords = Passwords::parse(text)?;
    let hash = try_hash(password).map_err(|e| FileError {
        line: 0,
        why: format!("cannot read the OS random source: {e}"),
    })?;
    let new_line = format!("{user}:{hash}");
    let mut out = String::with_capacity(text.len() + new_line.len() + 1);
    match passwords.users.get(user) {
        Some(entry) => {
            for (i, raw) in text.split_inclusive('\n').enumerate() {
                if i + 1 != entry.line {
                    out.push_str(raw);
                    continue;
                }
                out.push_str(&new_line);
                if raw.ends_with("\r\n") {
                    out.push('\r');
                }
                if raw.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        None => {
            out.push_str(text);
            if !text.is_empty() && !text.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&new_line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// The file's text without `user`'s line (every other line kept byte for byte); None
/// when the file has no such user. Refused: a file that does not read.
pub fn remove_user(text: &str, user: &str) -> Result<Option<String>, FileError> {
    let passwords = Passwords::parse(text)?;
    let Some(entry) = passwords.users.get(user) else {
        return Ok(None);
    };
    let kept = (text.split_inclusive('\n').enumerate())
        .filter(|(i, _)| i + 1 != entry.line)
        .map(|(_, raw)| raw);
    Ok(Some(kept.collect()))
}

/// Whether `user` can be written as a line that reads back as `user`, and if not, why.
fn check_user(user: &str) -> Result<(), String> {
    let why = if user.is_empty() {
        "an empty user name"
    } else if user.len() > MAX_USER {
        "a user name longer than 65535 bytes (MQTT's limit)"
    } else if user.contains(':') {
        "a user name with a ':' in it (the file's separator)"
    } else if user.chars().any(char::is_control) {
        "a user name with a control character in it (a newline, a tab...)"
    } else if user.starts_with(is_blank) || user.ends_with(is_blank) {
        "a user name that begins or ends with a blank (the file's reading drops them)"
    } else if user.starts_with('#') {
        "a user name that begins with '#' (its line would read as a comment)"
    } else {
        return Ok(());
    };
    Err(format!("{why}: {}", quote(user)))
}

/// One line of the file (without its `\n`): `None` for a blank line or a comment, else the
/// user name and the hash's text, both trimmed of blanks.
fn parse_line(raw: &str) -> Result<Option<(&str, &str)>, String> {
    let line = raw.trim_matches(is_blank);
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let Some((user, hash)) = line.split_once(':') else {
        return Err("no ':' between a user name and a hash".into());
    };
    let (user, hash) = (user.trim_matches(is_blank), hash.trim_matches(is_blank));
    if user.is_empty() {
        return Err("no user name before the ':'".into());
    }
    if user.len() > MAX_USER {
        return Err("a user name longer than 65535 bytes (MQTT's limit)".into());
    }
    if hash.is_empty() {
        return Err(format!("user {}: no hash after the ':'", quote(user)));
    }
    Ok(Some((user, hash)))
}

/// A hash's text, decoded. The reason it gives quotes none of the text.
fn parse_hash(text: &str) -> Result<Hash, String> {
    let mut fields = text.split('$');
    let (kind, salt, hash) = match (fields.next(), fields.next()) {
        (Some(""), Some("6")) => (Kind::Sha512, fields.next(), fields.next()),
        (Some(""), Some("7")) => {
            let n = fields.next().and_then(iterations).ok_or_else(|| {
                format!("the $7$ hash's iteration count is not a number from 1 to {MAX_ITERATIONS}")
            })?;
            (Kind::Pbkdf2(n), fields.next(), fields.next())
        }
        _ => {
            return Err("the hash is not $6$ or $7$ (mosquitto_passwd's SHA-512 or \
                        PBKDF2-SHA512; a plain-text password?)"
                .into());
        }
    };
    let (Some(salt), Some(hash), None) = (salt, hash, fields.next()) else {
        return Err("the hash does not have its fields: $6$SALT$HASH or \
                    $7$ITERATIONS$SALT$HASH"
            .into());
    };
    let salt = decode::<SALT>(salt).ok_or("the salt is not 12 bytes in standard base64")?;
    let hash = decode::<HASH>(hash).ok_or("the hash is not 64 bytes in standard base64")?;
    Ok(Hash { kind, salt, hash })
}

/// A `$7$` hash's iteration count: decimal digits for 1 to [`MAX_ITERATIONS`].
fn iterations(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = text.parse::<u32>().ok()?;
    (1..=MAX_ITERATIONS).contains(&n).then_some(n)
}

/// `text` as standard base64 (with its padding) of exactly `N` bytes.
fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    // The length of N bytes' base64; a longer text is refused before it is decoded.
    if text.len() != N.div_ceil(3) * 4 {
        return None;
    }
    let bytes = STANDARD.decode(text).ok()?;
    bytes.try_into().ok()
}

/// The hash of `password` and `salt` by `kind`.
fn derive(kind: Kind, password: &[u8], salt: &[u8]) -> [u8; HASH] {
    match kind {
        Kind::Sha512 => Sha512::new()
            .chain_update(password)
            .chain_update(salt)
            .finalize()
            .into(),
        Kind::Pbkdf2(rounds) => {
            let mut out = [0; HASH];
            pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, &mut out);
            out
        }
    }
}

/// The blanks that the reading trims: C's `isspace` (space, tab, newline, vertical tab,
/// form feed, carriage return), as mosquitto's.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// A user name as an error quotes it: in quotes, escaped, and cut short when long.
fn quote(user: &str) -> String {
    match user.char_indices().nth(QUOTED) {
        Some((at, _)) => format!("{:?}...", &user[..at]),
        None => format!("{user:?}"),
    }
}

#[cfg(test)]
#[path = "passwd_tests.rs"]
mod tests;
