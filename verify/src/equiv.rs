//! Translation validation: [`check_equivalent`] asks z3 for an entry state on which the two
//! traces differ, and confirms any it finds with the reference evaluator.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use ir::eval::{eval, Ended, EntryState, Outcome, PAGE_SIZE};
use ir::Trace;
use z3::ast::{Bool, BV};
use z3::{Model, Params, SatResult, Solver};

use crate::symbolic::{bv, run, zext64, Entry, Leave, Terminal, Ufs};

/// The solver's time budget for one query when the caller does not say: long enough for
/// the traces the recorder makes (tens of instructions, a handful of memory accesses),
/// short enough that a nightly run over thousands of traces is not held up by one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// A counterexample is replayed on a memory of at most this many pages (16 MiB): the
/// solver is first asked for one with at most [`SMALL_PAGES`], and a larger one it insists
/// on is given up as Unknown rather than allocated.
pub const MAX_COUNTEREXAMPLE_PAGES: u32 = 256;

/// The memory size (and maximum) the solver is first asked to keep a counterexample
/// within, since replaying it allocates the memory: most differences show within one
/// page. If none exists there, the first model stands (up to
/// [`MAX_COUNTEREXAMPLE_PAGES`]).
pub const SMALL_PAGES: u32 = 1;

/// What a check may spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The solver's budget per query; running out gives `Unknown("timeout")`. A proof is
    /// one query; a refutation up to three (the search, then a small-memory model, then
    /// the first model again if there is none). Default: [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The answer to "does the candidate do exactly what the recorded trace does?"
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// On every entry state both traces end the same way with the same effects.
    Proven,
    /// An entry state on which they differ, confirmed by the reference evaluator.
    Refuted(Box<Counterexample>),
    /// Neither proven nor refuted; the reason. One starting with `verifier bug:` means the
    /// solver's counterexample did not hold on the evaluator: a bug in this crate's
    /// encoding, to be reported, never a verdict to act on.
    Unknown(String),
}

impl Verdict {
    pub fn is_proven(&self) -> bool {
        matches!(self, Verdict::Proven)
    }

    pub fn is_refuted(&self) -> bool {
        matches!(self, Verdict::Refuted(_))
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Verdict::Unknown(_))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Proven => f.write_str("proven"),
            Verdict::Refuted(cex) => write!(f, "refuted: {cex}"),
            Verdict::Unknown(why) => write!(f, "unknown: {why}"),
        }
    }
}

/// A concrete entry state on which the traces differ, and what each does from it (as
/// [`ir::eval::eval`] says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counterexample {
    /// Slots and globals either trace touches, memory (zero but for the bytes that
    /// matter), and the memory's maximum.
    pub entry: EntryState,
    pub recorded: Outcome,
    pub candidate: Outcome,
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.entry;
        write!(f, "from slots {:?} globals {:?}", e.slots, e.globals)?;
        let nonzero: Vec<(usize, u8)> = e
            .memory
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b != 0)
            .map(|(i, &b)| (i, b))
            .collect();
        write!(
            f,
            " memory {} pages (max {:?}) nonzero bytes {nonzero:?}",
            e.memory.len() / PAGE_SIZE,
            e.max_pages
        )?;
        write!(
            f,
            ": recorded {:?}, candidate {:?}",
            self.recorded.end, self.candidate.end
        )?;
        if self.recorded.globals != self.candidate.globals {
            write!(
                f,
                "; globals {:?} vs {:?}",
                self.recorded.globals, self.candidate.globals
            )?;
        }
        if self.recorded.memory.len() != self.candidate.memory.len() {
            write!(
                f,
                "; memory sizes {} vs {} pages",
                self.recorded.memory_pages, self.candidate.memory_pages
            )?;
        } else if self.recorded.memory != self.candidate.memory {
            let first = self
                .recorded
                .memory
                .iter()
                .zip(&self.candidate.memory)
                .position(|(a, b)| a != b);
            write!(f, "; memories differ (first at {first:?})")?;
        }
        Ok(())
    }
}

