//! The recorder against the interpreter, on every bundled example program.
//!
//! Recording is observation: a run with recording on must print exactly what a run
//! without it prints. And every recorded trace, replayed by `ir`'s reference evaluator
//! from the state the interpreter had at the anchor, must reach the state the
//! interpreter reached where the trace ends: same end, same frame slots, same globals,
//! same memory.

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
