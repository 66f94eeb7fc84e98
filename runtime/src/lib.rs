//! The tiers: cached trace, then live JIT, then the interpreter.
//!
//! To come (issue 5): load and check a cache library, dispatch hot anchors to cached
//! traces executed by wasmtime, live-JIT the traces the cache lacks, and fall back to
//! `trace-capture`'s interpreter. A run gives the same observable result on every tier.
