//! The corpus: kiln's content-addressed store of recorded traces, fed by many runs of
//! many apps, read by the optimizer, the reports and `kiln corpus`.
//!
//! A corpus is a directory holding one SQLite database, `corpus.sqlite` (plus SQLite's
//! `-wal` and `-shm` files while it is open). Each trace is stored once, keyed by its
//! content hash ([`ir::hash::content_hash`], written as 64 lowercase hex digits) and held
//! in `ir`'s binary form ([`ir::binary`]). Beside it, every run that produced it leaves
//! a provenance row: which module, function and anchor, which run, how many hits. Hit
//! counts therefore add up across runs and apps, and a trace lists every app and run that
//! recorded it. (The content hash is taken over a canonical form, so two recordings of the
//! same path whose values are numbered differently are one trace; the first blob stored
//! is kept.)
//!
//! ```no_run
//! # fn demo(trace: ir::Trace, provenance: ir::Provenance) -> Result<(), corpus::CorpusError> {
//! let mut corpus = corpus::Corpus::open("kiln-corpus")?;
//! let run = corpus.begin_run("crc32", &provenance.module_hash, &["crc32.wasm", "big.bin"])?;
//! let added = corpus.add_traces(run, &[(trace, provenance)])?;
//! corpus.finish_run(run)?;
//! println!("{} new, {} already known", added.new, added.existing);
//! for entry in corpus.iter_traces()? {
//!     match entry {
//!         Ok(entry) => println!("{} {} instructions", entry.hash, entry.trace.body.len()),
//!         Err(problem) => eprintln!("skipped {problem}"),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Where the blobs live: in SQLite
//!
//! Trace blobs are a column of the `traces` table, not files beside the index. Traces are
//! small (tens to a few thousand bytes), and for blobs that size SQLite reads and writes
//! faster than one file each would. What decides it, though, is the guarantee: with the
//! blob in the same row as its key, the blob and every index row that mentions it are
//! committed by one SQLite transaction. There is no window in which an index row points
//! to a file that is not yet (or no longer) there, no temporary file to fsync and rename,
//! no directory to fsync, and no orphan file left by a killed writer to collect later. A
//! corpus is one file to copy or back up (after a checkpoint, or with SQLite's backup).
//!
//! The price: with a file per blob, a failing disk could only ever spoil single blobs,
//! while in one database it may also hit a page of SQLite's own structure, making a range
//! of rows (or a whole aggregate query) unreadable. Readers then fail with a clear
//! [`CorpusError::Database`] ("database disk image is malformed") rather than inventing
//! data, the rows on intact pages stay readable, and [`Corpus::verify`] reports the
//! damage from SQLite's integrity check.
//!
//! # What is guaranteed
//!
//! - **A crash at any moment loses no committed trace.** Every change is one SQLite
//!   transaction in WAL mode with `synchronous = FULL`, so a commit is on disk when the
//!   call returns, and a process killed mid-write leaves the corpus as of its last commit:
//!   [`Corpus::add_traces`] stores a whole batch or nothing of it.
//! - **Several processes may write at once and lose nothing.** Writers take SQLite's
//!   write lock up front (`BEGIN IMMEDIATE`; traces are encoded and hashed before, so the
//!   lock is held only for the inserts), wait for it (`busy_timeout`), and when SQLite
//!   still answers `SQLITE_BUSY` start the transaction over after a bounded, jittered
//!   backoff (the constants in `retry.rs` say how long and why). Readers never block
//!   writers, nor writers readers.
//! - **A corrupt entry is reported by its key and skipped; the rest stays readable.** A
//!   blob is checked every time it is read: it must decode and its content hash must be
//!   its key. Every reader applies the check: [`Corpus::get`] returns
//!   [`CorpusError::Corrupt`], [`Corpus::iter_traces`] yields an `Err(`[`Problem`]`)` for
//!   the entry and goes on, [`Corpus::list`] and [`Corpus::stats`] leave the entry out of
//!   their counts and list it among their problems. Adding the same trace again repairs
//!   the entry. [`Corpus::verify`] checks everything, SQLite's own structure included.
//! - **Files that are not a corpus are refused clearly**: garbage, a truncated database,
//!   another program's SQLite database ([`CorpusError::NotACorpus`]), a corpus written by
//!   a newer kiln ([`CorpusError::NewerSchema`]), a corpus of traces in another binary
//!   form ([`CorpusError::TraceFormat`]).
//!
//! # Schema
//!
//! `meta(key, value)` holds `schema_version` and `trace_format`, the version of ir's
//! binary form the blobs are in ([`ir::binary::VERSION`]; a corpus in another is refused
//! with [`CorpusError::TraceFormat`], since every blob would fail to decode).
//! `schema.rs` holds the migrations, a list in which entry *i* takes a corpus from
//! version *i* to *i + 1*; the pending ones are applied in one transaction with the new
//! version. The tables of version 1:
//!
//! - `traces(hash, blob, size, created)`: one row per distinct trace.
//! - `runs(id, app, module_hash, started, finished, kiln_version, args)`: one row per
//!   recording run; `finished` is set by [`Corpus::finish_run`] and stays null for a run
//!   that died.
//! - `provenance(trace_hash, run_id, module_hash, func_index, anchor_offset, kind, hits)`:
//!   who recorded which trace where; unique per (trace, run, anchor), so recording the
//!   same trace at the same anchor twice in one run adds the hits up.
//!
//! Version 2 adds optimization results:
//!
//! - `results(trace_hash, optimizer_version, verdict, reason, candidate, cost_before,
//!   cost_after, saturation_micros, verification_micros, created)`: one row per (trace,
//!   optimizer version); `candidate` is the candidate in ir's binary form, null when it is
//!   the recorded trace. See [`Corpus::put_result`].
//!
//! Version 3 adds `modules(hash, bytes, size, created)`, the apps' modules. Version 4
//! adds side traces:
//!
//! - `side_traces(trace_hash, run_id, module_hash, func_index, pc, calls, expect,
//!   index_slot, arms, arm, offset, passes)`: where a run's tier linked a side trace (the
//!   place an exit lands on: pc, inlined calls, the guard's expectation, the `br_table`
//!   arm); unique per (trace, run, place), so passes add up. A trace with a side row and
//!   no provenance row is no orphan. See [`Corpus::add_side_traces`] and
//!   [`Corpus::side_traces_of`].

