//! What can go wrong when emitting: every error names the trace and the problem.

use std::fmt;

/// Why a trace or a module could not be emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmitError {
    /// The trace breaks a rule of `ir::validate`.
    Invalid {
        trace: u32,
        error: ir::validate::ValidateError,
    },
    /// The trace reads or writes a global the guest description lacks.
    UnknownGlobal { trace: u32, global: u32 },
    /// The trace writes a global the guest declares immutable.
    ImmutableGlobal { trace: u32, global: u32 },
    /// The trace names a frame slot beyond [`crate::abi::MAX_FRAME_SLOTS`].
    SlotTooLarge { trace: u32, slot: u32 },
    /// A trace tree whose parts do not fit together (`tree.rs`).
    BadTree { trace: u32, why: String },
    /// A region whose members, links or entries do not fit together (`region.rs`).
    BadRegion { trace: u32, why: String },
    /// The guest memory's minimum exceeds its maximum or the 32-bit limit.
    BadMemoryLimits { min: u32, max: Option<u32> },
    /// The finished module failed wasmparser's validation: a bug in `emit`, or bytes
    /// given to `validate` that are not a module kiln could have written.
    InvalidModule(String),
    /// wasmprinter could not print the bytes given to `wat`.
    Unprintable(String),
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::Invalid { trace, error } => write!(f, "trace {trace} is invalid: {error}"),
            EmitError::UnknownGlobal { trace, global } => write!(
                f,
                "trace {trace} touches global {global}, which the guest description lacks"
            ),
            EmitError::ImmutableGlobal { trace, global } => write!(
                f,
                "trace {trace} writes global {global}, which the guest declares immutable"
            ),
            EmitError::SlotTooLarge { trace, slot } => write!(
                f,
                "trace {trace} names frame slot {slot}, beyond the limit of {}",
                crate::abi::MAX_FRAME_SLOTS
            ),
            EmitError::BadTree { trace, why } => write!(f, "trace tree {trace}: {why}"),
            EmitError::BadRegion { trace, why } => write!(f, "region at trace {trace}: {why}"),
            EmitError::BadMemoryLimits { min, max } => write!(
                f,
                "guest memory limits min {min} max {max:?} pages are not valid"
            ),
            EmitError::InvalidModule(e) => write!(f, "module does not validate: {e}"),
            EmitError::Unprintable(e) => write!(f, "module cannot be printed: {e}"),
        }
    }
}

impl std::error::Error for EmitError {}
