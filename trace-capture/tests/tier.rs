//! The tier door (`tier.rs`) against the interpreter, with `ir`'s reference evaluator as
//! the higher tier.
//!
//! Every example program is run once with recording on, to get its traces, then again
//! with those traces attached to a tier that *evaluates* them (`ir::eval`, one loop
//! iteration per entry): every pass through a traced loop header runs the trace instead
//! of the interpreter, and a failed guard resumes the interpreter at the exit's pc. The
//! program must print the same and exit the same, and the tier must have run. This
//! checks the door itself (frame, globals and memory handed over and back, resuming at
//! exits and at the anchor) independently of any compiler; `runtime` plugs wasmtime into
//! the same door.
//!
//! It also checks the recorder's live-slot analysis against the interpreter: after each
//! exit or iteration the tier overwrites every frame slot the analysis calls dead there
//! with a poison value (`POISON`). A slot called dead that the program reads would change
//! what it prints.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::rc::Rc;

use common::{examples, replay_differences};

use ir::eval::{Ended, EntryState};
use ir::{InlinedCall, Source, Trace};
use trace_capture::wasi::{self, SharedBuffer, WasiCtx};
use trace_capture::{
    ControlAt, InstanceId, Linker, Module, RecordConfig, RecordedTrace, Store, TierExit,
    TraceEntry, TraceTier, TrapKind, PAGE_SIZE,
};

/// Low enough that the examples' hot loops get recorded at scale 1.
const TEST_THRESHOLD: u64 = 50;
/// What a dead slot holds after the tier: neither a plausible address nor a count.
const POISON: u64 = 0xDEAD_BEEF_DEAD_BEEF;
/// Slots past an inlined callee's frame base that are poisoned if dead: more than any
/// example's frame; a slot past the callee's frame counts as live, so is left alone.
const CALLEE_SLOTS_POISONED: u32 = 1024;

/// What the evaluator tier did.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    entries: u64,
    loops: u64,
    exits: u64,
    /// Exits inside calls the trace inlined (also in `exits`).
    call_exits: u64,
    traps: u64,
    /// Dead slots overwritten with `POISON`.
    poisoned: u64,
}

/// Runs traces with `ir::eval`, one iteration per entry.
struct EvalTier {
    traces: HashMap<(u32, u32), Trace>,
    counts: std::rc::Rc<std::cell::Cell<Counts>>,
    module: Module,
    /// The dead slots of each place the interpreter resumes at (function, pc, calls).
    dead: HashMap<(u32, u32, Vec<InlinedCall>), Vec<u32>>,
    /// If set: at the first exit at a call of each callee, the interpreter is asked to
    /// make the call and record the callee's entry trace, which lands here.
    entry_traces: Option<Rc<RefCell<Vec<RecordedTrace>>>>,
    asked: HashSet<u32>,
}

impl EvalTier {
    /// Overwrites the slots of `frame` dead where the interpreter goes on: `pc` inside
    /// `calls` of function `func`, whose own frame has `frame_size` slots.
    fn poison(
        &mut self,
        frame: &mut [u64],
        frame_size: u32,
        func: u32,
        pc: u32,
        calls: &[InlinedCall],
    ) -> u64 {
        let module = &self.module;
        let dead = self
            .dead
            .entry((func, pc, calls.to_vec()))
            .or_insert_with(|| {
                let end = calls
                    .last()
                    .map_or(frame_size, |c| c.base + CALLEE_SLOTS_POISONED)
                    .min(frame.len() as u32);
                (0..end)
                    .filter(|&s| !module.slot_read_after_exit(func, pc, calls, s))
                    .collect()
            });
        for &s in dead.iter() {
            frame[s as usize] = POISON;
        }
        dead.len() as u64
    }
}

