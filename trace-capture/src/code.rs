//! The interpreter's internal code: what `lower.rs` produces and `exec.rs` runs.
//!
//! It is a register machine over the slots of a frame, not wasm's operand stack. A frame
//! is `[params | other locals | operand-stack slots | one scratch slot]`; because wasm's
//! stack heights are static, every operand-stack position has a fixed slot, so every
//! instruction names the slots it reads and writes. `local.get` and constants cost
//! nothing: the lowering lets later instructions read the local (or an immediate)
//! directly, and `local.set` usually just retargets the producing instruction.
//!
//! Calls use a register window: the caller places arguments in consecutive slots starting
//! at `base`, the callee's frame starts there (its params are those slots), and results
//! come back in the same slots. Nothing is copied on call or return.
//!
//! Every variant fits in 16 bytes (asserted below) so the code stays dense in cache.

use std::sync::{Arc, OnceLock};

use crate::liveness::Liveness;

/// A slot index relative to the current frame's base.
pub type Slot = u32;

macro_rules! define_instrs {
    (
        binary: [$($bin:ident),* $(,)?],
        binary_imm: [$($bimm:ident => $bimm_op:ident),* $(,)?],
        branch_cmp: [$($bcmp:ident => $bcmp_op:ident),* $(,)?],
        branch_cmp_imm: [$($bcmpi:ident => $bcmpi_op:ident),* $(,)?],
        unary: [$($un:ident),* $(,)?],
        load: [$($load:ident),* $(,)?],
        store: [$($store:ident),* $(,)?],
    ) => {
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub enum Instr {
            $(
                $bin { dst: Slot, a: Slot, b: Slot },
            )*
            $(
                /// The binary operator with a constant right operand.
                $bimm { dst: Slot, a: Slot, imm: i32 },
            )*
            $(
                /// Jumps to `target` if the comparison of `slot[a]` and `slot[b]` holds.
                $bcmp { a: Slot, b: Slot, target: u32 },
            )*
            $(
                /// Jumps to `target` if the comparison of `slot[a]` and `imm` holds.
                $bcmpi { a: Slot, imm: i32, target: u32 },
            )*
            $(
                $un { dst: Slot, a: Slot },
            )*
            $(
                /// Loads from `slot[addr] + offset` of memory 0.
                $load { dst: Slot, addr: Slot, offset: u32 },
            )*
            $(
                /// Stores `slot[val]` at `slot[addr] + offset` of memory 0.
                $store { addr: Slot, val: Slot, offset: u32 },
            )*

            // ---- control ----
            Unreachable,
            /// Counts one execution of the loop header with this anchor id.
            LoopHeader { anchor: u32 },
            Br { target: u32 },
            BrIfNez { cond: Slot, target: u32 },
            BrIfEqz { cond: Slot, target: u32 },
            /// Jumps to `pc + 1 + min(slot[index], len)`: the next `len + 1` instructions
            /// are `Br`s, the last one the default.
            BrTable { index: Slot, len: u32 },
            /// Returns from the function; results are already in slots `0..n`.
            Return,
            /// Calls function `func` (module index space) with the window at `base`.
            Call { func: u32, base: Slot },
            /// Calls through table entry `slot[index]`; `site` indexes the function's
            /// `indirect_sites` (table index and expected type).
            CallIndirect { base: Slot, index: Slot, site: u32 },

            // ---- values ----
            Copy { dst: Slot, src: Slot },
            Const64 { dst: Slot, value: u64 },
            /// `slot[dst] = slot[cond] != 0 ? slot[dst] : slot[b]` — wasm's `select` with
            /// its first operand already placed in `dst`.
            SelectElse { dst: Slot, b: Slot, cond: Slot },
            GlobalGet { dst: Slot, global: u32 },
            GlobalSet { global: u32, src: Slot },
            RefIsNull { dst: Slot, a: Slot },
            RefFunc { dst: Slot, func: u32 },

            // ---- memory 0 ----
            MemorySize { dst: Slot },
            MemoryGrow { dst: Slot, delta: Slot },
            /// Operands in `base..base + 3`: destination, value, length.
            MemoryFill { base: Slot },
            /// Operands in `base..base + 3`: destination, source, length.
            MemoryCopy { base: Slot },
            /// Operands in `base..base + 3`: destination, source offset, length.
            MemoryInit { base: Slot, data: u32 },
            DataDrop { data: u32 },

            // ---- tables ----
            TableGet { dst: Slot, index: Slot, table: u32 },
            TableSet { index: Slot, val: Slot, table: u32 },
            TableSize { dst: Slot, table: u32 },
            /// Operands in `base..base + 2`: init value, delta. Result in `base`.
            TableGrow { base: Slot, table: u32 },
            /// Operands in `base..base + 3`: index, value, length.
            TableFill { base: Slot, table: u32 },
            /// Operands in `base..base + 3`: destination index, source index, length.
            TableCopy { base: Slot, dst_table: u32, src_table: u32 },
            /// Operands in `base..base + 3`: table index, segment offset, length.
            TableInit { base: Slot, elem: u32, table: u32 },
            ElemDrop { elem: u32 },
        }

        /// An instruction that computes a wasm numeric operator, seen as that operator.
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub enum NumShape {
            /// `dst = op(a, b)`.
            Binary { op: ir::NumOp, dst: Slot, a: Slot, b: Slot },
            /// `dst = op(a, imm)`, the immediate sign-extended to the operand type.
            BinaryImm { op: ir::NumOp, dst: Slot, a: Slot, imm: i32 },
            /// `dst = op(a)`.
            Unary { op: ir::NumOp, dst: Slot, a: Slot },
            /// Jump to `target` if `op(a, b)` holds.
            BranchCmp { op: ir::NumOp, a: Slot, b: Slot, target: u32 },
            /// Jump to `target` if `op(a, imm)` holds.
            BranchCmpImm { op: ir::NumOp, a: Slot, imm: i32, target: u32 },
        }

        impl Instr {
            /// The wasm numeric operator this instruction computes, if it is one. The
            /// trace recorder reads instructions through this, so the lowering's fused and
            /// immediate forms map back to plain wasm operators in one place.
            pub fn num_shape(&self) -> Option<NumShape> {
                Some(match *self {
                    $( Instr::$bin { dst, a, b } => NumShape::Binary { op: ir::NumOp::$bin, dst, a, b }, )*
                    $( Instr::$bimm { dst, a, imm } => NumShape::BinaryImm { op: ir::NumOp::$bimm_op, dst, a, imm }, )*
                    $( Instr::$un { dst, a } => NumShape::Unary { op: ir::NumOp::$un, dst, a }, )*
                    $( Instr::$bcmp { a, b, target } => NumShape::BranchCmp { op: ir::NumOp::$bcmp_op, a, b, target }, )*
                    $( Instr::$bcmpi { a, imm, target } => NumShape::BranchCmpImm { op: ir::NumOp::$bcmpi_op, a, imm, target }, )*
                    _ => return None,
                })
            }

            /// The jump target of a (conditional) branch.
            pub fn branch_target_mut(&mut self) -> Option<&mut u32> {
                match self {
                    $( Instr::$bcmp { target, .. } => Some(target), )*
                    $( Instr::$bcmpi { target, .. } => Some(target), )*
                    Instr::Br { target }
                    | Instr::BrIfNez { target, .. }
                    | Instr::BrIfEqz { target, .. } => Some(target),
                    _ => None,
                }
            }

            /// Calls `f(first_slot, count)` for every range of frame slots the instruction
            /// reads or writes (call windows excepted: see [`CompiledFunc::check`]).
            pub fn for_each_slot_range(&self, mut f: impl FnMut(Slot, u32)) {
                match *self {
                    $( Instr::$bin { dst, a, b } => { f(dst, 1); f(a, 1); f(b, 1); } )*
                    $( Instr::$bimm { dst, a, .. } => { f(dst, 1); f(a, 1); } )*
                    $( Instr::$bcmp { a, b, .. } => { f(a, 1); f(b, 1); } )*
                    $( Instr::$bcmpi { a, .. } => f(a, 1), )*
                    $( Instr::$un { dst, a } => { f(dst, 1); f(a, 1); } )*
                    $( Instr::$load { dst, addr, .. } => { f(dst, 1); f(addr, 1); } )*
                    $( Instr::$store { addr, val, .. } => { f(addr, 1); f(val, 1); } )*
                    Instr::Unreachable
                    | Instr::LoopHeader { .. }
                    | Instr::Br { .. }
                    | Instr::Return
                    | Instr::Call { .. }
                    | Instr::DataDrop { .. }
                    | Instr::ElemDrop { .. } => {}
                    Instr::BrIfNez { cond, .. } | Instr::BrIfEqz { cond, .. } => f(cond, 1),
                    Instr::BrTable { index, .. } => f(index, 1),
                    Instr::CallIndirect { index, .. } => f(index, 1),
                    Instr::Copy { dst, src } => { f(dst, 1); f(src, 1); }
                    Instr::Const64 { dst, .. }
                    | Instr::GlobalGet { dst, .. }
                    | Instr::RefFunc { dst, .. }
                    | Instr::MemorySize { dst }
                    | Instr::TableSize { dst, .. } => f(dst, 1),
                    Instr::SelectElse { dst, b, cond } => { f(dst, 1); f(b, 1); f(cond, 1); }
                    Instr::GlobalSet { src, .. } => f(src, 1),
                    Instr::RefIsNull { dst, a } => { f(dst, 1); f(a, 1); }
                    Instr::MemoryGrow { dst, delta } => { f(dst, 1); f(delta, 1); }
                    Instr::TableGet { dst, index, .. } => { f(dst, 1); f(index, 1); }
                    Instr::TableSet { index, val, .. } => { f(index, 1); f(val, 1); }
                    Instr::TableGrow { base, .. } => f(base, 2),
                    Instr::MemoryFill { base }
                    | Instr::MemoryCopy { base }
                    | Instr::MemoryInit { base, .. }
                    | Instr::TableFill { base, .. }
                    | Instr::TableCopy { base, .. }
                    | Instr::TableInit { base, .. } => f(base, 3),
                }
            }

            /// Calls `f` on every slot field of the instruction, call windows included, so
            /// the lowering can relocate slots once the frame layout is final.
            pub fn for_each_slot_mut(&mut self, mut f: impl FnMut(&mut Slot)) {
                match self {
                    $( Instr::$bin { dst, a, b } => { f(dst); f(a); f(b); } )*
                    $( Instr::$bimm { dst, a, .. } => { f(dst); f(a); } )*
                    $( Instr::$bcmp { a, b, .. } => { f(a); f(b); } )*
                    $( Instr::$bcmpi { a, .. } => f(a), )*
                    $( Instr::$un { dst, a } => { f(dst); f(a); } )*
                    $( Instr::$load { dst, addr, .. } => { f(dst); f(addr); } )*
                    $( Instr::$store { addr, val, .. } => { f(addr); f(val); } )*
                    Instr::Unreachable
                    | Instr::LoopHeader { .. }
                    | Instr::Br { .. }
                    | Instr::Return
                    | Instr::DataDrop { .. }
                    | Instr::ElemDrop { .. } => {}
                    Instr::Call { base, .. } => f(base),
                    Instr::CallIndirect { base, index, .. } => { f(base); f(index); }
                    Instr::BrIfNez { cond, .. } | Instr::BrIfEqz { cond, .. } => f(cond),
                    Instr::BrTable { index, .. } => f(index),
                    Instr::Copy { dst, src } => { f(dst); f(src); }
                    Instr::Const64 { dst, .. }
                    | Instr::GlobalGet { dst, .. }
                    | Instr::RefFunc { dst, .. }
                    | Instr::MemorySize { dst }
                    | Instr::TableSize { dst, .. } => f(dst),
                    Instr::SelectElse { dst, b, cond } => { f(dst); f(b); f(cond); }
                    Instr::GlobalSet { src, .. } => f(src),
                    Instr::RefIsNull { dst, a } => { f(dst); f(a); }
                    Instr::MemoryGrow { dst, delta } => { f(dst); f(delta); }
                    Instr::TableGet { dst, index, .. } => { f(dst); f(index); }
                    Instr::TableSet { index, val, .. } => { f(index); f(val); }
                    Instr::TableGrow { base, .. }
                    | Instr::MemoryFill { base }
                    | Instr::MemoryCopy { base }
                    | Instr::MemoryInit { base, .. }
                    | Instr::TableFill { base, .. }
                    | Instr::TableCopy { base, .. }
                    | Instr::TableInit { base, .. } => f(base),
                }
            }

            /// Whether control never falls through to the next instruction.
            pub fn is_terminator(&self) -> bool {
                matches!(
                    self,
                    Instr::Br { .. } | Instr::BrTable { .. } | Instr::Return | Instr::Unreachable
                )
            }

            /// The destination of an instruction that reads all its operands and then
            /// writes exactly one slot and nothing else: the lowering may retarget such
            /// an instruction to write a local directly.
            pub fn pure_dst_mut(&mut self) -> Option<&mut Slot> {
                match self {
                    $( Instr::$bin { dst, .. } => Some(dst), )*
                    $( Instr::$bimm { dst, .. } => Some(dst), )*
                    $( Instr::$un { dst, .. } => Some(dst), )*
                    $( Instr::$load { dst, .. } => Some(dst), )*
                    Instr::Copy { dst, .. }
                    | Instr::Const64 { dst, .. }
                    | Instr::GlobalGet { dst, .. }
                    | Instr::RefIsNull { dst, .. }
                    | Instr::RefFunc { dst, .. }
                    | Instr::MemorySize { dst }
                    | Instr::TableGet { dst, .. }
                    | Instr::TableSize { dst, .. } => Some(dst),
                    _ => None,
                }
            }
        }
    };
}

