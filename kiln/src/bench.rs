//! `kiln bench`: kiln's interpreter against wasmi and wasmtime, side by side in one run.
//!
//! Every measurement (one engine, one program, one run) happens in a child process,
//! `kiln bench --child ENGINE -- PROGRAM [ARGS]`, so that engines never share a heap,
//! a warmed cache or a peak-RSS figure. The child loads (validates, lowers or compiles)
//! the module, then times instantiation plus the run of `_start`, reads its own peak RSS
//! (`VmHWM`) and prints one record line followed by the guest's stdout. The parent
//! interleaves the engines run by run (so a burst of load from elsewhere on a shared
//! machine hits all of them alike), checks that every engine printed the same stdout and
//! exited the same way (and, for the bundled examples, what `examples/expected/` says),
//! and prints medians and the ratios that are the headline numbers. Progress goes to
//! stderr; the tables on stdout are Markdown, ready for BENCHMARKS.md.

mod kiln_engine;
mod nightly;
mod op_costs;
mod optimize;
mod recording;
mod tiers;
mod wasi_shim;
mod wasmi_engine;
mod wasmtime_engine;

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};

/// Runs per engine and program unless `--runs` says otherwise: the median of three is
/// immune to one outlier (a shared machine's hiccup) while a full pass over the examples
/// stays within a few minutes.
const DEFAULT_RUNS: usize = 3;

/// Where the example programs live, relative to the workspace root.
const EXAMPLES_DIR: &str = "examples";

/// Beside the examples: their expected stdout, checked when present.
const EXPECTED_DIR: &str = "expected";

/// The project's bar for the interpreter (issue 2): at most this many times wasmi's run
/// time, as a geometric mean over the programs.
const KILN_VS_WASMI_BAR: f64 = 2.0;

/// The first word of a child's first line, so the parent never mistakes guest output
/// for a record.
const RECORD_TAG: &str = "kiln-bench-record";

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Work amount passed to every program as argv[1] (default: each program's own)
    #[arg(long)]
    scale: Option<u32>,
    /// Runs per engine and program; the tables show the median
    #[arg(long, default_value_t = DEFAULT_RUNS)]
    runs: usize,
    /// .wasm files or names of examples (default: every examples/*.wasm)
    programs: Vec<String>,
    /// Compare kiln with trace recording on against kiln without it, and print the
    /// recorder's figures per program (issue 3), instead of comparing engines
    #[arg(long)]
    recording: bool,
    /// Run the optimizer (saturate, then verify) over every trace the programs record,
    /// and print the distribution of savings, verdicts and stage times (issue 4)
    #[arg(long)]
    optimize: bool,
    /// Measure what each operator costs on wasmtime's Cranelift and Winch (a
    /// micro-benchmark per operator), and print the table the cost model is derived
    /// from (issue 4); takes no programs
    #[arg(long)]
    op_costs: bool,
    /// Compare kiln's tiers (interpreter, live JIT, cache library; Cranelift and Winch)
    /// with wasmtime and wasmi, with the time to reach steady state (issue 5)
    #[arg(long)]
    tiers: bool,
    /// Time the nightly job (`kiln optimize`) over the traces the programs record, on one
    /// and on two threads, and a rerun on the unchanged corpus, with peak memory (issue 6)
    #[arg(long)]
    nightly: bool,
    /// Internal: measure one run of ENGINE in this process (PROGRAMS are then the
    /// program and its arguments)
    #[arg(long, hide = true, value_name = "ENGINE")]
    child: Option<String>,
}

