//! One `ir::Trace` → one wasm function, following the ABI of `abi.rs`.
//!
//! The function's shape:
//!
//! ```text
//! (func (param $frame i32) (result i32) (local ...)
//!   ;; carried slots (written by a loop end): raw copies from the frame
//!   ;; slot inputs that no loop end rewrites: read once from the frame
//!   loop                      ;; only for a trace that ends in a loop
//!     ;; carried slot inputs from their raw copies; global inputs by global.get
//!     ;; the body, in order; a guard is `if <exit> end`, the exit returns its id
//!     ;; loop end: new raw copies of the carried slots, br 0
//!   end
//!   unreachable)
//! ```
//!
//! A trace that ends in an exit has no loop and ends with that exit's code.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ir::{End, Exit, Inst, LoadKind, Operand, Source, StoreKind, Trace, Type, ValueId};
use wasm_encoder::{
    BlockType, Function, Ieee32, Ieee64, Instruction, MemArg, MemArgTarget, ValType,
};

use crate::abi::{
    GuestInfo, FRAME_MEMORY_INDEX, GUEST_MEMORY_INDEX, ITERATION_WORD_BYTES, MAX_FRAME_SLOTS,
    SLOT_BYTES,
};
use crate::error::EmitError;
use crate::numop;
use crate::region::{Region, MAX_HANDOVERS_PER_CALL};
use crate::tree::{self, Arms, Branch, Tree};

/// The first parameter of every function: the frame's address in memory 1.
const FRAME_PARAM: u32 = 0;
/// A region body's second parameter: the member to run (first at entry, then after each
/// hand-over).
const MEMBER_PARAM: u32 = 1;

/// What a trace needs from the module around it.
#[derive(Debug, Clone, Default)]
pub struct TraceNeeds {
    /// Guest globals read or written.
    pub globals: BTreeSet<u32>,
    /// One past the highest frame slot named (0 if none).
    pub frame_slots: u32,
}

/// Checks that `trace` (the module's `index`-th) can be emitted against `guest`, and says
/// what it needs.
pub fn check(trace: &Trace, index: u32, guest: &GuestInfo) -> Result<TraceNeeds, EmitError> {
    ir::validate::validate(trace).map_err(|error| EmitError::Invalid {
        trace: index,
        error,
    })?;
    let mut needs = TraceNeeds::default();
    let mut slot = |s: u32| {
        if s >= MAX_FRAME_SLOTS {
            return Err(EmitError::SlotTooLarge {
                trace: index,
                slot: s,
            });
        }
        needs.frame_slots = needs.frame_slots.max(s + 1);
        Ok(())
    };
    for input in &trace.inputs {
        if let Source::Slot(s) = input.source {
            slot(s)?;
        }
    }
    for exit in trace.exits() {
        for &(s, _) in &exit.state {
            slot(s)?;
        }
    }
    for &(s, _) in trace.end.state() {
        slot(s)?;
    }
    let known = |global: u32| {
        guest.globals.get(&global).ok_or(EmitError::UnknownGlobal {
            trace: index,
            global,
        })
    };
    for input in &trace.inputs {
        if let Source::Global(g) = input.source {
            known(g)?;
            needs.globals.insert(g);
        }
    }
    for inst in &trace.body {
        if let Inst::GlobalSet { global, .. } = *inst {
            if !known(global)?.mutable {
                return Err(EmitError::ImmutableGlobal {
                    trace: index,
                    global,
                });
            }
            needs.globals.insert(global);
        }
    }
    Ok(needs)
}

