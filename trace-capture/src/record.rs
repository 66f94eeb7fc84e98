//! The trace recorder: lifts one pass of the interpreter through a hot loop into an SSA
//! trace (`ir::Trace`).
//!
//! Recording is observation. When a loop anchor's counter reaches its threshold, the
//! interpreter switches to its recording loop (the same loop monomorphized with a hook,
//! see `exec.rs`), which calls [`Recorder::observe`] before executing each instruction.
//! The recorder keeps a symbolic copy of the frame — for every slot the trace has
//! written, the SSA operand it holds — and translates each instruction into IR. Branches
//! become guards in the direction the execution took, read from the concrete slot
//! values. Recording stops when control returns to the anchor (a loop trace), reaches
//! another loop header, leaves the function, or meets a call it does not inline (an exit
//! trace), and is aborted on anything the IR cannot express.
//!
//! Calls to small functions of the same instance are inlined. A branch inside an inlined
//! callee is a guard like any other; its exit leaves inside the call and names the calls
//! it is in (`ir::InlinedCall`), so the interpreter rebuilds their frames and goes on in
//! the callee. A callee that loops, calls out of the instance or indirectly, calls
//! deeper than `MAX_INLINE_DEPTH` or runs long is not inlined: the trace is cut back to
//! the call and ends with an exit there.
//!
//! The slots of an inlined callee's frame are addressed relative to the anchor's frame
//! (the callee's frame starts at the caller's argument window), so one map covers all.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ir::{
    End, Exit, InlinedCall, Input, Inst, LoadKind, NumOp, Operand, Source, StoreKind, Trace, Type,
    ValueId,
};

use crate::code::{CompiledFunc, Instr, NumShape, Slot};
use crate::liveness::{read_after_exit, FrameLiveness, Liveness};
use crate::module::ModuleInner;
use crate::store::{FuncInst, FuncKind, InstanceData};
use crate::types::ValType;

/// Loop iterations before an anchor is recorded. LuaJIT records a loop after 56
/// iterations (`hotloop`): its compiles are cheap and every loop gets a trace. The .NET
/// jiterpreter waits for 5000 because each trace costs a browser wasm compile. A kiln
/// trace costs equality saturation and a solver run in the nightly job, so kiln waits
/// long enough that start-up loops (argument parsing, printf's digit loops) stay cold,
/// yet records every loop that carries a measurable share of a run: at 1000 a loop must
/// run for about a microsecond of interpretation before it is worth a trace.
pub const DEFAULT_HOT_THRESHOLD: u64 = 1000;
/// IR instructions a trace may hold. LuaJIT aborts traces at 4000 IR instructions; kiln
/// traces go through a solver, whose time grows quickly with trace length, so the bound
/// is tighter.
pub const MAX_TRACE_INSTS: usize = 1000;
/// Nested inlined calls. Two levels catch accessor-style helpers calling a helper.
pub const MAX_INLINE_DEPTH: usize = 2;
/// IR instructions one inlined call may add: only small callees are worth inlining.
pub const MAX_INLINE_INSTS: usize = 100;
/// Aborted recordings of one anchor before it is never tried again. Each abort doubles
/// the wait before the next try (backoff), so a loop whose path is unrecordable costs
/// little.
pub const MAX_ABORTS: u32 = 4;

#[derive(Debug, Clone)]
pub struct RecordConfig {
    pub hot_threshold: u64,
    pub max_trace_insts: usize,
    /// Snapshot the concrete state (frame, globals, memory) at each trace's start and end,
    /// so tests can replay a trace against what the interpreter did. Costly: tests only.
    pub capture_states: bool,
}

impl Default for RecordConfig {
    fn default() -> RecordConfig {
        RecordConfig {
            hot_threshold: DEFAULT_HOT_THRESHOLD,
            max_trace_insts: MAX_TRACE_INSTS,
            capture_states: false,
        }
    }
}

/// Why a recording was abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AbortReason {
    /// The trace grew past `max_trace_insts`.
    TooLong,
    /// The path executed an instruction the trace IR does not express.
    Unsupported(&'static str),
    /// The guest trapped while the path was recorded.
    Trap,
    /// The anchor's function was left through a call into another instance.
    ForeignCall,
}

impl std::fmt::Display for AbortReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AbortReason::TooLong => f.write_str("too long"),
            AbortReason::Unsupported(what) => write!(f, "unsupported: {what}"),
            AbortReason::Trap => f.write_str("trap while recording"),
            AbortReason::ForeignCall => f.write_str("call into another instance"),
        }
    }
}

/// The concrete state of the anchor's frame and the world at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedState {
    /// Slots `0..frame_size` of the anchor's frame.
    pub slots: Vec<u64>,
    /// Every global of the module, by index, as slots.
    pub globals: Vec<u64>,
    pub memory: Vec<u8>,
}

