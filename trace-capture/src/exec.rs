//! The interpreter loop: runs the register code of `code.rs`.
//!
//! One loop runs all wasm frames; a wasm call pushes a saved frame on a heap vector
//! rather than recursing in Rust, so guest recursion depth is bounded by
//! [`StackLimits`](crate::StackLimits), never by kiln's native stack.
//!
//! Every value is a 64-bit slot. Invariants the lowering and this loop keep: an i32 or f32
//! slot has its upper 32 bits zero (so reinterpretations and `i64.extend_i32_u` read it
//! correctly); a reference slot is 0 for null and address + 1 otherwise.

use std::sync::Arc;

use ir::num::{self, NumTrap};

use crate::code::{CompiledFunc, Instr};
use crate::record::{CapturedState, Flow, Observed, Recorder, MAX_ABORTS};
use crate::store::{AnchorCounter, Caller, FuncKind, Store, MAX_TABLE_ELEMENTS};
use crate::tier::{CodeView, GlobalsMut, TierExit, TraceEntry};
use crate::trap::{FrameInfo, Trap, TrapKind};
use crate::types::InstanceId;
use crate::types::{FuncAddr, Value};

/// The interpreter's state between two runs of its loop.
struct ExecState {
    /// The callers of the current frame.
    frames: Vec<SavedFrame>,
    /// The current function. A raw pointer, as in `SavedFrame`.
    code: *const CompiledFunc,
    pc: usize,
    base: usize,
    inst: u32,
}

/// Why the interpreter loop stopped.
enum Break {
    /// The outermost frame returned.
    Returned,
    /// A loop anchor reached its counter's limit (to be recorded, or it has trace code
    /// attached); `pc` is just past its header.
    Anchor { anchor: u32 },
    /// The recorder has its trace (or gave up); `pc` is the instruction it stopped at.
    Recorded,
}

/// Where a tier asked for a side trace (`TierExit::Record`, `TierExit::RecordInCalls`):
/// `pc` inside `calls` (outermost first, bases from the anchor's frame), of which the
/// first `trace_from` are not the trace's (calls trace code made itself).
struct SideAt {
    pc: u32,
    calls: Vec<ir::InlinedCall>,
    trace_from: usize,
}

/// A caller's state, saved while its callee runs.
struct SavedFrame {
    /// The caller's code. Every `CompiledFunc` is owned by an `Arc` in the store's
    /// function table, which only grows while the store lives, so the pointer stays
    /// valid; not cloning the `Arc` keeps atomic reference counting off the call path.
    code: *const CompiledFunc,
    /// Where to continue: the instruction after the call.
    pc: usize,
    base: usize,
    instance: u32,
}

impl From<NumTrap> for TrapKind {
    fn from(t: NumTrap) -> TrapKind {
        match t {
            NumTrap::IntegerDivideByZero => TrapKind::IntegerDivideByZero,
            NumTrap::IntegerOverflow => TrapKind::IntegerOverflow,
            NumTrap::InvalidConversionToInteger => TrapKind::InvalidConversionToInteger,
        }
    }
}

#[inline(always)]
fn f32_of(s: u64) -> f32 {
    f32::from_bits(s as u32)
}
#[inline(always)]
fn f64_of(s: u64) -> f64 {
    f64::from_bits(s)
}
#[inline(always)]
fn of_f32(f: f32) -> u64 {
    f.to_bits() as u64
}
#[inline(always)]
fn of_f64(f: f64) -> u64 {
    f.to_bits()
}
#[inline(always)]
fn of_i32(i: i32) -> u64 {
    i as u32 as u64
}
#[inline(always)]
fn of_u32(i: u32) -> u64 {
    i as u64
}

/// A new frame's initial slots (`CompiledFunc::frame_init`) up to this many are written
/// one by one: most functions have a few locals and constants, and for those a call to
/// `memset` and `memcpy` cost more than the writes (6.4% of a run of
/// `examples/fib_calls.wasm` under `perf`, with both calls).
const INLINE_FRAME_INIT_SLOTS: usize = 8;

/// Writes `init` to the `init.len()` slots at `dst`.
///
/// # Safety
/// `dst` must be valid for `init.len()` writes of u64 that no live reference aliases.
#[inline(always)]
unsafe fn init_frame(dst: *mut u64, init: &[u64]) {
    if init.len() <= INLINE_FRAME_INIT_SLOTS {
        // A loop LLVM would turn back into `memcpy`; fixed-size arms stay moves.
        macro_rules! first {
            ($n:literal) => {
                // SAFETY: the caller's, and `init` has `$n` elements.
                unsafe {
                    dst.cast::<[u64; $n]>()
                        .write_unaligned(init.as_ptr().cast::<[u64; $n]>().read_unaligned())
                }
            };
        }
        match init.len() {
            0 => {}
            1 => first!(1),
            2 => first!(2),
            3 => first!(3),
            4 => first!(4),
            5 => first!(5),
            6 => first!(6),
            7 => first!(7),
            _ => first!(8),
        }
    } else {
        // SAFETY: the caller's.
        unsafe { std::ptr::copy_nonoverlapping(init.as_ptr(), dst, init.len()) };
    }
}

/// Whether `[start, start + len)` lies within `size`, without overflow.
#[inline(always)]
fn in_bounds(start: u64, len: u64, size: usize) -> bool {
    start + len <= size as u64
}

impl Store {
    /// Calls a function with arguments and returns its results.
    pub fn invoke(&mut self, func: FuncAddr, args: &[Value]) -> Result<Vec<Value>, Trap> {
        let ty = self.func_type(func).clone();
        if args.len() != ty.params.len() || args.iter().zip(&ty.params).any(|(a, t)| a.ty() != *t) {
            let given: Vec<String> = args.iter().map(|a| a.ty().to_string()).collect();
            return Err(Trap::new(TrapKind::Host(format!(
                "function of type {ty} called with arguments [{}]",
                given.join(" ")
            ))));
        }
        match &self.funcs[func.0 as usize].kind {
            FuncKind::Host(host) => {
                let host = host.clone();
                let mut caller = Caller {
                    store: self,
                    instance: None,
                };
                let mut f = host.borrow_mut();
                (*f)(&mut caller, args)
            }
            FuncKind::Wasm { instance, code } => {
                let (instance, code) = (*instance, code.clone());
                let mut stack = std::mem::take(&mut self.stack);
                for (slot, arg) in stack.iter_mut().zip(args) {
                    *slot = arg.to_slot();
                }
                let result = self.run(&mut stack, code, instance);
                let results = ty
                    .results
                    .iter()
                    .zip(stack.iter())
                    .map(|(t, s)| Value::from_slot(*s, *t))
                    .collect();
                self.stack = stack;
                result.map(|()| results)
            }
        }
    }

    /// Memory `mem` (a store address, `usize::MAX` for none) as pointer and length.
    fn memory_view(&mut self, mem: usize) -> (*mut u8, u64) {
        match self.memories.get_mut(mem) {
            Some(m) => (m.data.as_mut_ptr(), m.data.len() as u64),
            None => (std::ptr::null_mut(), 0),
        }
    }

    fn backtrace(
        &self,
        frames: &[SavedFrame],
        code: &CompiledFunc,
        pc: usize,
        inst: u32,
    ) -> Vec<FrameInfo> {
        let frame_info = |code: &CompiledFunc, pc: usize, inst: u32| FrameInfo {
            func_index: code.func_index,
            func_name: self.instances[inst as usize]
                .module
                .func_names
                .get(&code.func_index)
                .cloned(),
            offset: code.offsets.get(pc.wrapping_sub(1)).copied().unwrap_or(0),
        };
        let mut trace = vec![frame_info(code, pc, inst)];
        for f in frames.iter().rev() {
            // SAFETY: see `SavedFrame::code`.
            trace.push(frame_info(unsafe { &*f.code }, f.pc, f.instance));
        }
        trace
    }

