//! The reference evaluator: the meaning of a trace. [`eval`] runs a trace once, from a
//! concrete entry state to its end (a loop back to the anchor, an exit, or a trap), with
//! WebAssembly's semantics exactly: wrapping integer arithmetic, shift counts taken modulo
//! the width, traps for division, remainder and float-to-int truncation as `num.rs` says,
//! bounds-checked little-endian memory, `memory.grow` up to the declared maximum, and
//! float bit patterns kept wherever wasm keeps them (`abs`, `neg`, `copysign` and the
//! reinterpretations are bit operations; loads, stores, `select` and slots move bits).
//!
//! Values are kept as the interpreter keeps them: 64 raw bits, 32-bit types zero-extended,
//! floats as their bits. Where wasm lets a NaN result be any arithmetic NaN (arithmetic on
//! NaNs, `min`/`max`, `sqrt`, `demote`/`promote`), the evaluator gives what the host's
//! floating point gives, which is what kiln's interpreter gives on the same host.
//!
//! Effects happen in body order, so at a trap the memory and globals are what the
//! instructions before it left: a trapping store writes nothing.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::num::{self, NumTrap};
use crate::trace::{End, Exit, Inst, NumOp, Operand, Source, Trace, Type, ValueId};
use crate::validate::{validate, ValidateError};

/// Bytes in a wasm page.
pub const PAGE_SIZE: usize = 65536;
/// The most pages a 32-bit memory can have (4 GiB), whatever its declared maximum.
pub const MAX_PAGES: u32 = 65536;

/// The state a trace starts from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryState {
    /// Frame slots by index, raw: 32-bit values zero-extended, floats as bits. Every slot
    /// the trace reads must be here; others are ignored.
    pub slots: BTreeMap<u32, u64>,
    /// Globals by index, raw like slots. Every global the trace reads must be here.
    pub globals: BTreeMap<u32, u64>,
    /// Memory 0: a whole number of pages.
    pub memory: Vec<u8>,
    /// Memory 0's declared maximum in pages (the trace does not know it); `memory.grow`
    /// fails beyond it, and beyond [`MAX_PAGES`] in any case.
    pub max_pages: Option<u32>,
}

/// What running a trace once does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub end: Ended,
    /// Memory 0 after the trace's effects (up to the trap, if it trapped).
    pub memory: Vec<u8>,
    /// The entry's globals with the trace's writes applied.
    pub globals: BTreeMap<u32, u64>,
    /// Memory 0's size at the end, in pages.
    pub memory_pages: u32,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Left through an exit (a failed guard's, or the trace's end): the exit's id, the pc
    /// to resume at, the inlined calls it leaves inside and the slots its state writes,
    /// raw.
    Exit {
        id: u32,
        pc: u32,
        calls: Vec<crate::trace::InlinedCall>,
        slots: BTreeMap<u32, u64>,
    },
    /// Reached the end and loops: the slots the loop writes, raw (other slots keep their
    /// entry values).
    Loop { slots: BTreeMap<u32, u64> },
    /// Trapped.
    Trap(TrapKind),
}

/// The traps a trace can raise: its operators' and memory's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrapKind {
    IntegerDivideByZero,
    IntegerOverflow,
    InvalidConversionToInteger,
    MemoryOutOfBounds,
}

impl From<NumTrap> for TrapKind {
    fn from(trap: NumTrap) -> TrapKind {
        match trap {
            NumTrap::IntegerDivideByZero => TrapKind::IntegerDivideByZero,
            NumTrap::IntegerOverflow => TrapKind::IntegerOverflow,
            NumTrap::InvalidConversionToInteger => TrapKind::InvalidConversionToInteger,
        }
    }
}

impl fmt::Display for TrapKind {
    /// The message the spec's reference interpreter uses, as kiln's interpreter does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrapKind::IntegerDivideByZero => "integer divide by zero",
            TrapKind::IntegerOverflow => "integer overflow",
            TrapKind::InvalidConversionToInteger => "invalid conversion to integer",
            TrapKind::MemoryOutOfBounds => "out of bounds memory access",
        })
    }
}

