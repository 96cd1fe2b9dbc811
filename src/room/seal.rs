//! End-to-end encrypted rooms, format version 1: what a member of a room that shares a
//! secret publishes, and how a payload is checked and opened. No I/O besides the OS
//! random source for nonces; no cryptography of our own — RustCrypto's Argon2id and
//! XChaCha20-Poly1305.
//!
//! The format (ENCRYPTION in chat-pub(1) and chat-sub(1) says the same for other
//! implementations):
//!
//! - **Secret.** The bytes of the first line of the secret file (or of `CHAT_ROOM_SECRET`)
//!   without its line end (`\n` or `\r\n`): no other trimming, no Unicode normalisation,
//!   and a base64 key is used as its text, not decoded; 16 to 4096 bytes.
//! - **Key.** `K = Argon2id(password = secret, salt = "mqttchat room key v1" || 0x00 ||
//!   topic)`, version 0x13, memory 19456 KiB, 2 passes, 1 lane, 32 bytes. `topic` is the
//!   room's topic name as received, in UTF-8 (for a presence message, the room it
//!   announces, not the presence topic). Each room has its own key, and one
//!   precomputation does not serve every room.
//! - **Payload.** `"mqttchat:e1:" || base64(N || C)`, standard alphabet without padding
//!   (decoded canonically: non-zero trailing bits, padding or line ends are malformed),
//!   where `N` is a fresh 24-byte nonce from the OS for every message and `C =
//!   XChaCha20-Poly1305(K, N, plaintext, aad)` with its 16-byte tag. The payload is ASCII,
//!   so a subscriber without the secret (mosquitto_sub too) sees an opaque line.
//! - **Additional data.** `aad = "mqttchat:e1:" || topic`, the topic the message is
//!   published on: a ciphertext copied to another topic, or relabelled with another
//!   version, does not open.
//! - **Plaintext.** What a member would publish without the secret: the JSON envelope, or
//!   a presence payload.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

mod memory;
pub use memory::Memory;

/// What every payload of format version 1 starts with.
pub const PAYLOAD_PREFIX: &[u8] = b"mqttchat:e1:";
/// What every payload of format version 2 (signed records, `room::sign`) starts with.
pub const PAYLOAD_PREFIX_V2: &[u8] = b"mqttchat:e2:";
/// What every encrypted payload starts with, whatever its version.
const FAMILY: &[u8] = b"mqttchat:e";
/// The shortest secret accepted, in bytes.
pub const MIN_SECRET: usize = 16;
/// The longest secret accepted, in bytes.
pub const MAX_SECRET: usize = 4096;
/// Keys kept at most (a wildcard subscription meets a room per topic): the oldest is
/// dropped first, and derived again if its room speaks again.
pub const MAX_KEYS: usize = 256;
/// Argon2id memory cost in KiB, passes and lanes: fixed by the format.
pub const KDF_MEMORY_KIB: u32 = 19 * 1024;
pub const KDF_PASSES: u32 = 2;
pub const KDF_LANES: u32 = 1;
/// The salt's first part; the topic follows.
const SALT_LABEL: &[u8] = b"mqttchat room key v1\0";
const NONCE: usize = 24;
const TAG: usize = 16;

/// A room's shared secret. Zeroed when dropped, never printed.
pub struct RoomSecret(Zeroizing<Vec<u8>>);

impl RoomSecret {
    /// The secret from its bytes (the first line of a secret file, or `CHAT_ROOM_SECRET`),
    /// without a line end; an error when it is shorter than [`MIN_SECRET`].
    pub fn new(bytes: Vec<u8>) -> Result<RoomSecret, String> {
        let bytes = Zeroizing::new(bytes);
        match bytes.len() {
            n if n < MIN_SECRET => Err(format!(
                "the room secret is {n} bytes; at least {MIN_SECRET} are needed (a good \
                 one: openssl rand -base64 32)"
            )),
            n if n > MAX_SECRET => Err(format!(
                "the room secret is {n} bytes; at most {MAX_SECRET} are accepted"
            )),
            _ => Ok(RoomSecret(bytes)),
        }
    }
}

impl fmt::Debug for RoomSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomSecret(…)")
    }
}

/// The key of one room. The cipher zeroes its copy of the key when dropped.
#[derive(Clone)]
pub struct RoomKey(XChaCha20Poly1305);

impl RoomKey {
    /// Derives the key of the room `topic` (Argon2id: tens of milliseconds, ~19 MiB, given
    /// back to the system afterwards).
    pub fn derive(secret: &RoomSecret, topic: &str) -> RoomKey {
        RoomKey::derive_in(secret, topic, &mut Memory::default())
    }