/// Where a recording began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceStart {
    /// At a hot loop header (the anchor): the trace is the loop's body.
    Loop,
    /// At `pc`, where a running trace exited (a side trace): the trace runs from there
    /// to the next loop header, where the code linked there (the anchor's trace, most
    /// often) takes over. Its anchor offset is the module offset of the instruction at
    /// `pc`.
    Exit {
        pc: u32,
        /// When the instruction at `pc` is a `br_table`: the trace is only right for the
        /// arm the recorded pass took, so a tier picks a side trace by it.
        selector: Option<Selector>,
    },
}

/// The `br_table` a side trace starts at, and the arm it took (ir's, for the corpus and
/// cache libraries keep it with the trace).
pub use ir::Selector;

/// A finished recording.
#[derive(Debug, Clone)]
pub struct RecordedTrace {
    pub trace: Trace,
    /// The function (module index space) and the module byte offset of its loop anchor.
    pub func_index: u32,
    pub anchor_offset: u32,
    /// The loop header's pc in the function's lowered code: where a loop trace's
    /// iterations go on.
    pub anchor_pc: u32,
    /// A loop trace, or a side trace from an exit.
    pub start: TraceStart,
    /// The anchor's hit count when recording began.
    pub hits: u64,
    /// Interpreter instructions the recorded pass executed (inlined calls included).
    pub observed_instrs: u64,
    /// With [`RecordConfig::capture_states`]: the state at the anchor, and the state
    /// where the trace ends (at the anchor again, or at the exit's pc).
    pub states: Option<(CapturedState, CapturedState)>,
}

/// Counters of the recorder, for `kiln record` and the benchmarks.
#[derive(Debug, Clone, Default)]
pub struct RecordStats {
    /// Anchors that reached the threshold at least once.
    pub hot_anchors: u64,
    pub traces: u64,
    /// Sum of the recorded traces' body lengths.
    pub trace_insts: u64,
    pub aborts: BTreeMap<AbortReason, u64>,
    /// Anchors given up on after `MAX_ABORTS`.
    pub blacklisted: u64,
    /// Recordings cut back to a call that could not be inlined.
    pub cut_at_call: u64,
    /// Side traces recorded at a tier's request (`TierExit::Record`), and requests that
    /// ended without one (aborted, or not at a recordable pc).
    pub side_traces: u64,
    pub side_aborts: u64,
}

/// What a recording loop should do after an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The trace is complete (or abandoned): stop recording *before* executing the
    /// observed instruction.
    Stop,
}

/// What a slot or global holds, symbolically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sym {
    /// Its value at the anchor (an input, created when first used at a type).
    Entry(Source),
    Val(ValueId, Type),
    /// A constant, as the raw slot bits (i32 and f32 zero-extended).
    Const(u64),
}

/// A call being inlined.
#[derive(Debug, Clone)]
struct InlineFrame {
    /// The callee (module function index), its frame's offset from the anchor's frame in
    /// slots, and where its caller goes on after it.
    call: InlinedCall,
    /// The callee's lowered code: its pcs' offsets, its frame size and constant slots.
    code: Arc<CompiledFunc>,
    /// Byte offset of the callee's body in the module.
    body_start: u32,
}

/// Everything needed to cut the trace back to an inlined call site.
#[derive(Debug, Clone)]
struct CallSite {
    pc: u32,
    body_len: usize,
    next_value: u32,
    next_exit: u32,
    inputs_len: usize,
    slots: HashMap<u32, Sym>,
    globals: HashMap<u32, Sym>,
    value_types_len: usize,
    /// With `capture_states`: the concrete state before the call.
    state: Option<CapturedState>,
}

pub(crate) struct Recorder {
    config: RecordConfig,
    func_index: u32,
    anchor: u32,
    anchor_pc: u32,
    anchor_offset: u32,
    hits: u64,
    /// The anchor function's lowered code (for pcs, offsets and its frame size).
    code_offsets: Vec<u32>,
    /// The anchor function's live slots: an exit stores only the slots the interpreter
    /// may read where it goes on.
    liveness: Arc<Liveness>,
    body_start: u32,
    frame_size: u32,
    locals: u32,
    slots: HashMap<u32, Sym>,
    globals: HashMap<u32, Sym>,
    inputs: Vec<Input>,
    input_ids: HashMap<(Source, Type), ValueId>,
    value_types: Vec<Type>,
    body: Vec<Inst>,
    next_value: u32,
    next_exit: u32,
    inline: Vec<InlineFrame>,
    call_site: Option<CallSite>,
    end: Option<End>,
    abort: Option<AbortReason>,
    cut_at_call: bool,
    entry_state: Option<CapturedState>,
    end_state: Option<CapturedState>,
    /// The anchor frame's constant slots: never changed, so never part of an exit state.
    const_slots: std::ops::Range<u32>,
    observed: u64,
    start: TraceStart,
}