/// Why a trace could not be run: the trace or the entry state is malformed. (A trap is
/// not an error: it is an [`Outcome`].)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// The trace breaks a rule of `validate`.
    Invalid(ValidateError),
    /// The trace reads a slot the entry state does not have.
    MissingSlot(u32),
    /// The trace reads a global the entry state does not have.
    MissingGlobal(u32),
    /// An entry slot or global has bits its input's type cannot hold (a 32-bit value with
    /// its upper half set).
    BadEntryValue { source: Source, ty: Type, bits: u64 },
    /// The entry memory is not a whole number of pages, or has more than its maximum.
    BadMemorySize { bytes: usize, max_pages: u32 },
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::Invalid(e) => write!(f, "invalid trace: {e}"),
            EvalError::MissingSlot(s) => write!(f, "the trace reads slot {s}, which the entry state lacks"),
            EvalError::MissingGlobal(g) => write!(f, "the trace reads global {g}, which the entry state lacks"),
            EvalError::BadEntryValue { source, ty, bits } => {
                let what = match source {
                    Source::Slot(s) => format!("slot {s}"),
                    Source::Global(g) => format!("global {g}"),
                };
                write!(f, "entry {what} holds {bits:#x}, which is not a raw {ty}")
            }
            EvalError::BadMemorySize { bytes, max_pages } => write!(
                f,
                "entry memory of {bytes} bytes is not a whole number of {PAGE_SIZE}-byte pages, at most {max_pages}"
            ),
        }
    }
}

impl std::error::Error for EvalError {}

/// Runs `trace` once from `entry`. See the module documentation for the semantics.
pub fn eval(trace: &Trace, entry: EntryState) -> Result<Outcome, EvalError> {
    validate(trace).map_err(EvalError::Invalid)?;
    let EntryState {
        slots,
        mut globals,
        mut memory,
        max_pages,
    } = entry;
    let max_pages = max_pages.unwrap_or(MAX_PAGES).min(MAX_PAGES);
    if memory.len() % PAGE_SIZE != 0 || memory.len() / PAGE_SIZE > max_pages as usize {
        return Err(EvalError::BadMemorySize {
            bytes: memory.len(),
            max_pages,
        });
    }

    let mut values: HashMap<ValueId, u64> =
        HashMap::with_capacity(trace.inputs.len() + trace.body.len());
    for input in &trace.inputs {
        let bits = match input.source {
            Source::Slot(s) => *slots.get(&s).ok_or(EvalError::MissingSlot(s))?,
            Source::Global(g) => *globals.get(&g).ok_or(EvalError::MissingGlobal(g))?,
        };
        if !input.ty.holds(bits) {
            return Err(EvalError::BadEntryValue {
                source: input.source,
                ty: input.ty,
                bits,
            });
        }
        values.insert(input.value, bits);
    }

    // `validate` has checked that every operand names a value defined before it.
    let get = |values: &HashMap<ValueId, u64>, operand: Operand| match operand {
        Operand::Value(v) => values[&v],
        Operand::Const(c) => c,
    };
    let state = |values: &HashMap<ValueId, u64>, state: &[(u32, Operand)]| -> BTreeMap<u32, u64> {
        state
            .iter()
            .map(|&(slot, operand)| (slot, get(values, operand)))
            .collect()
    };
    let exit = |values: &HashMap<ValueId, u64>, exit: &Exit| Ended::Exit {
        id: exit.id,
        pc: exit.pc,
        calls: exit.calls.clone(),
        slots: state(values, &exit.state),
    };

    let mut ended = None;
    for inst in &trace.body {
        let result = match inst {
            Inst::Num { op, args, .. } => {
                let args: Vec<u64> = args.iter().map(|&a| get(&values, a)).collect();
                apply(*op, &args)
            }
            Inst::Select { cond, a, b, .. } => Ok(if get(&values, *cond) != 0 {
                get(&values, *a)
            } else {
                get(&values, *b)
            }),
            Inst::Load {
                kind, offset, addr, ..
            } => {
                let info = kind.info();
                match range(&memory, get(&values, *addr), *offset, info.bytes) {
                    Some(range) => {
                        let mut le = [0u8; 8];
                        le[..range.len()].copy_from_slice(&memory[range]);
                        Ok(extend(
                            u64::from_le_bytes(le),
                            info.bytes,
                            info.signed,
                            info.result,
                        ))
                    }
                    None => Err(TrapKind::MemoryOutOfBounds),
                }
            }
            Inst::Store {
                kind,
                offset,
                addr,
                value,
            } => {
                let bytes = kind.bytes();
                match range(&memory, get(&values, *addr), *offset, bytes) {
                    Some(range) => {
                        let le = get(&values, *value).to_le_bytes();
                        memory[range].copy_from_slice(&le[..bytes as usize]);
                        Ok(0)
                    }
                    None => Err(TrapKind::MemoryOutOfBounds),
                }
            }
            Inst::GlobalSet { global, value } => {
                globals.insert(*global, get(&values, *value));
                Ok(0)
            }
            Inst::MemorySize { .. } => Ok((memory.len() / PAGE_SIZE) as u64),
            Inst::MemoryGrow { delta, .. } => {
                Ok(grow(&mut memory, get(&values, *delta) as u32, max_pages))
            }
            Inst::Guard {
                cond,
                expect,
                exit: e,
            } => {
                if (get(&values, *cond) != 0) != *expect {
                    ended = Some(exit(&values, e));
                    break;
                }
                Ok(0)
            }
        };
        match result {
            Ok(bits) => {
                if let Some((dst, _)) = inst.def() {
                    values.insert(dst, bits);
                }
            }
            Err(trap) => {
                ended = Some(Ended::Trap(trap));
                break;
            }
        }
    }
    let end = ended.unwrap_or_else(|| match &trace.end {
        End::Loop { state: s } => Ended::Loop {
            slots: state(&values, s),
        },
        End::Exit(e) => exit(&values, e),
    });
    let memory_pages = (memory.len() / PAGE_SIZE) as u32;
    Ok(Outcome {
        end,
        memory,
        globals,
        memory_pages,
    })
}

