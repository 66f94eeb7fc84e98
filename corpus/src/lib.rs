//! The corpus: kiln's content-addressed store of traces and optimization results.
//!
//! To come (issue 3): trace blobs keyed by their canonical content hash, deduplicated
//! across runs and apps, with provenance and hit counts beside them and an embedded
//! SQLite index; a crash at any moment loses no committed trace or result.
