//! The trace data model: a straight path through one function, in SSA form over wasm's
//! numeric types, with guards that leave the path and an end that loops or exits.
//!
//! A trace reads its *inputs* (frame slots of the interpreter and wasm globals), computes
//! with pure operators, performs effects (loads, stores, global writes, memory size and
//! growth) in their recorded order, checks *guards* (the branches the recording assumed)
//! and ends either by looping back to its anchor with new slot values or by exiting to
//! the interpreter. Every exit names the interpreter pc to resume at and the value of
//! every frame slot the interpreter needs there.
//!
//! Frame slots are the interpreter's (see `trace-capture`'s `code.rs`): slots
//! `0..locals` are the wasm locals, the rest hold operand-stack values. A trace is
//! therefore specific to the kiln version that lowered the module; the corpus and the
//! cache key traces with that in mind.

use std::fmt;

/// A numeric value type. Traces do not carry references: the recorder aborts on
/// reference-typed operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    I32,
    I64,
    F32,
    F64,
}

impl Type {
    pub fn name(self) -> &'static str {
        match self {
            Type::I32 => "i32",
            Type::I64 => "i64",
            Type::F32 => "f32",
            Type::F64 => "f64",
        }
    }

    pub fn bits(self) -> u32 {
        match self {
            Type::I32 | Type::F32 => 32,
            Type::I64 | Type::F64 => 64,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An SSA value, `v<N>` in the text form. Each is defined once: by an input or by an
/// instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// An operand: a value or a constant. A constant is a bit pattern (floats too) whose
/// type is the operator's operand type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operand {
    Value(ValueId),
    Const(u64),
}

/// Where an input comes from. Ordered slots first, then globals, each by index: the
/// canonical order of inputs (`hash.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// An interpreter frame slot at the anchor.
    Slot(u32),
    /// A wasm global (module index space) at the anchor.
    Global(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Input {
    pub value: ValueId,
    pub ty: Type,
    pub source: Source,
}

/// How a load reads memory: width in bytes, and how it extends to the result type.
/// Described by `ops::LOAD_KINDS`, in this order (new kinds go at the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadKind {
    I32,
    I64,
    F32,
    F64,
    I32_8S,
    I32_8U,
    I32_16S,
    I32_16U,
    I64_8S,
    I64_8U,
    I64_16S,
    I64_16U,
    I64_32S,
    I64_32U,
}

/// How a store writes memory: the operand type and the width written.
/// Described by `ops::STORE_KINDS`, in this order (new kinds go at the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    I32,
    I64,
    F32,
    F64,
    I32_8,
    I32_16,
    I64_8,
    I64_16,
    I64_32,
}

