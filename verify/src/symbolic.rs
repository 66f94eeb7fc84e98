//! Symbolic execution of one trace over z3 bit-vectors: every way the trace can end (each
//! guard's exit, each possible trap, the end), with the condition under which it ends
//! there and the machine state (memory, size, globals) at that moment.
//!
//! Values are bit-vectors of their type's width (floats as their bits). Slots and globals
//! are raw 64-bit, as the interpreter keeps them. Memory is the entry memory (an
//! uninterpreted array from 32-bit addresses to bytes) followed by a log of events (byte
//! writes, growths); a byte is read by walking the log, so every read of the entry memory
//! goes through one place and the counterexample builder knows every address that
//! matters.

use std::collections::{BTreeMap, HashMap};

use ir::eval::{TrapKind, PAGE_SIZE};
use ir::{End, Exit, Inst, NumOp, Operand, Source, Trace, Type, ValueId};
use z3::ast::RoundingMode;
use z3::ast::{Array, Bool, Float, BV};
use z3::{FuncDecl, Sort};

pub(crate) fn bv(c: u64, width: u32) -> BV {
    BV::from_u64(c, width)
}

pub(crate) fn zext64(x: &BV) -> BV {
    let w = x.get_size();
    if w == 64 {
        x.clone()
    } else {
        x.zero_ext(64 - w)
    }
}

fn flag(b: &Bool) -> BV {
    b.ite(&bv(1, 32), &bv(0, 32))
}

/// The entry state both traces start from, shared by them.
pub(crate) struct Entry {
    /// Raw 64-bit slot values, for every slot either trace reads or writes.
    pub slots: BTreeMap<u32, BV>,
    /// Raw 64-bit global values, for every global either trace reads or writes.
    pub globals: BTreeMap<u32, BV>,
    /// The entry memory: 32-bit address → byte.
    pub memory: Array,
    /// Memory size in pages (32 bits).
    pub pages: BV,
    /// The declared maximum (32 bits), which `memory.grow` cannot pass.
    pub max_pages: BV,
    /// What every entry state satisfies (the holds of the input types, the page bounds).
    pub constraints: Vec<Bool>,
    /// Every read of the entry memory: (address, byte read).
    pub base_reads: Vec<(BV, BV)>,
}

impl Entry {
    pub fn new(traces: &[&Trace]) -> Entry {
        let mut slots = BTreeMap::new();
        let mut globals = BTreeMap::new();
        let mut constraints = Vec::new();
        for trace in traces {
            for input in &trace.inputs {
                let raw = match input.source {
                    Source::Slot(s) => slots
                        .entry(s)
                        .or_insert_with(|| BV::new_const(format!("slot{s}"), 64))
                        .clone(),
                    Source::Global(g) => globals
                        .entry(g)
                        .or_insert_with(|| BV::new_const(format!("global{g}"), 64))
                        .clone(),
                };
                if input.ty.bits() == 32 {
                    constraints.push(raw.extract(63, 32).eq(bv(0, 32)));
                }
            }
            let exits = trace.exits().map(|e| &e.state[..]);
            let loop_state = match &trace.end {
                End::Loop { state } => Some(&state[..]),
                End::Exit(_) => None,
            };
            for state in exits.chain(loop_state) {
                for &(s, _) in state {
                    slots
                        .entry(s)
                        .or_insert_with(|| BV::new_const(format!("slot{s}"), 64));
                }
            }
            for inst in &trace.body {
                if let Inst::GlobalSet { global, .. } = inst {
                    globals
                        .entry(*global)
                        .or_insert_with(|| BV::new_const(format!("global{global}"), 64));
                }
            }
        }
        let pages = BV::new_const("pages", 32);
        let max_pages = BV::new_const("max_pages", 32);
        let limit = bv(u64::from(ir::eval::MAX_PAGES), 32);
        constraints.push(pages.bvule(&max_pages));
        constraints.push(max_pages.bvule(&limit));
        let memory = Array::new_const("memory", &Sort::bitvector(32), &Sort::bitvector(8));
        Entry {
            slots,
            globals,
            memory,
            pages,
            max_pages,
            constraints,
            base_reads: Vec::new(),
        }
    }

