//! Why a cache library cannot be used, or written: each variant names the problem and
//! where it is (a file offset, a trace index, an export name) and what was expected.

use std::fmt;

use crate::error::EmitError;

/// Why [`super::CacheLibrary::read`] refused a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheError {
    /// The file is larger than [`super::MAX_CACHE_BYTES`].
    TooLarge { bytes: usize },
    /// The bytes are not a wasm module's structure (truncated, or damaged before the
    /// manifest could be found); wasmparser's message.
    Malformed { offset: usize, message: String },
    /// No `kiln.manifest` section: not a cache library (or cut off before its end).
    NoManifest,
    /// A second manifest section at `offset`.
    TwoManifests { offset: usize },
    /// The manifest section is not the last thing in the file.
    ManifestNotLast { offset: usize },
    /// The manifest's layout is another version than this kiln reads.
    FormatVersion { found: u32, expected: u32 },
    /// The checksum at the end of the manifest does not match the file: altered or
    /// damaged after it was written.
    Checksum { offset: usize },
    /// The manifest's bytes do not follow the layout at `offset` (file offset).
    BadManifest { offset: usize, expected: String },
    /// The manifest breaks a rule (`trace`: which trace, or `None` for the whole).
    ManifestRule { trace: Option<u32>, problem: String },
    /// Written by another kiln version: its traces' slots and pcs may mean other things.
    KilnVersion { found: String, expected: String },
    /// Built for another app (or another build of it).
    AppHash { found: String, expected: String },
    /// The module fails wasmparser's validation.
    InvalidModule(String),
    /// The module has a section a cache never has, at `offset`.
    UnexpectedSection { offset: usize, section: String },
    /// An import outside the ABI (`emit::abi`), or an ABI import of the wrong type.
    BadImport {
        offset: usize,
        import: String,
        problem: String,
    },
    /// The manifest lists trace `trace` but the module has no export `trace<i>` for it.
    EntryWithoutExport { trace: u32 },
    /// The module exports `name`, which no manifest entry describes.
    ExportWithoutEntry { name: String },
    /// Trace `trace`'s function has another type than `(i32) -> (i32)`.
    WrongFunctionType { trace: u32, found: String },
    /// The module's imports and the manifest disagree (`trace`, when one trace is at
    /// fault).
    Disagrees { trace: Option<u32>, problem: String },
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::TooLarge { bytes } => write!(
                f,
                "the file is {bytes} bytes, more than a cache may be ({} bytes)",
                super::MAX_CACHE_BYTES
            ),
            CacheError::Malformed { offset, message } => write!(
                f,
                "not a well-formed wasm module at offset {offset:#x}: {message} (truncated or damaged?)"
            ),
            CacheError::NoManifest => write!(
                f,
                "no `{}` section: not a kiln cache library, or cut off before its end",
                super::MANIFEST_SECTION
            ),
            CacheError::TwoManifests { offset } => write!(
                f,
                "a second `{}` section at offset {offset:#x}; a cache has exactly one",
                super::MANIFEST_SECTION
            ),
            CacheError::ManifestNotLast { offset } => write!(
                f,
                "a section follows the manifest at offset {offset:#x}; the manifest must end the file"
            ),
            CacheError::FormatVersion { found, expected } => write!(
                f,
                "cache format version {found}, this kiln reads version {expected}"
            ),
            CacheError::Checksum { offset } => write!(
                f,
                "the checksum at offset {offset:#x} does not match the file: it was altered or damaged after it was written"
            ),
            CacheError::BadManifest { offset, expected } => {
                write!(f, "bad manifest at offset {offset:#x}: expected {expected}")
            }
            CacheError::ManifestRule {
                trace: Some(trace),
                problem,
            } => write!(f, "manifest entry of trace {trace}: {problem}"),
            CacheError::ManifestRule {
                trace: None,
                problem,
            } => write!(f, "manifest: {problem}"),
            CacheError::KilnVersion { found, expected } => write!(
                f,
                "written by kiln {found}, this is kiln {expected}: traces are only good for the kiln that recorded them"
            ),
            CacheError::AppHash { found, expected } => write!(
                f,
                "built for another app: its module hash is {found}, the running app's is {expected}"
            ),
            CacheError::InvalidModule(e) => write!(f, "the module fails validation: {e}"),
            CacheError::UnexpectedSection { offset, section } => write!(
                f,
                "unexpected {section} at offset {offset:#x}: a cache holds only types, imports, trace functions, their exports and custom sections `name` and `{}`",
                super::MANIFEST_SECTION
            ),
            CacheError::BadImport {
                offset,
                import,
                problem,
            } => write!(f, "import {import} at offset {offset:#x}: {problem}"),
            CacheError::EntryWithoutExport { trace } => write!(
                f,
                "the manifest lists trace {trace}, but the module exports no `{}`",
                crate::abi::trace_export_name(*trace)
            ),
            CacheError::ExportWithoutEntry { name } => write!(
                f,
                "the module exports `{name}`, which no manifest entry describes"
            ),
            CacheError::WrongFunctionType { trace, found } => write!(
                f,
                "trace {trace}'s function has type {found}, expected (i32) -> (i32)"
            ),
            CacheError::Disagrees {
                trace: Some(trace),
                problem,
            } => write!(f, "trace {trace}: the manifest disagrees with the module: {problem}"),
            CacheError::Disagrees {
                trace: None,
                problem,
            } => write!(f, "the manifest disagrees with the module: {problem}"),
        }
    }
}

impl std::error::Error for CacheError {}

/// Why [`super::CacheWriter`] could not write a cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheWriteError {
    /// A trace could not be emitted.
    Emit(EmitError),
    /// The manifest would break a rule the reader checks.
    Rule { trace: Option<u32>, problem: String },
}

impl fmt::Display for CacheWriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheWriteError::Emit(e) => write!(f, "{e}"),
            CacheWriteError::Rule {
                trace: Some(trace),
                problem,
            } => write!(f, "trace {trace}: {problem}"),
            CacheWriteError::Rule {
                trace: None,
                problem,
            } => write!(f, "{problem}"),
        }
    }
}

impl std::error::Error for CacheWriteError {}

impl From<EmitError> for CacheWriteError {
    fn from(e: EmitError) -> Self {
        CacheWriteError::Emit(e)
    }
}