/// The pure (possibly trapping) numeric operators: wasm's, named as in wasm's text form.
///
/// `ops.rs` holds each one's name, types and whether it can trap, in a table in this
/// declaration order; the order is also each operator's code in the binary form, so new
/// operators go at the end (here and in the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NumOp {
    // i32
    I32Add,
    I32Sub,
    I32Mul,
    I32DivS,
    I32DivU,
    I32RemS,
    I32RemU,
    I32And,
    I32Or,
    I32Xor,
    I32Shl,
    I32ShrS,
    I32ShrU,
    I32Rotl,
    I32Rotr,
    I32Eq,
    I32Ne,
    I32LtS,
    I32LtU,
    I32GtS,
    I32GtU,
    I32LeS,
    I32LeU,
    I32GeS,
    I32GeU,
    I32Eqz,
    I32Clz,
    I32Ctz,
    I32Popcnt,
    I32Extend8S,
    I32Extend16S,
    // i64
    I64Add,
    I64Sub,
    I64Mul,
    I64DivS,
    I64DivU,
    I64RemS,
    I64RemU,
    I64And,
    I64Or,
    I64Xor,
    I64Shl,
    I64ShrS,
    I64ShrU,
    I64Rotl,
    I64Rotr,
    I64Eq,
    I64Ne,
    I64LtS,
    I64LtU,
    I64GtS,
    I64GtU,
    I64LeS,
    I64LeU,
    I64GeS,
    I64GeU,
    I64Eqz,
    I64Clz,
    I64Ctz,
    I64Popcnt,
    I64Extend8S,
    I64Extend16S,
    I64Extend32S,
    // f32
    F32Add,
    F32Sub,
    F32Mul,
    F32Div,
    F32Min,
    F32Max,
    F32Copysign,
    F32Eq,
    F32Ne,
    F32Lt,
    F32Gt,
    F32Le,
    F32Ge,
    F32Abs,
    F32Neg,
    F32Ceil,
    F32Floor,
    F32Trunc,
    F32Nearest,
    F32Sqrt,
    // f64
    F64Add,
    F64Sub,
    F64Mul,
    F64Div,
    F64Min,
    F64Max,
    F64Copysign,
    F64Eq,
    F64Ne,
    F64Lt,
    F64Gt,
    F64Le,
    F64Ge,
    F64Abs,
    F64Neg,
    F64Ceil,
    F64Floor,
    F64Trunc,
    F64Nearest,
    F64Sqrt,
    // conversions
    I32WrapI64,
    I64ExtendI32S,
    I64ExtendI32U,
    I32TruncF32S,
    I32TruncF32U,
    I32TruncF64S,
    I32TruncF64U,
    I64TruncF32S,
    I64TruncF32U,
    I64TruncF64S,
    I64TruncF64U,
    I32TruncSatF32S,
    I32TruncSatF32U,
    I32TruncSatF64S,
    I32TruncSatF64U,
    I64TruncSatF32S,
    I64TruncSatF32U,
    I64TruncSatF64S,
    I64TruncSatF64U,
    F32ConvertI32S,
    F32ConvertI32U,
    F32ConvertI64S,
    F32ConvertI64U,
    F32DemoteF64,
    F64ConvertI32S,
    F64ConvertI32U,
    F64ConvertI64S,
    F64ConvertI64U,
    F64PromoteF32,
    I32ReinterpretF32,
    I64ReinterpretF64,
    F32ReinterpretI32,
    F64ReinterpretI64,
}

/// One instruction of a trace body. The body is in execution order: effects, possible
/// traps and guards keep their recorded order (the *spine*); a pure operator's position
/// only matters for where it may trap.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Inst {
    /// `dst = op(args)`. Trapping operators (division, remainder, float-to-int
    /// truncation) trap here if their operands say so.
    Num {
        dst: ValueId,
        op: NumOp,
        args: Vec<Operand>,
    },
    /// `dst = cond != 0 ? a : b`, wasm's `select` on numeric values.
    Select {
        dst: ValueId,
        ty: Type,
        cond: Operand,
        a: Operand,
        b: Operand,
    },
    /// Reads memory 0 at `addr + offset` (unsigned 33-bit sum); traps if out of bounds.
    Load {
        dst: ValueId,
        kind: LoadKind,
        offset: u32,
        addr: Operand,
    },
    /// Writes memory 0 at `addr + offset`; traps (writing nothing) if out of bounds.
    Store {
        kind: StoreKind,
        offset: u32,
        addr: Operand,
        value: Operand,
    },
    GlobalSet {
        global: u32,
        value: Operand,
    },
    /// `dst` = current size of memory 0 in pages.
    MemorySize {
        dst: ValueId,
    },
    /// Grows memory 0; `dst` = old size in pages or -1.
    MemoryGrow {
        dst: ValueId,
        delta: Operand,
    },
    /// Continues if `cond != 0` equals `expect`, else leaves through `exit`.
    Guard {
        cond: Operand,
        expect: bool,
        exit: Exit,
    },
}

/// A way out of the trace, back to the interpreter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Exit {
    /// Numbers the exits of a trace, for reports and statistics.
    pub id: u32,
    /// Interpreter instruction index to resume at: in the anchor's function, or in the
    /// innermost of `calls` when the exit leaves inside an inlined call.
    pub pc: u32,
    /// The wasm byte offset of that instruction, relative to the start of its function's
    /// body (so the same function in two modules gives the same trace), for people
    /// reading the trace.
    pub offset: u32,
    /// Frame slots the interpreter needs, sorted by slot, each with its value. Slots are
    /// numbered from the anchor's frame, so an inlined callee's slots follow its `base`.
    pub state: Vec<(u32, Operand)>,
    /// The inlined calls the trace is inside when it leaves here, outermost first; empty
    /// for an exit in the anchor's function. The interpreter rebuilds their frames.
    pub calls: Vec<InlinedCall>,
}