    fn read_base(&mut self, addr: &BV) -> BV {
        let byte = self
            .memory
            .select(addr)
            .as_bv()
            .expect("memory holds bytes");
        self.base_reads.push((addr.clone(), byte.clone()));
        byte
    }
}

/// Float operators, uninterpreted: one function symbol per operator over bit patterns.
/// Also the floats of bit patterns used in z3's floating-point theory, one per pattern
/// (shared by both traces, so the same computation gives the same term), with the side
/// constraints tying them to their bits.
#[derive(Default)]
pub(crate) struct Ufs {
    decls: HashMap<String, FuncDecl>,
    floats: HashMap<BV, Float>,
    /// To assert with the entry constraints.
    pub side: Vec<Bool>,
}

impl Ufs {
    /// The float whose bits `a` holds: a fresh constant tied to the bits by a side
    /// constraint (`to_ieee_bv` is one-to-one off NaNs, and all NaN bit patterns are the
    /// theory's one NaN). Every bit pattern has exactly one such float, so the constraint
    /// excludes no entry state.
    fn float(&mut self, a: &BV) -> Float {
        if let Some(f) = self.floats.get(a) {
            return f.clone();
        }
        let f = if a.get_size() == 32 {
            Float::fresh_const("f32", 8, 24)
        } else {
            Float::fresh_const("f64", 11, 53)
        };
        self.side
            .push(is_nan(a).ite(&f.is_nan(), &f.to_ieee_bv().eq(a)));
        self.floats.insert(a.clone(), f.clone());
        f
    }

    pub fn used(&self) -> bool {
        !self.decls.is_empty()
    }

    fn apply(&mut self, name: &str, args: &[&BV], result: &Sort) -> z3::ast::Dynamic {
        let sorts: Vec<Sort> = args.iter().map(|a| Sort::bitvector(a.get_size())).collect();
        let decl = self.decls.entry(name.to_string()).or_insert_with(|| {
            let refs: Vec<&Sort> = sorts.iter().collect();
            FuncDecl::new(format!("uf.{name}"), &refs, result)
        });
        let dyn_args: Vec<&dyn z3::ast::Ast> =
            args.iter().map(|a| *a as &dyn z3::ast::Ast).collect();
        decl.apply(&dyn_args)
    }

    fn bv(&mut self, name: &str, args: &[&BV], width: u32) -> BV {
        self.apply(name, args, &Sort::bitvector(width))
            .as_bv()
            .expect("bit-vector result")
    }
}

/// One event of the memory log.
#[derive(Clone)]
enum MemEvent {
    /// A byte written at a 32-bit address.
    Store { addr: BV, byte: BV },
    /// A `memory.grow` that, if `ok`, made the bytes from `old_bytes` (64-bit) on zero.
    Grow { old_bytes: BV, ok: Bool },
}

/// The machine state a trace has changed so far.
#[derive(Clone)]
pub(crate) struct Machine {
    events: Vec<MemEvent>,
    /// Current size in pages (32 bits).
    pub pages: BV,
    /// Every global of the entry, raw, with the trace's writes.
    pub globals: BTreeMap<u32, BV>,
}

impl Machine {
    /// The byte at 32-bit address `addr` (in bounds or not: the caller checks).
    pub fn read_byte(&self, entry: &mut Entry, addr: &BV) -> BV {
        let mut byte = entry.read_base(addr);
        for event in &self.events {
            byte = match event {
                MemEvent::Store { addr: a, byte: b } => addr.eq(a).ite(b, &byte),
                MemEvent::Grow { old_bytes, ok } => {
                    let fresh = Bool::and(&[ok.clone(), zext64(addr).bvuge(old_bytes)]);
                    fresh.ite(&bv(0, 8), &byte)
                }
            };
        }
        byte
    }

    /// Memory size in bytes, 64 bits.
    pub fn size_bytes(&self) -> BV {
        zext64(&self.pages).bvmul(bv(PAGE_SIZE as u64, 64))
    }
}

/// How a way out of the trace leaves.
#[derive(Clone)]
pub(crate) enum Leave {
    /// Through an exit: its id, its pc, the calls it leaves inside and the raw 64-bit
    /// slot values it writes.
    Exit {
        id: u32,
        pc: u32,
        calls: Vec<ir::InlinedCall>,
        slots: BTreeMap<u32, BV>,
    },
    /// Looping back: the raw slot values written.
    Loop {
        slots: BTreeMap<u32, BV>,
    },
    Trap(TrapKind),
}

