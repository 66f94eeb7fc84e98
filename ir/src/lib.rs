//! The trace: kiln's intermediate representation of a recorded hot path.
pub mod num;
pub mod ops;
pub mod text;
pub mod trace;
pub mod validate;

pub use trace::*;
