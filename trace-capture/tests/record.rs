//! The recorder against the interpreter, on every bundled example program.
//!
//! Recording is observation: a run with recording on must print exactly what a run
//! without it prints. And every recorded trace, replayed by `ir`'s reference evaluator
//! from the state the interpreter had at the anchor, must reach the state the
//! interpreter reached where the trace ends: same end, same frame slots, same globals,
//! same memory. Frame slots are compared where the interpreter may still read them: an
//! exit stores no slot that is dead where the interpreter goes on.

use std::path::PathBuf;

use trace_capture::wasi::{self, SharedBuffer, WasiCtx};
use trace_capture::{Linker, Module, RecordConfig, RecordedTrace, Store};

/// Low enough that the examples' hot loops get recorded at scale 1 (a few million
/// instructions per program).
const TEST_THRESHOLD: u64 = 50;

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut wasm: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    wasm.sort();
    assert!(!wasm.is_empty(), "no example programs in {}", dir.display());
    wasm
}

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

/// Replays `recorded` with the reference evaluator from the state the interpreter had at
/// the anchor; returns what differs from the state the interpreter reached.
fn replay_differences(module: &Module, recorded: &RecordedTrace) -> (Vec<String>, usize) {
    use ir::eval::{eval, Ended, EntryState};
    let (entry, end) = recorded.states.as_ref().expect("states captured");
    let numbered = |values: &[u64]| -> std::collections::BTreeMap<u32, u64> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as u32, v))
            .collect()
    };
    let state = EntryState {
        slots: numbered(&entry.slots),
        globals: numbered(&entry.globals),
        memory: entry.memory.clone(),
        max_pages: None,
    };
    let outcome = match eval(&recorded.trace, state) {
        Ok(outcome) => outcome,
        Err(e) => return (vec![format!("the evaluator refused the trace: {e:?}")], 0),
    };
    let mut slots = entry.slots.clone();
    let mut problems = Vec::new();
    let (final_exit, end_pc, end_calls) = match &recorded.trace.end {
        ir::End::Exit(exit) => (Some(exit.id), exit.pc, &exit.calls[..]),
        ir::End::Loop { .. } => (None, recorded.anchor_pc, &[][..]),
    };
    let mut dead = 0;
    match &outcome.end {
        Ended::Loop { slots: written } if final_exit.is_none() => {
            for (&s, &v) in written {
                slots[s as usize] = v;
            }
        }
        Ended::Exit {
            id, slots: written, ..
        } if Some(*id) == final_exit => {
            for (&s, &v) in written {
                slots[s as usize] = v;
            }
        }
        other => problems.push(format!(
            "the evaluator ended with {other:?}, not the trace's end"
        )),
    }
    for (i, (got, want)) in slots.iter().zip(&end.slots).enumerate() {
        if got != want
            && !module.slot_read_after_exit(recorded.func_index, end_pc, end_calls, i as u32)
        {
            dead += 1;
        } else if got != want {
            problems.push(format!(
                "slot {i}: evaluator {got:#x}, interpreter {want:#x}"
            ));
        }
    }
    let globals: Vec<u64> = (0..end.globals.len() as u32)
        .map(|g| {
            outcome
                .globals
                .get(&g)
                .copied()
                .unwrap_or(entry.globals[g as usize])
        })
        .collect();
    if globals != end.globals {
        problems.push(format!(
            "globals: evaluator {globals:?}, interpreter {:?}",
            end.globals
        ));
    }
    if outcome.memory != end.memory {
        let first = outcome
            .memory
            .iter()
            .zip(&end.memory)
            .position(|(a, b)| a != b)
            .unwrap_or(outcome.memory.len().min(end.memory.len()));
        problems.push(format!("memory differs first at byte {first}"));
    }
    (problems, dead)
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
