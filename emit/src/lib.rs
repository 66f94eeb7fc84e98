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
//! To come (issue 5): the cache library's manifest section and its reader.

pub mod abi;
mod error;
mod function;
mod module;
mod numop;

pub use abi::{GlobalInfo, GuestInfo};
pub use error::EmitError;
pub use module::{features, validate, wat, EmitKind, ModuleBuilder};