/// The concrete context of an observation.
pub(crate) struct Observed<'a> {
    pub instr: Instr,
    pub pc: u32,
    /// The current frame's slots (the anchor's frame or an inlined callee's).
    pub frame: &'a [u64],
    pub instance: &'a InstanceData,
    pub funcs: &'a [FuncInst],
    pub globals: &'a [crate::store::GlobalInst],
    pub memory: Option<&'a [u8]>,
}

impl Recorder {
    pub(crate) fn new(
        config: RecordConfig,
        code: &CompiledFunc,
        anchor: u32,
        anchor_pc: u32,
        anchor_offset: u32,
        hits: u64,
        body_start: u32,
    ) -> Recorder {
        let mut recorder = Recorder {
            config,
            func_index: code.func_index,
            anchor,
            anchor_pc,
            anchor_offset,
            hits,
            code_offsets: code.offsets.clone(),
            liveness: code.liveness(),
            body_start,
            frame_size: code.frame_size,
            locals: code.num_locals,
            slots: HashMap::new(),
            globals: HashMap::new(),
            inputs: Vec::new(),
            input_ids: HashMap::new(),
            value_types: Vec::new(),
            body: Vec::new(),
            next_value: 0,
            next_exit: 0,
            inline: Vec::new(),
            call_site: None,
            end: None,
            abort: None,
            cut_at_call: false,
            entry_state: None,
            end_state: None,
            const_slots: code.const_base..code.const_base + code.consts.len() as u32,
            observed: 0,
            start: TraceStart::Loop,
        };
        recorder.set_consts(code);
        recorder
    }

    /// A side trace's recorder, from `pc` of function `code` (body at `body_start`) where
    /// a trace exited, or, with `calls` (each with its callee's code and body start,
    /// outermost first), from `pc` of the innermost callee: the trace starts inside those
    /// calls, as inlined. It has no anchor of its own, so every loop header ends it with
    /// an exit. With `entry` (pc 0 of a frame a call just set up), the function's
    /// non-parameter locals are the zeros the call wrote, not inputs.
    pub(crate) fn side(
        config: RecordConfig,
        code: &CompiledFunc,
        pc: u32,
        body_start: u32,
        calls: &[(InlinedCall, Arc<CompiledFunc>, u32)],
        entry: bool,
    ) -> Recorder {
        let innermost = calls.last().map_or(code, |(_, callee, _)| &**callee);
        let offset = innermost.offsets.get(pc as usize).copied().unwrap_or(0);
        let mut recorder = Recorder::new(config, code, u32::MAX, u32::MAX, offset, 0, body_start);
        recorder.start = TraceStart::Exit { pc, selector: None };
        if entry {
            for local in code.num_params..code.num_locals {
                recorder.set(local, Sym::Const(0));
            }
        }
        for (call, callee, body_start) in calls {
            recorder.inline.push(InlineFrame {
                call: *call,
                code: Arc::clone(callee),
                body_start: *body_start,
            });
            // The interpreter wrote the callee's constants when it set the frame up.
            recorder.set_consts(callee);
        }
        recorder
    }

    /// A frame's constant slots hold their constants from the frame's entry on.
    fn set_consts(&mut self, code: &CompiledFunc) {
        for (i, &c) in code.consts.iter().enumerate() {
            self.set(code.const_base + i as u32, Sym::Const(c));
        }
    }

    pub(crate) fn func_index(&self) -> u32 {
        self.func_index
    }

    pub(crate) fn wants_states(&self) -> bool {
        self.config.capture_states
    }

    pub(crate) fn set_entry_state(&mut self, state: CapturedState) {
        self.entry_state = Some(state);
    }

    /// The finished trace, or why there is none.
    pub(crate) fn finish(self) -> Result<(RecordedTrace, bool), AbortReason> {
        if let Some(reason) = self.abort {
            return Err(reason);
        }
        let end = self
            .end
            .ok_or(AbortReason::Unsupported("recording never ended"))?;
        let states = self.entry_state.zip(self.end_state);
        Ok((
            RecordedTrace {
                trace: Trace {
                    locals: self.locals,
                    inputs: self.inputs,
                    body: self.body,
                    end,
                },
                func_index: self.func_index,
                anchor_offset: self.anchor_offset,
                anchor_pc: self.anchor_pc,
                start: self.start,
                hits: self.hits,
                observed_instrs: self.observed,
                states,
            },
            self.cut_at_call,
        ))
    }

