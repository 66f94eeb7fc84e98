//! The door to higher tiers: how trace code takes over a loop anchor.
//!
//! A higher tier (kiln's `runtime`: cached trace code, live-JITted trace code) installs
//! itself with [`Store::set_tier`](crate::Store::set_tier) and marks the anchors it has
//! code for with [`Store::attach_trace`](crate::Store::attach_trace). Each time the
//! interpreter reaches an attached loop header it suspends its loop and hands the tier a
//! [`TraceEntry`]: the frame (the interpreter keeps every local and operand in frame
//! slots, so the frame *is* the state), the instance's globals and its memory, all
//! borrowed in place. The tier runs its code and says where the interpreter goes on:
//!
//! - [`TierExit::Resume`] at a pc of the anchor's function (a trace exit's `pc`), with the
//!   frame, globals and memory as the interpreter would have left them there;
//!   [`TierExit::ResumeInCalls`]: at a pc inside calls the trace inlined, with their
//!   frames' slots written too (beyond the anchor's frame: `TraceEntry::frame` is the
//!   whole stack above it); the interpreter sets the calls up around them;
//! - [`TierExit::Declined`]: the tier did nothing this time, the interpreter runs the loop
//!   body itself ([`TierExit::Detach`]: and never will, so the anchor is detached;
//!   [`TierExit::Interpret`]: nor for the next passes, which the interpreter runs at its
//!   full speed, as if the anchor were not attached: a tier times them against its code);
//! - [`TierExit::Record`] at a pc: resume there, and record a side trace from there to
//!   the next loop header (with recording on); the tier hears of it through
//!   [`TraceTier::side_recorded`]. A tier asks this where its code keeps exiting, so
//!   that it can link code there (trace trees, as in LuaJIT and TraceMonkey);
//! - an error: the guest trapped inside trace code. The tier leaves memory and globals as
//!   they were at the trap; the interpreter reports the trap at the anchor.
//!
//! A loop anchor that has no trace attached costs the interpreter nothing more than
//! before: the same counter compare that triggers recording triggers the tier.

use std::rc::Rc;

use ir::InlinedCall;

use crate::code::{CompiledFunc, Instr};
use crate::linear::LinearBytes;
use crate::record::RecordedTrace;
use crate::store::{FuncInst, FuncKind};
use crate::trap::TrapKind;
use crate::types::InstanceId;

/// What a tier gets at an attached anchor.
pub struct TraceEntry<'a> {
    pub instance: InstanceId,
    /// The anchor's id in its module (`Module::anchors`).
    pub anchor: u32,
    /// The anchor's function (module index space) and byte offset in the module: the key
    /// traces are recorded under (`RecordedTrace`).
    pub func_index: u32,
    pub anchor_offset: u32,
    /// The pc of the loop header in the function's code: resuming there runs the next
    /// iteration (and comes back to the tier).
    pub anchor_pc: u32,
    /// How many instructions the function's code has: every pc a tier resumes at must be
    /// below this (the interpreter treats anything else as a bug in the tier).
    pub code_len: u32,
    /// The interpreter's stack from the anchor's frame on, raw (32-bit values
    /// zero-extended, floats as bits): the function's frame is its first `frame_size`
    /// slots; the frames of calls a trace inlined follow (`TierExit::ResumeInCalls`).
    pub frame: &'a mut [u64],
    /// Where `frame` starts in the value stack, in slots: a tier that views the stack in
    /// place (`Store::value_stack_bytes`) finds the frame there.
    pub stack_index: usize,
    /// The anchor function's frame size in slots.
    pub frame_size: u32,
    /// How many more frames the interpreter allows on top of the anchor's
    /// (`StackLimits::max_call_depth`): a trace that leaves inside more inlined calls than
    /// this must not run (the interpreter would have trapped making them).
    pub call_room: usize,
    /// The instance's globals.
    pub globals: GlobalsMut<'a>,
    /// The instance's memory 0, if it has one. Its base address never moves.
    pub memory: Option<&'a mut LinearBytes>,
    /// Memory 0's declared maximum in pages.
    pub memory_max: Option<u32>,
    /// What [`TraceEntry::calls_fit`] checks calls against.
    pub(crate) code: CodeView<'a>,
}

/// The anchor function's code and the instance's functions: enough to check that a
/// trace's inlined calls are the calls the code makes.
#[derive(Clone, Copy)]
pub(crate) struct CodeView<'a> {
    pub(crate) code: &'a CompiledFunc,
    pub(crate) instance: u32,
    /// The instance's function addresses, by module index.
    pub(crate) instance_funcs: &'a [u32],
    pub(crate) funcs: &'a [FuncInst],
}

