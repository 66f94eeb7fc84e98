//! The trace: kiln's intermediate representation of a recorded hot path.
//!
//! `trace.rs` is the data model; `num.rs` the exact numeric semantics of WebAssembly that
//! the interpreter and the trace evaluator share. The text form, binary form, content
//! hash and reference evaluator are being added (issue 3).

pub mod num;
pub mod trace;

pub use trace::*;
