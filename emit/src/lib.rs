//! Trace to wasm: each `ir::Trace` becomes one wasm function (wasm-encoder), and many of
//! them one module that imports the guest's memory and globals and the interpreter's
//! frame. The contract with the runtime that calls these functions is in [`abi`].
//!
//! ```text
//! ModuleBuilder::new(GuestInfo) ─add(trace, EmitKind)─► … ─finish()─► validated bytes
//! ```
//!
//! A recorded trace (naive emission) and an optimized candidate go through the same
//! emitter: [`EmitKind`] only names which one a function is. Everything written is
//! validated with wasmparser before it is returned.
//!
//! ```
//! use emit::{EmitKind, GuestInfo, ModuleBuilder};
//!
//! let trace = ir::text::parse(
//!     "trace locals=1
//!        in  v0:i32 = slot 0
//!        v1:i32 = i32.add v0 1
//!        v2:i32 = i32.lt_u v1 100
//!        guard v2 else exit 0 pc=3 @0x9 [s0=v1]
//!        loop [s0=v1]",
//! )
//! .unwrap();
//! let guest = GuestInfo { memory_min_pages: 1, ..GuestInfo::default() };
//! let mut builder = ModuleBuilder::new(guest)?;
//! assert_eq!(builder.add(&trace, EmitKind::Naive)?, 0);
//! let bytes = builder.finish()?; // validated
//! assert!(emit::wat(&bytes)?.contains(r#"(export "trace0""#));
//! # Ok::<(), emit::EmitError>(())
//! ```
//!
//! The cache library (`cache/`, format in `docs/cache-format.md`): many traces in one
//! module plus a `kiln.manifest` section, written by [`CacheWriter`] and read by
//! [`CacheLibrary::read`], which trusts nothing it reads.

pub mod abi;
pub mod cache;
mod error;
mod function;
mod module;
mod numop;
pub mod region;
pub mod tree;

pub use abi::{GlobalInfo, GuestInfo};
pub use cache::{CacheError, CacheLibrary, CacheWriter};
pub use error::EmitError;
pub use module::{features, validate, wat, EmitKind, ModuleBuilder};
pub use region::Region;
pub use tree::{Arms, Branch, Tree};