impl<'a> CodeView<'a> {
    /// The callee of each of `calls` (outermost first), if every one is the call its
    /// caller's code makes at `return_pc - 1`, to a function of this instance, with its
    /// frame at `base`, and `pc` is inside the innermost callee's code; else why not.
    pub(crate) fn callees(
        &self,
        calls: &[InlinedCall],
        pc: u32,
    ) -> Result<Vec<&'a std::sync::Arc<CompiledFunc>>, String> {
        callees_of(self.code, calls, pc, |func| {
            self.instance_funcs
                .get(func as usize)
                .and_then(|&addr| self.funcs.get(addr as usize))
                .and_then(|f| match &f.kind {
                    FuncKind::Wasm { instance, code } if *instance == self.instance => Some(code),
                    _ => None,
                })
        })
    }
}

/// The callee of each of `calls` (outermost first) made from `code`, looked up by
/// `function` (`None`: not a wasm function of the module or instance), if every one is
/// the call its caller's code makes at `return_pc - 1`, with its frame at `base`, and
/// `pc` is inside the innermost callee's code; else why not.
pub(crate) fn callees_of<'a>(
    code: &'a CompiledFunc,
    calls: &[InlinedCall],
    pc: u32,
    function: impl Fn(u32) -> Option<&'a std::sync::Arc<CompiledFunc>>,
) -> Result<Vec<&'a std::sync::Arc<CompiledFunc>>, String> {
    let mut caller: &CompiledFunc = code;
    let mut caller_base = 0u32;
    let mut callees = Vec::with_capacity(calls.len());
    for call in calls {
        let at = call.return_pc.checked_sub(1);
        let made =
            at.and_then(|at| caller.code.get(at as usize))
                .is_some_and(|instr| match *instr {
                    Instr::Call { func, base } => {
                        func == call.func && caller_base.checked_add(base) == Some(call.base)
                    }
                    _ => false,
                });
        if !made || call.return_pc as usize >= caller.code.len() {
            return Err(format!(
                "function {} makes no call to function {} with its frame at slot {} \
                 before pc {}",
                caller.func_index, call.func, call.base, call.return_pc
            ));
        }
        let callee = function(call.func).ok_or_else(|| {
            format!(
                "function {} is not one of the module's wasm functions",
                call.func
            )
        })?;
        callees.push(callee);
        caller = callee;
        caller_base = call.base;
    }
    if pc as usize >= caller.code.len() {
        return Err(format!(
            "pc {pc} is outside function {} ({} instructions)",
            caller.func_index,
            caller.code.len()
        ));
    }
    Ok(callees)
}

impl TraceEntry<'_> {
    /// Whether a trace may resume at `pc` inside `calls` ([`TierExit::ResumeInCalls`]):
    /// each call is one the code makes there, the innermost callee has that pc, and the
    /// callees' frames fit the stack. A tier checks every such exit before it attaches
    /// code, as it checks plain exit pcs against `code_len`.
    pub fn calls_fit(&self, calls: &[InlinedCall], pc: u32) -> Result<(), String> {
        let callees = self.code.callees(calls, pc)?;
        for (call, callee) in calls.iter().zip(callees) {
            if call.base as usize + callee.frame_size as usize > self.frame.len() {
                return Err(format!(
                    "function {}'s frame at slot {} does not fit the stack",
                    call.func, call.base
                ));
            }
        }
        Ok(())
    }
}

/// Where the interpreter goes on after the tier ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierExit {
    /// Continue at this pc of the anchor's function.
    Resume { pc: u32 },
    /// Continue at this pc of the innermost of `calls` (outermost first): the interpreter
    /// sets up their frames as if it had made the calls (the stack holds their slots, but
    /// for constants), with each caller going on at its `return_pc` when the callee
    /// returns. The calls are those a trace inlined, or calls trace code made itself (a
    /// tier that links a trace's exit at a call to the callee's code), or both. At pc 0
    /// (unless it is a loop header) nothing of the innermost callee has run: its frame is
    /// set up as a call sets it up (locals zeroed, constants written) over its arguments.
    ResumeInCalls { pc: u32, calls: Rc<[InlinedCall]> },
    /// Continue inside `calls` as for `ResumeInCalls`, recording a side trace from there.
    /// The first `trace_from` calls are not the trace's: the trace belongs to the
    /// function the last of them enters (the anchor's function when 0), its slots are
    /// numbered from that frame, and it goes on through the returns of the calls after
    /// them. At pc 0 with no call after them, the trace is the function's entry trace.
    RecordInCalls {
        pc: u32,
        calls: Rc<[InlinedCall]>,
        trace_from: u32,
    },
    /// Continue at this pc, recording a side trace from it. A loop header's pc is only
    /// resumed at (loop headers record traces of their own).
    Record { pc: u32 },
    /// Nothing was run: interpret the loop body.
    Declined,
    /// Nothing was run: interpret this many passes of the loop (this iteration first);
    /// the anchor comes back to the tier at the pass of its header after them.
    Interpret { passes: u32 },
    /// Nothing was run, and the tier will never have code for this anchor: it goes back
    /// to being interpreted (and is not recorded again).
    Detach,
}

