//! Trace to wasm: function emission with wasm-encoder, and the cache library.
//!
//! To come (issue 5): a naive (1:1) and an optimized emission of each trace, and the
//! cache library writer and reader: one valid wasm module of trace functions plus a
//! manifest section. Everything it writes validates; the reader trusts nothing it reads.