/// Checks that `tree` (the module's `index`-th function) can be emitted against `guest`:
/// its root and every side trace as [`check`] does, and its shape; says what it needs.
pub fn check_tree(tree: &Tree, index: u32, guest: &GuestInfo) -> Result<TraceNeeds, EmitError> {
    tree.check_shape(index)?;
    let mut needs = check(&tree.root, index, guest)?;
    for side in tree.sides() {
        let more = check(side, index, guest)?;
        needs.globals.extend(more.globals);
        needs.frame_slots = needs.frame_slots.max(more.frame_slots);
    }
    for branch in &tree.branches {
        if let Arms::Table { index_slot, .. } = branch.arms {
            if index_slot >= MAX_FRAME_SLOTS {
                return Err(EmitError::SlotTooLarge {
                    trace: index,
                    slot: index_slot,
                });
            }
            needs.frame_slots = needs.frame_slots.max(index_slot + 1);
        }
    }
    Ok(needs)
}

/// Emits `tree`, which [`check_tree`] accepted against `guest` (see `tree.rs`).
pub fn emit_tree(tree: &Tree, guest: &GuestInfo, global_index: &BTreeMap<u32, u32>) -> Function {
    let mut emitter = Emitter::new(guest, global_index);
    emitter.tree = Some(TreeContext {
        tree,
        branches: tree::branches_by_exit(tree),
        bases: tree
            .sides()
            .zip(tree.side_bases())
            .map(|(side, base)| (side as *const Trace, base))
            .collect(),
    });
    emitter.trace(&tree.root, tree.carried());
    emitter.finish()
}

/// Checks that `region` (entered first as the module's `index`-th function) can be emitted
/// against `guest`: each member as [`check`] does, and its shape; says what it needs.
pub fn check_region(
    region: &Region,
    index: u32,
    guest: &GuestInfo,
) -> Result<TraceNeeds, EmitError> {
    region.check_shape(index)?;
    let mut needs = TraceNeeds::default();
    for member in &region.members {
        let more = check(member, index, guest)?;
        needs.globals.extend(more.globals);
        needs.frame_slots = needs.frame_slots.max(more.frame_slots);
    }
    Ok(needs)
}

/// Emits the body of `region`, which [`check_region`] accepted against `guest`:
/// `(func (param $frame i32) (param $member i32) (result i32))` (see `region.rs`).
pub fn emit_region(
    region: &Region,
    guest: &GuestInfo,
    global_index: &BTreeMap<u32, u32>,
) -> Function {
    let mut emitter = Emitter::new(guest, global_index);
    emitter.params = 2;
    emitter.region(region);
    emitter.finish()
}

/// Emits an entry of a region: a function with a trace's ABI that runs the region's body
/// (function `body`) from member `member`.
pub fn emit_region_entry(body: u32, member: u32) -> Function {
    let mut function = Function::new([]);
    function.instruction(&Instruction::LocalGet(FRAME_PARAM));
    function.instruction(&Instruction::I32Const(member as i32));
    function.instruction(&Instruction::Call(body));
    function.instruction(&Instruction::End);
    function
}

/// Emits `trace`, which [`check`] accepted against `guest`. `global_index` maps each guest
/// global the trace touches to its index in the module (the imports' order).
pub fn emit(trace: &Trace, guest: &GuestInfo, global_index: &BTreeMap<u32, u32>) -> Function {
    let mut emitter = Emitter::new(guest, global_index);
    let carried = trace.end.state().iter().map(|&(s, _)| s);
    let carried = match trace.end {
        End::Loop { .. } => carried.collect(),
        End::Exit(_) => BTreeSet::new(),
    };
    emitter.trace(trace, carried);
    emitter.finish()
}

/// Locals as wasm declares them: runs of one type.
fn run_lengths(locals: &[ValType]) -> Vec<(u32, ValType)> {
    let mut runs: Vec<(u32, ValType)> = Vec::new();
    for &ty in locals {
        match runs.last_mut() {
            Some((n, last)) if *last == ty => *n += 1,
            _ => runs.push((1, ty)),
        }
    }
    runs
}

fn val_type(ty: Type) -> ValType {
    match ty {
        Type::I32 => ValType::I32,
        Type::I64 => ValType::I64,
        Type::F32 => ValType::F32,
        Type::F64 => ValType::F64,
    }
}

