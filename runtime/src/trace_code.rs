//! What the runtime needs to know of trace code: each trace function's anchor key, where
//! its exits resume the interpreter, what frame slots and globals it touches; a module of
//! them built with `emit`; and the guest description `emit` needs.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use emit::{EmitError, EmitKind, GlobalInfo, GuestInfo, ModuleBuilder, Region, Tree};
use ir::{InlinedCall, Trace, Type};
use trace_capture::Module;

/// A trace's key (its anchor: function index and byte offset in the module) and where
/// each of its exits resumes the interpreter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceMeta {
    pub func_index: u32,
    pub anchor_offset: u32,
    /// Exit id → interpreter pc (in the anchor's function, or in the innermost call of
    /// `exit_calls` for the exits there).
    pub exits: BTreeMap<u32, u32>,
    /// Exit id → the inlined calls it leaves inside (`ir::Exit::calls`), for the exits
    /// that leave inside calls.
    pub exit_calls: BTreeMap<u32, Rc<[InlinedCall]>>,
    /// Exit id → the `expect` of the guard it belongs to, for guards' exits.
    pub exit_expects: BTreeMap<u32, bool>,
    /// What the trace function touches, so a call copies only that; `None`: the whole
    /// frame and every imported global.
    pub touches: Option<Touches>,
    /// The trace the function was emitted from, if known: a root's tree grows from it
    /// (`emit::tree`), and a side trace is inlined from it. `None` for a tree.
    pub ir: Option<Rc<Trace>>,
    /// For a side trace a cache library holds: where it is linked. `None` for a loop
    /// trace (keyed by its anchor), a tree, or a side trace compiled live (linked where
    /// the tier asked for it).
    pub side: Option<ir::SideStart>,
}

/// The frame slots and globals one trace function reads and writes (`emit`'s ABI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touches {
    /// Slots read at entry: the slot inputs and the slots a loop end carries.
    pub reads: Vec<u32>,
    /// Per exit id, the slots written: the exit's state and the carried slots.
    pub writes: BTreeMap<u32, Vec<u32>>,
    /// Guest globals read or written.
    pub globals: Vec<u32>,
}

impl Touches {
    /// What `trace`'s function touches.
    pub fn of(trace: &Trace) -> Touches {
        let carried: BTreeSet<u32> = match &trace.end {
            ir::End::Loop { state } => state.iter().map(|(s, _)| *s).collect(),
            ir::End::Exit(_) => BTreeSet::new(),
        };
        let mut reads = carried.clone();
        reads.extend(trace.inputs.iter().filter_map(|input| match input.source {
            ir::Source::Slot(s) => Some(s),
            ir::Source::Global(_) => None,
        }));
        let mut globals = BTreeSet::new();
        add_globals(trace, &mut globals);
        Touches {
            reads: reads.into_iter().collect(),
            writes: writes(trace.exits().map(|e| (e.id, e)), &carried),
            globals: globals.into_iter().collect(),
        }
    }

    /// What a trace tree's function touches (`emit::tree`): every slot input of its
    /// traces, its table index slots and its carried slots are read; each exit writes its
    /// state and the carried slots.
    pub fn of_tree(tree: &Tree) -> Touches {
        let mut globals = BTreeSet::new();
        for trace in std::iter::once(&tree.root).chain(tree.sides()) {
            add_globals(trace, &mut globals);
        }
        Touches {
            reads: tree.reads().into_iter().collect(),
            writes: writes(tree.exits(), &tree.carried()),
            globals: globals.into_iter().collect(),
        }
    }
}

impl Touches {
    /// What a region's entry functions touch (`emit::region`): every slot input of its
    /// members and its carried slots are read; each exit writes its state and the carried
    /// slots.
    pub fn of_region(region: &Region) -> Touches {
        let mut globals = BTreeSet::new();
        let mut reads = region.carried();
        for member in &region.members {
            add_globals(member, &mut globals);
            reads.extend(member.inputs.iter().filter_map(|input| match input.source {
                ir::Source::Slot(s) => Some(s),
                ir::Source::Global(_) => None,
            }));
        }
        let exits = region.exits();
        Touches {
            reads: reads.into_iter().collect(),
            writes: writes(exits.iter().map(|&(id, _, e)| (id, e)), &region.carried()),
            globals: globals.into_iter().collect(),
        }
    }
}