define_instrs! {
    binary: [
        I32Add, I32Sub, I32Mul, I32DivS, I32DivU, I32RemS, I32RemU,
        I32And, I32Or, I32Xor, I32Shl, I32ShrS, I32ShrU, I32Rotl, I32Rotr,
        I32Eq, I32Ne, I32LtS, I32LtU, I32GtS, I32GtU, I32LeS, I32LeU, I32GeS, I32GeU,
        I64Add, I64Sub, I64Mul, I64DivS, I64DivU, I64RemS, I64RemU,
        I64And, I64Or, I64Xor, I64Shl, I64ShrS, I64ShrU, I64Rotl, I64Rotr,
        I64Eq, I64Ne, I64LtS, I64LtU, I64GtS, I64GtU, I64LeS, I64LeU, I64GeS, I64GeU,
        F32Add, F32Sub, F32Mul, F32Div, F32Min, F32Max, F32Copysign,
        F32Eq, F32Ne, F32Lt, F32Gt, F32Le, F32Ge,
        F64Add, F64Sub, F64Mul, F64Div, F64Min, F64Max, F64Copysign,
        F64Eq, F64Ne, F64Lt, F64Gt, F64Le, F64Ge,
    ],
    binary_imm: [
        I32AddImm => I32Add, I32MulImm => I32Mul, I32AndImm => I32And, I32OrImm => I32Or,
        I32XorImm => I32Xor, I32ShlImm => I32Shl, I32ShrSImm => I32ShrS, I32ShrUImm => I32ShrU,
        I32EqImm => I32Eq, I32NeImm => I32Ne, I32LtSImm => I32LtS, I32LtUImm => I32LtU,
        I32GtSImm => I32GtS, I32GtUImm => I32GtU, I32LeSImm => I32LeS, I32LeUImm => I32LeU,
        I32GeSImm => I32GeS, I32GeUImm => I32GeU, I64AddImm => I64Add, I64MulImm => I64Mul,
        I64AndImm => I64And, I64OrImm => I64Or, I64XorImm => I64Xor, I64ShlImm => I64Shl,
        I64ShrSImm => I64ShrS, I64ShrUImm => I64ShrU, I64EqImm => I64Eq, I64NeImm => I64Ne,
        I64LtSImm => I64LtS, I64LtUImm => I64LtU, I64GtSImm => I64GtS, I64GtUImm => I64GtU,
        I64LeSImm => I64LeS, I64LeUImm => I64LeU, I64GeSImm => I64GeS, I64GeUImm => I64GeU,
    ],
    branch_cmp: [
        BrI32Eq => I32Eq, BrI32Ne => I32Ne, BrI32LtS => I32LtS, BrI32LtU => I32LtU,
        BrI32GtS => I32GtS, BrI32GtU => I32GtU, BrI32LeS => I32LeS, BrI32LeU => I32LeU,
        BrI32GeS => I32GeS, BrI32GeU => I32GeU,
    ],
    branch_cmp_imm: [
        BrI32EqImm => I32Eq, BrI32NeImm => I32Ne, BrI32LtSImm => I32LtS, BrI32LtUImm => I32LtU,
        BrI32GtSImm => I32GtS, BrI32GtUImm => I32GtU, BrI32LeSImm => I32LeS,
        BrI32LeUImm => I32LeU, BrI32GeSImm => I32GeS, BrI32GeUImm => I32GeU,
    ],
    unary: [
        I32Eqz, I32Clz, I32Ctz, I32Popcnt, I64Eqz, I64Clz, I64Ctz, I64Popcnt,
        F32Abs, F32Neg, F32Ceil, F32Floor, F32Trunc, F32Nearest, F32Sqrt,
        F64Abs, F64Neg, F64Ceil, F64Floor, F64Trunc, F64Nearest, F64Sqrt,
        I32WrapI64, I32TruncF32S, I32TruncF32U, I32TruncF64S, I32TruncF64U,
        I64ExtendI32S, I64ExtendI32U, I64TruncF32S, I64TruncF32U, I64TruncF64S, I64TruncF64U,
        F32ConvertI32S, F32ConvertI32U, F32ConvertI64S, F32ConvertI64U, F32DemoteF64,
        F64ConvertI32S, F64ConvertI32U, F64ConvertI64S, F64ConvertI64U, F64PromoteF32,
        I32Extend8S, I32Extend16S, I64Extend8S, I64Extend16S, I64Extend32S,
        I32TruncSatF32S, I32TruncSatF32U, I32TruncSatF64S, I32TruncSatF64U,
        I64TruncSatF32S, I64TruncSatF32U, I64TruncSatF64S, I64TruncSatF64U,
    ],
    load: [
        I32Load, I64Load, F32Load, F64Load,
        I32Load8S, I32Load8U, I32Load16S, I32Load16U,
        I64Load8S, I64Load8U, I64Load16S, I64Load16U, I64Load32S, I64Load32U,
    ],
    store: [
        I32Store, I64Store, F32Store, F64Store,
        I32Store8, I32Store16, I64Store8, I64Store16, I64Store32,
    ],
}