/// One way out of the trace: taken exactly when `cond` holds (the conditions of a trace's
/// terminals are disjoint and cover every entry state).
pub(crate) struct Terminal {
    pub cond: Bool,
    pub leave: Leave,
    pub machine: Machine,
}

struct Run<'a> {
    entry: &'a mut Entry,
    ufs: &'a mut Ufs,
    values: HashMap<ValueId, BV>,
    machine: Machine,
    /// The path condition: every earlier trap and guard let execution continue.
    path: Bool,
    terminals: Vec<Terminal>,
}

/// Every way `trace` can end, from `entry`. The trace must be valid.
pub(crate) fn run(trace: &Trace, entry: &mut Entry, ufs: &mut Ufs) -> Vec<Terminal> {
    let mut values = HashMap::new();
    for input in &trace.inputs {
        let raw = match input.source {
            Source::Slot(s) => entry.slots[&s].clone(),
            Source::Global(g) => entry.globals[&g].clone(),
        };
        let v = if input.ty.bits() == 32 {
            raw.extract(31, 0)
        } else {
            raw
        };
        values.insert(input.value, v);
    }
    let machine = Machine {
        events: Vec::new(),
        pages: entry.pages.clone(),
        globals: entry.globals.clone(),
    };
    let mut run = Run {
        entry,
        ufs,
        values,
        machine,
        path: Bool::from_bool(true),
        terminals: Vec::new(),
    };
    for inst in &trace.body {
        run.inst(inst);
    }
    let leave = match &trace.end {
        End::Loop { state } => Leave::Loop {
            slots: run.state(state),
        },
        End::Exit(exit) => run.exit(exit),
    };
    let cond = run.path.clone();
    run.leave(cond, leave);
    run.terminals
}

