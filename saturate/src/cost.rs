//! The cost model: what an operator or instruction costs, in units of one `i32.add`.
//!
//! **Measured** with `target/release/kiln bench --op-costs` on 2026-11-23 21:22 UTC (x86-64,
//! wasmtime 48; the method is in `kiln/src/bench/op_costs.rs`, the whole table in
//! BENCHMARKS.md, "Cost model"). Each operator runs as a dependency chain in a wasm
//! loop compiled by Cranelift and by Winch; its latency is divided by `i32.add`'s.
//!
//! How the units are derived: operators are grouped by what the engine does with them
//! (the rows below); a group's unit is the mean over its operators of **Cranelift's
//! latency relative to `i32.add`**, rounded to the nearest integer, and at least 1
//! (every operator is an instruction the trace must run; a free one would let
//! extraction add them at no cost). Cranelift is the reference because kiln's cache is
//! compiled by it; Winch's ratios, shown beside, are lower for most groups (its
//! `i32.add` is slower, so its unit is larger) but rank the groups in the same order.
//!
//! | what | unit | Cranelift ÷ i32.add (group mean, range) | Winch ÷ i32.add |
//! |---|---:|---|---:|
//! | constant, input, memory state | 0 | not operators: immediates and frame reads the trace makes anyway | |
//! | add, sub, and, or, xor, shifts, rotations, extend8/16/32_s, wrap, extend_i32 | 1 | 0.96 (0.49–1.10) | 0.96 |
//! | integer comparisons, eqz | 3 | 3.27 (2.66–4.71) | 1.69 |
//! | clz, ctz, popcnt | 3 | 3.17 (3.12–3.28) | 2.65 |
//! | mul | 3 | 3.18 | 2.42 |
//! | i32 div_s, div_u / rem_s, rem_u | 13 / 17 | 12.93 / 16.61 | 9.25 / 12.21 |
//! | i64 div_s, div_u / rem_s, rem_u | 16 / 20 | 15.66 / 19.97 | 11.48 / 14.64 |
//! | select | 2 | 1.80 | 0.75 |
//! | float add, sub, copysign, abs, neg | 2 | 2.14 (2.08–2.23) | 1.72 |
//! | float mul | 3 | 3.19 | 2.68 |
//! | float min, max | 4 | 3.88 (3.43–4.34) | 3.16 |
//! | float comparisons | 3 | 3.34 (2.25–4.33) | 2.65 |
//! | float ceil, floor, trunc, nearest | 11 | 10.87 (10.78–10.99) | 7.61 |
//! | f32 div / f64 div | 12 / 14 | 11.95 / 13.96 | 11.62 / 10.17 |
//! | f32 sqrt / f64 sqrt | 14 / 20 | 14.21 / 20.66 | 9.95 / 14.40 |
//! | int ↔ float conversions, truncations, promote, demote | 7 | 7.26 (5.92–9.68) | 5.57 |
//! | reinterpretations | 2 | 2.42 (2.10–2.76) | 1.88 |
//! | load | 7 | 6.52 | 5.63 |
//! | store, global.set | 1 | 0.46, 0.49 (throughput) | 1.20, 0.39 |
//! | memory.grow | 80 | 79.9 (throughput; a call into the runtime) | 56.4 |
//! | memory.size | 7 | not measured: costed as a load | |
//! | guard | 1 | not measured: one conditional branch | |
//!
//! Why loads, stores, guards, `select` and the memory operators are costed so:
//! - a **load** is measured as a pointer chase: its latency, which is what a value that
//!   depends on it waits, including the address zero-extension Cranelift emits for
//!   every wasm load. Its figure sits on a rounding boundary (6.4 to 6.5 in most runs
//!   made, 7.1 once): the recorded run's 6.52 gives 7;
//! - a **store** or `global.set` has no result to wait for: measured as throughput
//!   (sixteen independent writes per iteration), under one `i32.add`, so 1. What a
//!   later load of the stored bytes waits is paid by that load;
//! - a **guard** is a conditional branch the recorder saw go one way, so predicted: one
//!   issue slot, 1. Its condition is costed as the comparison it is, measured with its
//!   0-or-1 result materialized (compare, `setcc`, zero-extend); when it feeds the guard
//!   directly the engine fuses compare and branch, so a guarded comparison is costed
//!   about 2 high;
//! - **`select`** is measured through its value operand (`test` and `cmov`);
//! - **`memory.size`** reads the memory's current length from the instance: a load;
//! - **`memory.grow`**, measured as `memory.grow 0`, is a call into the runtime (75 to
//!   80 over the runs made).
//!
//! Units near a rounding boundary, which rounded the other way in at least one of the
//! runs made: the load (6.2 to 6.5, 7.1 once), i64 division (15.3 to 15.9), i64
//! remainder (19.1 to 20.2), f64 `sqrt` (20.4 to 20.9) and `memory.grow`.
//!
//! Operators whose own Cranelift figure is one or more away from their group's unit in
//! the recorded run (the bench's "off by" column): `gt_u`/`le_u` 4.3 (i32), i64.eqz
//! 4.7 (a perturbed chain; its code is a comparison with zero), f64 `eq`/`ne`/`gt`
//! 4.0–4.3; i32 `div_s` 14.0 and `div_u` 11.8; `f32.convert_i32_u` 9.7,
//! `f32.convert_i64_s`/`_u` 9.2–9.5, `f64.convert_i64_u` 8.7, `f64.convert_i32_u` 8.1,
//! the `i64.trunc*_f32_u` 8.1 and `f64.promote_f32` 5.9.

