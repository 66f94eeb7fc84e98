//! `kiln bench --tiers`: kiln's tiers side by side in one run (issue 5).
//!
//! The engines, as columns: kiln's interpreter; kiln with the live JIT (trace code
//! compiled by wasmtime's Cranelift or Winch while the program runs, as `kiln run --jit
//! live --engine X` does); kiln with a cache library (trace code built before the run from
//! a recorded corpus, loaded as `kiln run --cache FILE` loads it, with that command's
//! default live JIT behind it), on both compilers; wasmtime
//! compiling the whole module with Cranelift (the ceiling); and wasmi. Every run is a
//! child process (`kiln bench --child ENGINE`), the engines take turns run by run, every
//! run's output is checked against the interpreter's (and the example's expected output),
//! and the tables show medians as ratios.
//!
//! Steady state is measured by scaling the work: each tiered engine also runs at scales
//! S and 2S. The difference of the two times is the cost of S units at the engine's
//! steady rate, so the ratio of the interpreter's difference to an engine's is its
//! steady-state speedup, and the time extrapolated to zero work (2·t(S) − t(2S)), less
//! the interpreter's, is what the engine spends before it runs at that rate (recording,
//! compiling or loading trace code, and the interpreted iterations in between): its
//! warm-up.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use runtime::{Backend, WasmtimeTier};
use sha2::{Digest, Sha256};
use trace_capture::wasi::{self, RunError, SharedBuffer, WasiCtx};
use trace_capture::{InstanceId, Linker, Module, RecordConfig, Store};

use super::{
    check_agreement, geomean, golden_path, spawn_child_with_env, Engine, EngineRun, Mib, Outcome,
    Sample,
};

/// The engines compared, in column order. The interpreter comes first: its first run is
/// the reference every other run's output is checked against.
pub(super) const TIER_ENGINES: [Engine; 7] = [
    Engine::Kiln,
    Engine::KilnLive(Backend::Cranelift),
    Engine::KilnLive(Backend::Winch),
    Engine::KilnCache(Backend::Cranelift),
    Engine::KilnCache(Backend::Winch),
    Engine::Wasmtime,
    Engine::Wasmi,
];

/// The engines whose steady state is measured: the interpreter (the reference) and every
/// engine with a warm-up of its own (wasmtime compiles before it runs; wasmi has no tiers).
const STEADY_STATE_ENGINES: [Engine; 5] = [
    Engine::Kiln,
    Engine::KilnLive(Backend::Cranelift),
    Engine::KilnLive(Backend::Winch),
    Engine::KilnCache(Backend::Cranelift),
    Engine::KilnCache(Backend::Winch),
];

/// Issue 5's bar: kiln with the cache at least this many times faster than kiln's
/// interpreter (geometric mean over the programs).
const CACHE_SPEEDUP_BAR: f64 = 5.0;

/// Issue 5's bar: kiln with the cache at most this many times wasmtime's time running
/// the whole module (geometric mean over the programs).
const CACHE_VS_WASMTIME_BAR: f64 = 2.0;

/// The smaller scale S of the steady-state runs (the larger is 2S) when `--scale` is not
/// given. The examples' default scales are 64 to 170 (each about 200 M wasm
/// instructions), so 32 and 64 run between a fifth and all of a default run: long
/// enough that the difference of the two times is well above a run's noise, short enough
/// that the extra runs do not double the bench.
const STEADY_STATE_BASE_SCALE: u32 = 32;

/// How a cache child learns which cache library to load: the parent builds one per
/// program and names it in this environment variable.
const CACHE_FILE_ENV: &str = "KILN_BENCH_CACHE_FILE";

/// Whether the cache engines are measured. Kept as a switch so that the tables, bars
/// and tests still make sense with the cache columns empty ("n/a", bars NOT MEASURED),
/// e.g. while the cache format is being changed.
const CACHE_AVAILABLE: bool = true;

/// Why the cache columns are empty while [`CACHE_AVAILABLE`] is false.
const CACHE_UNAVAILABLE_NOTE: &str =
    "kiln-cache, kiln-cache-winch: n/a, the cache engines are switched off \
     (`CACHE_AVAILABLE` in kiln/src/bench/tiers.rs)";

/// Where the per-program corpora and cache libraries go, under the system's temporary
/// directory; the process id keeps concurrent benches apart.
const WORK_DIR_PREFIX: &str = "kiln-bench-tiers";

