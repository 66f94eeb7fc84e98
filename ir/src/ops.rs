//! What each operator of a trace is: its wasm text name, operand and result types, and
//! whether it can trap. One table per kind of operator ([`NUM_OPS`], [`LOAD_KINDS`],
//! [`STORE_KINDS`]), indexed by the enum's declaration order; the text form, the binary
//! form, the validator and the evaluator all read these tables rather than matching on
//! the enums themselves.
//!
//! The index of an entry is also its code in the binary form (`binary.rs`), so new
//! operators are appended at the end of their enum and of their table; the golden files
//! in `tests/traces/` pin the codes.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::trace::{LoadKind, NumOp, StoreKind, Type};

/// The static facts about one numeric operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpInfo {
    pub op: NumOp,
    /// The name in wasm's text form, e.g. `"i32.add"`.
    pub name: &'static str,
    /// Operand types, in wasm's operand order (the first is pushed first).
    pub params: &'static [Type],
    pub result: Type,
    /// Whether some operands make it trap (division, remainder, trapping float-to-int).
    pub can_trap: bool,
}

impl OpInfo {
    pub fn arity(&self) -> usize {
        self.params.len()
    }
}

/// How a load reads memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadInfo {
    pub kind: LoadKind,
    /// The name in wasm's text form, e.g. `"i32.load8_s"`.
    pub name: &'static str,
    /// Bytes read.
    pub bytes: u32,
    pub result: Type,
    /// Whether a narrow load sign-extends (false: zero-extends; meaningless at full width).
    pub signed: bool,
}

/// How a store writes memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreInfo {
    pub kind: StoreKind,
    /// The name in wasm's text form, e.g. `"i64.store32"`.
    pub name: &'static str,
    /// Bytes written: the low bytes of the operand.
    pub bytes: u32,
    pub operand: Type,
}

use NumOp::*;
use Type::{F32, F64, I32, I64};

const TRAPS: bool = true;
const TOTAL: bool = false;

const fn op(
    op: NumOp,
    name: &'static str,
    params: &'static [Type],
    result: Type,
    can_trap: bool,
) -> OpInfo {
    OpInfo {
        op,
        name,
        params,
        result,
        can_trap,
    }
}

