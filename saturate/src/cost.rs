//! The cost model: what an operator or instruction costs, in abstract units.
//!
//! **Provisional.** These are relative guesses from the usual latencies of the machine
//! code engines emit for each wasm operator, chosen only to rank candidates; issue 4's
//! measurement (cost per operator on real engines) replaces them. What they encode:
//! constants and inputs are free (immediates and frame reads the trace makes anyway),
//! simple ALU operators cost 1, multiplication 3, division and remainder 20, loads and
//! stores 3, `memory.grow` 50 (a call into the runtime), float arithmetic 4 and float
//! division and square root 20.
//!
//! | what | cost |
//! |---|---|
//! | constant, input, memory state | 0 |
//! | add, sub, and, or, xor, shifts, rotations, comparisons, eqz, extensions, wrap | 1 |
//! | clz, ctz | 1 |
//! | popcnt, select | 2 |
//! | mul | 3 |
//! | div, rem (integer) | 20 |
//! | float add, sub, mul, min, max, compare, convert, trunc | 4 |
//! | float abs, neg, copysign, reinterpret | 1 |
//! | float div, sqrt | 20 |
//! | load, store | 3 |
//! | global.set, memory.size, guard | 1 |
//! | memory.grow | 50 |

use ir::{Inst, NumOp, Trace};

use crate::lang::{Head, Node};

pub const CONST: u64 = 0;
pub const ALU: u64 = 1;
pub const POPCNT: u64 = 2;
pub const SELECT: u64 = 2;
pub const MUL: u64 = 3;
pub const DIV: u64 = 20;
pub const FLOAT: u64 = 4;
pub const FLOAT_BITS: u64 = 1;
pub const FLOAT_SLOW: u64 = 20;
pub const LOAD: u64 = 3;
pub const STORE: u64 = 3;
pub const GLOBAL_SET: u64 = 1;
pub const MEMORY_SIZE: u64 = 1;
pub const MEMORY_GROW: u64 = 50;
pub const GUARD: u64 = 1;

/// The cost of one numeric operator.
pub fn op_cost(op: NumOp) -> u64 {
    use NumOp::*;
    match op {
        I32Mul | I64Mul => MUL,
        I32DivS | I32DivU | I32RemS | I32RemU | I64DivS | I64DivU | I64RemS | I64RemU => DIV,
        I32Popcnt | I64Popcnt => POPCNT,
        F32Div | F64Div | F32Sqrt | F64Sqrt => FLOAT_SLOW,
        F32Abs | F32Neg | F32Copysign | F64Abs | F64Neg | F64Copysign | I32ReinterpretF32
        | I64ReinterpretF64 | F32ReinterpretI32 | F64ReinterpretI64 => FLOAT_BITS,
        _ if op
            .params()
            .iter()
            .chain([&op.result()])
            .any(|t| t.is_float()) =>
        {
            FLOAT
        }
        _ => ALU,
    }
}

/// The cost of an e-node by itself (children not included). Opaque spine results and
/// memory states cost nothing here: the spine instruction that defines them is paid for
/// once, whatever extraction picks. A load costs a load: a load whose value the memory
/// rules forward from a store can leave the spine when it cannot trap, so extraction
/// must see what choosing it over the forwarded value costs.
pub fn node_cost(node: &Node) -> u64 {
    match node.head {
        Head::Const(..)
        | Head::Input(..)
        | Head::Mem(_)
        | Head::Store(..)
        | Head::Grown(_)
        | Head::Spine(..) => CONST,
        Head::Load(..) => LOAD,
        Head::Num(op) => op_cost(op),
        Head::Select(_) => SELECT,
    }
}

/// The cost of one trace instruction.
pub fn inst_cost(inst: &Inst) -> u64 {
    match inst {
        Inst::Num { op, .. } => op_cost(*op),
        Inst::Select { .. } => SELECT,
        Inst::Load { .. } => LOAD,
        Inst::Store { .. } => STORE,
        Inst::GlobalSet { .. } => GLOBAL_SET,
        Inst::MemorySize { .. } => MEMORY_SIZE,
        Inst::MemoryGrow { .. } => MEMORY_GROW,
        Inst::Guard { .. } => GUARD,
    }
}

/// A trace's cost: the sum over its instructions (each value is computed once).
pub fn trace_cost(trace: &Trace) -> u64 {
    trace.body.iter().map(inst_cost).sum()
}