/// The bytes `[addr + offset, addr + offset + bytes)` of memory, if all are in bounds.
/// The address is the i32 operand read as unsigned; the sum cannot overflow in u64.
fn range(memory: &[u8], addr: u64, offset: u32, bytes: u32) -> Option<std::ops::Range<usize>> {
    let start = u64::from(addr as u32) + u64::from(offset);
    let end = start + u64::from(bytes);
    if end <= memory.len() as u64 {
        Some(start as usize..end as usize)
    } else {
        None
    }
}

/// A loaded `bytes`-byte little-endian value extended to `ty`, raw.
fn extend(raw: u64, bytes: u32, signed: bool, ty: Type) -> u64 {
    let bits = bytes * 8;
    let extended = if signed && bits < 64 {
        let shift = 64 - bits;
        (((raw << shift) as i64) >> shift) as u64
    } else {
        raw
    };
    if ty.bits() == 32 {
        extended & 0xffff_ffff
    } else {
        extended
    }
}

/// `memory.grow`: the old size in pages, or -1 (as a raw i32) if the memory cannot grow
/// by `delta` pages within `max_pages`, or the host cannot allocate it (which wasm allows).
fn grow(memory: &mut Vec<u8>, delta: u32, max_pages: u32) -> u64 {
    const FAILED: u64 = u32::MAX as u64;
    let old = (memory.len() / PAGE_SIZE) as u32;
    match old.checked_add(delta) {
        Some(new) if new <= max_pages => {
            let new_len = new as usize * PAGE_SIZE;
            if memory.try_reserve_exact(new_len - memory.len()).is_err() {
                return FAILED;
            }
            memory.resize(new_len, 0);
            u64::from(old)
        }
        _ => FAILED,
    }
}

