//! Traps: the observable failures of a WebAssembly computation.
//!
//! WebAssembly has no undefined behaviour; every failure is one of the spec's trap kinds
//! and is a result like any other. A trap carries the wasm call stack at the moment it
//! happened, innermost frame first.

use std::fmt;

/// Why execution stopped abnormally. The `Display` text of each spec trap is the message
/// the WebAssembly reference interpreter uses, so spec-test expectations match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrapKind {
    Unreachable,
    IntegerDivideByZero,
    IntegerOverflow,
    InvalidConversionToInteger,
    MemoryOutOfBounds,
    TableOutOfBounds,
    /// `call_indirect` through an index past the end of the table.
    UndefinedElement,
    /// `call_indirect` through a null table entry.
    UninitializedElement,
    IndirectCallTypeMismatch,
    /// The guest recursed past kiln's call-depth or value-stack limit.
    CallStackExhausted,
    /// Not a failure: a WASI `proc_exit` unwinding the guest with this exit code.
    Exit(i32),
    /// A host function failed for a reason of its own.
    Host(String),
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrapKind::Unreachable => f.write_str("unreachable"),
            TrapKind::IntegerDivideByZero => f.write_str("integer divide by zero"),
            TrapKind::IntegerOverflow => f.write_str("integer overflow"),
            TrapKind::InvalidConversionToInteger => f.write_str("invalid conversion to integer"),
            TrapKind::MemoryOutOfBounds => f.write_str("out of bounds memory access"),
            TrapKind::TableOutOfBounds => f.write_str("out of bounds table access"),
            TrapKind::UndefinedElement => f.write_str("undefined element"),
            TrapKind::UninitializedElement => f.write_str("uninitialized element"),
            TrapKind::IndirectCallTypeMismatch => f.write_str("indirect call type mismatch"),
            TrapKind::CallStackExhausted => f.write_str("call stack exhausted"),
            TrapKind::Exit(code) => write!(f, "exit with code {code}"),
            TrapKind::Host(msg) => write!(f, "host error: {msg}"),
        }
    }
}

/// One wasm frame of a trap's backtrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameInfo {
    /// Index of the function in its module's function index space.
    pub func_index: u32,
    /// Name from the module's name section, if it has one.
    pub func_name: Option<String>,
    /// Byte offset in the module of the instruction that was executing.
    pub offset: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trap {
    pub kind: TrapKind,
    /// Innermost frame first. Empty for a trap outside any wasm function.
    pub backtrace: Vec<FrameInfo>,
}

impl Trap {
    pub fn new(kind: TrapKind) -> Trap {
        Trap {
            kind,
            backtrace: Vec::new(),
        }
    }
}

impl From<TrapKind> for Trap {
    fn from(kind: TrapKind) -> Trap {
        Trap::new(kind)
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wasm trap: {}", self.kind)?;
        if !self.backtrace.is_empty() {
            f.write_str("\nwasm backtrace:")?;
            for (i, frame) in self.backtrace.iter().enumerate() {
                write!(f, "\n  {i:>3}: {:#08x} - ", frame.offset)?;
                match &frame.func_name {
                    Some(name) => write!(f, "{name}")?,
                    None => write!(f, "<func {}>", frame.func_index)?,
                }
            }
        }
        Ok(())
    }
}

impl std::error::Error for Trap {}
