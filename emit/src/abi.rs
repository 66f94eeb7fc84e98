//! The contract between an emitted trace function and the runtime that calls it.
//!
//! A cache module (see `module.rs`) holds one function per trace. The runtime instantiates
//! it against the running guest and calls a trace function where the interpreter would
//! have run the trace. This is everything the two sides agree on.
//!
//! # Imports
//!
//! - `"guest" "memory"`: memory 0, the guest's linear memory itself, with the limits the
//!   caller gives in [`GuestInfo`]. Loads, stores, `memory.size` and `memory.grow` of the
//!   trace operate on it directly, so an out-of-bounds access traps exactly where the
//!   trace's would, and a trap leaves the memory as the trace left it.
//! - `"guest" "global<N>"` for each guest global `N` some trace of the module reads or
//!   writes (and only those), with the guest's type and mutability. A `global.set` of the
//!   trace is a `global.set` of the import; a global input is a `global.get`, re-read at
//!   the top of every loop iteration because the body may have set it.
//! - `"kiln" "frame"`: memory 1, the interpreter's frame (wasm multi-memory). Its import
//!   minimum is large enough ([`frame_pages`]) that a frame at address 0 holding every
//!   slot any trace of the module names is in bounds.
//!
//! # Trace functions
//!
//! Each trace is exported as `trace<i>` (`i` in the order the traces were added) with type
//! `(func (param $frame i32) (result i32))`. Slot `s` of the interpreter frame lives at
//! `$frame + 8*s` in memory 1 as a little-endian u64, raw as `ir::eval::EntryState::slots`
//! keeps it: 32-bit values zero-extended, floats as their bits. The caller must place the
//! frame so that every slot the trace names is inside memory 1 (a frame access out of
//! bounds would trap and look like a guest memory trap).
//!
//! The function reads its slot inputs from the frame at entry, runs the trace and returns
//! the id of the exit taken (`ir::Exit::id`, its u32 bits as the i32 result), having written that exit's state slots to the frame. Slots
//! an exit does not name are left as they were, except for the carried slots below.
//!
//! At every exit the function also writes the *iteration word*: the number of loop
//! iterations it completed in this call (0 for a trace that does not loop), as a
//! little-endian u64 at `$frame - 8` ([`ITERATION_WORD_BYTES`] before the frame, so
//! `$frame` must be at least 8). A runtime uses it to tell a trace that runs its loop from
//! one that exits at once, which costs a call for nothing.
//!
//! A trace that ends in a loop iterates inside the function: at the loop end, the listed
//! slot values become the slot inputs of the next iteration (other slots keep theirs), and
//! the function returns only when a guard fails. The loop-end values are kept in locals,
//! not written to the frame on every iteration; so that the frame still ends up exactly
//! as if the interpreter had run every iteration, every exit also writes back each slot
//! the loop end writes that the exit's own state does not (read from the frame at entry,
//! so an exit in the first iteration writes back the value already there).
//!
//! A trap (division, truncation, guest memory) is a wasm trap of the function itself, with
//! the guest memory and globals as the trace left them; the frame is then unspecified,
//! as the trace's meaning says nothing of it.
//!
//! # Values
//!
//! Every SSA value of the trace is computed once, into a wasm local of its type, and read
//! with `local.get` at each use. Keeping single-use values on the operand stack would save
//! a few locals, but engines (Cranelift) do not care and Winch does not reorder anyway;
//! one rule is easier to check.

use std::collections::BTreeMap;

use ir::Type;

/// The import module of everything that belongs to the guest.
pub const GUEST_MODULE: &str = "guest";
/// The name of the guest's memory import.
pub const GUEST_MEMORY: &str = "memory";
/// The import module of what kiln's runtime provides.
pub const KILN_MODULE: &str = "kiln";
/// The name of the frame memory import.
pub const FRAME_MEMORY: &str = "frame";
/// The guest memory's index in the module (imported first).
pub const GUEST_MEMORY_INDEX: u32 = 0;
/// The frame memory's index in the module (imported second).
pub const FRAME_MEMORY_INDEX: u32 = 1;
/// Bytes of the iteration word just before the frame.
pub const ITERATION_WORD_BYTES: u64 = 8;
/// Bytes per frame slot: the interpreter's slots are u64.
pub const SLOT_BYTES: u64 = 8;
/// Bytes in a wasm page.
pub const PAGE_BYTES: u64 = 65536;
/// The export name prefix of trace functions: `trace0`, `trace1`, ...
pub const TRACE_EXPORT_PREFIX: &str = "trace";
/// The most frame slots a trace may name. A slot's byte offset is a wasm memarg offset;
/// this keeps the frame within 16 MiB (far beyond any real interpreter frame: kiln's
/// value stack is smaller), so a slot index beyond it is a corrupt trace, not a frame.
pub const MAX_FRAME_SLOTS: u32 = 1 << 21;

/// The import name of guest global `index`.
pub fn global_import_name(index: u32) -> String {
    format!("global{index}")
}

/// The export name of the `index`-th trace function of a module.
pub fn trace_export_name(index: u32) -> String {
    format!("{TRACE_EXPORT_PREFIX}{index}")
}

/// The frame memory's import minimum, in pages, for frames of `slots` slots.
pub fn frame_pages(slots: u32) -> u64 {
    (u64::from(slots) * SLOT_BYTES).div_ceil(PAGE_BYTES)
}

/// What the emitted code must know of the guest: its memory's limits and the type of
/// each global a trace may touch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GuestInfo {
    /// Memory 0's declared minimum, in pages.
    pub memory_min_pages: u32,
    /// Memory 0's declared maximum, in pages, if it has one.
    pub memory_max_pages: Option<u32>,
    /// Globals by index (module index space).
    pub globals: BTreeMap<u32, GlobalInfo>,
}

/// One guest global's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalInfo {
    pub ty: Type,
    pub mutable: bool,
}