    /// Records that the guest trapped during the recording.
    pub(crate) fn trapped(&mut self) {
        self.abort = Some(AbortReason::Trap);
    }

    // ---- the symbolic frame ----

    fn depth(&self) -> usize {
        self.inline.len()
    }

    /// Slot `s` of the current frame, as an offset in the anchor's frame.
    fn abs(&self, s: Slot) -> u32 {
        self.inline.last().map_or(0, |f| f.call.base) + s
    }

    fn sym(&self, s: Slot) -> Sym {
        let abs = self.abs(s);
        self.slots
            .get(&abs)
            .copied()
            .unwrap_or(Sym::Entry(Source::Slot(abs)))
    }

    fn set(&mut self, s: Slot, sym: Sym) {
        let abs = self.abs(s);
        self.slots.insert(abs, sym);
    }

    fn new_value(&mut self, ty: Type) -> ValueId {
        let v = ValueId(self.next_value);
        self.next_value += 1;
        self.value_types.push(ty);
        v
    }

    fn input(&mut self, source: Source, ty: Type) -> ValueId {
        if let Some(&v) = self.input_ids.get(&(source, ty)) {
            return v;
        }
        let v = self.new_value(ty);
        self.inputs.push(Input {
            value: v,
            ty,
            source,
        });
        self.input_ids.insert((source, ty), v);
        v
    }

    /// `sym` as an operand of type `ty`. Slots are untyped, so a value may be read at a
    /// type of the same width (wasm's reinterpretations are free in the interpreter):
    /// the trace then says so with an explicit reinterpretation.
    fn operand(&mut self, sym: Sym, ty: Type) -> Operand {
        match sym {
            Sym::Const(bits) => Operand::Const(match ty.bits() {
                32 => bits as u32 as u64,
                _ => bits,
            }),
            Sym::Entry(source) => Operand::Value(self.input(source, ty)),
            Sym::Val(v, t) if t == ty => Operand::Value(v),
            Sym::Val(v, t) => {
                let op = match (t, ty) {
                    (Type::F32, Type::I32) => NumOp::I32ReinterpretF32,
                    (Type::I32, Type::F32) => NumOp::F32ReinterpretI32,
                    (Type::F64, Type::I64) => NumOp::I64ReinterpretF64,
                    (Type::I64, Type::F64) => NumOp::F64ReinterpretI64,
                    // A raw 64-bit passthrough read as i32: the slot's low half.
                    (Type::I64, Type::I32) => NumOp::I32WrapI64,
                    _ => {
                        self.abort(AbortReason::Unsupported("slot read at a wider type"));
                        return Operand::Const(0);
                    }
                };
                let dst = self.new_value(ty);
                self.body.push(Inst::Num {
                    dst,
                    op,
                    args: vec![Operand::Value(v)],
                });
                Operand::Value(dst)
            }
        }
    }

    fn read(&mut self, s: Slot, ty: Type) -> Operand {
        let sym = self.sym(s);
        self.operand(sym, ty)
    }

    fn abort(&mut self, reason: AbortReason) {
        self.abort.get_or_insert(reason);
    }

    /// The slots the trace changed, with their new values: what an exit or the loop
    /// back-edge hands over when the interpreter goes on at `pc` of the innermost frame
    /// (the anchor's, or the last inlined call's). Outside inlined calls that is the
    /// anchor's frame (a callee's slots beyond it are dead once it returned); inside them,
    /// every frame up to the innermost callee's end. Left out: constant slots (the
    /// interpreter writes those whenever it sets a frame up) and slots dead where each
    /// frame goes on (`liveness.rs`), which the interpreter overwrites before it reads.
    fn frame_state(&mut self, pc: u32) -> Vec<(u32, Operand)> {
        let end = self.inline.last().map_or(self.frame_size, |f| {
            self.frame_size.max(f.call.base + f.code.frame_size)
        });
        let const_ranges: Vec<std::ops::Range<u32>> = std::iter::once(self.const_slots.clone())
            .chain(self.inline.iter().map(|f| {
                let start = f.call.base + f.code.const_base;
                start..start + f.code.consts.len() as u32
            }))
            .collect();
        let frames: Vec<FrameLiveness> = std::iter::once(FrameLiveness {
            base: 0,
            size: self.frame_size,
            liveness: self.liveness.clone(),
        })
        .chain(self.inline.iter().map(|f| FrameLiveness {
            base: f.call.base,
            size: f.code.frame_size,
            liveness: f.code.liveness(),
        }))
        .collect();
        let calls: Vec<InlinedCall> = self.inline.iter().map(|f| f.call).collect();
        let mut written: Vec<(u32, Sym)> = self
            .slots
            .iter()
            .filter(|&(&slot, _)| slot < end && !const_ranges.iter().any(|r| r.contains(&slot)))
            .filter(|&(&slot, _)| read_after_exit(&frames, &calls, pc, slot))
            .map(|(&slot, &sym)| (slot, sym))
            .collect();
        written.sort_by_key(|&(slot, _)| slot);
        let mut state = Vec::new();
        for (slot, sym) in written {
            let operand = match sym {
                Sym::Entry(Source::Slot(s)) if s == slot => continue,
                Sym::Val(v, _) => Operand::Value(v),
                Sym::Const(bits) => Operand::Const(bits),
                // Raw 64-bit copy of another slot or a global: read it whole.
                Sym::Entry(source) => Operand::Value(self.input(source, Type::I64)),
            };
            state.push((slot, operand));
        }
        state
    }

