//! Lowering: one validated wasm function body to the register code of `code.rs`.
//!
//! The lowering walks the operators once, keeping a compile-time model of wasm's operand
//! stack. Each stack position `p` owns the frame slot `slot(p)`; an entry of the model
//! says where that position's value really is:
//!
//! - `Temp`: in its own slot (an instruction wrote it there);
//! - `Local(l)`: still in local `l` (a `local.get` that nothing has needed to copy yet);
//! - `Const(bits)`: a constant not yet written anywhere.
//!
//! So `local.get 0; local.get 1; i32.add; local.set 2` becomes one instruction,
//! `I32Add { dst: 2, a: 0, b: 1 }`. The price is care at the places where a lazy entry
//! could go stale or where wasm needs values in fixed places: a write to local `l`
//! first copies every `Local(l)` entry into its own slot; a block entry does the same
//! for every `Local` entry (its body may write any local); branches, block ends, calls
//! and returns put values in the slots their target expects (`emit_moves`).
//!
//! Frame layout: `[locals | scratch | constants | operand stack]`, the locals' area
//! padded to hold the results. The scratch slot
//! breaks cycles when values must be permuted (only a `return` of swapped locals can
//! make one). Constants an instruction reads get slots of their own, filled when the
//! frame is entered; since their number is known only at the end, they are named by
//! placeholders while lowering and the final layout is applied in one pass
//! (`relocate_slots`).

use wasmparser::{BlockType, FunctionBody, Operator};

use crate::code::{CompiledFunc, IndirectSite, Instr, Slot};
use crate::module::{Anchor, AnchorKind, ModuleError, ModuleInner};

/// Where a value on the compile-time operand stack lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Temp,
    Local(Slot),
    Const(u64),
}

/// The source of one move in a parallel move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    Slot(Slot),
    Const(u64),
}

/// An i32 comparison that a branch can test directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    LtS,
    LtU,
    GtS,
    GtU,
    LeS,
    LeU,
    GeS,
    GeU,
}

impl Cmp {
    /// The comparison that holds exactly when this one does not (integers have no NaN).
    fn negate(self) -> Cmp {
        match self {
            Cmp::Eq => Cmp::Ne,
            Cmp::Ne => Cmp::Eq,
            Cmp::LtS => Cmp::GeS,
            Cmp::LtU => Cmp::GeU,
            Cmp::GtS => Cmp::LeS,
            Cmp::GtU => Cmp::LeU,
            Cmp::LeS => Cmp::GtS,
            Cmp::LeU => Cmp::GtU,
            Cmp::GeS => Cmp::LtS,
            Cmp::GeU => Cmp::LtU,
        }
    }
}

/// What a conditional branch tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cond {
    /// `slot != 0`.
    Nonzero(Slot),
    /// `slot == 0`.
    Zero(Slot),
    /// An i32 comparison of two slots.
    Cmp(Cmp, Slot, Slot),
    /// An i32 comparison of a slot with a constant.
    CmpImm(Cmp, Slot, i32),
}

impl Cond {
    fn negate(self) -> Cond {
        match self {
            Cond::Nonzero(s) => Cond::Zero(s),
            Cond::Zero(s) => Cond::Nonzero(s),
            Cond::Cmp(c, a, b) => Cond::Cmp(c.negate(), a, b),
            Cond::CmpImm(c, a, imm) => Cond::CmpImm(c.negate(), a, imm),
        }
    }

    /// The condition a just-emitted instruction computes into `dst`, if a branch can
    /// test it directly instead.
    fn computed_by(instr: &Instr, dst: Slot) -> Option<Cond> {
        use Instr as I;
        let (cmp, a, rhs) = match *instr {
            I::I32Eqz { dst: d, a } if d == dst => return Some(Cond::Zero(a)),
            I::I32Eq { dst: d, a, b } if d == dst => (Cmp::Eq, a, Ok(b)),
            I::I32Ne { dst: d, a, b } if d == dst => (Cmp::Ne, a, Ok(b)),
            I::I32LtS { dst: d, a, b } if d == dst => (Cmp::LtS, a, Ok(b)),
            I::I32LtU { dst: d, a, b } if d == dst => (Cmp::LtU, a, Ok(b)),
            I::I32GtS { dst: d, a, b } if d == dst => (Cmp::GtS, a, Ok(b)),
            I::I32GtU { dst: d, a, b } if d == dst => (Cmp::GtU, a, Ok(b)),
            I::I32LeS { dst: d, a, b } if d == dst => (Cmp::LeS, a, Ok(b)),
            I::I32LeU { dst: d, a, b } if d == dst => (Cmp::LeU, a, Ok(b)),
            I::I32GeS { dst: d, a, b } if d == dst => (Cmp::GeS, a, Ok(b)),
            I::I32GeU { dst: d, a, b } if d == dst => (Cmp::GeU, a, Ok(b)),
            I::I32EqImm { dst: d, a, imm } if d == dst => (Cmp::Eq, a, Err(imm)),
            I::I32NeImm { dst: d, a, imm } if d == dst => (Cmp::Ne, a, Err(imm)),
            I::I32LtSImm { dst: d, a, imm } if d == dst => (Cmp::LtS, a, Err(imm)),
            I::I32LtUImm { dst: d, a, imm } if d == dst => (Cmp::LtU, a, Err(imm)),
            I::I32GtSImm { dst: d, a, imm } if d == dst => (Cmp::GtS, a, Err(imm)),
            I::I32GtUImm { dst: d, a, imm } if d == dst => (Cmp::GtU, a, Err(imm)),
            I::I32LeSImm { dst: d, a, imm } if d == dst => (Cmp::LeS, a, Err(imm)),
            I::I32LeUImm { dst: d, a, imm } if d == dst => (Cmp::LeU, a, Err(imm)),
            I::I32GeSImm { dst: d, a, imm } if d == dst => (Cmp::GeS, a, Err(imm)),
            I::I32GeUImm { dst: d, a, imm } if d == dst => (Cmp::GeU, a, Err(imm)),
            _ => return None,
        };
        Some(match rhs {
            Ok(b) => Cond::Cmp(cmp, a, b),
            Err(imm) => Cond::CmpImm(cmp, a, imm),
        })
    }

    /// The branch instruction that jumps to `target` when this condition holds.
    fn branch(self, target: u32) -> Instr {
        use Instr as I;
        match self {
            Cond::Nonzero(cond) => I::BrIfNez { cond, target },
            Cond::Zero(cond) => I::BrIfEqz { cond, target },
            Cond::Cmp(c, a, b) => match c {
                Cmp::Eq => I::BrI32Eq { a, b, target },
                Cmp::Ne => I::BrI32Ne { a, b, target },
                Cmp::LtS => I::BrI32LtS { a, b, target },
                Cmp::LtU => I::BrI32LtU { a, b, target },
                Cmp::GtS => I::BrI32GtS { a, b, target },
                Cmp::GtU => I::BrI32GtU { a, b, target },
                Cmp::LeS => I::BrI32LeS { a, b, target },
                Cmp::LeU => I::BrI32LeU { a, b, target },
                Cmp::GeS => I::BrI32GeS { a, b, target },
                Cmp::GeU => I::BrI32GeU { a, b, target },
            },
            Cond::CmpImm(c, a, imm) => match c {
                Cmp::Eq => I::BrI32EqImm { a, imm, target },
                Cmp::Ne => I::BrI32NeImm { a, imm, target },
                Cmp::LtS => I::BrI32LtSImm { a, imm, target },
                Cmp::LtU => I::BrI32LtUImm { a, imm, target },
                Cmp::GtS => I::BrI32GtSImm { a, imm, target },
                Cmp::GtU => I::BrI32GtUImm { a, imm, target },
                Cmp::LeS => I::BrI32LeSImm { a, imm, target },
                Cmp::LeU => I::BrI32LeUImm { a, imm, target },
                Cmp::GeS => I::BrI32GeSImm { a, imm, target },
                Cmp::GeU => I::BrI32GeUImm { a, imm, target },
            },
        }
    }
}

