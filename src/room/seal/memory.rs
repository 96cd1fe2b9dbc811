//! Argon2's work memory for `RoomKey::derive_in`: 19 MiB in an anonymous mapping of its
//! own, given back to the system when a burst of derivations is over.

use argon2::Block;
use zeroize::Zeroize;

/// Argon2id's memory cost of format version 1 in 1 KiB blocks: `seal::KDF_MEMORY_KIB`
/// (not imported, as `seal` imports this module; its tests check they agree).
const KDF_MEMORY_KIB: u32 = 19 * 1024;

/// Argon2's work memory (19 MiB) in an anonymous mapping of its own, made on first use:
/// wiped after each derivation, and wiped and given back to the system by
/// [`Memory::release`] and when dropped. From the allocator it would stay in the
/// process: glibc raises its mmap threshold after freeing a block that large, and keeps
/// the next ones in its heap, so a burst of derivations left chat-sub at 60–120 MiB.
#[derive(Default)]
pub struct Memory(Option<std::ptr::NonNull<Block>>);

impl Memory {
    const BLOCKS: usize = KDF_MEMORY_KIB as usize;
    const BYTES: usize = Memory::BLOCKS * std::mem::size_of::<Block>();

    /// The blocks, mapped now if they are not.
    pub(super) fn blocks(&mut self) -> &mut [Block] {
        let ptr = *self.0.get_or_insert_with(map);
        // SAFETY: `ptr` is a private mapping of BYTES bytes, page-aligned (Block wants 64),
        // readable and writable, zero-filled by the kernel or by `wipe` (all-zero bytes are
        // a valid Block), and borrowed through `&mut self` only.
        unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), Memory::BLOCKS) }
    }

    /// Zeroes every block.
    pub(super) fn wipe(&mut self) {
        if self.0.is_some() {
            self.blocks().iter_mut().for_each(Zeroize::zeroize);
        }
    }

    /// Wipes the blocks and gives them back to the system (mapped again when needed).
    pub fn release(&mut self) {
        self.wipe();
        if let Some(ptr) = self.0.take() {
            // SAFETY: `ptr` is the mapping made by `map`, of BYTES bytes, and no reference
            // to it outlives `blocks`' borrow.
            unsafe { libc::munmap(ptr.as_ptr().cast(), Memory::BYTES) };
        }
    }
}

/// A private anonymous mapping for [`Memory`]; out of memory is fatal, as for any
/// allocation.
fn map() -> std::ptr::NonNull<Block> {
    // SAFETY: a new anonymous mapping touches no memory of ours.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            Memory::BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    match ptr == libc::MAP_FAILED {
        true => std::alloc::handle_alloc_error(
            std::alloc::Layout::from_size_align(Memory::BYTES, 64).expect("a valid layout"),
        ),
        false => std::ptr::NonNull::new(ptr.cast()).expect("mmap does not return null"),
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_is_made_when_used_wiped_and_given_back() {
        let mut memory = Memory::default();
        assert!(memory.0.is_none(), "nothing mapped before use");
        let blocks = memory.blocks();
        assert_eq!(blocks.len() * 1024, KDF_MEMORY_KIB as usize * 1024);
        blocks[7].as_mut()[3] = 42;
        memory.wipe();
        assert!(
            memory
                .blocks()
                .iter()
                .all(|b| b.as_ref().iter().all(|&w| w == 0))
        );
        memory.release();
        assert!(memory.0.is_none(), "given back");
    }
}
