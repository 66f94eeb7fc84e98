//! The emitted code against the reference evaluator: every example trace (the `ir` and
//! `saturate` golden traces, `saturate`'s optimized candidates, and traces recorded from
//! the example programs), emitted, run by wasmtime on Cranelift and on Winch from many
//! entry states, must end as iterating `ir::eval` ends: the same exit and frame, or the
//! same trap, with the same globals and memory.

mod common;

use std::path::{Path, PathBuf};

use common::{
    differences, engine, frame_slots, guest_for, random_start, reference, run_wasm, Rng, RunEnd,
    Start, STRATEGIES,
};
use emit::{EmitKind, ModuleBuilder};
use ir::eval::PAGE_SIZE;
use ir::{End, Exit, Input, Inst, NumOp, Operand, Source, Trace, Type, ValueId};
use trace_capture::wasi::{self, SharedBuffer, WasiCtx};
use trace_capture::{Linker, Module, RecordConfig, Store};

/// Random entry states per trace, on top of the captured one of a recorded trace: enough
/// to hit each guard both ways and the edge values of each input in a few seconds.
const RANDOM_STARTS: usize = 120;
/// Loop iterations the reference runs before calling a run unbounded. Loops over random
/// counts can run for billions of iterations; a few dozen exercise the carried slots.
const EVAL_ITERATIONS: u64 = 48;
/// Low enough that the examples' hot loops get recorded (as in trace-capture's tests).
const RECORD_THRESHOLD: u64 = 50;
/// Mismatches described in the failure message; the rest are only counted.
const SHOWN_MISMATCHES: usize = 12;

struct Case {
    name: String,
    trace: Trace,
    kind: EmitKind,
    /// The state the interpreter had at the anchor, for recorded traces.
    captured: Option<Start>,
    /// For a loop trace given an iteration counter ([`with_iteration_counter`]): the
    /// counter's slot.
    counter: Option<u32>,
}

/// Iterations a counted loop variant runs at most: below the reference's cap.
const COUNTED_ITERATIONS: u64 = EVAL_ITERATIONS - 8;

/// `trace` with an iteration counter, if it is a loop: a new slot input counts down at
/// the end of each iteration and a new guard leaves (naming no slot, so every carried
/// slot is written back) when it reaches zero. Many loop traces have no guard at all;
/// this variant makes them end, so their loop code is compared, not just run.
fn with_iteration_counter(trace: &Trace) -> Option<(Trace, u32)> {
    let End::Loop { state } = &trace.end else {
        return None;
    };
    let slot = frame_slots(trace);
    let next_value = trace
        .inputs
        .iter()
        .map(|i| i.value)
        .chain(trace.body.iter().filter_map(|i| i.def().map(|(v, _)| v)))
        .map(|v| v.0 + 1)
        .max()
        .unwrap_or(0);
    let (counter, left) = (ValueId(next_value), ValueId(next_value + 1));
    let exit_id = trace.exits().map(|e| e.id + 1).max().unwrap_or(0);
    let mut counted = trace.clone();
    counted.inputs.push(Input {
        value: counter,
        ty: Type::I32,
        source: Source::Slot(slot),
    });
    counted.body.push(Inst::Num {
        dst: left,
        op: NumOp::I32Sub,
        args: vec![Operand::Value(counter), Operand::Const(1)],
    });
    counted.body.push(Inst::Guard {
        cond: Operand::Value(left),
        expect: true,
        exit: Exit {
            id: exit_id,
            pc: 0,
            offset: 0,
            state: vec![],
            calls: Vec::new(),
        },
    });
    let mut state = state.clone();
    state.push((slot, Operand::Value(left)));
    counted.end = End::Loop { state };
    Some((counted, slot))
}