/// How a binary operator with a constant *left* operand can still use an immediate form.
#[derive(Clone, Copy)]
enum Swap {
    /// Not at all: the constant is materialized.
    No,
    /// The operator commutes: use the same immediate form.
    Same,
    /// A comparison: use the immediate form of the mirrored comparison (`c < x` is
    /// `x > c`).
    Mirror(fn(Slot, Slot, i32) -> Instr),
}

type MakeImm = fn(Slot, Slot, i32) -> Instr;

/// Immediates are i32: any i32 constant fits.
fn imm_i32(c: u64) -> Option<i32> {
    Some(c as u32 as i32)
}

/// An i64 constant fits if it is a sign-extended i32.
fn imm_i64(c: u64) -> Option<i32> {
    i32::try_from(c as i64).ok()
}

/// For `x - c` rewritten as `x + (-c)`: -c must fit as well.
fn imm_i64_negatable(c: u64) -> Option<i32> {
    imm_i64(c).filter(|&v| v != i32::MIN)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CtrlKind {
    Func,
    Block,
    Loop,
    If,
    Else,
}

#[derive(Debug)]
struct Ctrl {
    kind: CtrlKind,
    /// Stack length below the block's params: the label's values go to
    /// `slot(height)..`.
    height: usize,
    params: usize,
    results: usize,
    /// For a loop, the pc of its header, which branches to it jump to.
    loop_target: u32,
    /// Forward branches to patch with the pc after `end`.
    patches: Vec<usize>,
    /// For an `if`: the conditional jump to patch with the start of `else` (or `end`).
    else_patch: Option<usize>,
    /// Whether the code being lowered inside this block is reachable.
    reachable: bool,
}

impl Ctrl {
    fn branch_arity(&self) -> usize {
        if self.kind == CtrlKind::Loop {
            self.params
        } else {
            self.results
        }
    }
}

/// Constant slots are named `CONST_PLACEHOLDER + index` until the layout is final. Far
/// above any real slot: wasmparser limits a function to 50,000 locals and its operand
/// stack likewise.
const CONST_PLACEHOLDER: Slot = 1 << 30;

struct Lowerer<'m> {
    module: &'m ModuleInner,
    // `num_locals` below is the size of the locals' area: the locals, padded to at least
    // the number of results.
    /// Constant operands, and the placeholder index of each.
    consts: Vec<u64>,
    const_ids: std::collections::HashMap<u64, u32>,
    func_index: u32,
    num_locals: u32,
    stack: Vec<Entry>,
    max_height: usize,
    ctrls: Vec<Ctrl>,
    /// Nesting depth of blocks entered inside unreachable code, which are skipped.
    dead_depth: u32,
    code: Vec<Instr>,
    offsets: Vec<u32>,
    offset: u32,
    /// The instruction that wrote the current top-of-stack temp, if it is the last one
    /// emitted and may be retargeted by a following `local.set`.
    last_producer: Option<usize>,
    indirect_sites: Vec<IndirectSite>,
    anchors: &'m mut Vec<Anchor>,
}

/// Lowers the body of defined function `func_index`. New loop anchors are appended to
/// `anchors`, whose length gives their ids.
pub(crate) fn lower_function(
    module: &ModuleInner,
    func_index: u32,
    body: &FunctionBody<'_>,
    anchors: &mut Vec<Anchor>,
) -> Result<CompiledFunc, ModuleError> {
    let ty = &module.types[module.func_types[func_index as usize] as usize];
    let mut num_locals = ty.params.len() as u32;
    for local in body.get_locals_reader()? {
        let (count, _) = local?;
        num_locals += count;
    }
    // Results are returned in slots `0..results`; padding the locals' area to cover them
    // keeps those slots clear of the scratch, constant and stack slots, so slots can be
    // relocated after lowering without changing which of them coincide.
    let locals_area = num_locals.max(ty.results.len() as u32);
    let mut l = Lowerer {
        module,
        consts: Vec::new(),
        const_ids: std::collections::HashMap::new(),
        func_index,
        num_locals: locals_area,
        stack: Vec::new(),
        max_height: 0,
        ctrls: vec![Ctrl {
            kind: CtrlKind::Func,
            height: 0,
            params: 0,
            results: ty.results.len(),
            loop_target: 0,
            patches: Vec::new(),
            else_patch: None,
            reachable: true,
        }],
        dead_depth: 0,
        code: Vec::new(),
        offsets: Vec::new(),
        offset: body.range().start as u32,
        last_producer: None,
        indirect_sites: Vec::new(),
        anchors,
    };
    let mut reader = body.get_operators_reader()?;
    while !reader.eof() {
        let (op, offset) = reader.read_with_offset()?;
        l.offset = offset as u32;
        l.operator(op);
    }
    let num_consts = l.consts.len() as u32;
    relocate_slots(&mut l.code, locals_area, num_consts);
    let params = ty.params.len() as u32;
    let mut frame_init = vec![0; (locals_area + 1 - params) as usize];
    frame_init.extend_from_slice(&l.consts);
    let compiled = CompiledFunc {
        func_index,
        entry_anchor: func_index - module.num_imported_funcs,
        num_params: ty.params.len() as u32,
        num_results: ty.results.len() as u32,
        num_locals,
        frame_size: locals_area + 1 + num_consts + l.max_height as u32,
        consts: l.consts,
        const_base: locals_area + 1,
        frame_init,
        code: l.code,
        offsets: l.offsets,
        indirect_sites: l.indirect_sites,
        liveness: std::sync::OnceLock::new(),
    };
    let arity = |ty: &crate::types::FuncType| ty.params.len().max(ty.results.len()) as u32;
    let window_size = |instr: &Instr| match *instr {
        Instr::Call { func, .. } => arity(&module.types[module.func_types[func as usize] as usize]),
        Instr::CallIndirect { site, .. } => {
            let site = compiled.indirect_sites[site as usize];
            arity(&module.types[site.type_index as usize])
        }
        _ => 0,
    };
    compiled
        .check(l.anchors.len() as u32, window_size)
        .map_err(|problem| ModuleError {
            offset: body.range().start,
            message: format!(
                "kiln internal error: lowering function {func_index} broke an invariant: {problem}"
            ),
        })?;
    Ok(compiled)
}

/// Applies the final frame layout: constants go right after the scratch slot and the
/// operand stack moves up to make room.
fn relocate_slots(code: &mut [Instr], locals_area: u32, num_consts: u32) {
    let stack_base = locals_area + 1;
    for instr in code {
        instr.for_each_slot_mut(|slot| {
            *slot = if *slot >= CONST_PLACEHOLDER {
                stack_base + (*slot - CONST_PLACEHOLDER)
            } else if *slot >= stack_base {
                *slot + num_consts
            } else {
                *slot
            };
        });
    }
}

