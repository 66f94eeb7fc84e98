//! A linear memory's bytes at an address that never moves.
//!
//! The interpreter and higher tiers share one memory: trace code compiled by another
//! engine reads and writes the guest's bytes in place, with no copy per call. That engine
//! keeps the memory's base address in its own state, so the base must never move when
//! the memory grows. [`LinearBytes`] therefore reserves the largest memory a 32-bit wasm
//! memory can be (4 GiB) plus a guard region as address space only (`PROT_NONE`,
//! `MAP_NORESERVE`: no RAM, no commit charge), and makes pages readable and writable as
//! the memory grows. Bytes past the current length have never been written, so a grown
//! region reads as zeros, as wasm requires.
//!
//! The current length is shared ([`LinearBytes::shared_len`]) so that another engine
//! that grows the memory (a trace's `memory.grow`) can publish the new length; the
//! interpreter reads it whenever it refreshes its view of memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::store::{MAX_PAGES, PAGE_SIZE};

/// Address space reserved for the bytes: the most a 32-bit memory can hold.
pub const RESERVED_BYTES: usize = MAX_PAGES as usize * PAGE_SIZE;
/// Inaccessible address space after the reservation. An engine that compiles memory
/// accesses without bounds checks relies on any `address + offset` past the memory
/// faulting; wasmtime asks for 32 MiB by default on 64-bit hosts. 2 GiB covers any
/// static offset a wasm access can add (offsets are u32) below 4 GiB + 2 GiB, costs only
/// address space, and leaves a higher tier free to configure its guard up to it.
pub const GUARD_BYTES: usize = 2 << 30;

/// A memory's bytes: a fixed base address, a current length, growth in place.
pub struct LinearBytes {
    base: *mut u8,
    len: Arc<AtomicUsize>,
    /// Bytes mapped readable and writable (at least `len`).
    accessible: usize,
}

// SAFETY: the mapping is owned by this value; access goes through `&self`/`&mut self`.
unsafe impl Send for LinearBytes {}

impl LinearBytes {
    /// A memory of `len` bytes (a whole number of pages, at most [`RESERVED_BYTES`]).
    pub fn new(len: usize) -> Result<LinearBytes, String> {
        if len > RESERVED_BYTES {
            return Err(format!("{len} bytes is more than a 32-bit memory holds"));
        }
        // SAFETY: a fresh anonymous private mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                RESERVED_BYTES + GUARD_BYTES,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "cannot reserve {} GiB of address space for a linear memory: {}",
                (RESERVED_BYTES + GUARD_BYTES) >> 30,
                std::io::Error::last_os_error()
            ));
        }
        let mut bytes = LinearBytes {
            base: base.cast(),
            len: Arc::new(AtomicUsize::new(0)),
            accessible: 0,
        };
        bytes.grow_to(len)?;
        Ok(bytes)
    }

    /// The current length in bytes.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The base address; it never changes.
    pub fn base(&self) -> *mut u8 {
        self.base
    }

    /// The shared current length, for an engine that grows this memory itself: it must
    /// call [`LinearBytes::make_accessible`] first, then store the new length.
    pub fn shared_len(&self) -> Arc<AtomicUsize> {
        self.len.clone()
    }

    /// Grows the memory to `new_len` bytes (never shrinks).
    pub fn grow_to(&mut self, new_len: usize) -> Result<(), String> {
        // SAFETY: `base` is this value's own mapping of `RESERVED_BYTES` and more.
        unsafe { Self::make_accessible(self.base, self.accessible, new_len)? };
        self.accessible = self.accessible.max(new_len);
        if new_len > self.len() {
            self.len.store(new_len, Ordering::Release);
        }
        Ok(())
    }

    /// Makes bytes `0..new_len` of the mapping at `base` readable and writable, given
    /// that `0..accessible` already are.
    ///
    /// # Safety
    /// `base` must be the base of a [`LinearBytes`] mapping that is still alive.
    pub unsafe fn make_accessible(
        base: *mut u8,
        accessible: usize,
        new_len: usize,
    ) -> Result<(), String> {
        if new_len > RESERVED_BYTES {
            return Err(format!(
                "{new_len} bytes is more than a 32-bit memory holds"
            ));
        }
        if new_len <= accessible {
            return Ok(());
        }
        // SAFETY: the range lies inside the reservation (checked above).
        let rc = unsafe {
            libc::mprotect(
                base.add(accessible).cast(),
                new_len - accessible,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if rc != 0 {
            return Err(format!(
                "cannot grow a linear memory to {new_len} bytes: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }
}

impl std::ops::Deref for LinearBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `0..len` is mapped readable and writable and owned by `self`. Another
        // engine only changes `len` (growing) while it runs trace code, never while a
        // borrow of these bytes is alive (the interpreter is suspended in the call).
        unsafe { std::slice::from_raw_parts(self.base, self.len()) }
    }
}

impl std::ops::DerefMut for LinearBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`, and `&mut self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.base, self.len()) }
    }
}

impl Drop for LinearBytes {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `new` with this size and is unmapped once.
        unsafe {
            libc::munmap(self.base.cast(), RESERVED_BYTES + GUARD_BYTES);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_in_place_with_zeros() {
        let mut m = LinearBytes::new(PAGE_SIZE).unwrap();
        let base = m.base();
        m[0] = 1;
        m[PAGE_SIZE - 1] = 2;
        m.grow_to(3 * PAGE_SIZE).unwrap();
        assert_eq!(m.base(), base, "the base never moves");
        assert_eq!(m.len(), 3 * PAGE_SIZE);
        assert_eq!((m[0], m[PAGE_SIZE - 1]), (1, 2));
        assert!(m[PAGE_SIZE..].iter().all(|&b| b == 0));
        // Growing to less is not shrinking.
        m.grow_to(PAGE_SIZE).unwrap();
        assert_eq!(m.len(), 3 * PAGE_SIZE);
        assert!(LinearBytes::new(RESERVED_BYTES + PAGE_SIZE).is_err());
        assert!(m.grow_to(RESERVED_BYTES + PAGE_SIZE).is_err());
    }

    #[test]
    fn another_engine_can_publish_growth() {
        let m = LinearBytes::new(0).unwrap();
        let len = m.shared_len();
        // SAFETY: `m` is alive.
        unsafe { LinearBytes::make_accessible(m.base(), 0, PAGE_SIZE).unwrap() };
        len.store(PAGE_SIZE, Ordering::Release);
        assert_eq!(m.len(), PAGE_SIZE);
        assert!(m.iter().all(|&b| b == 0));
    }
}