/// A call the trace inlined and leaves from inside: what the interpreter needs to
/// rebuild the callee's frame as if it had made the call itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InlinedCall {
    /// The callee, in the module's function index space.
    pub func: u32,
    /// Where the callee's frame starts, in slots from the anchor's frame (the caller's
    /// argument window: the callee's parameters are its first slots).
    pub base: u32,
    /// The caller's pc after the call: where it goes on once the callee returns.
    pub return_pc: u32,
}

impl Exit {
    /// An exit in the anchor's function (not inside an inlined call).
    pub fn new(id: u32, pc: u32, offset: u32, state: Vec<(u32, Operand)>) -> Exit {
        Exit {
            id,
            pc,
            offset,
            state,
            calls: Vec::new(),
        }
    }
}

/// How the trace ends when no guard failed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum End {
    /// Back to the anchor; these slots get new values (others keep theirs).
    Loop { state: Vec<(u32, Operand)> },
    /// Leaves to the interpreter.
    Exit(Exit),
}

/// What kind of anchor the trace starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnchorKind {
    Loop,
    FuncEntry,
}

/// Where a trace was recorded. Travels beside the trace but is not part of its content
/// hash: the same path recorded twice is one trace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Provenance {
    /// Hex SHA-256 of the module's bytes.
    pub module_hash: String,
    pub func_index: u32,
    /// Wasm byte offset of the anchor.
    pub anchor_offset: u32,
    pub kind: AnchorKind,
    /// Anchor hits when the trace was recorded.
    pub hits: u64,
}

/// The `br_table` a side trace starts at, and the arm it took: a side trace is only right
/// for that arm, so a tier picks side traces there by the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Selector {
    /// The frame slot holding the table's index.
    pub index_slot: u32,
    /// The table's arms, the default one (last) included.
    pub arms: u32,
    /// The arm taken: the index, or `arms - 1` for any index past the table.
    pub arm: u32,
}

/// Where a side trace starts: the place some trace's exit lands on, as a tier links it.
/// Two exits land on one place when they resume at the same pc inside the same inlined
/// calls and, for guards, expected their branch to go the same way.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SideStart {
    /// The function of the traces whose exits land here (module index space).
    pub func_index: u32,
    /// The interpreter pc: in `func_index`, or in the innermost of `calls`.
    pub pc: u32,
    /// The inlined calls (outermost first) the exit is inside; empty for none.
    pub calls: Vec<InlinedCall>,
    /// The guard's `expect`, for a guard's exit; `None` for a trace's end.
    pub expect: Option<bool>,
    /// At a `br_table`: the arm this side trace is for.
    pub selector: Option<Selector>,
}

/// Where and how often a side trace ran. Travels beside the trace, as [`Provenance`] does
/// for loop traces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SideProvenance {
    /// Hex SHA-256 of the module's bytes.
    pub module_hash: String,
    pub start: SideStart,
    /// Wasm byte offset of the instruction at the start's pc.
    pub offset: u32,
    /// Calls of the side trace plus loop iterations it led into, in the recording run.
    pub passes: u64,
}

/// A recorded trace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Trace {
    /// Number of wasm locals of the function (slots below this are locals).
    pub locals: u32,
    pub inputs: Vec<Input>,
    pub body: Vec<Inst>,
    pub end: End,
}

/// What type an operand must have where it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// An operand of an operator: a value of this type, or a constant that this type
    /// holds (see [`Type::holds`]).
    Typed(Type),
    /// A raw 64-bit slot or global value (exit and loop state, `global.set`): a value of
    /// any type (stored as the interpreter keeps it: 32-bit types zero-extended) or a
    /// constant bit pattern, untyped.
    Raw,
}

impl Inst {
    /// The value this instruction defines, with its type.
    pub fn def(&self) -> Option<(ValueId, Type)> {
        match *self {
            Inst::Num { dst, op, .. } => Some((dst, op.result())),
            Inst::Select { dst, ty, .. } => Some((dst, ty)),
            Inst::Load { dst, kind, .. } => Some((dst, kind.result())),
            Inst::MemorySize { dst } | Inst::MemoryGrow { dst, .. } => Some((dst, Type::I32)),
            Inst::Store { .. } | Inst::GlobalSet { .. } | Inst::Guard { .. } => None,
        }
    }