/// A tier that runs trace code at loop anchors.
pub trait TraceTier {
    /// Runs the code attached at `entry`'s anchor.
    fn run(&mut self, entry: TraceEntry<'_>) -> Result<TierExit, TrapKind>;

    /// With recording on, the interpreter just recorded `trace` at loop anchor `anchor` of
    /// `instance`. A tier that will have code for it (a live JIT) returns `true`, and the
    /// anchor is attached: its next pass goes to [`TraceTier::run`].
    fn recorded(&mut self, instance: InstanceId, anchor: u32, trace: &RecordedTrace) -> bool {
        let _ = (instance, anchor, trace);
        false
    }

    /// The side-trace recording the tier asked for at `pc` of function `func_index`
    /// ([`TierExit::Record`]), or at `pc` inside `calls` made from it
    /// ([`TierExit::RecordInCalls`]: `func_index` is then the function the trace belongs
    /// to, and `calls` are the calls after `trace_from`, their bases numbered from its
    /// frame), is over: `trace` is what it recorded, `None` if it aborted or nothing could
    /// be recorded there (a loop header, recording off).
    fn side_recorded(
        &mut self,
        instance: InstanceId,
        func_index: u32,
        pc: u32,
        calls: &[InlinedCall],
        trace: Option<&RecordedTrace>,
    ) {
        let _ = (instance, func_index, pc, calls, trace);
    }

    /// The side traces the tier runs, with where each is linked: what `kiln run
    /// --record-traces` and `kiln record` add to the corpus beside the loop traces.
    fn side_traces(&self) -> Vec<SideTraceRecord> {
        Vec::new()
    }

    /// Passes through loop anchors the tier ran in trace code, by (function index,
    /// anchor offset): the interpreter's anchor counters see only the entries, so a
    /// trace's hotness is theirs plus these.
    fn loop_passes(&self) -> Vec<((u32, u32), u64)> {
        Vec::new()
    }

    /// What each piece of trace code did in the run, for a profile (`kiln run --stats`):
    /// where a tier's time goes is in how often the interpreter enters it and how far it
    /// runs each time. None by default.
    fn report(&self) -> Vec<TraceReport> {
        Vec::new()
    }
}

/// One piece of trace code and what it did in a run ([`TraceTier::report`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceReport {
    /// The function its code is in (module index space).
    pub func_index: u32,
    /// Where it starts: a loop trace at its anchor (the `loop` opcode's module offset), a
    /// side trace at a pc of the function.
    pub start: ReportStart,
    /// Entries from the interpreter at its anchor (drives started here), the segments
    /// (trace calls plus loop iterations) those drives ran in all, and the hand-overs from
    /// one trace to another among them (the trace calls after each drive's first).
    pub entries: u64,
    pub segments: u64,
    pub handovers: u64,
    /// Its own passes: calls of its function through the driver plus its loop iterations
    /// (a side trace inlined into a tree runs inside the tree, and counts there).
    pub passes: u64,
    /// A loop trace whose recording came back to its anchor (`false`: it ends at another
    /// loop header).
    pub loops: bool,
    /// Side traces its current tree inlines (0: no tree).
    pub tree_sides: u32,
    /// Left to the interpreter (probation or a timed trial).
    pub detached: bool,
}

/// Where a [`TraceReport`]'s code starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStart {
    Loop { anchor_offset: u32 },
    Side { pc: u32 },
}

/// A side trace a tier runs, for the corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideTraceRecord {
    pub trace: ir::Trace,
    pub start: ir::SideStart,
    /// Wasm byte offset of the instruction at the start's pc.
    pub offset: u32,
    /// Entries into it through trace links plus loop iterations it led into (not the
    /// passes through a tree that inlined it).
    pub passes: u64,
}

/// An instance's globals, by module index, raw.
pub struct GlobalsMut<'a> {
    pub(crate) addrs: &'a [u32],
    pub(crate) values: &'a mut [crate::store::GlobalInst],
}

impl GlobalsMut<'_> {
    /// How many globals the instance has.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// Global `index`'s raw value.
    pub fn get(&self, index: u32) -> Option<u64> {
        let addr = *self.addrs.get(index as usize)?;
        Some(self.values[addr as usize].value)
    }

    /// Sets global `index`; `false` if there is no such global or it is immutable.
    pub fn set(&mut self, index: u32, value: u64) -> bool {
        let Some(&addr) = self.addrs.get(index as usize) else {
            return false;
        };
        let global = &mut self.values[addr as usize];
        if !global.ty.mutable {
            return false;
        }
        global.value = value;
        true
    }
}