pub fn main(
    programs: &[(String, PathBuf)],
    scale: Option<u32>,
    runs: usize,
) -> anyhow::Result<i32> {
    let base = scale.unwrap_or(STEADY_STATE_BASE_SCALE);
    let steady_scales = [
        base,
        base.checked_mul(2)
            .context("--scale is too large to double for the steady-state runs")?,
    ];
    let work = WorkDir::create()?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (name, path) in programs {
        match bench_program(name, path, scale, steady_scales, runs, &work.0) {
            Ok(row) => {
                eprintln!("bench: {name}: {}", row.progress_line());
                rows.push(row);
            }
            Err(e) => {
                eprintln!("bench: {name}: FAILED: {e:#}");
                failures.push(name.clone());
            }
        }
    }
    print!("{}", report(&rows, steady_scales, runs));
    if !failures.is_empty() {
        eprintln!(
            "bench: {} program(s) failed (outputs differ or a run failed): {}",
            failures.len(),
            failures.join(", ")
        );
        return Ok(1);
    }
    Ok(0)
}

/// A temporary directory, removed when the bench ends.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> anyhow::Result<WorkDir> {
        let dir = std::env::temp_dir().join(format!("{WORK_DIR_PREFIX}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// The child.

/// One run of a tiered engine: kiln's interpreter with trace code in wasmtime, set up the
/// way `kiln run --jit live` (or `--cache`) sets it up. The run time covers
/// instantiation, the tier's set-up (a wasmtime engine; loading the cache library) and
/// `_start`; the load time is the module's validation and lowering, as for the
/// interpreter.
pub(super) fn run_child(
    engine: Engine,
    wasm: &[u8],
    argv: Vec<String>,
) -> anyhow::Result<EngineRun> {
    let start = Instant::now();
    let module = Module::new(wasm).map_err(|e| anyhow!("kiln: {e}"))?;
    let load = start.elapsed();

    let start = Instant::now();
    let (stdout, stderr) = (SharedBuffer::default(), SharedBuffer::default());
    let ctx = WasiCtx::new(argv)
        .stdout(Box::new(stdout.clone()))
        .stderr(Box::new(stderr.clone()));
    let mut store = Store::new();
    let mut linker = Linker::new();
    wasi::define(&mut linker, &mut store, ctx);
    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(|e| anyhow!("kiln: {e}"))?;
    // A tier that does not start is an error here, not a warning as in `kiln run`: the
    // run would time the interpreter under the tier's name.
    match engine {
        Engine::KilnLive(backend) => install_live_jit(backend, &mut store, instance, &module)?,
        Engine::KilnCache(backend) => {
            let cache = std::env::var_os(CACHE_FILE_ENV)
                .with_context(|| format!("{} needs {CACHE_FILE_ENV}", engine.name()))?;
            install_cache(
                backend,
                Path::new(&cache),
                wasm,
                &mut store,
                instance,
                &module,
            )?
        }
        _ => bail!("{} is not a tiered engine", engine.name()),
    }
    let result = wasi::start_command(&mut store, instance);
    let run = start.elapsed();

    let outcome = match result {
        Ok(code) => Outcome::Exit(code),
        Err(RunError::Trap(trap)) => Outcome::Trap(trap.to_string()),
        Err(RunError::Instantiate(e)) => return Err(anyhow!("kiln: {e}")),
    };
    Ok(EngineRun {
        load,
        run,
        outcome,
        stdout: stdout.contents(),
        stderr: stderr.contents(),
    })
}

/// The live JIT as `kiln run --jit live --engine X` installs it (`run.rs`,
/// `install_tier`): recording on at the default threshold, every recorded trace compiled.
fn install_live_jit(
    backend: Backend,
    store: &mut Store,
    instance: InstanceId,
    module: &Module,
) -> anyhow::Result<()> {
    let mut tier = new_tier(backend, store, instance, module)?;
    tier.enable_live_jit();
    store.enable_recording(RecordConfig::default());
    store.set_tier(Box::new(tier));
    Ok(())
}

/// A tier as `kiln run` makes one: with the machine's code cache the environment names
/// (the bench points it at a directory of its own).
fn new_tier(
    backend: Backend,
    store: &Store,
    instance: InstanceId,
    module: &Module,
) -> anyhow::Result<WasmtimeTier> {
    WasmtimeTier::with_code_cache(
        backend,
        store,
        instance,
        module,
        runtime::CodeCache::from_env(),
    )
}

/// The cache library at `cache` as `kiln run --cache FILE --engine X` installs it
/// (`run.rs`, `install_tier`): the library's traces loaded and their anchors attached,
/// with the live JIT behind them (the default with `--cache`) for loops it has no trace
/// for. Reading, checking and compiling the library count as run time.
fn install_cache(
    backend: Backend,
    cache: &Path,
    wasm: &[u8],
    store: &mut Store,
    instance: InstanceId,
    module: &Module,
) -> anyhow::Result<()> {
    let mut tier = new_tier(backend, store, instance, module)?;
    let bytes = std::fs::read(cache).with_context(|| format!("reading {}", cache.display()))?;
    let app_hash = crate::record::hex(&Sha256::digest(wasm));
    let anchors = runtime::load_cache(&mut tier, &bytes, &app_hash, module)
        .map_err(|problem| anyhow!("cache {} not usable: {problem}", cache.display()))?;
    tier.enable_live_jit();
    store.enable_recording(RecordConfig::default());
    for anchor in anchors {
        store.attach_trace(instance, anchor);
    }
    store.set_tier(Box::new(tier));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The parent.

/// One program's medians. Arrays are indexed like [`TIER_ENGINES`]; `None` is an engine
/// not measured (the cache engines before kiln can load a cache; the steady-state runs of
/// wasmtime and wasmi).
struct Row {
    name: String,
    /// Instantiation plus `_start` (plus the tier's set-up), at the table's scale.
    run: [Option<Duration>; 7],
    /// Every one of those runs, in the order of the rounds that took turns between the
    /// engines (`run_interleaved`): their range says whether a difference of medians
    /// stands out of the machine's noise, and round by round they give the bars' spread.
    runs: [Vec<Duration>; 7],
    /// Load time plus run time: what a user waits for, compiling included.
    total: [Option<Duration>; 7],
    peak_rss_kib: [Option<u64>; 7],
    /// Run times at the steady-state scales S and 2S.
    steady: [[Option<Duration>; 7]; 2],
    /// kiln-cache (Cranelift) with no code cache: a machine's first run of the app, the
    /// library and its trees compiled during the run.
    cold_cache: Option<Duration>,
    golden_checked: bool,
}

fn column(engine: Engine) -> usize {
    TIER_ENGINES
        .iter()
        .position(|&e| e == engine)
        .expect("a compared engine")
}

fn measured(engine: Engine) -> bool {
    CACHE_AVAILABLE || !matches!(engine, Engine::KilnCache(_))
}

impl Row {
    /// kiln's interpreter time over `engine`'s: how many times faster `engine` is.
    fn speedup(&self, engine: Engine) -> Option<f64> {
        Some(secs(self.run[0]?) / secs(self.run[column(engine)]?))
    }

    /// `engine`'s time over wasmtime's: how far from the ceiling it is.
    fn vs_wasmtime(&self, engine: Engine) -> Option<f64> {
        Some(secs(self.run[column(engine)]?) / secs(self.run[column(Engine::Wasmtime)]?))
    }

    /// The fastest and the slowest run of the engine in column `c`.
    fn run_range(&self, c: usize) -> Option<(Duration, Duration)> {
        let runs = self.runs[c].iter().copied();
        runs.clone().min().zip(runs.max())
    }

    fn total_speedup(&self, engine: Engine) -> Option<f64> {
        Some(secs(self.total[0]?) / secs(self.total[column(engine)]?))
    }

    /// The interpreter's cost of S units over `engine`'s, both at their steady rate;
    /// `None` when a difference is not positive (the runs were too short to tell).
    fn steady_speedup(&self, engine: Engine) -> Option<f64> {
        let marginal = |c: usize| -> Option<f64> {
            let d = secs(self.steady[1][c]?) - secs(self.steady[0][c]?);
            (d > 0.0).then_some(d)
        };
        Some(marginal(0)? / marginal(column(engine))?)
    }

    /// `engine`'s time extrapolated to zero work less the interpreter's, as a share of the
    /// interpreter's run at scale S.
    fn warm_up(&self, engine: Engine) -> Option<f64> {
        let intercept = |c: usize| -> Option<f64> {
            Some(2.0 * secs(self.steady[0][c]?) - secs(self.steady[1][c]?))
        };
        Some((intercept(column(engine))? - intercept(0)?) / secs(self.steady[0][0]?))
    }

    fn progress_line(&self) -> String {
        TIER_ENGINES
            .iter()
            .filter_map(|&e| Some(format!("{} {:.2}x", e.name(), self.speedup(e)?)))
            .collect::<Vec<_>>()
            .join(", ")
            + " (speedup over the interpreter)"
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Measures one program: the table's runs, then the steady-state runs.
fn bench_program(
    name: &str,
    path: &Path,
    scale: Option<u32>,
    steady_scales: [u32; 2],
    runs: usize,
    work: &Path,
) -> anyhow::Result<Row> {
    let table_args: Vec<String> = scale.iter().map(u32::to_string).collect();
    let cache = if CACHE_AVAILABLE {
        Some(build_cache(name, path, &table_args, work).context("building the cache library")?)
    } else {
        None
    };
    let engines: Vec<Engine> = TIER_ENGINES.into_iter().filter(|&e| measured(e)).collect();
    // The tiered engines run as a second run on a machine does: the code cache holds the
    // tier's own driver and, for the cache engines, the library's compiled code, from one
    // untimed run per engine (`runtime::code_cache`; live-JIT traces are never kept).
    let code_cache = work.join("code-cache");
    let warm = CodeCacheUse::Dir(&code_cache);
    let tiered: Vec<Engine> = engines
        .iter()
        .copied()
        .filter(|e| matches!(e, Engine::KilnCache(_) | Engine::KilnLive(_)))
        .collect();
    run_interleaved(name, path, &table_args, &tiered, 1, cache.as_deref(), warm)
        .context("filling the code cache")?;
    let samples = run_interleaved(
        name,
        path,
        &table_args,
        &engines,
        runs,
        cache.as_deref(),
        warm,
    )?;
    let golden = golden_path(path, scale);
    if let Some(golden) = &golden {
        let expected = std::fs::read(golden)?;
        if samples[0][0].run.stdout != expected {
            bail!(
                "{name}: every engine printed the same stdout, but not what {} expects",
                golden.display()
            );
        }
    }
    match &samples[0][0].run.outcome {
        Outcome::Exit(0) => {}
        outcome => eprintln!("bench: warning: {name} ends with {outcome} on every engine"),
    }
    let mut row = Row {
        name: name.to_string(),
        run: [None; 7],
        runs: Default::default(),
        total: [None; 7],
        peak_rss_kib: [None; 7],
        steady: [[None; 7]; 2],
        cold_cache: None,
        golden_checked: golden.is_some(),
    };
    for (engine, samples) in engines.iter().zip(&samples) {
        let c = column(*engine);
        row.run[c] = Some(median_duration(samples, |s| s.run.run));
        row.runs[c] = samples.iter().map(|s| s.run.run).collect();
        row.total[c] = Some(median_duration(samples, |s| s.run.load + s.run.run));
        row.peak_rss_kib[c] = Some(median(samples.iter().map(|s| s.peak_rss_kib)));
    }
    let steady_engines: Vec<Engine> = STEADY_STATE_ENGINES
        .into_iter()
        .filter(|&e| measured(e))
        .collect();
    for (i, s) in steady_scales.into_iter().enumerate() {
        let args = [s.to_string()];
        let samples = run_interleaved(
            name,
            path,
            &args,
            &steady_engines,
            runs,
            cache.as_deref(),
            warm,
        )
        .with_context(|| format!("steady-state runs at scale {s}"))?;
        for (engine, samples) in steady_engines.iter().zip(&samples) {
            row.steady[i][column(*engine)] = Some(median_duration(samples, |s| s.run.run));
        }
    }
    if cache.is_some() {
        let cold = [Engine::KilnCache(Backend::Cranelift)];
        let samples = run_interleaved(
            name,
            path,
            &table_args,
            &cold,
            runs,
            cache.as_deref(),
            CodeCacheUse::Off,
        )
        .context("runs without a code cache")?;
        row.cold_cache = Some(median_duration(&samples[0], |s| s.run.run));
    }
    Ok(row)
}

/// The code cache a cache child uses (`runtime::CODE_CACHE_ENV`).
#[derive(Clone, Copy)]
enum CodeCacheUse<'a> {
    Dir(&'a Path),
    Off,
}

/// Runs `program` `runs` times on every engine, the engines taking turns within each run
/// so that a burst of load from elsewhere hits all of them alike; checks every run's
/// output against the first engine's first run. Returns the samples per engine.
fn run_interleaved(
    name: &str,
    program: &Path,
    args: &[String],
    engines: &[Engine],
    runs: usize,
    cache: Option<&Path>,
    code_cache: CodeCacheUse,
) -> anyhow::Result<Vec<Vec<Sample>>> {
    let code_cache = match code_cache {
        CodeCacheUse::Dir(dir) => dir.as_os_str(),
        CodeCacheUse::Off => OsStr::new("off"),
    };
    let mut samples: Vec<Vec<Sample>> = engines.iter().map(|_| Vec::new()).collect();
    for _ in 0..runs {
        for (i, &engine) in engines.iter().enumerate() {
            let env: Vec<(&str, &OsStr)> = match (engine, cache) {
                (Engine::KilnCache(_), Some(cache)) => vec![
                    (CACHE_FILE_ENV, cache.as_os_str()),
                    (runtime::CODE_CACHE_ENV, code_cache),
                ],
                // The live JIT keeps only the tier's own driver there, as `kiln run` does.
                (Engine::KilnLive(_), _) => vec![(runtime::CODE_CACHE_ENV, code_cache)],
                _ => Vec::new(),
            };
            let sample = spawn_child_with_env(engine, program, args, &env)
                .with_context(|| format!("{name} on {}", engine.name()))?;
            let reference = samples[0].first().unwrap_or(&sample);
            check_agreement(name, engines[0], reference, engine, &sample)?;
            samples[i].push(sample);
        }
    }
    Ok(samples)
}

/// Records `program` into a fresh corpus and builds its cache library from it, with the
/// kiln commands a user would run (`kiln record`, `kiln cache build`); returns the
/// library's path.
fn build_cache(
    name: &str,
    program: &Path,
    args: &[String],
    work: &Path,
) -> anyhow::Result<PathBuf> {
    let corpus = work.join(format!("{name}.corpus"));
    let cache = work.join(format!("{name}.kcache"));
    let exe = std::env::current_exe().context("finding the kiln executable")?;
    let mut record = Command::new(&exe);
    record
        .arg("record")
        .arg("--corpus")
        .arg(&corpus)
        .arg(program)
        .args(args);
    run_quietly(record)?;
    let mut build = Command::new(&exe);
    build
        .args(["cache", "build", "--corpus"])
        .arg(&corpus)
        .arg("--app")
        .arg(program)
        .arg("-o")
        .arg(&cache);
    run_quietly(build)?;
    Ok(cache)
}

/// Runs a kiln command, keeping its output unless it fails.
fn run_quietly(mut command: Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn median<T: Ord + Copy>(values: impl Iterator<Item = T>) -> T {
    let mut v: Vec<T> = values.collect();
    v.sort_unstable();
    v[v.len() / 2]
}

fn median_duration(samples: &[Sample], f: impl Fn(&Sample) -> Duration) -> Duration {
    median(samples.iter().map(f))
}

// ---------------------------------------------------------------------------------------
// The report.

/// Markdown tables (they paste straight into BENCHMARKS.md), the geometric means and the
/// issue's bars, all computed from the medians above.
fn report(rows: &[Row], steady_scales: [u32; 2], runs: usize) -> String {
    let mut s = String::new();
    let header = |s: &mut String, first: &str| {
        let _ = write!(s, "| {first} |");
        for e in TIER_ENGINES {
            let _ = write!(s, " {} |", e.name());
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "|---|{}", "--:|".repeat(TIER_ENGINES.len()));
    };
    let ratio_table = |s: &mut String, title: &str, f: &dyn Fn(&Row, Engine) -> Option<f64>| {
        let _ = writeln!(s, "{title}\n");
        header(s, "program");
        for r in rows {
            let _ = write!(s, "| {} |", r.name);
            for e in TIER_ENGINES {
                let _ = write!(s, " {} |", ratio_cell(f(r, e)));
            }
            let _ = writeln!(s);
        }
        let _ = write!(s, "| geometric mean |");
        for e in TIER_ENGINES {
            let _ = write!(s, " {} |", ratio_cell(mean_of(rows, |r| f(r, e))));
        }
        let _ = writeln!(s, "\n");
    };
    ratio_table(
        &mut s,
        "Speedup over kiln's interpreter (interpreter time ÷ engine time; higher is faster):",
        &|r, e| r.speedup(e),
    );
    ratio_table(
        &mut s,
        "Engine time ÷ wasmtime's (wasmtime compiling the whole module with Cranelift is the \
         ceiling; lower is faster):",
        &|r, e| r.vs_wasmtime(e),
    );
    s.push_str(&bars(rows));

    let _ = writeln!(
        s,
        "\nSpeedup over the interpreter with load time included (kiln: validate and lower; \
         wasmtime: compile the whole module; wasmi: validate), geometric mean: {}",
        TIER_ENGINES
            .iter()
            .map(|&e| format!(
                "{} {}",
                e.name(),
                ratio_cell(mean_of(rows, |r| r.total_speedup(e)))
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );

    if CACHE_AVAILABLE {
        let cold = |r: &Row| Some(secs(r.run[0]?) / secs(r.cold_cache?));
        let per_program: Vec<String> = rows
            .iter()
            .map(|r| format!("{} {}", r.name, ratio_cell(cold(r))))
            .collect();
        let _ = writeln!(
            s,
            "\nkiln-cache on a machine's first run (no code cache: the library and its trees \
             compiled during the run), speedup over the interpreter: geometric mean {} ({})",
            ratio_cell(mean_of(rows, cold)),
            per_program.join(", ")
        );
    }

    let _ = writeln!(s, "\nPeak RSS (the child process's VmHWM), median:\n");
    header(&mut s, "program");
    for r in rows {
        let _ = write!(s, "| {} |", r.name);
        for k in r.peak_rss_kib {
            let _ = write!(s, " {} |", k.map_or("n/a".into(), |k| Mib(k).to_string()));
        }
        let _ = writeln!(s);
    }

    let [small, large] = steady_scales;
    let _ = writeln!(
        s,
        "\nSteady state, from runs at scales {small} and {large}: \"steady\" is the \
         interpreter's t({large}) − t({small}) over the engine's (its speedup once warm); \
         \"warm-up\" is the engine's time extrapolated to zero work, 2·t({small}) − \
         t({large}), less the interpreter's, as a share of the interpreter's t({small}) \
         (recording, compiling or loading trace code, and interpreting until it is ready):\n"
    );
    let steady_engines = &STEADY_STATE_ENGINES[1..];
    let _ = write!(s, "| program |");
    for e in steady_engines {
        let _ = write!(s, " {} steady |", e.name());
    }
    for e in steady_engines {
        let _ = write!(s, " {} warm-up |", e.name());
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "|---|{}", "--:|".repeat(2 * steady_engines.len()));
    for r in rows {
        let _ = write!(s, "| {} |", r.name);
        for &e in steady_engines {
            let _ = write!(s, " {} |", ratio_cell(r.steady_speedup(e)));
        }
        for &e in steady_engines {
            let _ = write!(
                s,
                " {} |",
                r.warm_up(e).map_or("n/a".into(), signed_percent)
            );
        }
        let _ = writeln!(s);
    }
    let _ = write!(s, "| geometric mean |");
    for &e in steady_engines {
        let _ = write!(
            s,
            " {} |",
            ratio_cell(mean_of(rows, |r| r.steady_speedup(e)))
        );
    }
    for _ in steady_engines {
        let _ = write!(s, " |");
    }
    let _ = writeln!(s);
    for backend in [Backend::Cranelift, Backend::Winch] {
        let (live, cache) = (Engine::KilnLive(backend), Engine::KilnCache(backend));
        let compared: Vec<bool> = rows
            .iter()
            .filter_map(|r| Some(r.warm_up(cache)? < r.warm_up(live)?))
            .collect();
        let _ = writeln!(
            s,
            "\nwarm-up of {} below {}'s: {}",
            cache.name(),
            live.name(),
            if compared.is_empty() {
                "n/a".to_string()
            } else {
                format!(
                    "on {} of {} programs",
                    compared.iter().filter(|&&b| b).count(),
                    compared.len()
                )
            }
        );
    }

    let _ = writeln!(
        s,
        "\nTimes: median of {runs} run(s) of instantiate + `_start` (the tiered engines' \
         tier set-up included: a wasmtime engine, loading the cache library). Every engine \
         printed the interpreter's stdout and exit code on every run; {} of {} programs also \
         matched their expected output.",
        rows.iter().filter(|r| r.golden_checked).count(),
        rows.len(),
    );
    if !CACHE_AVAILABLE {
        let _ = writeln!(s, "\n{CACHE_UNAVAILABLE_NOTE}.");
    }
    s
}

/// Issue 5's three bars, each PASS or FAIL from the figures (NOT MEASURED without a
/// cache); the live JIT's figure beside each for comparison.
fn bars(rows: &[Row]) -> String {
    let mut s = String::new();
    let cache = Engine::KilnCache(Backend::Cranelift);
    let live = Engine::KilnLive(Backend::Cranelift);
    let verdict = |value: Option<f64>, pass: &dyn Fn(f64) -> bool| match value {
        Some(v) if pass(v) => format!("{v:.2}x, PASS"),
        Some(v) => format!("{v:.2}x, FAIL"),
        None => "NOT MEASURED".to_string(),
    };
    let interpreter = column(Engine::Kiln);
    let wasmtime = column(Engine::Wasmtime);
    let speedup = mean_of(rows, |r| r.speedup(cache));
    let _ = writeln!(
        s,
        "bar: kiln-cache at least {CACHE_SPEEDUP_BAR:.1}x faster than kiln's interpreter \
         (geometric mean): {} (kiln-live: {}){}",
        verdict(speedup, &|v| v >= CACHE_SPEEDUP_BAR),
        ratio_cell(mean_of(rows, |r| r.speedup(live))),
        round_spread(rows, interpreter, column(cache)),
    );
    let vs_wasmtime = mean_of(rows, |r| r.vs_wasmtime(cache));
    let _ = writeln!(
        s,
        "bar: kiln-cache within {CACHE_VS_WASMTIME_BAR:.1}x of wasmtime whole-module \
         (geometric mean): {} (kiln-live: {}){}",
        verdict(vs_wasmtime, &|v| v <= CACHE_VS_WASMTIME_BAR),
        ratio_cell(mean_of(rows, |r| r.vs_wasmtime(live))),
        round_spread(rows, column(cache), wasmtime),
    );
    // Cache against live JIT on the same compiler, every program: time ratio above 1 is
    // the cache losing.
    let mut losses = Vec::new();
    let mut compared = 0;
    for r in rows {
        for backend in [Backend::Cranelift, Backend::Winch] {
            let (c, l) = (
                column(Engine::KilnCache(backend)),
                column(Engine::KilnLive(backend)),
            );
            if let (Some(tc), Some(tl)) = (r.run[c], r.run[l]) {
                compared += 1;
                if tc > tl {
                    // Three decimals: a loss by less than half a percent would
                    // otherwise print as 1.00x.
                    losses.push(format!(
                        "{} on {} {:.3}x{}",
                        r.name,
                        backend.name(),
                        secs(tc) / secs(tl),
                        overlap_note(r.run_range(c), r.run_range(l))
                    ));
                }
            }
        }
    }
    let never_slower = if compared == 0 {
        "NOT MEASURED".to_string()
    } else if losses.is_empty() {
        format!("PASS ({compared} comparisons)")
    } else {
        format!("FAIL (cache time ÷ live time: {})", losses.join(", "))
    };
    let _ = writeln!(
        s,
        "bar: kiln-cache never slower than kiln-live on any program (same compiler): \
         {never_slower}"
    );
    s
}

/// How far the geometric mean of column `num`'s time over column `den`'s moves from one
/// round of runs to the next: the mean over the programs of round i's ratio, for each
/// round every program ran, as "; round by round: LOW to HIGH". A round's engines ran
/// back to back, so its ratio shares the machine's state of the moment; how much the
/// rounds disagree is how much a verdict at the edge can be trusted. Empty with fewer
/// than two rounds.
fn round_spread(rows: &[Row], num: usize, den: usize) -> String {
    let rounds = rows
        .iter()
        .map(|r| r.runs[num].len().min(r.runs[den].len()))
        .min()
        .unwrap_or(0);
    if rounds < 2 {
        return String::new();
    }
    let means: Vec<f64> = (0..rounds)
        .map(|i| {
            let logs: f64 = rows
                .iter()
                .map(|r| (secs(r.runs[num][i]) / secs(r.runs[den][i])).ln())
                .sum();
            (logs / rows.len() as f64).exp()
        })
        .collect();
    let low = means.iter().copied().fold(f64::INFINITY, f64::min);
    let high = means.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("; round by round: {low:.2}x to {high:.2}x")
}

/// Whether the cache's runs and live JIT's overlap, with both ranges: a loss whose runs
/// overlap may be the machine's noise; one whose runs do not is not.
fn overlap_note(cache: Option<(Duration, Duration)>, live: Option<(Duration, Duration)>) -> String {
    let (Some((c_min, c_max)), Some((l_min, l_max))) = (cache, live) else {
        return String::new();
    };
    let ms = |d: Duration| secs(d) * 1e3;
    let overlap = if c_min <= l_max && l_min <= c_max {
        "runs overlap"
    } else {
        "no run overlaps"
    };
    format!(
        " ({overlap}: cache {:.1}–{:.1} ms, live {:.1}–{:.1} ms)",
        ms(c_min),
        ms(c_max),
        ms(l_min),
        ms(l_max)
    )
}

/// The geometric mean of `f` over the rows; `None` if any row lacks the figure.
fn mean_of(rows: &[Row], f: impl Fn(&Row) -> Option<f64>) -> Option<f64> {
    let values: Option<Vec<f64>> = rows.iter().map(f).collect();
    values
        .filter(|v| !v.is_empty())
        .map(|v| geomean(v.into_iter()))
}

/// A share as a signed whole percentage; one that rounds to zero is `0%`, not `-0%`.
fn signed_percent(share: f64) -> String {
    let percent = (share * 100.0).round();
    if percent == 0.0 {
        "0%".to_string()
    } else {
        format!("{percent:+.0}%")
    }
}

fn ratio_cell(value: Option<f64>) -> String {
    value.map_or("n/a".into(), |v| format!("{v:.2}x"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    /// A row where the interpreter takes 100 ms at S and 200 ms at 2S, and the live JIT
    /// 30 ms and 50 ms: its steady rate is 5x the interpreter's and it spends 10 ms (10%
    /// of the interpreter's t(S)) more than the interpreter before reaching it.
    fn row() -> Row {
        let mut row = Row {
            name: "p".into(),
            run: [None; 7],
            runs: Default::default(),
            total: [None; 7],
            peak_rss_kib: [None; 7],
            steady: [[None; 7]; 2],
            cold_cache: None,
            golden_checked: false,
        };
        let live = column(Engine::KilnLive(Backend::Cranelift));
        row.run[0] = ms(100);
        row.run[live] = ms(40);
        row.run[column(Engine::Wasmtime)] = ms(10);
        row.steady[0][0] = ms(100);
        row.steady[1][0] = ms(200);
        row.steady[0][live] = ms(30);
        row.steady[1][live] = ms(50);
        row
    }

    #[test]
    fn steady_state_is_the_slope_and_warm_up_the_intercept() {
        let r = row();
        let live = Engine::KilnLive(Backend::Cranelift);
        assert!((r.steady_speedup(live).unwrap() - 5.0).abs() < 1e-9);
        assert!((r.warm_up(live).unwrap() - 0.10).abs() < 1e-9);
        assert!((r.speedup(live).unwrap() - 2.5).abs() < 1e-9);
        assert!((r.vs_wasmtime(live).unwrap() - 4.0).abs() < 1e-9);
        assert_eq!(r.steady_speedup(Engine::KilnLive(Backend::Winch)), None);
    }

    #[test]
    fn warm_up_shares_are_signed_and_zero_has_no_sign() {
        assert_eq!(signed_percent(0.104), "+10%");
        assert_eq!(signed_percent(-0.21), "-21%");
        assert_eq!(signed_percent(-0.004), "0%");
    }

    /// Round by round, the bars' geometric means pair each round's runs: two programs
    /// whose rounds disagree give the lowest and highest round's mean.
    #[test]
    fn the_bars_say_how_far_their_rounds_disagree() {
        let d = Duration::from_millis;
        let cache = column(Engine::KilnCache(Backend::Cranelift));
        let wasmtime = column(Engine::Wasmtime);
        let mut a = row();
        a.run[cache] = ms(20);
        a.runs[0] = vec![d(100), d(120), d(90)];
        a.runs[cache] = vec![d(20), d(20), d(30)];
        a.runs[wasmtime] = vec![d(10), d(10), d(10)];
        let mut b = row();
        b.name = "q".into();
        b.run[cache] = ms(20);
        b.runs[0] = vec![d(80), d(100), d(100)];
        b.runs[cache] = vec![d(20), d(25), d(25)];
        b.runs[wasmtime] = vec![d(10), d(10), d(10)];
        // Rounds: sqrt(5 * 4) = 4.47, sqrt(6 * 4) = 4.90, sqrt(3 * 4) = 3.46 the
        // interpreter's time; sqrt(2 * 2), sqrt(2 * 2.5), sqrt(3 * 2.5) wasmtime's.
        let text = bars(&[a, b]);
        assert!(text.contains("; round by round: 3.46x to 4.90x"), "{text}");
        assert!(text.contains("; round by round: 2.00x to 2.74x"), "{text}");
        // One round says nothing of the spread.
        let mut one = row();
        one.run[cache] = ms(20);
        one.runs[0] = vec![d(100)];
        one.runs[cache] = vec![d(20)];
        assert!(!bars(&[one]).contains("round by round"));
    }

    #[test]
    fn bars_fail_on_the_figures_and_never_pass_unmeasured() {
        let mut r = row();
        let text = bars(std::slice::from_ref(&r));
        assert_eq!(text.matches("NOT MEASURED").count(), 3, "{text}");
        // A cache at 25 ms: 4x the interpreter (FAIL), 2.5x wasmtime (FAIL), faster than
        // live (PASS for Cranelift; Winch not measured, so one comparison).
        r.run[column(Engine::KilnCache(Backend::Cranelift))] = ms(25);
        let text = bars(std::slice::from_ref(&r));
        assert!(
            text.contains("interpreter (geometric mean): 4.00x, FAIL"),
            "{text}"
        );
        assert!(
            text.contains("whole-module (geometric mean): 2.50x, FAIL"),
            "{text}"
        );
        assert!(text.contains("PASS (1 comparisons)"), "{text}");
        r.run[column(Engine::KilnCache(Backend::Cranelift))] = ms(50);
        let text = bars(std::slice::from_ref(&r));
        assert!(
            text.contains("FAIL (cache time ÷ live time: p on cranelift 1.250x)"),
            "{text}"
        );
        // With the runs' ranges, a loss says whether the runs overlap.
        let cache = column(Engine::KilnCache(Backend::Cranelift));
        let live = column(Engine::KilnLive(Backend::Cranelift));
        r.runs[cache] = vec![Duration::from_millis(60), Duration::from_millis(45)];
        r.runs[live] = vec![Duration::from_millis(38), Duration::from_millis(46)];
        let text = bars(std::slice::from_ref(&r));
        assert!(
            text.contains(
                "p on cranelift 1.250x (runs overlap: cache 45.0–60.0 ms, live 38.0–46.0 ms)"
            ),
            "{text}"
        );
        r.runs[cache] = vec![Duration::from_millis(48), Duration::from_millis(60)];
        let text = bars(std::slice::from_ref(&r));
        assert!(
            text.contains("1.250x (no run overlaps: cache 48.0"),
            "{text}"
        );
    }
}
