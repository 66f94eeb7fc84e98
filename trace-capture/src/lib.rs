//! Kiln's WebAssembly interpreter (tier 0) and its trace recorder.
//!
//! A [`Module`] is validated with wasmparser and lowered once to a register code
//! designed for dispatch (`code.rs`, `lower.rs`); a [`Store`] instantiates modules and
//! runs them (`exec.rs`). Every function entry and every `loop` header is an *anchor*
//! with a hit counter that stays on. With [`Store::enable_recording`], a loop anchor that
//! turns hot has its next pass recorded as an `ir::Trace` (`record.rs`).
//!
//! This crate knows nothing of egg, z3, wasm-encoder or wasmtime: higher tiers take over
//! a loop anchor through a small trait ([`TraceTier`], `tier.rs`), never the other way
//! round. Memory and the value stack live at addresses that never move (`linear.rs`,
//! `value_stack.rs`), so trace code compiled by another engine works on the guest's bytes
//! and the interpreter's frames in place.

mod code;
mod exec;
pub mod linear;
mod liveness;
mod lower;
pub mod module;
pub mod record;
mod store;
pub mod tier;
pub mod trap;
pub mod types;
pub mod value_stack;
pub mod wasi;

pub use module::{Anchor, AnchorKind, ControlAt, Export, ExportKind, Import, Module, ModuleError};
pub use record::{
    AbortReason, CapturedState, RecordConfig, RecordStats, RecordedTrace, Selector, TraceStart,
};
pub use store::{
    Caller, HostFunc, InstantiateError, Linker, StackLimits, Store, MAX_PAGES, PAGE_SIZE,
};
pub use tier::{
    GlobalsMut, ReportStart, SideTraceRecord, TierExit, TraceEntry, TraceReport, TraceTier,
};
pub use trap::{FrameInfo, Trap, TrapKind};
pub use types::{
    Extern, ExternType, FuncAddr, FuncType, GlobalAddr, GlobalType, InstanceId, Limits, MemAddr,
    MemoryType, TableAddr, TableType, ValType, Value,
};
