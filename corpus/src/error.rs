//! What can go wrong: [`CorpusError`] for an operation that failed, [`Problem`] for an
//! entry that a reader skipped.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::{RunId, TraceHash};

/// Why a corpus operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum CorpusError {
    /// A file-system operation failed.
    Io { path: PathBuf, source: io::Error },
    /// [`Corpus::open_existing`](crate::Corpus::open_existing) found no corpus there.
    Missing { path: PathBuf },
    /// The index is not a kiln corpus: not a SQLite database at all (garbage, or
    /// truncated below its header), a database SQLite finds malformed, or another
    /// program's database.
    NotACorpus { path: PathBuf, reason: String },
    /// The corpus was written by a newer kiln, with a schema this one does not know.
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// The corpus holds traces in another version of ir's binary form
    /// ([`ir::binary::VERSION`]) than this kiln reads.
    TraceFormat {
        path: PathBuf,
        found: String,
        supported: u8,
    },
    /// SQLite failed while doing `context`.
    Database {
        context: &'static str,
        source: rusqlite::Error,
    },
    /// Other writers held the corpus for longer than the retries wait
    /// ([`MAX_ATTEMPTS`](crate::MAX_ATTEMPTS)).
    Busy {
        context: &'static str,
        attempts: u32,
    },
    /// No run with this id.
    UnknownRun(RunId),
    /// A trace key that is not 1 to 64 hex digits.
    BadPrefix(String),
    /// No stored trace has this hash or prefix.
    NotFound(String),
    /// More than one stored trace begins with this prefix.
    Ambiguous {
        prefix: String,
        count: u64,
        examples: Vec<TraceHash>,
    },
    /// The entry asked for is stored but fails its check.
    Corrupt(Problem),
    /// Merging: two stores hold opposite decisive verdicts (proven against refuted) for
    /// one trace by one optimizer version. One of them is wrong, so nothing is merged.
    Conflict {
        trace: String,
        version: String,
        ours: String,
        theirs: String,
    },
}

impl fmt::Display for CorpusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorpusError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            CorpusError::Missing { path } => {
                write!(f, "{}: no corpus here (no {})", path.display(), crate::INDEX_FILE)
            }
            CorpusError::NotACorpus { path, reason } => {
                write!(f, "{}: not a usable kiln corpus: {reason}", path.display())
            }
            CorpusError::NewerSchema { path, found, supported } => write!(
                f,
                "{}: corpus schema version {found} is newer than this kiln supports ({supported}); \
                 use a newer kiln",
                path.display()
            ),
            CorpusError::TraceFormat { path, found, supported } => write!(
                f,
                "{}: the corpus holds traces in binary form version {found}, but this kiln reads version \
                 {supported}; record into a new corpus",
                path.display()
            ),
            CorpusError::Database { context, source } => write!(f, "corpus database error while {context}: {source}"),
            CorpusError::Busy { context, attempts } => write!(
                f,
                "corpus stayed locked by other writers while {context} ({attempts} attempts); try again"
            ),
            CorpusError::UnknownRun(run) => write!(f, "no run {run} in the corpus"),
            CorpusError::BadPrefix(prefix) => {
                write!(f, "`{prefix}` is not a trace hash or prefix (1 to 64 hex digits)")
            }
            CorpusError::NotFound(key) => write!(f, "no trace {key} in the corpus"),
            CorpusError::Ambiguous { prefix, count, examples } => {
                write!(f, "prefix {prefix} matches {count} traces:")?;
                for hash in examples {
                    write!(f, " {hash}")?;
                }
                if *count > examples.len() as u64 {
                    write!(f, " …")?;
                }
                Ok(())
            }
            CorpusError::Corrupt(problem) => write!(f, "corrupt corpus entry {problem}"),
            CorpusError::Conflict { trace, version, ours, theirs } => write!(
                f,
                "trace {trace} by optimizer {version} is {ours} here and {theirs} in the shard: \
                 one of them is wrong (a solver or kiln bug); nothing from this shard was merged"
            ),
        }
    }
}

impl std::error::Error for CorpusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CorpusError::Io { source, .. } => Some(source),
            CorpusError::Database { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An entry that failed its check, named by `id`: a trace's key (its hash as stored), a
/// run (`run 7`), or `database` for damage SQLite itself reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub id: String,
    pub kind: ProblemKind,
}

/// What is wrong with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// SQLite could not read the row.
    Unreadable(String),
    /// The key is not a content hash (64 lowercase hex digits).
    BadKey,
    /// The blob does not decode as a trace.
    Undecodable(String),
    /// The blob decodes, but to a trace with another content hash.
    HashMismatch { actual: TraceHash },
    /// The recorded size is not the blob's length (the blob itself checks out).
    SizeMismatch { recorded: u64, actual: u64 },
    /// A stored trace that no run recorded.
    NoProvenance,
    /// Provenance rows (a loop trace's `provenance` or a side trace's `side_traces` rows)
    /// naming a trace or run that is not stored.
    DanglingProvenance { rows: u64 },
    /// SQLite's integrity check reports damage to the database's structure.
    Database(String),
}

impl Problem {
    pub(crate) fn new(id: impl Into<String>, kind: ProblemKind) -> Problem {
        Problem {
            id: id.into(),
            kind,
        }
    }

    /// Whether the problem makes the entry unreadable: readers skip such entries.
    pub fn is_corrupt_trace(&self) -> bool {
        matches!(
            self.kind,
            ProblemKind::Unreadable(_)
                | ProblemKind::BadKey
                | ProblemKind::Undecodable(_)
                | ProblemKind::HashMismatch { .. }
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.id)?;
        match &self.kind {
            ProblemKind::Unreadable(why) => write!(f, "unreadable: {why}"),
            ProblemKind::BadKey => write!(f, "the key is not a content hash"),
            ProblemKind::Undecodable(why) => write!(f, "the blob does not decode: {why}"),
            ProblemKind::HashMismatch { actual } => {
                write!(
                    f,
                    "the blob decodes to a trace whose content hash is {actual}"
                )
            }
            ProblemKind::SizeMismatch { recorded, actual } => {
                write!(
                    f,
                    "recorded size {recorded} but the blob has {actual} bytes"
                )
            }
            ProblemKind::NoProvenance => write!(f, "no run recorded this trace"),
            ProblemKind::DanglingProvenance { rows } => {
                write!(
                    f,
                    "{rows} provenance rows refer to it, but it is not stored"
                )
            }
            ProblemKind::Database(why) => write!(f, "{why}"),
        }
    }
}