impl Lowerer<'_> {
    // ---- the operand-stack model ----

    fn slot(&self, pos: usize) -> Slot {
        self.num_locals + 1 + pos as Slot
    }

    fn scratch(&self) -> Slot {
        self.num_locals
    }

    fn push(&mut self, e: Entry) {
        self.stack.push(e);
        self.max_height = self.max_height.max(self.stack.len());
    }

    fn pop(&mut self) -> Entry {
        self.stack
            .pop()
            .expect("validated: operand stack underflow")
    }

    /// Makes position `pos` hold its value in its own slot.
    fn materialize(&mut self, pos: usize) {
        let dst = self.slot(pos);
        match self.stack[pos] {
            Entry::Temp => {}
            Entry::Local(src) => {
                self.emit(Instr::Copy { dst, src });
            }
            Entry::Const(value) => {
                self.emit(Instr::Const64 { dst, value });
            }
        }
        self.stack[pos] = Entry::Temp;
    }

    /// The slot an instruction can read position `pos` from. Constants are written to
    /// the position's own slot first.
    fn read_slot(&mut self, pos: usize) -> Slot {
        match self.stack[pos] {
            Entry::Temp => self.slot(pos),
            Entry::Local(l) => l,
            Entry::Const(c) => self.const_slot(c),
        }
    }

    /// The (placeholder) slot that holds constant `c` in every frame.
    fn const_slot(&mut self, c: u64) -> Slot {
        let next = self.consts.len() as u32;
        let id = *self.const_ids.entry(c).or_insert(next);
        if id == next {
            self.consts.push(c);
        }
        CONST_PLACEHOLDER + id
    }

    /// Reads the top `n` operands, pops them, and returns their slots, deepest first.
    fn pop_read(&mut self, n: usize) -> Vec<Slot> {
        let len = self.stack.len();
        let slots = (len - n..len).map(|p| self.read_slot(p)).collect();
        self.stack.truncate(len - n);
        slots
    }

    /// Makes the top `n` operands sit in their own consecutive slots and pops them;
    /// returns the first slot.
    fn pop_in_place(&mut self, n: usize) -> Slot {
        let len = self.stack.len();
        for p in len - n..len {
            self.materialize(p);
        }
        self.stack.truncate(len - n);
        self.slot(len - n)
    }

    /// Copies every lazy `Local(local)` entry into its own slot, before `local` changes.
    fn preserve_local(&mut self, local: Slot) {
        for pos in 0..self.stack.len() {
            if self.stack[pos] == Entry::Local(local) {
                self.materialize(pos);
            }
        }
    }

    // ---- emission ----

    fn emit(&mut self, instr: Instr) -> usize {
        self.code.push(instr);
        self.offsets.push(self.offset);
        self.last_producer = None;
        self.code.len() - 1
    }

    /// Emits an instruction that writes a fresh temp on top of the stack.
    fn emit_producer(&mut self, instr: Instr) {
        let at = self.emit(instr);
        self.push(Entry::Temp);
        self.last_producer = Some(at);
    }

    fn pc(&self) -> u32 {
        self.code.len() as u32
    }

    fn set_target(&mut self, at: usize, to: u32) {
        match self.code[at].branch_target_mut() {
            Some(target) => *target = to,
            None => unreachable!("patching a non-branch {:?}", self.code[at]),
        }
    }

    /// Binds a label here: control can arrive from elsewhere, so the last instruction
    /// may no longer be retargeted.
    fn bind_here(&mut self, patches: &[usize]) {
        let here = self.pc();
        for &at in patches {
            self.set_target(at, here);
        }
        self.last_producer = None;
    }

    /// Performs the simultaneous assignment `dst_i := src_i`, ordering the copies so no
    /// source is overwritten before it is read, using the scratch slot to break cycles.
    fn emit_moves(&mut self, moves: Vec<(Slot, Src)>) {
        let mut pending: Vec<(Slot, Src)> = moves
            .into_iter()
            .filter(|&(dst, src)| src != Src::Slot(dst))
            .collect();
        while !pending.is_empty() {
            let free = (0..pending.len()).find(|&i| {
                let dst = pending[i].0;
                !pending
                    .iter()
                    .enumerate()
                    .any(|(j, &(_, src))| j != i && src == Src::Slot(dst))
            });
            match free {
                Some(i) => {
                    let (dst, src) = pending.remove(i);
                    match src {
                        Src::Slot(src) => self.emit(Instr::Copy { dst, src }),
                        Src::Const(value) => self.emit(Instr::Const64 { dst, value }),
                    };
                }
                None => {
                    // Every destination is still to be read: a cycle. Save one
                    // destination's value in scratch and read it from there.
                    let scratch = self.scratch();
                    debug_assert!(pending.iter().all(|&(_, s)| s != Src::Slot(scratch)));
                    let saved = pending[0].0;
                    self.emit(Instr::Copy {
                        dst: scratch,
                        src: saved,
                    });
                    for mv in pending.iter_mut() {
                        if mv.1 == Src::Slot(saved) {
                            mv.1 = Src::Slot(scratch);
                        }
                    }
                }
            }
        }
    }

    /// The slot of the `i`th value of label `ctrl`.
    fn label_slot(&self, ctrl: &Ctrl, i: usize) -> Slot {
        if ctrl.kind == CtrlKind::Func {
            i as Slot
        } else {
            self.slot(ctrl.height + i)
        }
    }

    /// Moves the values a branch to the label `depth` levels out carries (the top
    /// operands, not popped) into the label's slots.
    fn move_to_label(&mut self, depth: usize) {
        let arity = self.ctrls[self.ctrls.len() - 1 - depth].branch_arity();
        self.move_values(depth, arity);
    }

    /// Moves the top `arity` operands (without popping them) into the first `arity`
    /// slots of the block `depth` levels out.
    fn move_values(&mut self, depth: usize, arity: usize) {
        let ctrl = &self.ctrls[self.ctrls.len() - 1 - depth];
        let len = self.stack.len();
        let moves = (0..arity)
            .map(|i| {
                let pos = len - arity + i;
                let src = match self.stack[pos] {
                    Entry::Temp => Src::Slot(self.slot(pos)),
                    Entry::Local(l) => Src::Slot(l),
                    Entry::Const(c) => Src::Const(c),
                };
                (self.label_slot(ctrl, i), src)
            })
            .collect();
        let moves = self.retarget_last_move(moves);
        self.emit_moves(moves);
    }

    /// If the last value to move was computed by the instruction just emitted, lets that
    /// instruction write its destination directly instead of copying it there, provided
    /// no other move reads that destination (the instruction now writes it first).
    fn retarget_last_move(&mut self, mut moves: Vec<(Slot, Src)>) -> Vec<(Slot, Src)> {
        let Some(&(dst, Src::Slot(src))) = moves.last() else {
            return moves;
        };
        let top = self.stack.len() - 1;
        let produced_here = self.stack[top] == Entry::Temp
            && src == self.slot(top)
            && self.last_producer == Some(self.code.len() - 1);
        let read_elsewhere = moves[..moves.len() - 1]
            .iter()
            .any(|&(_, s)| s == Src::Slot(dst));
        if !produced_here || read_elsewhere {
            return moves;
        }
        let last = self.code.len() - 1;
        if let Some(d) = self.code[last].pure_dst_mut() {
            if *d == src {
                *d = dst;
                self.last_producer = None;
                moves.pop();
            }
        }
        moves
    }

    /// Whether the top operands are already where label `depth` wants them.
    fn values_in_place(&self, depth: usize) -> bool {
        let ctrl = &self.ctrls[self.ctrls.len() - 1 - depth];
        let arity = ctrl.branch_arity();
        let len = self.stack.len();
        (0..arity).all(|i| {
            let pos = len - arity + i;
            self.stack[pos] == Entry::Temp && self.slot(pos) == self.label_slot(ctrl, i)
        })
    }

    /// Emits an unconditional jump to label `depth` (values already moved).
    fn emit_jump(&mut self, depth: usize) {
        let idx = self.ctrls.len() - 1 - depth;
        match self.ctrls[idx].kind {
            CtrlKind::Func => {
                self.emit(Instr::Return);
            }
            CtrlKind::Loop => {
                let target = self.ctrls[idx].loop_target;
                self.emit(Instr::Br { target });
            }
            _ => {
                let at = self.emit(Instr::Br { target: u32::MAX });
                self.ctrls[idx].patches.push(at);
            }
        }
    }

    fn mark_unreachable(&mut self) {
        let ctrl = self.ctrls.last_mut().expect("inside a function");
        ctrl.reachable = false;
        // The then-branch of an `if` with params works on copies above the originals,
        // which the else-branch still needs.
        let floor = match ctrl.kind {
            CtrlKind::If => ctrl.height + ctrl.params,
            _ => ctrl.height,
        };
        self.stack.truncate(floor);
        self.last_producer = None;
    }

    fn block_arity(&self, ty: BlockType) -> (usize, usize) {
        match ty {
            BlockType::Empty => (0, 0),
            BlockType::Type(_) => (0, 1),
            BlockType::FuncType(t) => {
                let ft = &self.module.types[t as usize];
                (ft.params.len(), ft.results.len())
            }
        }
    }

    /// Enters a block, loop or if whose params are on top of the stack.
    fn enter(&mut self, kind: CtrlKind, ty: BlockType) -> usize {
        let (params, results) = self.block_arity(ty);
        // The body may write any local: no entry may stay a lazy local read.
        for pos in 0..self.stack.len() {
            if matches!(self.stack[pos], Entry::Local(_)) {
                self.materialize(pos);
            }
        }
        let height = self.stack.len() - params;
        for pos in height..self.stack.len() {
            self.materialize(pos);
        }
        self.last_producer = None;
        self.ctrls.push(Ctrl {
            kind,
            height,
            params,
            results,
            loop_target: 0,
            patches: Vec::new(),
            else_patch: None,
            reachable: true,
        });
        params
    }

    /// Handles `end` of the innermost block.
    fn end(&mut self) {
        let ctrl = self.ctrls.last().expect("inside a function");
        let (reachable, results) = (ctrl.reachable, ctrl.results);
        if reachable {
            // Falling out of a block yields its results, even for a loop (whose label
            // takes its params).
            self.move_values(0, results);
        }
        let ctrl = self.ctrls.pop().expect("inside a function");
        if ctrl.kind == CtrlKind::Func {
            if reachable {
                self.emit(Instr::Return);
            }
            return;
        }
        let mut patches = ctrl.patches;
        let falls_into_end = ctrl.kind == CtrlKind::If;
        if let Some(at) = ctrl.else_patch {
            patches.push(at);
        }
        self.bind_here(&patches);
        self.stack.truncate(ctrl.height);
        let reachable_after = reachable || !patches.is_empty() || falls_into_end;
        if reachable_after {
            for _ in 0..ctrl.results {
                self.push(Entry::Temp);
            }
        } else {
            self.mark_unreachable();
        }
    }

    /// Pops a branch condition. A comparison computed just before, only for this branch,
    /// is taken back and tested by the branch itself.
    fn pop_cond(&mut self) -> Cond {
        let pos = self.stack.len() - 1;
        if self.stack[pos] == Entry::Temp && self.last_producer == Some(self.code.len() - 1) {
            let last = self.code.len() - 1;
            if let Some(cond) = Cond::computed_by(&self.code[last], self.slot(pos)) {
                self.code.pop();
                self.offsets.pop();
                self.last_producer = None;
                self.stack.pop();
                return cond;
            }
        }
        let slot = self.read_slot(pos);
        self.pop();
        Cond::Nonzero(slot)
    }

    fn binary_imm(
        &mut self,
        make: fn(Slot, Slot, Slot) -> Instr,
        fits: fn(u64) -> Option<i32>,
        make_imm: MakeImm,
        swap: Swap,
    ) {
        let len = self.stack.len();
        let (lhs, rhs) = (self.stack[len - 2], self.stack[len - 1]);
        let dst = self.slot(len - 2);
        if let Entry::Const(c) = rhs {
            if let Some(imm) = fits(c) {
                let a = self.read_slot(len - 2);
                self.stack.truncate(len - 2);
                self.emit_producer(make_imm(dst, a, imm));
                return;
            }
        }
        if let (Entry::Const(c), false) = (lhs, matches!(rhs, Entry::Const(_))) {
            let swapped = match swap {
                Swap::No => None,
                Swap::Same => Some(make_imm),
                Swap::Mirror(m) => Some(m),
            };
            if let (Some(make_swapped), Some(imm)) = (swapped, fits(c)) {
                let b = self.read_slot(len - 1);
                self.stack.truncate(len - 2);
                self.emit_producer(make_swapped(dst, b, imm));
                return;
            }
        }
        self.binary(make);
    }

    fn unary(&mut self, make: fn(Slot, Slot) -> Instr) {
        let a = self.read_slot(self.stack.len() - 1);
        let dst = self.slot(self.stack.len() - 1);
        self.pop();
        self.emit_producer(make(dst, a));
    }

    fn binary(&mut self, make: fn(Slot, Slot, Slot) -> Instr) {
        let len = self.stack.len();
        let a = self.read_slot(len - 2);
        let b = self.read_slot(len - 1);
        let dst = self.slot(len - 2);
        self.stack.truncate(len - 2);
        self.emit_producer(make(dst, a, b));
    }

    fn load(&mut self, offset: u64, make: fn(Slot, Slot, u32) -> Instr) {
        let offset = u32::try_from(offset).expect("validated: 32-bit memory offset");
        self.unary_with(|dst, addr| make(dst, addr, offset));
    }

    fn unary_with(&mut self, make: impl FnOnce(Slot, Slot) -> Instr) {
        let a = self.read_slot(self.stack.len() - 1);
        let dst = self.slot(self.stack.len() - 1);
        self.pop();
        self.emit_producer(make(dst, a));
    }

    fn store(&mut self, offset: u64, make: fn(Slot, Slot, u32) -> Instr) {
        let offset = u32::try_from(offset).expect("validated: 32-bit memory offset");
        let s = self.pop_read(2);
        self.emit(make(s[0], s[1], offset));
    }

    fn local_set(&mut self, local: Slot, tee: bool) {
        let value = self.pop();
        let pos = self.stack.len();
        self.preserve_local(local);
        match value {
            Entry::Temp => {
                let src = self.slot(pos);
                let producer = self.last_producer.filter(|&at| at + 1 == self.code.len());
                let retargeted = producer.is_some_and(|at| match self.code[at].pure_dst_mut() {
                    Some(dst) if *dst == src => {
                        *dst = local;
                        true
                    }
                    _ => false,
                });
                if !retargeted {
                    self.emit(Instr::Copy { dst: local, src });
                }
            }
            Entry::Local(src) => {
                if src != local {
                    self.emit(Instr::Copy { dst: local, src });
                }
            }
            Entry::Const(value) => {
                self.emit(Instr::Const64 { dst: local, value });
            }
        }
        self.last_producer = None;
        if tee {
            self.push(Entry::Local(local));
        }
    }

    fn call(&mut self, func: u32) {
        let ty = &self.module.types[self.module.func_types[func as usize] as usize];
        let (params, results) = (ty.params.len(), ty.results.len());
        let base = self.pop_in_place(params);
        self.emit(Instr::Call { func, base });
        for _ in 0..results {
            self.push(Entry::Temp);
        }
    }

    fn call_indirect(&mut self, type_index: u32, table: u32) {
        let ty = &self.module.types[type_index as usize];
        let (params, results) = (ty.params.len(), ty.results.len());
        let index = self.read_slot(self.stack.len() - 1);
        self.pop();
        let base = self.pop_in_place(params);
        let site = self.indirect_sites.len() as u32;
        self.indirect_sites.push(IndirectSite { table, type_index });
        self.emit(Instr::CallIndirect { base, index, site });
        for _ in 0..results {
            self.push(Entry::Temp);
        }
    }

    fn operator(&mut self, op: Operator<'_>) {
        if !self.ctrls.last().expect("inside a function").reachable {
            match op {
                Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => {
                    self.dead_depth += 1;
                }
                Operator::Else if self.dead_depth == 0 => self.else_(),
                Operator::End if self.dead_depth > 0 => self.dead_depth -= 1,
                Operator::End => self.end(),
                _ => {}
            }
            return;
        }
        use Instr as I;
        match op {
            Operator::Nop => {}
            Operator::Unreachable => {
                self.emit(I::Unreachable);
                self.mark_unreachable();
            }
            Operator::Block { blockty } => {
                self.enter(CtrlKind::Block, blockty);
            }
            Operator::Loop { blockty } => {
                self.enter(CtrlKind::Loop, blockty);
                let anchor = self.anchors.len() as u32;
                self.anchors.push(Anchor {
                    func_index: self.func_index,
                    offset: self.offset,
                    kind: AnchorKind::Loop,
                });
                let target = self.pc();
                self.ctrls.last_mut().expect("just pushed").loop_target = target;
                self.emit(I::LoopHeader { anchor });
            }
            Operator::If { blockty } => {
                let cond = self.pop_cond();
                let params = self.enter(CtrlKind::If, blockty);
                let at = self.emit(cond.negate().branch(u32::MAX));
                self.ctrls.last_mut().expect("just pushed").else_patch = Some(at);
                // The then-branch works on copies of the params, so the else-branch
                // still finds the originals in their slots.
                let height = self.stack.len() - params;
                for i in 0..params {
                    let src = self.slot(height + i);
                    let dst = self.slot(height + params + i);
                    self.emit(I::Copy { dst, src });
                    self.push(Entry::Temp);
                }
            }
            Operator::Else => self.else_(),
            Operator::End => self.end(),
            Operator::Br { relative_depth } => {
                let depth = relative_depth as usize;
                self.move_to_label(depth);
                self.emit_jump(depth);
                self.mark_unreachable();
            }
            Operator::BrIf { relative_depth } => {
                let depth = relative_depth as usize;
                let cond = self.pop_cond();
                let idx = self.ctrls.len() - 1 - depth;
                let kind = self.ctrls[idx].kind;
                if self.values_in_place(depth) && kind != CtrlKind::Func {
                    let target = match kind {
                        CtrlKind::Loop => self.ctrls[idx].loop_target,
                        _ => u32::MAX,
                    };
                    let at = self.emit(cond.branch(target));
                    if kind != CtrlKind::Loop {
                        self.ctrls[idx].patches.push(at);
                    }
                } else {
                    let skip = self.emit(cond.negate().branch(u32::MAX));
                    self.move_to_label(depth);
                    self.emit_jump(depth);
                    self.bind_here(&[skip]);
                }
            }
            Operator::BrTable { targets } => {
                let index = self.read_slot(self.stack.len() - 1);
                self.pop();
                let depths: Vec<usize> = targets
                    .targets()
                    .map(|t| t.expect("validated") as usize)
                    .chain(std::iter::once(targets.default() as usize))
                    .collect();
                self.emit(I::BrTable {
                    index,
                    len: depths.len() as u32 - 1,
                });
                let mut trampolines = Vec::new();
                for &depth in &depths {
                    let idx = self.ctrls.len() - 1 - depth;
                    let kind = self.ctrls[idx].kind;
                    if self.values_in_place(depth) && kind != CtrlKind::Func {
                        self.emit_jump(depth);
                    } else {
                        let at = self.emit(I::Br { target: u32::MAX });
                        trampolines.push((at, depth));
                    }
                }
                for (at, depth) in trampolines {
                    let here = self.pc();
                    self.set_target(at, here);
                    self.move_to_label(depth);
                    self.emit_jump(depth);
                }
                self.mark_unreachable();
            }
            Operator::Return => {
                let depth = self.ctrls.len() - 1;
                self.move_to_label(depth);
                self.emit(I::Return);
                self.mark_unreachable();
            }
            Operator::Call { function_index } => self.call(function_index),
            Operator::CallIndirect {
                type_index,
                table_index,
            } => self.call_indirect(type_index, table_index),
            Operator::Drop => {
                self.pop();
                self.last_producer = None;
            }
            Operator::Select | Operator::TypedSelect { .. } | Operator::TypedSelectMulti { .. } => {
                let len = self.stack.len();
                self.materialize(len - 3);
                let b = self.read_slot(len - 2);
                let cond = self.read_slot(len - 1);
                let dst = self.slot(len - 3);
                self.stack.truncate(len - 2);
                self.emit(I::SelectElse { dst, b, cond });
            }
            Operator::LocalGet { local_index } => self.push(Entry::Local(local_index)),
            Operator::LocalSet { local_index } => self.local_set(local_index, false),
            Operator::LocalTee { local_index } => self.local_set(local_index, true),
            Operator::GlobalGet { global_index } => {
                let dst = self.slot(self.stack.len());
                self.emit_producer(I::GlobalGet {
                    dst,
                    global: global_index,
                });
            }
            Operator::GlobalSet { global_index } => {
                let src = self.pop_read(1)[0];
                self.emit(I::GlobalSet {
                    global: global_index,
                    src,
                });
            }
            Operator::I32Const { value } => self.push(Entry::Const(value as u32 as u64)),
            Operator::I64Const { value } => self.push(Entry::Const(value as u64)),
            Operator::F32Const { value } => self.push(Entry::Const(value.bits() as u64)),
            Operator::F64Const { value } => self.push(Entry::Const(value.bits())),
            Operator::RefNull { .. } => self.push(Entry::Const(0)),
            Operator::RefIsNull => self.unary(|dst, a| I::RefIsNull { dst, a }),
            Operator::RefFunc { function_index } => {
                let dst = self.slot(self.stack.len());
                self.emit_producer(I::RefFunc {
                    dst,
                    func: function_index,
                });
            }

            // ---- memory ----
            Operator::I32Load { memarg } => self.load(memarg.offset, |dst, addr, offset| {
                I::I32Load { dst, addr, offset }
            }),
            Operator::I64Load { memarg } => self.load(memarg.offset, |dst, addr, offset| {
                I::I64Load { dst, addr, offset }
            }),
            Operator::F32Load { memarg } => self.load(memarg.offset, |dst, addr, offset| {
                I::F32Load { dst, addr, offset }
            }),
            Operator::F64Load { memarg } => self.load(memarg.offset, |dst, addr, offset| {
                I::F64Load { dst, addr, offset }
            }),
            Operator::I32Load8S { memarg } => self.load(memarg.offset, |dst, addr, offset| {
                I::I32Load8S { dst, addr, offset }
            }),
            Operator::I32Load8U { memarg } => self.load(memarg.offset, |dst, addr, offset| {
                I::I32Load8U { dst, addr, offset }
            }),
            Operator::I32Load16S { memarg } => self.load(memarg.offset, |dst, addr, offset| {
                I::I32Load16S { dst, addr, offset }
            }),
            Operator::I32Load16U { memarg } => self.load(memarg.offset, |dst, addr, offset| {
                I::I32Load16U { dst, addr, offset }
            }),
            Operator::I64Load8S { memarg } => self.load(memarg.offset, |dst, addr, offset| {
                I::I64Load8S { dst, addr, offset }
            }),
            Operator::I64Load8U { memarg } => self.load(memarg.offset, |dst, addr, offset| {
                I::I64Load8U { dst, addr, offset }
            }),
            Operator::I64Load16S { memarg } => self.load(memarg.offset, |dst, addr, offset| {
                I::I64Load16S { dst, addr, offset }
            }),
            Operator::I64Load16U { memarg } => self.load(memarg.offset, |dst, addr, offset| {
                I::I64Load16U { dst, addr, offset }
            }),
            Operator::I64Load32S { memarg } => self.load(memarg.offset, |dst, addr, offset| {
                I::I64Load32S { dst, addr, offset }
            }),
            Operator::I64Load32U { memarg } => self.load(memarg.offset, |dst, addr, offset| {
                I::I64Load32U { dst, addr, offset }
            }),
            Operator::I32Store { memarg } => self.store(memarg.offset, |addr, val, offset| {
                I::I32Store { addr, val, offset }
            }),
            Operator::I64Store { memarg } => self.store(memarg.offset, |addr, val, offset| {
                I::I64Store { addr, val, offset }
            }),
            Operator::F32Store { memarg } => self.store(memarg.offset, |addr, val, offset| {
                I::F32Store { addr, val, offset }
            }),
            Operator::F64Store { memarg } => self.store(memarg.offset, |addr, val, offset| {
                I::F64Store { addr, val, offset }
            }),
            Operator::I32Store8 { memarg } => self.store(memarg.offset, |addr, val, offset| {
                I::I32Store8 { addr, val, offset }
            }),
            Operator::I32Store16 { memarg } => self.store(memarg.offset, |addr, val, offset| {
                I::I32Store16 { addr, val, offset }
            }),
            Operator::I64Store8 { memarg } => self.store(memarg.offset, |addr, val, offset| {
                I::I64Store8 { addr, val, offset }
            }),
            Operator::I64Store16 { memarg } => self.store(memarg.offset, |addr, val, offset| {
                I::I64Store16 { addr, val, offset }
            }),
            Operator::I64Store32 { memarg } => self.store(memarg.offset, |addr, val, offset| {
                I::I64Store32 { addr, val, offset }
            }),
            Operator::MemorySize { .. } => {
                let dst = self.slot(self.stack.len());
                self.emit_producer(I::MemorySize { dst });
            }
            Operator::MemoryGrow { .. } => {
                let delta = self.read_slot(self.stack.len() - 1);
                let dst = self.slot(self.stack.len() - 1);
                self.pop();
                self.emit(I::MemoryGrow { dst, delta });
                self.push(Entry::Temp);
            }
            Operator::MemoryFill { .. } => {
                let base = self.pop_in_place(3);
                self.emit(I::MemoryFill { base });
            }
            Operator::MemoryCopy { .. } => {
                let base = self.pop_in_place(3);
                self.emit(I::MemoryCopy { base });
            }
            Operator::MemoryInit { data_index, .. } => {
                let base = self.pop_in_place(3);
                self.emit(I::MemoryInit {
                    base,
                    data: data_index,
                });
            }
            Operator::DataDrop { data_index } => {
                self.emit(I::DataDrop { data: data_index });
            }

            // ---- tables ----
            Operator::TableGet { table } => {
                self.unary_with(|dst, index| I::TableGet { dst, index, table });
            }
            Operator::TableSet { table } => {
                let s = self.pop_read(2);
                self.emit(I::TableSet {
                    index: s[0],
                    val: s[1],
                    table,
                });
            }
            Operator::TableSize { table } => {
                let dst = self.slot(self.stack.len());
                self.emit_producer(I::TableSize { dst, table });
            }
            Operator::TableGrow { table } => {
                let base = self.pop_in_place(2);
                self.emit(I::TableGrow { base, table });
                self.push(Entry::Temp);
            }
            Operator::TableFill { table } => {
                let base = self.pop_in_place(3);
                self.emit(I::TableFill { base, table });
            }
            Operator::TableCopy {
                dst_table,
                src_table,
            } => {
                let base = self.pop_in_place(3);
                self.emit(I::TableCopy {
                    base,
                    dst_table,
                    src_table,
                });
            }
            Operator::TableInit { elem_index, table } => {
                let base = self.pop_in_place(3);
                self.emit(I::TableInit {
                    base,
                    elem: elem_index,
                    table,
                });
            }
            Operator::ElemDrop { elem_index } => {
                self.emit(I::ElemDrop { elem: elem_index });
            }

            // ---- numeric ----
            Operator::I32Eqz => self.unary(|dst, a| I::I32Eqz { dst, a }),
            Operator::I32Clz => self.unary(|dst, a| I::I32Clz { dst, a }),
            Operator::I32Ctz => self.unary(|dst, a| I::I32Ctz { dst, a }),
            Operator::I32Popcnt => self.unary(|dst, a| I::I32Popcnt { dst, a }),
            Operator::I64Eqz => self.unary(|dst, a| I::I64Eqz { dst, a }),
            Operator::I64Clz => self.unary(|dst, a| I::I64Clz { dst, a }),
            Operator::I64Ctz => self.unary(|dst, a| I::I64Ctz { dst, a }),
            Operator::I64Popcnt => self.unary(|dst, a| I::I64Popcnt { dst, a }),
            Operator::F32Abs => self.unary(|dst, a| I::F32Abs { dst, a }),
            Operator::F32Neg => self.unary(|dst, a| I::F32Neg { dst, a }),
            Operator::F32Ceil => self.unary(|dst, a| I::F32Ceil { dst, a }),
            Operator::F32Floor => self.unary(|dst, a| I::F32Floor { dst, a }),
            Operator::F32Trunc => self.unary(|dst, a| I::F32Trunc { dst, a }),
            Operator::F32Nearest => self.unary(|dst, a| I::F32Nearest { dst, a }),
            Operator::F32Sqrt => self.unary(|dst, a| I::F32Sqrt { dst, a }),
            Operator::F64Abs => self.unary(|dst, a| I::F64Abs { dst, a }),
            Operator::F64Neg => self.unary(|dst, a| I::F64Neg { dst, a }),
            Operator::F64Ceil => self.unary(|dst, a| I::F64Ceil { dst, a }),
            Operator::F64Floor => self.unary(|dst, a| I::F64Floor { dst, a }),
            Operator::F64Trunc => self.unary(|dst, a| I::F64Trunc { dst, a }),
            Operator::F64Nearest => self.unary(|dst, a| I::F64Nearest { dst, a }),
            Operator::F64Sqrt => self.unary(|dst, a| I::F64Sqrt { dst, a }),
            Operator::I32WrapI64 => self.unary(|dst, a| I::I32WrapI64 { dst, a }),
            Operator::I32TruncF32S => self.unary(|dst, a| I::I32TruncF32S { dst, a }),
            Operator::I32TruncF32U => self.unary(|dst, a| I::I32TruncF32U { dst, a }),
            Operator::I32TruncF64S => self.unary(|dst, a| I::I32TruncF64S { dst, a }),
            Operator::I32TruncF64U => self.unary(|dst, a| I::I32TruncF64U { dst, a }),
            Operator::I64ExtendI32S => self.unary(|dst, a| I::I64ExtendI32S { dst, a }),
            Operator::I64ExtendI32U => self.unary(|dst, a| I::I64ExtendI32U { dst, a }),
            Operator::I64TruncF32S => self.unary(|dst, a| I::I64TruncF32S { dst, a }),
            Operator::I64TruncF32U => self.unary(|dst, a| I::I64TruncF32U { dst, a }),
            Operator::I64TruncF64S => self.unary(|dst, a| I::I64TruncF64S { dst, a }),
            Operator::I64TruncF64U => self.unary(|dst, a| I::I64TruncF64U { dst, a }),
            Operator::F32ConvertI32S => self.unary(|dst, a| I::F32ConvertI32S { dst, a }),
            Operator::F32ConvertI32U => self.unary(|dst, a| I::F32ConvertI32U { dst, a }),
            Operator::F32ConvertI64S => self.unary(|dst, a| I::F32ConvertI64S { dst, a }),
            Operator::F32ConvertI64U => self.unary(|dst, a| I::F32ConvertI64U { dst, a }),
            Operator::F32DemoteF64 => self.unary(|dst, a| I::F32DemoteF64 { dst, a }),
            Operator::F64ConvertI32S => self.unary(|dst, a| I::F64ConvertI32S { dst, a }),
            Operator::F64ConvertI32U => self.unary(|dst, a| I::F64ConvertI32U { dst, a }),
            Operator::F64ConvertI64S => self.unary(|dst, a| I::F64ConvertI64S { dst, a }),
            Operator::F64ConvertI64U => self.unary(|dst, a| I::F64ConvertI64U { dst, a }),
            Operator::F64PromoteF32 => self.unary(|dst, a| I::F64PromoteF32 { dst, a }),
            // A reinterpretation keeps the same bits, and a slot is just bits.
            Operator::I32ReinterpretF32
            | Operator::I64ReinterpretF64
            | Operator::F32ReinterpretI32
            | Operator::F64ReinterpretI64 => {}
            Operator::I32Extend8S => self.unary(|dst, a| I::I32Extend8S { dst, a }),
            Operator::I32Extend16S => self.unary(|dst, a| I::I32Extend16S { dst, a }),
            Operator::I64Extend8S => self.unary(|dst, a| I::I64Extend8S { dst, a }),
            Operator::I64Extend16S => self.unary(|dst, a| I::I64Extend16S { dst, a }),
            Operator::I64Extend32S => self.unary(|dst, a| I::I64Extend32S { dst, a }),
            Operator::I32TruncSatF32S => self.unary(|dst, a| I::I32TruncSatF32S { dst, a }),
            Operator::I32TruncSatF32U => self.unary(|dst, a| I::I32TruncSatF32U { dst, a }),
            Operator::I32TruncSatF64S => self.unary(|dst, a| I::I32TruncSatF64S { dst, a }),
            Operator::I32TruncSatF64U => self.unary(|dst, a| I::I32TruncSatF64U { dst, a }),
            Operator::I64TruncSatF32S => self.unary(|dst, a| I::I64TruncSatF32S { dst, a }),
            Operator::I64TruncSatF32U => self.unary(|dst, a| I::I64TruncSatF32U { dst, a }),
            Operator::I64TruncSatF64S => self.unary(|dst, a| I::I64TruncSatF64S { dst, a }),
            Operator::I64TruncSatF64U => self.unary(|dst, a| I::I64TruncSatF64U { dst, a }),

            Operator::I32Add => self.binary_imm(
                |dst, a, b| I::I32Add { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32AddImm { dst, a, imm },
                Swap::Same,
            ),
            Operator::I32Sub => self.binary_imm(
                |dst, a, b| I::I32Sub { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32AddImm {
                    dst,
                    a,
                    imm: imm.wrapping_neg(),
                },
                Swap::No,
            ),
            Operator::I32Mul => self.binary_imm(
                |dst, a, b| I::I32Mul { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32MulImm { dst, a, imm },
                Swap::Same,
            ),
            Operator::I32DivS => self.binary(|dst, a, b| I::I32DivS { dst, a, b }),
            Operator::I32DivU => self.binary(|dst, a, b| I::I32DivU { dst, a, b }),
            Operator::I32RemS => self.binary(|dst, a, b| I::I32RemS { dst, a, b }),
            Operator::I32RemU => self.binary(|dst, a, b| I::I32RemU { dst, a, b }),
            Operator::I32And => self.binary_imm(
                |dst, a, b| I::I32And { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32AndImm { dst, a, imm },
                Swap::Same,
            ),
            Operator::I32Or => self.binary_imm(
                |dst, a, b| I::I32Or { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32OrImm { dst, a, imm },
                Swap::Same,
            ),
            Operator::I32Xor => self.binary_imm(
                |dst, a, b| I::I32Xor { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32XorImm { dst, a, imm },
                Swap::Same,
            ),
            Operator::I32Shl => self.binary_imm(
                |dst, a, b| I::I32Shl { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32ShlImm { dst, a, imm },
                Swap::No,
            ),
            Operator::I32ShrS => self.binary_imm(
                |dst, a, b| I::I32ShrS { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32ShrSImm { dst, a, imm },
                Swap::No,
            ),
            Operator::I32ShrU => self.binary_imm(
                |dst, a, b| I::I32ShrU { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32ShrUImm { dst, a, imm },
                Swap::No,
            ),
            Operator::I32Rotl => self.binary(|dst, a, b| I::I32Rotl { dst, a, b }),
            Operator::I32Rotr => self.binary(|dst, a, b| I::I32Rotr { dst, a, b }),
            Operator::I32Eq => self.binary_imm(
                |dst, a, b| I::I32Eq { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32EqImm { dst, a, imm },
                Swap::Same,
            ),
            Operator::I32Ne => self.binary_imm(
                |dst, a, b| I::I32Ne { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32NeImm { dst, a, imm },
                Swap::Same,
            ),
            Operator::I32LtS => self.binary_imm(
                |dst, a, b| I::I32LtS { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32LtSImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I32GtSImm { dst, a, imm }),
            ),
            Operator::I32LtU => self.binary_imm(
                |dst, a, b| I::I32LtU { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32LtUImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I32GtUImm { dst, a, imm }),
            ),
            Operator::I32GtS => self.binary_imm(
                |dst, a, b| I::I32GtS { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32GtSImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I32LtSImm { dst, a, imm }),
            ),
            Operator::I32GtU => self.binary_imm(
                |dst, a, b| I::I32GtU { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32GtUImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I32LtUImm { dst, a, imm }),
            ),
            Operator::I32LeS => self.binary_imm(
                |dst, a, b| I::I32LeS { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32LeSImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I32GeSImm { dst, a, imm }),
            ),
            Operator::I32LeU => self.binary_imm(
                |dst, a, b| I::I32LeU { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32LeUImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I32GeUImm { dst, a, imm }),
            ),
            Operator::I32GeS => self.binary_imm(
                |dst, a, b| I::I32GeS { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32GeSImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I32LeSImm { dst, a, imm }),
            ),
            Operator::I32GeU => self.binary_imm(
                |dst, a, b| I::I32GeU { dst, a, b },
                imm_i32,
                |dst, a, imm| I::I32GeUImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I32LeUImm { dst, a, imm }),
            ),
            Operator::I64Add => self.binary_imm(
                |dst, a, b| I::I64Add { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64AddImm { dst, a, imm },
                Swap::Same,
            ),
            Operator::I64Sub => self.binary_imm(
                |dst, a, b| I::I64Sub { dst, a, b },
                imm_i64_negatable,
                |dst, a, imm| I::I64AddImm { dst, a, imm: -imm },
                Swap::No,
            ),
            Operator::I64Mul => self.binary_imm(
                |dst, a, b| I::I64Mul { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64MulImm { dst, a, imm },
                Swap::Same,
            ),
            Operator::I64DivS => self.binary(|dst, a, b| I::I64DivS { dst, a, b }),
            Operator::I64DivU => self.binary(|dst, a, b| I::I64DivU { dst, a, b }),
            Operator::I64RemS => self.binary(|dst, a, b| I::I64RemS { dst, a, b }),
            Operator::I64RemU => self.binary(|dst, a, b| I::I64RemU { dst, a, b }),
            Operator::I64And => self.binary_imm(
                |dst, a, b| I::I64And { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64AndImm { dst, a, imm },
                Swap::Same,
            ),
            Operator::I64Or => self.binary_imm(
                |dst, a, b| I::I64Or { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64OrImm { dst, a, imm },
                Swap::Same,
            ),
            Operator::I64Xor => self.binary_imm(
                |dst, a, b| I::I64Xor { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64XorImm { dst, a, imm },
                Swap::Same,
            ),
            Operator::I64Shl => self.binary_imm(
                |dst, a, b| I::I64Shl { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64ShlImm { dst, a, imm },
                Swap::No,
            ),
            Operator::I64ShrS => self.binary_imm(
                |dst, a, b| I::I64ShrS { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64ShrSImm { dst, a, imm },
                Swap::No,
            ),
            Operator::I64ShrU => self.binary_imm(
                |dst, a, b| I::I64ShrU { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64ShrUImm { dst, a, imm },
                Swap::No,
            ),
            Operator::I64Rotl => self.binary(|dst, a, b| I::I64Rotl { dst, a, b }),
            Operator::I64Rotr => self.binary(|dst, a, b| I::I64Rotr { dst, a, b }),
            Operator::I64Eq => self.binary_imm(
                |dst, a, b| I::I64Eq { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64EqImm { dst, a, imm },
                Swap::Same,
            ),
            Operator::I64Ne => self.binary_imm(
                |dst, a, b| I::I64Ne { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64NeImm { dst, a, imm },
                Swap::Same,
            ),
            Operator::I64LtS => self.binary_imm(
                |dst, a, b| I::I64LtS { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64LtSImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I64GtSImm { dst, a, imm }),
            ),
            Operator::I64LtU => self.binary_imm(
                |dst, a, b| I::I64LtU { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64LtUImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I64GtUImm { dst, a, imm }),
            ),
            Operator::I64GtS => self.binary_imm(
                |dst, a, b| I::I64GtS { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64GtSImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I64LtSImm { dst, a, imm }),
            ),
            Operator::I64GtU => self.binary_imm(
                |dst, a, b| I::I64GtU { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64GtUImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I64LtUImm { dst, a, imm }),
            ),
            Operator::I64LeS => self.binary_imm(
                |dst, a, b| I::I64LeS { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64LeSImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I64GeSImm { dst, a, imm }),
            ),
            Operator::I64LeU => self.binary_imm(
                |dst, a, b| I::I64LeU { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64LeUImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I64GeUImm { dst, a, imm }),
            ),
            Operator::I64GeS => self.binary_imm(
                |dst, a, b| I::I64GeS { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64GeSImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I64LeSImm { dst, a, imm }),
            ),
            Operator::I64GeU => self.binary_imm(
                |dst, a, b| I::I64GeU { dst, a, b },
                imm_i64,
                |dst, a, imm| I::I64GeUImm { dst, a, imm },
                Swap::Mirror(|dst, a, imm| I::I64LeUImm { dst, a, imm }),
            ),
            Operator::F32Add => self.binary(|dst, a, b| I::F32Add { dst, a, b }),
            Operator::F32Sub => self.binary(|dst, a, b| I::F32Sub { dst, a, b }),
            Operator::F32Mul => self.binary(|dst, a, b| I::F32Mul { dst, a, b }),
            Operator::F32Div => self.binary(|dst, a, b| I::F32Div { dst, a, b }),
            Operator::F32Min => self.binary(|dst, a, b| I::F32Min { dst, a, b }),
            Operator::F32Max => self.binary(|dst, a, b| I::F32Max { dst, a, b }),
            Operator::F32Copysign => self.binary(|dst, a, b| I::F32Copysign { dst, a, b }),
            Operator::F32Eq => self.binary(|dst, a, b| I::F32Eq { dst, a, b }),
            Operator::F32Ne => self.binary(|dst, a, b| I::F32Ne { dst, a, b }),
            Operator::F32Lt => self.binary(|dst, a, b| I::F32Lt { dst, a, b }),
            Operator::F32Gt => self.binary(|dst, a, b| I::F32Gt { dst, a, b }),
            Operator::F32Le => self.binary(|dst, a, b| I::F32Le { dst, a, b }),
            Operator::F32Ge => self.binary(|dst, a, b| I::F32Ge { dst, a, b }),
            Operator::F64Add => self.binary(|dst, a, b| I::F64Add { dst, a, b }),
            Operator::F64Sub => self.binary(|dst, a, b| I::F64Sub { dst, a, b }),
            Operator::F64Mul => self.binary(|dst, a, b| I::F64Mul { dst, a, b }),
            Operator::F64Div => self.binary(|dst, a, b| I::F64Div { dst, a, b }),
            Operator::F64Min => self.binary(|dst, a, b| I::F64Min { dst, a, b }),
            Operator::F64Max => self.binary(|dst, a, b| I::F64Max { dst, a, b }),
            Operator::F64Copysign => self.binary(|dst, a, b| I::F64Copysign { dst, a, b }),
            Operator::F64Eq => self.binary(|dst, a, b| I::F64Eq { dst, a, b }),
            Operator::F64Ne => self.binary(|dst, a, b| I::F64Ne { dst, a, b }),
            Operator::F64Lt => self.binary(|dst, a, b| I::F64Lt { dst, a, b }),
            Operator::F64Gt => self.binary(|dst, a, b| I::F64Gt { dst, a, b }),
            Operator::F64Le => self.binary(|dst, a, b| I::F64Le { dst, a, b }),
            Operator::F64Ge => self.binary(|dst, a, b| I::F64Ge { dst, a, b }),

            other => unreachable!("validated: operator outside WebAssembly 2.0: {other:?}"),
        }
    }

    fn else_(&mut self) {
        let reachable = self.ctrls.last().expect("inside an if").reachable;
        if reachable {
            self.move_to_label(0);
            self.emit_jump(0);
        }
        let ctrl = self.ctrls.last_mut().expect("inside an if");
        let else_patch = ctrl.else_patch.take().expect("an if has its jump to else");
        ctrl.kind = CtrlKind::Else;
        ctrl.reachable = true;
        let keep = ctrl.height + ctrl.params;
        self.stack.truncate(keep);
        self.bind_here(&[else_patch]);
    }
}