/// Every numeric operator, in `NumOp`'s declaration order.
#[rustfmt::skip]
pub static NUM_OPS: [OpInfo; 136] = [
    op(I32Add, "i32.add", &[I32, I32], I32, TOTAL),
    op(I32Sub, "i32.sub", &[I32, I32], I32, TOTAL),
    op(I32Mul, "i32.mul", &[I32, I32], I32, TOTAL),
    op(I32DivS, "i32.div_s", &[I32, I32], I32, TRAPS),
    op(I32DivU, "i32.div_u", &[I32, I32], I32, TRAPS),
    op(I32RemS, "i32.rem_s", &[I32, I32], I32, TRAPS),
    op(I32RemU, "i32.rem_u", &[I32, I32], I32, TRAPS),
    op(I32And, "i32.and", &[I32, I32], I32, TOTAL),
    op(I32Or, "i32.or", &[I32, I32], I32, TOTAL),
    op(I32Xor, "i32.xor", &[I32, I32], I32, TOTAL),
    op(I32Shl, "i32.shl", &[I32, I32], I32, TOTAL),
    op(I32ShrS, "i32.shr_s", &[I32, I32], I32, TOTAL),
    op(I32ShrU, "i32.shr_u", &[I32, I32], I32, TOTAL),
    op(I32Rotl, "i32.rotl", &[I32, I32], I32, TOTAL),
    op(I32Rotr, "i32.rotr", &[I32, I32], I32, TOTAL),
    op(I32Eq, "i32.eq", &[I32, I32], I32, TOTAL),
    op(I32Ne, "i32.ne", &[I32, I32], I32, TOTAL),
    op(I32LtS, "i32.lt_s", &[I32, I32], I32, TOTAL),
    op(I32LtU, "i32.lt_u", &[I32, I32], I32, TOTAL),
    op(I32GtS, "i32.gt_s", &[I32, I32], I32, TOTAL),
    op(I32GtU, "i32.gt_u", &[I32, I32], I32, TOTAL),
    op(I32LeS, "i32.le_s", &[I32, I32], I32, TOTAL),
    op(I32LeU, "i32.le_u", &[I32, I32], I32, TOTAL),
    op(I32GeS, "i32.ge_s", &[I32, I32], I32, TOTAL),
    op(I32GeU, "i32.ge_u", &[I32, I32], I32, TOTAL),
    op(I32Eqz, "i32.eqz", &[I32], I32, TOTAL),
    op(I32Clz, "i32.clz", &[I32], I32, TOTAL),
    op(I32Ctz, "i32.ctz", &[I32], I32, TOTAL),
    op(I32Popcnt, "i32.popcnt", &[I32], I32, TOTAL),
    op(I32Extend8S, "i32.extend8_s", &[I32], I32, TOTAL),
    op(I32Extend16S, "i32.extend16_s", &[I32], I32, TOTAL),

    op(I64Add, "i64.add", &[I64, I64], I64, TOTAL),
    op(I64Sub, "i64.sub", &[I64, I64], I64, TOTAL),
    op(I64Mul, "i64.mul", &[I64, I64], I64, TOTAL),
    op(I64DivS, "i64.div_s", &[I64, I64], I64, TRAPS),
    op(I64DivU, "i64.div_u", &[I64, I64], I64, TRAPS),
    op(I64RemS, "i64.rem_s", &[I64, I64], I64, TRAPS),
    op(I64RemU, "i64.rem_u", &[I64, I64], I64, TRAPS),
    op(I64And, "i64.and", &[I64, I64], I64, TOTAL),
    op(I64Or, "i64.or", &[I64, I64], I64, TOTAL),
    op(I64Xor, "i64.xor", &[I64, I64], I64, TOTAL),
    op(I64Shl, "i64.shl", &[I64, I64], I64, TOTAL),
    op(I64ShrS, "i64.shr_s", &[I64, I64], I64, TOTAL),
    op(I64ShrU, "i64.shr_u", &[I64, I64], I64, TOTAL),
    op(I64Rotl, "i64.rotl", &[I64, I64], I64, TOTAL),
    op(I64Rotr, "i64.rotr", &[I64, I64], I64, TOTAL),
    op(I64Eq, "i64.eq", &[I64, I64], I32, TOTAL),
    op(I64Ne, "i64.ne", &[I64, I64], I32, TOTAL),
    op(I64LtS, "i64.lt_s", &[I64, I64], I32, TOTAL),
    op(I64LtU, "i64.lt_u", &[I64, I64], I32, TOTAL),
    op(I64GtS, "i64.gt_s", &[I64, I64], I32, TOTAL),
    op(I64GtU, "i64.gt_u", &[I64, I64], I32, TOTAL),
    op(I64LeS, "i64.le_s", &[I64, I64], I32, TOTAL),
    op(I64LeU, "i64.le_u", &[I64, I64], I32, TOTAL),
    op(I64GeS, "i64.ge_s", &[I64, I64], I32, TOTAL),
    op(I64GeU, "i64.ge_u", &[I64, I64], I32, TOTAL),
    op(I64Eqz, "i64.eqz", &[I64], I32, TOTAL),
    op(I64Clz, "i64.clz", &[I64], I64, TOTAL),
    op(I64Ctz, "i64.ctz", &[I64], I64, TOTAL),
    op(I64Popcnt, "i64.popcnt", &[I64], I64, TOTAL),
    op(I64Extend8S, "i64.extend8_s", &[I64], I64, TOTAL),
    op(I64Extend16S, "i64.extend16_s", &[I64], I64, TOTAL),
    op(I64Extend32S, "i64.extend32_s", &[I64], I64, TOTAL),

    op(F32Add, "f32.add", &[F32, F32], F32, TOTAL),
    op(F32Sub, "f32.sub", &[F32, F32], F32, TOTAL),
    op(F32Mul, "f32.mul", &[F32, F32], F32, TOTAL),
    op(F32Div, "f32.div", &[F32, F32], F32, TOTAL),
    op(F32Min, "f32.min", &[F32, F32], F32, TOTAL),
    op(F32Max, "f32.max", &[F32, F32], F32, TOTAL),
    op(F32Copysign, "f32.copysign", &[F32, F32], F32, TOTAL),
    op(F32Eq, "f32.eq", &[F32, F32], I32, TOTAL),
    op(F32Ne, "f32.ne", &[F32, F32], I32, TOTAL),
    op(F32Lt, "f32.lt", &[F32, F32], I32, TOTAL),
    op(F32Gt, "f32.gt", &[F32, F32], I32, TOTAL),
    op(F32Le, "f32.le", &[F32, F32], I32, TOTAL),
    op(F32Ge, "f32.ge", &[F32, F32], I32, TOTAL),
    op(F32Abs, "f32.abs", &[F32], F32, TOTAL),
    op(F32Neg, "f32.neg", &[F32], F32, TOTAL),
    op(F32Ceil, "f32.ceil", &[F32], F32, TOTAL),
    op(F32Floor, "f32.floor", &[F32], F32, TOTAL),
    op(F32Trunc, "f32.trunc", &[F32], F32, TOTAL),
    op(F32Nearest, "f32.nearest", &[F32], F32, TOTAL),
    op(F32Sqrt, "f32.sqrt", &[F32], F32, TOTAL),

    op(F64Add, "f64.add", &[F64, F64], F64, TOTAL),
    op(F64Sub, "f64.sub", &[F64, F64], F64, TOTAL),
    op(F64Mul, "f64.mul", &[F64, F64], F64, TOTAL),
    op(F64Div, "f64.div", &[F64, F64], F64, TOTAL),
    op(F64Min, "f64.min", &[F64, F64], F64, TOTAL),
    op(F64Max, "f64.max", &[F64, F64], F64, TOTAL),
    op(F64Copysign, "f64.copysign", &[F64, F64], F64, TOTAL),
    op(F64Eq, "f64.eq", &[F64, F64], I32, TOTAL),
    op(F64Ne, "f64.ne", &[F64, F64], I32, TOTAL),
    op(F64Lt, "f64.lt", &[F64, F64], I32, TOTAL),
    op(F64Gt, "f64.gt", &[F64, F64], I32, TOTAL),
    op(F64Le, "f64.le", &[F64, F64], I32, TOTAL),
    op(F64Ge, "f64.ge", &[F64, F64], I32, TOTAL),
    op(F64Abs, "f64.abs", &[F64], F64, TOTAL),
    op(F64Neg, "f64.neg", &[F64], F64, TOTAL),
    op(F64Ceil, "f64.ceil", &[F64], F64, TOTAL),
    op(F64Floor, "f64.floor", &[F64], F64, TOTAL),
    op(F64Trunc, "f64.trunc", &[F64], F64, TOTAL),
    op(F64Nearest, "f64.nearest", &[F64], F64, TOTAL),
    op(F64Sqrt, "f64.sqrt", &[F64], F64, TOTAL),

    op(I32WrapI64, "i32.wrap_i64", &[I64], I32, TOTAL),
    op(I64ExtendI32S, "i64.extend_i32_s", &[I32], I64, TOTAL),
    op(I64ExtendI32U, "i64.extend_i32_u", &[I32], I64, TOTAL),
    op(I32TruncF32S, "i32.trunc_f32_s", &[F32], I32, TRAPS),
    op(I32TruncF32U, "i32.trunc_f32_u", &[F32], I32, TRAPS),
    op(I32TruncF64S, "i32.trunc_f64_s", &[F64], I32, TRAPS),
    op(I32TruncF64U, "i32.trunc_f64_u", &[F64], I32, TRAPS),
    op(I64TruncF32S, "i64.trunc_f32_s", &[F32], I64, TRAPS),
    op(I64TruncF32U, "i64.trunc_f32_u", &[F32], I64, TRAPS),
    op(I64TruncF64S, "i64.trunc_f64_s", &[F64], I64, TRAPS),
    op(I64TruncF64U, "i64.trunc_f64_u", &[F64], I64, TRAPS),
    op(I32TruncSatF32S, "i32.trunc_sat_f32_s", &[F32], I32, TOTAL),
    op(I32TruncSatF32U, "i32.trunc_sat_f32_u", &[F32], I32, TOTAL),
    op(I32TruncSatF64S, "i32.trunc_sat_f64_s", &[F64], I32, TOTAL),
    op(I32TruncSatF64U, "i32.trunc_sat_f64_u", &[F64], I32, TOTAL),
    op(I64TruncSatF32S, "i64.trunc_sat_f32_s", &[F32], I64, TOTAL),
    op(I64TruncSatF32U, "i64.trunc_sat_f32_u", &[F32], I64, TOTAL),
    op(I64TruncSatF64S, "i64.trunc_sat_f64_s", &[F64], I64, TOTAL),
    op(I64TruncSatF64U, "i64.trunc_sat_f64_u", &[F64], I64, TOTAL),
    op(F32ConvertI32S, "f32.convert_i32_s", &[I32], F32, TOTAL),
    op(F32ConvertI32U, "f32.convert_i32_u", &[I32], F32, TOTAL),
    op(F32ConvertI64S, "f32.convert_i64_s", &[I64], F32, TOTAL),
    op(F32ConvertI64U, "f32.convert_i64_u", &[I64], F32, TOTAL),
    op(F32DemoteF64, "f32.demote_f64", &[F64], F32, TOTAL),
    op(F64ConvertI32S, "f64.convert_i32_s", &[I32], F64, TOTAL),
    op(F64ConvertI32U, "f64.convert_i32_u", &[I32], F64, TOTAL),
    op(F64ConvertI64S, "f64.convert_i64_s", &[I64], F64, TOTAL),
    op(F64ConvertI64U, "f64.convert_i64_u", &[I64], F64, TOTAL),
    op(F64PromoteF32, "f64.promote_f32", &[F32], F64, TOTAL),
    op(I32ReinterpretF32, "i32.reinterpret_f32", &[F32], I32, TOTAL),
    op(I64ReinterpretF64, "i64.reinterpret_f64", &[F64], I64, TOTAL),
    op(F32ReinterpretI32, "f32.reinterpret_i32", &[I32], F32, TOTAL),
    op(F64ReinterpretI64, "f64.reinterpret_i64", &[I64], F64, TOTAL),
];