    /// Derives a key in `memory`, which is wiped afterwards (Argon2's work memory holds
    /// what the key is computed from) and kept for the next derivation.
    pub fn derive_in(secret: &RoomSecret, topic: &str, memory: &mut Memory) -> RoomKey {
        let params = Params::new(KDF_MEMORY_KIB, KDF_PASSES, KDF_LANES, Some(32))
            .expect("fixed Argon2 parameters are valid");
        let kdf = Argon2::new(Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = [SALT_LABEL, topic.as_bytes()].concat();
        let mut key = Zeroizing::new([0u8; 32]);
        kdf.hash_password_into_with_memory(&secret.0, &salt, key.as_mut(), memory.blocks())
            .expect("a salt of at least 21 bytes and a 32-byte output are valid");
        memory.wipe();
        RoomKey(XChaCha20Poly1305::new(key.as_ref().into()))
    }
}

/// Why a payload was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejected {
    /// Not an encrypted payload at all (plain text, another format).
    Plain,
    /// An encrypted payload of a version this build does not know.
    UnknownVersion,
    /// The right prefix, but not base64, or too short to hold a nonce and a tag.
    Malformed,
    /// It does not authenticate: another secret, another topic, or changed on the way.
    Forged,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejected::Plain => "not encrypted",
            Rejected::UnknownVersion => "encrypted with an unknown format version",
            Rejected::Malformed => "a malformed encrypted payload",
            Rejected::Forged => "not encrypted with this room's secret (or changed on the way)",
        })
    }
}

/// The format versions this build reads: both seal with the same room key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// Version 1: the plaintext is the record itself, unsigned.
    V1,
    /// Version 2: the plaintext is a signature block and the record (`room::sign`).
    V2,
}

impl Version {
    /// What its payloads start with (the same length for both).
    pub fn prefix(self) -> &'static [u8] {
        match self {
            Version::V1 => PAYLOAD_PREFIX,
            Version::V2 => PAYLOAD_PREFIX_V2,
        }
    }
}

/// Whether `payload` is an encrypted payload (of any version).
pub fn is_sealed(payload: &[u8]) -> bool {
    payload.starts_with(FAMILY)
}

/// The additional data of a message on `topic`.
fn aad(version: Version, topic: &str) -> Vec<u8> {
    [version.prefix(), topic.as_bytes()].concat()
}

/// Encrypts `plaintext` for `topic` in format version 1 with this nonce (which must never
/// repeat).
#[cfg(test)]
fn seal_with(key: &RoomKey, topic: &str, plaintext: &[u8], nonce: [u8; NONCE]) -> Vec<u8> {
    seal_version(Version::V1, key, topic, plaintext, nonce)
}

fn seal_version(
    version: Version,
    key: &RoomKey,
    topic: &str,
    plaintext: &[u8],
    nonce: [u8; NONCE],
) -> Vec<u8> {
    let mut body = Vec::with_capacity(NONCE + plaintext.len() + TAG);
    body.extend_from_slice(&nonce);
    body.extend_from_slice(plaintext);
    let tag = key
        .0
        .encrypt_in_place_detached(
            XNonce::from_slice(&nonce),
            &aad(version, topic),
            &mut body[NONCE..],
        )
        .expect("XChaCha20-Poly1305 encrypts any message a packet can hold");
    body.extend_from_slice(&tag);
    let prefix = version.prefix();
    let mut out = Vec::with_capacity(prefix.len() + body.len().div_ceil(3) * 4);
    out.extend_from_slice(prefix);
    let start = out.len();
    out.resize(start + body.len().div_ceil(3) * 4, 0);
    let n = STANDARD_NO_PAD
        .encode_slice(&body, &mut out[start..])
        .expect("room for the base64 of the body");
    out.truncate(start + n);
    out
}

/// Encrypts `plaintext` for `topic` in format version 1 with a fresh nonce from the OS
/// (what older members wrote; tests, and readers of both versions, use it).
pub fn seal(key: &RoomKey, topic: &str, plaintext: &[u8]) -> Result<Vec<u8>, String> {
    seal_as(Version::V1, key, topic, plaintext)
}

