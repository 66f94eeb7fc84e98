//! `kiln run`: runs a WASI command on kiln's interpreter, or calls one export with
//! arguments from the command line (`--invoke`).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use trace_capture::wasi::{self, RunError, WasiCtx};
use trace_capture::{
    AnchorKind, Extern, InstanceId, InstantiateError, Linker, Module, ReportStart, Store,
    TraceReport, Trap, TrapKind, ValType, Value,
};

use runtime::{Backend, TierStatsHandle, WasmtimeTier};
use sha2::{Digest, Sha256};
use trace_capture::RecordConfig;

use crate::EXIT_TRAP;

/// Anchors `--stats` lists unless told otherwise.
const DEFAULT_STATS_LIMIT: usize = 20;
/// Longest function name `--stats` prints before cutting it short (C++ names run long).
const MAX_NAME_WIDTH: usize = 60;
/// Lines of a trap's backtrace printed at most, after runs of one repeated frame are
/// folded: a runaway recursion between several functions is 50,000 frames deep, and the
/// outermost and innermost frames are the ones that tell the story.
const MAX_BACKTRACE_LINES: usize = 60;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Without --invoke, runs the module's `_start` as a WASI command: ARGS follow the program \
path as argv[0] (everything after PROGRAM goes to the guest, flags too), and kiln exits \
with the program's exit code.

With --invoke NAME, instantiates the module (WASI imports available; `_initialize` is \
called if exported), calls the export NAME with ARGS parsed by its parameter types \
(integers in decimal or 0x hex; floats in decimal, inf, nan or nan:0xPAYLOAD) and prints \
each result on its own line.

Tiers: by default everything is interpreted. With --cache FILE (a cache library from \
`kiln cache build` for this program), the loops it has proven traces for run as trace \
code from the start, and --jit defaults to live. With --jit live, loops that turn hot \
are recorded and their traces compiled by wasmtime (--engine cranelift or winch) while \
the program runs. Trace code works on the guest's memory in place and hands back to the \
interpreter at every exit, so the program's output, exit code and traps are the same on \
every tier. A cache kiln cannot use (another app or kiln version, damaged, inconsistent) \
is reported in one warning naming the problem, and the run goes on without it.

The cache's traces (its loop traces, the side traces linked at their exits, and the trees \
grown from them) are compiled once per machine: wasmtime's code for them is kept in the \
code cache, $KILN_CODE_CACHE if set (`off`: none), else $XDG_CACHE_HOME/kiln/code or \
~/.cache/kiln/code, and later runs load it instead of compiling; so is a record that the \
library passed every check, and later runs do not check those same bytes again. So is the \
tier's own code (the driver that chains traces), with or without a cache. Live JIT code is \
never kept.

Exit codes: the program's own; 2 when the module cannot be read, validated or linked; \
134 when the guest traps (the trap and its wasm backtrace go to stderr).")]
pub struct RunArgs {
    /// Print the hottest anchors (function entries and loop headers) to stderr afterwards;
    /// with trace code, also each trace by entries from the interpreter (segments per
    /// entry, hand-overs from trace to trace per entry, passes, trees) and the tier's counts.
    #[arg(long)]
    stats: bool,
    /// How many anchors (and traces) --stats lists [default: 20]; implies --stats.
    #[arg(long, value_name = "N")]
    stats_limit: Option<usize>,
    /// Call this exported function with ARGS instead of running `_start`.
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,
    /// An environment variable for the guest (repeatable; the guest sees no other).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env_var)]
    env: Vec<(String, String)>,
    /// Run the trace code of this cache library (built by `kiln cache build`).
    #[arg(long, value_name = "FILE")]
    cache: Option<PathBuf>,
    /// Live JIT: compile the traces of hot loops while the program runs [default: live
    /// with --cache, off without].
    #[arg(long, value_enum)]
    jit: Option<Jit>,
    /// The wasmtime compiler for trace code.
    #[arg(long, value_enum, default_value_t = EngineName::Cranelift)]
    engine: EngineName,
    /// Where side traces, trees and regions are compiled: on a thread of their own while
    /// the program runs on, or on the program's thread as soon as they are asked for
    /// (slower, but a run then builds the same trace code every time, whatever the
    /// machine's load: what tests and comparisons of the tier need).
    #[arg(long, value_enum, default_value_t = CompileOn::Background)]
    compile: CompileOn,
    /// Record the traces of hot loops into the corpus at DIR when the program ends, for
    /// the nightly job; with the live JIT on (--jit live, or --cache), the side traces it
    /// recorded and linked too, with their places (not the cache library's own).
    #[arg(long, value_name = "DIR")]
    record_traces: Option<PathBuf>,
    /// The WebAssembly module to run.
    #[arg(value_name = "PROGRAM.wasm")]
    program: PathBuf,
    /// Arguments for the program, or for the function with --invoke.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Whether traces are compiled while the program runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jit {
    Live,
    Off,
}

