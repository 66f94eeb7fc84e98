//! The interpreter's value stack, at an address that never moves.
//!
//! Trace code reads and writes the interpreter's frames in place: a higher tier views the
//! stack's bytes as a memory of its own (the way it views the guest's linear memory), so
//! entering trace code copies no slot in or out. That engine keeps the base address, and
//! one that compiles memory accesses without bounds checks relies on the address space
//! after the bytes being reserved, so the stack lives in a [`LinearBytes`] mapping: the
//! reservation of a 32-bit memory, the stack's own bytes readable and writable (zeros
//! until written, mapped by the OS as they are touched).
//!
//! Slot 0 starts [`LEADING_BYTES`] into the mapping. The word before it belongs to no
//! frame, so a tier may keep a word just below any frame (below a frame at slot `i > 0` it
//! saves and restores slot `i - 1`), the first one included.

use std::ops::{Deref, DerefMut};

use crate::linear::{LinearBytes, RESERVED_BYTES};
use crate::store::PAGE_SIZE;

/// Bytes of the mapping before slot 0 (see the module comment).
pub const LEADING_BYTES: usize = 8;

/// Bytes of one slot.
const SLOT_BYTES: usize = std::mem::size_of::<u64>();

/// The most slots a stack holds: what fits a 32-bit memory after the leading word.
pub const MAX_VALUE_SLOTS: usize = (RESERVED_BYTES - PAGE_SIZE) / SLOT_BYTES;

/// The value stack: `len` slots of 64 bits, zeroed when made.
#[derive(Default)]
pub struct ValueStack {
    storage: Storage,
}

#[derive(Default)]
enum Storage {
    /// In a mapping a higher tier can view (see the module comment).
    Mapped { bytes: LinearBytes, len: usize },
    /// On the heap, where no address space could be reserved: the interpreter runs as
    /// well, but no tier can share it ([`ValueStack::bytes`] is `None`).
    Heap(Vec<u64>),
    /// No slots: what the store holds while a call has taken its stack.
    #[default]
    Empty,
}

impl ValueStack {
    /// A stack of `slots` zeroed slots (at most [`MAX_VALUE_SLOTS`]).
    pub fn new(slots: usize) -> ValueStack {
        let slots = slots.min(MAX_VALUE_SLOTS);
        let bytes = (LEADING_BYTES + slots * SLOT_BYTES).next_multiple_of(PAGE_SIZE);
        let storage = match LinearBytes::new(bytes) {
            Ok(bytes) => Storage::Mapped { bytes, len: slots },
            // Reserving address space fails only under a limit on it (`ulimit -v`); the
            // interpreter does not need the reservation, only a tier does.
            Err(_) => Storage::Heap(vec![0; slots]),
        };
        ValueStack { storage }
    }

    /// The mapping slot 0 is [`LEADING_BYTES`] into, if the stack has one.
    pub fn bytes(&self) -> Option<&LinearBytes> {
        match &self.storage {
            Storage::Mapped { bytes, .. } => Some(bytes),
            _ => None,
        }
    }
}

impl Deref for ValueStack {
    type Target = [u64];

    fn deref(&self) -> &[u64] {
        match &self.storage {
            // SAFETY: the mapping's first `LEADING_BYTES + 8 * len` bytes are readable and
            // writable (`new` made that many accessible), 8-aligned (a page-aligned base
            // plus 8), and initialised (zeros or what was written); `&self` borrows them.
            Storage::Mapped { bytes, len } => unsafe {
                std::slice::from_raw_parts(bytes.base().add(LEADING_BYTES).cast::<u64>(), *len)
            },
            Storage::Heap(slots) => slots,
            Storage::Empty => &[],
        }
    }
}

impl DerefMut for ValueStack {
    fn deref_mut(&mut self) -> &mut [u64] {
        match &mut self.storage {
            // SAFETY: as in `deref`; `&mut self` borrows them exclusively.
            Storage::Mapped { bytes, len } => unsafe {
                std::slice::from_raw_parts_mut(bytes.base().add(LEADING_BYTES).cast::<u64>(), *len)
            },
            Storage::Heap(slots) => slots,
            Storage::Empty => &mut [],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_zero_and_live_after_the_leading_word() {
        let mut stack = ValueStack::new(1000);
        assert_eq!(stack.len(), 1000);
        assert!(stack.iter().all(|&s| s == 0));
        stack[0] = 0x1122_3344_5566_7788;
        stack[999] = 7;
        let bytes = stack.bytes().expect("mapped");
        assert!(bytes.len() >= LEADING_BYTES + 1000 * SLOT_BYTES);
        assert_eq!(bytes.len() % PAGE_SIZE, 0);
        // SAFETY: the first bytes of the mapping are accessible (`bytes.len()` of them).
        let raw = unsafe { std::slice::from_raw_parts(bytes.base(), bytes.len()) };
        assert_eq!(raw[..LEADING_BYTES], [0; LEADING_BYTES]);
        assert_eq!(
            raw[LEADING_BYTES..LEADING_BYTES + 8],
            0x1122_3344_5566_7788u64.to_le_bytes()
        );
        assert_eq!(raw[LEADING_BYTES + 999 * 8], 7);
    }

    #[test]
    fn a_taken_stack_leaves_an_empty_one() {
        let mut stack = ValueStack::new(16);
        let base = stack.as_ptr();
        let taken = std::mem::take(&mut stack);
        assert!(stack.is_empty());
        assert!(stack.bytes().is_none());
        // Moving the stack does not move its slots.
        assert_eq!(taken.as_ptr(), base);
    }

    #[test]
    fn no_more_slots_than_a_32_bit_memory_holds() {
        assert!(LEADING_BYTES + MAX_VALUE_SLOTS * SLOT_BYTES <= RESERVED_BYTES);
        // Asking for more is clamped, not an error (the default is far below).
        assert_eq!(ValueStack::new(usize::MAX).len(), MAX_VALUE_SLOTS);
    }
}
