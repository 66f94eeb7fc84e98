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

/// A slot index relative to the current frame's base.
pub type Slot = u32;

macro_rules! define_instrs {
    (
        binary: [$($bin:ident),* $(,)?],
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

        impl Instr {
            /// The destination of an instruction that reads all its operands and then
            /// writes exactly one slot and nothing else: the lowering may retarget such
            /// an instruction to write a local directly.
            pub fn pure_dst_mut(&mut self) -> Option<&mut Slot> {
                match self {
                    $( Instr::$bin { dst, .. } => Some(dst), )*
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
    /// Params plus declared locals.
    pub num_locals: u32,
    /// Slots the frame needs: locals, the deepest operand stack, and one scratch slot.
    pub frame_size: u32,
    pub code: Vec<Instr>,
    /// The wasm byte offset each instruction came from, for backtraces and anchors.
    pub offsets: Vec<u32>,
    pub indirect_sites: Vec<IndirectSite>,
}