/// Which thread compiles the trace code built during a run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompileOn {
    Background,
    Foreground,
}

/// The wasmtime compiler for trace code.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineName {
    Cranelift,
    Winch,
}

impl EngineName {
    fn backend(self) -> Backend {
        match self {
            EngineName::Cranelift => Backend::Cranelift,
            EngineName::Winch => Backend::Winch,
        }
    }
}

/// Installs the trace tier asked for; returns a handle on its counters. A tier that
/// cannot start is not fatal: kiln warns and interprets.
impl RunArgs {
    /// Whether traces are compiled during the run: as asked, else live with a cache.
    fn live_jit(&self) -> bool {
        self.jit.unwrap_or(if self.cache.is_some() {
            Jit::Live
        } else {
            Jit::Off
        }) == Jit::Live
    }
}

/// Installs the trace tier asked for (a cache library's code, live JIT, or both); returns
/// a handle on its counters. Nothing here is fatal: a tier that cannot start, or a cache
/// that cannot be used, is one warning naming the problem, and the run goes on with what
/// is left (live JIT, or the interpreter).
fn install_tier(
    args: &RunArgs,
    name: &str,
    program: &[u8],
    store: &mut Store,
    instance: InstanceId,
    module: &Module,
) -> Option<TierStatsHandle> {
    if args.cache.is_none() && !args.live_jit() {
        return None;
    }
    // The machine's code cache keeps the tier's own modules for every tier, and a cache
    // library's code; never live-JIT code (`WasmtimeTier::with_code_cache`).
    let new_tier = |store: &Store| {
        let mut tier = WasmtimeTier::with_code_cache(
            args.engine.backend(),
            store,
            instance,
            module,
            runtime::CodeCache::from_env(),
        )?;
        tier.compile_in_background(args.compile == CompileOn::Background);
        anyhow::Ok(tier)
    };
    let mut tier = match new_tier(store) {
        Ok(tier) => tier,
        Err(e) => {
            eprintln!("kiln: warning: {name}: trace code unavailable, interpreting only: {e:#}");
            return None;
        }
    };
    let mut attach = Vec::new();
    if let Some(path) = &args.cache {
        let app_hash = crate::record::hex(&Sha256::digest(program));
        let loaded = std::fs::read(path)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|bytes| runtime::load_cache(&mut tier, &bytes, &app_hash, module));
        match loaded {
            Ok(anchors) => attach = anchors,
            Err(problem) => {
                let fallback = if args.live_jit() {
                    "running with live JIT"
                } else {
                    "interpreting"
                };
                eprintln!(
                    "kiln: warning: cache {} not used: {problem}; {fallback}",
                    path.display()
                );
                // A library refused partway may have left some of its code in the tier:
                // none of it runs.
                tier = match new_tier(store) {
                    Ok(tier) => tier,
                    Err(e) => {
                        eprintln!(
                            "kiln: warning: {name}: trace code unavailable, interpreting only: {e:#}"
                        );
                        return None;
                    }
                };
            }
        }
    }
    if args.live_jit() {
        tier.enable_live_jit();
        store.enable_recording(RecordConfig::default());
    }
    for anchor in attach {
        store.attach_trace(instance, anchor);
    }
    let stats = tier.stats_handle();
    store.set_tier(Box::new(tier));
    Some(stats)
}