/// Encrypts `plaintext` for `topic` in `version` with a fresh nonce from the OS. For
/// version 2, `plaintext` is a signed record (`room::sign`).
pub fn seal_as(
    version: Version,
    key: &RoomKey,
    topic: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, String> {
    let nonce = fresh_nonce().map_err(|e| format!("cannot read the OS random source: {e}"))?;
    Ok(seal_version(version, key, topic, plaintext, nonce))
}

/// The size of a payload sealed from `plaintext` bytes.
pub fn sealed_len(plaintext: usize) -> usize {
    PAYLOAD_PREFIX.len() + (4 * (NONCE + plaintext + TAG)).div_ceil(3)
}

fn fresh_nonce() -> Result<[u8; NONCE], getrandom::Error> {
    let mut nonce = [0u8; NONCE];
    getrandom::fill(&mut nonce)?;
    Ok(nonce)
}

/// Checks and decrypts a payload received on `topic`: its version and plaintext.
pub fn open(key: &RoomKey, topic: &str, payload: &[u8]) -> Result<(Version, Vec<u8>), Rejected> {
    let (version, body) = body(payload)?;
    Ok((version, decrypt(key, version, topic, body)?))
}

/// What identifies a sealed payload: its prefix and nonce as sent (every message has its
/// own nonce), for the de-duplication of what was opened.
pub fn nonce_of(payload: &[u8]) -> &[u8] {
    &payload[..payload.len().min(PAYLOAD_PREFIX.len() + NONCE * 4 / 3)]
}

/// Whether `payload` is a well-formed payload of this version (what a member sends, or a
/// forgery of one): the prefix, canonical base64, room for a nonce and a tag.
pub fn well_formed(payload: &[u8]) -> bool {
    body(payload).is_ok()
}

/// The version, nonce and ciphertext of a payload, or why it cannot be one.
fn body(payload: &[u8]) -> Result<(Version, Vec<u8>), Rejected> {
    let version = precheck(payload)?;
    let body = STANDARD_NO_PAD
        .decode(&payload[PAYLOAD_PREFIX.len()..])
        .map_err(|_| Rejected::Malformed)?;
    match body.len() < NONCE + TAG {
        true => Err(Rejected::Malformed),
        false => Ok((version, body)),
    }
}

/// Decrypts a body (nonce, ciphertext, tag) in place into its plaintext.
fn decrypt(
    key: &RoomKey,
    version: Version,
    topic: &str,
    mut body: Vec<u8>,
) -> Result<Vec<u8>, Rejected> {
    let end = body.len() - TAG;
    let (head, tag) = body.split_at_mut(end);
    let (nonce, sealed) = head.split_at_mut(NONCE);
    key.0
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            &aad(version, topic),
            sealed,
            Tag::from_slice(tag),
        )
        .map_err(|_| Rejected::Forged)?;
    body.truncate(end);
    body.drain(..NONCE);
    Ok(body)
}

/// The keys of the rooms met so far in this run: each derived once, at most
/// [`MAX_KEYS`] kept besides the pinned ones (a wildcard subscription derives one per
/// topic as its messages arrive). The one dropped is the least recently used of those
/// that never opened anything, else the least recently used: a stranger cannot make a
/// key open anything, so a flood of new topics cannot push out the rooms heard from.
pub struct Keyring {
    /// Shared with chat-sub's thread of derivations.
    secret: Arc<RoomSecret>,
    keys: HashMap<String, Entry>,
    /// Counts uses, for "least recently used".
    tick: u64,
    /// Keys that may be dropped.
    unpinned: usize,
    /// How many of those are kept: [`MAX_KEYS`].
    cap: usize,
}

struct Entry {
    /// Boxed, so that a growing map moves pointers, not keys it would not wipe.
    key: Box<RoomKey>,
    used: u64,
    pinned: bool,
    proven: bool,
}

impl Keyring {
    pub fn new(secret: impl Into<Arc<RoomSecret>>) -> Keyring {
        Keyring {
            secret: secret.into(),
            keys: HashMap::new(),
            tick: 0,
            unpinned: 0,
            cap: MAX_KEYS,
        }
    }

    /// Whether the key of `room` is at hand (no derivation needed).
    pub fn has(&self, room: &str) -> bool {
        self.keys.contains_key(room)
    }

    /// Keeps the key of `room`, derived elsewhere (chat-sub's thread of derivations), as
    /// if derived here; a key at hand already stays.
    pub fn insert(&mut self, room: &str, key: RoomKey) {
        if !self.has(room) {
            self.make_room();
            self.add(room, Box::new(key));
        }
    }

