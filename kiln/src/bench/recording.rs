//! `kiln bench --recording`: what trace recording costs, and what it finds (issue 3).
//!
//! The cost: each program runs on kiln's interpreter with recording off and on, taking
//! turns, each run in its own child process; the ratio of the medians is the overhead.
//! What it finds: one more run in this process, recording on and counting every
//! dispatched instruction, gives the recorder's counters and the coverage estimate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use trace_capture::wasi::{self, SharedBuffer, WasiCtx};
use trace_capture::{AnchorKind, Linker, Module, RecordConfig, RecordStats, Store};

use super::{check_agreement, geomean, guest_argv, spawn_child, Engine, Sample, Secs};

/// Issue 3's bar: recording may cost at most 10% of a run (geometric mean).
const RECORDING_OVERHEAD_BAR: f64 = 1.10;

/// What one program's recording run found.
struct Findings {
    stats: RecordStats,
    mean_trace_len: f64,
    /// Estimated share of dispatched instructions that ran in iterations of recorded
    /// loops after their trace was taken: for each trace, the anchor's later hits times
    /// the instructions its recorded pass executed, over all instructions dispatched.
    coverage: f64,
}

struct Row {
    name: String,
    plain: std::time::Duration,
    recording: std::time::Duration,
    findings: Findings,
}

pub fn main(
    programs: &[(String, PathBuf)],
    scale: Option<u32>,
    runs: usize,
) -> anyhow::Result<i32> {
    let args: Vec<String> = scale.iter().map(u32::to_string).collect();
    let mut rows = Vec::new();
    for (name, path) in programs {
        let mut plain = Vec::new();
        let mut recording = Vec::new();
        for _ in 0..runs {
            for engine in [Engine::Kiln, Engine::KilnRecording] {
                let sample = spawn_child(engine, path, &args)
                    .with_context(|| format!("{name} on {}", engine.name()))?;
                if let Some(reference) = plain.first() {
                    check_agreement(name, Engine::Kiln, reference, engine, &sample)?;
                }
                match engine {
                    Engine::Kiln => plain.push(sample),
                    _ => recording.push(sample),
                }
            }
        }
        let findings = findings(path, &args).with_context(|| format!("{name}: recording run"))?;
        let row = Row {
            name: name.clone(),
            plain: median(&plain),
            recording: median(&recording),
            findings,
        };
        eprintln!(
            "bench: {name}: kiln {}, kiln recording {}",
            Secs(row.plain),
            Secs(row.recording)
        );
        rows.push(row);
    }
    print!("{}", report(&rows));
    Ok(0)
}

fn median(samples: &[Sample]) -> std::time::Duration {
    let mut times: Vec<_> = samples.iter().map(|s| s.run.run).collect();
    times.sort_unstable();
    times[times.len() / 2]
}

fn findings(path: &Path, args: &[String]) -> anyhow::Result<Findings> {
    let wasm = std::fs::read(path)?;
    let module = Module::new(&wasm).map_err(|e| anyhow!("{e}"))?;
    let mut store = Store::new();
    store.enable_recording(RecordConfig::default());
    store.count_dispatches(true);
    let ctx = WasiCtx::new(guest_argv(path, args)).stdout(Box::new(SharedBuffer::default()));
    let mut linker = Linker::new();
    wasi::define(&mut linker, &mut store, ctx);
    let (instance, _) =
        wasi::run_command(&mut store, &linker, &module).map_err(|e| anyhow!("{e}"))?;
    let hits = store.anchor_hits(instance);
    let traces = store.take_recorded();
    let stats = store.record_stats();
    let anchor_of = |func: u32, offset: u32| {
        module
            .anchors()
            .iter()
            .position(|a| a.kind == AnchorKind::Loop && a.func_index == func && a.offset == offset)
    };
    let covered: f64 = traces
        .iter()
        .filter_map(|t| {
            let later = hits[anchor_of(t.func_index, t.anchor_offset)?].saturating_sub(t.hits);
            Some(later as f64 * t.observed_instrs as f64)
        })
        .sum();
    let mean_trace_len = if traces.is_empty() {
        0.0
    } else {
        traces.iter().map(|t| t.trace.body.len()).sum::<usize>() as f64 / traces.len() as f64
    };
    Ok(Findings {
        stats,
        mean_trace_len,
        coverage: (covered / store.dispatched().max(1) as f64).min(1.0),
    })
}

fn report(rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| program | kiln | kiln + recording | ratio | hot anchors | traces | aborts | \
         mean trace length | coverage |"
    );
    let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|---|--:|--:|");
    for r in rows {
        let f = &r.findings;
        let mut aborts: BTreeMap<String, u64> = BTreeMap::new();
        for (reason, n) in &f.stats.aborts {
            *aborts.entry(reason.to_string()).or_default() += n;
        }
        let aborts = if aborts.is_empty() {
            "none".to_string()
        } else {
            aborts
                .iter()
                .map(|(r, n)| format!("{r}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2}x | {} | {} | {} | {:.1} | {:.0}% |",
            r.name,
            Secs(r.plain),
            Secs(r.recording),
            ratio(r),
            f.stats.hot_anchors,
            f.stats.traces,
            aborts,
            f.mean_trace_len,
            f.coverage * 100.0
        );
    }
    let g = geomean(rows.iter().map(ratio));
    let verdict = if g <= RECORDING_OVERHEAD_BAR {
        "met"
    } else {
        "MISSED"
    };
    let _ = writeln!(
        s,
        "\ngeometric mean of (kiln + recording)/kiln: {g:.3}x (bar: at most \
         {RECORDING_OVERHEAD_BAR:.2}x, {verdict})"
    );
    s
}

fn ratio(r: &Row) -> f64 {
    r.recording.as_secs_f64() / r.plain.as_secs_f64()
}