pub fn main(args: BenchArgs) -> anyhow::Result<i32> {
    if let Some(engine) = &args.child {
        return child_main(Engine::from_name(engine)?, &args.programs);
    }
    if args.op_costs {
        return op_costs::main();
    }
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let programs = resolve_programs(&args.programs)?;
    if args.recording {
        return recording::main(&programs, args.scale, args.runs);
    }
    if args.optimize {
        return optimize::main(&programs, args.scale);
    }
    if args.tiers {
        return tiers::main(&programs, args.scale, args.runs);
    }
    if args.nightly {
        return nightly::main(&programs, args.scale, args.runs);
    }
    let baseline = spawn_child(Engine::Baseline, &programs[0].1, &[])
        .context("measuring the baseline child")?;

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (name, path) in &programs {
        match bench_program(name, path, args.scale, args.runs) {
            Ok(row) => {
                eprintln!(
                    "bench: {name}: kiln {}, wasmi {}, wasmtime {}",
                    Secs(row.time(Engine::Kiln)),
                    Secs(row.time(Engine::Wasmi)),
                    Secs(row.time(Engine::Wasmtime)),
                );
                rows.push(row);
            }
            Err(e) => {
                eprintln!("bench: {name}: FAILED: {e:#}");
                failures.push(name.clone());
            }
        }
    }
    print!("{}", report(&rows, &baseline));
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

/// The engines; `Baseline` loads nothing and gives the RSS of the kiln binary itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Engine {
    Kiln,
    /// Kiln's interpreter with trace recording on, at the default threshold.
    KilnRecording,
    Wasmi,
    Wasmtime,
    Baseline,
    /// `--tiers`: kiln with trace code compiled by wasmtime while the program runs.
    KilnLive(runtime::Backend),
    /// `--tiers`: kiln with trace code from a cache library built before the run.
    KilnCache(runtime::Backend),
}

/// The engines compared, in table order; kiln's first run is the reference output.
const ENGINES: [Engine; 3] = [Engine::Kiln, Engine::Wasmi, Engine::Wasmtime];

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Kiln => "kiln",
            Engine::KilnRecording => "kiln-recording",
            Engine::Wasmi => "wasmi",
            Engine::Wasmtime => "wasmtime",
            Engine::Baseline => "baseline",
            Engine::KilnLive(runtime::Backend::Cranelift) => "kiln-live",
            Engine::KilnLive(runtime::Backend::Winch) => "kiln-live-winch",
            Engine::KilnCache(runtime::Backend::Cranelift) => "kiln-cache",
            Engine::KilnCache(runtime::Backend::Winch) => "kiln-cache-winch",
        }
    }

    fn from_name(name: &str) -> anyhow::Result<Engine> {
        ENGINES
            .into_iter()
            .chain([Engine::KilnRecording, Engine::Baseline])
            .chain(tiers::TIER_ENGINES)
            .find(|e| e.name() == name)
            .with_context(|| format!("unknown engine `{name}`"))
    }
}

/// How a guest run ended. Traps compare equal whatever their message: each engine words
/// them its own way.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    Exit(i32),
    Trap(String),
}

impl Outcome {
    fn agrees_with(&self, other: &Outcome) -> bool {
        match (self, other) {
            (Outcome::Exit(a), Outcome::Exit(b)) => a == b,
            (Outcome::Trap(_), Outcome::Trap(_)) => true,
            _ => false,
        }
    }

    fn encode(&self) -> String {
        match self {
            Outcome::Exit(code) => format!("exit:{code}"),
            Outcome::Trap(msg) => format!("trap:{}", msg.replace('\n', " | ")),
        }
    }

    fn decode(s: &str) -> anyhow::Result<Outcome> {
        if let Some(code) = s.strip_prefix("exit:") {
            Ok(Outcome::Exit(code.parse()?))
        } else if let Some(msg) = s.strip_prefix("trap:") {
            Ok(Outcome::Trap(msg.to_string()))
        } else {
            bail!("bad outcome `{s}`")
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Exit(code) => write!(f, "exit code {code}"),
            Outcome::Trap(msg) => write!(f, "trap ({msg})"),
        }
    }
}