pub fn main(args: RunArgs) -> anyhow::Result<i32> {
    let name = args.program.display().to_string();
    let bytes = std::fs::read(&args.program).with_context(|| format!("{name}: cannot read"))?;
    let module = Module::new(&bytes).map_err(|e| anyhow!("{name}: invalid module: {e}"))?;

    let mut store = Store::new();
    let mut linker = Linker::new();
    let mut argv = vec![name.clone()];
    if args.invoke.is_none() {
        argv.extend(args.args.iter().cloned());
    }
    wasi::define(
        &mut linker,
        &mut store,
        WasiCtx::new(argv).env(args.env.clone()),
    );
    let instance = match linker.instantiate(&mut store, &module) {
        Ok(instance) => instance,
        Err(InstantiateError::Link(msg) | InstantiateError::Resource(msg)) => {
            bail!("{name}: {msg}")
        }
        Err(InstantiateError::Trap(trap)) => {
            return Ok(report_trap(&name, "start function", &trap))
        }
    };

    // A corpus kiln cannot use is reported before the program spends its time.
    let mut corpus = match &args.record_traces {
        Some(dir) => {
            Some(corpus::Corpus::open(dir).with_context(|| format!("corpus {}", dir.display()))?)
        }
        None => None,
    };
    let tier_stats = install_tier(&args, &name, &bytes, &mut store, instance, &module);
    if corpus.is_some() && !args.live_jit() {
        store.enable_recording(RecordConfig::default());
    }
    let code = match &args.invoke {
        None => match wasi::start_command(&mut store, instance) {
            Ok(code) => code,
            Err(RunError::Instantiate(e)) => bail!("{name}: {e}"),
            Err(RunError::Trap(trap)) => report_trap(&name, "`_start`", &trap),
        },
        Some(func) => invoke(&mut store, instance, &name, func, &args.args)?,
    };
    if let (Some(corpus), Some(dir)) = (corpus.as_mut(), &args.record_traces) {
        let app = args
            .program
            .file_stem()
            .map_or_else(|| name.clone(), |s| s.to_string_lossy().into_owned());
        let added = crate::record::store_traces(
            corpus, &mut store, instance, &module, &bytes, &app, &args.args,
        )?;
        eprintln!(
            "kiln: {} traces of {name} into {} ({} new, {} already there)",
            added.new + added.existing,
            dir.display(),
            added.new,
            added.existing
        );
    }
    if args.stats || args.stats_limit.is_some() {
        let limit = args.stats_limit.unwrap_or(DEFAULT_STATS_LIMIT);
        eprint!("{}", stats_table(&store, instance, &name, limit));
        if let Some(stats) = tier_stats {
            eprint!("{}", trace_table(&store, instance, &name, limit));
            let s = stats.get();
            eprintln!(
                "trace tier ({}): {} entries, {} traps, {} declined, {} traces left to the \
                 interpreter after probation; live JIT: {} traces compiled in {} modules, {} failed; \
                 side traces: {} from the cache, {} linked at hot exits, {} recordings asked for; \
                 timed trials: {} finished, {} won by the interpreter; \
                 trace trees: {} built, {} side traces inlined, {} failed; \
                 regions: {} built of {} traces, {} failed; \
                 {} exits inside inlined calls; \
                 calls: {} linked to entry traces, {} drives ended inside them; \
                 code from the machine's code cache: {} modules, {} compiled into it; \
                 cache libraries taken on its record of an earlier check: {}",
                args.engine.backend().name(),
                s.entries,
                s.traps,
                s.declined,
                s.detached,
                s.live_traces,
                s.live_modules,
                s.live_failures,
                s.cached_side_traces,
                s.side_traces,
                s.side_requests,
                s.trials,
                s.lost_trials,
                s.trees,
                s.tree_sides,
                s.tree_failures,
                s.regions,
                s.region_members,
                s.region_failures,
                s.call_exits,
                s.calls_linked,
                s.unwinds,
                s.code_cache_hits,
                s.code_cache_misses,
                s.known_libraries
            );
        }
    }
    Ok(code)
}

