//! Reading: every blob read is checked (it decodes, and its content hash is its key), and
//! an entry that fails is reported as a [`Problem`] and skipped.

use std::collections::HashMap;

use ir::binary;
use ir::hash::content_hash;
use ir::{Provenance, Trace};
use rusqlite::{Connection, OptionalExtension};

use crate::retry::is_busy;
use crate::write::anchor_kind;
use crate::{
    Corpus, CorpusError, Entry, Listing, Problem, ProblemKind, ProvenanceRecord, RunId, RunInfo,
    Stats, StoredTrace, TraceHash, TraceKey, TraceSummary,
};

/// How many matching hashes [`CorpusError::Ambiguous`] shows.
const AMBIGUOUS_EXAMPLES: usize = 5;

/// Checks a stored entry: `key` must be a content hash, `blob` must decode, and the
/// decoded trace's content hash must be `key`.
pub(crate) fn check(key: &str, blob: &[u8]) -> Result<(TraceHash, Trace), ProblemKind> {
    let hash = parse_key(key).ok_or(ProblemKind::BadKey)?;
    let trace = binary::decode(blob).map_err(|e| ProblemKind::Undecodable(e.to_string()))?;
    let actual = content_hash(&trace);
    if actual != hash {
        return Err(ProblemKind::HashMismatch { actual });
    }
    Ok((hash, trace))
}

/// A key as the corpus writes it: 64 lowercase hex digits.
fn parse_key(key: &str) -> Option<TraceHash> {
    let canonical = key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if canonical {
        key.parse().ok()
    } else {
        None
    }
}

/// One entry read back.
pub(crate) enum Loaded {
    Missing,
    Good(Entry),
    Bad(Problem),
}

/// Reads and checks the entry `key`. The error is for `SQLITE_BUSY` only, to be retried;
/// anything else wrong with the entry is a [`Problem`].
pub(crate) fn load(conn: &Connection, key: &str) -> Result<Loaded, CorpusError> {
    let row = conn
        .prepare_cached("SELECT blob, created FROM traces WHERE hash = ?1")
        .and_then(|mut s| {
            s.query_row([key], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()
        });
    let (blob, created) = match row {
        Ok(Some(row)) => row,
        Ok(None) => return Ok(Loaded::Missing),
        Err(source) if is_busy(&source) => {
            return Err(CorpusError::Database {
                context: "reading a trace",
                source,
            })
        }
        Err(e) => {
            return Ok(Loaded::Bad(Problem::new(
                key,
                ProblemKind::Unreadable(e.to_string()),
            )))
        }
    };
    Ok(match check(key, &blob) {
        Ok((hash, trace)) => Loaded::Good(Entry {
            hash,
            trace,
            bytes: blob.len() as u64,
            created,
        }),
        Err(kind) => Loaded::Bad(Problem::new(key, kind)),
    })
}

/// Every stored key, in order.
fn keys(conn: &Connection) -> Result<Vec<String>, CorpusError> {
    let db = |source| CorpusError::Database {
        context: "listing traces",
        source,
    };
    let mut stmt = conn
        .prepare_cached("SELECT hash FROM traces ORDER BY hash")
        .map_err(db)?;
    let keys = stmt
        .query_map([], |r| r.get(0))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    Ok(keys)
}

/// Reads and checks every entry, handing the good ones to `each` and returning the
/// problems.
fn scan(conn: &Connection, mut each: impl FnMut(Entry)) -> Result<Vec<Problem>, CorpusError> {
    let mut problems = Vec::new();
    for key in keys(conn)? {
        match load(conn, &key)? {
            Loaded::Good(entry) => each(entry),
            Loaded::Bad(problem) => problems.push(problem),
            Loaded::Missing => {}
        }
    }
    Ok(problems)
}

/// Per trace key: provenance rows and summed hits.
fn provenance_totals(
    conn: &Connection,
    context: &'static str,
) -> Result<HashMap<String, (u64, u64)>, CorpusError> {
    let db = |source| CorpusError::Database { context, source };
    let mut stmt = conn
        .prepare_cached(
            "SELECT trace_hash, count(*), sum(hits) FROM provenance GROUP BY trace_hash",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (r.get::<_, u64>(1)?, r.get::<_, u64>(2)?),
            ))
        })
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

/// The iterator of [`Corpus::iter_traces`].
pub struct TraceIter<'c> {
    corpus: &'c Corpus,
    keys: std::vec::IntoIter<String>,
}

