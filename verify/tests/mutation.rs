//! The verifier is itself tested: a mutation test.
//!
//! Every proven pair — each `ir` golden trace against itself and against its canonical
//! renumbering, and each `tests/pairs/*.trace` marked `;; expect: proven` — gives mutants
//! of its candidate, each with one injected bug:
//!
//! - `op`: an operator flipped to a sibling of the same signature (add↔sub, and↔or↔xor,
//!   shl↔shr_u, `_s`↔`_u`, lt↔gt↔le↔ge, eq↔ne, div↔rem, clz→ctz→popcnt, min↔max,
//!   abs↔neg, ceil↔floor, trunc↔trunc_sat, …);
//! - `const`: a constant operand ±1 (wrapping in its type's width);
//! - `drop`: a `store` or `global.set` removed;
//! - `guard`: a guard's expected polarity swapped;
//! - `state`: an exit or loop state slot given another value of the same type;
//! - `offset`: a load's (or store's) offset ±1.
//!
//! Only mutants that pass `ir::validate` are kept. The reference evaluator decides whether a
//! mutant really differs from the recorded trace, on a few hundred entry states per pair
//! (edge and random values for every input, random memory of 0–3 pages, a fixed seed).
//! Then: a mutant the evaluator shows different must never be Proven (a soundness bug:
//! the test fails with both traces) and at least 95% of them must be Refuted; every
//! refutation is replayed here, so the test does not trust the crate under test. Mutants
//! the evaluator cannot tell apart may get any verdict; their counts are printed.
//!
//! The evaluator runs on every mutant (cheap); z3 on at most [`MAX_DIFFERENT`] of those shown
//! different and [`MAX_NOT_SHOWN`] of the others, a deterministic (seeded) sample of each
//! group where it is larger, to keep the test near 30 s on two cores. The numbers
//! generated, shown different and checked are printed.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use ir::eval::{eval, EntryState, Outcome, PAGE_SIZE};
use ir::{End, Expect, Inst, NumOp, Operand, Source, Trace, Type, ValueId};
use verify::{check_equivalent, Limits, Verdict};

/// Generous, so that a loaded machine does not turn a refutation into Unknown("timeout").
const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many mutants the evaluator shows different are checked with z3, and at most
/// [`MAX_NOT_SHOWN`] of the others (a deterministic sample of each group if larger).
const MAX_DIFFERENT: usize = 300;
const MAX_NOT_SHOWN: usize = 60;
/// Random entry states per pair, on top of the edge-value sweeps.
const RANDOM_STATES: usize = 200;
const SEED: u64 = 0x6b69_6c6e_6d75_7461; // "kilnmuta"

// ---------------------------------------------------------------------------------------
// A small deterministic generator (splitmix64): no dev-dependency needed.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------------------
// Proven pairs.

struct Pair {
    name: String,
    recorded: Trace,
    candidate: Trace,
}

fn trace_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .collect();
    files.sort();
    files
}

fn proven_pairs() -> Vec<Pair> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pairs = Vec::new();
    for path in trace_files(&root.join("../ir/tests/traces")) {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let trace = ir::text::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let canonical = ir::hash::canonicalize(&trace);
        pairs.push(Pair {
            name: format!("ir/{name} (itself)"),
            recorded: trace.clone(),
            candidate: trace.clone(),
        });
        pairs.push(Pair {
            name: format!("ir/{name} (canonical)"),
            recorded: trace,
            candidate: canonical,
        });
    }
    for path in trace_files(&root.join("tests/pairs")) {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap_or("");
        if first.trim().strip_prefix(";; expect:").map(str::trim) != Some("proven") {
            continue;
        }
        let at = text.find("\n---\n").expect("no `---` line");
        pairs.push(Pair {
            name: format!("pairs/{name}"),
            recorded: ir::text::parse(&text[..at]).unwrap(),
            candidate: ir::text::parse(&text[at + 5..]).unwrap(),
        });
    }
    pairs
}

// ---------------------------------------------------------------------------------------
// Mutation operators.

struct Mutant {
    /// The operator's short name (`op`, `const`, `drop`, `guard`, `state`, `offset`).
    kind: &'static str,
    /// What was changed, for people.
    what: String,
    trace: Trace,
}

