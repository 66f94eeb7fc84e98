//! `kiln optimize`: the nightly job. For every trace of a corpus without a result by the
//! current optimizer, saturate, extract, verify and store the result, in parallel over
//! traces.
//!
//! Results are keyed by the trace's content hash and [`optimizer_version`], so a rerun on
//! an unchanged corpus finds every result and does no saturation and no solver work. Each
//! result is stored as soon as its trace is done, in its own transaction, so a kill at any
//! moment loses only the traces in flight, and the rerun picks them up. The work runs in
//! worker processes (`optimize_worker.rs`), one per thread: a panic in one trace is
//! stored as `failed` with its message, a worker that crashes (a solver abort) as `failed`
//! with how it died, one that overruns its budget is killed and stored as
//! `unknown: budget`, and the job goes on. `--shard I/N` takes a deterministic share.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use corpus::{Corpus, OptimizationResult, TraceHash, Verdict};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::optimize_worker::{Lost, Worker};

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
    /// Optimize only shard I of N (0-based): a deterministic share of the traces by
    /// their hash, so N machines, each with a copy of the corpus, split the work; join
    /// their results with `kiln merge`.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// After optimizing, build a cache library for every app of the corpus into DIR
    /// (`APP.kcache`), as `kiln cache build` would, with the app's module as the corpus
    /// stored it (or as found in --apps)
    #[arg(long, value_name = "DIR", conflicts_with = "shard")]
    emit: Option<PathBuf>,
    /// Where --emit looks for apps' modules the corpus does not hold (corpora recorded
    /// before kiln stored modules): every `.wasm` file in this directory, matched by
    /// SHA-256
    #[arg(long, value_name = "DIR", requires = "emit")]
    apps: Option<PathBuf>,
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
    let mut pending = corpus
        .traces_without_result(&version)
        .with_context(|| format!("corpus {}", dir.display()))?;
    let mut skipped = corpus
        .count_results(&version)
        .with_context(|| format!("corpus {}", dir.display()))?;
    if let Some(shard) = args.shard {
        let all = pending.len();
        pending.retain(|hash| shard.contains(hash));
        // The summary counts this shard's traces only: those with a current result too.
        let listing = corpus
            .list()
            .with_context(|| format!("corpus {}", dir.display()))?;
        let in_shard = listing
            .traces
            .iter()
            .filter(|t| shard.contains(&t.hash))
            .count();
        skipped = in_shard.saturating_sub(pending.len()) as u64;
        println!(
            "optimize: shard {shard}: {} of the {all} traces without a current result",
            pending.len()
        );
    }
    drop(corpus);

    let progress = Progress::new(pending.len() as u64);
    let tally = Tally::default();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("starting the job's threads")?;
    let next = AtomicUsize::new(0);
    // Each thread drives one worker process and takes the next trace when its worker is
    // done; a worker that dies is replaced for the traces after.
    pool.scope(|scope| {
        for _ in 0..jobs.min(pending.len()) {
            scope.spawn(|_| {
                let mut worker: Option<Worker> = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(hash) = pending.get(i) else { break };
                    let verdict =
                        optimize_in_worker(&mut worker, dir, hash, &version, budget, &progress);
                    tally.count(verdict);
                    progress.done(&tally);
                }
            });
        }
    });
    progress.finish();

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
    match &args.emit {
        Some(out) => emit_caches(dir, args.apps.as_deref(), out, args.budget_per_trace),
        None => Ok(0),
    }
}