impl Run<'_> {
    fn operand(&self, operand: Operand, ty: Type) -> BV {
        match operand {
            Operand::Value(v) => self.values[&v].clone(),
            Operand::Const(c) => bv(c, ty.bits()),
        }
    }

    fn raw(&self, operand: Operand) -> BV {
        match operand {
            Operand::Value(v) => zext64(&self.values[&v]),
            Operand::Const(c) => bv(c, 64),
        }
    }

    fn state(&self, state: &[(u32, Operand)]) -> BTreeMap<u32, BV> {
        state.iter().map(|&(s, o)| (s, self.raw(o))).collect()
    }

    fn exit(&self, exit: &Exit) -> Leave {
        Leave::Exit {
            id: exit.id,
            pc: exit.pc,
            calls: exit.calls.clone(),
            slots: self.state(&exit.state),
        }
    }

    /// Leaves when `cond` holds (on the current path); continues otherwise.
    fn leave(&mut self, cond: Bool, leave: Leave) {
        self.terminals.push(Terminal {
            cond: Bool::and(&[self.path.clone(), cond.clone()]),
            leave,
            machine: self.machine.clone(),
        });
        self.path = Bool::and(&[self.path.clone(), cond.not()]);
    }

    /// The 32-bit address of an access of `bytes` bytes at `addr + offset`, after
    /// leaving with an out-of-bounds trap where it does not fit.
    fn access(&mut self, addr: Operand, offset: u32, bytes: u32) -> BV {
        let ea = zext64(&self.operand(addr, Type::I32)).bvadd(bv(u64::from(offset), 64));
        let end = ea.bvadd(bv(u64::from(bytes), 64));
        let oob = end.bvugt(self.machine.size_bytes());
        self.leave(oob, Leave::Trap(TrapKind::MemoryOutOfBounds));
        // In bounds, the address is below 2^32.
        ea.extract(31, 0)
    }

    fn inst(&mut self, inst: &Inst) {
        let result = match inst {
            Inst::Num { op, args, .. } => {
                let params = op.params();
                let args: Vec<BV> = args
                    .iter()
                    .zip(params)
                    .map(|(&a, &ty)| self.operand(a, ty))
                    .collect();
                let (value, traps) = num(self.ufs, *op, &args);
                for (cond, kind) in traps {
                    self.leave(cond, Leave::Trap(kind));
                }
                Some(value)
            }
            Inst::Select { ty, cond, a, b, .. } => {
                let c = self.operand(*cond, Type::I32);
                let a = self.operand(*a, *ty);
                let b = self.operand(*b, *ty);
                Some(c.eq(bv(0, 32)).not().ite(&a, &b))
            }
            Inst::Load {
                kind, offset, addr, ..
            } => {
                let info = kind.info();
                let at = self.access(*addr, *offset, info.bytes);
                let mut value: Option<BV> = None;
                for i in 0..info.bytes {
                    let a = at.bvadd(bv(u64::from(i), 32));
                    let byte = self.machine.read_byte(self.entry, &a);
                    // Little-endian: later bytes are more significant.
                    value = Some(match value {
                        None => byte,
                        Some(low) => byte.concat(&low),
                    });
                }
                let value = value.expect("a load reads at least one byte");
                let width = info.result.bits();
                let have = info.bytes * 8;
                Some(if have == width {
                    value
                } else if info.signed {
                    value.sign_ext(width - have)
                } else {
                    value.zero_ext(width - have)
                })
            }
            Inst::Store {
                kind,
                offset,
                addr,
                value,
            } => {
                let at = self.access(*addr, *offset, kind.bytes());
                let v = self.operand(*value, kind.operand());
                for i in 0..kind.bytes() {
                    self.machine.events.push(MemEvent::Store {
                        addr: at.bvadd(bv(u64::from(i), 32)),
                        byte: v.extract(8 * i + 7, 8 * i),
                    });
                }
                None
            }
            Inst::GlobalSet { global, value } => {
                let v = self.raw(*value);
                self.machine.globals.insert(*global, v);
                None
            }
            Inst::MemorySize { .. } => Some(self.machine.pages.clone()),
            Inst::MemoryGrow { delta, .. } => {
                let delta = self.operand(*delta, Type::I32);
                let old = self.machine.pages.clone();
                let new = zext64(&old).bvadd(zext64(&delta));
                let ok = new.bvule(zext64(&self.entry.max_pages));
                let old_bytes = self.machine.size_bytes();
                self.machine.events.push(MemEvent::Grow {
                    old_bytes,
                    ok: ok.clone(),
                });
                self.machine.pages = ok.ite(&new.extract(31, 0), &old);
                Some(ok.ite(&old, &bv(u64::from(u32::MAX), 32)))
            }
            Inst::Guard { cond, expect, exit } => {
                let c = self.operand(*cond, Type::I32).eq(bv(0, 32)).not();
                let fail = if *expect { c.not() } else { c };
                let leave = self.exit(exit);
                self.leave(fail, leave);
                None
            }
        };
        if let (Some(value), Some((dst, _))) = (result, inst.def()) {
            self.values.insert(dst, value);
        }
    }
}

fn clz(a: &BV) -> BV {
    let w = a.get_size();
    let mut r = bv(u64::from(w), w);
    for i in 0..w {
        // Bit i set and all above clear: w - 1 - i leading zeros. Scanning up, the last
        // (highest) set bit wins.
        r = a
            .extract(i, i)
            .eq(bv(1, 1))
            .ite(&bv(u64::from(w - 1 - i), w), &r);
    }
    r
}

fn ctz(a: &BV) -> BV {
    let w = a.get_size();
    let mut r = bv(u64::from(w), w);
    for i in (0..w).rev() {
        r = a.extract(i, i).eq(bv(1, 1)).ite(&bv(u64::from(i), w), &r);
    }
    r
}

fn popcnt(a: &BV) -> BV {
    let w = a.get_size();
    let mut r = bv(0, w);
    for i in 0..w {
        r = r.bvadd(a.extract(i, i).zero_ext(w - 1));
    }
    r
}

fn is_nan(a: &BV) -> Bool {
    let (exp_hi, exp_lo, mant_hi) = if a.get_size() == 32 {
        (30, 23, 22)
    } else {
        (62, 52, 51)
    };
    let exp_ones = (1u64 << (exp_hi - exp_lo + 1)) - 1;
    Bool::and(&[
        a.extract(exp_hi, exp_lo)
            .eq(bv(exp_ones, exp_hi - exp_lo + 1)),
        a.extract(mant_hi, 0).eq(bv(0, mant_hi + 1)).not(),
    ])
}