mod error;
mod merge;
mod modules;
mod read;
mod results;
mod retry;
mod schema;
mod sides;
mod write;

use std::cell::Cell;
use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

pub use error::{CorpusError, Problem, ProblemKind};
pub use ir::hash::TraceHash;
pub use merge::MergeSummary;
pub use read::TraceIter;
pub use results::{OptimizationResult, StoredResult, Verdict};
pub use retry::{BACKOFF_FIRST, BACKOFF_MAX, BUSY_TIMEOUT, MAX_ATTEMPTS};
pub use schema::SCHEMA_VERSION;
pub use sides::{SideListing, SideRecord};

/// The name of the index database inside a corpus directory.
pub const INDEX_FILE: &str = "corpus.sqlite";

/// The kiln version recorded with each run: the workspace's version, which all of kiln's
/// crates share.
pub const KILN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// An open corpus. Reads take `&self`, writes `&mut self`; open one per thread or process
/// (a `Corpus` is `Send` but not `Sync`), as many as you like on the same directory.
pub struct Corpus {
    dir: PathBuf,
    conn: Connection,
    /// How often a transaction was started over after `SQLITE_BUSY`.
    busy_retries: Cell<u64>,
}

/// A recording run, numbered by the corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What one [`Corpus::add_traces`] call did, counted per item given: `new + existing ==
/// items.len()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddSummary {
    /// Traces the corpus did not hold before (a trace given twice counts as new once).
    pub new: usize,
    /// Traces already held; their provenance and hits were added.
    pub existing: usize,
    /// Of the existing ones, entries whose stored blob was corrupt and was replaced by
    /// the one given.
    pub repaired: usize,
}

/// A corpus in numbers. Entries that fail their check are left out of every count and
/// listed in `problems`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Distinct readable traces.
    pub traces: u64,
    /// Recording runs, finished or not.
    pub runs: u64,
    /// Runs that never called [`Corpus::finish_run`] (still going, or died).
    pub unfinished_runs: u64,
    /// Distinct app names among the runs.
    pub apps: u64,
    /// Provenance rows of the readable traces.
    pub provenance: u64,
    /// Hits summed over the provenance of the readable traces.
    pub total_hits: u64,
    /// `side_traces` rows: (side trace, run, place) triples (see [`Corpus::side_traces_of`]).
    pub side_places: u64,
    /// Bytes of the readable traces' blobs.
    pub trace_bytes: u64,
    /// Bytes of the corpus on disk (`corpus.sqlite` and its write-ahead log).
    pub file_bytes: u64,
    /// The entries skipped because they failed their check.
    pub problems: Vec<Problem>,
}