/// Builds a cache library for every app recorded in the corpus, with its module as the
/// corpus holds it, else as found in `apps_dir`. Returns 0 when every app got one, 1 when
/// some could not (each named with the reason on stderr).
fn emit_caches(
    dir: &Path,
    apps_dir: Option<&Path>,
    out: &Path,
    budget: f64,
) -> anyhow::Result<i32> {
    let on_disk = match apps_dir {
        Some(apps) => modules_in(apps)?,
        None => BTreeMap::new(),
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let corpus = open(dir)?;
    let runs = corpus
        .runs()
        .with_context(|| format!("corpus {}", dir.display()))?;
    // One cache per module, named after the app; two versions of one app (two modules
    // recorded under one name) get the module hash's first digits in their names.
    let mut apps: BTreeMap<String, String> = BTreeMap::new();
    for run in &runs {
        apps.entry(run.module_hash.clone())
            .or_insert_with(|| run.app.clone());
    }
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for name in apps.values() {
        *names.entry(name).or_default() += 1;
    }
    let mut missed = 0;
    for (hash, name) in &apps {
        let stored = match corpus.module(hash) {
            Ok(stored) => stored,
            Err(e) => {
                eprintln!("kiln: warning: {name}'s module in the corpus: {e}");
                None
            }
        };
        let module = match (stored, on_disk.get(hash)) {
            (Some(bytes), _) => bytes,
            (None, Some(path)) => {
                std::fs::read(path).with_context(|| format!("{}", path.display()))?
            }
            (None, None) => {
                eprintln!(
                    "kiln: warning: no cache for {name}: the corpus does not hold its module \
                     (sha256 {hash}){}",
                    apps_dir.map_or(String::new(), |d| format!(" and {} has none", d.display()))
                );
                missed += 1;
                continue;
            }
        };
        let file = if names[name.as_str()] > 1 {
            format!("{name}-{}.kcache", &hash[..12])
        } else {
            format!("{name}.kcache")
        };
        if let Err(e) =
            crate::cache_cmd::build_from_bytes(dir, name, &module, &out.join(file), budget)
        {
            eprintln!("kiln: warning: no cache for {name}: {e:#}");
            missed += 1;
        }
    }
    Ok(if missed == 0 { 0 } else { 1 })
}

/// Every `.wasm` file directly in `dir`, by the SHA-256 of its bytes: how the corpus
/// names the module an app was recorded from.
pub fn modules_in(dir: &Path) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut modules = BTreeMap::new();
    let listing = std::fs::read_dir(dir).with_context(|| format!("--apps {}", dir.display()))?;
    for entry in listing {
        let path = entry
            .with_context(|| format!("--apps {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "wasm") {
            let bytes = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
            modules.insert(crate::cache_cmd::hex(&Sha256::digest(&bytes)), path);
        }
    }
    Ok(modules)
}

/// How long the job waits for a worker's answer past the budget: the worker keeps the
/// budget itself (saturation's time limit and the solver's timeout are cut to it), so
/// this only catches a solver stuck past its own timeout.
const WORKER_GRACE: Duration = Duration::from_secs(5);

/// Optimizes `hash` in `worker` (started if there is none), and when the worker dies or
/// overruns, stores that as the trace's result here and drops the worker.
fn optimize_in_worker(
    worker: &mut Option<Worker>,
    dir: &Path,
    hash: &TraceHash,
    version: &str,
    budget: Duration,
    progress: &Progress,
) -> Verdict {
    if worker.is_none() {
        match Worker::spawn(dir, budget.as_secs_f64()) {
            Ok(w) => *worker = Some(w),
            Err(e) => {
                progress.note(&format!("kiln: error: {hash} not optimized: {e:#}"));
                return Verdict::Failed;
            }
        }
    }
    let w = worker.as_mut().expect("a worker was just started");
    let mut stage = None;
    let answer = w.optimize(hash, budget * 2 + WORKER_GRACE, |s| {
        progress.enter(stage, s);
        stage = Some(s);
    });
    progress.leave(stage);
    let (verdict, reason) = match answer {
        Ok(verdict) => return verdict,
        Err(Lost::Died(how)) => (Verdict::Failed, how),
        Err(Lost::TimedOut) => (Verdict::Unknown, BUDGET_REASON.to_string()),
    };
    *worker = None;
    let stored = open(dir).and_then(|mut corpus| {
        // A worker may die after committing its result and before saying so: that
        // result stands.
        if let Some(committed) = corpus.result(hash, version)? {
            return Ok(Some(committed.result.verdict));
        }
        let trace = corpus.get(hash)?.trace;
        let mut result = failed(&trace, reason.clone());
        result.verdict = verdict;
        corpus.put_result(hash, version, &result)?;
        Ok(None)
    });
    match stored {
        Ok(Some(committed)) => committed,
        Ok(None) => verdict,
        Err(e) => {
            progress.note(&format!(
                "kiln: warning: {hash}: {reason}; the result could not be stored: {e:#}"
            ));
            verdict
        }
    }
}

/// A deterministic share of the traces: `--shard I/N` takes the traces whose hash's first
/// eight bytes, as a number, leave remainder I when divided by N. Content hashes are
/// uniform, so shards come out the same size, and every machine agrees on the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    fn contains(&self, hash: &TraceHash) -> bool {
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.0[..8]);
        u64::from_be_bytes(first) % self.count == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("`{text}` is not a shard: write I/N, with 0 <= I < N (e.g. 0/3)");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (
            index.trim().parse().map_err(|_| bad())?,
            count.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The job's progress on a terminal: per-stage counts of traces in flight, verdicts so
/// far, rate and time left. Off a terminal it draws nothing.
struct Progress {
    bar: ProgressBar,
    saturating: AtomicU64,
    verifying: AtomicU64,
}

impl Progress {
    fn new(traces: u64) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(Some(traces), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} traces {msg}, {eta} left")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress {
            bar,
            saturating: AtomicU64::new(0),
            verifying: AtomicU64::new(0),
        }
    }

    fn counter(&self, stage: Stage) -> &AtomicU64 {
        match stage {
            Stage::Saturating => &self.saturating,
            Stage::Verifying => &self.verifying,
        }
    }

    /// A trace moves from stage `from` (if any) to `to`.
    fn enter(&self, from: Option<Stage>, to: Stage) {
        self.leave(from);
        self.counter(to).fetch_add(1, Ordering::Relaxed);
    }

    /// A trace leaves stage `from` (if any).
    fn leave(&self, from: Option<Stage>) {
        if let Some(from) = from {
            self.counter(from).fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn done(&self, tally: &Tally) {
        self.bar.inc(1);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let rate = self.bar.position() as f64 / self.bar.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "(saturating {}, verifying {}; proven {}, refuted {}, unknown {}, failed {}), {rate:.1}/s",
            load(&self.saturating),
            load(&self.verifying),
            load(&tally.proven),
            load(&tally.refuted),
            load(&tally.unknown),
            load(&tally.failed),
        ));
    }

    fn note(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Where a trace is in the optimizer, as workers report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Saturating,
    Verifying,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Saturating => "saturating",
            Stage::Verifying => "verifying",
        }
    }

    pub fn from_name(name: &str) -> Option<Stage> {
        [Stage::Saturating, Stage::Verifying]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

fn open(dir: &Path) -> anyhow::Result<Corpus> {
    Corpus::open_existing(dir).with_context(|| format!("corpus {}", dir.display()))
}

/// Optimizes one trace with `optimize` and stores the result; returns the verdict for the
/// tally. A panic in `optimize` is stored as `failed` with its message. A trace that
/// cannot be read, or a result that cannot be stored, is reported and counted as failed
/// but stores nothing: the next run tries it again.
pub fn optimize_and_store(
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
        Err(payload) => failed(&trace, panic_message(payload.as_ref())),
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
    optimize_one_with_stages(trace, budget, &|_| {})
}

/// [`optimize_one`], telling `on_stage` as each stage begins.
pub fn optimize_one_with_stages(
    trace: &ir::Trace,
    budget: Duration,
    on_stage: &dyn Fn(Stage),
) -> OptimizationResult {
    let started = Instant::now();
    on_stage(Stage::Saturating);
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
    on_stage(Stage::Verifying);
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

/// A `failed` result for `trace`, costed as recorded (the cache ships it so).
fn failed(trace: &ir::Trace, message: String) -> OptimizationResult {
    let cost = saturate::cost::trace_cost(trace);
    OptimizationResult {
        verdict: Verdict::Failed,
        reason: message,
        candidate: None,
        cost_before: cost,
        cost_after: cost,
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
