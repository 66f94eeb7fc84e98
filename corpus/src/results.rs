//! Optimization results: what the optimizer concluded about a trace, keyed by the trace's
//! content hash and the optimizer's version string, so a rerun of the same optimizer on
//! the same trace finds its answer and a new optimizer starts afresh. Every method is one
//! transaction, retried on `SQLITE_BUSY` like every other write.

use std::fmt;
use std::time::Duration;

use ir::binary;
use ir::Trace;
use rusqlite::{params, OptionalExtension};

use crate::write::now;
use crate::{Corpus, CorpusError, Problem, ProblemKind, TraceHash};

/// The optimizer's conclusion about one trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The candidate is proven equivalent to the recorded trace.
    Proven,
    /// The solver found (and the evaluator confirmed) an input where they differ.
    Refuted,
    /// Neither: the reason says why (a solver limit, a budget, an unsupported operator).
    Unknown,
    /// The optimizer itself failed (a panic, a solver crash); the reason holds the message.
    Failed,
}

impl Verdict {
    /// The name stored in the `results` table and shown to people.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Proven => "proven",
            Verdict::Refuted => "refuted",
            Verdict::Unknown => "unknown",
            Verdict::Failed => "failed",
        }
    }

    /// The verdict [`Verdict::name`] names.
    pub fn from_name(name: &str) -> Option<Verdict> {
        [
            Verdict::Proven,
            Verdict::Refuted,
            Verdict::Unknown,
            Verdict::Failed,
        ]
        .into_iter()
        .find(|v| v.name() == name)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One optimization of one trace, as [`Corpus::put_result`] stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptimizationResult {
    pub verdict: Verdict,
    /// Why: the unknown's reason, the failure's message; empty when there is nothing to say.
    pub reason: String,
    /// The candidate, only when it differs from the recorded trace (`None`: the optimizer
    /// kept the trace as recorded, or failed before it had one).
    pub candidate: Option<Trace>,
    /// The recorded trace's cost under the optimizer's cost model.
    pub cost_before: u64,
    /// The candidate's cost (equal to `cost_before` without a candidate).
    pub cost_after: u64,
    /// Time spent saturating and extracting.
    pub saturation_time: Duration,
    /// Time spent verifying.
    pub verification_time: Duration,
}

/// A result read back by [`Corpus::result`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResult {
    pub hash: TraceHash,
    pub optimizer_version: String,
    pub result: OptimizationResult,
    /// When it was stored, Unix seconds.
    pub created: i64,
}

/// The column values of one `results` row, before the candidate is decoded.
type ResultRow = (String, String, Option<Vec<u8>>, i64, i64, i64, i64, i64);