impl TraceTier for EvalTier {
    fn run(&mut self, mut entry: TraceEntry<'_>) -> Result<TierExit, TrapKind> {
        let trace = &self.traces[&(entry.func_index, entry.anchor_offset)];
        let mut counts = self.counts.get();
        counts.entries += 1;
        let mut state = EntryState {
            max_pages: entry.memory_max,
            ..EntryState::default()
        };
        for input in &trace.inputs {
            match input.source {
                Source::Slot(s) => {
                    state.slots.insert(s, entry.frame[s as usize]);
                }
                Source::Global(g) => {
                    state
                        .globals
                        .insert(g, entry.globals.get(g).expect("global"));
                }
            }
        }
        let memory = entry.memory.take();
        if let Some(m) = &memory {
            state.memory = m.to_vec();
        }
        let outcome = ir::eval::eval(trace, state).expect("a recorded trace evaluates");
        // Effects first: memory (grown if the trace grew it) and globals.
        if let Some(m) = memory {
            m.grow_to(outcome.memory_pages as usize * PAGE_SIZE)
                .expect("grow");
            m.copy_from_slice(&outcome.memory);
        }
        let globals = &mut entry.globals;
        for (&g, &v) in &outcome.globals {
            if globals.get(g) != Some(v) {
                assert!(globals.set(g, v), "the trace wrote immutable global {g}");
            }
        }
        let write = |frame: &mut [u64], slots: &BTreeMap<u32, u64>| {
            for (&s, &v) in slots {
                frame[s as usize] = v;
            }
        };
        let result = match outcome.end {
            Ended::Loop { slots } => {
                counts.loops += 1;
                write(entry.frame, &slots);
                counts.poisoned += self.poison(
                    entry.frame,
                    entry.frame_size,
                    entry.func_index,
                    entry.anchor_pc,
                    &[],
                );
                Ok(TierExit::Resume {
                    pc: entry.anchor_pc,
                })
            }
            Ended::Exit {
                pc, slots, calls, ..
            } if !calls.is_empty() => {
                counts.exits += 1;
                counts.call_exits += 1;
                if let Err(why) = entry.calls_fit(&calls, pc) {
                    panic!("exit inside calls {calls:?} at pc {pc}: {why}");
                }
                write(entry.frame, &slots);
                counts.poisoned +=
                    self.poison(entry.frame, entry.frame_size, entry.func_index, pc, &calls);
                Ok(TierExit::ResumeInCalls {
                    pc,
                    calls: calls.into(),
                })
            }
            Ended::Exit { pc, slots, .. } => {
                counts.exits += 1;
                assert!(pc < entry.code_len, "exit pc {pc} out of the function");
                write(entry.frame, &slots);
                counts.poisoned +=
                    self.poison(entry.frame, entry.frame_size, entry.func_index, pc, &[]);
                match self.module.control_at(entry.func_index, pc) {
                    Some(ControlAt::Call { callee, base, .. })
                        if self.entry_traces.is_some() && self.asked.insert(callee) =>
                    {
                        // Nothing but the arguments is the call's to keep: the rest of
                        // the callee's frame is set up by the interpreter (as a tier
                        // that makes calls leaves it), so poison it first.
                        let params = self.module.func_type(callee).unwrap().params.len();
                        let start = base as usize + params;
                        let end = (start + CALLEE_SLOTS_POISONED as usize).min(entry.frame.len());
                        entry.frame[start..end].fill(POISON);
                        Ok(TierExit::RecordInCalls {
                            pc: 0,
                            calls: Rc::from([InlinedCall {
                                func: callee,
                                base,
                                return_pc: pc + 1,
                            }]),
                            trace_from: 1,
                        })
                    }
                    _ => Ok(TierExit::Resume { pc }),
                }
            }
            Ended::Trap(kind) => {
                counts.traps += 1;
                Err(match kind {
                    ir::eval::TrapKind::IntegerDivideByZero => TrapKind::IntegerDivideByZero,
                    ir::eval::TrapKind::IntegerOverflow => TrapKind::IntegerOverflow,
                    ir::eval::TrapKind::InvalidConversionToInteger => {
                        TrapKind::InvalidConversionToInteger
                    }
                    ir::eval::TrapKind::MemoryOutOfBounds => TrapKind::MemoryOutOfBounds,
                })
            }
        };
        self.counts.set(counts);
        result
    }

    fn side_recorded(
        &mut self,
        _instance: InstanceId,
        _func_index: u32,
        _pc: u32,
        _calls: &[InlinedCall],
        trace: Option<&RecordedTrace>,
    ) {
        if let (Some(traces), Some(trace)) = (&self.entry_traces, trace) {
            traces.borrow_mut().push(trace.clone());
        }
    }
}

struct Run {
    stdout: Vec<u8>,
    exit: i32,
    traces: Vec<RecordedTrace>,
    counts: Counts,
}

