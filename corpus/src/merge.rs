//! Joining the results of shards back into one store (`kiln merge`).
//!
//! Shards are copies of one corpus, each optimized for its share of the traces
//! (`kiln optimize --shard I/N`), so a shard's results name traces the target holds too;
//! one that does not is refused. A shard is merged whole in one transaction, or not at
//! all.
//!
//! When both stores hold a result for the same trace and optimizer version: the same
//! verdict keeps the target's row; a decisive verdict (proven, refuted) replaces an
//! undecided one (unknown, failed: a budget ran out or a process died on one machine,
//! while the other got an answer); two different decisive verdicts are a
//! [`CorpusError::Conflict`] and nothing of that shard is merged, since one of them is
//! wrong and kiln cannot tell which.

use ir::binary;
use rusqlite::{params, OptionalExtension};

use crate::{Corpus, CorpusError, Problem, ProblemKind};

/// What merging one shard did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MergeSummary {
    /// Results the target did not have.
    pub added: u64,
    /// Undecided results replaced by the shard's decisive ones.
    pub decided: u64,
    /// Results the target already had (the same verdict, or a decisive one).
    pub kept: u64,
}

/// One `results` row as stored, candidate undecoded.
struct Row {
    trace_hash: String,
    version: String,
    verdict: String,
    reason: String,
    candidate: Option<Vec<u8>>,
    cost_before: i64,
    cost_after: i64,
    saturation_micros: i64,
    verification_micros: i64,
    created: i64,
}

fn decisive(verdict: &str) -> bool {
    matches!(verdict, "proven" | "refuted")
}

impl Corpus {
    /// Merges every result of `shard` into this corpus, in one transaction.
    pub fn merge_results(&mut self, shard: &Corpus) -> Result<MergeSummary, CorpusError> {
        const READING: &str = "reading a shard's results";
        let rows: Vec<Row> = shard.read(READING, |conn| {
            conn.prepare(
                "SELECT trace_hash, optimizer_version, verdict, reason, candidate, cost_before,
                        cost_after, saturation_micros, verification_micros, created
                 FROM results ORDER BY trace_hash, optimizer_version",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(Row {
                        trace_hash: r.get(0)?,
                        version: r.get(1)?,
                        verdict: r.get(2)?,
                        reason: r.get(3)?,
                        candidate: r.get(4)?,
                        cost_before: r.get(5)?,
                        cost_after: r.get(6)?,
                        saturation_micros: r.get(7)?,
                        verification_micros: r.get(8)?,
                        created: r.get(9)?,
                    })
                })?
                .collect()
            })
            .map_err(|source| CorpusError::Database {
                context: READING,
                source,
            })
        })?;
        // A corrupt candidate in the shard is refused here, before anything is written.
        for row in &rows {
            if let Some(blob) = &row.candidate {
                binary::decode(blob).map_err(|e| {
                    CorpusError::Corrupt(Problem::new(
                        format!("result of {} by optimizer {}", row.trace_hash, row.version),
                        ProblemKind::Undecodable(e.to_string()),
                    ))
                })?;
            }
        }

        const MERGING: &str = "merging a shard's results";
        let db = |source| CorpusError::Database {
            context: MERGING,
            source,
        };
        self.write(MERGING, |conn| {
            let mut summary = MergeSummary::default();
            for row in &rows {
                let known = conn
                    .query_row(
                        "SELECT 1 FROM traces WHERE hash = ?1",
                        [&row.trace_hash],
                        |_| Ok(()),
                    )
                    .optional()
                    .map_err(db)?;
                if known.is_none() {
                    return Err(CorpusError::NotFound(row.trace_hash.clone()));
                }
                let ours: Option<String> = conn
                    .query_row(
                        "SELECT verdict FROM results
                         WHERE trace_hash = ?1 AND optimizer_version = ?2",
                        params![row.trace_hash, row.version],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db)?;
                match ours {
                    Some(ours) if ours == row.verdict || !decisive(&row.verdict) => {
                        summary.kept += 1;
                        continue;
                    }
                    Some(ours) if decisive(&ours) => {
                        return Err(CorpusError::Conflict {
                            trace: row.trace_hash.clone(),
                            version: row.version.clone(),
                            ours,
                            theirs: row.verdict.clone(),
                        });
                    }
                    Some(_) => summary.decided += 1,
                    None => summary.added += 1,
                }
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO results (trace_hash, optimizer_version, verdict,
                         reason, candidate, cost_before, cost_after, saturation_micros,
                         verification_micros, created)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        row.trace_hash,
                        row.version,
                        row.verdict,
                        row.reason,
                        row.candidate,
                        row.cost_before,
                        row.cost_after,
                        row.saturation_micros,
                        row.verification_micros,
                        row.created,
                    ])
                })
                .map_err(db)?;
            }
            Ok(summary)
        })
    }
}