    pub fn def_mut(&mut self) -> Option<&mut ValueId> {
        match self {
            Inst::Num { dst, .. }
            | Inst::Select { dst, .. }
            | Inst::Load { dst, .. }
            | Inst::MemorySize { dst }
            | Inst::MemoryGrow { dst, .. } => Some(dst),
            Inst::Store { .. } | Inst::GlobalSet { .. } | Inst::Guard { .. } => None,
        }
    }

    /// The operands in the order the text form writes them (`select a b cond`; a store's
    /// address before its value; a guard's condition before its exit state), each with
    /// the type it must have. Validation errors number operands in this order.
    pub fn operands(&self) -> Vec<(Operand, Expect)> {
        use Expect::{Raw, Typed};
        match self {
            Inst::Num { op, args, .. } => {
                let params = op.params();
                // A malformed instruction may have more args than params: those are
                // reported by the validator, typed here as the last param.
                args.iter()
                    .enumerate()
                    .map(|(i, &a)| (a, Typed(params[i.min(params.len() - 1)])))
                    .collect()
            }
            Inst::Select { ty, cond, a, b, .. } => {
                vec![
                    (*a, Typed(*ty)),
                    (*b, Typed(*ty)),
                    (*cond, Typed(Type::I32)),
                ]
            }
            Inst::Load { addr, .. } => vec![(*addr, Typed(Type::I32))],
            Inst::Store {
                kind, addr, value, ..
            } => {
                vec![(*addr, Typed(Type::I32)), (*value, Typed(kind.operand()))]
            }
            Inst::GlobalSet { value, .. } => vec![(*value, Raw)],
            Inst::MemorySize { .. } => vec![],
            Inst::MemoryGrow { delta, .. } => vec![(*delta, Typed(Type::I32))],
            Inst::Guard { cond, exit, .. } => std::iter::once((*cond, Typed(Type::I32)))
                .chain(exit.state.iter().map(|&(_, o)| (o, Raw)))
                .collect(),
        }
    }

    /// The operands, mutably, in the order of [`Inst::operands`].
    pub fn operands_mut(&mut self) -> Vec<&mut Operand> {
        match self {
            Inst::Num { args, .. } => args.iter_mut().collect(),
            Inst::Select { cond, a, b, .. } => vec![a, b, cond],
            Inst::Load { addr, .. } => vec![addr],
            Inst::Store { addr, value, .. } => vec![addr, value],
            Inst::GlobalSet { value, .. } => vec![value],
            Inst::MemorySize { .. } => vec![],
            Inst::MemoryGrow { delta, .. } => vec![delta],
            Inst::Guard { cond, exit, .. } => std::iter::once(cond)
                .chain(exit.state.iter_mut().map(|(_, o)| o))
                .collect(),
        }
    }

    /// Whether the instruction has an effect or may leave the trace (a trap or a guard):
    /// the instructions of the spine, whose order is fixed.
    pub fn is_spine(&self) -> bool {
        match self {
            Inst::Num { op, .. } => op.can_trap(),
            Inst::Select { .. } => false,
            Inst::Load { .. }
            | Inst::Store { .. }
            | Inst::GlobalSet { .. }
            | Inst::MemorySize { .. }
            | Inst::MemoryGrow { .. }
            | Inst::Guard { .. } => true,
        }
    }
}

impl End {
    /// The slots written at the end, sorted by slot.
    pub fn state(&self) -> &[(u32, Operand)] {
        match self {
            End::Loop { state } => state,
            End::Exit(exit) => &exit.state,
        }
    }

    pub fn state_mut(&mut self) -> &mut Vec<(u32, Operand)> {
        match self {
            End::Loop { state } => state,
            End::Exit(exit) => &mut exit.state,
        }
    }
}

impl Trace {
    /// Every exit of the trace, guards' first (in body order), then the end's if it exits.
    pub fn exits(&self) -> impl Iterator<Item = &Exit> {
        let guards = self.body.iter().filter_map(|inst| match inst {
            Inst::Guard { exit, .. } => Some(exit),
            _ => None,
        });
        let end = match &self.end {
            End::Exit(exit) => Some(exit),
            End::Loop { .. } => None,
        };
        guards.chain(end)
    }
}

impl AnchorKind {
    /// The name in the text form's header: `loop` or `entry`.
    pub fn name(self) -> &'static str {
        match self {
            AnchorKind::Loop => "loop",
            AnchorKind::FuncEntry => "entry",
        }
    }
}
