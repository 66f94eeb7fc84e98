//! The schema and its migrations, and what every connection sets up when it opens.

use ir::binary;
use rusqlite::ffi::ErrorCode;
use rusqlite::{Connection, OptionalExtension};

use crate::retry::BUSY_TIMEOUT;
use crate::{Corpus, CorpusError};

/// The schema version this kiln reads and writes: the number of migrations.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// SQLite's `application_id` header field for a kiln corpus ("kiln" in ASCII), so that
/// another program's database is told apart from a corpus.
const APPLICATION_ID: i32 = 0x6b69_6c6e;

/// The migrations: entry `i` takes a corpus from schema version `i` to `i + 1`, version 0
/// being an empty database. A new schema version is a new entry at the end; entries
/// already released never change. Pending migrations are applied in one transaction
/// together with the new `schema_version`, so a corpus is always at some version whole.
const MIGRATIONS: &[&str] = &[
    // 1: traces, runs and provenance.
    "
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;

    -- One row per distinct trace. `hash` is the content hash in lowercase hex, `blob` the
    -- trace in ir's binary form, `size` the blob's length, `created` the Unix second it
    -- was first stored.
    CREATE TABLE traces (
        hash    TEXT PRIMARY KEY,
        blob    BLOB NOT NULL,
        size    INTEGER NOT NULL,
        created INTEGER NOT NULL
    ) STRICT;

    -- One row per recording run. `args` are the app's arguments, each followed by a NUL
    -- byte. `finished` stays null for a run that never finished.
    CREATE TABLE runs (
        id           INTEGER PRIMARY KEY,
        app          TEXT NOT NULL,
        module_hash  TEXT NOT NULL,
        started      INTEGER NOT NULL,
        finished     INTEGER,
        kiln_version TEXT NOT NULL,
        args         BLOB NOT NULL
    ) STRICT;

    -- Who recorded which trace where. One row per (trace, run, anchor): recording the
    -- same trace at the same anchor again in the same run adds to `hits`.
    CREATE TABLE provenance (
        id            INTEGER PRIMARY KEY,
        trace_hash    TEXT NOT NULL REFERENCES traces (hash),
        run_id        INTEGER NOT NULL REFERENCES runs (id),
        module_hash   TEXT NOT NULL,
        func_index    INTEGER NOT NULL,
        anchor_offset INTEGER NOT NULL,
        kind          TEXT NOT NULL CHECK (kind IN ('loop', 'entry')),
        hits          INTEGER NOT NULL,
        UNIQUE (trace_hash, run_id, module_hash, func_index, anchor_offset, kind)
    ) STRICT;

    CREATE INDEX provenance_by_run ON provenance (run_id);
    ",
    // 2: optimization results.
    "
    -- What one optimizer version concluded about one trace. `candidate` is the candidate
    -- in ir's binary form, null when the optimizer kept the recorded trace. Times are
    -- microseconds, `created` Unix seconds.
    CREATE TABLE results (
        trace_hash          TEXT NOT NULL REFERENCES traces (hash),
        optimizer_version   TEXT NOT NULL,
        verdict             TEXT NOT NULL
                            CHECK (verdict IN ('proven', 'refuted', 'unknown', 'failed')),
        reason              TEXT NOT NULL,
        candidate           BLOB,
        cost_before         INTEGER NOT NULL,
        cost_after          INTEGER NOT NULL,
        saturation_micros   INTEGER NOT NULL,
        verification_micros INTEGER NOT NULL,
        created             INTEGER NOT NULL,
        PRIMARY KEY (trace_hash, optimizer_version)
    ) STRICT;
    ",
    // 3: the apps' modules, so the nightly job can build caches from the corpus alone.
    "
    -- One row per distinct module a run recorded from. `hash` is the SHA-256 of `bytes`
    -- in lowercase hex (what runs.module_hash names), `created` the Unix second it was
    -- first stored.
    CREATE TABLE modules (
        hash    TEXT PRIMARY KEY,
        bytes   BLOB NOT NULL,
        size    INTEGER NOT NULL,
        created INTEGER NOT NULL
    ) STRICT;
    ",
    // 4: side traces, so a cache library can hold them too.
    "
    -- Where a run's tier linked a side trace: the place some trace's exit lands on.
    -- `pc` is in function `func_index`, or in the innermost of `calls` (the inlined calls
    -- the exit is inside: function, frame base, return pc, u32 little-endian each; empty
    -- for none). `expect` is the guard's expectation (0, 1), -1 for a trace's end. At a
    -- br_table, `arms` is its arm count and `arm` the one the side trace is for; `arms`
    -- 0 elsewhere (then `index_slot` and `arm` are 0). `offset` is the module offset of
    -- the instruction at the place, `passes` how often it ran. Sentinels rather than
    -- nulls, so that the UNIQUE key treats equal places as equal.
    CREATE TABLE side_traces (
        id          INTEGER PRIMARY KEY,
        trace_hash  TEXT NOT NULL REFERENCES traces (hash),
        run_id      INTEGER NOT NULL REFERENCES runs (id),
        module_hash TEXT NOT NULL,
        func_index  INTEGER NOT NULL,
        pc          INTEGER NOT NULL,
        calls       BLOB NOT NULL,
        expect      INTEGER NOT NULL CHECK (expect IN (-1, 0, 1)),
        index_slot  INTEGER NOT NULL,
        arms        INTEGER NOT NULL,
        arm         INTEGER NOT NULL,
        offset      INTEGER NOT NULL,
        passes      INTEGER NOT NULL,
        UNIQUE (trace_hash, run_id, module_hash, func_index, pc, calls, expect,
                index_slot, arms, arm)
    ) STRICT;

    CREATE INDEX side_traces_by_module ON side_traces (module_hash);
    ",
];