/// Applies a numeric operator to raw operands (as many as it takes; 32-bit ones
/// zero-extended), giving a raw result or the trap it raises. The meaning of `op` for the
/// evaluator, and for anyone folding constants.
pub fn apply(op: NumOp, args: &[u64]) -> Result<u64, TrapKind> {
    use NumOp::*;
    let a = args.first().copied().unwrap_or(0);
    let b = args.get(1).copied().unwrap_or(0);
    let (a32, b32) = (a as u32, b as u32);
    let (fa, fb) = (f32::from_bits(a32), f32::from_bits(b32));
    let (da, db) = (f64::from_bits(a), f64::from_bits(b));
    let i32_ = |x: u32| u64::from(x);
    let s32 = |x: i32| u64::from(x as u32);
    let bool_ = |x: bool| u64::from(x);
    let f32_ = |x: f32| u64::from(x.to_bits());
    let f64_ = |x: f64| x.to_bits();
    Ok(match op {
        I32Add => i32_(a32.wrapping_add(b32)),
        I32Sub => i32_(a32.wrapping_sub(b32)),
        I32Mul => i32_(a32.wrapping_mul(b32)),
        I32DivS => s32(num::i32_div_s(a32 as i32, b32 as i32)?),
        I32DivU => i32_(num::i32_div_u(a32, b32)?),
        I32RemS => s32(num::i32_rem_s(a32 as i32, b32 as i32)?),
        I32RemU => i32_(num::i32_rem_u(a32, b32)?),
        I32And => i32_(a32 & b32),
        I32Or => i32_(a32 | b32),
        I32Xor => i32_(a32 ^ b32),
        I32Shl => i32_(a32.wrapping_shl(b32)),
        I32ShrS => s32((a32 as i32).wrapping_shr(b32)),
        I32ShrU => i32_(a32.wrapping_shr(b32)),
        I32Rotl => i32_(a32.rotate_left(b32 % 32)),
        I32Rotr => i32_(a32.rotate_right(b32 % 32)),
        I32Eq => bool_(a32 == b32),
        I32Ne => bool_(a32 != b32),
        I32LtS => bool_((a32 as i32) < b32 as i32),
        I32LtU => bool_(a32 < b32),
        I32GtS => bool_(a32 as i32 > b32 as i32),
        I32GtU => bool_(a32 > b32),
        I32LeS => bool_(a32 as i32 <= b32 as i32),
        I32LeU => bool_(a32 <= b32),
        I32GeS => bool_(a32 as i32 >= b32 as i32),
        I32GeU => bool_(a32 >= b32),
        I32Eqz => bool_(a32 == 0),
        I32Clz => i32_(a32.leading_zeros()),
        I32Ctz => i32_(a32.trailing_zeros()),
        I32Popcnt => i32_(a32.count_ones()),
        I32Extend8S => s32(a32 as i8 as i32),
        I32Extend16S => s32(a32 as i16 as i32),

        I64Add => a.wrapping_add(b),
        I64Sub => a.wrapping_sub(b),
        I64Mul => a.wrapping_mul(b),
        I64DivS => num::i64_div_s(a as i64, b as i64)? as u64,
        I64DivU => num::i64_div_u(a, b)?,
        I64RemS => num::i64_rem_s(a as i64, b as i64)? as u64,
        I64RemU => num::i64_rem_u(a, b)?,
        I64And => a & b,
        I64Or => a | b,
        I64Xor => a ^ b,
        I64Shl => a.wrapping_shl(b as u32),
        I64ShrS => (a as i64).wrapping_shr(b as u32) as u64,
        I64ShrU => a.wrapping_shr(b as u32),
        I64Rotl => a.rotate_left((b % 64) as u32),
        I64Rotr => a.rotate_right((b % 64) as u32),
        I64Eq => bool_(a == b),
        I64Ne => bool_(a != b),
        I64LtS => bool_((a as i64) < b as i64),
        I64LtU => bool_(a < b),
        I64GtS => bool_(a as i64 > b as i64),
        I64GtU => bool_(a > b),
        I64LeS => bool_(a as i64 <= b as i64),
        I64LeU => bool_(a <= b),
        I64GeS => bool_(a as i64 >= b as i64),
        I64GeU => bool_(a >= b),
        I64Eqz => bool_(a == 0),
        I64Clz => u64::from(a.leading_zeros()),
        I64Ctz => u64::from(a.trailing_zeros()),
        I64Popcnt => u64::from(a.count_ones()),
        I64Extend8S => a as i8 as i64 as u64,
        I64Extend16S => a as i16 as i64 as u64,
        I64Extend32S => a as i32 as i64 as u64,

        F32Add => f32_(fa + fb),
        F32Sub => f32_(fa - fb),
        F32Mul => f32_(fa * fb),
        F32Div => f32_(fa / fb),
        F32Min => f32_(num::f32_min(fa, fb)),
        F32Max => f32_(num::f32_max(fa, fb)),
        F32Copysign => i32_((a32 & 0x7fff_ffff) | (b32 & 0x8000_0000)),
        F32Eq => bool_(fa == fb),
        F32Ne => bool_(fa != fb),
        F32Lt => bool_(fa < fb),
        F32Gt => bool_(fa > fb),
        F32Le => bool_(fa <= fb),
        F32Ge => bool_(fa >= fb),
        F32Abs => i32_(a32 & 0x7fff_ffff),
        F32Neg => i32_(a32 ^ 0x8000_0000),
        F32Ceil => f32_(num::f32_ceil(fa)),
        F32Floor => f32_(num::f32_floor(fa)),
        F32Trunc => f32_(num::f32_trunc(fa)),
        F32Nearest => f32_(num::f32_nearest(fa)),
        F32Sqrt => f32_(fa.sqrt()),

        F64Add => f64_(da + db),
        F64Sub => f64_(da - db),
        F64Mul => f64_(da * db),
        F64Div => f64_(da / db),
        F64Min => f64_(num::f64_min(da, db)),
        F64Max => f64_(num::f64_max(da, db)),
        F64Copysign => (a & !(1 << 63)) | (b & (1 << 63)),
        F64Eq => bool_(da == db),
        F64Ne => bool_(da != db),
        F64Lt => bool_(da < db),
        F64Gt => bool_(da > db),
        F64Le => bool_(da <= db),
        F64Ge => bool_(da >= db),
        F64Abs => a & !(1 << 63),
        F64Neg => a ^ (1 << 63),
        F64Ceil => f64_(num::f64_ceil(da)),
        F64Floor => f64_(num::f64_floor(da)),
        F64Trunc => f64_(num::f64_trunc(da)),
        F64Nearest => f64_(num::f64_nearest(da)),
        F64Sqrt => f64_(da.sqrt()),

        I32WrapI64 => i32_(a as u32),
        I64ExtendI32S => a32 as i32 as i64 as u64,
        I64ExtendI32U => u64::from(a32),
        I32TruncF32S => s32(num::i32_trunc_f32_s(fa)?),
        I32TruncF32U => i32_(num::i32_trunc_f32_u(fa)?),
        I32TruncF64S => s32(num::i32_trunc_f64_s(da)?),
        I32TruncF64U => i32_(num::i32_trunc_f64_u(da)?),
        I64TruncF32S => num::i64_trunc_f32_s(fa)? as u64,
        I64TruncF32U => num::i64_trunc_f32_u(fa)?,
        I64TruncF64S => num::i64_trunc_f64_s(da)? as u64,
        I64TruncF64U => num::i64_trunc_f64_u(da)?,
        // Rust's float-to-int `as` saturates and maps NaN to 0: exactly wasm's
        // non-trapping conversions.
        I32TruncSatF32S => s32(fa as i32),
        I32TruncSatF32U => i32_(fa as u32),
        I32TruncSatF64S => s32(da as i32),
        I32TruncSatF64U => i32_(da as u32),
        I64TruncSatF32S => fa as i64 as u64,
        I64TruncSatF32U => fa as u64,
        I64TruncSatF64S => da as i64 as u64,
        I64TruncSatF64U => da as u64,
        // Rust's int-to-float and float-to-float `as` round to nearest, ties to even.
        F32ConvertI32S => f32_(a32 as i32 as f32),
        F32ConvertI32U => f32_(a32 as f32),
        F32ConvertI64S => f32_(a as i64 as f32),
        F32ConvertI64U => f32_(a as f32),
        F32DemoteF64 => f32_(da as f32),
        F64ConvertI32S => f64_(f64::from(a32 as i32)),
        F64ConvertI32U => f64_(f64::from(a32)),
        F64ConvertI64S => f64_(a as i64 as f64),
        F64ConvertI64U => f64_(a as f64),
        F64PromoteF32 => f64_(f64::from(fa)),
        I32ReinterpretF32 | F32ReinterpretI32 => i32_(a32),
        I64ReinterpretF64 | F64ReinterpretI64 => a,
    })
}