struct Emitter<'a> {
    guest: &'a GuestInfo,
    global_index: &'a BTreeMap<u32, u32>,
    /// The function's parameters (all i32): the frame, and a region's member.
    params: u32,
    /// Types of the locals after the parameters.
    locals: Vec<ValType>,
    /// Each SSA value's local and type.
    values: HashMap<ValueId, (u32, Type)>,
    /// Slots a loop end writes → the i64 local holding their current raw value.
    carried: BTreeMap<u32, u32>,
    /// A loop trace's count of completed iterations (an i64 local).
    iterations: Option<u32>,
    code: Vec<Instruction<'static>>,
    /// Blocks open at this point of the code (`block`, `loop`, `if`), and how many were
    /// open inside the trace's `loop` (so a branch back to it knows its label).
    depth: u32,
    loop_depth: u32,
    /// Added to the exit ids of the trace being emitted: a side trace's in a tree.
    exit_base: u32,
    /// Emitting a tree: its branches, taken while its root's body is emitted.
    tree: Option<TreeContext<'a>>,
    /// Emitting a region: where the current member's linked exits go on.
    region: Option<RegionContext>,
}

/// What the emitter of a region keeps.
struct RegionContext {
    /// The current member's linked exits: exit id → the member that runs next.
    links: BTreeMap<u32, u32>,
    /// The depth of the dispatch loop (a hand-over branches to its top).
    dispatch_depth: u32,
}

/// What the emitter of a tree keeps.
struct TreeContext<'a> {
    tree: &'a Tree,
    /// By root exit id; empty while a side trace is emitted (one level is inlined).
    branches: BTreeMap<u32, &'a Branch>,
    /// Each side trace's first exit id (`Tree::side_bases`), by the side trace's address
    /// in the tree: the emitter meets side traces in the root's body order, which need not
    /// be the order of `Tree::branches` that numbers them.
    bases: HashMap<*const Trace, u32>,
}

