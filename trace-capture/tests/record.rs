//! The recorder against the interpreter, on every bundled example program.
//!
//! Recording is observation: a run with recording on must print exactly what a run
//! without it prints. And every recorded trace, replayed by `ir`'s reference evaluator
//! from the state the interpreter had at the anchor, must reach the state the
//! interpreter reached where the trace ends: same end, same frame slots, same globals,
//! same memory. Frame slots are compared where the interpreter may still read them: an
//! exit stores no slot that is dead where the interpreter goes on.

mod common;

use std::path::PathBuf;

use common::{examples, replay_differences};

use trace_capture::wasi::{self, SharedBuffer, WasiCtx};
use trace_capture::{Linker, Module, RecordConfig, RecordedTrace, Store};

/// Low enough that the examples' hot loops get recorded at scale 1 (a few million
/// instructions per program).
const TEST_THRESHOLD: u64 = 50;

struct Run {
    module: Module,
    stdout: Vec<u8>,
    exit: i32,
    traces: Vec<RecordedTrace>,
    stats: trace_capture::RecordStats,
}

fn run(path: &PathBuf, record: Option<RecordConfig>) -> Run {
    let bytes = std::fs::read(path).expect("example readable");
    let module = Module::new(&bytes).expect("example loads");
    let mut store = Store::new();
    if let Some(config) = record {
        store.enable_recording(config);
    }
    let stdout = SharedBuffer::default();
    let mut linker = Linker::new();
    let ctx = WasiCtx::new(vec![path.display().to_string(), "1".to_string()])
        .stdout(Box::new(stdout.clone()));
    wasi::define(&mut linker, &mut store, ctx);
    let (_, exit) = wasi::run_command(&mut store, &linker, &module).expect("example runs");
    Run {
        module,
        stdout: stdout.contents(),
        exit,
        traces: store.take_recorded(),
        stats: store.record_stats(),
    }
}

fn recording(capture_states: bool) -> RecordConfig {
    RecordConfig {
        hot_threshold: TEST_THRESHOLD,
        capture_states,
        ..RecordConfig::default()
    }
}

#[test]
fn recording_does_not_change_what_a_program_does() {
    for path in examples() {
        let plain = run(&path, None);
        let recorded = run(&path, Some(recording(false)));
        assert_eq!(plain.exit, recorded.exit, "{}", path.display());
        assert_eq!(plain.stdout, recorded.stdout, "{}", path.display());
        assert!(
            !recorded.traces.is_empty(),
            "{}: no trace recorded ({:?})",
            path.display(),
            recorded.stats
        );
    }
}

#[test]
fn every_recorded_trace_replays_to_what_the_interpreter_did() {
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut dead_slots_left = 0;
    for path in examples() {
        let run = run(&path, Some(recording(true)));
        for recorded in run.traces {
            checked += 1;
            let (problems, dead) = replay_differences(&run.module, &recorded);
            dead_slots_left += dead;
            if !problems.is_empty() {
                failures.push(format!(
                    "{} func {} anchor {:#x}:\n  {}\n{}",
                    path.display(),
                    recorded.func_index,
                    recorded.anchor_offset,
                    problems.join("\n  "),
                    recorded.trace
                ));
            }
        }
    }
    assert!(checked > 0, "no traces recorded");
    assert!(
        failures.is_empty(),
        "{} of {checked} traces disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The examples' exits do leave stack temporaries dead behind them: were none left
    // out, the stores would all still be there.
    assert!(
        dead_slots_left > 0,
        "no exit of {checked} traces left a dead slot unstored"
    );
}

#[test]
fn every_recorded_trace_survives_its_text_and_binary_forms() {
    let mut checked = 0;
    for path in examples() {
        for recorded in run(&path, Some(recording(false))).traces {
            let trace = &recorded.trace;
            ir::validate::validate(trace)
                .unwrap_or_else(|e| panic!("{}: invalid trace {e:?}:\n{trace}", path.display()));
            let text = trace.to_string();
            let parsed = ir::text::parse(&text)
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
            assert_eq!(
                &parsed,
                trace,
                "print then parse changed a trace of {}",
                path.display()
            );
            let decoded = ir::binary::decode(&ir::binary::encode(trace)).expect("decodes");
            assert_eq!(
                &decoded,
                trace,
                "decode(encode) changed a trace of {}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}