/// Adds the guest globals `trace` reads or writes to `globals`.
fn add_globals(trace: &Trace, globals: &mut BTreeSet<u32>) {
    for input in &trace.inputs {
        if let ir::Source::Global(g) = input.source {
            globals.insert(g);
        }
    }
    for inst in &trace.body {
        if let ir::Inst::GlobalSet { global, .. } = inst {
            globals.insert(*global);
        }
    }
}

/// Per exit id, the slots the exit writes: its state's and the carried ones.
fn writes<'a>(
    exits: impl IntoIterator<Item = (u32, &'a ir::Exit)>,
    carried: &BTreeSet<u32>,
) -> BTreeMap<u32, Vec<u32>> {
    exits
        .into_iter()
        .map(|(id, e)| {
            let mut slots: BTreeSet<u32> = e.state.iter().map(|(s, _)| *s).collect();
            slots.extend(carried);
            (id, slots.into_iter().collect())
        })
        .collect()
}

impl TraceMeta {
    /// The key, exits and touches of `trace`, recorded at `func_index`/`anchor_offset`.
    pub fn of(trace: &Trace, func_index: u32, anchor_offset: u32) -> TraceMeta {
        TraceMeta {
            func_index,
            anchor_offset,
            exits: trace.exits().map(|e| (e.id, e.pc)).collect(),
            exit_calls: exit_calls(trace.exits().map(|e| (e.id, e))),
            exit_expects: exit_expects([trace], trace.exits().map(|e| (e.id, e))),
            touches: Some(Touches::of(trace)),
            ir: Some(Rc::new(trace.clone())),
            side: None,
        }
    }
}

impl TraceMeta {
    /// The key, exits (by tree id) and touches of `tree`, whose root was recorded at
    /// `func_index`/`anchor_offset`.
    pub fn of_tree(tree: &Tree, func_index: u32, anchor_offset: u32) -> TraceMeta {
        TraceMeta {
            func_index,
            anchor_offset,
            exits: tree.exits().into_iter().map(|(id, e)| (id, e.pc)).collect(),
            exit_calls: exit_calls(tree.exits()),
            exit_expects: exit_expects(
                std::iter::once(&tree.root).chain(tree.sides()),
                tree.exits(),
            ),
            touches: Some(Touches::of_tree(tree)),
            ir: None,
            side: None,
        }
    }
}

impl TraceMeta {
    /// The key, exits (by region id) and touches of an entry of `region`, at the member
    /// recorded at `func_index`/`anchor_offset`. Every entry leaves through the same exits.
    pub fn of_region(region: &Region, func_index: u32, anchor_offset: u32) -> TraceMeta {
        let exits: Vec<(u32, &ir::Exit)> = region
            .exits()
            .into_iter()
            .map(|(id, _, e)| (id, e))
            .collect();
        TraceMeta {
            func_index,
            anchor_offset,
            exits: exits.iter().map(|&(id, e)| (id, e.pc)).collect(),
            exit_calls: exit_calls(exits.iter().copied()),
            exit_expects: exit_expects(&region.members, exits.iter().copied()),
            touches: Some(Touches::of_region(region)),
            ir: None,
            side: None,
        }
    }
}

/// Per exit id, the inlined calls the exit leaves inside, for those that do.
pub fn exit_calls<'a>(
    exits: impl IntoIterator<Item = (u32, &'a ir::Exit)>,
) -> BTreeMap<u32, Rc<[InlinedCall]>> {
    exits
        .into_iter()
        .filter(|(_, e)| !e.calls.is_empty())
        .map(|(id, e)| (id, Rc::from(e.calls.as_slice())))
        .collect()
}