impl<'a> Emitter<'a> {
    fn new(guest: &'a GuestInfo, global_index: &'a BTreeMap<u32, u32>) -> Emitter<'a> {
        Emitter {
            guest,
            global_index,
            params: 1,
            locals: Vec::new(),
            values: HashMap::new(),
            carried: BTreeMap::new(),
            iterations: None,
            code: Vec::new(),
            depth: 0,
            loop_depth: 0,
            exit_base: 0,
            tree: None,
            region: None,
        }
    }

    fn finish(self) -> Function {
        let mut function = Function::new(run_lengths(&self.locals));
        for instruction in &self.code {
            function.instruction(instruction);
        }
        function
    }

    /// Pushes an instruction that opens a block.
    fn open(&mut self, instruction: Instruction<'static>) {
        self.depth += 1;
        self.push(instruction);
    }

    fn close(&mut self) {
        self.depth -= 1;
        self.push(Instruction::End);
    }

    fn local(&mut self, ty: ValType) -> u32 {
        self.locals.push(ty);
        // The parameters come first.
        self.locals.len() as u32 + self.params - 1
    }

    fn define(&mut self, value: ValueId, ty: Type) -> u32 {
        let local = self.local(val_type(ty));
        self.values.insert(value, (local, ty));
        local
    }

    fn push(&mut self, instruction: Instruction<'static>) {
        self.code.push(instruction);
    }

    /// Emits a trace whose frame slots `carried` live in locals (see `tree.rs`; for a lone
    /// trace, the slots its loop end writes).
    fn trace(&mut self, trace: &Trace, carried: BTreeSet<u32>) {
        self.carry(carried);
        self.trace_code(trace);
        self.push(Instruction::End);
    }

    /// Reads frame slots `slots` into the locals that carry them from now on.
    fn carry(&mut self, slots: impl IntoIterator<Item = u32>) {
        for slot in slots {
            let local = self.local(ValType::I64);
            self.carried.insert(slot, local);
            self.push(Instruction::LocalGet(FRAME_PARAM));
            self.push(Instruction::I64Load(frame_arg(slot)));
            self.push(Instruction::LocalSet(local));
        }
    }

    /// A trace's inputs, body and end, with the carried slots in their locals: a loop
    /// trace iterates in a `loop` of its own; every way out leaves, or (in a region) hands
    /// over.
    fn trace_code(&mut self, trace: &Trace) {
        // Inputs that stay the same across iterations are read once, before the loop.
        for input in &trace.inputs {
            let local = self.define(input.value, input.ty);
            if let Source::Slot(slot) = input.source {
                if !self.carried.contains_key(&slot) {
                    self.push(Instruction::LocalGet(FRAME_PARAM));
                    self.push(Instruction::I64Load(frame_arg(slot)));
                    self.push_from_raw(input.ty);
                    self.push(Instruction::LocalSet(local));
                }
            }
        }
        if matches!(trace.end, End::Loop { .. }) {
            if self.iterations.is_none() {
                self.iterations = Some(self.local(ValType::I64));
            }
            self.open(Instruction::Loop(BlockType::Empty));
            self.loop_depth = self.depth;
        }
        for input in &trace.inputs {
            let (local, ty) = self.values[&input.value];
            match input.source {
                Source::Slot(slot) => {
                    if let Some(&raw) = self.carried.get(&slot) {
                        self.push(Instruction::LocalGet(raw));
                        self.push_from_raw(ty);
                        self.push(Instruction::LocalSet(local));
                    }
                }
                Source::Global(global) => {
                    let global_ty = self.guest.globals[&global].ty;
                    self.push(Instruction::GlobalGet(self.global_index[&global]));
                    self.convert(global_ty, ty);
                    self.push(Instruction::LocalSet(local));
                }
            }
        }
        for inst in &trace.body {
            self.inst(inst);
        }
        match &trace.end {
            End::Loop { state } => {
                for &(slot, operand) in state {
                    self.raw(operand);
                    self.push(Instruction::LocalSet(self.carried[&slot]));
                }
                self.loop_back();
                self.close();
                // The loop only leaves through exits, which return or hand over.
                self.push(Instruction::Unreachable);
            }
            // A tree's root that ends in an exit may go on in a side trace there too.
            End::Exit(exit) => self.take_exit(exit),
        }
    }

    /// Leaves at `exit`, or in a tree goes on in the side code at it, if any.
    fn take_exit(&mut self, exit: &Exit) {
        let branch = self
            .tree
            .as_ref()
            .and_then(|t| t.branches.get(&exit.id).copied());
        match branch {
            Some(branch) => self.branch(exit, branch),
            None => self.leave(exit),
        }
    }

    /// Emits a region (see `region.rs`): the carried slots into locals, then the dispatch
    /// loop, whose `br_table` on the member parameter reaches each member's code.
    fn region(&mut self, region: &Region) {
        self.carry(region.carried());
        // Loop iterations and hand-overs of the call, for the iteration word.
        self.iterations = Some(self.local(ValType::I64));
        self.open(Instruction::Loop(BlockType::Empty));
        let dispatch_depth = self.depth;
        // A block per member, the first member's innermost: member m's code follows the
        // end of the block `br m` leaves.
        let n = region.members.len() as u32;
        for _ in 0..n {
            self.open(Instruction::Block(BlockType::Empty));
        }
        // `check_shape` keeps at least one member; a member number past the last (which
        // no entry or link passes) runs the last.
        self.push(Instruction::LocalGet(MEMBER_PARAM));
        self.push(Instruction::BrTable((0..n - 1).collect(), n - 1));
        let bases = region.member_bases();
        for (m, member) in region.members.iter().enumerate() {
            self.close();
            self.exit_base = bases[m];
            self.region = Some(RegionContext {
                links: region
                    .links
                    .range((m as u32, 0)..=(m as u32, u32::MAX))
                    .map(|(&(_, id), &next)| (id, next))
                    .collect(),
                dispatch_depth,
            });
            // A member's values are its own.
            self.values.clear();
            self.trace_code(member);
        }
        self.close();
        // Members never fall through: they leave or hand over.
        self.push(Instruction::Unreachable);
        self.push(Instruction::End);
    }

    /// An exit outside a tree's branches: in a region, a linked one hands over (within
    /// the call's budget); otherwise, or past the budget, it leaves.
    fn leave(&mut self, exit: &Exit) {
        let next = self
            .region
            .as_ref()
            .and_then(|r| r.links.get(&exit.id).copied());
        if let Some(next) = next {
            self.hand_over(exit, next);
        }
        self.exit(exit);
    }

    /// Goes on in member `next` if the call has handed over fewer than
    /// [`MAX_HANDOVERS_PER_CALL`] times: the exit's state becomes the carried slots'
    /// values (every slot a linked exit writes is carried), and the dispatch loop runs
    /// `next`. Falls through otherwise.
    fn hand_over(&mut self, exit: &Exit, next: u32) {
        let (Some(iterations), Some(dispatch_depth)) = (
            self.iterations,
            self.region.as_ref().map(|r| r.dispatch_depth),
        ) else {
            return;
        };
        self.push(Instruction::LocalGet(iterations));
        self.push(Instruction::I64Const(MAX_HANDOVERS_PER_CALL as i64));
        self.push(Instruction::I64LtU);
        self.open(Instruction::If(BlockType::Empty));
        for &(slot, operand) in &exit.state {
            self.raw(operand);
            self.push(Instruction::LocalSet(self.carried[&slot]));
        }
        self.push(Instruction::LocalGet(iterations));
        self.push(Instruction::I64Const(1));
        self.push(Instruction::I64Add);
        self.push(Instruction::LocalSet(iterations));
        self.push(Instruction::I32Const(next as i32));
        self.push(Instruction::LocalSet(MEMBER_PARAM));
        self.push(Instruction::Br(self.depth - dispatch_depth));
        self.close();
    }

    /// Counts a completed iteration and branches to the top of the loop. The carried
    /// locals hold the next iteration's slots.
    fn loop_back(&mut self) {
        if let Some(iterations) = self.iterations {
            self.push(Instruction::LocalGet(iterations));
            self.push(Instruction::I64Const(1));
            self.push(Instruction::I64Add);
            self.push(Instruction::LocalSet(iterations));
        }
        self.push(Instruction::Br(self.depth - self.loop_depth));
    }

    /// A root exit with a branch: its state becomes current, then the side code runs. A
    /// `br_table` arm without a side trace leaves through the exit after all.
    fn branch(&mut self, exit: &Exit, branch: &Branch) {
        for &(slot, operand) in &exit.state {
            self.raw(operand);
            self.push(Instruction::LocalSet(self.carried[&slot]));
        }
        match &branch.arms {
            Arms::One(side) => self.side(side),
            Arms::Table { index_slot, arms } => {
                let inlined: Vec<&Trace> = arms.iter().flatten().collect();
                // Blocks, outermost first: one that falls through to the exit, then one per
                // inlined arm, the first arm's innermost. Arm p's code follows its block's
                // end, so `br p` reaches it; `br inlined.len()` reaches the exit.
                self.open(Instruction::Block(BlockType::Empty));
                for _ in &inlined {
                    self.open(Instruction::Block(BlockType::Empty));
                }
                let mut labels = Vec::with_capacity(arms.len());
                let mut position = 0;
                for arm in arms {
                    labels.push(match arm {
                        Some(_) => {
                            position += 1;
                            position - 1
                        }
                        None => inlined.len() as u32,
                    });
                }
                // `check_shape` keeps at least one arm; the last is the default.
                let default = labels.pop().expect("a table has arms");
                self.slot_value(*index_slot, Type::I32);
                self.push(Instruction::BrTable(labels.into(), default));
                for side in inlined {
                    self.close();
                    self.side(side);
                }
                self.close();
                self.exit(exit);
            }
        }
    }

    /// A side trace inlined at a root exit (whose state the carried locals hold). Its
    /// values are its own; it never falls through (it exits or loops back).
    fn side(&mut self, side: &Trace) {
        let context = self
            .tree
            .as_mut()
            .expect("side traces are emitted in trees");
        let base = context.bases[&(side as *const Trace)];
        let tree = context.tree;
        let branches = std::mem::take(&mut context.branches);
        let root_values = std::mem::take(&mut self.values);
        let root_base = std::mem::replace(&mut self.exit_base, base);
        for input in &side.inputs {
            let local = self.define(input.value, input.ty);
            match input.source {
                Source::Slot(slot) => self.slot_value(slot, input.ty),
                Source::Global(global) => {
                    let global_ty = self.guest.globals[&global].ty;
                    self.push(Instruction::GlobalGet(self.global_index[&global]));
                    self.convert(global_ty, input.ty);
                }
            }
            self.push(Instruction::LocalSet(local));
        }
        for inst in &side.body {
            self.inst(inst);
        }
        match &side.end {
            End::Exit(end) if tree.loops_back(side, end) => {
                for &(slot, operand) in &end.state {
                    self.raw(operand);
                    self.push(Instruction::LocalSet(self.carried[&slot]));
                }
                self.loop_back();
            }
            End::Exit(end) => self.exit(end),
            // `check_shape` refuses side traces that loop.
            End::Loop { .. } => self.push(Instruction::Unreachable),
        }
        self.values = root_values;
        self.exit_base = root_base;
        if let Some(context) = self.tree.as_mut() {
            context.branches = branches;
        }
    }

    /// Pushes the current value of frame slot `slot` as a `ty`: its carried local, or the
    /// frame (which holds it unchanged since entry).
    fn slot_value(&mut self, slot: u32, ty: Type) {
        match self.carried.get(&slot) {
            Some(&raw) => self.push(Instruction::LocalGet(raw)),
            None => {
                self.push(Instruction::LocalGet(FRAME_PARAM));
                self.push(Instruction::I64Load(frame_arg(slot)));
            }
        }
        self.push_from_raw(ty);
    }

    /// Writes the exit's state and the carried slots it does not name, returns its id.
    fn exit(&mut self, exit: &Exit) {
        for &(slot, operand) in &exit.state {
            self.push(Instruction::LocalGet(FRAME_PARAM));
            self.raw(operand);
            self.push(Instruction::I64Store(frame_arg(slot)));
        }
        let named: BTreeSet<u32> = exit.state.iter().map(|&(s, _)| s).collect();
        let carried: Vec<(u32, u32)> = self.carried.iter().map(|(&s, &l)| (s, l)).collect();
        for (slot, local) in carried {
            if !named.contains(&slot) {
                self.push(Instruction::LocalGet(FRAME_PARAM));
                self.push(Instruction::LocalGet(local));
                self.push(Instruction::I64Store(frame_arg(slot)));
            }
        }
        // The iteration word (`abi.rs`): iterations completed, at `$frame - 8`.
        self.push(Instruction::LocalGet(FRAME_PARAM));
        self.push(Instruction::I32Const(ITERATION_WORD_BYTES as i32));
        self.push(Instruction::I32Sub);
        match self.iterations {
            Some(iterations) => self.push(Instruction::LocalGet(iterations)),
            None => self.push(Instruction::I64Const(0)),
        }
        self.push(Instruction::I64Store(frame_arg(0)));
        // Exit ids are the trace's own numbering (after its base, in a tree); the runtime
        // reads them back as u32. `check_shape` keeps a tree's ids within 32 bits.
        self.push(Instruction::I32Const(
            self.exit_base.wrapping_add(exit.id) as i32
        ));
        self.push(Instruction::Return);
    }

    fn inst(&mut self, inst: &Inst) {
        match inst {
            Inst::Num { dst, op, args } => {
                for (&arg, &ty) in args.iter().zip(op.params()) {
                    self.typed(arg, ty);
                }
                self.push(numop::instruction(*op));
                let local = self.define(*dst, op.result());
                self.push(Instruction::LocalSet(local));
            }
            Inst::Select {
                dst,
                ty,
                cond,
                a,
                b,
            } => {
                self.typed(*a, *ty);
                self.typed(*b, *ty);
                self.typed(*cond, Type::I32);
                self.push(Instruction::Select);
                let local = self.define(*dst, *ty);
                self.push(Instruction::LocalSet(local));
            }
            Inst::Load {
                dst,
                kind,
                offset,
                addr,
            } => {
                self.typed(*addr, Type::I32);
                self.push(load(*kind, guest_arg(*offset, kind.bytes())));
                let local = self.define(*dst, kind.result());
                self.push(Instruction::LocalSet(local));
            }
            Inst::Store {
                kind,
                offset,
                addr,
                value,
            } => {
                self.typed(*addr, Type::I32);
                self.typed(*value, kind.operand());
                self.push(store(*kind, guest_arg(*offset, kind.bytes())));
            }
            Inst::GlobalSet { global, value } => {
                let global_ty = self.guest.globals[global].ty;
                self.global_value(*value, global_ty);
                self.push(Instruction::GlobalSet(self.global_index[global]));
            }
            Inst::MemorySize { dst } => {
                self.push(Instruction::MemorySize(GUEST_MEMORY_INDEX));
                let local = self.define(*dst, Type::I32);
                self.push(Instruction::LocalSet(local));
            }
            Inst::MemoryGrow { dst, delta } => {
                self.typed(*delta, Type::I32);
                self.push(Instruction::MemoryGrow(GUEST_MEMORY_INDEX));
                let local = self.define(*dst, Type::I32);
                self.push(Instruction::LocalSet(local));
            }
            Inst::Guard { cond, expect, exit } => {
                self.typed(*cond, Type::I32);
                // Leave when `cond != 0` differs from `expect`.
                if *expect {
                    self.push(Instruction::I32Eqz);
                }
                self.open(Instruction::If(BlockType::Empty));
                self.take_exit(exit);
                self.close();
            }
        }
    }

    /// Pushes an operand as a value of `ty` (a constant's bits are of that type).
    fn typed(&mut self, operand: Operand, ty: Type) {
        match operand {
            Operand::Value(v) => {
                let (local, value_ty) = self.values[&v];
                self.push(Instruction::LocalGet(local));
                // `validate` guarantees the types agree; a raw conversion keeps the bits
                // if some future operand rule allowed otherwise.
                self.convert(value_ty, ty);
            }
            Operand::Const(bits) => self.constant(bits, ty),
        }
    }

    /// Pushes an operand as its raw u64 (32-bit types zero-extended, floats as bits).
    fn raw(&mut self, operand: Operand) {
        match operand {
            Operand::Value(v) => {
                let (local, ty) = self.values[&v];
                self.push(Instruction::LocalGet(local));
                self.push_to_raw(ty);
            }
            Operand::Const(bits) => self.push(Instruction::I64Const(bits as i64)),
        }
    }

    /// Pushes a `global.set` operand, raw (see `Inst::operands`), as a value of a global
    /// of type `ty`: a value keeps its bits, a constant is the low bits of its pattern.
    fn global_value(&mut self, operand: Operand, ty: Type) {
        match operand {
            Operand::Value(_) => self.typed(operand, ty),
            Operand::Const(bits) => self.constant(bits, ty),
        }
    }

    fn constant(&mut self, bits: u64, ty: Type) {
        self.push(match ty {
            // A 32-bit constant's bits are its low half (`Type::holds`).
            Type::I32 => Instruction::I32Const(bits as u32 as i32),
            Type::I64 => Instruction::I64Const(bits as i64),
            Type::F32 => Instruction::F32Const(Ieee32::new(bits as u32)),
            Type::F64 => Instruction::F64Const(Ieee64::new(bits)),
        });
    }

    /// Converts the value on the stack from `from` to `to`, keeping its raw bits.
    fn convert(&mut self, from: Type, to: Type) {
        if from != to {
            self.push_to_raw(from);
            self.push_from_raw(to);
        }
    }

    /// The value of type `ty` on the stack → its raw i64.
    fn push_to_raw(&mut self, ty: Type) {
        match ty {
            Type::I32 => self.push(Instruction::I64ExtendI32U),
            Type::I64 => {}
            Type::F32 => {
                self.push(Instruction::I32ReinterpretF32);
                self.push(Instruction::I64ExtendI32U);
            }
            Type::F64 => self.push(Instruction::I64ReinterpretF64),
        }
    }

    /// The raw i64 on the stack → a value of type `ty` (32-bit types take the low half).
    fn push_from_raw(&mut self, ty: Type) {
        match ty {
            Type::I32 => self.push(Instruction::I32WrapI64),
            Type::I64 => {}
            Type::F32 => {
                self.push(Instruction::I32WrapI64);
                self.push(Instruction::F32ReinterpretI32);
            }
            Type::F64 => self.push(Instruction::F64ReinterpretI64),
        }
    }
}