    /// An exit at `pc` of the current function (the innermost inlined callee's, if any).
    fn exit_at(&mut self, pc: u32) -> Exit {
        let id = self.next_exit;
        self.next_exit += 1;
        let (offsets, body_start) = match self.inline.last() {
            Some(f) => (&f.code.offsets, f.body_start),
            None => (&self.code_offsets, self.body_start),
        };
        let offset = offsets
            .get(pc as usize)
            .map_or(0, |o| o.saturating_sub(body_start));
        Exit {
            id,
            pc,
            offset,
            state: self.frame_state(pc),
            calls: self.inline.iter().map(|f| f.call).collect(),
        }
    }

    fn guard(&mut self, cond: Operand, expect: bool, pc: u32) {
        let exit = self.exit_at(pc);
        self.body.push(Inst::Guard { cond, expect, exit });
    }

    /// Ends the trace with an exit at `pc` of the anchor's function.
    fn end_with_exit(&mut self, pc: u32) -> Flow {
        let exit = self.exit_at(pc);
        self.end = Some(End::Exit(exit));
        Flow::Stop
    }

    /// The recording cannot continue inside an inlined call: cut the trace back to the
    /// outermost call site and end it there with an exit.
    fn cut_to_call_site(&mut self, pc: u32) -> Flow {
        let Some(site) = self.call_site.take() else {
            // A side trace that started inside the calls: they have no site in it, so it
            // ends here, inside them.
            return self.end_with_exit(pc);
        };
        self.body.truncate(site.body_len);
        self.next_value = site.next_value;
        self.next_exit = site.next_exit;
        self.value_types.truncate(site.value_types_len);
        for input in self.inputs.drain(site.inputs_len..) {
            self.input_ids.remove(&(input.source, input.ty));
        }
        self.slots = site.slots;
        self.globals = site.globals;
        self.inline.clear();
        self.cut_at_call = true;
        if site.state.is_some() {
            self.end_state = site.state;
        }
        self.end_with_exit(site.pc)
    }

    /// Stops the recording at the observed instruction: inside an inlined call that
    /// means cutting back to the call site.
    fn stop_here(&mut self, pc: u32) -> Flow {
        if self.depth() > 0 {
            self.cut_to_call_site(pc)
        } else {
            self.end_with_exit(pc)
        }
    }

    fn capture(&self, o: &Observed<'_>) -> CapturedState {
        CapturedState {
            slots: o.frame.to_vec(),
            globals: o
                .instance
                .globals
                .iter()
                .map(|&g| o.globals[g as usize].value)
                .collect(),
            memory: o.memory.map(<[u8]>::to_vec).unwrap_or_default(),
        }
    }

    /// Translates the instruction about to execute. Returns `Flow::Stop` when the trace
    /// ends (or is abandoned) before it.
    pub(crate) fn observe(&mut self, o: &Observed<'_>) -> Flow {
        let mut flow = self.translate(o);
        if flow == Flow::Continue && self.end.is_some() {
            // A translation that ended the trace must also stop the recording; if one
            // ever forgets, the trace is dropped rather than extended past its end.
            debug_assert!(false, "recording continued past the end of its trace");
            self.abort(AbortReason::Unsupported("recording continued past its end"));
            flow = Flow::Stop;
        }
        if flow == Flow::Continue {
            self.observed += 1;
        }
        if self.abort.is_some() {
            return Flow::Stop;
        }
        if flow == Flow::Stop {
            if self.config.capture_states && self.end_state.is_none() {
                self.end_state = Some(self.capture(o));
            }
            return Flow::Stop;
        }
        if self.body.len() > self.config.max_trace_insts {
            self.abort(AbortReason::TooLong);
            return Flow::Stop;
        }
        if let Some(site) = &self.call_site {
            if self.body.len() - site.body_len > MAX_INLINE_INSTS {
                return self.cut_to_call_site(o.pc);
            }
        }
        Flow::Continue
    }