/// Runs the example at `path`: recording loop traces if `record`; with a tier running
/// `traces` if any, which with `entry_traces` also has the callees' entry traces recorded
/// (with their states) at the first exit at each call.
fn run(
    path: &PathBuf,
    record: bool,
    traces: &[RecordedTrace],
    entry_traces: Option<Rc<RefCell<Vec<RecordedTrace>>>>,
) -> Run {
    let bytes = std::fs::read(path).expect("example readable");
    let module = Module::new(&bytes).expect("example loads");
    let mut store = Store::new();
    if record {
        store.enable_recording(RecordConfig {
            hot_threshold: TEST_THRESHOLD,
            ..RecordConfig::default()
        });
    } else if entry_traces.is_some() {
        // Side recordings only: no loop turns hot.
        store.enable_recording(RecordConfig {
            hot_threshold: u64::MAX,
            capture_states: true,
            ..RecordConfig::default()
        });
    }
    let stdout = SharedBuffer::default();
    let mut linker = Linker::new();
    let ctx = WasiCtx::new(vec![path.display().to_string(), "1".to_string()])
        .stdout(Box::new(stdout.clone()));
    wasi::define(&mut linker, &mut store, ctx);
    let instance = linker
        .instantiate(&mut store, &module)
        .expect("instantiates");
    let counts = std::rc::Rc::new(std::cell::Cell::new(Counts::default()));
    if !traces.is_empty() {
        let mut by_key = HashMap::new();
        for t in traces {
            let anchor = module
                .anchors()
                .iter()
                .position(|a| a.func_index == t.func_index && a.offset == t.anchor_offset)
                .expect("the trace's anchor is in the module");
            assert!(store.attach_trace(instance, anchor as u32));
            by_key.insert((t.func_index, t.anchor_offset), t.trace.clone());
        }
        store.set_tier(Box::new(EvalTier {
            traces: by_key,
            counts: counts.clone(),
            module: module.clone(),
            dead: HashMap::new(),
            entry_traces,
            asked: HashSet::new(),
        }));
    }
    let exit = wasi::start_command(&mut store, instance).expect("example runs");
    Run {
        stdout: stdout.contents(),
        exit,
        traces: store.take_recorded(),
        counts: counts.get(),
    }
}

#[test]
fn traces_run_by_a_tier_give_the_interpreters_results() {
    let mut total = Counts::default();
    for path in examples() {
        let recorded = run(&path, true, &[], None);
        assert!(!recorded.traces.is_empty(), "{}: no traces", path.display());
        let plain = run(&path, false, &[], None);
        let tiered = run(&path, false, &recorded.traces, None);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(plain.exit, tiered.exit, "{name}: exit code");
        assert_eq!(
            String::from_utf8_lossy(&plain.stdout),
            String::from_utf8_lossy(&tiered.stdout),
            "{name}: output"
        );
        let c = tiered.counts;
        println!(
            "{name}: {} traces, {} entries ({} looped, {} exited ({} inside inlined calls), \
             {} trapped)",
            recorded.traces.len(),
            c.entries,
            c.loops,
            c.exits,
            c.call_exits,
            c.traps
        );
        assert!(c.entries > 0, "{name}: the tier never ran");
        assert_eq!(c.entries, c.loops + c.exits + c.traps);
        total.entries += c.entries;
        total.loops += c.loops;
        total.exits += c.exits;
        total.call_exits += c.call_exits;
        total.poisoned += c.poisoned;
    }
    println!(
        "tier: {} entries, {} iterations run as traces, {} exits ({} inside inlined calls)",
        total.entries, total.loops, total.exits, total.call_exits
    );
    assert!(total.exits > 0 && total.loops > total.exits);
    // The examples' loops call helpers that branch (lz77's memcpy, for one): their
    // frames are rebuilt at exits inside them.
    assert!(total.call_exits > 0);
    // Dead slots were there to poison: the run above checked the analysis.
    println!("tier: {} dead slots poisoned", total.poisoned);
    assert!(total.poisoned > 0);
}

/// A callee's entry trace (`TierExit::RecordInCalls` at pc 0 with every call made by the
/// tier, `trace_from` = all of them) is recorded in the callee's own frame with its
/// locals as the zeros the call wrote: replayed by `ir`'s evaluator from the state the
/// interpreter had at the callee's pc 0, it reaches the state the interpreter reached
/// where it ends, and the program prints what it prints without the tier.
#[test]
fn entry_traces_replay_to_what_the_interpreter_did() {
    let mut checked = 0;
    for path in examples() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let recorded = run(&path, true, &[], None);
        let plain = run(&path, false, &[], None);
        let entries = Rc::new(RefCell::new(Vec::new()));
        let tiered = run(&path, false, &recorded.traces, Some(entries.clone()));
        assert_eq!(plain.exit, tiered.exit, "{name}: exit code");
        assert_eq!(plain.stdout, tiered.stdout, "{name}: output");
        let module = Module::new(&std::fs::read(&path).unwrap()).unwrap();
        for trace in entries.borrow().iter() {
            let (problems, _) = replay_differences(&module, trace);
            assert!(
                problems.is_empty(),
                "{name}: entry trace of function {}: {problems:?}\n{}",
                trace.func_index,
                trace.trace
            );
            checked += 1;
        }
    }
    println!("{checked} entry traces replayed");
    assert!(checked > 0, "no entry trace was recorded");
}