/// The memarg of slot `slot` of the frame: `$frame + 8*slot` in memory 1.
fn frame_arg(slot: u32) -> MemArg {
    MemArg {
        // `check` bounds the slot by MAX_FRAME_SLOTS, so this fits a 32-bit offset.
        offset: u64::from(slot) * SLOT_BYTES,
        align: 3,
        target: MemArgTarget::Memory(FRAME_MEMORY_INDEX),
        ordering: None,
    }
}

/// The memarg of a guest access of `bytes` bytes: natural alignment, as a hint only.
fn guest_arg(offset: u32, bytes: u32) -> MemArg {
    MemArg {
        offset: u64::from(offset),
        align: bytes.trailing_zeros(),
        target: MemArgTarget::Memory(GUEST_MEMORY_INDEX),
        ordering: None,
    }
}

fn load(kind: LoadKind, arg: MemArg) -> Instruction<'static> {
    match kind {
        LoadKind::I32 => Instruction::I32Load(arg),
        LoadKind::I64 => Instruction::I64Load(arg),
        LoadKind::F32 => Instruction::F32Load(arg),
        LoadKind::F64 => Instruction::F64Load(arg),
        LoadKind::I32_8S => Instruction::I32Load8S(arg),
        LoadKind::I32_8U => Instruction::I32Load8U(arg),
        LoadKind::I32_16S => Instruction::I32Load16S(arg),
        LoadKind::I32_16U => Instruction::I32Load16U(arg),
        LoadKind::I64_8S => Instruction::I64Load8S(arg),
        LoadKind::I64_8U => Instruction::I64Load8U(arg),
        LoadKind::I64_16S => Instruction::I64Load16S(arg),
        LoadKind::I64_16U => Instruction::I64Load16U(arg),
        LoadKind::I64_32S => Instruction::I64Load32S(arg),
        LoadKind::I64_32U => Instruction::I64Load32U(arg),
    }
}

fn store(kind: StoreKind, arg: MemArg) -> Instruction<'static> {
    match kind {
        StoreKind::I32 => Instruction::I32Store(arg),
        StoreKind::I64 => Instruction::I64Store(arg),
        StoreKind::F32 => Instruction::F32Store(arg),
        StoreKind::F64 => Instruction::F64Store(arg),
        StoreKind::I32_8 => Instruction::I32Store8(arg),
        StoreKind::I32_16 => Instruction::I32Store16(arg),
        StoreKind::I64_8 => Instruction::I64Store8(arg),
        StoreKind::I64_16 => Instruction::I64Store16(arg),
        StoreKind::I64_32 => Instruction::I64Store32(arg),
    }
}
