//! The tiers: cached trace, then live JIT, then the interpreter.
//!
//! Trace code runs in wasmtime behind the interpreter's tier door
//! (`trace_capture::TraceTier`): [`WasmtimeTier`] loads modules of trace functions
//! written by `emit` and runs them at the anchors they were recorded at, over the
//! guest's own memory, shared in place (`memory.rs`).
//!
//! | file | its job |
//! |---|---|
//! | `memory.rs` | Wasmtime memories over the interpreter's fixed-address bytes. |
//! | `wasm_tier.rs` | Load trace modules, call trace functions at attached anchors, hand the frame and globals over and back, map traps. |
//!
//! To come (issue 5): the cache library's reader, live JIT of traces recorded during
//! the run, and `kiln run --cache/--jit/--engine`.

pub mod memory;
pub mod wasm_tier;

pub use wasm_tier::{guest_info, Backend, TierStats, Touches, TraceCode, TraceMeta, WasmtimeTier};
