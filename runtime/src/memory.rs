//! The guest's memory, shared with wasmtime in place.
//!
//! The interpreter keeps each linear memory at an address that never moves
//! (`trace_capture::linear`). Wasmtime is configured with a [`SharedMemoryCreator`], so
//! the memory the trace module imports as `"guest" "memory"` is a wasmtime memory *over
//! those same bytes*: trace code and interpreter read and write one buffer, and nothing
//! is copied per call.
//!
//! Two views of one length must agree. The interpreter's is the shared atomic length of
//! its `LinearBytes`; wasmtime keeps its own copy, updated when wasmtime grows the
//! memory. A trace's `memory.grow` goes through [`GuestLinear::grow_to`], which makes the
//! pages accessible and publishes the new length to the interpreter. When the interpreter
//! grew the memory itself, the runtime calls wasmtime's `Memory::grow` before the next
//! trace call ([`crate::WasmtimeTier`]); `grow_to` then finds the bytes already there.
//!
//! Every other memory wasmtime creates in this engine (the frame) gets fresh bytes of its
//! own with the same layout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use trace_capture::linear::{LinearBytes, GUARD_BYTES, RESERVED_BYTES};
use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

/// Wasmtime's guard region after a memory: compiled code may omit the bounds check of an
/// access whose static offset is below it. Wasmtime's 64-bit default; it must not exceed
/// the guard `LinearBytes` reserves.
pub const WASMTIME_GUARD_BYTES: usize = 32 << 20;
const _: () = assert!(WASMTIME_GUARD_BYTES <= GUARD_BYTES);

/// The bytes of one memory as wasmtime sees them.
pub struct GuestLinear {
    base: *mut u8,
    len: Arc<AtomicUsize>,
    /// Bytes owned by this memory (the frame); `None` for the guest's, which the
    /// interpreter owns and which outlives every wasmtime store that views it.
    _owned: Option<LinearBytes>,
}

// SAFETY: the bytes are only touched by the thread running the interpreter and its trace
// calls; wasmtime requires the bound for any memory it holds.
unsafe impl Send for GuestLinear {}
unsafe impl Sync for GuestLinear {}

// SAFETY: the base never moves (a reservation of `RESERVED_BYTES` plus a guard of at
// least `WASMTIME_GUARD_BYTES`), bytes `0..byte_size()` are readable and writable, and
// growth makes more pages accessible before publishing the new size.
unsafe impl LinearMemory for GuestLinear {
    fn byte_size(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    fn byte_capacity(&self) -> usize {
        RESERVED_BYTES
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        let current = self.byte_size();
        if new_size <= current {
            // The interpreter grew the memory already: wasmtime catches up.
            return Ok(());
        }
        // SAFETY: `base` is a live `LinearBytes` mapping (the interpreter's memory lives
        // as long as the store that runs trace code over it), and `0..current` is
        // already accessible.
        unsafe { LinearBytes::make_accessible(self.base, current, new_size) }
            .map_err(wasmtime::Error::msg)?;
        self.len.store(new_size, Ordering::Release);
        Ok(())
    }

    fn as_ptr(&self) -> *mut u8 {
        self.base
    }
}

/// Creates wasmtime's memories: the next one bound to the guest's bytes when one is
/// pending ([`SharedMemoryCreator::bind_next`]), otherwise fresh bytes.
#[derive(Default)]
pub struct SharedMemoryCreator {
    pending: Mutex<Option<(usize, Arc<AtomicUsize>)>>,
}

impl SharedMemoryCreator {
    /// Makes the next memory wasmtime creates a view of `bytes`.
    ///
    /// # Safety
    /// `bytes` must outlive the wasmtime store the next memory is created in.
    pub unsafe fn bind_next(&self, bytes: &LinearBytes) {
        *self.pending.lock().expect("not poisoned") =
            Some((bytes.base() as usize, bytes.shared_len()));
    }
}

// SAFETY: every memory returned satisfies `GuestLinear`'s guarantees and is zero-filled
// beyond what was written (fresh mappings, or the guest's memory, whose bytes past its
// length were never written).
unsafe impl MemoryCreator for SharedMemoryCreator {
    fn new_memory(
        &self,
        _ty: MemoryType,
        minimum: usize,
        maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        if reserved_size_in_bytes.is_some_and(|r| r > RESERVED_BYTES)
            || guard_size_in_bytes > GUARD_BYTES
            || maximum.is_some_and(|m| m > RESERVED_BYTES)
        {
            return Err(format!(
                "wasmtime asks for a reservation of {reserved_size_in_bytes:?} bytes and a guard \
                 of {guard_size_in_bytes}; kiln's memories reserve {RESERVED_BYTES} and {GUARD_BYTES}"
            ));
        }
        let pending = self.pending.lock().expect("not poisoned").take();
        let memory = match pending {
            Some((base, len)) => {
                if len.load(Ordering::Acquire) < minimum {
                    return Err(format!(
                        "the guest memory has {} bytes, the trace module needs {minimum}",
                        len.load(Ordering::Acquire)
                    ));
                }
                GuestLinear {
                    base: base as *mut u8,
                    len,
                    _owned: None,
                }
            }
            None => {
                let bytes = LinearBytes::new(minimum)?;
                GuestLinear {
                    base: bytes.base(),
                    len: bytes.shared_len(),
                    _owned: Some(bytes),
                }
            }
        };
        Ok(Box::new(memory))
    }
}