/// A numeric operator's result and its traps, in the order wasm checks them.
fn num(ufs: &mut Ufs, op: NumOp, args: &[BV]) -> (BV, Vec<(Bool, TrapKind)>) {
    use NumOp::*;
    let a = &args[0];
    let b = args.get(1);
    let b = || b.expect("binary operator");
    let w = a.get_size();
    let mask = || b().bvand(bv(u64::from(w - 1), w));
    let zero = || bv(0, w);
    let min = || bv(1u64 << (w - 1), w);
    let ones = || bv(u64::MAX >> (64 - w), w);
    let div_zero = || (b().eq(zero()), TrapKind::IntegerDivideByZero);
    let sign_bit = if w == 32 { 0x8000_0000u64 } else { 1 << 63 };
    let value = match op {
        I32Add | I64Add => a.bvadd(b()),
        I32Sub | I64Sub => a.bvsub(b()),
        I32Mul | I64Mul => a.bvmul(b()),
        I32DivS | I64DivS => {
            let overflow = Bool::and(&[a.eq(min()), b().eq(ones())]);
            return (
                a.bvsdiv(b()),
                vec![div_zero(), (overflow, TrapKind::IntegerOverflow)],
            );
        }
        I32DivU | I64DivU => return (a.bvudiv(b()), vec![div_zero()]),
        I32RemS | I64RemS => return (a.bvsrem(b()), vec![div_zero()]),
        I32RemU | I64RemU => return (a.bvurem(b()), vec![div_zero()]),
        I32And | I64And => a.bvand(b()),
        I32Or | I64Or => a.bvor(b()),
        I32Xor | I64Xor => a.bvxor(b()),
        I32Shl | I64Shl => a.bvshl(mask()),
        I32ShrS | I64ShrS => a.bvashr(mask()),
        I32ShrU | I64ShrU => a.bvlshr(mask()),
        I32Rotl | I64Rotl => a.bvrotl(mask()),
        I32Rotr | I64Rotr => a.bvrotr(mask()),
        I32Eq | I64Eq => flag(&a.eq(b())),
        I32Ne | I64Ne => flag(&a.eq(b()).not()),
        I32LtS | I64LtS => flag(&a.bvslt(b())),
        I32LtU | I64LtU => flag(&a.bvult(b())),
        I32GtS | I64GtS => flag(&a.bvsgt(b())),
        I32GtU | I64GtU => flag(&a.bvugt(b())),
        I32LeS | I64LeS => flag(&a.bvsle(b())),
        I32LeU | I64LeU => flag(&a.bvule(b())),
        I32GeS | I64GeS => flag(&a.bvsge(b())),
        I32GeU | I64GeU => flag(&a.bvuge(b())),
        I32Eqz | I64Eqz => flag(&a.eq(zero())),
        I32Clz | I64Clz => clz(a),
        I32Ctz | I64Ctz => ctz(a),
        I32Popcnt | I64Popcnt => popcnt(a),
        I32Extend8S | I64Extend8S => a.extract(7, 0).sign_ext(w - 8),
        I32Extend16S | I64Extend16S => a.extract(15, 0).sign_ext(w - 16),
        I64Extend32S => a.extract(31, 0).sign_ext(32),
        I32WrapI64 => a.extract(31, 0),
        I64ExtendI32S => a.sign_ext(32),
        I64ExtendI32U => a.zero_ext(32),

        // Floats' bit operations, exactly.
        F32Copysign | F64Copysign => a
            .bvand(bv(!sign_bit & (u64::MAX >> (64 - w)), w))
            .bvor(b().bvand(bv(sign_bit, w))),
        F32Abs | F64Abs => a.bvand(bv(!sign_bit & (u64::MAX >> (64 - w)), w)),
        F32Neg | F64Neg => a.bvxor(bv(sign_bit, w)),
        I32ReinterpretF32 | I64ReinterpretF64 | F32ReinterpretI32 | F64ReinterpretI64 => a.clone(),

        // Float comparisons, exactly, in z3's floating-point theory (IEEE: a NaN is
        // unordered, -0 equals +0). No NaN bits come out of them.
        F32Eq | F64Eq => flag(&ufs.float(a).eq_fpa(ufs.float(b()))),
        F32Ne | F64Ne => flag(&ufs.float(a).eq_fpa(ufs.float(b())).not()),
        F32Lt | F64Lt => flag(&ufs.float(a).lt(ufs.float(b()))),
        F32Gt | F64Gt => flag(&ufs.float(a).gt(ufs.float(b()))),
        F32Le | F64Le => flag(&ufs.float(a).le(ufs.float(b()))),
        F32Ge | F64Ge => flag(&ufs.float(a).ge(ufs.float(b()))),

        // Float-to-int truncation, exactly: NaN traps (or gives 0), values whose
        // truncation is outside the integer type trap (or saturate), as `num.rs` says.
        I32TruncF32S | I32TruncF32U | I32TruncF64S | I32TruncF64U | I64TruncF32S | I64TruncF32U
        | I64TruncF64S | I64TruncF64U => {
            let t = Trunc::new(op, a, ufs);
            let traps = vec![
                (t.nan.clone(), TrapKind::InvalidConversionToInteger),
                (
                    Bool::or(&[t.below.clone(), t.above.clone()]),
                    TrapKind::IntegerOverflow,
                ),
            ];
            return (t.value, traps);
        }
        I32TruncSatF32S | I32TruncSatF32U | I32TruncSatF64S | I32TruncSatF64U | I64TruncSatF32S
        | I64TruncSatF32U | I64TruncSatF64S | I64TruncSatF64U => {
            let t = Trunc::new(op, a, ufs);
            let w = t.value.get_size();
            let (min, max) = if t.signed {
                (1u64 << (w - 1), u64::MAX >> (64 - w + 1))
            } else {
                (0, u64::MAX >> (64 - w))
            };
            t.nan.ite(
                &bv(0, w),
                &t.below
                    .ite(&bv(min, w), &t.above.ite(&bv(max, w), &t.value)),
            )
        }

        // Every other float operator: uninterpreted over bit patterns.
        F32Add | F32Sub | F32Mul | F32Div | F32Min | F32Max | F32Ceil | F32Floor | F32Trunc
        | F32Nearest | F32Sqrt | F64Add | F64Sub | F64Mul | F64Div | F64Min | F64Max | F64Ceil
        | F64Floor | F64Trunc | F64Nearest | F64Sqrt | F32ConvertI32S | F32ConvertI32U
        | F32ConvertI64S | F32ConvertI64U | F32DemoteF64 | F64ConvertI32S | F64ConvertI32U
        | F64ConvertI64S | F64ConvertI64U | F64PromoteF32 => {
            let args: Vec<&BV> = args.iter().collect();
            ufs.bv(op.name(), &args, op.result().bits())
        }
    };
    (value, Vec::new())
}

