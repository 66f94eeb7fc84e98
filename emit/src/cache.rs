//! The cache library: one valid wasm module holding many trace functions (`abi.rs`'s
//! ABI, built by [`crate::ModuleBuilder`]) and, as its last section, the custom section
//! `kiln.manifest` that says what each function is: format and kiln version, the app's
//! module hash, and per trace its anchor, entry and exit maps, costs, proof verdict and
//! solver, ending in a SHA-256 checksum of the whole file before it. The layout is in
//! `docs/cache-format.md`.
//!
//! ```text
//! CacheWriter::new(guest, app_hash) ─add(shipped trace, TraceRecord)─► … ─finish()─► bytes
//! CacheLibrary::read(bytes, app_hash) ─► module_bytes() + traces(): Vec<CachedTrace>
//! ```
//!
//! The reader trusts nothing (see `read.rs`): every problem is a [`CacheError`] naming
//! it, never a panic.

mod encoding;
mod error;
mod manifest;
mod read;
mod write;

pub use error::{CacheError, CacheWriteError};
pub use manifest::{
    CachedTrace, EntryInput, ExitEntry, Manifest, ProofVerdict, FORMAT_VERSION, KILN_VERSION,
    MANIFEST_SECTION, MAX_EXIT_PC, MAX_LIST_LEN, MAX_TEXT_BYTES, MAX_TRACES,
};
pub use read::{CacheLibrary, MAX_CACHE_BYTES};
pub use write::{assemble_unchecked, CacheWriter, TraceRecord};