    fn translate(&mut self, o: &Observed<'_>) -> Flow {
        use Instr as I;
        let pc = o.pc;
        if let Some(shape) = o.instr.num_shape() {
            return self.numeric(shape, o, pc);
        }
        let unsupported = |what| Some(AbortReason::Unsupported(what));
        let mut abort = None;
        match o.instr {
            I::LoopHeader { anchor } => {
                if self.depth() == 0 && anchor == self.anchor && pc == self.anchor_pc {
                    let state = self.frame_state(pc);
                    self.end = Some(End::Loop { state });
                    return Flow::Stop;
                }
                // Another loop: the trace ends where it starts (the inner loop is an
                // anchor of its own).
                return self.stop_here(pc);
            }
            I::Br { .. } => {}
            I::BrIfNez { cond, .. } | I::BrIfEqz { cond, .. } => {
                let nonzero = o.frame[cond as usize] as u32 != 0;
                let c = self.read(cond, Type::I32);
                self.guard(c, nonzero, pc);
            }
            I::BrTable { index, len } => {
                let i = o.frame[index as usize] as u32;
                let depth = self.depth();
                if let TraceStart::Exit {
                    pc: start,
                    selector,
                } = &mut self.start
                {
                    if *start == pc && self.observed == 0 && depth == 0 {
                        *selector = Some(Selector {
                            index_slot: index,
                            arms: len + 1,
                            arm: i.min(len),
                        });
                    }
                }
                let idx = self.read(index, Type::I32);
                let dst = self.new_value(Type::I32);
                let (op, bound) = if i < len {
                    (NumOp::I32Eq, i)
                } else {
                    (NumOp::I32GeU, len)
                };
                self.body.push(Inst::Num {
                    dst,
                    op,
                    args: vec![idx, Operand::Const(bound as u64)],
                });
                self.guard(Operand::Value(dst), true, pc);
            }
            I::Return => {
                if self.depth() == 0 {
                    return self.end_with_exit(pc);
                }
                self.inline.pop();
                if self.inline.is_empty() {
                    self.call_site = None;
                }
            }
            I::Unreachable => {} // traps next; the trap aborts the recording
            I::Call { func, base } => return self.call(o, func, base),
            I::CallIndirect { .. } => return self.stop_here(pc),
            I::Copy { dst, src } => {
                let sym = self.sym(src);
                self.set(dst, sym);
            }
            I::Const64 { dst, value } => self.set(dst, Sym::Const(value)),
            I::SelectElse { dst, b, cond } => {
                let (sa, sb) = (self.sym(dst), self.sym(b));
                // Slots are untyped; take the type a typed operand has, else move the
                // raw 64 bits.
                let ty = [sa, sb]
                    .iter()
                    .find_map(|s| match s {
                        Sym::Val(_, t) => Some(*t),
                        _ => None,
                    })
                    .unwrap_or(Type::I64);
                let c = self.read(cond, Type::I32);
                let a = self.operand(sa, ty);
                let b = self.operand(sb, ty);
                let v = self.new_value(ty);
                self.body.push(Inst::Select {
                    dst: v,
                    ty,
                    cond: c,
                    a,
                    b,
                });
                self.set(dst, Sym::Val(v, ty));
            }
            I::GlobalGet { dst, global } => {
                let sym = match self.globals.get(&global) {
                    Some(&sym) => sym,
                    None => match global_type(&o.instance.module, global) {
                        Some(ty) => Sym::Val(self.input(Source::Global(global), ty), ty),
                        None => {
                            self.abort(AbortReason::Unsupported("reference-typed global"));
                            return Flow::Stop;
                        }
                    },
                };
                self.set(dst, sym);
            }
            I::GlobalSet { global, src } => {
                let Some(ty) = global_type(&o.instance.module, global) else {
                    self.abort(AbortReason::Unsupported("reference-typed global"));
                    return Flow::Stop;
                };
                let value = self.read(src, ty);
                self.body.push(Inst::GlobalSet { global, value });
                let sym = match value {
                    Operand::Value(v) => Sym::Val(v, ty),
                    Operand::Const(c) => Sym::Const(c),
                };
                self.globals.insert(global, sym);
            }
            I::MemorySize { dst } => {
                let v = self.new_value(Type::I32);
                self.body.push(Inst::MemorySize { dst: v });
                self.set(dst, Sym::Val(v, Type::I32));
            }
            I::MemoryGrow { dst, delta } => {
                let delta = self.read(delta, Type::I32);
                let v = self.new_value(Type::I32);
                self.body.push(Inst::MemoryGrow { dst: v, delta });
                self.set(dst, Sym::Val(v, Type::I32));
            }
            I::I32Load { dst, addr, offset } => self.load(LoadKind::I32, dst, addr, offset),
            I::I64Load { dst, addr, offset } => self.load(LoadKind::I64, dst, addr, offset),
            I::F32Load { dst, addr, offset } => self.load(LoadKind::F32, dst, addr, offset),
            I::F64Load { dst, addr, offset } => self.load(LoadKind::F64, dst, addr, offset),
            I::I32Load8S { dst, addr, offset } => self.load(LoadKind::I32_8S, dst, addr, offset),
            I::I32Load8U { dst, addr, offset } => self.load(LoadKind::I32_8U, dst, addr, offset),
            I::I32Load16S { dst, addr, offset } => self.load(LoadKind::I32_16S, dst, addr, offset),
            I::I32Load16U { dst, addr, offset } => self.load(LoadKind::I32_16U, dst, addr, offset),
            I::I64Load8S { dst, addr, offset } => self.load(LoadKind::I64_8S, dst, addr, offset),
            I::I64Load8U { dst, addr, offset } => self.load(LoadKind::I64_8U, dst, addr, offset),
            I::I64Load16S { dst, addr, offset } => self.load(LoadKind::I64_16S, dst, addr, offset),
            I::I64Load16U { dst, addr, offset } => self.load(LoadKind::I64_16U, dst, addr, offset),
            I::I64Load32S { dst, addr, offset } => self.load(LoadKind::I64_32S, dst, addr, offset),
            I::I64Load32U { dst, addr, offset } => self.load(LoadKind::I64_32U, dst, addr, offset),
            I::I32Store { addr, val, offset } => self.store(StoreKind::I32, addr, val, offset),
            I::I64Store { addr, val, offset } => self.store(StoreKind::I64, addr, val, offset),
            I::F32Store { addr, val, offset } => self.store(StoreKind::F32, addr, val, offset),
            I::F64Store { addr, val, offset } => self.store(StoreKind::F64, addr, val, offset),
            I::I32Store8 { addr, val, offset } => self.store(StoreKind::I32_8, addr, val, offset),
            I::I32Store16 { addr, val, offset } => self.store(StoreKind::I32_16, addr, val, offset),
            I::I64Store8 { addr, val, offset } => self.store(StoreKind::I64_8, addr, val, offset),
            I::I64Store16 { addr, val, offset } => self.store(StoreKind::I64_16, addr, val, offset),
            I::I64Store32 { addr, val, offset } => self.store(StoreKind::I64_32, addr, val, offset),
            I::RefIsNull { .. } | I::RefFunc { .. } => abort = unsupported("reference instruction"),
            I::MemoryFill { .. } => abort = unsupported("memory.fill"),
            I::MemoryCopy { .. } => abort = unsupported("memory.copy"),
            I::MemoryInit { .. } | I::DataDrop { .. } => {
                abort = unsupported("passive data segment")
            }
            I::TableGet { .. }
            | I::TableSet { .. }
            | I::TableSize { .. }
            | I::TableGrow { .. }
            | I::TableFill { .. }
            | I::TableCopy { .. }
            | I::TableInit { .. }
            | I::ElemDrop { .. } => abort = unsupported("table instruction"),
            other => {
                debug_assert!(
                    false,
                    "num_shape covers every numeric instruction: {other:?}"
                );
                abort = unsupported("instruction");
            }
        }
        if let Some(reason) = abort {
            self.abort(reason);
            return Flow::Stop;
        }
        Flow::Continue
    }