/// What an engine runner returns for one run of one program.
pub(crate) struct EngineRun {
    /// Validating and lowering (kiln), validating (wasmi, which translates lazily) or
    /// compiling (wasmtime) the module, engine creation included.
    load: Duration,
    /// Instantiation plus `_start`.
    run: Duration,
    outcome: Outcome,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// One child's measurement as the parent sees it.
pub(crate) struct Sample {
    run: EngineRun,
    peak_rss_kib: u64,
}

// ---------------------------------------------------------------------------------------
// The child.

fn child_main(engine: Engine, program_and_args: &[String]) -> anyhow::Result<i32> {
    let (program, guest_args) = program_and_args
        .split_first()
        .context("--child needs a program")?;
    let wasm = std::fs::read(program).with_context(|| format!("reading {program}"))?;
    let argv = guest_argv(Path::new(program), guest_args);
    let run = match engine {
        Engine::Kiln => kiln_engine::run(&wasm, argv, false)?,
        Engine::KilnRecording => kiln_engine::run(&wasm, argv, true)?,
        Engine::Wasmi => wasmi_engine::run(&wasm, argv)?,
        Engine::Wasmtime => wasmtime_engine::run(&wasm, argv)?,
        Engine::KilnLive(_) | Engine::KilnCache(_) => tiers::run_child(engine, &wasm, argv)?,
        Engine::Baseline => EngineRun {
            load: Duration::ZERO,
            run: Duration::ZERO,
            outcome: Outcome::Exit(0),
            stdout: Vec::new(),
            stderr: Vec::new(),
        },
    };
    let peak_rss_kib = peak_rss_kib()?;
    let record = format!(
        "{RECORD_TAG} engine={} load_ns={} run_ns={} peak_rss_kib={peak_rss_kib} \
         stdout_len={} stdout_fnv1a={:016x} outcome={}\n",
        engine.name(),
        run.load.as_nanos(),
        run.run.as_nanos(),
        run.stdout.len(),
        fnv1a(&run.stdout),
        run.outcome.encode(),
    );
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(record.as_bytes())?;
    out.write_all(&run.stdout)?;
    out.flush()?;
    std::io::stderr().write_all(&run.stderr)?;
    Ok(0)
}

/// The guest's argv: the program's file name, then the arguments. The same on every
/// engine, since a program may print its argv[0].
pub(crate) fn guest_argv(program: &Path, args: &[String]) -> Vec<String> {
    let name = program.file_name().map_or_else(
        || program.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    std::iter::once(name).chain(args.iter().cloned()).collect()
}

/// The process's peak resident set (`VmHWM`), in KiB.
fn peak_rss_kib() -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    let kib = line.trim().trim_end_matches("kB").trim();
    kib.parse().with_context(|| format!("bad VmHWM `{line}`"))
}

/// 64-bit FNV-1a: the child's digest of the guest's stdout, checked by the parent.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------------------
// The parent.

/// `(name, path)` of each program to run.
fn resolve_programs(given: &[String]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let dir = examples_dir();
    let paths: Vec<PathBuf> = if given.is_empty() {
        let dir = dir.with_context(|| {
            format!("no {EXAMPLES_DIR}/ directory here or in the workspace; name the programs")
        })?;
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .map(|e| Ok(e?.path()))
            .collect::<std::io::Result<Vec<_>>>()?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            bail!("no .wasm files in {}", dir.display());
        }
        paths
    } else {
        given
            .iter()
            .map(|p| {
                let path = PathBuf::from(p);
                if path.is_file() {
                    return Ok(path);
                }
                dir.as_ref()
                    .map(|d| d.join(format!("{p}.wasm")))
                    .filter(|p| p.is_file())
                    .with_context(|| format!("no program `{p}` (neither a file nor an example)"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    Ok(paths
        .into_iter()
        .map(|p| {
            let name = p
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into());
            (name, p)
        })
        .collect())
}

/// `examples/` of the current directory, else of the workspace kiln was built in.
fn examples_dir() -> Option<PathBuf> {
    [
        PathBuf::from(EXAMPLES_DIR),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(EXAMPLES_DIR),
    ]
    .into_iter()
    .find(|d| d.is_dir())
}

/// The medians of one program's runs on every engine.
struct Row {
    name: String,
    /// Median run time, median load time and median peak RSS per engine, in
    /// [`ENGINES`] order.
    run: [Duration; 3],
    load: [Duration; 3],
    peak_rss_kib: [u64; 3],
    /// Whether the output was also checked against the example's expected output.
    golden_checked: bool,
}

impl Row {
    fn time(&self, engine: Engine) -> Duration {
        self.run[ENGINES
            .iter()
            .position(|&e| e == engine)
            .expect("a compared engine")]
    }

    fn ratio(&self, engine: Engine) -> f64 {
        self.time(Engine::Kiln).as_secs_f64() / self.time(engine).as_secs_f64()
    }
}

/// Runs one program `runs` times on every engine, checking that they all agree.
fn bench_program(name: &str, path: &Path, scale: Option<u32>, runs: usize) -> anyhow::Result<Row> {
    let args: Vec<String> = scale.iter().map(u32::to_string).collect();
    let args = &args[..];
    let mut samples: [Vec<Sample>; 3] = Default::default();
    for _ in 0..runs {
        for (i, engine) in ENGINES.into_iter().enumerate() {
            let sample = spawn_child(engine, path, args)
                .with_context(|| format!("{name} on {}", engine.name()))?;
            let reference = samples[0].first().unwrap_or(&sample);
            check_agreement(name, Engine::Kiln, reference, engine, &sample)?;
            samples[i].push(sample);
        }
    }
    let golden = golden_path(path, scale);
    if let Some(golden) = &golden {
        let expected = std::fs::read(golden)?;
        let got = &samples[0][0].run.stdout;
        if *got != expected {
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
    let median = |f: &dyn Fn(&Sample) -> u128| {
        samples.each_ref().map(|s| {
            let mut v: Vec<u128> = s.iter().map(f).collect();
            v.sort_unstable();
            v[v.len() / 2]
        })
    };
    let nanos = |n: u128| Duration::from_nanos(n as u64);
    Ok(Row {
        name: name.to_string(),
        run: median(&|s| s.run.run.as_nanos()).map(nanos),
        load: median(&|s| s.run.load.as_nanos()).map(nanos),
        peak_rss_kib: median(&|s| s.peak_rss_kib as u128).map(|k| k as u64),
        golden_checked: golden.is_some(),
    })
}

/// The expected stdout of an example at this scale, if there is one:
/// `examples/expected/NAME.default.out` or `examples/expected/NAME.SCALE.out`.
pub(crate) fn golden_path(program: &Path, scale: Option<u32>) -> Option<PathBuf> {
    let stem = program.file_stem()?.to_string_lossy();
    let scale = scale.map_or_else(|| "default".to_string(), |s| s.to_string());
    let path = program
        .parent()?
        .join(EXPECTED_DIR)
        .join(format!("{stem}.{scale}.out"));
    path.is_file().then_some(path)
}

/// Fails, naming the program and both engines, unless `b` printed exactly what `a`
/// printed and ended the same way.
pub(crate) fn check_agreement(
    program: &str,
    engine_a: Engine,
    a: &Sample,
    engine_b: Engine,
    b: &Sample,
) -> anyhow::Result<()> {
    let (ea, eb) = (engine_a.name(), engine_b.name());
    if !a.run.outcome.agrees_with(&b.run.outcome) {
        bail!(
            "{program}: {ea} and {eb} end differently: {ea}: {}, {eb}: {}\n{ea} stderr: {}\n{eb} stderr: {}",
            a.run.outcome,
            b.run.outcome,
            String::from_utf8_lossy(&a.run.stderr),
            String::from_utf8_lossy(&b.run.stderr),
        );
    }
    if a.run.stdout != b.run.stdout {
        let (la, lb) = (
            a.run.stdout.split_inclusive(|&c| c == b'\n'),
            b.run.stdout.split_inclusive(|&c| c == b'\n'),
        );
        let (line, (xa, xb)) = la
            .map(Some)
            .chain(std::iter::repeat(None))
            .zip(lb.map(Some).chain(std::iter::repeat(None)))
            .enumerate()
            .find(|(_, (x, y))| x != y)
            .expect("different outputs differ on some line");
        let show = |l: Option<&[u8]>| {
            l.map_or("<end of output>".into(), |l| {
                format!("{:?}", String::from_utf8_lossy(l))
            })
        };
        bail!(
            "{program}: {ea} and {eb} print different stdout ({} vs {} bytes); first difference \
             on line {}:\n  {ea}: {}\n  {eb}: {}",
            a.run.stdout.len(),
            b.run.stdout.len(),
            line + 1,
            show(xa),
            show(xb),
        );
    }
    Ok(())
}

/// Runs one child measurement and parses its record.
pub(crate) fn spawn_child(
    engine: Engine,
    program: &Path,
    args: &[String],
) -> anyhow::Result<Sample> {
    spawn_child_with_env(engine, program, args, &[])
}

/// [`spawn_child`] with environment variables for the child (`--tiers` names the cache
/// library a cache child loads this way).
pub(crate) fn spawn_child_with_env(
    engine: Engine,
    program: &Path,
    args: &[String],
    env: &[(&str, &std::ffi::OsStr)],
) -> anyhow::Result<Sample> {
    let exe = std::env::current_exe().context("finding the kiln executable")?;
    let output = Command::new(exe)
        .args(["bench", "--child", engine.name(), "--"])
        .arg(program)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .context("spawning a child")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("the child failed ({}): {}", output.status, stderr.trim());
    }
    let newline = output
        .stdout
        .iter()
        .position(|&b| b == b'\n')
        .context("the child printed no record")?;
    let record = std::str::from_utf8(&output.stdout[..newline])?;
    let stdout = output.stdout[newline + 1..].to_vec();
    parse_record(record, stdout, output.stderr)
        .with_context(|| format!("bad child record `{record}`"))
}

fn parse_record(record: &str, stdout: Vec<u8>, stderr: Vec<u8>) -> anyhow::Result<Sample> {
    let record = record.strip_prefix(RECORD_TAG).context("no record tag")?;
    let (fields, outcome) = record.split_once(" outcome=").context("no outcome")?;
    let field = |key: &str| -> anyhow::Result<&str> {
        fields
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .with_context(|| format!("no {key}"))
    };
    let nanos =
        |key| -> anyhow::Result<Duration> { Ok(Duration::from_nanos(field(key)?.parse()?)) };
    let len: usize = field("stdout_len")?.parse()?;
    let hash = u64::from_str_radix(field("stdout_fnv1a")?, 16)?;
    if len != stdout.len() || hash != fnv1a(&stdout) {
        bail!("the guest stdout received does not match the child's digest");
    }
    Ok(Sample {
        run: EngineRun {
            load: nanos("load_ns")?,
            run: nanos("run_ns")?,
            outcome: Outcome::decode(outcome)?,
            stdout,
            stderr,
        },
        peak_rss_kib: field("peak_rss_kib")?.parse()?,
    })
}

// ---------------------------------------------------------------------------------------
// The report.

/// Markdown tables (they paste straight into BENCHMARKS.md) and the geometric means.
fn report(rows: &[Row], baseline: &Sample) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| program | kiln | wasmi | wasmtime | kiln/wasmi | kiln/wasmtime \
         | kiln peak RSS | wasmi peak RSS | wasmtime peak RSS |"
    );
    let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.2}x | {:.2}x | {} | {} | {} |",
            r.name,
            Secs(r.run[0]),
            Secs(r.run[1]),
            Secs(r.run[2]),
            r.ratio(Engine::Wasmi),
            r.ratio(Engine::Wasmtime),
            Mib(r.peak_rss_kib[0]),
            Mib(r.peak_rss_kib[1]),
            Mib(r.peak_rss_kib[2]),
        );
    }
    if !rows.is_empty() {
        let vs_wasmi = geomean(rows.iter().map(|r| r.ratio(Engine::Wasmi)));
        let vs_wasmtime = geomean(rows.iter().map(|r| r.ratio(Engine::Wasmtime)));
        let verdict = if vs_wasmi <= KILN_VS_WASMI_BAR {
            "met"
        } else {
            "MISSED"
        };
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "geometric mean of kiln/wasmi: {vs_wasmi:.2}x (bar: at most \
             {KILN_VS_WASMI_BAR:.1}x, {verdict})"
        );
        let _ = writeln!(s, "geometric mean of kiln/wasmtime: {vs_wasmtime:.2}x");
    }
    let _ = writeln!(
        s,
        "\nTimes: median of instantiate + `_start`. Peak RSS: the child process's VmHWM; \
         a child that loads no engine peaks at {}. The three engines printed the same \
         stdout and exit code on every run; {} of {} programs also matched their \
         expected output.",
        Mib(baseline.peak_rss_kib),
        rows.iter().filter(|r| r.golden_checked).count(),
        rows.len(),
    );
    let _ = writeln!(
        s,
        "\nLoad time (validate + lower / validate / compile), median:\n"
    );
    let _ = writeln!(s, "| program | kiln | wasmi | wasmtime |");
    let _ = writeln!(s, "|---|--:|--:|--:|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            r.name,
            Secs(r.load[0]),
            Secs(r.load[1]),
            Secs(r.load[2])
        );
    }
    s
}