/// Proves `candidate` equivalent to `recorded`, or refutes it with a confirmed
/// counterexample, or says why it can do neither. See the crate documentation for what
/// equivalent means and how it is encoded.
pub fn check_equivalent(recorded: &Trace, candidate: &Trace, limits: &Limits) -> Verdict {
    if let Err(e) = ir::validate::validate(recorded) {
        return Verdict::Unknown(format!("invalid recorded trace: {e}"));
    }
    if let Err(e) = ir::validate::validate(candidate) {
        return Verdict::Unknown(format!("invalid candidate trace: {e}"));
    }

    let mut entry = Entry::new(&[recorded, candidate]);
    let mut ufs = Ufs::default();
    let a = run(recorded, &mut entry, &mut ufs);
    let b = run(candidate, &mut entry, &mut ufs);

    // Memories are compared at one unconstrained address: the query is existential, so
    // "some address differs" needs only one.
    let probe = BV::new_const("probe", 32);
    let mut differences = Vec::new();
    for ta in &a {
        for tb in &b {
            let both = Bool::and(&[ta.cond.clone(), tb.cond.clone()]);
            let differ = differ(ta, tb, &mut entry, &probe);
            differences.push(Bool::and(&[both, differ]));
        }
    }

    let solver = Solver::new();
    let mut params = Params::new();
    let ms = limits.timeout.as_millis().clamp(1, u128::from(u32::MAX)) as u32;
    params.set_u32("timeout", ms);
    solver.set_params(&params);
    for c in entry.constraints.iter().chain(&ufs.side) {
        solver.assert(c);
    }
    solver.assert(Bool::or(&differences));

    match solver.check() {
        SatResult::Unsat => return Verdict::Proven,
        SatResult::Unknown => return unknown(&solver),
        SatResult::Sat => {}
    }

    // Prefer a counterexample with a small memory: replaying it allocates the memory.
    solver.push();
    let small = bv(u64::from(SMALL_PAGES), 32);
    solver.assert(entry.max_pages.bvule(&small));
    let model = match solver.check() {
        SatResult::Sat => solver.get_model(),
        _ => {
            solver.pop(1);
            match solver.check() {
                SatResult::Sat => solver.get_model(),
                SatResult::Unsat => {
                    return bug("the solver found a difference, then found none".into())
                }
                SatResult::Unknown => return unknown(&solver),
            }
        }
    };
    let Some(model) = model else {
        return bug("the solver said sat but gave no model".into());
    };

    let state = match entry_state(&model, &entry) {
        Ok(state) => state,
        Err(why) => return Verdict::Unknown(why),
    };
    confirm(recorded, candidate, state, ufs.used())
}

fn unknown(solver: &Solver) -> Verdict {
    let reason = solver.get_reason_unknown().unwrap_or_default();
    if reason.contains("timeout") || reason.contains("canceled") {
        Verdict::Unknown("timeout".into())
    } else {
        Verdict::Unknown(format!("solver: {reason}"))
    }
}

/// A verifier bug: loud on stderr, and Unknown (never Refuted) to the caller.
fn bug(what: String) -> Verdict {
    let message = format!("verifier bug: {what}");
    eprintln!("error: {message}");
    Verdict::Unknown(message)
}

/// Whether two terminals, both taken, differ in what the interpreter can see: where they
/// leave, the slots they hand back, the globals, the memory size and contents.
fn differ(a: &Terminal, b: &Terminal, entry: &mut Entry, probe: &BV) -> Bool {
    let slots = match (&a.leave, &b.leave) {
        (
            Leave::Exit {
                id: ia,
                pc: pa,
                calls: ca,
                slots: sa,
            },
            Leave::Exit {
                id: ib,
                pc: pb,
                calls: cb,
                slots: sb,
            },
        ) => {
            // Where the interpreter goes on: the pc, and the frames it rebuilds.
            if ia != ib || pa != pb || ca != cb {
                return Bool::from_bool(true);
            }
            Some((sa, sb))
        }
        (Leave::Loop { slots: sa }, Leave::Loop { slots: sb }) => Some((sa, sb)),
        (Leave::Trap(ka), Leave::Trap(kb)) => {
            if ka != kb {
                return Bool::from_bool(true);
            }
            None
        }
        _ => return Bool::from_bool(true),
    };
    let mut diffs = Vec::new();
    if let Some((sa, sb)) = slots {
        let keys: BTreeSet<u32> = sa.keys().chain(sb.keys()).copied().collect();
        for s in keys {
            // A slot the state does not write keeps its entry value.
            let va = sa.get(&s).unwrap_or(&entry.slots[&s]);
            let vb = sb.get(&s).unwrap_or(&entry.slots[&s]);
            diffs.push(va.eq(vb).not());
        }
    }
    for (g, va) in &a.machine.globals {
        diffs.push(va.eq(&b.machine.globals[g]).not());
    }
    diffs.push(a.machine.pages.eq(&b.machine.pages).not());
    let in_bounds = zext64(probe).bvult(a.machine.size_bytes());
    let byte_a = a.machine.read_byte(entry, probe);
    let byte_b = b.machine.read_byte(entry, probe);
    diffs.push(Bool::and(&[in_bounds, byte_a.eq(&byte_b).not()]));
    Bool::or(&diffs)
}

fn value(model: &Model, x: &BV) -> Result<u64, String> {
    model
        .eval(x, true)
        .and_then(|v| v.as_u64())
        .ok_or_else(|| format!("verifier bug: the model gives no value for {x}"))
}