/// Sets up a freshly opened connection (busy timeout, WAL, durability, foreign keys) and
/// checks, creates or migrates the schema.
pub(crate) fn prepare(corpus: &Corpus) -> Result<(), CorpusError> {
    let conn = &corpus.conn;
    let setup = |source| damaged(corpus, "setting up the connection", source);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(setup)?;
    // Switching a new database to WAL takes a lock; later opens find it in WAL already
    // (the mode is persistent) and take none. Should the file system refuse WAL (no
    // shared memory), SQLite stays in rollback-journal mode, which keeps every guarantee
    // but lets a writer block readers: acceptable, so not checked.
    corpus.with_retry("switching the index to WAL mode", |conn| {
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(setup)
    })?;
    // FULL: in WAL mode, NORMAL may lose the last commits on power loss; a corpus commit
    // is a recording run's work, worth one fsync.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(setup)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(setup)?;

    let version = corpus.read("reading the schema version", |conn| {
        read_version(corpus, conn)
    })?;
    if version > SCHEMA_VERSION {
        return Err(CorpusError::NewerSchema {
            path: corpus.index_path(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version < SCHEMA_VERSION {
        corpus.write("creating or migrating the schema", |conn| {
            // Another process may have migrated since we looked.
            let version = read_version(corpus, conn)?;
            if version > SCHEMA_VERSION {
                return Err(CorpusError::NewerSchema {
                    path: corpus.index_path(),
                    found: version,
                    supported: SCHEMA_VERSION,
                });
            }
            let migrate = |source| CorpusError::Database {
                context: "migrating the schema",
                source,
            };
            for sql in &MIGRATIONS[version as usize..] {
                conn.execute_batch(sql).map_err(migrate)?;
            }
            conn.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(migrate)?;
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [SCHEMA_VERSION.to_string()],
            )
            .map_err(migrate)?;
            if version == 0 {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('trace_format', ?1)",
                    [binary::VERSION.to_string()],
                )
                .map_err(migrate)?;
            }
            Ok(())
        })?;
    }
    check_trace_format(corpus)
}

/// Refuses a corpus whose blobs are in another version of ir's binary form than this
/// kiln's: `decode` reads only its own version, and the content hash is taken over that
/// form, so every entry would look corrupt.
fn check_trace_format(corpus: &Corpus) -> Result<(), CorpusError> {
    let found: Option<String> = corpus.read("reading the trace format", |conn| {
        conn.query_row(
            "SELECT value FROM meta WHERE key = 'trace_format'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|source| damaged(corpus, "reading the trace format", source))
    })?;
    let path = corpus.index_path();
    let found = found.ok_or_else(|| CorpusError::NotACorpus {
        path: path.clone(),
        reason: "its meta table has no trace_format".into(),
    })?;
    match found.parse::<u8>() {
        Ok(v) if v == binary::VERSION => Ok(()),
        _ => Err(CorpusError::TraceFormat {
            path,
            found,
            supported: binary::VERSION,
        }),
    }
}

/// The schema version of the database: 0 if it is empty.
fn read_version(corpus: &Corpus, conn: &Connection) -> Result<u32, CorpusError> {
    let read = |source| damaged(corpus, "reading the schema version", source);
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(read)?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(read)?;
    if app_id == 0 && objects == 0 {
        return Ok(0);
    }
    let not_a_corpus = |reason: String| CorpusError::NotACorpus {
        path: corpus.index_path(),
        reason,
    };
    if app_id != APPLICATION_ID {
        return Err(not_a_corpus(format!(
            "a SQLite database of another program (application id {app_id:#x})"
        )));
    }
    let value: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(read)?;
    let value = value.ok_or_else(|| not_a_corpus("its meta table has no schema_version".into()))?;
    value
        .parse()
        .map_err(|_| not_a_corpus(format!("its schema_version `{value}` is not a number")))
}

/// Maps SQLite's "this is no database" answers to [`CorpusError::NotACorpus`].
fn damaged(corpus: &Corpus, context: &'static str, source: rusqlite::Error) -> CorpusError {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => CorpusError::NotACorpus {
            path: corpus.index_path(),
            reason: source.to_string(),
        },
        _ => CorpusError::Database { context, source },
    }
}
