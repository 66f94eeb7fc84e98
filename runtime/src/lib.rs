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
//! | `cache.rs` | Load a cache library (`emit::cache`) into the tier: the reader's checks, plus the app's anchors and the side traces' places. |
//! | `code_cache.rs` | The machine's compiled-code cache: wasmtime's code for the modules built from a cache library and for the tier's own driver, kept on disk for the next run (never live-JIT code). |
//! | `compiler.rs` | The compile thread for side traces and trees. |
//! | `trace_code.rs` | What the runtime knows of trace functions (anchor key, exits, slots and globals touched); building a module of them with `emit`; the guest description. |
//! | `links.rs` | Trace linking: the table of trace functions, the links memory and the driver that follows an exit into the code linked at its pc. |
//! | `wasm_tier.rs` | Load trace modules, call trace functions at attached anchors, hand the frame and globals over and back, map traps. |
//!
//! Traces come from a cache library (`cache.rs`, `kiln run --cache`) or are recorded and
//! compiled during the run (live JIT, `WasmtimeTier::enable_live_jit`).

pub mod cache;
pub mod code_cache;
mod compiler;
pub mod links;
pub mod memory;
pub mod trace_code;
pub mod trial;
pub mod wasm_tier;

pub use cache::load_cache;
pub use code_cache::{CodeCache, CODE_CACHE_ENV};
pub use trace_code::{guest_info, Touches, TraceCode, TraceMeta};
pub use wasm_tier::{Backend, TierStats, TierStatsHandle, WasmtimeTier};