    /// Derives the key of `room` now, and keeps it for the whole run (the rooms a
    /// subscriber names exactly: no flood of other topics can push them out).
    pub fn pin(&mut self, room: &str) {
        self.key(room);
        if let Some(e) = self.keys.get_mut(room)
            && !std::mem::replace(&mut e.pinned, true)
        {
            self.unpinned -= 1;
        }
    }

    /// The key of the room `topic`, derived on first use.
    pub fn key(&mut self, topic: &str) -> &RoomKey {
        self.entry(topic).key.as_ref()
    }

    fn entry(&mut self, topic: &str) -> &mut Entry {
        if !self.keys.contains_key(topic) {
            self.make_room();
            // Argon2's 19 MiB of work memory are wiped and given back after each key:
            // a run keeps a few keys, and should not keep the memory.
            self.add(topic, Box::new(RoomKey::derive(&self.secret, topic)));
        }
        self.tick += 1;
        let e = self.keys.get_mut(topic).expect("inserted above");
        e.used = self.tick;
        e
    }

    /// Drops a key if one more would be too many.
    fn make_room(&mut self) {
        if self.unpinned >= self.cap {
            self.drop_one();
        }
    }

    fn add(&mut self, topic: &str, key: Box<RoomKey>) {
        self.tick += 1;
        let entry = Entry {
            key,
            used: self.tick,
            pinned: false,
            proven: false,
        };
        self.keys.insert(topic.to_owned(), entry);
        self.unpinned += 1;
    }

    /// Drops the least recently used key that never opened anything, else the least
    /// recently used (pinned keys stay).
    fn drop_one(&mut self) {
        let victim = self
            .keys
            .iter()
            .filter(|(_, e)| !e.pinned)
            .min_by_key(|(_, e)| (e.proven, e.used))
            .map(|(t, _)| t.clone());
        if let Some(t) = victim {
            self.keys.remove(&t);
            self.unpinned -= 1;
        }
    }

    /// Opens a payload received on `topic` sealed with the key of `room` (the topic
    /// itself, or the room a presence topic announces). A key is derived only for a
    /// well-formed payload of a known version: junk on new topics costs no derivation.
    pub fn open(
        &mut self,
        room: &str,
        topic: &str,
        payload: &[u8],
    ) -> Result<(Version, Vec<u8>), Rejected> {
        let (version, body) = body(payload)?;
        let entry = self.entry(room);
        let plain = decrypt(&entry.key, version, topic, body)?;
        entry.proven = true;
        Ok((version, plain))
    }
}