#[derive(Default, Debug)]
struct Counts {
    files: usize,
    recorded: usize,
    /// Loop traces run again with an iteration counter.
    counted: usize,
    unparsed: usize,
    invalid: usize,
    runs: usize,
    exits: usize,
    traps: usize,
    unbounded: usize,
    eval_refused: usize,
    mismatches: usize,
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

/// Traces from text files; a file that does not parse is counted, not hidden.
fn file_cases(dir: &str, ext: &str, kind: EmitKind, counts: &mut Counts) -> Vec<Case> {
    let mut cases = Vec::new();
    for path in files(&workspace().join(dir), ext) {
        let text = std::fs::read_to_string(&path).expect("readable");
        match ir::text::parse(&text) {
            Ok(trace) => {
                counts.files += 1;
                cases.push(Case {
                    name: format!("{dir}/{}", path.file_name().unwrap().to_string_lossy()),
                    trace,
                    kind,
                    captured: None,
                    counter: None,
                });
            }
            Err(e) => {
                eprintln!("{}: does not parse: {e}", path.display());
                counts.unparsed += 1;
            }
        }
    }
    cases
}

/// Traces recorded from every example program, each with the state at its anchor.
fn recorded_cases(counts: &mut Counts) -> Vec<Case> {
    let mut cases = Vec::new();
    for path in files(&workspace().join("examples"), "wasm") {
        let bytes = std::fs::read(&path).expect("example readable");
        let module = Module::new(&bytes).expect("example loads");
        let mut store = Store::new();
        store.enable_recording(RecordConfig {
            hot_threshold: RECORD_THRESHOLD,
            capture_states: true,
            ..RecordConfig::default()
        });
        let mut linker = Linker::new();
        let ctx = WasiCtx::new(vec![path.display().to_string(), "1".to_string()])
            .stdout(Box::new(SharedBuffer::default()));
        wasi::define(&mut linker, &mut store, ctx);
        wasi::run_command(&mut store, &linker, &module).expect("example runs");
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        for recorded in store.take_recorded() {
            counts.recorded += 1;
            let captured = recorded.states.map(|(entry, _)| {
                let mut frame = entry.slots;
                frame.resize(frame_slots(&recorded.trace) as usize, 0);
                Start {
                    frame,
                    globals: entry
                        .globals
                        .iter()
                        .enumerate()
                        .map(|(g, &v)| (g as u32, v))
                        .collect(),
                    max_pages: Some((entry.memory.len() / PAGE_SIZE) as u32 + 1),
                    memory: entry.memory,
                }
            });
            cases.push(Case {
                name: format!(
                    "{name} func {} anchor {:#x}",
                    recorded.func_index, recorded.anchor_offset
                ),
                trace: recorded.trace,
                kind: EmitKind::Naive,
                captured,
                counter: None,
            });
        }
    }
    cases
}

/// The captured start restricted to the globals the guest has, typed as the guest types
/// them (a 32-bit global keeps its low half).
fn fit_to_guest(mut start: Start, guest: &emit::GuestInfo) -> Start {
    start.globals = guest
        .globals
        .iter()
        .map(|(&g, info)| {
            let bits = start.globals.get(&g).copied().unwrap_or(0);
            let bits = if info.ty.bits() == 32 {
                bits & 0xffff_ffff
            } else {
                bits
            };
            (g, bits)
        })
        .collect();
    start
}

fn check_case(
    case: &Case,
    engines: &[(wasmtime::Strategy, wasmtime::Engine)],
    rng: &mut Rng,
    counts: &mut Counts,
    shown: &mut Vec<String>,
) {
    if let Err(e) = ir::validate::validate(&case.trace) {
        eprintln!("{}: invalid, skipped: {e}", case.name);
        counts.invalid += 1;
        return;
    }
    let pages = case
        .captured
        .as_ref()
        .map_or(1, |s| (s.memory.len() / PAGE_SIZE) as u32);
    let guest = guest_for(&case.trace, pages, Some(pages + 2));
    let mut builder = ModuleBuilder::new(guest.clone()).expect("guest limits");
    let index = builder
        .add(&case.trace, case.kind)
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let bytes = builder
        .finish()
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    emit::validate(&bytes).expect("the module validates");
    // Every iteration runs fewer instructions than the module has bytes, so this much
    // fuel runs at least EVAL_ITERATIONS + 2 iterations.
    let fuel = (EVAL_ITERATIONS + 2) * bytes.len() as u64;
    let modules: Vec<_> = engines
        .iter()
        .map(|(strategy, engine)| {
            let module = wasmtime::Module::new(engine, &bytes)
                .unwrap_or_else(|e| panic!("{}: {strategy:?} compiles: {e:?}", case.name));
            (*strategy, engine, module)
        })
        .collect();
    let mut starts: Vec<Start> = case
        .captured
        .clone()
        .map(|s| fit_to_guest(s, &guest))
        .into_iter()
        .collect();
    for _ in 0..RANDOM_STARTS {
        let pages = pages + rng.below(2) as u32;
        starts.push(random_start(&case.trace, &guest, pages, rng));
    }
    if let Some(slot) = case.counter {
        for start in &mut starts {
            start.frame[slot as usize] = 1 + rng.below(COUNTED_ITERATIONS);
        }
    }
    let mut refused_once = false;
    for start in &starts {
        let want = match reference(&case.trace, start, EVAL_ITERATIONS) {
            Ok(want) => want,
            Err(e) => {
                // E.g. a loop end writes an i64 to a slot the next iteration reads as
                // i32: the trace's meaning stops there, so there is nothing to compare.
                if !refused_once {
                    eprintln!("{}: eval refused a start (told once): {}", case.name, e.0);
                    refused_once = true;
                }
                counts.eval_refused += 1;
                continue;
            }
        };
        for (strategy, engine, module) in &modules {
            counts.runs += 1;
            let got = run_wasm(engine, module, index, &guest, start, fuel);
            let (want, problems) = match (&want.end, &got.end) {
                (RunEnd::Unbounded, RunEnd::Unbounded) => {
                    counts.unbounded += 1;
                    continue;
                }
                // The wasm ended where the reference gave up: run the reference as far as
                // the fuel could have taken the wasm.
                (RunEnd::Unbounded, _) => {
                    let longer = reference(&case.trace, start, fuel).expect("eval ran before");
                    let problems = differences(&longer, &got);
                    (longer, problems)
                }
                _ => (want.clone(), differences(&want, &got)),
            };
            match want.end {
                RunEnd::Exit(_) => counts.exits += 1,
                RunEnd::Trap(_) => counts.traps += 1,
                RunEnd::Unbounded => counts.unbounded += 1,
            }
            if !problems.is_empty() {
                counts.mismatches += 1;
                if shown.len() < SHOWN_MISMATCHES {
                    shown.push(format!(
                        "{} ({strategy:?}): {}\nframe {:x?} globals {:x?}\n{}",
                        case.name,
                        problems.join("; "),
                        start.frame,
                        start.globals,
                        case.trace
                    ));
                }
            }
        }
    }
}

#[test]
fn emitted_traces_run_as_the_evaluator_says_on_cranelift_and_winch() {
    let mut counts = Counts::default();
    let mut cases = file_cases("ir/tests/traces", "trace", EmitKind::Naive, &mut counts);
    cases.extend(file_cases(
        "saturate/tests/golden",
        "trace",
        EmitKind::Naive,
        &mut counts,
    ));
    // saturate's golden outputs are optimized candidates of the traces beside them.
    cases.extend(file_cases(
        "saturate/tests/golden",
        "out",
        EmitKind::Optimized,
        &mut counts,
    ));
    cases.extend(recorded_cases(&mut counts));
    let counted: Vec<Case> = cases
        .iter()
        .filter_map(|case| {
            let (trace, slot) = with_iteration_counter(&case.trace)?;
            Some(Case {
                name: format!("{} (counted)", case.name),
                trace,
                kind: case.kind,
                captured: case.captured.clone().map(|mut start| {
                    start.frame.resize(slot as usize + 1, 0);
                    start
                }),
                counter: Some(slot),
            })
        })
        .collect();
    counts.counted = counted.len();
    cases.extend(counted);
    let engines: Vec<_> = STRATEGIES.iter().map(|&s| (s, engine(s))).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut shown = Vec::new();
    for case in &cases {
        check_case(case, &engines, &mut rng, &mut counts, &mut shown);
    }
    println!(
        "emit differential: {} file traces ({} unparsed, {} invalid skipped), {} recorded, {} loops also counted; \
         {} runs ({} starts, each on Cranelift and on Winch): {} exits, {} traps, {} unbounded (both still looping), \
         {} starts eval refused; {} mismatches",
        counts.files,
        counts.unparsed,
        counts.invalid,
        counts.recorded,
        counts.counted,
        counts.runs,
        counts.runs / STRATEGIES.len(),
        counts.exits,
        counts.traps,
        counts.unbounded,
        counts.eval_refused,
        counts.mismatches
    );
    assert!(counts.recorded > 0, "no traces recorded from the examples");
    assert!(counts.exits > 0 && counts.traps > 0, "{counts:?}");
    assert!(
        counts.mismatches == 0,
        "{} mismatches; the first:\n{}",
        counts.mismatches,
        shown.join("\n\n")
    );
}