/// The concrete entry state a model describes.
fn entry_state(model: &Model, entry: &Entry) -> Result<EntryState, String> {
    let slots = entry
        .slots
        .iter()
        .map(|(&s, x)| Ok((s, value(model, x)?)))
        .collect::<Result<BTreeMap<_, _>, String>>()?;
    let globals = entry
        .globals
        .iter()
        .map(|(&g, x)| Ok((g, value(model, x)?)))
        .collect::<Result<BTreeMap<_, _>, String>>()?;
    let pages = value(model, &entry.pages)? as u32;
    let max_pages = value(model, &entry.max_pages)? as u32;
    if max_pages > MAX_COUNTEREXAMPLE_PAGES {
        return Err(format!(
            "the only counterexample found needs a memory of up to {max_pages} pages \
             (more than {MAX_COUNTEREXAMPLE_PAGES}); not replayed"
        ));
    }
    let mut memory = vec![0u8; pages as usize * PAGE_SIZE];
    for (addr, byte) in &entry.base_reads {
        let addr = value(model, addr)? as usize;
        let byte = value(model, byte)? as u8;
        if let Some(slot) = memory.get_mut(addr) {
            *slot = byte;
        }
    }
    Ok(EntryState {
        slots,
        globals,
        memory,
        max_pages: Some(max_pages),
    })
}

/// Replays both traces on `state`: Refuted if they differ, else Unknown.
fn confirm(recorded: &Trace, candidate: &Trace, state: EntryState, abstracted: bool) -> Verdict {
    let ra = eval(recorded, state.clone());
    let rb = eval(candidate, state.clone());
    let (oa, ob) = match (ra, rb) {
        (Ok(oa), Ok(ob)) => (oa, ob),
        (Err(e), _) | (_, Err(e)) => {
            return bug(format!(
                "the evaluator rejects the counterexample: {e} (entry {state:?})"
            ))
        }
    };
    if same_outcome(&state, &oa, &ob) {
        if abstracted {
            // Float operators are uninterpreted: the solver may pick a meaning for them
            // that real floats do not have. Not a bug, but not a refutation either.
            return Verdict::Unknown(
                "not proven: the traces' float operators are uninterpreted and the \
                 solver's counterexample does not hold with real floats"
                    .into(),
            );
        }
        return bug(format!(
            "counterexample not confirmed by the evaluator: both give {:?} from slots {:?} \
             globals {:?}",
            oa.end, state.slots, state.globals
        ));
    }
    Verdict::Refuted(Box::new(Counterexample {
        entry: state,
        recorded: oa,
        candidate: ob,
    }))
}

/// Whether two outcomes from `entry` are the same to the interpreter (a slot a state does
/// not write keeps its entry value): the definition of equivalence the solver checks, on
/// one concrete state.
pub fn same_outcome(entry: &EntryState, a: &Outcome, b: &Outcome) -> bool {
    let slots_same = |sa: &BTreeMap<u32, u64>, sb: &BTreeMap<u32, u64>| {
        sa.keys().chain(sb.keys()).all(|s| {
            let va = sa.get(s).or(entry.slots.get(s));
            let vb = sb.get(s).or(entry.slots.get(s));
            va == vb
        })
    };
    let ends = match (&a.end, &b.end) {
        (
            Ended::Exit {
                id: ia,
                pc: pa,
                calls: ca,
                slots: sa,
            },
            Ended::Exit {
                id: ib,
                pc: pb,
                calls: cb,
                slots: sb,
            },
        ) => ia == ib && pa == pb && ca == cb && slots_same(sa, sb),
        (Ended::Loop { slots: sa }, Ended::Loop { slots: sb }) => slots_same(sa, sb),
        (Ended::Trap(ka), Ended::Trap(kb)) => ka == kb,
        _ => false,
    };
    ends && a.globals == b.globals && a.memory_pages == b.memory_pages && a.memory == b.memory
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The replay is what keeps a wrong encoding from becoming a false Refuted: an entry
    /// state on which the traces agree gives a loud Unknown.
    #[test]
    fn an_unconfirmed_counterexample_is_a_verifier_bug() {
        let trace = ir::text::parse(
            "trace locals=1
               in  v0:i32 = slot 0
               loop [s0=v0]",
        )
        .unwrap();
        let state = EntryState {
            slots: [(0, 5)].into(),
            ..EntryState::default()
        };
        match confirm(&trace, &trace, state.clone(), false) {
            Verdict::Unknown(why) => assert!(why.starts_with("verifier bug:"), "{why}"),
            other => panic!("expected Unknown, got {other}"),
        }
        match confirm(&trace, &trace, state, true) {
            Verdict::Unknown(why) => assert!(why.contains("uninterpreted"), "{why}"),
            other => panic!("expected Unknown, got {other}"),
        }
    }

    #[test]
    fn an_unwritten_slot_is_its_entry_value() {
        let entry = EntryState {
            slots: [(0, 5), (1, 6)].into(),
            ..EntryState::default()
        };
        let outcome = |slots: BTreeMap<u32, u64>| Outcome {
            end: Ended::Loop { slots },
            memory: Vec::new(),
            globals: BTreeMap::new(),
            memory_pages: 0,
        };
        let a = outcome([(0, 1), (1, 6)].into());
        assert!(same_outcome(&entry, &a, &outcome([(0, 1)].into())));
        assert!(!same_outcome(&entry, &a, &outcome([(0, 1), (1, 7)].into())));
    }
}
