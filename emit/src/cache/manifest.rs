//! What a cache library says about its traces: the manifest's data model and the rules
//! every manifest obeys, checked alike by the writer (so it never writes what the reader
//! would refuse) and by the reader.

use std::collections::{BTreeMap, BTreeSet};

use ir::hash::TraceHash;
use ir::{Source, Trace, Type};

use crate::abi::MAX_FRAME_SLOTS;
use crate::module::EmitKind;

/// The manifest layout's version (`docs/cache-format.md`); a reader refuses any other.
pub const FORMAT_VERSION: u32 = 3;
/// The kiln version that writes caches. Traces name interpreter frame slots and pcs,
/// which depend on how this kiln lowers wasm, so a cache is only good for the kiln that
/// wrote it.
pub const KILN_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The custom section holding the manifest.
pub const MANIFEST_SECTION: &str = "kiln.manifest";

/// Most traces one cache may hold: one per hot loop of an app, and real apps have
/// hundreds to a few thousand loops. Bounds what a hostile count can make a reader do.
pub const MAX_TRACES: u32 = 1 << 16;
/// Most bytes of any text in the manifest (kiln version, solver, reason): each is one
/// line for people to read.
pub const MAX_TEXT_BYTES: u32 = 4096;
/// Most entries of one list of a trace (inputs, carried slots, globals written, exits,
/// slots of one exit): the same bound as `ir::binary`'s, since the lists come from a
/// trace that format could hold.
pub const MAX_LIST_LEN: u32 = ir::binary::MAX_STATE;
/// Most bytes of one trace's IR (ir's binary form): a recorded trace stops at a few
/// thousand instructions (`trace_capture::record`), tens of kilobytes at most.
pub const MAX_TRACE_BYTES: u32 = 16 << 20;
/// The largest exit pc. A pc indexes the lowered code of one function; a function body
/// is at most 7,654,321 bytes (wasmparser's limit) and the lowering makes a few
/// instructions per byte at most, so a larger pc cannot be real. (The runtime checks
/// every pc against the function's code when it first runs the trace.)
pub const MAX_EXIT_PC: u32 = 1 << 26;

/// Everything a cache says besides its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The layout version the manifest was written in ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The kiln that wrote the cache ([`KILN_VERSION`]).
    pub kiln_version: String,
    /// Hex SHA-256 of the app's wasm bytes, 64 lowercase digits.
    pub app_hash: String,
    /// One entry per trace function: entry `i` describes export `trace<i>`.
    pub traces: Vec<CachedTrace>,
}

/// One trace of a cache: its key, what its function reads and writes, and how it came to
/// ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedTrace {
    /// The anchor's function index in the app.
    pub func_index: u32,
    /// The anchor's byte offset in the app's module (a side trace's: of the instruction
    /// it starts at).
    pub anchor_offset: u32,
    /// `None` for a loop trace, entered at its anchor; for a side trace, the place where
    /// it is linked (its `func_index` is the entry's): the runtime links it there at
    /// load, as if it had recorded it, and grows trace trees with it.
    pub side: Option<ir::SideStart>,
    /// The content hash of the recorded trace (its corpus key), whichever code ships.
    pub content_hash: TraceHash,
    /// Whether the function is the recorded trace or a proven candidate.
    pub emission: EmitKind,
    /// The recorded trace's cost (saturate's cost model).
    pub cost_before: u64,
    /// The shipped trace's cost: `cost_before` when the recorded trace ships.
    pub cost_after: u64,
    pub verdict: ProofVerdict,
    /// The solver that gave the verdict, as it names itself (`Z3 4.8.12.0`); empty when
    /// none was asked (nothing cheaper was found).
    pub solver: String,
    /// The entry map: the trace's inputs, in canonical order (slots, then globals, each
    /// by index, then by type), each once.
    pub inputs: Vec<EntryInput>,
    /// The slots a looping trace carries to its next iteration (written back at every
    /// exit, `abi.rs`), increasing; empty for a trace that ends in an exit.
    pub carried: Vec<u32>,
    /// The guest globals the trace writes, increasing.
    pub globals_written: Vec<u32>,
    /// The exit map, by increasing id.
    pub exits: Vec<ExitEntry>,
    /// The shipped trace itself (the IR the function was emitted from): a runtime grows
    /// trace trees from it (`emit::tree`), inlining the side traces it records.
    pub shipped: Trace,
}

