//! Writing: runs and traces. Every method is one transaction.

use std::time::{SystemTime, UNIX_EPOCH};

use ir::binary;
use ir::hash::content_hash;
use ir::{AnchorKind, InlinedCall, Provenance, SideProvenance, Trace};
use rusqlite::{params, OptionalExtension};

use crate::read::check;
use crate::retry::is_busy;
use crate::{AddSummary, Corpus, CorpusError, RunId, KILN_VERSION};

impl Corpus {
    /// Records the start of a run of `app` (a name for people: the module's file name,
    /// say), whose module has the hex SHA-256 `module_hash`, run with `args`. The run
    /// is stamped with the time and [`KILN_VERSION`]. Arguments are stored NUL-terminated,
    /// so one holding a NUL byte (which no process argument can) comes back split.
    pub fn begin_run<S: AsRef<str>>(
        &mut self,
        app: &str,
        module_hash: &str,
        args: &[S],
    ) -> Result<RunId, CorpusError> {
        let mut packed = Vec::new();
        for arg in args {
            packed.extend_from_slice(arg.as_ref().as_bytes());
            packed.push(0);
        }
        let started = now();
        self.write("beginning a run", |conn| {
            conn.execute(
                "INSERT INTO runs (app, module_hash, started, kiln_version, args) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![app, module_hash, started, KILN_VERSION, packed],
            )
            .map_err(|source| CorpusError::Database { context: "beginning a run", source })?;
            Ok(RunId(conn.last_insert_rowid()))
        })
    }

    /// Marks `run` finished. A run that died before this keeps a null `finished`
    /// ([`RunInfo::finished`](crate::RunInfo::finished)), and whatever it had added.
    pub fn finish_run(&mut self, run: RunId) -> Result<(), CorpusError> {
        let finished = now();
        self.write("finishing a run", |conn| {
            let changed = conn
                .execute(
                    "UPDATE runs SET finished = ?2 WHERE id = ?1",
                    params![run.0, finished],
                )
                .map_err(|source| CorpusError::Database {
                    context: "finishing a run",
                    source,
                })?;
            if changed == 0 {
                return Err(CorpusError::UnknownRun(run));
            }
            Ok(())
        })
    }

    /// Adds traces recorded by `run`, each with where it was recorded, in one
    /// transaction: all are stored or, on any error, none.
    ///
    /// A trace already stored (same content hash) is not stored again; its provenance row
    /// is added, or, if this run already recorded it at the same anchor, that row's hits
    /// grow by the new hits. A stored entry that fails its check is replaced by the trace
    /// given (counted in [`AddSummary::repaired`]).
    pub fn add_traces(
        &mut self,
        run: RunId,
        traces: &[(Trace, Provenance)],
    ) -> Result<AddSummary, CorpusError> {
        let rows: Vec<(&Trace, Row)> = traces.iter().map(|(t, p)| (t, Row::Loop(p))).collect();
        self.add(run, &rows, "adding traces")
    }

    /// Adds side traces `run`'s tier linked, each with its place, in one transaction, as
    /// [`Corpus::add_traces`] adds loop traces: the trace once, a `side_traces` row per
    /// (trace, run, place), whose passes add up.
    pub fn add_side_traces(
        &mut self,
        run: RunId,
        traces: &[(Trace, SideProvenance)],
    ) -> Result<AddSummary, CorpusError> {
        let rows: Vec<(&Trace, Row)> = traces.iter().map(|(t, p)| (t, Row::Side(p))).collect();
        self.add(run, &rows, "adding side traces")
    }