const _: () = assert!(std::mem::size_of::<Instr>() == 16);

/// A `call_indirect` site's static operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndirectSite {
    pub table: u32,
    /// Type index in the module.
    pub type_index: u32,
}

/// One defined function, lowered.
#[derive(Debug, Clone)]
pub struct CompiledFunc {
    /// Index in the module's function index space.
    pub func_index: u32,
    /// Anchor id of the function's entry counter (its index among defined functions).
    pub entry_anchor: u32,
    pub num_params: u32,
    /// Results, returned in slots `0..num_results`.
    pub num_results: u32,
    /// Params plus declared locals.
    pub num_locals: u32,
    /// Constants the code reads as operands, in the slots from `const_base` on; the
    /// interpreter writes them into every new frame, so no instruction in a loop has to
    /// materialize a constant.
    pub consts: Vec<u64>,
    pub const_base: u32,
    /// A new frame's slots after the parameters, up to the last constant: the declared
    /// locals' zeros, the scratch slot, then `consts` at `const_base`. A call writes them
    /// in one copy.
    pub frame_init: Vec<u64>,
    /// Slots the frame needs: locals, one scratch slot, the constants and the deepest
    /// operand stack.
    pub frame_size: u32,
    pub code: Vec<Instr>,
    /// The wasm byte offset each instruction came from, for backtraces and anchors.
    pub offsets: Vec<u32>,
    pub indirect_sites: Vec<IndirectSite>,
    /// The code's live slots, worked out the first time a recording needs them.
    pub liveness: OnceLock<Arc<Liveness>>,
}