/// One input of a trace: where it is read at the anchor, and at what type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntryInput {
    pub source: Source,
    pub ty: Type,
}

/// One exit of a trace: where the interpreter resumes, and the slots the exit's state
/// names (the carried slots are written too, see [`CachedTrace::slots_written`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitEntry {
    pub id: u32,
    /// Interpreter instruction index in the anchor's function.
    pub pc: u32,
    /// Increasing.
    pub slots: Vec<u32>,
}

/// Why a trace's code is what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofVerdict {
    /// The optimized candidate ships: the solver proved it equivalent to the recording.
    Proven,
    /// The recorded trace ships as it was; the reason (refuted, unknown, nothing cheaper).
    Unproven { reason: String },
}

impl ProofVerdict {
    pub fn is_proven(&self) -> bool {
        matches!(self, ProofVerdict::Proven)
    }
}

impl std::fmt::Display for ProofVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProofVerdict::Proven => f.write_str("proven"),
            ProofVerdict::Unproven { reason } => write!(f, "unproven ({reason})"),
        }
    }
}

impl CachedTrace {
    /// The entry and exit maps of `shipped` (the trace whose code the cache holds), with
    /// the rest given by the caller.
    pub(crate) fn maps_of(
        shipped: &Trace,
    ) -> (Vec<EntryInput>, Vec<u32>, Vec<u32>, Vec<ExitEntry>) {
        let inputs: BTreeSet<EntryInput> = shipped
            .inputs
            .iter()
            .map(|i| EntryInput {
                source: i.source,
                ty: i.ty,
            })
            .collect();
        let carried = match &shipped.end {
            ir::End::Loop { state } => state.iter().map(|&(s, _)| s).collect(),
            ir::End::Exit(_) => Vec::new(),
        };
        let globals_written: BTreeSet<u32> = shipped
            .body
            .iter()
            .filter_map(|inst| match *inst {
                ir::Inst::GlobalSet { global, .. } => Some(global),
                _ => None,
            })
            .collect();
        let mut exits: Vec<ExitEntry> = shipped
            .exits()
            .map(|e| ExitEntry {
                id: e.id,
                pc: e.pc,
                slots: e.state.iter().map(|&(s, _)| s).collect(),
            })
            .collect();
        exits.sort_by_key(|e| e.id);
        (
            inputs.into_iter().collect(),
            carried,
            globals_written.into_iter().collect(),
            exits,
        )
    }

    /// Exit id → interpreter pc.
    pub fn exit_pcs(&self) -> BTreeMap<u32, u32> {
        self.exits.iter().map(|e| (e.id, e.pc)).collect()
    }

    /// The frame slots the function reads at entry: its slot inputs and carried slots.
    pub fn slots_read(&self) -> Vec<u32> {
        let mut slots: BTreeSet<u32> = self.carried.iter().copied().collect();
        slots.extend(self.inputs.iter().filter_map(|i| match i.source {
            Source::Slot(s) => Some(s),
            Source::Global(_) => None,
        }));
        slots.into_iter().collect()
    }

    /// Per exit id, the frame slots the function writes when it leaves there: the exit's
    /// own and the carried slots.
    pub fn slots_written(&self) -> BTreeMap<u32, Vec<u32>> {
        self.exits
            .iter()
            .map(|e| {
                let mut slots: BTreeSet<u32> = e.slots.iter().copied().collect();
                slots.extend(&self.carried);
                (e.id, slots.into_iter().collect())
            })
            .collect()
    }

    /// The guest globals the function reads or writes, increasing.
    pub fn globals_touched(&self) -> Vec<u32> {
        let mut globals: BTreeSet<u32> = self.globals_written.iter().copied().collect();
        globals.extend(self.globals_read().keys());
        globals.into_iter().collect()
    }