#[test]
fn attaching_needs_a_loop_anchor() {
    let wat = r#"(module (func (export "f") (loop $l (br $l))))"#;
    let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
    let mut store = Store::new();
    let instance = Linker::new().instantiate(&mut store, &module).unwrap();
    let loop_anchor = module
        .anchors()
        .iter()
        .position(|a| a.kind == trace_capture::AnchorKind::Loop)
        .unwrap() as u32;
    let entry_anchor = module
        .anchors()
        .iter()
        .position(|a| a.kind == trace_capture::AnchorKind::FuncEntry)
        .unwrap() as u32;
    assert!(!store.attach_trace(instance, entry_anchor));
    assert!(!store.attach_trace(instance, 99));
    assert!(store.attach_trace(instance, loop_anchor));
}

/// A tier that answers every call the same way, counting calls and offered traces.
struct Scripted {
    answer: TierExit,
    take_recorded: bool,
    calls: std::rc::Rc<std::cell::Cell<u64>>,
    offered: std::rc::Rc<std::cell::Cell<u64>>,
}

impl TraceTier for Scripted {
    fn run(&mut self, _entry: TraceEntry<'_>) -> Result<TierExit, TrapKind> {
        self.calls.set(self.calls.get() + 1);
        Ok(self.answer.clone())
    }

    fn recorded(
        &mut self,
        _instance: trace_capture::InstanceId,
        _anchor: u32,
        _trace: &RecordedTrace,
    ) -> bool {
        self.offered.set(self.offered.get() + 1);
        self.take_recorded
    }
}

/// Runs a 1000-iteration loop with `tier` installed, the loop attached (`attach`) and
/// recording on (`record`); returns (the loop's result, tier calls, traces offered).
fn scripted(answer: TierExit, take_recorded: bool, attach: bool, record: bool) -> (i64, u64, u64) {
    let wat = r#"(module (func (export "sum") (result i64) (local $i i64) (local $s i64)
        (loop $l
          (local.set $s (i64.add (local.get $s) (local.get $i)))
          (local.set $i (i64.add (local.get $i) (i64.const 1)))
          (br_if $l (i64.lt_u (local.get $i) (i64.const 1000))))
        (local.get $s)))"#;
    let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
    let mut store = Store::new();
    let instance = Linker::new().instantiate(&mut store, &module).unwrap();
    let calls = std::rc::Rc::new(std::cell::Cell::new(0));
    let offered = std::rc::Rc::new(std::cell::Cell::new(0));
    store.set_tier(Box::new(Scripted {
        answer,
        take_recorded,
        calls: std::rc::Rc::clone(&calls),
        offered: std::rc::Rc::clone(&offered),
    }));
    if record {
        store.enable_recording(RecordConfig {
            hot_threshold: TEST_THRESHOLD,
            ..RecordConfig::default()
        });
    }
    if attach {
        let anchor = module
            .anchors()
            .iter()
            .position(|a| a.kind == trace_capture::AnchorKind::Loop)
            .unwrap();
        assert!(store.attach_trace(instance, anchor as u32));
    }
    let result = match store.call_export(instance, "sum", &[]).unwrap()[..] {
        [trace_capture::Value::I64(v)] => v,
        ref other => panic!("{other:?}"),
    };
    (result, calls.get(), offered.get())
}

#[test]
fn the_door_declines_detaches_defers_and_takes_recorded_traces() {
    let sum = (0..1000).sum::<i64>();
    // Declined: every pass through the header asks the tier, and the interpreter runs
    // the body each time.
    assert_eq!(
        scripted(TierExit::Declined, false, true, false),
        (sum, 1000, 0)
    );
    // Detach: asked once, then the loop is interpreted.
    assert_eq!(scripted(TierExit::Detach, false, true, false), (sum, 1, 0));
    // Interpret 99 more passes each time: asked at passes 1, 100, 199, ..., 991.
    assert_eq!(
        scripted(TierExit::Interpret { passes: 99 }, false, true, false),
        (sum, 11, 0)
    );
    // Not attached: never asked.
    assert_eq!(
        scripted(TierExit::Declined, false, false, false),
        (sum, 0, 0)
    );
    // Recording on: the recorded trace is offered; taken, the anchor is attached and the
    // tier is asked at every later pass (it declines, so the interpreter still runs them).
    let (result, calls, offered) = scripted(TierExit::Declined, true, false, true);
    assert_eq!((result, offered), (sum, 1));
    assert!(calls > 0 && calls < 1000, "{calls}");
    // Refused, the anchor stays interpreted.
    assert_eq!(
        scripted(TierExit::Declined, false, false, true),
        (sum, 0, 1)
    );
}