impl Iterator for TraceIter<'_> {
    type Item = Result<Entry, Problem>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let key = self.keys.next()?;
            return Some(
                match self
                    .corpus
                    .with_retry("reading a trace", |conn| load(conn, &key))
                {
                    Ok(Loaded::Good(entry)) => Ok(entry),
                    Ok(Loaded::Bad(problem)) => Err(problem),
                    // Entries are never deleted, but be lenient.
                    Ok(Loaded::Missing) => continue,
                    Err(e) => Err(Problem::new(key, ProblemKind::Unreadable(e.to_string()))),
                },
            );
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.keys.len()))
    }
}

impl Corpus {
    /// Every trace stored when the call is made, in hash order, each read and checked as
    /// the iterator reaches it: `Ok` for a good entry, `Err` naming an entry that fails
    /// its check (and that iteration skips). The error is for failing to list the
    /// entries at all.
    pub fn iter_traces(&self) -> Result<TraceIter<'_>, CorpusError> {
        let keys = self.read("listing traces", keys)?;
        Ok(TraceIter {
            corpus: self,
            keys: keys.into_iter(),
        })
    }

    /// The corpus in numbers, from one snapshot. Reads and checks every entry.
    pub fn stats(&self) -> Result<Stats, CorpusError> {
        const CONTEXT: &str = "computing statistics";
        let db = |source| CorpusError::Database {
            context: CONTEXT,
            source,
        };
        let mut stats = self.read(CONTEXT, |conn| {
            let totals = provenance_totals(conn, CONTEXT)?;
            let mut stats = Stats::default();
            stats.problems = scan(conn, |entry| {
                let (rows, hits) = totals
                    .get(&entry.hash.to_string())
                    .copied()
                    .unwrap_or_default();
                stats.traces += 1;
                stats.trace_bytes += entry.bytes;
                stats.provenance += rows;
                stats.total_hits += hits;
            })?;
            let (runs, unfinished, apps) = conn
                .query_row(
                    "SELECT count(*), count(*) - count(finished), count(DISTINCT app) FROM runs",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(db)?;
            (stats.runs, stats.unfinished_runs, stats.apps) = (runs, unfinished, apps);
            stats.side_places = conn
                .query_row("SELECT count(*) FROM side_traces", [], |r| r.get(0))
                .map_err(db)?;
            Ok(stats)
        })?;
        for suffix in ["", "-wal"] {
            let path = self.dir().join(format!("{}{suffix}", crate::INDEX_FILE));
            stats.file_bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        }
        Ok(stats)
    }

    /// Every readable trace with its totals, hottest first (by total hits, then hash),
    /// from one snapshot, and the entries skipped. Reads and checks every entry.
    pub fn list(&self) -> Result<Listing, CorpusError> {
        const CONTEXT: &str = "listing traces";
        let db = |source| CorpusError::Database {
            context: CONTEXT,
            source,
        };
        let mut listing = self.read(CONTEXT, |conn| {
            let totals = provenance_totals(conn, CONTEXT)?;
            let mut apps: HashMap<String, Vec<String>> = HashMap::new();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT DISTINCT p.trace_hash, r.app FROM provenance p JOIN runs r ON r.id = p.run_id
                     ORDER BY p.trace_hash, r.app",
                )
                .map_err(db)?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(db)?;
            for row in rows {
                let (hash, app) = row.map_err(db)?;
                apps.entry(hash).or_default().push(app);
            }
            let mut listing = Listing::default();
            listing.problems = scan(conn, |entry| {
                let key = entry.hash.to_string();
                let (provenance, total_hits) = totals.get(&key).copied().unwrap_or_default();
                listing.traces.push(TraceSummary {
                    hash: entry.hash,
                    total_hits,
                    insts: entry.trace.body.len(),
                    bytes: entry.bytes,
                    provenance,
                    apps: apps.remove(&key).unwrap_or_default(),
                    created: entry.created,
                });
            })?;
            Ok(listing)
        })?;
        listing
            .traces
            .sort_by(|a, b| b.total_hits.cmp(&a.total_hits).then(a.hash.cmp(&b.hash)));
        Ok(listing)
    }

    /// The full hash of the one stored trace whose hash begins with `prefix` (1 to 64 hex
    /// digits, either case).
    pub fn resolve(&self, prefix: &str) -> Result<TraceHash, CorpusError> {
        let prefix = prefix.to_ascii_lowercase();
        if prefix.is_empty() || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(CorpusError::BadPrefix(prefix));
        }
        const CONTEXT: &str = "looking up a trace";
        let db = |source| CorpusError::Database {
            context: CONTEXT,
            source,
        };
        // Every key is lowercase hex, and `g` sorts after every hex digit: the keys that
        // begin with `prefix` are exactly those in [prefix, prefix + "g").
        let end = format!("{prefix}g");
        let (matches, count) = self.read(CONTEXT, |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT hash FROM traces WHERE hash >= ?1 AND hash < ?2 ORDER BY hash LIMIT ?3",
                )
                .map_err(db)?;
            let matches: Vec<String> = stmt
                .query_map(
                    rusqlite::params![prefix, end, AMBIGUOUS_EXAMPLES as i64],
                    |r| r.get(0),
                )
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?;
            let count: u64 = if matches.len() > 1 {
                conn.query_row(
                    "SELECT count(*) FROM traces WHERE hash >= ?1 AND hash < ?2",
                    [&prefix, &end],
                    |r| r.get(0),
                )
                .map_err(db)?
            } else {
                matches.len() as u64
            };
            Ok((matches, count))
        })?;
        match matches.as_slice() {
            [] => Err(CorpusError::NotFound(prefix)),
            [key] => parse_key(key).ok_or_else(|| {
                CorpusError::Corrupt(Problem::new(key.clone(), ProblemKind::BadKey))
            }),
            _ => Err(CorpusError::Ambiguous {
                prefix,
                count,
                examples: matches.iter().filter_map(|k| parse_key(k)).collect(),
            }),
        }
    }

    /// One trace, checked, with every recording of it. `key` is a [`TraceHash`] or a
    /// string of hex digits that begins exactly one stored hash (see [`Corpus::resolve`]).
    pub fn get<'k>(&self, key: impl Into<TraceKey<'k>>) -> Result<StoredTrace, CorpusError> {
        let key = match key.into() {
            TraceKey::Hash(hash) => hash.to_string(),
            TraceKey::Prefix(prefix) => self.resolve(prefix)?.to_string(),
        };
        const CONTEXT: &str = "reading a trace";
        let db = |source| CorpusError::Database {
            context: CONTEXT,
            source,
        };
        self.read(CONTEXT, |conn| {
            let entry = match load(conn, &key)? {
                Loaded::Good(entry) => entry,
                Loaded::Bad(problem) => return Err(CorpusError::Corrupt(problem)),
                Loaded::Missing => return Err(CorpusError::NotFound(key.clone())),
            };
            let mut stmt = conn
                .prepare_cached(
                    "SELECT p.run_id, r.app, p.module_hash, p.func_index, p.anchor_offset, p.kind, p.hits
                     FROM provenance p JOIN runs r ON r.id = p.run_id
                     WHERE p.trace_hash = ?1
                     ORDER BY p.run_id, p.func_index, p.anchor_offset, p.kind, p.module_hash",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([&key], |r| {
                    let kind: String = r.get(5)?;
                    let kind = anchor_kind(&kind).ok_or_else(|| {
                        rusqlite::Error::FromSqlConversionFailure(
                            5,
                            rusqlite::types::Type::Text,
                            format!("unknown anchor kind `{kind}`").into(),
                        )
                    })?;
                    Ok(ProvenanceRecord {
                        run: RunId(r.get(0)?),
                        app: r.get(1)?,
                        provenance: Provenance {
                            module_hash: r.get(2)?,
                            func_index: r.get(3)?,
                            anchor_offset: r.get(4)?,
                            kind,
                            hits: r.get(6)?,
                        },
                    })
                })
                .map_err(db)?;
            let provenance = rows.collect::<Result<_, _>>().map_err(db)?;
            Ok(StoredTrace {
                hash: entry.hash,
                trace: entry.trace,
                bytes: entry.bytes,
                created: entry.created,
                provenance,
            })
        })
    }

    /// Every run, in the order they began.
    pub fn runs(&self) -> Result<Vec<RunInfo>, CorpusError> {
        const CONTEXT: &str = "listing runs";
        let db = |source| CorpusError::Database {
            context: CONTEXT,
            source,
        };
        self.read(CONTEXT, |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT r.id, r.app, r.module_hash, r.started, r.finished, r.kiln_version, r.args,
                            (SELECT count(*) FROM provenance p WHERE p.run_id = r.id)
                     FROM runs r ORDER BY r.id",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([], |r| {
                    let args: Vec<u8> = r.get(6)?;
                    Ok(RunInfo {
                        id: RunId(r.get(0)?),
                        app: r.get(1)?,
                        module_hash: r.get(2)?,
                        started: r.get(3)?,
                        finished: r.get(4)?,
                        kiln_version: r.get(5)?,
                        args: unpack_args(&args),
                        traces: r.get(7)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    /// Checks everything: SQLite's own structure (`PRAGMA integrity_check`), every entry
    /// as the readers do, recorded sizes, and that every trace has provenance and every
    /// provenance row a trace and a run. An empty list is a healthy corpus. The error is
    /// for failing to check at all.
    pub fn verify(&self) -> Result<Vec<Problem>, CorpusError> {
        self.with_retry("verifying the corpus", |conn| {
            let mut problems = Vec::new();
            // A check that SQLite cannot even run is itself a finding.
            let mut found = |check: &str,
                             result: Result<Vec<Problem>, CorpusError>|
             -> Result<(), CorpusError> {
                match result {
                    Ok(mut more) => problems.append(&mut more),
                    Err(CorpusError::Database { source, .. }) if is_busy(&source) => {
                        return Err(CorpusError::Database {
                            context: "verifying the corpus",
                            source,
                        })
                    }
                    Err(CorpusError::Database { source, .. }) => problems.push(Problem::new(
                        "database",
                        ProblemKind::Database(format!("{check}: {source}")),
                    )),
                    Err(e) => problems.push(Problem::new(
                        "database",
                        ProblemKind::Database(format!("{check}: {e}")),
                    )),
                }
                Ok(())
            };
            found("integrity check", integrity(conn))?;
            found("reading every trace", scan(conn, |_| {}))?;
            found(
                "checking sizes",
                query_problems(
                    conn,
                    "SELECT hash, size, length(blob) FROM traces WHERE size != length(blob)",
                    |r| {
                        let kind = ProblemKind::SizeMismatch {
                            recorded: r.get(1)?,
                            actual: r.get(2)?,
                        };
                        Ok(Problem::new(r.get::<_, String>(0)?, kind))
                    },
                ),
            )?;
            found(
                "checking that every trace has provenance",
                query_problems(
                    conn,
                    "SELECT hash FROM traces t
                     WHERE NOT EXISTS (SELECT 1 FROM provenance p WHERE p.trace_hash = t.hash)
                       AND NOT EXISTS (SELECT 1 FROM side_traces s WHERE s.trace_hash = t.hash)",
                    |r| {
                        Ok(Problem::new(
                            r.get::<_, String>(0)?,
                            ProblemKind::NoProvenance,
                        ))
                    },
                ),
            )?;
            // Both tables of provenance (a loop trace's, a side trace's place) name a
            // stored trace and a stored run.
            for (table, rows_name) in [
                ("provenance", "provenance names"),
                ("side_traces", "side traces name"),
            ] {
                found(
                    &format!("checking that {rows_name} stored traces"),
                    dangling_traces(conn, table),
                )?;
                found(
                    &format!("checking that {rows_name} stored runs"),
                    dangling_runs(conn, table),
                )?;
            }
            Ok(problems)
        })
    }
}

/// Rows of `table` (`provenance` or `side_traces`) naming a trace that is not stored, as
/// one problem per trace.
fn dangling_traces(conn: &Connection, table: &str) -> Result<Vec<Problem>, CorpusError> {
    let sql = format!(
        "SELECT trace_hash, count(*) FROM {table} p
         WHERE NOT EXISTS (SELECT 1 FROM traces t WHERE t.hash = p.trace_hash)
         GROUP BY trace_hash"
    );
    query_problems(conn, &sql, |r| {
        let kind = ProblemKind::DanglingProvenance { rows: r.get(1)? };
        Ok(Problem::new(r.get::<_, String>(0)?, kind))
    })
}

/// Rows of `table` (`provenance` or `side_traces`) naming a run that is not stored, as
/// one problem per run.
fn dangling_runs(conn: &Connection, table: &str) -> Result<Vec<Problem>, CorpusError> {
    let sql = format!(
        "SELECT run_id, count(*) FROM {table} p
         WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = p.run_id)
         GROUP BY run_id"
    );
    query_problems(conn, &sql, |r| {
        let kind = ProblemKind::DanglingProvenance { rows: r.get(1)? };
        Ok(Problem::new(format!("run {}", r.get::<_, i64>(0)?), kind))
    })
}

/// SQLite's integrity check, as problems.
fn integrity(conn: &Connection) -> Result<Vec<Problem>, CorpusError> {
    let messages: Vec<String> = query_rows(conn, "PRAGMA integrity_check", |r| r.get(0))?;
    Ok(messages
        .into_iter()
        .filter(|m| m != "ok")
        .map(|m| Problem::new("database", ProblemKind::Database(m)))
        .collect())
}

fn query_problems(
    conn: &Connection,
    sql: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<Problem>,
) -> Result<Vec<Problem>, CorpusError> {
    query_rows(conn, sql, row)
}

fn query_rows<T>(
    conn: &Connection,
    sql: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, CorpusError> {
    let db = |source| CorpusError::Database {
        context: "verifying the corpus",
        source,
    };
    let mut stmt = conn.prepare(sql).map_err(db)?;
    let rows = stmt.query_map([], row).map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

fn unpack_args(packed: &[u8]) -> Vec<String> {
    let mut args: Vec<String> = packed
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    // Each argument is NUL-terminated: the split leaves one empty piece at the end.
    args.pop();
    args
}
