//! The trace: kiln's intermediate representation of a recorded hot path.
//!
//! This crate will hold the trace data model, its canonical text form, its compact binary
//! form, its content hash and a reference evaluator (issue 3). Today it holds the exact
//! numeric semantics of WebAssembly that the interpreter and the evaluator share.

pub mod num;