impl Corpus {
    /// The result stored for the trace `hash` by the optimizer `version`, if any. A
    /// candidate blob that does not decode is [`CorpusError::Corrupt`], naming the result.
    pub fn result(
        &self,
        hash: &TraceHash,
        version: &str,
    ) -> Result<Option<StoredResult>, CorpusError> {
        const CONTEXT: &str = "reading a result";
        let key = hash.to_string();
        let row: Option<ResultRow> = self.read(CONTEXT, |conn| {
            conn.prepare_cached(
                "SELECT verdict, reason, candidate, cost_before, cost_after,
                        saturation_micros, verification_micros, created
                 FROM results WHERE trace_hash = ?1 AND optimizer_version = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![key, version], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                })
                .optional()
            })
            .map_err(|source| CorpusError::Database {
                context: CONTEXT,
                source,
            })
        })?;
        let Some((verdict, reason, candidate, before, after, sat, ver, created)) = row else {
            return Ok(None);
        };
        let problem = |kind| {
            CorpusError::Corrupt(Problem::new(
                format!("result of {key} by optimizer {version}"),
                kind,
            ))
        };
        let verdict = Verdict::from_name(&verdict).ok_or_else(|| {
            problem(ProblemKind::Unreadable(format!(
                "unknown verdict `{verdict}`"
            )))
        })?;
        let candidate = candidate
            .map(|blob| binary::decode(&blob))
            .transpose()
            .map_err(|e| problem(ProblemKind::Undecodable(e.to_string())))?;
        Ok(Some(StoredResult {
            hash: *hash,
            optimizer_version: version.to_owned(),
            result: OptimizationResult {
                verdict,
                reason,
                candidate,
                cost_before: from_column(before),
                cost_after: from_column(after),
                saturation_time: Duration::from_micros(from_column(sat)),
                verification_time: Duration::from_micros(from_column(ver)),
            },
            created,
        }))
    }

    /// Stores `result` for the stored trace `hash` by the optimizer `version`, replacing
    /// any earlier result under the same key, in one transaction. A trace the corpus does
    /// not hold is [`CorpusError::NotFound`] and nothing is written.
    pub fn put_result(
        &mut self,
        hash: &TraceHash,
        version: &str,
        result: &OptimizationResult,
    ) -> Result<(), CorpusError> {
        const CONTEXT: &str = "storing a result";
        // Encode before taking the write lock.
        let key = hash.to_string();
        let candidate = result.candidate.as_ref().map(binary::encode);
        let created = now();
        let db = |source| CorpusError::Database {
            context: CONTEXT,
            source,
        };
        self.write(CONTEXT, |conn| {
            let known = conn
                .query_row("SELECT 1 FROM traces WHERE hash = ?1", [&key], |_| Ok(()))
                .optional()
                .map_err(db)?;
            if known.is_none() {
                return Err(CorpusError::NotFound(key.clone()));
            }
            conn.prepare_cached(
                "INSERT INTO results (trace_hash, optimizer_version, verdict, reason, candidate,
                     cost_before, cost_after, saturation_micros, verification_micros, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (trace_hash, optimizer_version) DO UPDATE SET
                     verdict = excluded.verdict, reason = excluded.reason,
                     candidate = excluded.candidate, cost_before = excluded.cost_before,
                     cost_after = excluded.cost_after,
                     saturation_micros = excluded.saturation_micros,
                     verification_micros = excluded.verification_micros,
                     created = excluded.created",
            )
            .and_then(|mut s| {
                s.execute(params![
                    key,
                    version,
                    result.verdict.name(),
                    result.reason,
                    candidate,
                    to_column(result.cost_before),
                    to_column(result.cost_after),
                    to_column(micros(result.saturation_time)),
                    to_column(micros(result.verification_time)),
                    created,
                ])
            })
            .map_err(db)?;
            Ok(())
        })
    }

    /// How many stored traces have a result by the optimizer `version`.
    pub fn count_results(&self, version: &str) -> Result<u64, CorpusError> {
        const CONTEXT: &str = "counting results";
        self.read(CONTEXT, |conn| {
            conn.query_row(
                "SELECT count(*) FROM results WHERE optimizer_version = ?1",
                [version],
                |r| r.get::<_, i64>(0),
            )
            .map(from_column)
            .map_err(|source| CorpusError::Database {
                context: CONTEXT,
                source,
            })
        })
    }

    /// The stored traces that have no result by the optimizer `version`, in hash order.
    /// Keys that are not content hashes (corrupt entries) are left out: no optimizer can
    /// read them.
    pub fn traces_without_result(&self, version: &str) -> Result<Vec<TraceHash>, CorpusError> {
        const CONTEXT: &str = "listing traces without a result";
        let keys: Vec<String> = self.read(CONTEXT, |conn| {
            conn.prepare_cached(
                "SELECT hash FROM traces WHERE NOT EXISTS (
                     SELECT 1 FROM results
                     WHERE trace_hash = traces.hash AND optimizer_version = ?1)
                 ORDER BY hash",
            )
            .and_then(|mut s| {
                s.query_map([version], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()
            })
            .map_err(|source| CorpusError::Database {
                context: CONTEXT,
                source,
            })
        })?;
        Ok(keys.iter().filter_map(|k| k.parse().ok()).collect())
    }
}

/// SQLite integers are signed: a count or duration past `i64::MAX` is stored saturated.
fn to_column(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A negative column (written by hand, not by kiln) reads as 0.
fn from_column(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