/// One line of [`Corpus::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSummary {
    pub hash: TraceHash,
    /// Hits summed over every provenance row.
    pub total_hits: u64,
    /// Length of the trace body in instructions.
    pub insts: usize,
    /// Bytes of the stored blob.
    pub bytes: u64,
    /// Number of provenance rows: (run, anchor) pairs that recorded it.
    pub provenance: u64,
    /// The distinct apps whose runs recorded it, sorted.
    pub apps: Vec<String>,
    /// When the trace was first stored, Unix seconds.
    pub created: i64,
}

/// [`Corpus::list`]'s answer: the readable traces, hottest first (by total hits, then by
/// hash), and the entries skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub traces: Vec<TraceSummary>,
    pub problems: Vec<Problem>,
}

/// A trace read back and checked, as [`Corpus::iter_traces`] yields it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub hash: TraceHash,
    pub trace: ir::Trace,
    /// Bytes of the stored blob.
    pub bytes: u64,
    /// When the trace was first stored, Unix seconds.
    pub created: i64,
}

/// A trace with everything the corpus knows about it, as [`Corpus::get`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTrace {
    pub hash: TraceHash,
    pub trace: ir::Trace,
    pub bytes: u64,
    pub created: i64,
    /// Every recording of it, ordered by run, then function, anchor offset and kind.
    pub provenance: Vec<ProvenanceRecord>,
}

impl StoredTrace {
    /// Hits summed over every recording.
    pub fn total_hits(&self) -> u64 {
        self.provenance.iter().map(|p| p.provenance.hits).sum()
    }
}

/// One recording of a trace: the run that made it and where in the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceRecord {
    pub run: RunId,
    /// The run's app name.
    pub app: String,
    pub provenance: ir::Provenance,
}

/// A recording run, as [`Corpus::runs`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    pub id: RunId,
    pub app: String,
    /// Hex SHA-256 of the app's module.
    pub module_hash: String,
    /// Unix seconds.
    pub started: i64,
    /// Unix seconds; `None` if the run never finished.
    pub finished: Option<i64>,
    pub kiln_version: String,
    pub args: Vec<String>,
    /// Provenance rows the run left (traces it recorded, per anchor).
    pub traces: u64,
}

/// Which trace [`Corpus::get`] should read: a full hash, or hex digits that begin exactly
/// one stored hash.
#[derive(Debug, Clone, Copy)]
pub enum TraceKey<'a> {
    Hash(&'a TraceHash),
    Prefix(&'a str),
}

impl<'a> From<&'a TraceHash> for TraceKey<'a> {
    fn from(hash: &'a TraceHash) -> Self {
        TraceKey::Hash(hash)
    }
}

impl<'a> From<&'a str> for TraceKey<'a> {
    fn from(prefix: &'a str) -> Self {
        TraceKey::Prefix(prefix)
    }
}

impl<'a> From<&'a String> for TraceKey<'a> {
    fn from(prefix: &'a String) -> Self {
        TraceKey::Prefix(prefix)
    }
}

impl Corpus {
    /// Opens the corpus in `dir`, creating the directory and an empty corpus if absent,
    /// and bringing an older schema up to date.
    pub fn open(dir: impl AsRef<Path>) -> Result<Corpus, CorpusError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| CorpusError::Io {
            path: dir.to_owned(),
            source,
        })?;
        Corpus::open_index(dir, OpenFlags::SQLITE_OPEN_CREATE)
    }

    /// Opens the corpus in `dir`, which must exist: for readers, where creating an empty
    /// corpus at a mistyped path would only hide the mistake.
    pub fn open_existing(dir: impl AsRef<Path>) -> Result<Corpus, CorpusError> {
        let dir = dir.as_ref();
        if !dir.join(INDEX_FILE).is_file() {
            return Err(CorpusError::Missing {
                path: dir.to_owned(),
            });
        }
        Corpus::open_index(dir, OpenFlags::empty())
    }

    fn open_index(dir: &Path, create: OpenFlags) -> Result<Corpus, CorpusError> {
        let path = dir.join(INDEX_FILE);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | create;
        let conn =
            Connection::open_with_flags(&path, flags).map_err(|source| CorpusError::Database {
                context: "opening the index",
                source,
            })?;
        let corpus = Corpus {
            dir: dir.to_owned(),
            conn,
            busy_retries: Cell::new(0),
        };
        schema::prepare(&corpus)?;
        Ok(corpus)
    }

    /// The corpus directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index database's path.
    pub fn index_path(&self) -> PathBuf {
        self.dir.join(INDEX_FILE)
    }

    /// How often this handle started a transaction over after `SQLITE_BUSY` (a measure of
    /// contention between writers; see [`MAX_ATTEMPTS`]).
    pub fn busy_retries(&self) -> u64 {
        self.busy_retries.get()
    }
}