pub(crate) fn geomean(ratios: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = ratios.fold((0.0, 0), |(s, n), r| (s + r.ln(), n + 1));
    (sum / n as f64).exp()
}

/// A duration in the unit that suits it.
pub(crate) struct Secs(Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs_f64();
        if s >= 1.0 {
            write!(f, "{s:.2} s")
        } else if s >= 1e-3 {
            write!(f, "{:.1} ms", s * 1e3)
        } else {
            write!(f, "{:.0} µs", s * 1e6)
        }
    }
}

/// KiB shown as MiB.
pub(crate) struct Mib(u64);

impl fmt::Display for Mib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} MiB", self.0 as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let stdout = b"hello\n".to_vec();
        let record = format!(
            "{RECORD_TAG} engine=wasmi load_ns=5 run_ns=7 peak_rss_kib=1024 stdout_len=6 \
             stdout_fnv1a={:016x} outcome=trap:out of bounds memory access",
            fnv1a(&stdout)
        );
        let s = parse_record(&record, stdout, Vec::new()).unwrap();
        assert_eq!(s.run.run, Duration::from_nanos(7));
        assert_eq!(s.peak_rss_kib, 1024);
        assert!(
            matches!(s.run.outcome, Outcome::Trap(ref m) if m == "out of bounds memory access")
        );
        let bad = record.replace("stdout_len=6", "stdout_len=5");
        assert!(parse_record(&bad, b"hello\n".to_vec(), Vec::new()).is_err());
    }

    fn sample(outcome: Outcome, stdout: &[u8]) -> Sample {
        Sample {
            run: EngineRun {
                load: Duration::ZERO,
                run: Duration::ZERO,
                outcome,
                stdout: stdout.to_vec(),
                stderr: Vec::new(),
            },
            peak_rss_kib: 0,
        }
    }

    #[test]
    fn disagreements_name_program_engines_and_line() {
        let a = sample(Outcome::Exit(0), b"one\ntwo\n");
        let check = |b: &Sample| {
            check_agreement("prog", Engine::Kiln, &a, Engine::Wasmi, b).map_err(|e| e.to_string())
        };
        assert!(check(&sample(Outcome::Exit(0), b"one\ntwo\n")).is_ok());
        let err = check(&sample(Outcome::Exit(0), b"one\nTWO\n")).unwrap_err();
        assert!(
            err.starts_with("prog: kiln and wasmi print different stdout"),
            "{err}"
        );
        assert!(
            err.contains("line 2") && err.contains("\"TWO\\n\""),
            "{err}"
        );
        let err = check(&sample(Outcome::Exit(0), b"one\n")).unwrap_err();
        assert!(err.contains("<end of output>"), "{err}");
        let err = check(&sample(Outcome::Trap("unreachable".into()), b"one\ntwo\n")).unwrap_err();
        assert!(
            err.starts_with("prog: kiln and wasmi end differently"),
            "{err}"
        );
        // Traps agree whatever their wording.
        let t = sample(Outcome::Trap("x".into()), b"");
        assert!(check_agreement(
            "p",
            Engine::Wasmi,
            &t,
            Engine::Wasmtime,
            &sample(Outcome::Trap("y".into()), b"")
        )
        .is_ok());
    }

    #[test]
    fn geomean_of_ratios() {
        assert!((geomean([2.0, 8.0].into_iter()) - 4.0).abs() < 1e-12);
    }
}