impl CompiledFunc {
    /// The live slots at each pc of the code (`liveness.rs`).
    pub fn liveness(&self) -> Arc<Liveness> {
        self.liveness
            .get_or_init(|| Arc::new(Liveness::of(self)))
            .clone()
    }

    /// Checks the structural invariants `exec.rs` relies on to index without bounds
    /// checks: every slot an instruction touches lies in the frame, every call window
    /// holds its arguments and results, every jump lands inside the code, and control
    /// cannot run off the end. `window_size(instr)` gives the slots a call's window needs.
    ///
    /// The lowering establishes these by construction; this check makes a lowering bug
    /// a load error instead of memory unsafety.
    pub fn check(
        &self,
        num_anchors: u32,
        window_size: impl Fn(&Instr) -> u32,
    ) -> Result<(), String> {
        let len = self.code.len();
        if !self.code.last().is_some_and(Instr::is_terminator) {
            return Err("code can run past its end".to_string());
        }
        let mut problem = None;
        for (pc, instr) in self.code.iter().enumerate() {
            let mut note = |what: String| {
                problem.get_or_insert_with(|| format!("instruction {pc} ({instr:?}): {what}"));
            };
            instr.for_each_slot_range(|first, count| {
                if first as u64 + count as u64 > self.frame_size as u64 {
                    note(format!(
                        "slots {first}+{count} outside a frame of {}",
                        self.frame_size
                    ));
                }
            });
            let mut copy = *instr;
            if let Some(&mut target) = copy.branch_target_mut() {
                if target as usize >= len {
                    note(format!("jump to {target} past the end {len}"));
                }
            }
            match *instr {
                Instr::BrTable { len: n, .. } => {
                    let entries = &self.code.get(pc + 1..pc + 2 + n as usize);
                    match entries {
                        Some(entries) if entries.iter().all(|e| matches!(e, Instr::Br { .. })) => {}
                        _ => note("table entries are not all jumps".to_string()),
                    }
                }
                Instr::CallIndirect { site, .. } if site as usize >= self.indirect_sites.len() => {
                    note(format!("indirect site {site} out of range"));
                }
                Instr::Call { base, .. } | Instr::CallIndirect { base, .. }
                    if base as u64 + window_size(instr) as u64 > self.frame_size as u64 =>
                {
                    note("call window outside the frame".to_string());
                }
                Instr::LoopHeader { anchor } if anchor >= num_anchors => {
                    note(format!("anchor {anchor} out of range"));
                }
                _ => {}
            }
        }
        if self.entry_anchor >= num_anchors {
            problem
                .get_or_insert_with(|| format!("entry anchor {} out of range", self.entry_anchor));
        }
        if self.num_locals >= self.frame_size
            || self.offsets.len() != len
            || self.const_base as u64 + self.consts.len() as u64 > self.frame_size as u64
            || self.num_params as u64 + self.frame_init.len() as u64 > self.frame_size as u64
        {
            problem.get_or_insert_with(|| "frame or offsets inconsistent".to_string());
        }
        problem.map_or(Ok(()), Err)
    }
}
