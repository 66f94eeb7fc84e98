//! The trace: kiln's intermediate representation of a recorded hot path.
//!
//! `trace.rs` is the data model; `ops.rs` the operator table; `num.rs` the exact numeric
//! semantics of WebAssembly that the interpreter and the trace evaluator share.

pub mod num;
pub mod ops;
pub mod trace;

pub use trace::*;
