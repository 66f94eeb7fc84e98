//! The trace: kiln's intermediate representation of a recorded hot path, and everything
//! that reads or writes one.
//!
//! | file | its job |
//! |---|---|
//! | `trace.rs` | The data model: a straight SSA path over wasm's numeric types, with guards that exit and an end that loops or exits. |
//! | `ops.rs` | One table per kind of operator: wasm text name, operand and result types, whether it can trap, binary code. |
//! | `validate.rs` | The structural rules every trace obeys ([`validate::validate`]), checked on everything read from outside. |
//! | `text.rs` | The canonical text form: `Display`, [`text::parse`], and the header's optional provenance. |
//! | `binary.rs` | The compact, versioned binary form: [`binary::encode`], [`binary::decode`] (which trusts nothing). |
//! | `hash.rs` | The content hash ([`hash::content_hash`]) over the canonical form ([`hash::canonicalize`]). |
//! | `eval.rs` | The reference evaluator ([`eval::eval`]): the meaning of a trace on a concrete state. |
//! | `num.rs` | The exact numeric semantics of wasm shared with the interpreter. |
//!
//! Invariants:
//! - print → parse is the identity, and so is encode → decode; both readers return only
//!   traces that pass `validate`, and fail with a position (line and column, or byte
//!   offset) and what was expected, never a panic.
//! - The evaluator is the meaning of a trace. It and the interpreter share `num.rs`, so a
//!   trace and the program it came from agree on every operator; an optimized trace is
//!   correct when it gives the same [`eval::Outcome`] (exit or loop with the same state,
//!   or the same trap with the same memory) on every entry state.
//! - The content hash depends on the trace's content only: not on value numbering, input
//!   order or provenance.
//! - `ir` depends on no other kiln crate.
//!
//! ```
//! use ir::eval::{eval, EntryState, Ended};
//!
//! let trace = ir::text::parse("
//!     trace locals=1
//!       in  v0:i32 = slot 0
//!       v1:i32 = i32.add v0 1
//!       v2:i32 = i32.lt_u v1 10
//!       guard v2 else exit 0 pc=7 @0x2a [s0=v1]
//!       loop [s0=v1]
//! ").unwrap();
//! assert_eq!(ir::binary::decode(&ir::binary::encode(&trace)), Ok(trace.clone()));
//!
//! let entry = EntryState { slots: [(0, 9)].into(), ..EntryState::default() };
//! let outcome = eval(&trace, entry).unwrap();
//! assert_eq!(outcome.end, Ended::Exit { id: 0, pc: 7, calls: vec![], slots: [(0, 10)].into() });
//! ```

pub mod binary;
pub mod eval;
pub mod hash;
pub mod num;
pub mod ops;
pub mod text;
pub mod trace;
pub mod validate;

pub use trace::*;