const fn load(
    kind: LoadKind,
    name: &'static str,
    bytes: u32,
    result: Type,
    signed: bool,
) -> LoadInfo {
    LoadInfo {
        kind,
        name,
        bytes,
        result,
        signed,
    }
}

/// Every load, in `LoadKind`'s declaration order.
#[rustfmt::skip]
pub static LOAD_KINDS: [LoadInfo; 14] = [
    load(LoadKind::I32, "i32.load", 4, I32, false),
    load(LoadKind::I64, "i64.load", 8, I64, false),
    load(LoadKind::F32, "f32.load", 4, F32, false),
    load(LoadKind::F64, "f64.load", 8, F64, false),
    load(LoadKind::I32_8S, "i32.load8_s", 1, I32, true),
    load(LoadKind::I32_8U, "i32.load8_u", 1, I32, false),
    load(LoadKind::I32_16S, "i32.load16_s", 2, I32, true),
    load(LoadKind::I32_16U, "i32.load16_u", 2, I32, false),
    load(LoadKind::I64_8S, "i64.load8_s", 1, I64, true),
    load(LoadKind::I64_8U, "i64.load8_u", 1, I64, false),
    load(LoadKind::I64_16S, "i64.load16_s", 2, I64, true),
    load(LoadKind::I64_16U, "i64.load16_u", 2, I64, false),
    load(LoadKind::I64_32S, "i64.load32_s", 4, I64, true),
    load(LoadKind::I64_32U, "i64.load32_u", 4, I64, false),
];