    /// Runs wasm function `code` of `instance` with its arguments in `stack[0..]`; leaves
    /// its results in `stack[0..]`.
    ///
    /// Alternates between the plain loop and, while a trace is being recorded, the same
    /// loop with the recorder's hook compiled in.
    fn run(
        &mut self,
        stack: &mut [u64],
        code: Arc<CompiledFunc>,
        instance: u32,
    ) -> Result<(), Trap> {
        if code.frame_size as usize > stack.len() {
            return Err(TrapKind::CallStackExhausted.into());
        }
        stack[code.num_params as usize..code.num_locals as usize].fill(0);
        let consts = code.const_base as usize;
        stack[consts..consts + code.consts.len()].copy_from_slice(&code.consts);
        self.instances[instance as usize].anchors[code.entry_anchor as usize].hits += 1;
        let mut st = ExecState {
            frames: Vec::new(),
            code: Arc::as_ptr(&code),
            pc: 0,
            base: 0,
            inst: instance,
        };
        loop {
            let plain = if self.count_dispatches {
                self.run_loop::<false, true>(stack, &mut st, None)
            } else {
                self.run_loop::<false, false>(stack, &mut st, None)
            };
            match plain? {
                Break::Returned => return Ok(()),
                Break::Anchor { anchor }
                    if self.instances[st.inst as usize].anchors[anchor as usize].attached =>
                {
                    let Some(side) = self.enter_tier(stack, &mut st, anchor)? else {
                        continue;
                    };
                    let Some((mut recorder, calls)) = self.start_side_recording(stack, &st, &side)
                    else {
                        continue;
                    };
                    let result = self.run_loop::<true, false>(stack, &mut st, Some(&mut recorder));
                    if result.is_err() {
                        recorder.trapped();
                    }
                    self.finish_side_recording(recorder, &st, side.pc, &calls);
                    match result? {
                        Break::Returned => return Ok(()),
                        Break::Anchor { .. } | Break::Recorded => {}
                    }
                }
                Break::Anchor { anchor } => {
                    let mut recorder = self.start_recording(stack, &st, anchor);
                    let result = self.run_loop::<true, false>(stack, &mut st, Some(&mut recorder));
                    if result.is_err() {
                        recorder.trapped();
                    }
                    self.finish_recording(recorder, st.inst, anchor);
                    match result? {
                        Break::Returned => return Ok(()),
                        Break::Anchor { .. } | Break::Recorded => {}
                    }
                }
                Break::Recorded => unreachable!("only the recording loop stops for the recorder"),
            }
        }
    }

    /// Hands the attached anchor `anchor` (whose header the loop just passed) to the
    /// tier, and sets `st` to where the interpreter goes on. Returns the pc (and the
    /// inlined calls it is inside, if any) to record a side trace from, if the tier asked
    /// for one there.
    fn enter_tier(
        &mut self,
        stack: &mut [u64],
        st: &mut ExecState,
        anchor: u32,
    ) -> Result<Option<SideAt>, Trap> {
        let Some(mut tier) = self.tier.take() else {
            // No tier installed: the anchor is only interpreted from now on.
            let counter = &mut self.instances[st.inst as usize].anchors[anchor as usize];
            counter.attached = false;
            counter.record_at = u64::MAX;
            return Ok(None);
        };
        // SAFETY: see `SavedFrame::code`.
        let code = unsafe { &*st.code };
        let anchor_pc = st.pc as u32 - 1;
        let instance = &self.instances[st.inst as usize];
        let info = instance.module.anchors[anchor as usize];
        let memory = instance.memories.first().map(|&m| m as usize);
        let (memory, memory_max) = match memory {
            Some(m) => {
                let mem = &mut self.memories[m];
                (Some(&mut mem.data), mem.max)
            }
            None => (None, None),
        };
        let entry = TraceEntry {
            instance: InstanceId(st.inst),
            anchor,
            func_index: info.func_index,
            anchor_offset: info.offset,
            anchor_pc,
            code_len: code.code.len() as u32,
            frame: &mut stack[st.base..],
            stack_index: st.base,
            frame_size: code.frame_size,
            call_room: self.limits.max_call_depth.saturating_sub(st.frames.len()),
            globals: GlobalsMut {
                addrs: &instance.globals,
                values: &mut self.globals,
            },
            memory,
            memory_max,
            code: CodeView {
                code,
                instance: st.inst,
                instance_funcs: &instance.funcs,
                funcs: &self.funcs,
            },
        };
        let result = tier.run(entry);
        self.tier = Some(tier);
        match result {
            Ok(TierExit::Resume { pc }) if (pc as usize) < code.code.len() => {
                st.pc = pc as usize;
                Ok(None)
            }
            Ok(TierExit::Record { pc }) if (pc as usize) < code.code.len() => {
                st.pc = pc as usize;
                Ok(Some(SideAt {
                    pc,
                    calls: Vec::new(),
                    trace_from: 0,
                }))
            }
            Ok(TierExit::Resume { pc } | TierExit::Record { pc }) => panic!(
                "a tier resumed at pc {pc}, outside function {} ({} instructions): \
                 tiers must check every exit pc before they attach code",
                code.func_index,
                code.code.len()
            ),
            Ok(TierExit::ResumeInCalls { pc, calls }) => {
                self.enter_inlined_calls(stack, st, &calls, pc);
                Ok(None)
            }
            Ok(TierExit::RecordInCalls {
                pc,
                calls,
                trace_from,
            }) => {
                assert!(
                    trace_from as usize <= calls.len(),
                    "a tier asked for a side trace from call {trace_from} of {}",
                    calls.len()
                );
                self.enter_inlined_calls(stack, st, &calls, pc);
                Ok(Some(SideAt {
                    pc,
                    calls: calls.to_vec(),
                    trace_from: trace_from as usize,
                }))
            }
            Ok(TierExit::Declined) => Ok(None),
            Ok(TierExit::Interpret { passes }) => {
                // The anchor's counter stops the loop again once it has counted them.
                let counter = &mut self.instances[st.inst as usize].anchors[anchor as usize];
                counter.record_at = counter.hits + u64::from(passes);
                Ok(None)
            }
            Ok(TierExit::Detach) => {
                let counter = &mut self.instances[st.inst as usize].anchors[anchor as usize];
                counter.attached = false;
                counter.record_at = u64::MAX;
                Ok(None)
            }
            Err(kind) => Err(Trap {
                kind,
                backtrace: self.backtrace(&st.frames, code, st.pc, st.inst),
            }),
        }
    }

    /// Sets `st` up inside `calls` (outermost first) at `pc` of the innermost callee, as
    /// if the interpreter had made the calls itself: a saved frame per caller, the
    /// callees' constants written. The tier wrote every other slot the callees have live.
    fn enter_inlined_calls(
        &mut self,
        stack: &mut [u64],
        st: &mut ExecState,
        calls: &[ir::InlinedCall],
        pc: u32,
    ) {
        // SAFETY: see `SavedFrame::code`.
        let code = unsafe { &*st.code };
        let instance = &self.instances[st.inst as usize];
        let view = CodeView {
            code,
            instance: st.inst,
            instance_funcs: &instance.funcs,
            funcs: &self.funcs,
        };
        let callees: Vec<Arc<CompiledFunc>> = match view.callees(calls, pc) {
            Ok(callees) => callees.into_iter().cloned().collect(),
            Err(why) => panic!(
                "a tier resumed inside calls the code does not make ({why}): \
                 tiers must check every exit before they attach code"
            ),
        };
        let anchor_base = st.base;
        let count = calls.len();
        for (i, (call, callee)) in calls.iter().zip(callees).enumerate() {
            let base = anchor_base + call.base as usize;
            let consts = base + callee.const_base as usize;
            assert!(
                base + callee.frame_size as usize <= stack.len(),
                "a tier resumed inside a call whose frame does not fit the stack"
            );
            if i + 1 == count && pc == 0 && !matches!(callee.code[0], Instr::LoopHeader { .. }) {
                // Nothing of the callee has run (pc 0 is reached again only as a loop
                // header): its frame is what the call sets up over the arguments (a tier
                // that makes calls itself writes only those).
                let init = base + callee.num_params as usize;
                stack[init..init + callee.frame_init.len()].copy_from_slice(&callee.frame_init);
            }
            stack[consts..consts + callee.consts.len()].copy_from_slice(&callee.consts);
            st.frames.push(SavedFrame {
                code: st.code,
                pc: call.return_pc as usize,
                base: st.base,
                instance: st.inst,
            });
            st.code = Arc::as_ptr(&callee);
            st.base = base;
            self.instances[st.inst as usize].anchors[callee.entry_anchor as usize].hits += 1;
        }
        st.pc = pc as usize;
    }

    fn start_recording(&mut self, stack: &[u64], st: &ExecState, anchor: u32) -> Recorder {
        // SAFETY: see `SavedFrame::code`.
        let code = unsafe { &*st.code };
        let recording = self
            .recording
            .as_mut()
            .expect("recording is on when an anchor triggers");
        let instance = &self.instances[st.inst as usize];
        let counter = instance.anchors[anchor as usize];
        if counter.aborts == 0 {
            recording.stats.hot_anchors += 1;
        }
        // The loop loop just counted its header; the trace starts there.
        let anchor_pc = st.pc as u32 - 1;
        let module = &instance.module;
        let body_start = module.anchors[code.entry_anchor as usize].offset;
        let mut recorder = Recorder::new(
            recording.config.clone(),
            code,
            anchor,
            anchor_pc,
            module.anchors[anchor as usize].offset,
            counter.hits,
            body_start,
        );
        if recorder.wants_states() {
            recorder.set_entry_state(self.captured_state(stack, st));
        }
        recorder
    }

    /// The current frame, the instance's globals and its memory, as a recording with
    /// `RecordConfig::capture_states` keeps them.
    fn captured_state(&self, stack: &[u64], st: &ExecState) -> CapturedState {
        // SAFETY: see `SavedFrame::code`.
        let code = unsafe { &*st.code };
        let instance = &self.instances[st.inst as usize];
        CapturedState {
            slots: stack[st.base..st.base + code.frame_size as usize].to_vec(),
            globals: instance
                .globals
                .iter()
                .map(|&g| self.globals[g as usize].value)
                .collect(),
            memory: instance
                .memories
                .first()
                .map(|&m| self.memories[m as usize].data.to_vec())
                .unwrap_or_default(),
        }
    }

