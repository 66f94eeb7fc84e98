//! Drop-a-file tests of the recorder: each `tests/recorder/NAME.wat` exports
//! `main(i32) -> i32`; it is run with `RUN_ARG` under a low threshold and every trace
//! recorded is printed, in recording order, and compared with `NAME.out` beside it.
//! `KILN_BLESS=1 cargo test -p trace-capture --test recorder` rewrites the `.out` files
//! after a deliberate change; review the diff.

use std::path::{Path, PathBuf};

use trace_capture::{Module, RecordConfig, Store, Value};

/// Low enough that each test loop is recorded after a few iterations.
const THRESHOLD: u64 = 3;
/// The argument to `main`: enough iterations to pass the threshold.
const RUN_ARG: i32 = 20;

fn recorder_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/recorder")
}

/// What the recorder makes of one program: the result of `main` and every trace.
fn record(wat_path: &Path) -> String {
    let bytes = wat::parse_file(wat_path).expect("test program parses");
    let module = Module::new(&bytes).expect("test program validates");
    let mut store = Store::new();
    store.enable_recording(RecordConfig {
        hot_threshold: THRESHOLD,
        ..RecordConfig::default()
    });
    let instance = store.instantiate(&module, &[]).expect("no imports");
    let result = store
        .call_export(instance, "main", &[Value::I32(RUN_ARG)])
        .expect("main runs");
    let mut out = format!(";; main({RUN_ARG}) = {result:?}\n");
    let stats = store.record_stats();
    out.push_str(&format!(
        ";; {} traces, {} cut at a call, aborts {:?}\n",
        stats.traces, stats.cut_at_call, stats.aborts
    ));
    for t in store.take_recorded() {
        out.push_str(&format!(
            "\n;; func {} loop at {:#x}\n{}",
            t.func_index, t.anchor_offset, t.trace
        ));
    }
    out
}

fn check(wat_path: &Path) -> Option<String> {
    let got = record(wat_path);
    let expected_path = wat_path.with_extension("out");
    if std::env::var_os("KILN_BLESS").is_some() {
        std::fs::write(&expected_path, &got).expect("write the expected output");
        return None;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    (got != expected).then(|| {
        format!(
            "{}: recorded traces differ from {} (bless with KILN_BLESS=1)\n--- got:\n{got}\n--- expected:\n{expected}",
            wat_path.display(),
            expected_path.display()
        )
    })
}

#[test]
fn recorded_traces_match_their_golden_files() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(recorder_dir())
        .expect("tests/recorder exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wat"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let failures: Vec<String> = files.iter().filter_map(|f| check(f)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
