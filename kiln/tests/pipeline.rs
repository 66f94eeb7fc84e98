//! Saturation and proof over every trace recorded from the bundled examples: no
//! candidate may be refuted (that would be an unsound rule), no candidate may cost more
//! than its recorded trace, and the counts of each verdict are printed.

use std::path::PathBuf;

use trace_capture::wasi::{self, SharedBuffer, WasiCtx};
use trace_capture::{Linker, Module, RecordConfig, Store};

fn example_traces() -> Vec<(String, ir::Trace)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    paths.sort();
    let mut traces = Vec::new();
    for path in paths {
        let module = Module::new(&std::fs::read(&path).unwrap()).unwrap();
        let mut store = Store::new();
        store.enable_recording(RecordConfig::default());
        let ctx =
            WasiCtx::new(vec!["x".into(), "1".into()]).stdout(Box::new(SharedBuffer::default()));
        let mut linker = Linker::new();
        wasi::define(&mut linker, &mut store, ctx);
        wasi::run_command(&mut store, &linker, &module).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        for t in store.take_recorded() {
            traces.push((
                format!("{name} func {} @{:#x}", t.func_index, t.anchor_offset),
                t.trace,
            ));
        }
    }
    traces
}

#[test]
fn every_example_trace_optimizes_to_a_candidate_that_is_never_refuted() {
    let traces = example_traces();
    assert!(!traces.is_empty());
    let (mut proven, mut unknown, mut improved) = (0, 0, 0);
    let mut refuted = Vec::new();
    for (name, trace) in &traces {
        let out = saturate::optimize(trace, &saturate::Limits::default());
        assert!(
            out.cost_after <= out.cost_before,
            "{name}: candidate costs {} > recorded {}",
            out.cost_after,
            out.cost_before
        );
        if out.cost_after < out.cost_before {
            improved += 1;
        }
        let limits = verify::Limits {
            timeout: std::time::Duration::from_secs(30),
        };
        match verify::check_equivalent(trace, &out.candidate, &limits) {
            verify::Verdict::Proven => proven += 1,
            verify::Verdict::Unknown(_) => unknown += 1,
            verify::Verdict::Refuted(cx) => refuted.push(format!(
                "{name}: rules {:?}\n{trace}\n--- candidate:\n{}\n{cx:?}",
                out.rules_fired, out.candidate
            )),
        }
    }
    println!(
        "pipeline: {} traces, {improved} improved, {proven} proven, {unknown} unknown, {} refuted",
        traces.len(),
        refuted.len()
    );
    assert!(
        refuted.is_empty(),
        "unsound candidates:\n{}",
        refuted.join("\n\n")
    );
}