    /// A recorder for a side trace where the tier asked (`st` already set up inside
    /// `side.calls`), with the calls the trace is inside (those after `side.trace_from`,
    /// their bases numbered from the frame the trace belongs to); `None` (and the tier
    /// told) where none can be recorded: recording is off, or the pc is a loop header,
    /// whose own counter decides when it is recorded. The trace belongs to the function
    /// whose frame the first of its calls is made from, as the trace whose exit it
    /// continues does.
    fn start_side_recording(
        &mut self,
        stack: &[u64],
        st: &ExecState,
        side: &SideAt,
    ) -> Option<(Recorder, Vec<ir::InlinedCall>)> {
        // SAFETY: see `SavedFrame::code`.
        let current = unsafe { &*st.code };
        let pc = side.pc;
        let at_header = matches!(current.code[pc as usize], Instr::LoopHeader { .. });
        // The calls the trace is inside, numbered from its own function's frame.
        let (made, inlined) = side.calls.split_at(side.trace_from);
        let origin = made.last().map_or(0, |call| call.base);
        let calls: Vec<ir::InlinedCall> = inlined
            .iter()
            .map(|call| ir::InlinedCall {
                base: call.base - origin,
                ..*call
            })
            .collect();
        let outer = match calls.len() {
            0 => st.code,
            n => st.frames[st.frames.len() - n].code,
        };
        // SAFETY: see `SavedFrame::code`.
        let outer = unsafe { &*outer };
        match self.recording.as_mut() {
            Some(recording) if !at_header => {
                let module = &self.instances[st.inst as usize].module;
                let body_start =
                    |code: &CompiledFunc| module.anchors[code.entry_anchor as usize].offset;
                // The callees' code, as `enter_inlined_calls` found it.
                let frames: Vec<(ir::InlinedCall, Arc<CompiledFunc>, u32)> = calls
                    .iter()
                    .map(|&call| {
                        let addr = self.instances[st.inst as usize].funcs[call.func as usize];
                        let FuncKind::Wasm { code, .. } = &self.funcs[addr as usize].kind else {
                            unreachable!("enter_inlined_calls checked the callees");
                        };
                        (call, Arc::clone(code), body_start(code))
                    })
                    .collect();
                // At pc 0 of a call trace code made, the frame is fresh: its locals
                // are zeros the trace need not read.
                let entry = pc == 0 && calls.is_empty() && side.trace_from > 0;
                let mut recorder = Recorder::side(
                    recording.config.clone(),
                    outer,
                    pc,
                    body_start(outer),
                    &frames,
                    entry,
                );
                // In its own frame, a side trace starts from the current state (inside
                // inlined calls the trace's frame is a caller's, which is not captured).
                if recorder.wants_states() && calls.is_empty() {
                    recorder.set_entry_state(self.captured_state(stack, st));
                }
                Some((recorder, calls))
            }
            _ => {
                if let Some(tier) = self.tier.as_mut() {
                    tier.side_recorded(InstanceId(st.inst), outer.func_index, pc, &calls, None);
                }
                None
            }
        }
    }

    fn finish_side_recording(
        &mut self,
        recorder: Recorder,
        st: &ExecState,
        pc: u32,
        calls: &[ir::InlinedCall],
    ) {
        let recording = self.recording.as_mut().expect("recording is on");
        let (func_index, inst) = (recorder.func_index(), st.inst);
        let trace = match recorder.finish() {
            Ok((trace, cut_at_call)) => {
                recording.stats.side_traces += 1;
                recording.stats.cut_at_call += cut_at_call as u64;
                Some(trace)
            }
            Err(_) => {
                recording.stats.side_aborts += 1;
                None
            }
        };
        if let Some(tier) = self.tier.as_mut() {
            tier.side_recorded(InstanceId(inst), func_index, pc, calls, trace.as_ref());
        }
    }

    fn finish_recording(&mut self, recorder: Recorder, inst: u32, anchor: u32) {
        let recording = self.recording.as_mut().expect("recording is on");
        let counter = &mut self.instances[inst as usize].anchors[anchor as usize];
        match recorder.finish() {
            Ok((trace, cut_at_call)) => {
                recording.stats.traces += 1;
                recording.stats.trace_insts += trace.trace.body.len() as u64;
                recording.stats.cut_at_call += cut_at_call as u64;
                // One trace per anchor: the anchor is done, unless a live tier takes it.
                counter.record_at = u64::MAX;
                if let Some(tier) = self.tier.as_mut() {
                    if tier.recorded(InstanceId(inst), anchor, &trace) {
                        counter.attached = true;
                        counter.record_at = 0;
                    }
                }
                recording.traces.push(trace);
            }
            Err(reason) => {
                *recording.stats.aborts.entry(reason).or_default() += 1;
                counter.aborts += 1;
                counter.record_at = if counter.aborts >= MAX_ABORTS {
                    recording.stats.blacklisted += 1;
                    u64::MAX
                } else {
                    // Back off: wait twice as long after each failure.
                    counter.hits + (recording.config.hot_threshold << counter.aborts)
                };
            }
        }
    }

