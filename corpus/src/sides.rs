//! Reading side traces back: the places an app's runs linked them at, for `kiln cache
//! build` (`side_traces` table, schema version 4).

use ir::{Selector, SideProvenance, SideStart};

use crate::read::{load, Loaded};
use crate::write::{decode_calls, CALL_BYTES, EXPECT_NONE};
use crate::{Corpus, CorpusError, Problem, ProblemKind, RunId, TraceHash};

/// One side trace recorded at one place by one run, as [`Corpus::side_traces_of`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideRecord {
    pub hash: TraceHash,
    pub trace: ir::Trace,
    pub run: RunId,
    /// The kiln version of the run: pcs and slots mean something only to the kiln that
    /// lowered the module.
    pub kiln_version: String,
    pub provenance: SideProvenance,
}

/// [`Corpus::side_traces_of`]'s answer: the readable rows, and the ones skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideListing {
    pub sides: Vec<SideRecord>,
    pub problems: Vec<Problem>,
}

/// One `side_traces` row, as stored.
struct Row {
    hash: String,
    run: i64,
    kiln_version: String,
    func_index: u32,
    pc: u32,
    calls: Vec<u8>,
    expect: i64,
    index_slot: u32,
    arms: u32,
    arm: u32,
    offset: u32,
    passes: i64,
}

impl Corpus {
    /// Every side trace recorded from the module hashing to `module_hash` (hex), by
    /// trace, run and place. A row whose trace is corrupt or whose place does not decode
    /// is skipped and listed among the problems.
    pub fn side_traces_of(&self, module_hash: &str) -> Result<SideListing, CorpusError> {
        const CONTEXT: &str = "reading side traces";
        let db = |source| CorpusError::Database {
            context: CONTEXT,
            source,
        };
        self.read(CONTEXT, |conn| {
            let rows: Vec<Row> = conn
                .prepare_cached(
                    "SELECT s.trace_hash, s.run_id, r.kiln_version, s.func_index, s.pc, s.calls,
                            s.expect, s.index_slot, s.arms, s.arm, s.offset, s.passes
                     FROM side_traces s JOIN runs r ON r.id = s.run_id
                     WHERE s.module_hash = ?1
                     ORDER BY s.trace_hash, s.run_id, s.func_index, s.pc, s.calls, s.expect,
                              s.index_slot, s.arms, s.arm",
                )
                .and_then(|mut s| {
                    s.query_map([module_hash], |r| {
                        Ok(Row {
                            hash: r.get(0)?,
                            run: r.get(1)?,
                            kiln_version: r.get(2)?,
                            func_index: r.get(3)?,
                            pc: r.get(4)?,
                            calls: r.get(5)?,
                            expect: r.get(6)?,
                            index_slot: r.get(7)?,
                            arms: r.get(8)?,
                            arm: r.get(9)?,
                            offset: r.get(10)?,
                            passes: r.get(11)?,
                        })
                    })?
                    .collect()
                })
                .map_err(db)?;
            let mut listing = SideListing::default();
            for row in rows {
                let entry = match load(conn, &row.hash)? {
                    Loaded::Good(entry) => entry,
                    Loaded::Bad(problem) => {
                        listing.problems.push(problem);
                        continue;
                    }
                    Loaded::Missing => {
                        let kind = ProblemKind::DanglingProvenance { rows: 1 };
                        listing.problems.push(Problem::new(&row.hash, kind));
                        continue;
                    }
                };
                let Some(calls) = decode_calls(&row.calls) else {
                    let why = format!(
                        "a side trace's calls are {} bytes, not a whole number of \
                         {CALL_BYTES}-byte calls",
                        row.calls.len()
                    );
                    listing
                        .problems
                        .push(Problem::new(&row.hash, ProblemKind::Unreadable(why)));
                    continue;
                };
                let expect = match row.expect {
                    EXPECT_NONE => None,
                    e => Some(e != 0),
                };
                let selector = (row.arms > 0).then_some(Selector {
                    index_slot: row.index_slot,
                    arms: row.arms,
                    arm: row.arm,
                });
                listing.sides.push(SideRecord {
                    hash: entry.hash,
                    trace: entry.trace,
                    run: RunId(row.run),
                    kiln_version: row.kiln_version,
                    provenance: SideProvenance {
                        module_hash: module_hash.to_string(),
                        start: SideStart {
                            func_index: row.func_index,
                            pc: row.pc,
                            calls,
                            expect,
                            selector,
                        },
                        offset: row.offset,
                        passes: u64::try_from(row.passes).unwrap_or(0),
                    },
                });
            }
            Ok(listing)
        })
    }
}