    fn numeric(&mut self, shape: NumShape, o: &Observed<'_>, pc: u32) -> Flow {
        match shape {
            NumShape::Binary { op, dst, a, b } => {
                let (params, result) = (op.params(), op.result());
                let args = vec![self.read(a, params[0]), self.read(b, params[1])];
                let v = self.new_value(result);
                self.body.push(Inst::Num { dst: v, op, args });
                self.set(dst, Sym::Val(v, result));
            }
            NumShape::BinaryImm { op, dst, a, imm } => {
                let (params, result) = (op.params(), op.result());
                let c = imm_bits(imm, params[1]);
                let args = vec![self.read(a, params[0]), Operand::Const(c)];
                let v = self.new_value(result);
                self.body.push(Inst::Num { dst: v, op, args });
                self.set(dst, Sym::Val(v, result));
            }
            NumShape::Unary { op, dst, a } => {
                let (params, result) = (op.params(), op.result());
                let args = vec![self.read(a, params[0])];
                let v = self.new_value(result);
                self.body.push(Inst::Num { dst: v, op, args });
                self.set(dst, Sym::Val(v, result));
            }
            NumShape::BranchCmp { op, a, b, .. } => {
                let taken = compare_i32(op, o.frame[a as usize] as u32, o.frame[b as usize] as u32);
                let args = vec![self.read(a, Type::I32), self.read(b, Type::I32)];
                let v = self.new_value(Type::I32);
                self.body.push(Inst::Num { dst: v, op, args });
                self.guard(Operand::Value(v), taken, pc);
            }
            NumShape::BranchCmpImm { op, a, imm, .. } => {
                let taken = compare_i32(op, o.frame[a as usize] as u32, imm as u32);
                let args = vec![self.read(a, Type::I32), Operand::Const(imm as u32 as u64)];
                let v = self.new_value(Type::I32);
                self.body.push(Inst::Num { dst: v, op, args });
                self.guard(Operand::Value(v), taken, pc);
            }
        }
        Flow::Continue
    }