/// What can be told of a payload without a key: its version.
fn precheck(payload: &[u8]) -> Result<Version, Rejected> {
    let version = [Version::V1, Version::V2]
        .into_iter()
        .find(|v| payload.starts_with(v.prefix()));
    let Some(version) = version else {
        return Err(match is_sealed(payload) {
            true => Rejected::UnknownVersion,
            false => Rejected::Plain,
        });
    };
    // base64 of a nonce and a tag, without padding: 54 characters at least.
    match payload.len() - PAYLOAD_PREFIX.len() > (NONCE + TAG) * 4 / 3 {
        true => Ok(version),
        false => Err(Rejected::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens and gives the plaintext, whatever the version.
    fn open(key: &RoomKey, topic: &str, payload: &[u8]) -> Result<Vec<u8>, Rejected> {
        super::open(key, topic, payload).map(|(_, plain)| plain)
    }

    fn key(topic: &str) -> RoomKey {
        let secret = RoomSecret::new(b"correct horse battery staple".to_vec()).expect("secret");
        RoomKey::derive(&secret, topic)
    }

    #[test]
    fn a_sealed_message_opens_with_the_key_of_its_room_only() {
        let k = key("team/x");
        let sealed = seal(&k, "team/x", b"{\"text\":\"hi\"}").expect("seal");
        assert!(sealed.starts_with(PAYLOAD_PREFIX) && sealed.is_ascii());
        assert_eq!(
            open(&k, "team/x", &sealed).as_deref(),
            Ok(&b"{\"text\":\"hi\"}"[..])
        );
        assert_eq!(
            open(&key("team/y"), "team/x", &sealed),
            Err(Rejected::Forged)
        );
        assert_eq!(
            open(&k, "team/y", &sealed),
            Err(Rejected::Forged),
            "copied to another topic"
        );
        let other = RoomSecret::new(b"another secret, long enough".to_vec()).expect("secret");
        let wrong = RoomKey::derive(&other, "team/x");
        assert_eq!(open(&wrong, "team/x", &sealed), Err(Rejected::Forged));
    }

    #[test]
    fn plain_unknown_malformed_and_truncated_payloads_are_told_apart() {
        let k = key("t");
        let sealed = seal_with(&k, "t", b"hello", [7; NONCE]);
        assert_eq!(open(&k, "t", b"hello"), Err(Rejected::Plain));
        assert_eq!(
            open(&k, "t", b"mqttchat:e3:AAAA"),
            Err(Rejected::UnknownVersion)
        );
        assert_eq!(open(&k, "t", b"mqttchat:e1:%%%"), Err(Rejected::Malformed));
        assert_eq!(open(&k, "t", b"mqttchat:e1:AAAA"), Err(Rejected::Malformed));
        let cut = &sealed[..sealed.len() - 4];
        assert!(matches!(
            open(&k, "t", cut),
            Err(Rejected::Forged | Rejected::Malformed)
        ));
    }

    #[test]
    fn version_2_opens_as_version_2_and_a_relabelled_one_does_not_open() {
        let k = key("t");
        let v2 = seal_as(Version::V2, &k, "t", b"signed record").expect("seal");
        assert!(v2.starts_with(b"mqttchat:e2:"));
        assert_eq!(v2.len(), sealed_len(b"signed record".len()));
        assert_eq!(
            super::open(&k, "t", &v2),
            Ok((Version::V2, b"signed record".to_vec()))
        );
        let relabelled = [PAYLOAD_PREFIX, &v2[PAYLOAD_PREFIX.len()..]].concat();
        assert_eq!(open(&k, "t", &relabelled), Err(Rejected::Forged));
        assert!(well_formed(&v2) && well_formed(&relabelled));
        for n in 0..5 {
            assert_eq!(
                seal_with(&k, "t", &vec![1; n], [0; NONCE]).len(),
                sealed_len(n)
            );
        }
    }

    #[test]
    fn every_message_gets_a_fresh_nonce() {
        let k = key("t");
        let a = seal(&k, "t", b"same").expect("seal");
        let b = seal(&k, "t", b"same").expect("seal");
        assert_ne!(a, b);
    }

    #[test]
    fn short_secrets_are_refused_and_secrets_are_never_printed() {
        assert!(RoomSecret::new(vec![b'x'; MIN_SECRET - 1]).is_err());
        let s = RoomSecret::new(b"a very secret passphrase".to_vec()).expect("secret");
        assert!(!format!("{s:?}").contains("secret passphrase"));
    }

    #[test]
    fn the_keyring_derives_each_room_once() {
        let secret = RoomSecret::new(vec![b'k'; 32]).expect("secret");
        let mut ring = Keyring::new(secret);
        let sealed = seal(ring.key("a"), "a", b"x").expect("seal");
        assert_eq!(ring.keys.len(), 1);
        assert!(open(ring.key("a"), "a", &sealed).is_ok());
        assert_eq!(ring.keys.len(), 1);
        assert_eq!(open(ring.key("b"), "a", &sealed), Err(Rejected::Forged));
        assert_eq!(ring.keys.len(), 2);
    }

    /// Known answers computed independently (Python: argon2-cffi's `hash_secret_raw` and
    /// libsodium's XChaCha20-Poly1305 through PyNaCl), so that this implementation is
    /// checked against the format as written, not against itself: a short room, a
    /// multi-level non-ASCII room, and a presence message (room key, presence topic as
    /// additional data).
    #[test]
    fn known_answers() {
        let secret = RoomSecret::new(b"0123456789abcdef".to_vec()).expect("secret");
        let k = RoomKey::derive(&secret, "room");
        assert_eq!(seal_with(&k, "room", b"hi", [0; NONCE]), KNOWN.as_bytes());
        let secret = RoomSecret::new(b"correct horse battery staple".to_vec()).expect("secret");
        let nonce = |first: u8| std::array::from_fn(|i| first + i as u8);
        let room = "équipe/général/ü";
        let env = r#"{"id":"x","from":"zoë","ts":"2026-11-29T12:00:00.000Z","text":"héllo"}"#;
        let sealed = seal_with(
            &RoomKey::derive(&secret, room),
            room,
            env.as_bytes(),
            nonce(0),
        );
        assert_eq!(sealed, KNOWN_UNICODE.as_bytes());
        let presence = "mqttchat-presence/team/x/c%2E1";
        let join = br#"{"event":"join","from":"bob","ts":"2026-11-29T12:00:00.000Z"}"#;
        let sealed = seal_with(
            &RoomKey::derive(&secret, "team/x"),
            presence,
            join,
            nonce(100),
        );
        assert_eq!(sealed, KNOWN_PRESENCE.as_bytes());
    }

    const KNOWN: &str = "mqttchat:e1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAv8bBkkXbXyS6+heMIRiJslpj";
    const KNOWN_UNICODE: &str = "mqttchat:e1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYX/45AYXM3etzyx1REsKbs1HR+BXjTwDkn5rM/he/OQhsnLyRdOLq5WcU2KOyOd0pIh2sMgSfFetEA8tXBOUIlBMGCsVYJWmYv1bXiFLuvVBzxNJHsu0JIAg";
    const KNOWN_PRESENCE: &str = "mqttchat:e1:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7AxCNAIQWnW+gz2yOyRsMiL+BqMCeJQr5MIqo+MNeyOPGJEcNocWeXXvIoooGkbJ6mXUJdmOvnbNQeJpBCmEsFrcq/+NTadJwOllgd0g";

    #[test]
    fn junk_costs_no_key_derivation_and_long_secrets_are_refused() {
        let mut ring = Keyring::new(RoomSecret::new(vec![b'k'; 32]).expect("secret"));
        for junk in [&b"hello"[..], b"mqttchat:e3:AAAA", b"mqttchat:e1:AAAA"] {
            assert!(ring.open("r", "r", junk).is_err());
        }
        assert_eq!(ring.keys.len(), 0);
        assert!(RoomSecret::new(vec![b'x'; MAX_SECRET + 1]).is_err());
        assert!(RoomSecret::new(vec![b'x'; MAX_SECRET]).is_ok());
    }

    #[test]
    fn the_keyring_keeps_pinned_and_recently_used_keys() {
        let mut ring = Keyring::new(RoomSecret::new(vec![b'k'; 32]).expect("secret"));
        ring.cap = 4;
        ring.pin("mine");
        // Junk with the right prefix and enough length, but not base64: no derivation.
        let junk = [PAYLOAD_PREFIX, &[b'!'; 60][..]].concat();
        assert_eq!(ring.open("new", "new", &junk), Err(Rejected::Malformed));
        assert!(!ring.has("new") && !well_formed(&junk));
        for i in 0..4 {
            ring.key(&format!("t{i}"));
            ring.key("t0"); // used again and again: never the oldest
        }
        ring.key("one more");
        assert!(ring.has("mine") && ring.has("t0") && !ring.has("t1"));
        assert_eq!(ring.keys.len(), 4 + 1);
    }

    #[test]
    fn reused_and_released_memory_derives_the_same_keys() {
        let secret = RoomSecret::new(b"0123456789abcdef".to_vec()).expect("secret");
        let mut memory = Memory::default();
        let first = RoomKey::derive_in(&secret, "room", &mut memory);
        let again = RoomKey::derive_in(&secret, "room", &mut memory);
        assert_eq!(memory.blocks().len(), KDF_MEMORY_KIB as usize);
        memory.release();
        let after = RoomKey::derive_in(&secret, "room", &mut memory);
        for k in [first, again, after] {
            assert_eq!(seal_with(&k, "room", b"hi", [0; NONCE]), KNOWN.as_bytes());
        }
    }

    #[test]
    fn a_key_derived_elsewhere_is_kept_like_one_derived_here() {
        let secret = RoomSecret::new(vec![b'k'; 32]).expect("secret");
        let key = RoomKey::derive(&secret, "there");
        let sealed = seal(&key, "there", b"x").expect("seal");
        let mut ring = Keyring::new(secret);
        ring.cap = 1;
        ring.insert("there", key);
        assert_eq!(
            ring.open("there", "there", &sealed)
                .map(|(_, p)| p)
                .as_deref(),
            Ok(&b"x"[..])
        );
        ring.insert("other", RoomKey::derive(&ring.secret, "other"));
        assert!(ring.has("other") && !ring.has("there"), "the cap holds");
        assert_eq!(ring.keys.len(), 1);
    }

    #[test]
    fn a_key_that_opened_something_outlives_a_flood_of_new_rooms() {
        let mut ring = Keyring::new(RoomSecret::new(vec![b'k'; 32]).expect("secret"));
        ring.cap = 3;
        let sealed = seal(ring.key("real"), "real", b"x").expect("seal");
        assert!(ring.open("real", "real", &sealed).is_ok());
        for i in 0..6 {
            ring.key(&format!("junk{i}"));
        }
        assert!(ring.has("real") && ring.has("junk5") && !ring.has("junk2"));
    }
}