    fn add(
        &mut self,
        run: RunId,
        traces: &[(&Trace, Row)],
        context: &'static str,
    ) -> Result<AddSummary, CorpusError> {
        // Encode and hash before taking the write lock.
        let prepared: Vec<(String, Vec<u8>)> = traces
            .iter()
            .map(|(trace, _)| (content_hash(trace).to_string(), binary::encode(trace)))
            .collect();
        let created = now();
        let db = |source| CorpusError::Database { context, source };
        self.write(context, |conn| {
            let known = conn
                .query_row("SELECT 1 FROM runs WHERE id = ?1", [run.0], |_| Ok(()))
                .optional()
                .map_err(db)?;
            if known.is_none() {
                return Err(CorpusError::UnknownRun(run));
            }
            let mut stored = conn
                .prepare_cached("SELECT blob FROM traces WHERE hash = ?1")
                .map_err(db)?;
            let mut insert = conn
                .prepare_cached(
                    "INSERT INTO traces (hash, blob, size, created) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(db)?;
            let mut repair = conn
                .prepare_cached("UPDATE traces SET blob = ?2, size = ?3 WHERE hash = ?1")
                .map_err(db)?;
            let mut provenance = conn
                .prepare_cached(
                    "INSERT INTO provenance
                         (trace_hash, run_id, module_hash, func_index, anchor_offset, kind, hits)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (trace_hash, run_id, module_hash, func_index, anchor_offset, kind)
                     DO UPDATE SET hits = hits + excluded.hits",
                )
                .map_err(db)?;
            let mut side = conn
                .prepare_cached(
                    "INSERT INTO side_traces
                         (trace_hash, run_id, module_hash, func_index, pc, calls, expect,
                          index_slot, arms, arm, offset, passes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT (trace_hash, run_id, module_hash, func_index, pc, calls, expect,
                                  index_slot, arms, arm)
                     DO UPDATE SET passes = passes + excluded.passes",
                )
                .map_err(db)?;

            let mut summary = AddSummary::default();
            for ((hash, blob), (_, row)) in prepared.iter().zip(traces) {
                let size = blob.len() as i64;
                match stored
                    .query_row([hash], |r| r.get::<_, Vec<u8>>(0))
                    .optional()
                {
                    Ok(None) => {
                        insert
                            .execute(params![hash, blob, size, created])
                            .map_err(db)?;
                        summary.new += 1;
                    }
                    Ok(Some(old)) => {
                        summary.existing += 1;
                        if old != *blob && check(hash, &old).is_err() {
                            repair.execute(params![hash, blob, size]).map_err(db)?;
                            summary.repaired += 1;
                        }
                    }
                    Err(e) if is_busy(&e) => return Err(db(e)),
                    // The row is there but SQLite cannot read it back: overwrite it.
                    Err(_) => {
                        summary.existing += 1;
                        repair.execute(params![hash, blob, size]).map_err(db)?;
                        summary.repaired += 1;
                    }
                }
                match row {
                    Row::Loop(p) => provenance.execute(params![
                        hash,
                        run.0,
                        p.module_hash,
                        p.func_index,
                        p.anchor_offset,
                        p.kind.name(),
                        i64::try_from(p.hits).unwrap_or(i64::MAX),
                    ]),
                    Row::Side(p) => {
                        let start = &p.start;
                        let (index_slot, arms, arm) = start
                            .selector
                            .map_or((0, 0, 0), |s| (s.index_slot, s.arms, s.arm));
                        side.execute(params![
                            hash,
                            run.0,
                            p.module_hash,
                            start.func_index,
                            start.pc,
                            encode_calls(&start.calls),
                            start.expect.map_or(EXPECT_NONE, i64::from),
                            index_slot,
                            arms,
                            arm,
                            p.offset,
                            i64::try_from(p.passes).unwrap_or(i64::MAX),
                        ])
                    }
                }
                .map_err(db)?;
            }
            Ok(summary)
        })
    }
}

/// What a trace is added with: where it was recorded.
enum Row<'a> {
    Loop(&'a Provenance),
    Side(&'a SideProvenance),
}

/// `side_traces.expect` for a place reached by a trace's end, not a guard.
pub(crate) const EXPECT_NONE: i64 = -1;

/// Bytes per call in `side_traces.calls`: function, frame base, return pc.
pub(crate) const CALL_BYTES: usize = 12;

/// `side_traces.calls`: each call's function, frame base and return pc, u32 little-endian.
pub(crate) fn encode_calls(calls: &[InlinedCall]) -> Vec<u8> {
    calls
        .iter()
        .flat_map(|c| [c.func, c.base, c.return_pc])
        .flat_map(u32::to_le_bytes)
        .collect()
}

/// The calls [`encode_calls`] wrote; `None` if `bytes` is not a whole number of them.
pub(crate) fn decode_calls(bytes: &[u8]) -> Option<Vec<InlinedCall>> {
    if !bytes.len().is_multiple_of(CALL_BYTES) {
        return None;
    }
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    Some(
        bytes
            .chunks(CALL_BYTES)
            .map(|c| InlinedCall {
                func: word(&c[0..4]),
                base: word(&c[4..8]),
                return_pc: word(&c[8..12]),
            })
            .collect(),
    )
}

pub(crate) fn anchor_kind(name: &str) -> Option<AnchorKind> {
    [AnchorKind::Loop, AnchorKind::FuncEntry]
        .into_iter()
        .find(|k| k.name() == name)
}

/// Unix seconds.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
