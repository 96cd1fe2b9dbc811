//! Who said it: the signatures of format version 2 of encrypted rooms. No I/O besides the
//! OS random source for a new identity; no cryptography of our own — the dalek project's
//! Ed25519 (strict verification) and RustCrypto's SHA-256.
//!
//! Each member has an Ed25519 key pair, its *identity*. Every record a member seals in
//! version 2 (a message's envelope or raw bytes, a presence record) carries the member's
//! public key and a signature, inside the encryption. Records that a member seals at once
//! (lines of a pipe that arrive together) are signed together, with one signature over the
//! root of a Merkle tree of their hashes, as batch signing in TLS and certificate
//! transparency do: each record still carries everything needed to check it alone (its
//! path to the root), and a reader checks one signature per batch. One Ed25519 signature
//! costs ~20 µs to make and ~45 µs to check here, more than the rest of a message's way
//! through both tools.
//!
//! The format (ENCRYPTION in chat-pub(1) and chat-sub(1) says the same for other
//! implementations), the plaintext of a version 2 payload:
//!
//! ```text
//! depth (1 byte, 0..=8) || path (1 byte) || public key (32) || signature (64)
//!   || depth sibling hashes (32 each, leaf level first) || record
//! ```
//!
//! - `leaf = SHA-256(0x00 || "mqttchat:e2:" || u32(len room) || room || u32(len topic)
//!   || topic || record)`, where `u32` is 4 bytes big-endian, `room` the room's topic (for
//!   a presence record, the room it announces) and `topic` the topic the payload is
//!   published on (the room, or the presence topic). The record holds the nick, time, id
//!   and text, so all of them are signed, with the format version and the topics.
//! - Going up: bit `i` of `path` (least significant first) set means sibling `i` is on the
//!   left: `h = SHA-256(0x01 || sibling || h)`, else `h = SHA-256(0x01 || h || sibling)`.
//!   With depth 0 the root is the leaf. Bits above the depth are zero.
//! - `signature = Ed25519(identity, "mqttchat:e2:root\0" || root)`, checked strictly
//!   (RFC 8032 with canonical encodings; small-order keys refused).
//!
//! A member's fingerprint is the lowercase hex of SHA-256 of its 32-byte public key: what
//! `chat-pub --fingerprint` prints and members compare out of band.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

mod sealer;

pub use sealer::{Sealer, seal_one, sealed_len};

/// Records signed together at most: a tree of depth 5.
pub const BATCH: usize = 32;
/// The deepest path a reader accepts (a batch of 256).
pub const MAX_DEPTH: usize = 8;
/// What the signature is over: this, then the root.
const ROOT_LABEL: &[u8] = b"mqttchat:e2:root\0";
/// What a leaf hash starts with after its 0x00.
const LEAF_LABEL: &[u8] = b"mqttchat:e2:";
const KEY: usize = 32;
const SIG: usize = 64;
/// Depth, path, key, signature.
pub const HEAD: usize = 2 + KEY + SIG;
/// The largest signature block chat-pub writes (a full batch): what `--max-size` counts.
pub const MAX_BLOCK: usize = HEAD + 5 * 32;
/// Roots checked already, remembered (a batch's other records need no signature check).
const CHECKED: usize = 64;

/// A public key's fingerprint: SHA-256 of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(public: &[u8; KEY]) -> Fingerprint {
        Fingerprint(Sha256::digest(public).into())
    }

    /// Its first 16 hex digits and `…`, as text output shows it.
    pub fn short(&self) -> String {
        format!("{}…", &self.to_string()[..16])
    }

    /// Parses 64 hex digits (either case; `:` and spaces between them are ignored).
    pub fn parse(text: &str) -> Result<Fingerprint, String> {
        let digits: Vec<u8> = text.bytes().filter(|b| !matches!(b, b':' | b' ')).collect();
        let bad = || {
            format!(
                "'{}' is not a fingerprint: 64 hex digits, as chat-pub --fingerprint prints",
                crate::escape::escaped(text)
            )
        };
        if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).map_err(|_| bad())?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| bad())?;
        }
        Ok(Fingerprint(out))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// What a record of an encrypted room is, as to who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Signed with the key pinned for its nick in its room.
    Verified(Fingerprint),
    /// Signed with a key its nick had no pin for: pinned now.
    NewKey(Fingerprint),
    /// Signed with a key other than the one pinned for its nick.
    Changed(Fingerprint),
    /// Signed, without a nick to pin the key to.
    Nameless(Fingerprint),
    /// Format version 1: no signature.
    Unsigned,
    /// Format version 1 under a nick that has a pinned key: a member who signs does not
    /// send unsigned records, so this is loud like a changed key.
    Downgraded,
}