    /// The guest globals read as inputs, with the type each is read at.
    pub fn globals_read(&self) -> BTreeMap<u32, Type> {
        self.inputs
            .iter()
            .filter_map(|i| match i.source {
                Source::Global(g) => Some((g, i.ty)),
                Source::Slot(_) => None,
            })
            .collect()
    }

    /// One past the highest frame slot the function names (0 if none).
    pub fn frame_slots(&self) -> u32 {
        let inputs = self.inputs.iter().filter_map(|i| match i.source {
            Source::Slot(s) => Some(s),
            Source::Global(_) => None,
        });
        let exits = self.exits.iter().flat_map(|e| e.slots.iter().copied());
        inputs
            .chain(self.carried.iter().copied())
            .chain(exits)
            .map(|s| s.saturating_add(1))
            .max()
            .unwrap_or(0)
    }
}

/// Checks the rules of a manifest that need nothing but the manifest: the ones the
/// binary layout cannot express. Returns the first broken rule as (trace index, what);
/// `None` for the trace index means the manifest as a whole.
pub(crate) fn check_rules(manifest: &Manifest) -> Result<(), (Option<u32>, String)> {
    if !is_hex_hash(&manifest.app_hash) {
        return Err((
            None,
            format!(
                "the app hash {:?} is not 64 lowercase hex digits",
                manifest.app_hash
            ),
        ));
    }
    if manifest.kiln_version.len() > MAX_TEXT_BYTES as usize {
        return Err((None, "the kiln version is too long".to_string()));
    }
    if manifest.traces.len() > MAX_TRACES as usize {
        return Err((
            None,
            format!(
                "{} traces, more than the limit of {MAX_TRACES}",
                manifest.traces.len()
            ),
        ));
    }
    let mut anchors = BTreeMap::new();
    let mut places = BTreeMap::new();
    for (i, t) in manifest.traces.iter().enumerate() {
        let i = i as u32;
        match &t.side {
            None => {
                if let Some(first) = anchors.insert((t.func_index, t.anchor_offset), i) {
                    return Err((
                        Some(i),
                        format!(
                            "its anchor (function {}, offset {:#x}) is trace {first}'s too: one trace per anchor",
                            t.func_index, t.anchor_offset
                        ),
                    ));
                }
            }
            Some(side) => {
                // One side trace per place, or one per arm of a `br_table` there, all for
                // the same table (index slot and arm count): the runtime links them so.
                let mut place = side.clone();
                place.selector = None;
                let shape = side.selector.map(|s| (s.index_slot, s.arms));
                let arm = side.selector.map(|s| s.arm);
                let (first, first_shape, arms) = places
                    .entry(place)
                    .or_insert_with(|| (i, shape, BTreeSet::new()));
                if *first_shape != shape || !arms.insert(arm) {
                    return Err((
                        Some(i),
                        format!(
                            "it starts where trace {first} does (function {}, pc {}): one side trace per place, or per arm of one br_table there",
                            side.func_index, side.pc
                        ),
                    ));
                }
            }
        }
        check_trace(t).map_err(|what| (Some(i), what))?;
    }
    Ok(())
}

/// The rules of a side trace's place.
fn check_side(t: &CachedTrace, side: &ir::SideStart) -> Result<(), String> {
    if side.func_index != t.func_index {
        return Err(format!(
            "its place is in function {}, its entry in function {}",
            side.func_index, t.func_index
        ));
    }
    if side.pc > MAX_EXIT_PC {
        return Err(format!(
            "it starts at pc {}, beyond the limit of {MAX_EXIT_PC}",
            side.pc
        ));
    }
    if side.calls.len() > ir::binary::MAX_INLINED_CALLS as usize {
        return Err(format!(
            "it starts inside {} calls, more than the limit of {}",
            side.calls.len(),
            ir::binary::MAX_INLINED_CALLS
        ));
    }
    if let Some(sel) = side.selector {
        slot(sel.index_slot)?;
        if sel.arm >= sel.arms {
            return Err(format!(
                "it is for arm {} of a br_table of {} arms",
                sel.arm, sel.arms
            ));
        }
    }
    if matches!(t.shipped.end, ir::End::Loop { .. }) {
        return Err("it is a side trace, yet it loops".to_string());
    }
    Ok(())
}

