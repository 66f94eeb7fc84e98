//! `kiln optimize`: the nightly job. For every trace of a corpus without a result by the
//! current optimizer, saturate, extract, verify and store the result, in parallel over
//! traces.
//!
//! Results are keyed by the trace's content hash and [`optimizer_version`], so a rerun on
//! an unchanged corpus finds every result and does no saturation and no solver work. Each
//! result is stored as soon as its trace is done, in its own transaction, so a kill at any
//! moment loses only the traces in flight, and the rerun picks them up. A panic in one
//! trace is stored as `failed` with its message and the job goes on.

use std::io::IsTerminal;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use corpus::{Corpus, OptimizationResult, TraceHash, Verdict};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

/// The default budget per trace: saturation's own default limit (1 s) plus a few solver
/// queries at verify's default timeout (2 s each; a refutation takes up to three). A trace
/// that needs more than that is a runaway worth recording as such, not waiting for.
pub const DEFAULT_BUDGET_SECS: f64 = 10.0;

/// The reason stored for a trace whose budget ran out.
const BUDGET_REASON: &str = "budget";

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Optimizes every trace of the corpus that has no result by this optimizer version (a hash \
of the rules, cost model and limits, plus the solver's version), and stores each result as \
it completes. A rerun on an unchanged corpus does nothing. Ends with one summary line.

Exit codes: 0 when the job ran (whatever the verdicts); 2 when the corpus cannot be used.")]
pub struct OptimizeArgs {
    /// The corpus directory.
    #[arg(long, value_name = "DIR")]
    corpus: PathBuf,
    /// Traces optimized at once (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Time allowed for one trace, saturation and verification together, in seconds;
    /// a trace that runs out is stored as `unknown: budget`.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_BUDGET_SECS)]
    budget_per_trace: f64,
}

/// The version under which results are stored: the optimizer's and the solver's, since a
/// new solver may decide what an old one could not.
pub fn optimizer_version() -> String {
    format!("{}+z3-{}", saturate::version(), z3::full_version())
}

/// The `--budget-per-trace` argument, checked.
pub fn parse_budget(seconds: f64) -> anyhow::Result<Duration> {
    if !(seconds.is_finite() && seconds > 0.0) {
        bail!("--budget-per-trace must be a positive number of seconds, not {seconds}");
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Verdicts counted over the job, shared by the workers.
#[derive(Default)]
struct Tally {
    proven: AtomicU64,
    refuted: AtomicU64,
    unknown: AtomicU64,
    failed: AtomicU64,
}

impl Tally {
    fn count(&self, verdict: Verdict) {
        let counter = match verdict {
            Verdict::Proven => &self.proven,
            Verdict::Refuted => &self.refuted,
            Verdict::Unknown => &self.unknown,
            Verdict::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

pub fn main(args: OptimizeArgs) -> anyhow::Result<i32> {
    let budget = parse_budget(args.budget_per_trace)?;
    let jobs = match args.jobs {
        Some(0) => bail!("--jobs must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let dir = args.corpus.as_path();
    let started = Instant::now();
    let version = optimizer_version();
    let corpus = open(dir)?;
    let pending = corpus
        .traces_without_result(&version)
        .with_context(|| format!("corpus {}", dir.display()))?;
    let skipped = corpus
        .count_results(&version)
        .with_context(|| format!("corpus {}", dir.display()))?;
    drop(corpus);

    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(pending.len() as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} traces, {elapsed} ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let tally = Tally::default();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("starting the worker threads")?;
    // A `Corpus` is one connection and not `Sync`: each worker opens its own, and every
    // result is its own transaction, committed as soon as the trace is done.
    pool.install(|| {
        pending.par_iter().for_each_init(
            || open(dir),
            |corpus, hash| {
                let verdict = match corpus {
                    Ok(corpus) => optimize_and_store(corpus, hash, &version, |trace| {
                        optimize_one(trace, budget)
                    }),
                    Err(e) => {
                        progress.suspend(|| eprintln!("kiln: error: {hash}: {e:#}"));
                        Verdict::Failed
                    }
                };
                tally.count(verdict);
                progress.inc(1);
            },
        )
    });
    progress.finish_and_clear();

    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "optimize: {} traces, {} proven, {} refuted, {} unknown, {} failed, {skipped} skipped (current); {:.2} s",
        pending.len() as u64 + skipped,
        load(&tally.proven),
        load(&tally.refuted),
        load(&tally.unknown),
        load(&tally.failed),
        started.elapsed().as_secs_f64(),
    );
    Ok(0)
}

fn open(dir: &Path) -> anyhow::Result<Corpus> {
    Corpus::open_existing(dir).with_context(|| format!("corpus {}", dir.display()))
}

/// Optimizes one trace with `optimize` and stores the result; returns the verdict for the
/// tally. A panic in `optimize` is stored as `failed` with its message. A trace that
/// cannot be read, or a result that cannot be stored, is reported and counted as failed
/// but stores nothing: the next run tries it again.
fn optimize_and_store(
    corpus: &mut Corpus,
    hash: &TraceHash,
    version: &str,
    optimize: impl Fn(&ir::Trace) -> OptimizationResult,
) -> Verdict {
    let trace = match corpus.get(hash) {
        Ok(stored) => stored.trace,
        Err(e) => {
            eprintln!("kiln: warning: {hash} not optimized: {e}");
            return Verdict::Failed;
        }
    };
    let result = match catch_unwind(AssertUnwindSafe(|| optimize(&trace))) {
        Ok(result) => result,
        Err(payload) => failed(panic_message(payload.as_ref())),
    };
    match corpus.put_result(hash, version, &result) {
        Ok(()) => result.verdict,
        Err(e) => {
            eprintln!("kiln: warning: {hash}: the result could not be stored: {e}");
            Verdict::Failed
        }
    }
}

/// Saturates, extracts and verifies one trace within `budget`.
pub fn optimize_one(trace: &ir::Trace, budget: Duration) -> OptimizationResult {
    let started = Instant::now();
    // The budget caps saturation's own time limit too, so a runaway e-graph stops in time.
    let mut limits = saturate::Limits::default();
    limits.time = limits.time.min(budget);
    let out = saturate::optimize(trace, &limits);
    let saturation_time = started.elapsed();
    let mut result = OptimizationResult {
        verdict: Verdict::Unknown,
        reason: String::new(),
        candidate: None,
        cost_before: out.cost_before,
        cost_after: out.cost_before,
        saturation_time,
        verification_time: Duration::ZERO,
    };
    // Saturation cut short by the budget proves nothing either way, even if it kept the
    // trace.
    let Some(left) = budget.checked_sub(saturation_time).filter(|d| !d.is_zero()) else {
        result.reason = BUDGET_REASON.to_string();
        return result;
    };
    if out.candidate == *trace {
        // Nothing to prove: the recorded trace is its own candidate.
        result.verdict = Verdict::Proven;
        result.reason = format!(
            "kept the recorded trace: {}",
            out.fallback.as_deref().unwrap_or("nothing cheaper")
        );
        return result;
    }
    let solver = verify::Limits {
        timeout: left.min(verify::DEFAULT_TIMEOUT),
    };
    let verified = Instant::now();
    let verdict = verify::check_equivalent(trace, &out.candidate, &solver);
    result.verification_time = verified.elapsed();
    match verdict {
        verify::Verdict::Proven => {
            result.verdict = Verdict::Proven;
            result.cost_after = out.cost_after;
            result.candidate = Some(out.candidate);
        }
        verify::Verdict::Refuted(_) => {
            result.verdict = Verdict::Refuted;
            result.reason = verdict.to_string();
            result.cost_after = out.cost_after;
            result.candidate = Some(out.candidate);
        }
        verify::Verdict::Unknown(reason) => {
            result.cost_after = out.cost_after;
            result.candidate = Some(out.candidate);
            result.reason = if started.elapsed() >= budget {
                BUDGET_REASON.to_string()
            } else {
                reason
            };
        }
    }
    result
}

fn failed(message: String) -> OptimizationResult {
    OptimizationResult {
        verdict: Verdict::Failed,
        reason: message,
        candidate: None,
        cost_before: 0,
        cost_after: 0,
        saturation_time: Duration::ZERO,
        verification_time: Duration::ZERO,
    }
}

/// A panic's message: panics carry a `&str` or a `String`, anything else is unnamed.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string());
    format!("panicked: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A corpus holding one trace, and that trace's hash.
    fn corpus_of_one(dir: &Path) -> (Corpus, TraceHash) {
        let trace = ir::text::parse(
            "trace locals=1\n  in  v0:i32 = slot 0\n  v1:i32 = i32.mul v0 8\n  loop [s0=v1]\n",
        )
        .unwrap();
        let hash = ir::hash::content_hash(&trace);
        let provenance = ir::Provenance {
            module_hash: "00".repeat(32),
            func_index: 0,
            anchor_offset: 0,
            kind: ir::AnchorKind::Loop,
            hits: 1,
        };
        let mut corpus = Corpus::open(dir).unwrap();
        let run = corpus
            .begin_run("test", &provenance.module_hash, &["x"])
            .unwrap();
        corpus.add_traces(run, &[(trace, provenance)]).unwrap();
        (corpus, hash)
    }

    #[test]
    fn a_panic_is_stored_as_failed_with_its_message() {
        let dir = tempfile_dir("panic");
        let (mut corpus, hash) = corpus_of_one(&dir);
        let verdict = optimize_and_store(&mut corpus, &hash, "test", |_| panic!("rule exploded"));
        assert_eq!(verdict, Verdict::Failed);
        let stored = corpus.result(&hash, "test").unwrap().unwrap();
        assert_eq!(stored.result.verdict, Verdict::Failed);
        assert_eq!(stored.result.reason, "panicked: rule exploded");
        assert!(corpus.traces_without_result("test").unwrap().is_empty());
    }

    #[test]
    fn a_real_trace_is_optimized_and_proven() {
        let dir = tempfile_dir("proven");
        let (mut corpus, hash) = corpus_of_one(&dir);
        let verdict = optimize_and_store(&mut corpus, &hash, "test", |t| {
            optimize_one(t, Duration::from_secs_f64(DEFAULT_BUDGET_SECS))
        });
        assert_eq!(verdict, Verdict::Proven);
        let stored = corpus.result(&hash, "test").unwrap().unwrap().result;
        assert!(stored.candidate.is_some(), "mul by 8 becomes a shift");
        assert!(stored.cost_after < stored.cost_before);
    }

    #[test]
    fn a_spent_budget_is_unknown_budget() {
        let dir = tempfile_dir("budget");
        let (corpus, hash) = corpus_of_one(&dir);
        let trace = corpus.get(&hash).unwrap().trace;
        let result = optimize_one(&trace, Duration::from_nanos(1));
        assert_eq!(result.verdict, Verdict::Unknown);
        assert_eq!(result.reason, BUDGET_REASON);
    }

    /// A fresh directory under the system's temporary directory for one test.
    fn tempfile_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kiln-optimize-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
