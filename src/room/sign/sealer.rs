//! Sealing as a member: records signed with the member's identity, then sealed in
//! format version 2 with the key of their room (see `room::sign` for the format).

use std::sync::Arc;

use super::{BATCH, Identity, Item, MAX_BLOCK};
use crate::room::seal::{self, Keyring, RoomKey, Version};

/// What a member seals with: the room secret's keys and the member's identity.
pub struct Sealer {
    pub keyring: Keyring,
    identity: Arc<Identity>,
}

impl Sealer {
    pub fn new(keyring: Keyring, identity: Arc<Identity>) -> Sealer {
        Sealer { keyring, identity }
    }

    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    /// Signs records together ([`BATCH`] at a time) and seals each in format version 2
    /// with the key of its room: the payloads, in order.
    pub fn seal(&mut self, items: &[Item<'_>]) -> Result<Vec<Vec<u8>>, String> {
        let mut out = Vec::with_capacity(items.len());
        for batch in items.chunks(BATCH) {
            for (item, plain) in batch.iter().zip(self.identity.sign(batch)) {
                let key = self.keyring.key(item.room);
                out.push(seal::seal_as(Version::V2, key, item.topic, &plain)?);
            }
        }
        Ok(out)
    }
}

/// Signs one record and seals it in format version 2 with `key` (presence records).
pub fn seal_one(identity: &Identity, key: &RoomKey, item: Item<'_>) -> Result<Vec<u8>, String> {
    let plain = identity.sign(&[item]).remove(0);
    seal::seal_as(Version::V2, key, item.topic, &plain)
}

/// The largest payload a record of `len` bytes becomes, signed and sealed.
pub fn sealed_len(len: usize) -> usize {
    seal::sealed_len(MAX_BLOCK + len)
}