    /// The interpreter loop proper, resumable: runs from `st` until the outermost frame
    /// returns, or (plain loop) an anchor asks to be recorded, or (recording loop,
    /// `RECORD`) the recorder has its trace. State is written back to `st` on a break.
    /// With `COUNT` it counts every instruction it dispatches (for the benchmarks'
    /// coverage figures; never on in a normal run).
    fn run_loop<const RECORD: bool, const COUNT: bool>(
        &mut self,
        stack: &mut [u64],
        st: &mut ExecState,
        mut recorder: Option<&mut Recorder>,
    ) -> Result<Break, Trap> {
        let frames = &mut st.frames;
        let mut code: *const CompiledFunc = st.code;
        macro_rules! cf {
            () => {
                // SAFETY: see `SavedFrame::code`.
                unsafe { &*code }
            };
        }
        let mut inst = st.inst;
        // `pc` is kept as a pointer to the next instruction (`ip`); `pc()` recovers the
        // index where one is needed. `base` likewise is `fp - stack_ptr`.
        let mut code_start: *const Instr = cf!().code.as_ptr();
        let mut mem = self.instances[inst as usize]
            .memories
            .first()
            .map_or(usize::MAX, |&m| m as usize);
        // Memory 0 of the current instance as a raw pointer and length, so loads and
        // stores skip the store's tables. Refreshed after anything that may grow the
        // memory or switch instances (calls, returns, `memory.grow`) and after every
        // access through the store, which invalidates derived pointers.
        let (mut mem_base, mut mem_len) = self.memory_view(mem);
        // The current instance's anchor counters, for the loop headers. Refreshed with
        // the memory view (same triggers).
        let mut anchors: *mut AnchorCounter = self.instances[inst as usize].anchors.as_mut_ptr();
        macro_rules! refresh_mem {
            () => {{
                (mem_base, mem_len) = self.memory_view(mem);
                anchors = self.instances[inst as usize].anchors.as_mut_ptr();
            }};
        }

        // The frame and the code are accessed through raw pointers without bounds checks.
        // SAFETY: `CompiledFunc::check` (run on every function at load) guarantees that
        // every slot an instruction names is below the function's `frame_size`, that
        // every jump lands inside the code and that control cannot fall off its end; and
        // a frame is only entered after checking `base + frame_size <= stack_len`. The
        // stack slice is not touched by any other path while this loop holds these
        // pointers, and `code` (an `Arc`) keeps the instructions alive while `ip` points
        // at them.
        let stack_len = stack.len();
        let stack_ptr: *mut u64 = stack.as_mut_ptr();
        // SAFETY: `st.base` is the start of a frame that was checked when entered, and
        // `st.pc` is inside its code.
        let mut fp: *mut u64 = unsafe { stack_ptr.add(st.base) };
        let mut ip: *const Instr = unsafe { code_start.add(st.pc) };

        macro_rules! pc {
            () => {
                // SAFETY: `ip` points into (or one past a branch of) the current code.
                unsafe { ip.offset_from(code_start) as usize }
            };
        }
        macro_rules! base {
            () => {
                // SAFETY: `fp` points into the stack.
                unsafe { fp.offset_from(stack_ptr) as usize }
            };
        }
        macro_rules! jump {
            ($target:expr) => {
                // SAFETY: `CompiledFunc::check` keeps every jump target inside the code.
                ip = unsafe { code_start.add($target as usize) }
            };
        }

        macro_rules! r {
            ($s:expr) => {
                unsafe { *fp.add($s as usize) }
            };
        }
        macro_rules! w {
            ($s:expr, $v:expr) => {{
                let v = $v;
                unsafe { *fp.add($s as usize) = v }
            }};
        }
        macro_rules! suspend {
            ($why:expr) => {{
                st.pc = pc!();
                st.base = base!();
                st.code = code;
                st.inst = inst;
                return Ok($why);
            }};
        }
        macro_rules! trap {
            ($kind:expr) => {{
                let kind: TrapKind = $kind.into();
                return Err(Trap {
                    kind,
                    backtrace: self.backtrace(frames, cf!(), pc!(), inst),
                });
            }};
        }
        macro_rules! bin {
            ($dst:ident, $a:ident, $b:ident, $from:ident, $to:ident, |$x:ident, $y:ident| $e:expr) => {{
                let $x = $from(r!($a));
                let $y = $from(r!($b));
                w!($dst, $to($e));
            }};
        }
        macro_rules! un {
            ($dst:ident, $a:ident, $from:ident, $to:ident, |$x:ident| $e:expr) => {{
                let $x = $from(r!($a));
                w!($dst, $to($e));
            }};
        }
        macro_rules! br_if {
            ($target:ident, $cond:expr) => {
                if $cond {
                    jump!($target);
                }
            };
        }
        macro_rules! fallible {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(t) => trap!(TrapKind::from(t)),
                }
            };
        }
        macro_rules! load {
            ($dst:ident, $addr:ident, $offset:ident, $n:literal, |$bytes:ident| $e:expr) => {{
                let ea = r!($addr) as u32 as u64 + $offset as u64;
                if ea + $n > mem_len {
                    trap!(TrapKind::MemoryOutOfBounds);
                }
                let mut $bytes = [0u8; $n];
                // SAFETY: `ea + n <= mem_len`, the length of the memory `mem_base`
                // points at (refreshed whenever the memory may have moved).
                unsafe {
                    std::ptr::copy_nonoverlapping(mem_base.add(ea as usize), $bytes.as_mut_ptr(), $n)
                };
                w!($dst, $e);
            }};
        }
        macro_rules! store {
            ($addr:ident, $val:ident, $offset:ident, $n:literal, $to_bytes:expr) => {{
                let ea = r!($addr) as u32 as u64 + $offset as u64;
                let bytes: [u8; $n] = $to_bytes(r!($val));
                if ea + $n > mem_len {
                    trap!(TrapKind::MemoryOutOfBounds);
                }
                // SAFETY: as for loads.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), mem_base.add(ea as usize), $n)
                };
            }};
        }
        // Enters the function at store address `$addr` with its window at `$window`.
        macro_rules! call {
            ($addr:expr, $window:expr) => {{
                let addr = $addr as usize;
                let window = $window as usize;
                match &self.funcs[addr].kind {
                    FuncKind::Wasm {
                        instance: callee_inst,
                        code: callee,
                    } => {
                        let callee: *const CompiledFunc = Arc::as_ptr(callee);
                        // SAFETY: see `SavedFrame::code`.
                        let callee_ref = unsafe { &*callee };
                        let callee_inst = *callee_inst;
                        let new_base = base!() + window;
                        if frames.len() >= self.limits.max_call_depth
                            || new_base + callee_ref.frame_size as usize > stack_len
                        {
                            trap!(TrapKind::CallStackExhausted);
                        }
                        // SAFETY: the slots lie in the callee's frame, checked above
                        // (`CompiledFunc::check` puts `frame_init` inside the frame).
                        unsafe {
                            init_frame(
                                stack_ptr.add(new_base + callee_ref.num_params as usize),
                                &callee_ref.frame_init,
                            );
                        }
                        let caller = std::mem::replace(&mut code, callee);
                        frames.push(SavedFrame {
                            code: caller,
                            pc: pc!(),
                            base: base!(),
                            instance: inst,
                        });
                        // SAFETY: `new_base + frame_size <= stack_len`, checked above.
                        fp = unsafe { stack_ptr.add(new_base) };
                        code_start = callee_ref.code.as_ptr();
                        ip = code_start;
                        // The memory view and anchor table are the loop's, kept current
                        // through `memory.grow` and host calls: only another instance's
                        // differ.
                        if callee_inst != inst {
                            inst = callee_inst;
                            mem = self.instances[inst as usize]
                                .memories
                                .first()
                                .map_or(usize::MAX, |&m| m as usize);
                            refresh_mem!();
                        }
                        // SAFETY: `CompiledFunc::check` keeps the entry anchor below the
                        // module's anchor count, as for loop headers.
                        unsafe { (*anchors.add(callee_ref.entry_anchor as usize)).hits += 1 };
                    }
                    FuncKind::Host(host) => {
                        let host = host.clone();
                        let ty = self.types.get(self.funcs[addr].type_id).clone();
                        let args: Vec<Value> = ty
                            .params
                            .iter()
                            .enumerate()
                            .map(|(i, t)| Value::from_slot(r!(window + i), *t))
                            .collect();
                        let result = {
                            let mut caller = Caller {
                                store: self,
                                instance: Some(inst),
                            };
                            let mut f = host.borrow_mut();
                            (*f)(&mut caller, &args)
                        };
                        refresh_mem!();
                        match result {
                            Ok(results) => {
                                for (i, v) in results.iter().enumerate() {
                                    w!(window + i, v.to_slot());
                                }
                            }
                            Err(t) => trap!(t.kind),
                        }
                    }
                }
            }};
        }

        loop {
            // SAFETY: `ip` is inside the code; see above.
            let instr = unsafe { *ip };
            if COUNT {
                self.dispatched += 1;
            }
            if RECORD {
                if let Some(recorder) = recorder.as_deref_mut() {
                    // SAFETY: the current frame lies in the stack; see above.
                    let frame_size = cf!().frame_size as usize;
                    let frame = unsafe { std::slice::from_raw_parts(fp, frame_size) };
                    let observed = Observed {
                        instr,
                        pc: pc!() as u32,
                        frame,
                        instance: &self.instances[inst as usize],
                        funcs: &self.funcs,
                        globals: &self.globals,
                        memory: self.memories.get(mem).map(|m| &m.data[..]),
                    };
                    if recorder.observe(&observed) == Flow::Stop {
                        suspend!(Break::Recorded);
                    }
                }
            }
            // SAFETY: control cannot fall off the end of the code (see above).
            ip = unsafe { ip.add(1) };
            use Instr as I;
            match instr {
                I::Unreachable => trap!(TrapKind::Unreachable),
                I::LoopHeader { anchor } => {
                    // SAFETY: `CompiledFunc::check` keeps anchor ids below the module's
                    // anchor count, the length of every instance's counter table.
                    let counter = unsafe { &mut *anchors.add(anchor as usize) };
                    counter.hits += 1;
                    if !RECORD && counter.hits >= counter.record_at {
                        suspend!(Break::Anchor { anchor });
                    }
                }
                I::Br { target } => jump!(target),
                I::BrIfNez { cond, target } => {
                    if r!(cond) as u32 != 0 {
                        jump!(target);
                    }
                }
                I::BrIfEqz { cond, target } => {
                    if r!(cond) as u32 == 0 {
                        jump!(target);
                    }
                }
                I::BrI32Eq { a, b, target } => br_if!(target, r!(a) as u32 == r!(b) as u32),
                I::BrI32Ne { a, b, target } => br_if!(target, r!(a) as u32 != r!(b) as u32),
                I::BrI32LtS { a, b, target } => br_if!(target, i32_of(r!(a)) < i32_of(r!(b))),
                I::BrI32LtU { a, b, target } => br_if!(target, (r!(a) as u32) < r!(b) as u32),
                I::BrI32GtS { a, b, target } => br_if!(target, i32_of(r!(a)) > i32_of(r!(b))),
                I::BrI32GtU { a, b, target } => br_if!(target, r!(a) as u32 > r!(b) as u32),
                I::BrI32LeS { a, b, target } => br_if!(target, i32_of(r!(a)) <= i32_of(r!(b))),
                I::BrI32LeU { a, b, target } => br_if!(target, r!(a) as u32 <= r!(b) as u32),
                I::BrI32GeS { a, b, target } => br_if!(target, i32_of(r!(a)) >= i32_of(r!(b))),
                I::BrI32GeU { a, b, target } => br_if!(target, r!(a) as u32 >= r!(b) as u32),
                I::BrI32EqImm { a, imm, target } => br_if!(target, i32_of(r!(a)) == imm),
                I::BrI32NeImm { a, imm, target } => br_if!(target, i32_of(r!(a)) != imm),
                I::BrI32LtSImm { a, imm, target } => br_if!(target, i32_of(r!(a)) < imm),
                I::BrI32LtUImm { a, imm, target } => br_if!(target, (r!(a) as u32) < imm as u32),
                I::BrI32GtSImm { a, imm, target } => br_if!(target, i32_of(r!(a)) > imm),
                I::BrI32GtUImm { a, imm, target } => br_if!(target, r!(a) as u32 > imm as u32),
                I::BrI32LeSImm { a, imm, target } => br_if!(target, i32_of(r!(a)) <= imm),
                I::BrI32LeUImm { a, imm, target } => br_if!(target, r!(a) as u32 <= imm as u32),
                I::BrI32GeSImm { a, imm, target } => br_if!(target, i32_of(r!(a)) >= imm),
                I::BrI32GeUImm { a, imm, target } => br_if!(target, r!(a) as u32 >= imm as u32),
                I::BrTable { index, len } => {
                    let entry = (r!(index) as u32).min(len) as usize;
                    // SAFETY: `CompiledFunc::check` saw `len + 1` jumps after the table.
                    // Take the selected one's target directly rather than dispatching it.
                    match unsafe { *ip.add(entry) } {
                        I::Br { target } => jump!(target),
                        _ => unreachable!("checked: br_table entries are jumps"),
                    }
                }
                I::Return => match frames.pop() {
                    None => return Ok(Break::Returned),
                    Some(f) => {
                        code = f.code;
                        code_start = cf!().code.as_ptr();
                        // SAFETY: the caller's frame was checked when it was entered, and
                        // its return pc is inside its code.
                        fp = unsafe { stack_ptr.add(f.base) };
                        ip = unsafe { code_start.add(f.pc) };
                        if f.instance != inst {
                            inst = f.instance;
                            mem = self.instances[inst as usize]
                                .memories
                                .first()
                                .map_or(usize::MAX, |&m| m as usize);
                            refresh_mem!();
                        }
                    }
                },
                I::Call { func, base: window } => {
                    let addr = self.instances[inst as usize].funcs[func as usize];
                    call!(addr, window);
                }
                I::CallIndirect {
                    base: window,
                    index,
                    site,
                } => {
                    let site = cf!().indirect_sites[site as usize];
                    let instance = &self.instances[inst as usize];
                    let expected = instance.type_ids[site.type_index as usize];
                    let table = &self.tables[instance.tables[site.table as usize] as usize];
                    let i = r!(index) as u32 as usize;
                    let Some(&entry) = table.elements.get(i) else {
                        trap!(TrapKind::UndefinedElement);
                    };
                    if entry == 0 {
                        trap!(TrapKind::UninitializedElement);
                    }
                    let addr = entry - 1;
                    if self.funcs[addr as usize].type_id != expected {
                        trap!(TrapKind::IndirectCallTypeMismatch);
                    }
                    call!(addr, window);
                }

                I::Copy { dst, src } => w!(dst, r!(src)),
                I::Const64 { dst, value } => w!(dst, value),
                I::SelectElse { dst, b, cond } => {
                    if r!(cond) as u32 == 0 {
                        w!(dst, r!(b));
                    }
                }
                I::GlobalGet { dst, global } => {
                    let g = self.instances[inst as usize].globals[global as usize];
                    w!(dst, self.globals[g as usize].value);
                }
                I::GlobalSet { global, src } => {
                    let g = self.instances[inst as usize].globals[global as usize];
                    self.globals[g as usize].value = r!(src);
                }
                I::RefIsNull { dst, a } => w!(dst, (r!(a) == 0) as u64),
                I::RefFunc { dst, func } => {
                    w!(
                        dst,
                        self.instances[inst as usize].funcs[func as usize] as u64 + 1
                    );
                }

                // ---- memory ----
                I::I32Load { dst, addr, offset } => {
                    load!(dst, addr, offset, 4, |b| u32::from_le_bytes(b) as u64)
                }
                I::I64Load { dst, addr, offset } => {
                    load!(dst, addr, offset, 8, |b| u64::from_le_bytes(b))
                }
                I::F32Load { dst, addr, offset } => {
                    load!(dst, addr, offset, 4, |b| u32::from_le_bytes(b) as u64)
                }
                I::F64Load { dst, addr, offset } => {
                    load!(dst, addr, offset, 8, |b| u64::from_le_bytes(b))
                }
                I::I32Load8S { dst, addr, offset } => {
                    load!(dst, addr, offset, 1, |b| of_i32(b[0] as i8 as i32))
                }
                I::I32Load8U { dst, addr, offset } => load!(dst, addr, offset, 1, |b| b[0] as u64),
                I::I32Load16S { dst, addr, offset } => load!(dst, addr, offset, 2, |b| of_i32(
                    i16::from_le_bytes(b) as i32
                )),
                I::I32Load16U { dst, addr, offset } => {
                    load!(dst, addr, offset, 2, |b| u16::from_le_bytes(b) as u64)
                }
                I::I64Load8S { dst, addr, offset } => {
                    load!(dst, addr, offset, 1, |b| b[0] as i8 as i64 as u64)
                }
                I::I64Load8U { dst, addr, offset } => load!(dst, addr, offset, 1, |b| b[0] as u64),
                I::I64Load16S { dst, addr, offset } => {
                    load!(dst, addr, offset, 2, |b| i16::from_le_bytes(b) as i64
                        as u64)
                }
                I::I64Load16U { dst, addr, offset } => {
                    load!(dst, addr, offset, 2, |b| u16::from_le_bytes(b) as u64)
                }
                I::I64Load32S { dst, addr, offset } => {
                    load!(dst, addr, offset, 4, |b| i32::from_le_bytes(b) as i64
                        as u64)
                }
                I::I64Load32U { dst, addr, offset } => {
                    load!(dst, addr, offset, 4, |b| u32::from_le_bytes(b) as u64)
                }
                I::I32Store { addr, val, offset } => {
                    store!(addr, val, offset, 4, |v: u64| (v as u32).to_le_bytes())
                }
                I::I64Store { addr, val, offset } => {
                    store!(addr, val, offset, 8, |v: u64| v.to_le_bytes())
                }
                I::F32Store { addr, val, offset } => {
                    store!(addr, val, offset, 4, |v: u64| (v as u32).to_le_bytes())
                }
                I::F64Store { addr, val, offset } => {
                    store!(addr, val, offset, 8, |v: u64| v.to_le_bytes())
                }
                I::I32Store8 { addr, val, offset } => {
                    store!(addr, val, offset, 1, |v: u64| [v as u8])
                }
                I::I32Store16 { addr, val, offset } => {
                    store!(addr, val, offset, 2, |v: u64| (v as u16).to_le_bytes())
                }
                I::I64Store8 { addr, val, offset } => {
                    store!(addr, val, offset, 1, |v: u64| [v as u8])
                }
                I::I64Store16 { addr, val, offset } => {
                    store!(addr, val, offset, 2, |v: u64| (v as u16).to_le_bytes())
                }
                I::I64Store32 { addr, val, offset } => {
                    store!(addr, val, offset, 4, |v: u64| (v as u32).to_le_bytes())
                }
                I::MemorySize { dst } => w!(dst, self.memories[mem].pages() as u64),
                I::MemoryGrow { dst, delta } => {
                    let delta = r!(delta) as u32;
                    w!(dst, self.memories[mem].grow(delta) as u64);
                    refresh_mem!();
                }
                I::MemoryFill { base: b } => {
                    let (d, val, n) = (
                        r!(b) as u32 as u64,
                        r!(b + 1) as u8,
                        r!(b + 2) as u32 as u64,
                    );
                    let data = &mut self.memories[mem].data;
                    if !in_bounds(d, n, data.len()) {
                        trap!(TrapKind::MemoryOutOfBounds);
                    }
                    data[d as usize..(d + n) as usize].fill(val);
                    refresh_mem!();
                }
                I::MemoryCopy { base: b } => {
                    let (d, s, n) = (
                        r!(b) as u32 as u64,
                        r!(b + 1) as u32 as u64,
                        r!(b + 2) as u32 as u64,
                    );
                    let data = &mut self.memories[mem].data;
                    if !in_bounds(d, n, data.len()) || !in_bounds(s, n, data.len()) {
                        trap!(TrapKind::MemoryOutOfBounds);
                    }
                    data.copy_within(s as usize..(s + n) as usize, d as usize);
                    refresh_mem!();
                }
                I::MemoryInit { base: b, data: seg } => {
                    let (d, s, n) = (
                        r!(b) as u32 as u64,
                        r!(b + 1) as u32 as u64,
                        r!(b + 2) as u32 as u64,
                    );
                    let instance = &self.instances[inst as usize];
                    let bytes: &[u8] = if instance.data_dropped[seg as usize] {
                        &[]
                    } else {
                        &instance.module.datas[seg as usize].bytes
                    };
                    let data = &mut self.memories[mem].data;
                    if !in_bounds(d, n, data.len()) || !in_bounds(s, n, bytes.len()) {
                        trap!(TrapKind::MemoryOutOfBounds);
                    }
                    data[d as usize..(d + n) as usize]
                        .copy_from_slice(&bytes[s as usize..(s + n) as usize]);
                    refresh_mem!();
                }
                I::DataDrop { data } => {
                    self.instances[inst as usize].data_dropped[data as usize] = true;
                    refresh_mem!();
                }

                // ---- tables ----
                I::TableGet { dst, index, table } => {
                    let t = self.instances[inst as usize].tables[table as usize];
                    match self.tables[t as usize]
                        .elements
                        .get(r!(index) as u32 as usize)
                    {
                        Some(&v) => w!(dst, v),
                        None => trap!(TrapKind::TableOutOfBounds),
                    }
                }
                I::TableSet { index, val, table } => {
                    let t = self.instances[inst as usize].tables[table as usize];
                    let v = r!(val);
                    match self.tables[t as usize]
                        .elements
                        .get_mut(r!(index) as u32 as usize)
                    {
                        Some(slot) => *slot = v,
                        None => trap!(TrapKind::TableOutOfBounds),
                    }
                }
                I::TableSize { dst, table } => {
                    let t = self.instances[inst as usize].tables[table as usize];
                    w!(dst, self.tables[t as usize].elements.len() as u64);
                }
                I::TableGrow { base: b, table } => {
                    let t = self.instances[inst as usize].tables[table as usize];
                    let (init, delta) = (r!(b), r!(b + 1) as u32);
                    let t = &mut self.tables[t as usize];
                    let old = t.elements.len() as u32;
                    let max = t.ty.limits.max.unwrap_or(u32::MAX).min(MAX_TABLE_ELEMENTS);
                    let result = match old.checked_add(delta) {
                        Some(new) if new <= max => {
                            t.elements.resize(new as usize, init);
                            old as u64
                        }
                        _ => u32::MAX as u64,
                    };
                    w!(b, result);
                }
                I::TableFill { base: b, table } => {
                    let t = self.instances[inst as usize].tables[table as usize];
                    let (i, val, n) = (r!(b) as u32 as u64, r!(b + 1), r!(b + 2) as u32 as u64);
                    let elements = &mut self.tables[t as usize].elements;
                    if !in_bounds(i, n, elements.len()) {
                        trap!(TrapKind::TableOutOfBounds);
                    }
                    elements[i as usize..(i + n) as usize].fill(val);
                }
                I::TableCopy {
                    base: b,
                    dst_table,
                    src_table,
                } => {
                    let instance = &self.instances[inst as usize];
                    let (dt, st) = (
                        instance.tables[dst_table as usize],
                        instance.tables[src_table as usize],
                    );
                    let (d, s, n) = (
                        r!(b) as u32 as u64,
                        r!(b + 1) as u32 as u64,
                        r!(b + 2) as u32 as u64,
                    );
                    let (dlen, slen) = (
                        self.tables[dt as usize].elements.len(),
                        self.tables[st as usize].elements.len(),
                    );
                    if !in_bounds(d, n, dlen) || !in_bounds(s, n, slen) {
                        trap!(TrapKind::TableOutOfBounds);
                    }
                    let (d, s, n) = (d as usize, s as usize, n as usize);
                    if dt == st {
                        self.tables[dt as usize].elements.copy_within(s..s + n, d);
                    } else {
                        let src: Vec<u64> = self.tables[st as usize].elements[s..s + n].to_vec();
                        self.tables[dt as usize].elements[d..d + n].copy_from_slice(&src);
                    }
                }
                I::TableInit {
                    base: b,
                    elem,
                    table,
                } => {
                    let instance = &self.instances[inst as usize];
                    let t = instance.tables[table as usize];
                    let seg = &instance.elems[elem as usize];
                    let (d, s, n) = (
                        r!(b) as u32 as u64,
                        r!(b + 1) as u32 as u64,
                        r!(b + 2) as u32 as u64,
                    );
                    let elements = &mut self.tables[t as usize].elements;
                    if !in_bounds(d, n, elements.len()) || !in_bounds(s, n, seg.len()) {
                        trap!(TrapKind::TableOutOfBounds);
                    }
                    elements[d as usize..(d + n) as usize]
                        .copy_from_slice(&seg[s as usize..(s + n) as usize]);
                }
                I::ElemDrop { elem } => {
                    self.instances[inst as usize].elems[elem as usize] = Vec::new();
                    refresh_mem!();
                }

                // ---- i32 ----
                I::I32Add { dst, a, b } => {
                    bin!(dst, a, b, u32_of, of_u32, |x, y| x.wrapping_add(y))
                }
                I::I32Sub { dst, a, b } => {
                    bin!(dst, a, b, u32_of, of_u32, |x, y| x.wrapping_sub(y))
                }
                I::I32Mul { dst, a, b } => {
                    bin!(dst, a, b, u32_of, of_u32, |x, y| x.wrapping_mul(y))
                }
                I::I32DivS { dst, a, b } => bin!(dst, a, b, i32_of, of_i32, |x, y| fallible!(
                    num::i32_div_s(x, y)
                )),
                I::I32DivU { dst, a, b } => bin!(dst, a, b, u32_of, of_u32, |x, y| fallible!(
                    num::i32_div_u(x, y)
                )),
                I::I32RemS { dst, a, b } => bin!(dst, a, b, i32_of, of_i32, |x, y| fallible!(
                    num::i32_rem_s(x, y)
                )),
                I::I32RemU { dst, a, b } => bin!(dst, a, b, u32_of, of_u32, |x, y| fallible!(
                    num::i32_rem_u(x, y)
                )),
                I::I32And { dst, a, b } => bin!(dst, a, b, u32_of, of_u32, |x, y| x & y),
                I::I32Or { dst, a, b } => bin!(dst, a, b, u32_of, of_u32, |x, y| x | y),
                I::I32Xor { dst, a, b } => bin!(dst, a, b, u32_of, of_u32, |x, y| x ^ y),
                I::I32Shl { dst, a, b } => {
                    bin!(dst, a, b, u32_of, of_u32, |x, y| x.wrapping_shl(y))
                }
                I::I32ShrS { dst, a, b } => {
                    bin!(dst, a, b, i32_of, of_i32, |x, y| x.wrapping_shr(y as u32))
                }
                I::I32ShrU { dst, a, b } => {
                    bin!(dst, a, b, u32_of, of_u32, |x, y| x.wrapping_shr(y))
                }
                I::I32Rotl { dst, a, b } => {
                    bin!(dst, a, b, u32_of, of_u32, |x, y| x.rotate_left(y % 32))
                }
                I::I32Rotr { dst, a, b } => {
                    bin!(dst, a, b, u32_of, of_u32, |x, y| x.rotate_right(y % 32))
                }
                I::I32Eq { dst, a, b } => bin!(dst, a, b, u32_of, of_bool, |x, y| x == y),
                I::I32Ne { dst, a, b } => bin!(dst, a, b, u32_of, of_bool, |x, y| x != y),
                I::I32LtS { dst, a, b } => bin!(dst, a, b, i32_of, of_bool, |x, y| x < y),
                I::I32LtU { dst, a, b } => bin!(dst, a, b, u32_of, of_bool, |x, y| x < y),
                I::I32GtS { dst, a, b } => bin!(dst, a, b, i32_of, of_bool, |x, y| x > y),
                I::I32GtU { dst, a, b } => bin!(dst, a, b, u32_of, of_bool, |x, y| x > y),
                I::I32LeS { dst, a, b } => bin!(dst, a, b, i32_of, of_bool, |x, y| x <= y),
                I::I32LeU { dst, a, b } => bin!(dst, a, b, u32_of, of_bool, |x, y| x <= y),
                I::I32GeS { dst, a, b } => bin!(dst, a, b, i32_of, of_bool, |x, y| x >= y),
                I::I32GeU { dst, a, b } => bin!(dst, a, b, u32_of, of_bool, |x, y| x >= y),
                I::I32Eqz { dst, a } => un!(dst, a, u32_of, of_bool, |x| x == 0),
                I::I32Clz { dst, a } => un!(dst, a, u32_of, of_u32, |x| x.leading_zeros()),
                I::I32Ctz { dst, a } => un!(dst, a, u32_of, of_u32, |x| x.trailing_zeros()),
                I::I32Popcnt { dst, a } => un!(dst, a, u32_of, of_u32, |x| x.count_ones()),

                // ---- with an immediate right operand ----
                I::I32AddImm { dst, a, imm } => {
                    un!(dst, a, u32_of, of_u32, |x| x.wrapping_add(imm as u32))
                }
                I::I32MulImm { dst, a, imm } => {
                    un!(dst, a, u32_of, of_u32, |x| x.wrapping_mul(imm as u32))
                }
                I::I32AndImm { dst, a, imm } => un!(dst, a, u32_of, of_u32, |x| x & imm as u32),
                I::I32OrImm { dst, a, imm } => un!(dst, a, u32_of, of_u32, |x| x | imm as u32),
                I::I32XorImm { dst, a, imm } => un!(dst, a, u32_of, of_u32, |x| x ^ imm as u32),
                I::I32ShlImm { dst, a, imm } => {
                    un!(dst, a, u32_of, of_u32, |x| x.wrapping_shl(imm as u32))
                }
                I::I32ShrSImm { dst, a, imm } => {
                    un!(dst, a, i32_of, of_i32, |x| x.wrapping_shr(imm as u32))
                }
                I::I32ShrUImm { dst, a, imm } => {
                    un!(dst, a, u32_of, of_u32, |x| x.wrapping_shr(imm as u32))
                }
                I::I32EqImm { dst, a, imm } => un!(dst, a, i32_of, of_bool, |x| x == imm),
                I::I32NeImm { dst, a, imm } => un!(dst, a, i32_of, of_bool, |x| x != imm),
                I::I32LtSImm { dst, a, imm } => un!(dst, a, i32_of, of_bool, |x| x < imm),
                I::I32LtUImm { dst, a, imm } => un!(dst, a, u32_of, of_bool, |x| x < imm as u32),
                I::I32GtSImm { dst, a, imm } => un!(dst, a, i32_of, of_bool, |x| x > imm),
                I::I32GtUImm { dst, a, imm } => un!(dst, a, u32_of, of_bool, |x| x > imm as u32),
                I::I32LeSImm { dst, a, imm } => un!(dst, a, i32_of, of_bool, |x| x <= imm),
                I::I32LeUImm { dst, a, imm } => un!(dst, a, u32_of, of_bool, |x| x <= imm as u32),
                I::I32GeSImm { dst, a, imm } => un!(dst, a, i32_of, of_bool, |x| x >= imm),
                I::I32GeUImm { dst, a, imm } => un!(dst, a, u32_of, of_bool, |x| x >= imm as u32),
                I::I64AddImm { dst, a, imm } => un!(dst, a, u64_of, u64_of, |x| x
                    .wrapping_add(imm as i64 as u64)),
                I::I64MulImm { dst, a, imm } => un!(dst, a, u64_of, u64_of, |x| x
                    .wrapping_mul(imm as i64 as u64)),
                I::I64AndImm { dst, a, imm } => {
                    un!(dst, a, u64_of, u64_of, |x| x & imm as i64 as u64)
                }
                I::I64OrImm { dst, a, imm } => {
                    un!(dst, a, u64_of, u64_of, |x| x | imm as i64 as u64)
                }
                I::I64XorImm { dst, a, imm } => {
                    un!(dst, a, u64_of, u64_of, |x| x ^ imm as i64 as u64)
                }
                I::I64ShlImm { dst, a, imm } => {
                    un!(dst, a, u64_of, u64_of, |x| x.wrapping_shl(imm as u32))
                }
                I::I64ShrSImm { dst, a, imm } => {
                    un!(dst, a, i64_of, of_i64, |x| x.wrapping_shr(imm as u32))
                }
                I::I64ShrUImm { dst, a, imm } => {
                    un!(dst, a, u64_of, u64_of, |x| x.wrapping_shr(imm as u32))
                }
                I::I64EqImm { dst, a, imm } => un!(dst, a, i64_of, of_bool, |x| x == imm as i64),
                I::I64NeImm { dst, a, imm } => un!(dst, a, i64_of, of_bool, |x| x != imm as i64),
                I::I64LtSImm { dst, a, imm } => un!(dst, a, i64_of, of_bool, |x| x < imm as i64),
                I::I64LtUImm { dst, a, imm } => {
                    un!(dst, a, u64_of, of_bool, |x| x < imm as i64 as u64)
                }
                I::I64GtSImm { dst, a, imm } => un!(dst, a, i64_of, of_bool, |x| x > imm as i64),
                I::I64GtUImm { dst, a, imm } => {
                    un!(dst, a, u64_of, of_bool, |x| x > imm as i64 as u64)
                }
                I::I64LeSImm { dst, a, imm } => un!(dst, a, i64_of, of_bool, |x| x <= imm as i64),
                I::I64LeUImm { dst, a, imm } => {
                    un!(dst, a, u64_of, of_bool, |x| x <= imm as i64 as u64)
                }
                I::I64GeSImm { dst, a, imm } => un!(dst, a, i64_of, of_bool, |x| x >= imm as i64),
                I::I64GeUImm { dst, a, imm } => {
                    un!(dst, a, u64_of, of_bool, |x| x >= imm as i64 as u64)
                }

                // ---- i64 ----
                I::I64Add { dst, a, b } => {
                    bin!(dst, a, b, u64_of, u64_of, |x, y| x.wrapping_add(y))
                }
                I::I64Sub { dst, a, b } => {
                    bin!(dst, a, b, u64_of, u64_of, |x, y| x.wrapping_sub(y))
                }
                I::I64Mul { dst, a, b } => {
                    bin!(dst, a, b, u64_of, u64_of, |x, y| x.wrapping_mul(y))
                }
                I::I64DivS { dst, a, b } => bin!(dst, a, b, i64_of, of_i64, |x, y| fallible!(
                    num::i64_div_s(x, y)
                )),
                I::I64DivU { dst, a, b } => bin!(dst, a, b, u64_of, u64_of, |x, y| fallible!(
                    num::i64_div_u(x, y)
                )),
                I::I64RemS { dst, a, b } => bin!(dst, a, b, i64_of, of_i64, |x, y| fallible!(
                    num::i64_rem_s(x, y)
                )),
                I::I64RemU { dst, a, b } => bin!(dst, a, b, u64_of, u64_of, |x, y| fallible!(
                    num::i64_rem_u(x, y)
                )),
                I::I64And { dst, a, b } => bin!(dst, a, b, u64_of, u64_of, |x, y| x & y),
                I::I64Or { dst, a, b } => bin!(dst, a, b, u64_of, u64_of, |x, y| x | y),
                I::I64Xor { dst, a, b } => bin!(dst, a, b, u64_of, u64_of, |x, y| x ^ y),
                I::I64Shl { dst, a, b } => {
                    bin!(dst, a, b, u64_of, u64_of, |x, y| x.wrapping_shl(y as u32))
                }
                I::I64ShrS { dst, a, b } => {
                    bin!(dst, a, b, i64_of, of_i64, |x, y| x.wrapping_shr(y as u32))
                }
                I::I64ShrU { dst, a, b } => {
                    bin!(dst, a, b, u64_of, u64_of, |x, y| x.wrapping_shr(y as u32))
                }
                I::I64Rotl { dst, a, b } => bin!(dst, a, b, u64_of, u64_of, |x, y| x
                    .rotate_left((y % 64) as u32)),
                I::I64Rotr { dst, a, b } => bin!(dst, a, b, u64_of, u64_of, |x, y| x
                    .rotate_right((y % 64) as u32)),
                I::I64Eq { dst, a, b } => bin!(dst, a, b, u64_of, of_bool, |x, y| x == y),
                I::I64Ne { dst, a, b } => bin!(dst, a, b, u64_of, of_bool, |x, y| x != y),
                I::I64LtS { dst, a, b } => bin!(dst, a, b, i64_of, of_bool, |x, y| x < y),
                I::I64LtU { dst, a, b } => bin!(dst, a, b, u64_of, of_bool, |x, y| x < y),
                I::I64GtS { dst, a, b } => bin!(dst, a, b, i64_of, of_bool, |x, y| x > y),
                I::I64GtU { dst, a, b } => bin!(dst, a, b, u64_of, of_bool, |x, y| x > y),
                I::I64LeS { dst, a, b } => bin!(dst, a, b, i64_of, of_bool, |x, y| x <= y),
                I::I64LeU { dst, a, b } => bin!(dst, a, b, u64_of, of_bool, |x, y| x <= y),
                I::I64GeS { dst, a, b } => bin!(dst, a, b, i64_of, of_bool, |x, y| x >= y),
                I::I64GeU { dst, a, b } => bin!(dst, a, b, u64_of, of_bool, |x, y| x >= y),
                I::I64Eqz { dst, a } => un!(dst, a, u64_of, of_bool, |x| x == 0),
                I::I64Clz { dst, a } => un!(dst, a, u64_of, of_u32, |x| x.leading_zeros()),
                I::I64Ctz { dst, a } => un!(dst, a, u64_of, of_u32, |x| x.trailing_zeros()),
                I::I64Popcnt { dst, a } => un!(dst, a, u64_of, of_u32, |x| x.count_ones()),

                // ---- f32 ----
                I::F32Add { dst, a, b } => bin!(dst, a, b, f32_of, of_f32, |x, y| x + y),
                I::F32Sub { dst, a, b } => bin!(dst, a, b, f32_of, of_f32, |x, y| x - y),
                I::F32Mul { dst, a, b } => bin!(dst, a, b, f32_of, of_f32, |x, y| x * y),
                I::F32Div { dst, a, b } => bin!(dst, a, b, f32_of, of_f32, |x, y| x / y),
                I::F32Min { dst, a, b } => {
                    bin!(dst, a, b, f32_of, of_f32, |x, y| num::f32_min(x, y))
                }
                I::F32Max { dst, a, b } => {
                    bin!(dst, a, b, f32_of, of_f32, |x, y| num::f32_max(x, y))
                }
                I::F32Copysign { dst, a, b } => bin!(dst, a, b, u32_of, of_u32, |x, y| (x
                    & 0x7fff_ffff)
                    | (y & 0x8000_0000)),
                I::F32Eq { dst, a, b } => bin!(dst, a, b, f32_of, of_bool, |x, y| x == y),
                I::F32Ne { dst, a, b } => bin!(dst, a, b, f32_of, of_bool, |x, y| x != y),
                I::F32Lt { dst, a, b } => bin!(dst, a, b, f32_of, of_bool, |x, y| x < y),
                I::F32Gt { dst, a, b } => bin!(dst, a, b, f32_of, of_bool, |x, y| x > y),
                I::F32Le { dst, a, b } => bin!(dst, a, b, f32_of, of_bool, |x, y| x <= y),
                I::F32Ge { dst, a, b } => bin!(dst, a, b, f32_of, of_bool, |x, y| x >= y),
                I::F32Abs { dst, a } => un!(dst, a, u32_of, of_u32, |x| x & 0x7fff_ffff),
                I::F32Neg { dst, a } => un!(dst, a, u32_of, of_u32, |x| x ^ 0x8000_0000),
                I::F32Ceil { dst, a } => un!(dst, a, f32_of, of_f32, |x| num::f32_ceil(x)),
                I::F32Floor { dst, a } => un!(dst, a, f32_of, of_f32, |x| num::f32_floor(x)),
                I::F32Trunc { dst, a } => un!(dst, a, f32_of, of_f32, |x| num::f32_trunc(x)),
                I::F32Nearest { dst, a } => un!(dst, a, f32_of, of_f32, |x| num::f32_nearest(x)),
                I::F32Sqrt { dst, a } => un!(dst, a, f32_of, of_f32, |x| x.sqrt()),

                // ---- f64 ----
                I::F64Add { dst, a, b } => bin!(dst, a, b, f64_of, of_f64, |x, y| x + y),
                I::F64Sub { dst, a, b } => bin!(dst, a, b, f64_of, of_f64, |x, y| x - y),
                I::F64Mul { dst, a, b } => bin!(dst, a, b, f64_of, of_f64, |x, y| x * y),
                I::F64Div { dst, a, b } => bin!(dst, a, b, f64_of, of_f64, |x, y| x / y),
                I::F64Min { dst, a, b } => {
                    bin!(dst, a, b, f64_of, of_f64, |x, y| num::f64_min(x, y))
                }
                I::F64Max { dst, a, b } => {
                    bin!(dst, a, b, f64_of, of_f64, |x, y| num::f64_max(x, y))
                }
                I::F64Copysign { dst, a, b } => bin!(dst, a, b, u64_of, u64_of, |x, y| (x & !(1
                    << 63))
                    | (y & (1 << 63))),
                I::F64Eq { dst, a, b } => bin!(dst, a, b, f64_of, of_bool, |x, y| x == y),
                I::F64Ne { dst, a, b } => bin!(dst, a, b, f64_of, of_bool, |x, y| x != y),
                I::F64Lt { dst, a, b } => bin!(dst, a, b, f64_of, of_bool, |x, y| x < y),
                I::F64Gt { dst, a, b } => bin!(dst, a, b, f64_of, of_bool, |x, y| x > y),
                I::F64Le { dst, a, b } => bin!(dst, a, b, f64_of, of_bool, |x, y| x <= y),
                I::F64Ge { dst, a, b } => bin!(dst, a, b, f64_of, of_bool, |x, y| x >= y),
                I::F64Abs { dst, a } => un!(dst, a, u64_of, u64_of, |x| x & !(1 << 63)),
                I::F64Neg { dst, a } => un!(dst, a, u64_of, u64_of, |x| x ^ (1 << 63)),
                I::F64Ceil { dst, a } => un!(dst, a, f64_of, of_f64, |x| num::f64_ceil(x)),
                I::F64Floor { dst, a } => un!(dst, a, f64_of, of_f64, |x| num::f64_floor(x)),
                I::F64Trunc { dst, a } => un!(dst, a, f64_of, of_f64, |x| num::f64_trunc(x)),
                I::F64Nearest { dst, a } => un!(dst, a, f64_of, of_f64, |x| num::f64_nearest(x)),
                I::F64Sqrt { dst, a } => un!(dst, a, f64_of, of_f64, |x| x.sqrt()),

                // ---- conversions ----
                I::I32WrapI64 { dst, a } => un!(dst, a, u64_of, of_u32, |x| x as u32),
                I::I32TruncF32S { dst, a } => un!(dst, a, f32_of, of_i32, |x| fallible!(
                    num::i32_trunc_f32_s(x)
                )),
                I::I32TruncF32U { dst, a } => un!(dst, a, f32_of, of_u32, |x| fallible!(
                    num::i32_trunc_f32_u(x)
                )),
                I::I32TruncF64S { dst, a } => un!(dst, a, f64_of, of_i32, |x| fallible!(
                    num::i32_trunc_f64_s(x)
                )),
                I::I32TruncF64U { dst, a } => un!(dst, a, f64_of, of_u32, |x| fallible!(
                    num::i32_trunc_f64_u(x)
                )),
                I::I64ExtendI32S { dst, a } => un!(dst, a, i32_of, of_i64, |x| x as i64),
                I::I64ExtendI32U { dst, a } => un!(dst, a, u32_of, u64_of, |x| x as u64),
                I::I64TruncF32S { dst, a } => un!(dst, a, f32_of, of_i64, |x| fallible!(
                    num::i64_trunc_f32_s(x)
                )),
                I::I64TruncF32U { dst, a } => un!(dst, a, f32_of, u64_of, |x| fallible!(
                    num::i64_trunc_f32_u(x)
                )),
                I::I64TruncF64S { dst, a } => un!(dst, a, f64_of, of_i64, |x| fallible!(
                    num::i64_trunc_f64_s(x)
                )),
                I::I64TruncF64U { dst, a } => un!(dst, a, f64_of, u64_of, |x| fallible!(
                    num::i64_trunc_f64_u(x)
                )),
                I::F32ConvertI32S { dst, a } => un!(dst, a, i32_of, of_f32, |x| x as f32),
                I::F32ConvertI32U { dst, a } => un!(dst, a, u32_of, of_f32, |x| x as f32),
                I::F32ConvertI64S { dst, a } => un!(dst, a, i64_of, of_f32, |x| x as f32),
                I::F32ConvertI64U { dst, a } => un!(dst, a, u64_of, of_f32, |x| x as f32),
                I::F32DemoteF64 { dst, a } => un!(dst, a, f64_of, of_f32, |x| x as f32),
                I::F64ConvertI32S { dst, a } => un!(dst, a, i32_of, of_f64, |x| x as f64),
                I::F64ConvertI32U { dst, a } => un!(dst, a, u32_of, of_f64, |x| x as f64),
                I::F64ConvertI64S { dst, a } => un!(dst, a, i64_of, of_f64, |x| x as f64),
                I::F64ConvertI64U { dst, a } => un!(dst, a, u64_of, of_f64, |x| x as f64),
                I::F64PromoteF32 { dst, a } => un!(dst, a, f32_of, of_f64, |x| x as f64),
                I::I32Extend8S { dst, a } => un!(dst, a, u32_of, of_i32, |x| x as i8 as i32),
                I::I32Extend16S { dst, a } => un!(dst, a, u32_of, of_i32, |x| x as i16 as i32),
                I::I64Extend8S { dst, a } => un!(dst, a, u64_of, of_i64, |x| x as i8 as i64),
                I::I64Extend16S { dst, a } => un!(dst, a, u64_of, of_i64, |x| x as i16 as i64),
                I::I64Extend32S { dst, a } => un!(dst, a, u64_of, of_i64, |x| x as i32 as i64),
                // Rust's float-to-int `as` saturates and maps NaN to 0: exactly wasm's
                // non-trapping conversions.
                I::I32TruncSatF32S { dst, a } => un!(dst, a, f32_of, of_i32, |x| x as i32),
                I::I32TruncSatF32U { dst, a } => un!(dst, a, f32_of, of_u32, |x| x as u32),
                I::I32TruncSatF64S { dst, a } => un!(dst, a, f64_of, of_i32, |x| x as i32),
                I::I32TruncSatF64U { dst, a } => un!(dst, a, f64_of, of_u32, |x| x as u32),
                I::I64TruncSatF32S { dst, a } => un!(dst, a, f32_of, of_i64, |x| x as i64),
                I::I64TruncSatF32U { dst, a } => un!(dst, a, f32_of, u64_of, |x| x as u64),
                I::I64TruncSatF64S { dst, a } => un!(dst, a, f64_of, of_i64, |x| x as i64),
                I::I64TruncSatF64U { dst, a } => un!(dst, a, f64_of, u64_of, |x| x as u64),
            }
        }
    }
}

#[inline(always)]
fn u32_of(s: u64) -> u32 {
    s as u32
}
#[inline(always)]
fn i32_of(s: u64) -> i32 {
    s as u32 as i32
}
#[inline(always)]
fn u64_of(s: u64) -> u64 {
    s
}
#[inline(always)]
fn i64_of(s: u64) -> i64 {
    s as i64
}
#[inline(always)]
fn of_i64(i: i64) -> u64 {
    i as u64
}
#[inline(always)]
fn of_bool(b: bool) -> u64 {
    b as u64
}