use ir::{Inst, NumOp, Trace};

use crate::lang::{Head, Node};

pub const CONST: u64 = 0;
/// Simple integer operators: the unit.
pub const ALU: u64 = 1;
pub const COMPARE: u64 = 3;
pub const BIT_COUNT: u64 = 3;
pub const MUL: u64 = 3;
pub const DIV_I32: u64 = 13;
pub const REM_I32: u64 = 17;
pub const DIV_I64: u64 = 16;
pub const REM_I64: u64 = 20;
pub const SELECT: u64 = 2;
pub const FLOAT_ADD: u64 = 2;
pub const FLOAT_MUL: u64 = 3;
pub const FLOAT_MIN_MAX: u64 = 4;
pub const FLOAT_COMPARE: u64 = 3;
pub const FLOAT_ROUND: u64 = 11;
pub const F32_DIV: u64 = 12;
pub const F64_DIV: u64 = 14;
pub const F32_SQRT: u64 = 14;
pub const F64_SQRT: u64 = 20;
pub const CONVERT: u64 = 7;
pub const REINTERPRET: u64 = 2;
pub const LOAD: u64 = 7;
pub const STORE: u64 = 1;
pub const GLOBAL_SET: u64 = 1;
/// Not measured: a load of the memory's length from the instance.
pub const MEMORY_SIZE: u64 = LOAD;
pub const MEMORY_GROW: u64 = 80;
/// Not measured: one predicted conditional branch.
pub const GUARD: u64 = 1;

/// The cost of one numeric operator.
pub fn op_cost(op: NumOp) -> u64 {
    use NumOp::*;
    match op {
        I32Add | I32Sub | I32And | I32Or | I32Xor | I32Shl | I32ShrS | I32ShrU | I32Rotl
        | I32Rotr | I32Extend8S | I32Extend16S | I64Add | I64Sub | I64And | I64Or | I64Xor
        | I64Shl | I64ShrS | I64ShrU | I64Rotl | I64Rotr | I64Extend8S | I64Extend16S
        | I64Extend32S | I32WrapI64 | I64ExtendI32S | I64ExtendI32U => ALU,
        I32Eq | I32Ne | I32LtS | I32LtU | I32GtS | I32GtU | I32LeS | I32LeU | I32GeS | I32GeU
        | I32Eqz | I64Eq | I64Ne | I64LtS | I64LtU | I64GtS | I64GtU | I64LeS | I64LeU | I64GeS
        | I64GeU | I64Eqz => COMPARE,
        I32Clz | I32Ctz | I32Popcnt | I64Clz | I64Ctz | I64Popcnt => BIT_COUNT,
        I32Mul | I64Mul => MUL,
        I32DivS | I32DivU => DIV_I32,
        I32RemS | I32RemU => REM_I32,
        I64DivS | I64DivU => DIV_I64,
        I64RemS | I64RemU => REM_I64,
        F32Add | F32Sub | F32Copysign | F32Abs | F32Neg | F64Add | F64Sub | F64Copysign
        | F64Abs | F64Neg => FLOAT_ADD,
        F32Mul | F64Mul => FLOAT_MUL,
        F32Min | F32Max | F64Min | F64Max => FLOAT_MIN_MAX,
        F32Eq | F32Ne | F32Lt | F32Gt | F32Le | F32Ge | F64Eq | F64Ne | F64Lt | F64Gt | F64Le
        | F64Ge => FLOAT_COMPARE,
        F32Ceil | F32Floor | F32Trunc | F32Nearest | F64Ceil | F64Floor | F64Trunc | F64Nearest => {
            FLOAT_ROUND
        }
        F32Div => F32_DIV,
        F64Div => F64_DIV,
        F32Sqrt => F32_SQRT,
        F64Sqrt => F64_SQRT,
        I32TruncF32S | I32TruncF32U | I32TruncF64S | I32TruncF64U | I64TruncF32S | I64TruncF32U
        | I64TruncF64S | I64TruncF64U | I32TruncSatF32S | I32TruncSatF32U | I32TruncSatF64S
        | I32TruncSatF64U | I64TruncSatF32S | I64TruncSatF32U | I64TruncSatF64S
        | I64TruncSatF64U | F32ConvertI32S | F32ConvertI32U | F32ConvertI64S | F32ConvertI64U
        | F32DemoteF64 | F64ConvertI32S | F64ConvertI32U | F64ConvertI64S | F64ConvertI64U
        | F64PromoteF32 => CONVERT,
        I32ReinterpretF32 | I64ReinterpretF64 | F32ReinterpretI32 | F64ReinterpretI64 => {
            REINTERPRET
        }
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