impl Mark {
    pub fn verified(self) -> bool {
        matches!(self, Mark::Verified(_))
    }

    pub fn fingerprint(self) -> Option<Fingerprint> {
        match self {
            Mark::Verified(f) | Mark::NewKey(f) | Mark::Changed(f) | Mark::Nameless(f) => Some(f),
            Mark::Unsigned | Mark::Downgraded => None,
        }
    }
}

/// A member's identity: its Ed25519 signing key (zeroed when dropped).
pub struct Identity {
    key: SigningKey,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.fingerprint())
    }
}

/// The DER of an Ed25519 private key in PKCS#8 (RFC 8410) up to the 32-byte seed: what
/// `openssl genpkey -algorithm ed25519` writes.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

impl Identity {
    /// A new identity from the OS random source.
    pub fn generate() -> Result<Identity, String> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut())
            .map_err(|e| format!("cannot read the OS random source: {e}"))?;
        Ok(Identity::from_seed(&seed))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Identity {
        Identity {
            key: SigningKey::from_bytes(seed),
        }
    }

    pub fn public(&self) -> [u8; KEY] {
        self.key.verifying_key().to_bytes()
    }

    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.public())
    }

    /// The identity as a PEM file: PKCS#8, as OpenSSL writes Ed25519 keys.
    pub fn to_pem(&self) -> Zeroizing<String> {
        use base64::Engine;
        let mut der = Zeroizing::new(PKCS8_PREFIX.to_vec());
        der.extend_from_slice(self.key.as_bytes());
        let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*der));
        Zeroizing::new(format!("{PEM_BEGIN}\n{}\n{PEM_END}\n", *b64))
    }

    /// Reads a PEM file as [`Identity::to_pem`] (or OpenSSL) writes it.
    pub fn from_pem(text: &str) -> Result<Identity, String> {
        use base64::Engine;
        let bad = "not an Ed25519 private key in PEM (PKCS#8, as `openssl genpkey -algorithm \
                   ed25519` writes)";
        let body = text
            .trim()
            .strip_prefix(PEM_BEGIN)
            .and_then(|t| t.strip_suffix(PEM_END))
            .ok_or(bad)?;
        let b64: Zeroizing<String> = Zeroizing::new(body.split_whitespace().collect());
        let der = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|_| bad)?,
        );
        let seed = der.strip_prefix(&PKCS8_PREFIX[..]).ok_or(bad)?;
        let seed: &[u8; 32] = seed.try_into().map_err(|_| bad)?;
        Ok(Identity::from_seed(seed))
    }

    /// Signs records sealed together: the plaintext of each (signature block, then the
    /// record), in order. At most [`BATCH`] at once.
    pub fn sign(&self, items: &[Item<'_>]) -> Vec<Vec<u8>> {
        assert!(
            !items.is_empty() && items.len() <= BATCH,
            "a batch of 1 to {BATCH}"
        );
        let leaves: Vec<[u8; 32]> = items.iter().map(Item::leaf).collect();
        let (root, paths) = tree(&leaves);
        let signature = self.key.sign(&signed_bytes(&root)).to_bytes();
        let public = self.public();
        items
            .iter()
            .zip(paths)
            .map(|(item, (path, siblings))| {
                let mut out = Vec::with_capacity(HEAD + siblings.len() * 32 + item.record.len());
                out.push(siblings.len() as u8);
                out.push(path);
                out.extend_from_slice(&public);
                out.extend_from_slice(&signature);
                siblings.iter().for_each(|s| out.extend_from_slice(s));
                out.extend_from_slice(item.record);
                out
            })
            .collect()
    }
}

/// One record to sign: where it goes, and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// The room's topic (for presence, the room announced).
    pub room: &'a str,
    /// The topic the payload is published on.
    pub topic: &'a str,
    pub record: &'a [u8],
}

impl Item<'_> {
    fn leaf(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(LEAF_LABEL);
        h.update((self.room.len() as u32).to_be_bytes());
        h.update(self.room.as_bytes());
        h.update((self.topic.len() as u32).to_be_bytes());
        h.update(self.topic.as_bytes());
        h.update(self.record);
        h.finalize().into()
    }
}

fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

fn signed_bytes(root: &[u8; 32]) -> Vec<u8> {
    [ROOT_LABEL, &root[..]].concat()
}

/// A leaf's way to the root: its direction bits and siblings, leaf level first.
type Path = (u8, Vec<[u8; 32]>);

/// The root of the tree over `leaves` (pairs from the left; an odd last node goes up
/// unpaired) and each leaf's path.
fn tree(leaves: &[[u8; 32]]) -> ([u8; 32], Vec<Path>) {
    let mut paths: Vec<Path> = vec![(0, Vec::new()); leaves.len()];
    // Which node of the current level each leaf is under.
    let mut at: Vec<usize> = (0..leaves.len()).collect();
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        for (leaf, i) in at.iter_mut().enumerate() {
            let sibling = *i ^ 1;
            if let Some(s) = level.get(sibling) {
                let (bits, siblings) = &mut paths[leaf];
                if sibling < *i {
                    *bits |= 1 << siblings.len();
                }
                siblings.push(*s);
            }
            *i /= 2;
        }
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => node(l, r),
                [single] => *single,
                _ => unreachable!("chunks of two"),
            })
            .collect();
    }
    (level[0], paths)
}

/// Why a version 2 plaintext is not a signed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadSignature {
    /// Too short, too deep, or stray path bits.
    Malformed,
    /// The signature does not check with the key it carries.
    Invalid,
}

/// A record whose signature checked: who signed it, and the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed<'a> {
    pub fingerprint: Fingerprint,
    pub record: &'a [u8],
}

/// Checks signatures, remembering the roots it checked: the other records of a batch
/// cost two hashes each, not a signature check.
#[derive(Default)]
pub struct Verifier {
    /// Root → (key, signature, fingerprint) checked, at most [`CHECKED`].
    checked: HashMap<[u8; 32], ([u8; KEY], [u8; SIG], Fingerprint)>,
    /// The roots in the order they were checked, the oldest dropped first.
    order: VecDeque<[u8; 32]>,
}

impl Verifier {
    /// Checks the plaintext of a version 2 payload received on `topic` in `room`.
    pub fn check<'a>(
        &mut self,
        room: &str,
        topic: &str,
        plain: &'a [u8],
    ) -> Result<Signed<'a>, BadSignature> {
        let malformed = BadSignature::Malformed;
        let (&depth, rest) = plain.split_first().ok_or(malformed)?;
        let depth = usize::from(depth);
        let (&path, rest) = rest.split_first().ok_or(malformed)?;
        if depth > MAX_DEPTH || (depth < 8 && path >> depth != 0) || rest.len() < KEY + SIG {
            return Err(malformed);
        }
        let (key, rest) = rest.split_at(KEY);
        let (sig, rest) = rest.split_at(SIG);
        if rest.len() < depth * 32 {
            return Err(malformed);
        }
        let (siblings, record) = rest.split_at(depth * 32);
        let item = Item {
            room,
            topic,
            record,
        };
        let root = siblings
            .chunks(32)
            .enumerate()
            .fold(item.leaf(), |h, (i, s)| {
                let s: &[u8; 32] = s.try_into().expect("chunks of 32");
                match path >> i & 1 {
                    1 => node(s, &h),
                    _ => node(&h, s),
                }
            });
        let key: [u8; KEY] = key.try_into().expect("split at KEY");
        let sig: [u8; SIG] = sig.try_into().expect("split at SIG");
        if let Some(&(k, s, fingerprint)) = self.checked.get(&root)
            && (k, s) == (key, sig)
        {
            return Ok(Signed {
                fingerprint,
                record,
            });
        }
        let public = VerifyingKey::from_bytes(&key).map_err(|_| BadSignature::Invalid)?;
        public
            .verify_strict(&signed_bytes(&root), &Signature::from_bytes(&sig))
            .map_err(|_| BadSignature::Invalid)?;
        let fingerprint = Fingerprint::of(&key);
        if self.order.len() == CHECKED
            && let Some(oldest) = self.order.pop_front()
        {
            self.checked.remove(&oldest);
        }
        if self.checked.insert(root, (key, sig, fingerprint)).is_none() {
            self.order.push_back(root);
        }
        Ok(Signed {
            fingerprint,
            record,
        })
    }
}

#[cfg(test)]
#[path = "sign_tests.rs"]
mod tests;