/// Prints a trap to stderr; returns the exit code for it.
pub(crate) fn report_trap(name: &str, what: &str, trap: &Trap) -> i32 {
    match trap.kind {
        TrapKind::Exit(code) => code,
        _ => {
            eprintln!("kiln: error: {name}: {what} trapped\n{}", format_trap(trap));
            EXIT_TRAP
        }
    }
}

/// A trap as [`Trap`]'s `Display` shows it, with repeated frames folded and the middle of
/// an overlong backtrace left out.
fn format_trap(trap: &Trap) -> String {
    let mut out = format!("wasm trap: {}", trap.kind);
    if trap.backtrace.is_empty() {
        return out;
    }
    out.push_str("\nwasm backtrace:");
    let frame = |i: usize| {
        let f = &trap.backtrace[i];
        let name = match &f.func_name {
            Some(name) => name.clone(),
            None => format!("<func {}>", f.func_index),
        };
        format!("  {i:>3}: {:#08x} - {name}", f.offset)
    };
    let mut lines = Vec::new();
    let mut i = 0;
    while i < trap.backtrace.len() {
        let same = trap.backtrace[i..]
            .iter()
            .take_while(|f| **f == trap.backtrace[i])
            .count();
        lines.push(frame(i));
        if same > 1 {
            lines.push(format!(
                "       ... the frame above {} more times",
                same - 1
            ));
        }
        i += same;
    }
    if lines.len() > MAX_BACKTRACE_LINES {
        // Keep the innermost frames and the outermost quarter; one line says what went.
        let tail = MAX_BACKTRACE_LINES / 4;
        let cut = MAX_BACKTRACE_LINES - 1 - tail..lines.len() - tail;
        let omitted = cut.len();
        lines.splice(
            cut,
            [format!("       ... {omitted} more lines of backtrace")],
        );
    }
    for line in lines {
        out.push('\n');
        out.push_str(&line);
    }
    out
}