const fn store(kind: StoreKind, name: &'static str, bytes: u32, operand: Type) -> StoreInfo {
    StoreInfo {
        kind,
        name,
        bytes,
        operand,
    }
}

/// Every store, in `StoreKind`'s declaration order.
#[rustfmt::skip]
pub static STORE_KINDS: [StoreInfo; 9] = [
    store(StoreKind::I32, "i32.store", 4, I32),
    store(StoreKind::I64, "i64.store", 8, I64),
    store(StoreKind::F32, "f32.store", 4, F32),
    store(StoreKind::F64, "f64.store", 8, F64),
    store(StoreKind::I32_8, "i32.store8", 1, I32),
    store(StoreKind::I32_16, "i32.store16", 2, I32),
    store(StoreKind::I64_8, "i64.store8", 1, I64),
    store(StoreKind::I64_16, "i64.store16", 2, I64),
    store(StoreKind::I64_32, "i64.store32", 4, I64),
];

/// Name → table index, built on first use.
fn index_by_name<T>(
    table: &'static [T],
    name_of: fn(&T) -> &'static str,
) -> HashMap<&'static str, usize> {
    table
        .iter()
        .enumerate()
        .map(|(i, e)| (name_of(e), i))
        .collect()
}

impl NumOp {
    pub fn info(self) -> &'static OpInfo {
        &NUM_OPS[self as usize]
    }

    /// The wasm text name, e.g. `"i32.add"`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn params(self) -> &'static [Type] {
        self.info().params
    }

    pub fn result(self) -> Type {
        self.info().result
    }

    pub fn can_trap(self) -> bool {
        self.info().can_trap
    }

    /// The operator with this wasm text name.
    pub fn from_name(name: &str) -> Option<NumOp> {
        static BY_NAME: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
        let i = *BY_NAME
            .get_or_init(|| index_by_name(&NUM_OPS, |e| e.name))
            .get(name)?;
        Some(NUM_OPS[i].op)
    }

    /// The operator's code in the binary form: its index in [`NUM_OPS`].
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<NumOp> {
        NUM_OPS.get(code as usize).map(|e| e.op)
    }
}