    fn load(&mut self, kind: LoadKind, dst: Slot, addr: Slot, offset: u32) {
        let addr = self.read(addr, Type::I32);
        let ty = kind.result();
        let v = self.new_value(ty);
        self.body.push(Inst::Load {
            dst: v,
            kind,
            offset,
            addr,
        });
        self.set(dst, Sym::Val(v, ty));
    }

    fn store(&mut self, kind: StoreKind, addr: Slot, val: Slot, offset: u32) {
        let addr = self.read(addr, Type::I32);
        let value = self.read(val, kind.operand());
        self.body.push(Inst::Store {
            kind,
            offset,
            addr,
            value,
        });
    }

    fn call(&mut self, o: &Observed<'_>, func: u32, base: Slot) -> Flow {
        let addr = o.instance.funcs[func as usize];
        let callee = match &o.funcs[addr as usize].kind {
            FuncKind::Wasm { instance, code } if o.instance_id() == *instance => code.clone(),
            FuncKind::Wasm { .. } => {
                self.abort(AbortReason::ForeignCall);
                return Flow::Stop;
            }
            // Host calls are effects the trace cannot express: end before them.
            FuncKind::Host(_) => return self.stop_here(o.pc),
        };
        if self.depth() >= MAX_INLINE_DEPTH {
            return self.cut_to_call_site(o.pc);
        }
        if self.depth() == 0 {
            self.call_site = Some(CallSite {
                pc: o.pc,
                body_len: self.body.len(),
                next_value: self.next_value,
                next_exit: self.next_exit,
                inputs_len: self.inputs.len(),
                slots: self.slots.clone(),
                globals: self.globals.clone(),
                value_types_len: self.value_types.len(),
                state: self.config.capture_states.then(|| self.capture(o)),
            });
        }
        let callee_base = self.abs(base);
        let body_start = o.instance.module.anchors[callee.entry_anchor as usize].offset;
        self.inline.push(InlineFrame {
            call: InlinedCall {
                func,
                base: callee_base,
                return_pc: o.pc + 1,
            },
            code: callee.clone(),
            body_start,
        });
        // The interpreter zeroes the callee's non-parameter locals on entry and writes
        // its constants.
        for local in callee.num_params..callee.num_locals {
            self.set(local, Sym::Const(0));
        }
        self.set_consts(&callee);
        Flow::Continue
    }
}

impl Observed<'_> {
    fn instance_id(&self) -> u32 {
        self.instance.id
    }
}

/// The type of a numeric global, or `None` for a reference-typed one.
fn global_type(module: &ModuleInner, global: u32) -> Option<Type> {
    match module.globals[global as usize].ty {
        ValType::I32 => Some(Type::I32),
        ValType::I64 => Some(Type::I64),
        ValType::F32 => Some(Type::F32),
        ValType::F64 => Some(Type::F64),
        ValType::FuncRef | ValType::ExternRef => None,
    }
}

/// An immediate as the constant bits of an operand of type `ty` (sign-extended to i64).
fn imm_bits(imm: i32, ty: Type) -> u64 {
    match ty {
        Type::I64 => imm as i64 as u64,
        _ => imm as u32 as u64,
    }
}

/// Evaluates one of the i32 comparisons a fused branch tests.
fn compare_i32(op: NumOp, a: u32, b: u32) -> bool {
    let (sa, sb) = (a as i32, b as i32);
    match op {
        NumOp::I32Eq => a == b,
        NumOp::I32Ne => a != b,
        NumOp::I32LtS => sa < sb,
        NumOp::I32LtU => a < b,
        NumOp::I32GtS => sa > sb,
        NumOp::I32GtU => a > b,
        NumOp::I32LeS => sa <= sb,
        NumOp::I32LeU => a <= b,
        NumOp::I32GeS => sa >= sb,
        NumOp::I32GeU => a >= b,
        other => unreachable!("fused branches test i32 comparisons, not {other:?}"),
    }
}