/// Operators of the same signature that `op` may be flipped to.
fn siblings(op: NumOp) -> Vec<NumOp> {
    let name = op.name();
    let (prefix, suffix) = name.split_once('.').unwrap();
    let (stem, sign) = match suffix.strip_suffix("_s") {
        Some(stem) => (stem, "_s"),
        None => match suffix.strip_suffix("_u") {
            Some(stem) => (stem, "_u"),
            None => (suffix, ""),
        },
    };
    let other_sign = match sign {
        "_s" => "_u",
        "_u" => "_s",
        _ => "",
    };
    let mut names: Vec<String> = Vec::new();
    if !sign.is_empty() {
        names.push(format!("{prefix}.{stem}{other_sign}"));
    }
    let stems: &[&str] = match stem {
        "add" => &["sub"],
        "sub" => &["add"],
        "mul" => &["add"],
        "div" => &["rem", "mul"],
        "rem" => &["div"],
        "and" => &["or"],
        "or" => &["xor"],
        "xor" => &["and"],
        "shl" => &["shr"],
        "shr" => &["shl", "rotr"],
        "rotl" => &["rotr"],
        "rotr" => &["rotl"],
        "eq" => &["ne"],
        "ne" => &["eq"],
        "lt" => &["gt", "le"],
        "gt" => &["lt", "ge"],
        "le" => &["ge", "lt"],
        "ge" => &["le", "gt"],
        "clz" => &["ctz"],
        "ctz" => &["popcnt"],
        "popcnt" => &["clz"],
        "extend8" => &["extend16"],
        "extend16" => &["extend8"],
        "extend32" => &["extend16"],
        "min" => &["max"],
        "max" => &["min"],
        "abs" => &["neg"],
        "neg" => &["abs"],
        "ceil" => &["floor"],
        "floor" => &["ceil"],
        "trunc" => &["nearest"],
        "nearest" => &["trunc"],
        "sqrt" => &["abs"],
        "trunc_f32" => &["trunc_sat_f32"],
        "trunc_f64" => &["trunc_sat_f64"],
        "trunc_sat_f32" => &["trunc_f32"],
        "trunc_sat_f64" => &["trunc_f64"],
        _ => &[],
    };
    for s in stems {
        // Keep the sign where the sibling has one, drop it where it has none (shr_u → rotr,
        // shr_u → shl); `shl` has none and flips to `shr_u`.
        let sign = if stem == "shl" { "_u" } else { sign };
        names.push(format!("{prefix}.{s}{sign}"));
        names.push(format!("{prefix}.{s}"));
    }
    let mut out = Vec::new();
    for n in names {
        if let Some(alt) = NumOp::from_name(&n) {
            if alt != op
                && alt.params() == op.params()
                && alt.result() == op.result()
                && !out.contains(&alt)
            {
                out.push(alt);
            }
        }
    }
    out
}

fn width_mask(ty: Type) -> u64 {
    if ty.bits() == 32 {
        0xffff_ffff
    } else {
        u64::MAX
    }
}

/// Values in definition order, each with the index of the body instruction defining it
/// (`None` for an input).
type DefinitionOrder = Vec<(ValueId, Option<usize>)>;

/// The types of every value of `trace`, and the order they are defined in (inputs
/// first, then body definitions with the index of the instruction defining them).
fn value_types(trace: &Trace) -> (BTreeMap<ValueId, Type>, DefinitionOrder) {
    let mut types = BTreeMap::new();
    let mut order = Vec::new();
    for input in &trace.inputs {
        types.insert(input.value, input.ty);
        order.push((input.value, None));
    }
    for (i, inst) in trace.body.iter().enumerate() {
        if let Some((v, ty)) = inst.def() {
            types.insert(v, ty);
            order.push((v, Some(i)));
        }
    }
    (types, order)
}

