//! `kiln bench --optimize`: the optimizer over every trace the examples record (issue 4):
//! how much cheaper the candidates are, how many are proven, and what each stage costs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use trace_capture::wasi::{self, SharedBuffer, WasiCtx};
use trace_capture::{Linker, Module, RecordConfig, Store};

use super::{guest_argv, Secs};

/// One trace through the optimizer.
struct Outcome {
    cost_before: u64,
    cost_after: u64,
    verdict: &'static str,
    /// Why saturation stopped: "saturated" or the limit it hit.
    stop: &'static str,
    saturate: Duration,
    verify: Duration,
}

pub fn main(programs: &[(String, PathBuf)], scale: Option<u32>) -> anyhow::Result<i32> {
    let args: Vec<String> = scale.iter().map(u32::to_string).collect();
    let mut outcomes = Vec::new();
    for (name, path) in programs {
        let traces = record(path, &args)?;
        eprintln!("bench: {name}: {} traces", traces.len());
        for trace in traces {
            outcomes.push(optimize(&trace));
        }
    }
    print!("{}", report(&outcomes));
    Ok(0)
}

fn record(path: &Path, args: &[String]) -> anyhow::Result<Vec<ir::Trace>> {
    let module = Module::new(&std::fs::read(path)?).map_err(|e| anyhow!("{e}"))?;
    let mut store = Store::new();
    store.enable_recording(RecordConfig::default());
    let ctx = WasiCtx::new(guest_argv(path, args)).stdout(Box::new(SharedBuffer::default()));
    let mut linker = Linker::new();
    wasi::define(&mut linker, &mut store, ctx);
    wasi::run_command(&mut store, &linker, &module).map_err(|e| anyhow!("{e}"))?;
    Ok(store.take_recorded().into_iter().map(|t| t.trace).collect())
}

fn optimize(trace: &ir::Trace) -> Outcome {
    let start = Instant::now();
    let out = saturate::optimize(trace, &saturate::Limits::default());
    let saturate = start.elapsed();
    let start = Instant::now();
    let verdict = verify::check_equivalent(trace, &out.candidate, &verify::Limits::default());
    let verify = start.elapsed();
    let stop = match out.stop_reason {
        saturate::StopReason::Saturated => "saturated",
        saturate::StopReason::IterationLimit => "iteration limit",
        saturate::StopReason::NodeLimit => "node limit",
        saturate::StopReason::TimeLimit => "time limit",
        saturate::StopReason::Other(_) => "other",
    };
    Outcome {
        stop,
        cost_before: out.cost_before,
        cost_after: out.cost_after,
        verdict: if verdict.is_proven() {
            "proven"
        } else if verdict.is_refuted() {
            "refuted"
        } else {
            "unknown"
        },
        saturate,
        verify,
    }
}

/// The `p`th percentile (nearest rank) of `values`.
fn percentile<T: Copy + Ord>(values: &[T], p: f64) -> T {
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

fn report(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let n = outcomes.len();
    if n == 0 {
        let _ = writeln!(s, "no traces recorded");
        return s;
    }
    let share = |count: usize| format!("{count} ({:.0}%)", 100.0 * count as f64 / n as f64);
    let reductions: Vec<u64> = outcomes
        .iter()
        .map(|o| {
            // Per mille of the recorded cost saved, so percentiles stay integers.
            (1000 * o.cost_before.saturating_sub(o.cost_after)) / o.cost_before.max(1)
        })
        .collect();
    let improved = outcomes
        .iter()
        .filter(|o| o.cost_after < o.cost_before)
        .count();
    let worse = outcomes
        .iter()
        .filter(|o| o.cost_after > o.cost_before)
        .count();
    let count = |v: &str| outcomes.iter().filter(|o| o.verdict == v).count();
    let sat: Vec<Duration> = outcomes.iter().map(|o| o.saturate).collect();
    let ver: Vec<Duration> = outcomes.iter().map(|o| o.verify).collect();
    let both: Vec<Duration> = outcomes.iter().map(|o| o.saturate + o.verify).collect();
    let _ = writeln!(s, "| figure | value |");
    let _ = writeln!(s, "|---|--:|");
    let _ = writeln!(s, "| traces | {n} |");
    let _ = writeln!(
        s,
        "| improved (cost below recorded) | {} |",
        share(improved)
    );
    let _ = writeln!(s, "| cost above recorded | {worse} |");
    let _ = writeln!(
        s,
        "| cost saved, median | {:.1}% |",
        percentile(&reductions, 50.0) as f64 / 10.0
    );
    let _ = writeln!(
        s,
        "| cost saved, p90 | {:.1}% |",
        percentile(&reductions, 90.0) as f64 / 10.0
    );
    let _ = writeln!(
        s,
        "| cost saved, max | {:.1}% |",
        percentile(&reductions, 100.0) as f64 / 10.0
    );
    for v in ["proven", "refuted", "unknown"] {
        let _ = writeln!(s, "| {v} | {} |", share(count(v)));
    }
    // Limits hit: a trace cut short still ships its best candidate so far.
    let stops = |v: &str| outcomes.iter().filter(|o| o.stop == v).count();
    let _ = writeln!(
        s,
        "| saturation stopped: saturated / iteration / node / time limit | {} / {} / {} / {} |",
        stops("saturated"),
        stops("iteration limit"),
        stops("node limit"),
        stops("time limit")
    );
    let _ = writeln!(
        s,
        "| saturation p50 / p95 | {} / {} |",
        Secs(percentile(&sat, 50.0)),
        Secs(percentile(&sat, 95.0))
    );
    let _ = writeln!(
        s,
        "| verification p50 / p95 | {} / {} |",
        Secs(percentile(&ver, 50.0)),
        Secs(percentile(&ver, 95.0))
    );
    let _ = writeln!(s, "| both, p95 | {} |", Secs(percentile(&both, 95.0)));
    s
}