/// What `TraceEntry::calls_fit` said about each probe, at the loop's first entry.
type Verdicts = std::rc::Rc<std::cell::RefCell<Vec<(String, bool)>>>;

/// A tier that, at its first entry, asks `calls_fit` about the call the loop body makes
/// (found by trying every return pc and frame base) and about calls it does not make.
struct CallProber {
    verdicts: Verdicts,
}

impl TraceTier for CallProber {
    fn run(&mut self, entry: TraceEntry<'_>) -> Result<TierExit, TrapKind> {
        let mut v = self.verdicts.borrow_mut();
        if !v.is_empty() {
            return Ok(TierExit::Declined);
        }
        let call = |func, base, return_pc| ir::InlinedCall {
            func,
            base,
            return_pc,
        };
        // $f is function 0 and has a handful of instructions; the loop is in function 1.
        let fits: Vec<(u32, u32)> = (0..entry.code_len)
            .flat_map(|r| (1..entry.frame_size + 4).map(move |b| (r, b)))
            .filter(|&(r, b)| entry.calls_fit(&[call(0, b, r)], 0).is_ok())
            .collect();
        v.push((format!("calls made {fits:?}"), fits.len() == 1));
        let Some(&(ret, base)) = fits.first() else {
            return Ok(TierExit::Declined);
        };
        let probes = [
            ("the call", vec![call(0, base, ret)], 0, true),
            ("another callee", vec![call(1, base, ret)], 0, false),
            ("another frame base", vec![call(0, base + 1, ret)], 0, false),
            ("another return pc", vec![call(0, base, ret + 1)], 0, false),
            (
                "a pc past the callee",
                vec![call(0, base, ret)],
                10_000,
                false,
            ),
            (
                "a frame past the stack",
                vec![call(0, u32::MAX / 2, ret)],
                0,
                false,
            ),
            (
                "a call the callee does not make",
                vec![call(0, base, ret), call(0, base + 2, 1)],
                0,
                false,
            ),
        ];
        for (what, calls, pc, fits) in probes {
            v.push((
                what.to_string(),
                entry.calls_fit(&calls, pc).is_ok() == fits,
            ));
        }
        Ok(TierExit::Declined)
    }
}

/// A tier may only resume inside calls the code makes: `calls_fit` accepts the one call
/// the loop body makes, at its return pc and frame base, and refuses every other
/// function, base, return pc, callee pc and a frame beyond the stack.
#[test]
fn calls_fit_accepts_only_the_calls_the_code_makes() {
    let wat = r#"(module
      (func $f (param $x i64) (result i64)
        (i64.xor (i64.mul (local.get $x) (i64.const 0x100000001b3)) (i64.const 0x7f4a7c15)))
      (func (export "sum") (result i64) (local $i i64) (local $s i64)
        (loop $l
          (local.set $s (i64.add (call $f (local.get $i)) (local.get $s)))
          (local.set $i (i64.add (local.get $i) (i64.const 1)))
          (br_if $l (i64.lt_u (local.get $i) (i64.const 1000))))
        (local.get $s)))"#;
    let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
    let mut store = Store::new();
    let instance = Linker::new().instantiate(&mut store, &module).unwrap();
    let verdicts = Verdicts::default();
    store.set_tier(Box::new(CallProber {
        verdicts: verdicts.clone(),
    }));
    let anchor = module
        .anchors()
        .iter()
        .position(|a| a.kind == trace_capture::AnchorKind::Loop)
        .unwrap();
    assert!(store.attach_trace(instance, anchor as u32));
    store.call_export(instance, "sum", &[]).unwrap();
    let verdicts = verdicts.borrow();
    assert_eq!(verdicts.len(), 8, "{verdicts:?}");
    let wrong: Vec<&String> = verdicts
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(w, _)| w)
        .collect();
    assert!(wrong.is_empty(), "calls_fit misjudged: {wrong:?}");
}