impl LoadKind {
    pub fn info(self) -> &'static LoadInfo {
        &LOAD_KINDS[self as usize]
    }

    /// The wasm text name, e.g. `"i32.load8_s"`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn bytes(self) -> u32 {
        self.info().bytes
    }

    pub fn result(self) -> Type {
        self.info().result
    }

    pub fn from_name(name: &str) -> Option<LoadKind> {
        static BY_NAME: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
        let i = *BY_NAME
            .get_or_init(|| index_by_name(&LOAD_KINDS, |e| e.name))
            .get(name)?;
        Some(LOAD_KINDS[i].kind)
    }

    /// The load's code in the binary form: its index in [`LOAD_KINDS`].
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<LoadKind> {
        LOAD_KINDS.get(code as usize).map(|e| e.kind)
    }
}

impl StoreKind {
    pub fn info(self) -> &'static StoreInfo {
        &STORE_KINDS[self as usize]
    }

    /// The wasm text name, e.g. `"i64.store32"`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn bytes(self) -> u32 {
        self.info().bytes
    }

    pub fn operand(self) -> Type {
        self.info().operand
    }

    pub fn from_name(name: &str) -> Option<StoreKind> {
        static BY_NAME: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
        let i = *BY_NAME
            .get_or_init(|| index_by_name(&STORE_KINDS, |e| e.name))
            .get(name)?;
        Some(STORE_KINDS[i].kind)
    }

    /// The store's code in the binary form: its index in [`STORE_KINDS`].
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<StoreKind> {
        STORE_KINDS.get(code as usize).map(|e| e.kind)
    }
}