/// `--invoke`: calls `func` with `args` and prints its results; returns the exit code.
fn invoke(
    store: &mut Store,
    instance: InstanceId,
    name: &str,
    func: &str,
    args: &[String],
) -> anyhow::Result<i32> {
    if let Some(Extern::Func(init)) = store.export(instance, "_initialize") {
        if let Err(trap) = store.invoke(init, &[]) {
            return Ok(report_trap(name, "`_initialize`", &trap));
        }
    }
    let f = match store.export(instance, func) {
        Some(Extern::Func(f)) => f,
        _ => {
            let module = store.instance_module(instance);
            let funcs: Vec<&str> = module
                .exports()
                .iter()
                .filter(|e| e.kind == trace_capture::ExportKind::Func)
                .map(|e| e.name.as_str())
                .collect();
            bail!(
                "{name}: no exported function `{func}` (exported functions: {})",
                if funcs.is_empty() {
                    "none".to_string()
                } else {
                    funcs.join(", ")
                }
            );
        }
    };
    let ty = store.func_type(f).clone();
    if args.len() != ty.params.len() {
        bail!(
            "{name}: `{func}` has type {ty}: it takes {} argument{}, {} given",
            ty.params.len(),
            if ty.params.len() == 1 { "" } else { "s" },
            args.len()
        );
    }
    let values = args
        .iter()
        .zip(&ty.params)
        .enumerate()
        .map(|(i, (arg, &t))| {
            parse_value(arg, t).ok_or_else(|| {
                anyhow!(
                    "{name}: argument {} of `{func}`: `{arg}` is not a valid {t}",
                    i + 1
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    match store.invoke(f, &values) {
        Ok(results) => {
            for v in results {
                println!("{}", format_value(v));
            }
            Ok(0)
        }
        Err(trap) => Ok(report_trap(name, &format!("`{func}`"), &trap)),
    }
}

fn parse_env_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}

/// Parses a command-line argument as a value of type `ty`.
fn parse_value(s: &str, ty: ValType) -> Option<Value> {
    Some(match ty {
        ValType::I32 => {
            let v = parse_int(s)?;
            if v < i32::MIN as i128 || v > u32::MAX as i128 {
                return None;
            }
            Value::I32(v as u32 as i32)
        }
        ValType::I64 => {
            let v = parse_int(s)?;
            if v < i64::MIN as i128 || v > u64::MAX as i128 {
                return None;
            }
            Value::I64(v as u64 as i64)
        }
        ValType::F32 => Value::F32(parse_float(s, 32)? as u32),
        ValType::F64 => Value::F64(parse_float(s, 64)?),
        ValType::FuncRef if s == "null" => Value::FuncRef(None),
        ValType::ExternRef if s == "null" => Value::ExternRef(None),
        ValType::FuncRef | ValType::ExternRef => return None,
    })
}

/// An integer in decimal or `0x` hex, with an optional sign; wide enough for both the
/// signed and the unsigned reading of an i64.
fn parse_int(s: &str) -> Option<i128> {
    let (negative, rest) = split_sign(s);
    let magnitude = match rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None if rest.bytes().all(|b| b.is_ascii_digit()) => rest.parse::<u64>().ok()?,
        None => return None,
    } as i128;
    Some(if negative { -magnitude } else { magnitude })
}

fn split_sign(s: &str) -> (bool, &str) {
    if let Some(rest) = s.strip_prefix('-') {
        (true, rest)
    } else {
        (false, s.strip_prefix('+').unwrap_or(s))
    }
}

/// The bits of a float of `width` 32 or 64: decimal, `inf`, `nan` (the canonical NaN) or
/// `nan:0xPAYLOAD`, each with an optional sign.
fn parse_float(s: &str, width: u32) -> Option<u64> {
    let (negative, rest) = split_sign(s);
    let mantissa_bits = if width == 32 { 23 } else { 52 };
    let exponent_mask: u64 = if width == 32 {
        0x7f80_0000
    } else {
        0x7ff0 << 48
    };
    let sign_bit: u64 = 1 << (width - 1);
    let lower = rest.to_ascii_lowercase();
    let bits = if lower == "nan" {
        exponent_mask | 1 << (mantissa_bits - 1)
    } else if let Some(payload) = lower.strip_prefix("nan:0x") {
        let payload = u64::from_str_radix(payload, 16).ok()?;
        if payload == 0 || payload >> mantissa_bits != 0 {
            return None;
        }
        exponent_mask | payload
    } else if rest.starts_with(['+', '-']) || rest.contains("nan") {
        return None;
    } else if width == 32 {
        rest.parse::<f32>().ok()?.to_bits() as u64
    } else {
        rest.parse::<f64>().ok()?.to_bits()
    };
    Some(if negative { bits | sign_bit } else { bits })
}

/// A result as `--invoke` prints it: integers in signed decimal; floats so that they
/// parse back to the same bits (NaNs as `nan` or `nan:0xPAYLOAD`, with their bits in a
/// comment).
fn format_value(v: Value) -> String {
    match v {
        Value::I32(v) => v.to_string(),
        Value::I64(v) => v.to_string(),
        Value::F32(bits) => {
            let f = f32::from_bits(bits);
            if f.is_nan() {
                format_nan(bits as u64, 32)
            } else {
                format!("{f:?}")
            }
        }
        Value::F64(bits) => {
            let f = f64::from_bits(bits);
            if f.is_nan() {
                format_nan(bits, 64)
            } else {
                format!("{f:?}")
            }
        }
        other => other.to_string(),
    }
}

fn format_nan(bits: u64, width: u32) -> String {
    let mantissa_bits = if width == 32 { 23 } else { 52 };
    let payload = bits & ((1 << mantissa_bits) - 1);
    let sign = if bits >> (width - 1) & 1 == 1 {
        "-"
    } else {
        ""
    };
    let digits = width as usize / 4;
    if payload == 1 << (mantissa_bits - 1) {
        format!("{sign}nan ;; {bits:#0w$x}", w = digits + 2)
    } else {
        format!("{sign}nan:{payload:#x} ;; {bits:#0w$x}", w = digits + 2)
    }
}

/// The `--stats` table: the `limit` anchors with the most hits, hottest first.
fn stats_table(store: &Store, instance: InstanceId, name: &str, limit: usize) -> String {
    let module = store.instance_module(instance);
    let anchors = module.anchors();
    let hits = store.anchor_hits(instance);
    let mut hot: Vec<usize> = (0..anchors.len()).filter(|&i| hits[i] > 0).collect();
    hot.sort_by_key(|&i| (std::cmp::Reverse(hits[i]), anchors[i].offset));
    let total = hot.len();
    hot.truncate(limit);

    let rows: Vec<Vec<String>> = hot
        .iter()
        .map(|&i| {
            let a = anchors[i];
            let kind = match a.kind {
                AnchorKind::FuncEntry => "entry",
                AnchorKind::Loop => "loop",
            };
            vec![
                function_label(&module, a.func_index),
                kind.to_string(),
                format!("{:#x}", a.offset),
                hits[i].to_string(),
            ]
        })
        .collect();
    format!(
        "kiln: hottest anchors of {name} ({} of {total} that ran):\n{}",
        rows.len(),
        aligned(&["function", "kind", "offset", "hits"], &rows, 3)
    )
}

/// The trace tier's profile: each piece of trace code that ran, by entries from the
/// interpreter (each one a host-to-wasm call) and then by
/// its passes; what a trace-JIT engineer asks first of a slow program.
fn trace_table(store: &Store, instance: InstanceId, name: &str, limit: usize) -> String {
    let module = store.instance_module(instance);
    let mut traces: Vec<TraceReport> = store
        .tier_report()
        .into_iter()
        .filter(|t| t.entries > 0 || t.passes > 0)
        .collect();
    traces.sort_by_key(|t| (std::cmp::Reverse((t.entries, t.passes)), t.func_index));
    let total = traces.len();
    traces.truncate(limit);
    let rows: Vec<Vec<String>> = traces
        .iter()
        .map(|t| {
            let start = match t.start {
                ReportStart::Loop { anchor_offset } => format!("loop {anchor_offset:#x}"),
                ReportStart::Side { pc } => format!("side pc {pc}"),
            };
            let per_entry = |count: u64| match t.entries {
                0 => "-".to_string(),
                n => format!("{:.2}", count as f64 / n as f64),
            };
            let mut notes = Vec::new();
            if matches!(t.start, ReportStart::Loop { .. }) && !t.loops {
                notes.push("ends at another loop".to_string());
            }
            if t.tree_sides > 0 {
                let plural = if t.tree_sides == 1 { "" } else { "s" };
                notes.push(format!("tree of {} side trace{plural}", t.tree_sides));
            }
            if t.detached {
                notes.push("left to the interpreter".to_string());
            }
            vec![
                function_label(&module, t.func_index),
                start,
                t.entries.to_string(),
                per_entry(t.segments),
                per_entry(t.handovers),
                t.passes.to_string(),
                notes.join(", "),
            ]
        })
        .collect();
    format!(
        "kiln: trace code of {name} by entries from the interpreter ({} of {total} that ran):\n{}",
        rows.len(),
        aligned(
            &[
                "function",
                "start",
                "entries",
                "segments/entry",
                "hand-overs/entry",
                "passes",
                ""
            ],
            &rows,
            2
        )
    )
}

/// "INDEX NAME" for a function, its name cut to `MAX_NAME_WIDTH`.
fn function_label(module: &Module, func_index: u32) -> String {
    match module.func_name(func_index) {
        Some(n) if n.chars().count() > MAX_NAME_WIDTH => {
            let cut: String = n.chars().take(MAX_NAME_WIDTH - 3).collect();
            format!("{func_index} {cut}...")
        }
        Some(n) => format!("{func_index} {n}"),
        None => func_index.to_string(),
    }
}

/// `header` and `rows` as columns two spaces apart, the columns from `numbers_from` on
/// right-aligned (all but the last, which is free text when its header is empty).
fn aligned(header: &[&str], rows: &[Vec<String>], numbers_from: usize) -> String {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let last = header.len() - 1;
    let free_text = header[last].is_empty();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                if c == last && free_text {
                    cell.clone()
                } else if c >= numbers_from {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_parse_in_decimal_and_hex_within_both_readings() {
        assert_eq!(parse_value("42", ValType::I32), Some(Value::I32(42)));
        assert_eq!(parse_value("-0x10", ValType::I32), Some(Value::I32(-16)));
        assert_eq!(
            parse_value("0xffffffff", ValType::I32),
            Some(Value::I32(-1))
        );
        assert_eq!(parse_value("4294967296", ValType::I32), None);
        assert_eq!(parse_value("-2147483649", ValType::I32), None);
        assert_eq!(
            parse_value("18446744073709551615", ValType::I64),
            Some(Value::I64(-1))
        );
        assert_eq!(parse_value("1.5", ValType::I32), None);
        assert_eq!(parse_value("--1", ValType::I32), None);
    }

    fn frame(func_index: u32, offset: u32) -> trace_capture::FrameInfo {
        trace_capture::FrameInfo {
            func_index,
            func_name: (func_index == 1).then(|| "one".to_string()),
            offset,
        }
    }

    #[test]
    fn backtraces_fold_repeats_and_cut_the_middle() {
        let mut trap = Trap::new(TrapKind::Unreachable);
        assert_eq!(format_trap(&trap), "wasm trap: unreachable");
        trap.backtrace = vec![
            frame(1, 0x10),
            frame(2, 0x20),
            frame(2, 0x20),
            frame(2, 0x20),
            frame(3, 0x30),
        ];
        assert_eq!(
            format_trap(&trap),
            "wasm trap: unreachable\nwasm backtrace:\n\
             \x20   0: 0x000010 - one\n\
             \x20   1: 0x000020 - <func 2>\n\
             \x20      ... the frame above 2 more times\n\
             \x20   4: 0x000030 - <func 3>"
        );
        // Mutual recursion does not fold; the middle goes.
        trap.backtrace = (0..1000).map(|i| frame(i % 2, 0x10)).collect();
        let text = format_trap(&trap);
        assert_eq!(text.lines().count(), 2 + MAX_BACKTRACE_LINES, "{text}");
        assert!(text.contains("    0: 0x000010 - <func 0>"), "{text}");
        assert!(text.contains("... 941 more lines of backtrace"), "{text}");
        assert!(text.ends_with("  999: 0x000010 - one"), "{text}");
    }

    #[test]
    fn floats_print_so_they_parse_back() {
        for s in [
            "1.5",
            "-0.0",
            "inf",
            "-inf",
            "1e-40",
            "3.4028235e38",
            "0.1",
            "nan",
            "-nan",
        ] {
            let v = parse_value(s, ValType::F32).unwrap();
            let printed = format_value(v);
            let again = printed.split(" ;;").next().unwrap();
            assert_eq!(
                parse_value(again, ValType::F32),
                Some(v),
                "{s} printed as {printed}"
            );
        }
        for s in ["2.5", "1e300", "5e-324", "nan:0x1", "-nan:0xfffffffffffff"] {
            let v = parse_value(s, ValType::F64).unwrap();
            let printed = format_value(v);
            let again = printed.split(" ;;").next().unwrap();
            assert_eq!(
                parse_value(again, ValType::F64),
                Some(v),
                "{s} printed as {printed}"
            );
        }
        assert_eq!(format_value(Value::F32(0x7fc0_0000)), "nan ;; 0x7fc00000");
        assert_eq!(
            format_value(Value::F32(0xffa0_0000)),
            "-nan:0x200000 ;; 0xffa00000"
        );
        assert_eq!(format_value(Value::F64(3.0f64.to_bits())), "3.0");
        assert_eq!(
            parse_value("nan:0x800000", ValType::F32),
            None,
            "payload too wide"
        );
        assert_eq!(
            parse_value("nan:0x0", ValType::F32),
            None,
            "that is infinity"
        );
    }
}