/// Per exit id (of `exits`, which are exits of `traces`), the `expect` of the guard the
/// exit belongs to, for guards' exits.
pub fn exit_expects<'a>(
    traces: impl IntoIterator<Item = &'a Trace>,
    exits: impl IntoIterator<Item = (u32, &'a ir::Exit)>,
) -> BTreeMap<u32, bool> {
    // Exits by identity: a tree renumbers its side traces' exits.
    let expects: std::collections::HashMap<*const ir::Exit, bool> = traces
        .into_iter()
        .flat_map(|t| &t.body)
        .filter_map(|inst| match inst {
            ir::Inst::Guard { expect, exit, .. } => Some((exit as *const ir::Exit, *expect)),
            _ => None,
        })
        .collect();
    exits
        .into_iter()
        .filter_map(|(id, e)| Some((id, *expects.get(&(e as *const ir::Exit))?)))
        .collect()
}

/// A module of trace functions (`trace<i>` is `traces[i]`) with what the runtime needs
/// to call them.
#[derive(Debug, Clone)]
pub struct TraceCode {
    pub module: Vec<u8>,
    pub traces: Vec<TraceMeta>,
}

impl TraceCode {
    /// Emits `traces` (each with its anchor key) into one module for `guest`.
    pub fn build(
        guest: &GuestInfo,
        traces: &[(&Trace, u32, u32, EmitKind)],
    ) -> Result<TraceCode, EmitError> {
        let mut builder = ModuleBuilder::new(guest.clone())?;
        let mut metas = Vec::new();
        for &(trace, func_index, anchor_offset, kind) in traces {
            builder.add(trace, kind)?;
            metas.push(TraceMeta::of(trace, func_index, anchor_offset));
        }
        Ok(TraceCode {
            module: builder.finish_for_compiler()?,
            traces: metas,
        })
    }
}

impl TraceCode {
    /// Emits `tree` (its root keyed `func_index`/`anchor_offset`) as a module of one
    /// function.
    pub fn build_tree(
        guest: &GuestInfo,
        tree: &Tree,
        func_index: u32,
        anchor_offset: u32,
    ) -> Result<TraceCode, EmitError> {
        let mut builder = ModuleBuilder::new(guest.clone())?;
        builder.add_tree(tree)?;
        Ok(TraceCode {
            module: builder.finish_for_compiler()?,
            traces: vec![TraceMeta::of_tree(tree, func_index, anchor_offset)],
        })
    }
}

impl TraceCode {
    /// Emits `region` as a module of one function per entry, each keyed by `keys` (the
    /// function index and anchor offset of the entry's member, in `Region::entries`
    /// order).
    pub fn build_region(
        guest: &GuestInfo,
        region: &Region,
        keys: &[(u32, u32)],
    ) -> Result<TraceCode, EmitError> {
        let mut builder = ModuleBuilder::new(guest.clone())?;
        builder.add_region(region)?;
        Ok(TraceCode {
            module: builder.finish_for_compiler()?,
            traces: keys
                .iter()
                .map(|&(func_index, anchor_offset)| {
                    TraceMeta::of_region(region, func_index, anchor_offset)
                })
                .collect(),
        })
    }
}

/// What emitted code must know of a guest module: memory 0's limits, its globals' types.
pub fn guest_info(module: &Module) -> GuestInfo {
    let memory = module.memory_type(0);
    let mut globals = BTreeMap::new();
    for index in 0..module.global_count() {
        let Some(g) = module.global_type(index) else {
            continue;
        };
        let ty = match g.ty {
            trace_capture::ValType::I32 => Type::I32,
            trace_capture::ValType::I64 => Type::I64,
            trace_capture::ValType::F32 => Type::F32,
            trace_capture::ValType::F64 => Type::F64,
            // Traces never touch reference-typed globals.
            _ => continue,
        };
        globals.insert(
            index,
            GlobalInfo {
                ty,
                mutable: g.mutable,
            },
        );
    }
    GuestInfo {
        memory_min_pages: memory.map_or(0, |m| m.limits.min),
        memory_max_pages: memory.and_then(|m| m.limits.max),
        globals,
    }
}