/// A float-to-int truncation's parts: whether the operand is NaN, whether its truncation
/// is below or above the integer type's range, and the integer when in range.
struct Trunc {
    nan: Bool,
    below: Bool,
    above: Bool,
    value: BV,
    signed: bool,
}

impl Trunc {
    fn new(op: NumOp, a: &BV, ufs: &mut Ufs) -> Trunc {
        let name = op.name();
        let signed = name.ends_with("_s");
        let width = op.result().bits();
        let f = ufs.float(a);
        let rtz = RoundingMode::round_towards_zero();
        let t = f.round_to_integral_with_rounding_mode(&rtz);
        // The range's bounds are powers of two, exact in both float types.
        let (lo, hi) = if signed {
            (-(2f64.powi(width as i32 - 1)), 2f64.powi(width as i32 - 1))
        } else {
            (0.0, 2f64.powi(width as i32))
        };
        let constant = |x: f64| {
            if a.get_size() == 32 {
                Float::from_f32(x as f32)
            } else {
                Float::from_f64(x)
            }
        };
        let nan = f.is_nan();
        let below = Bool::and(&[nan.not(), t.lt(constant(lo))]);
        let above = Bool::and(&[nan.not(), t.ge(constant(hi))]);
        let value = if signed {
            t.to_sbv_with_rounding_mode(&rtz, width)
        } else {
            t.to_ubv_with_rounding_mode(&rtz, width)
        };
        Trunc {
            nan,
            below,
            above,
            value,
            signed,
        }
    }
}