/// Other values of `ty` defined before instruction `before` (all of them if `None`): up to
/// two of them, the latest and the earliest, excluding `not`.
fn other_values(
    types: &BTreeMap<ValueId, Type>,
    order: &[(ValueId, Option<usize>)],
    before: Option<usize>,
    ty: Type,
    not: ValueId,
) -> Vec<ValueId> {
    let avail: Vec<ValueId> = order
        .iter()
        .filter(|(v, at)| {
            *v != not
                && types[v] == ty
                && match (before, at) {
                    (Some(b), Some(a)) => a < &b,
                    _ => true,
                }
        })
        .map(|(v, _)| *v)
        .collect();
    let mut out = Vec::new();
    if let Some(&last) = avail.last() {
        out.push(last);
    }
    if let Some(&first) = avail.first() {
        if !out.contains(&first) {
            out.push(first);
        }
    }
    out
}

fn mutants(t: &Trace) -> Vec<Mutant> {
    let (types, order) = value_types(t);
    let mut out: Vec<Mutant> = Vec::new();
    let mut push =
        |kind: &'static str, what: String, trace: Trace| out.push(Mutant { kind, what, trace });
    for (i, inst) in t.body.iter().enumerate() {
        // op
        if let Inst::Num { op, .. } = inst {
            for alt in siblings(*op) {
                let mut m = t.clone();
                if let Inst::Num { op: o, .. } = &mut m.body[i] {
                    *o = alt;
                }
                push(
                    "op",
                    format!("inst {i}: {} -> {}", op.name(), alt.name()),
                    m,
                );
            }
        }
        // const
        for (j, (operand, expect)) in inst.operands().into_iter().enumerate() {
            if let Operand::Const(c) = operand {
                let mask = match expect {
                    Expect::Typed(ty) => width_mask(ty),
                    Expect::Raw => u64::MAX,
                };
                for (d, sign) in [(1u64, "+1"), (u64::MAX, "-1")] {
                    let mut m = t.clone();
                    *m.body[i].operands_mut()[j] = Operand::Const(c.wrapping_add(d) & mask);
                    push("const", format!("inst {i} operand {j}: {c:#x} {sign}"), m);
                }
            }
        }
        // drop
        if matches!(inst, Inst::Store { .. } | Inst::GlobalSet { .. }) {
            let mut m = t.clone();
            m.body.remove(i);
            push("drop", format!("inst {i} dropped"), m);
        }
        // guard
        if let Inst::Guard { exit, .. } = inst {
            let mut m = t.clone();
            if let Inst::Guard { expect, .. } = &mut m.body[i] {
                *expect = !*expect;
            }
            push("guard", format!("inst {i}: guard polarity swapped"), m);
            // state of a guard's exit
            for (k, &(slot, operand)) in exit.state.iter().enumerate() {
                if let Operand::Value(v) = operand {
                    for w in other_values(&types, &order, Some(i), types[&v], v) {
                        let mut m = t.clone();
                        if let Inst::Guard { exit, .. } = &mut m.body[i] {
                            exit.state[k].1 = Operand::Value(w);
                        }
                        push("state", format!("inst {i} exit s{slot}: {v} -> {w}"), m);
                    }
                }
            }
        }
        // offset
        let offset = match inst {
            Inst::Load { offset, .. } | Inst::Store { offset, .. } => Some(*offset),
            _ => None,
        };
        if let Some(off) = offset {
            for (new, sign) in [(off.checked_add(1), "+1"), (off.checked_sub(1), "-1")] {
                let Some(new) = new else { continue };
                let mut m = t.clone();
                match &mut m.body[i] {
                    Inst::Load { offset, .. } | Inst::Store { offset, .. } => *offset = new,
                    _ => unreachable!(),
                }
                push("offset", format!("inst {i}: offset {off} {sign}"), m);
            }
        }
    }
    // The end's state: constants ±1 and values swapped.
    for (k, &(slot, operand)) in t.end.state().iter().enumerate() {
        match operand {
            Operand::Const(c) => {
                for (d, sign) in [(1u64, "+1"), (u64::MAX, "-1")] {
                    let mut m = t.clone();
                    m.end.state_mut()[k].1 = Operand::Const(c.wrapping_add(d));
                    push("const", format!("end s{slot}: {c:#x} {sign}"), m);
                }
            }
            Operand::Value(v) => {
                for w in other_values(&types, &order, None, types[&v], v) {
                    let mut m = t.clone();
                    m.end.state_mut()[k].1 = Operand::Value(w);
                    push("state", format!("end s{slot}: {v} -> {w}"), m);
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Entry states and the evaluator's judgement.

const INT32_EDGES: &[u64] = &[
    0,
    1,
    2,
    3,
    0xffff_ffff,
    0xffff_fffe,
    0x8000_0000,
    0x8000_0001,
    0x7fff_ffff,
    0x7fff_fffe,
    7,
    8,
    15,
    16,
    31,
    32,
    33,
    63,
    64,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0xfffc,
];
const INT64_EDGES: &[u64] = &[
    0,
    1,
    2,
    3,
    u64::MAX,
    u64::MAX - 1,
    1 << 63,
    (1 << 63) + 1,
    i64::MAX as u64,
    i64::MAX as u64 - 1,
    7,
    8,
    31,
    32,
    63,
    64,
    65,
    0xff,
    0xffff_ffff,
    0x1_0000_0000,
    0x8000_0000,
    0xffff_ffff_8000_0000,
    0x7fff_ffff,
];
const F32_EDGES: &[u64] = &[
    0,
    0x8000_0000,
    0x3f80_0000,
    0xbf80_0000,
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0000,
    0xffc0_0000,
    0x7fa0_0000,
    0x0000_0001,
    0x8000_0001,
    0x7f7f_ffff,
    0xff7f_ffff,
    0x4f00_0000,
    0xcf00_0000,
    0x4f80_0000,
    0x3f00_0000,
    0xbf00_0000,
    0x5f00_0000,
    0xdf00_0000,
    0x4effffff,
    0x3fc0_0000,
    0x4020_0000,
];
const F64_EDGES: &[u64] = &[
    0,
    1 << 63,
    0x3ff0_0000_0000_0000,
    0xbff0_0000_0000_0000,
    0x7ff0_0000_0000_0000,
    0xfff0_0000_0000_0000,
    0x7ff8_0000_0000_0000,
    0xfff8_0000_0000_0000,
    0x7ff4_0000_0000_0000,
    1,
    (1 << 63) | 1,
    0x7fef_ffff_ffff_ffff,
    0x41e0_0000_0000_0000,
    0xc1e0_0000_0000_0000,
    0x41df_ffff_ffc0_0000,
    0x41f0_0000_0000_0000,
    0x43e0_0000_0000_0000,
    0xc3e0_0000_0000_0000,
    0x3fe0_0000_0000_0000,
    0xbfe0_0000_0000_0000,
    0x3ff8_0000_0000_0000,
    0x4004_0000_0000_0000,
];

fn edges(ty: Type) -> &'static [u64] {
    match ty {
        Type::I32 => INT32_EDGES,
        Type::I64 => INT64_EDGES,
        Type::F32 => F32_EDGES,
        Type::F64 => F64_EDGES,
    }
}

/// Where entry values go: every input source with the types it is read at, plus slots and
/// globals only written (their entry value matters for the comparison).
struct Shape {
    sources: Vec<(Source, Vec<Type>)>,
    written_slots: BTreeSet<u32>,
    written_globals: BTreeSet<u32>,
}

fn shape(traces: &[&Trace]) -> Shape {
    let mut sources: BTreeMap<Source, Vec<Type>> = BTreeMap::new();
    let mut written_slots = BTreeSet::new();
    let mut written_globals = BTreeSet::new();
    for t in traces {
        for input in &t.inputs {
            let tys = sources.entry(input.source).or_default();
            if !tys.contains(&input.ty) {
                tys.push(input.ty);
            }
        }
        for exit in t.exits() {
            written_slots.extend(exit.state.iter().map(|&(s, _)| s));
        }
        if let End::Loop { state } = &t.end {
            written_slots.extend(state.iter().map(|&(s, _)| s));
        }
        for inst in &t.body {
            if let Inst::GlobalSet { global, .. } = inst {
                written_globals.insert(*global);
            }
        }
    }
    Shape {
        sources: sources.into_iter().collect(),
        written_slots,
        written_globals,
    }
}

/// How a state picks each input's value.
#[derive(Clone, Copy)]
enum Pick {
    /// Every input takes its type's edge value number `k`.
    AllEdge(usize),
    /// Input `i` takes edge value `k`, the others are random.
    OneEdge(usize, usize),
    Random,
}

fn value(rng: &mut Rng, ty: Type, pick: Option<usize>, mem_bytes: u64) -> u64 {
    let e = edges(ty);
    if let Some(k) = pick {
        return e[k % e.len()];
    }
    let raw = match rng.below(5) {
        0 | 1 => rng.pick(e),
        2 => rng.below(64),
        3 => match ty {
            // An address within (or just past) the memory.
            Type::I32 | Type::I64 => rng.below(mem_bytes + 16),
            Type::F32 => f32::to_bits(rng.below(200) as f32 - 100.0) as u64,
            Type::F64 => f64::to_bits(rng.below(200) as f64 - 100.0),
        },
        _ => rng.next(),
    };
    raw & width_mask(ty)
}

fn entry_state(rng: &mut Rng, shape: &Shape, pick: Pick) -> EntryState {
    let pages = match pick {
        Pick::Random => rng.pick(&[0u32, 1, 1, 1, 1, 2, 2, 3]),
        _ => 1,
    };
    let max_pages = pages + rng.pick(&[0u32, 1, 2, 5]);
    let mut memory = vec![0u8; pages as usize * PAGE_SIZE];
    match rng.below(4) {
        0 => {} // all zero
        1 => {
            for b in memory.iter_mut() {
                *b = rng.below(3) as u8;
            }
        }
        _ => {
            for chunk in memory.chunks_mut(8) {
                chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
            }
        }
    }
    let mem_bytes = memory.len() as u64;
    let mut slots = BTreeMap::new();
    let mut globals = BTreeMap::new();
    for (i, (source, tys)) in shape.sources.iter().enumerate() {
        // A slot read at a 32-bit type must hold a 32-bit value whatever else reads it.
        let ty = tys
            .iter()
            .copied()
            .find(|t| t.bits() == 32)
            .unwrap_or(tys[0]);
        let k = match pick {
            Pick::AllEdge(k) => Some(k),
            Pick::OneEdge(j, k) if j == i => Some(k),
            _ => None,
        };
        let bits = value(rng, ty, k, mem_bytes);
        match source {
            Source::Slot(s) => slots.insert(*s, bits),
            Source::Global(g) => globals.insert(*g, bits),
        };
    }
    for s in &shape.written_slots {
        slots.entry(*s).or_insert_with(|| rng.next());
    }
    for g in &shape.written_globals {
        globals
            .entry(*g)
            .or_insert_with(|| rng.next() & 0xffff_ffff);
    }
    EntryState {
        slots,
        globals,
        memory,
        max_pages: Some(max_pages),
    }
}

fn entry_states(shape: &Shape, seed: u64) -> Vec<EntryState> {
    let mut rng = Rng(seed);
    let mut picks = Vec::new();
    let most_edges = [Type::I32, Type::I64, Type::F32, Type::F64]
        .iter()
        .map(|&t| edges(t).len())
        .max()
        .unwrap();
    for k in 0..most_edges {
        picks.push(Pick::AllEdge(k));
    }
    for (i, (_, tys)) in shape.sources.iter().enumerate() {
        for k in 0..edges(tys[0]).len() {
            picks.push(Pick::OneEdge(i, k));
        }
    }
    picks.extend(std::iter::repeat_n(Pick::Random, RANDOM_STATES));
    picks
        .into_iter()
        .map(|p| entry_state(&mut rng, shape, p))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The test.

struct Case {
    pair: usize,
    mutant: Mutant,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    n: usize,
    different: usize,
    refuted: usize,
    unknown: usize,
    proven: usize,
    same_refuted: usize,
    same_unknown: usize,
    same_proven: usize,
}

impl Counts {
    fn add(&mut self, different: bool, verdict: &Verdict) {
        self.n += 1;
        match (different, verdict) {
            (true, Verdict::Refuted(_)) => self.refuted += 1,
            (true, Verdict::Unknown(_)) => self.unknown += 1,
            (true, Verdict::Proven) => self.proven += 1,
            (false, Verdict::Refuted(_)) => self.same_refuted += 1,
            (false, Verdict::Unknown(_)) => self.same_unknown += 1,
            (false, Verdict::Proven) => self.same_proven += 1,
        }
        self.different += different as usize;
    }
}

struct Checked {
    case: usize,
    /// The entry state on which the evaluator saw a difference, if any.
    witness: Option<String>,
    verdict: Verdict,
    ms: u128,
}

fn describe_state(e: &EntryState) -> String {
    format!(
        "slots {:?} globals {:?} memory {} pages (max {:?})",
        e.slots,
        e.globals,
        e.memory.len() / PAGE_SIZE,
        e.max_pages
    )
}

#[test]
fn mutants_shown_different_are_refuted() {
    let start = Instant::now();
    let pairs = proven_pairs();
    assert!(pairs.len() >= 40, "only {} proven pairs", pairs.len());

    // Generate, keep the valid ones, drop duplicates.
    let mut cases = Vec::new();
    let mut seen = HashSet::new();
    let mut invalid = 0;
    for (p, pair) in pairs.iter().enumerate() {
        for mutant in mutants(&pair.candidate) {
            if ir::validate::validate(&mutant.trace).is_err() {
                invalid += 1;
                continue;
            }
            if mutant.trace == pair.candidate || !seen.insert((p, mutant.trace.to_string())) {
                continue;
            }
            cases.push(Case { pair: p, mutant });
        }
    }
    let generated = cases.len();

    // Phase 1, the evaluator on every mutant: one pair at a time, its entry states and the
    // recorded trace's outcomes shared by its mutants, on several threads.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let mut witnesses: Vec<Option<String>> = vec![None; cases.len()];
    for (p, pair) in pairs.iter().enumerate() {
        let mine: Vec<usize> = (0..cases.len()).filter(|&c| cases[c].pair == p).collect();
        if mine.is_empty() {
            continue;
        }
        let shape = shape(&[&pair.recorded, &pair.candidate]);
        let states = entry_states(&shape, SEED ^ (p as u64).wrapping_mul(0x1000_0001));
        let recorded: Vec<Outcome> = states
            .iter()
            .map(|s| eval(&pair.recorded, s.clone()).expect("recorded trace evaluates"))
            .collect();
        // The candidate is proven equivalent: the evaluator must agree on every state.
        for (s, r) in states.iter().zip(&recorded) {
            let c = eval(&pair.candidate, s.clone()).unwrap();
            assert!(
                verify::same_outcome(s, r, &c),
                "{}: the proven candidate differs from the recorded trace on {}",
                pair.name,
                describe_state(s)
            );
        }
        let found: Vec<(usize, Option<String>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (mine, states, recorded, cases) = (&mine, &states, &recorded, &cases);
                    scope.spawn(move || {
                        let mut out = Vec::new();
                        for &c in mine.iter().skip(t).step_by(threads) {
                            let mutant = &cases[c].mutant.trace;
                            let witness = states
                                .iter()
                                .zip(recorded)
                                .find(|(s, r)| {
                                    let m = eval(mutant, (*s).clone()).unwrap();
                                    !verify::same_outcome(s, r, &m)
                                })
                                .map(|(s, _)| describe_state(s));
                            out.push((c, witness));
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        for (c, w) in found {
            witnesses[c] = w;
        }
    }
    let shown = witnesses.iter().filter(|w| w.is_some()).count();

    // Phase 2, z3 on a deterministic selection: the mutants shown different first (the
    // ones the assertions are about), then those not shown different, each group sampled
    // (a seeded shuffle) down to its cap if it is larger.
    let mut rng = Rng(SEED);
    let mut sample = |mut group: Vec<usize>, cap: usize| {
        for i in (1..group.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            group.swap(i, j);
        }
        group.truncate(cap);
        group
    };
    let different: Vec<usize> = (0..cases.len())
        .filter(|&c| witnesses[c].is_some())
        .collect();
    let not_shown: Vec<usize> = (0..cases.len())
        .filter(|&c| witnesses[c].is_none())
        .collect();
    let mut selected = sample(different, MAX_DIFFERENT);
    selected.extend(sample(not_shown, MAX_NOT_SHOWN));
    selected.sort();
    println!(
        "mutation: {} proven pairs, {generated} valid mutants ({invalid} invalid ones discarded), \
         {shown} shown different by the evaluator; checking {} with z3 (at most {MAX_DIFFERENT} \
         shown different and {MAX_NOT_SHOWN} not, a deterministic sample where there are more)",
        pairs.len(),
        selected.len(),
    );

    let limits = Limits {
        timeout: TEST_TIMEOUT,
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Checked> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (selected, cases, pairs, limits, witnesses, next) =
                    (&selected, &cases, &pairs, &limits, &witnesses, &next);
                scope.spawn(move || {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&c) = selected.get(i) else { break };
                        let case = &cases[c];
                        let t0 = Instant::now();
                        let verdict = check_equivalent(
                            &pairs[case.pair].recorded,
                            &case.mutant.trace,
                            limits,
                        );
                        out.push(Checked {
                            case: c,
                            witness: witnesses[c].clone(),
                            verdict,
                            ms: t0.elapsed().as_millis(),
                        });
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    results.sort_by_key(|r| r.case);

    let mut total = Counts::default();
    let mut by_kind: BTreeMap<&'static str, Counts> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut misses = Vec::new();
    let mut slowest = (0u128, String::new());
    for r in &results {
        let case = &cases[r.case];
        let pair = &pairs[case.pair];
        let label = format!("{} [{}] {}", pair.name, case.mutant.kind, case.mutant.what);
        if r.ms > slowest.0 {
            slowest = (r.ms, label.clone());
        }
        let different = r.witness.is_some();
        total.add(different, &r.verdict);
        by_kind
            .entry(case.mutant.kind)
            .or_default()
            .add(different, &r.verdict);
        let texts = format!(
            "--- recorded\n{}--- mutant\n{}",
            pair.recorded, case.mutant.trace
        );
        match &r.verdict {
            Verdict::Proven if different => failures.push(format!(
                "SOUNDNESS: {label} is proven, but the evaluator tells them apart on {}\n{texts}",
                r.witness.as_ref().unwrap()
            )),
            Verdict::Refuted(cex) => {
                // Replay the counterexample here: do not trust the crate under test.
                let a = eval(&pair.recorded, cex.entry.clone()).unwrap();
                let b = eval(&case.mutant.trace, cex.entry.clone()).unwrap();
                if a != cex.recorded
                    || b != cex.candidate
                    || verify::same_outcome(&cex.entry, &a, &b)
                {
                    failures.push(format!(
                        "FALSE REFUTATION: {label}: the counterexample does not hold: {}\n{texts}",
                        r.verdict
                    ));
                }
            }
            Verdict::Unknown(why) => {
                if why.contains("verifier bug") {
                    failures.push(format!("VERIFIER BUG: {label}: {why}\n{texts}"));
                } else if different {
                    misses.push(format!("unknown: {label}: {why}"));
                }
            }
            Verdict::Proven => {}
        }
    }

    println!("by operator (n, shown different: refuted/unknown/proven, not shown different: refuted/unknown/proven):");
    for (kind, c) in &by_kind {
        println!(
            "  {kind:7} {:4}  different {:4}: {}/{}/{}  not shown different {:3}: {}/{}/{}",
            c.n,
            c.different,
            c.refuted,
            c.unknown,
            c.proven,
            c.n - c.different,
            c.same_refuted,
            c.same_unknown,
            c.same_proven
        );
    }
    for m in &misses {
        println!("miss: {m}");
    }
    println!(
        "not shown different by the evaluator: {} ({} refuted, {} unknown, {} proven)",
        total.n - total.different,
        total.same_refuted,
        total.same_unknown,
        total.same_proven
    );
    println!("slowest check: {} ms ({})", slowest.0, slowest.1);
    let rate = if total.different == 0 {
        100.0
    } else {
        100.0 * total.refuted as f64 / total.different as f64
    };
    println!(
        "mutation: {} mutants, {} shown different by the evaluator, {} refuted, {} unknown, {} proven (of those shown different: must be 0); refuted {:.1}% of those shown different; {:.1} s",
        total.n,
        total.different,
        total.refuted,
        total.unknown,
        total.proven,
        rate,
        start.elapsed().as_secs_f64()
    );
    for f in &failures {
        println!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} failures (printed above)",
        failures.len()
    );
    assert_eq!(total.proven, 0);
    assert!(total.different > 0);
    assert!(
        total.refuted * 100 >= total.different * 95,
        "only {} of {} mutants shown different were refuted ({rate:.1}%)",
        total.refuted,
        total.different
    );
}