pub(crate) fn check_trace(t: &CachedTrace) -> Result<(), String> {
    if let Some(side) = &t.side {
        check_side(t, side)?;
    }
    match (&t.verdict, t.emission) {
        (ProofVerdict::Proven, EmitKind::Optimized) => {
            if t.cost_after > t.cost_before {
                return Err(format!(
                    "the optimized code costs {} after, more than the {} before",
                    t.cost_after, t.cost_before
                ));
            }
        }
        (ProofVerdict::Unproven { reason }, EmitKind::Naive) => {
            if t.cost_after != t.cost_before {
                return Err(format!(
                    "the recorded trace ships, yet its cost after ({}) differs from before ({})",
                    t.cost_after, t.cost_before
                ));
            }
            text(reason, "the reason")?;
        }
        (verdict, kind) => {
            return Err(format!(
                "{} code with verdict {verdict}: only a proven candidate ships optimized, \
                 and an unproven one ships the recorded trace",
                kind.name()
            ))
        }
    }
    text(&t.solver, "the solver")?;
    list_len(t.inputs.len(), "inputs")?;
    list_len(t.carried.len(), "carried slots")?;
    list_len(t.globals_written.len(), "globals written")?;
    list_len(t.exits.len(), "exits")?;
    increasing(&t.inputs, "inputs")?;
    increasing(&t.carried, "carried slots")?;
    increasing(&t.globals_written, "globals written")?;
    let ids: Vec<u32> = t.exits.iter().map(|e| e.id).collect();
    increasing(&ids, "exit ids")?;
    for input in &t.inputs {
        if let Source::Slot(s) = input.source {
            slot(s)?;
        }
    }
    for &s in &t.carried {
        slot(s)?;
    }
    for e in &t.exits {
        if e.pc > MAX_EXIT_PC {
            return Err(format!(
                "exit {} resumes at pc {}, beyond the limit of {MAX_EXIT_PC}",
                e.id, e.pc
            ));
        }
        list_len(e.slots.len(), "slots of an exit")?;
        increasing(&e.slots, "slots of an exit")?;
        for &s in &e.slots {
            slot(s)?;
        }
    }
    Ok(())
}

/// Checks that the trace a cache entry ships is a valid trace whose entry and exit maps
/// are the entry's. (The reader then checks that its code is what the trace emits.)
pub(crate) fn check_shipped(t: &CachedTrace) -> Result<(), String> {
    ir::validate::validate(&t.shipped).map_err(|e| format!("its trace is invalid: {e}"))?;
    let (inputs, carried, globals_written, exits) = CachedTrace::maps_of(&t.shipped);
    if (&inputs, &carried, &globals_written, &exits)
        != (&t.inputs, &t.carried, &t.globals_written, &t.exits)
    {
        return Err("its entry and exit maps disagree with its trace".to_string());
    }
    Ok(())
}

fn text(text: &str, what: &str) -> Result<(), String> {
    if text.len() > MAX_TEXT_BYTES as usize {
        return Err(format!(
            "{what} is {} bytes, more than the limit of {MAX_TEXT_BYTES}",
            text.len()
        ));
    }
    Ok(())
}

fn list_len(len: usize, what: &str) -> Result<(), String> {
    if len > MAX_LIST_LEN as usize {
        return Err(format!(
            "{len} {what}, more than the limit of {MAX_LIST_LEN}"
        ));
    }
    Ok(())
}

/// Lists are sets in canonical order, so one meaning has one encoding.
fn increasing<T: Ord + std::fmt::Debug>(items: &[T], what: &str) -> Result<(), String> {
    match items.windows(2).find(|w| w[0] >= w[1]) {
        Some(w) => Err(format!(
            "the {what} are not strictly increasing ({:?} before {:?})",
            w[0], w[1]
        )),
        None => Ok(()),
    }
}

fn slot(s: u32) -> Result<(), String> {
    if s >= MAX_FRAME_SLOTS {
        return Err(format!(
            "it names frame slot {s}, beyond the limit of {MAX_FRAME_SLOTS}"
        ));
    }
    Ok(())
}

pub(crate) fn is_hex_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