impl Type {
    /// Every value type, in declaration order (also their codes in the binary form).
    pub const ALL: [Type; 4] = [Type::I32, Type::I64, Type::F32, Type::F64];

    pub fn from_name(name: &str) -> Option<Type> {
        Type::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn is_float(self) -> bool {
        matches!(self, Type::F32 | Type::F64)
    }

    /// Whether `bits` is a canonical constant of this type: 32-bit types keep their
    /// upper 32 bits zero, as the interpreter's slots do.
    pub fn holds(self, bits: u64) -> bool {
        self.bits() == 64 || bits >> 32 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_in_declaration_order() {
        for (i, e) in NUM_OPS.iter().enumerate() {
            assert_eq!(e.op as usize, i, "{}", e.name);
        }
        for (i, e) in LOAD_KINDS.iter().enumerate() {
            assert_eq!(e.kind as usize, i, "{}", e.name);
        }
        for (i, e) in STORE_KINDS.iter().enumerate() {
            assert_eq!(e.kind as usize, i, "{}", e.name);
        }
        // The table sizes are fixed by their types; the last variant closes each table.
        assert_eq!(NumOp::F64ReinterpretI64 as usize + 1, NUM_OPS.len());
        assert_eq!(LoadKind::I64_32U as usize + 1, LOAD_KINDS.len());
        assert_eq!(StoreKind::I64_32 as usize + 1, STORE_KINDS.len());
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        for e in &NUM_OPS {
            assert_eq!(NumOp::from_name(e.name), Some(e.op));
            assert_eq!(NumOp::from_code(e.op.code()), Some(e.op));
        }
        for e in &LOAD_KINDS {
            assert_eq!(LoadKind::from_name(e.name), Some(e.kind));
            assert_eq!(LoadKind::from_code(e.kind.code()), Some(e.kind));
        }
        for e in &STORE_KINDS {
            assert_eq!(StoreKind::from_name(e.name), Some(e.kind));
            assert_eq!(StoreKind::from_code(e.kind.code()), Some(e.kind));
        }
        assert_eq!(NumOp::from_name("i32.load"), None);
        assert_eq!(NumOp::from_code(NUM_OPS.len() as u8), None);
        assert_eq!(Type::from_name("f64"), Some(Type::F64));
    }

    /// The name says the result type (`i64.eq` gives i32, but starts with its operand
    /// type; conversions end with it), which catches copy-paste slips in the table.
    #[test]
    fn names_agree_with_types() {
        for e in &NUM_OPS {
            let (prefix, rest) = e.name.split_once('.').unwrap();
            let comparison = ["eq", "ne", "lt", "gt", "le", "ge", "eqz"]
                .iter()
                .any(|c| rest == *c || rest.starts_with(&format!("{c}_")));
            if comparison {
                assert_eq!(e.result, Type::I32, "{}", e.name);
                assert_eq!(e.params[0].name(), prefix, "{}", e.name);
            } else {
                assert_eq!(e.result.name(), prefix, "{}", e.name);
            }
            if let Some(from) = ["_i32", "_i64", "_f32", "_f64"].iter().find(|s| {
                rest.ends_with(*s)
                    || rest.ends_with(&format!("{}_s", s))
                    || rest.ends_with(&format!("{}_u", s))
            }) {
                assert_eq!(e.params[0].name(), &from[1..], "{}", e.name);
            }
            let int_division =
                (rest.starts_with("div") || rest.starts_with("rem")) && !e.result.is_float();
            let trapping_truncation = rest.starts_with("trunc_") && !rest.starts_with("trunc_sat");
            let traps = int_division || trapping_truncation;
            assert_eq!(e.can_trap, traps, "{}", e.name);
        }
        for e in &LOAD_KINDS {
            assert!(e.name.starts_with(e.result.name()));
            assert!(e.bytes * 8 <= e.result.bits());
        }
        for e in &STORE_KINDS {
            assert!(e.name.starts_with(e.operand.name()));
            assert!(e.bytes * 8 <= e.operand.bits());
        }
    }
}
