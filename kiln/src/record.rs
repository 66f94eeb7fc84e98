//! `kiln record`: runs a WASI command on kiln's interpreter with trace recording on, and
//! adds the traces of its hot loops to a corpus.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use corpus::Corpus;
use sha2::{Digest, Sha256};
use trace_capture::wasi::{self, RunError, WasiCtx};
use trace_capture::{
    AnchorKind, InstanceId, InstantiateError, Linker, Module, RecordConfig, Store,
};

use runtime::{Backend, WasmtimeTier};

use crate::run::{report_trap, Jit};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Runs PROGRAM's `_start` like `kiln run --jit live` (ARGS go to the guest), records one trace \
of every loop that turns hot and the side traces the live JIT links at hot exits, and adds \
them to the corpus at DIR (created if absent), the side traces with their places, so that \
`kiln cache build` can ship them too. With `--jit off` the program is only interpreted and \
only loop traces are recorded. A trace \
already in the corpus is stored once; its hit counts add up and its provenance lists every \
run that produced it. Traces recorded before a guest trap are kept.

`--corpus DIR` may also come last, after the program's arguments \
(`kiln record app.wasm 10 --corpus DIR`): the final two words are then kiln's, not the \
program's.

Exit codes: the program's own; 2 when the module or the corpus cannot be used; 134 when \
the guest traps.")]
pub struct RecordArgs {
    /// The corpus directory.
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Loop iterations before a loop is recorded.
    #[arg(long, value_name = "N", default_value_t = trace_capture::record::DEFAULT_HOT_THRESHOLD)]
    threshold: u64,
    /// Live JIT while recording (side traces come from its hot exits), or the
    /// interpreter alone (loop traces only).
    #[arg(long, value_enum, default_value_t = Jit::Live)]
    jit: Jit,
    /// The WebAssembly module to run.
    #[arg(value_name = "PROGRAM.wasm")]
    program: PathBuf,
    /// Arguments for the program.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn main(mut args: RecordArgs) -> anyhow::Result<i32> {
    let corpus_dir = match args.corpus.take() {
        Some(dir) => dir,
        None => match args.args.as_slice() {
            [.., flag, dir] if flag == "--corpus" => {
                let dir = PathBuf::from(dir);
                args.args.truncate(args.args.len() - 2);
                dir
            }
            _ => bail!("kiln record needs --corpus DIR"),
        },
    };
    let name = args.program.display().to_string();
    let bytes = std::fs::read(&args.program).with_context(|| format!("{name}: cannot read"))?;
    let module = Module::new(&bytes).map_err(|e| anyhow!("{name}: invalid module: {e}"))?;
    let app = args
        .program
        .file_stem()
        .map_or_else(|| name.clone(), |s| s.to_string_lossy().into_owned());
    // Open the corpus before running: a corpus kiln cannot use is reported before the
    // program spends its time.
    let mut corpus =
        Corpus::open(&corpus_dir).with_context(|| format!("corpus {}", corpus_dir.display()))?;

    let mut store = Store::new();
    store.enable_recording(RecordConfig {
        hot_threshold: args.threshold,
        ..RecordConfig::default()
    });
    let mut linker = Linker::new();
    let mut argv = vec![name.clone()];
    argv.extend(args.args.iter().cloned());
    wasi::define(&mut linker, &mut store, WasiCtx::new(argv));
    let instance = match linker.instantiate(&mut store, &module) {
        Ok(instance) => instance,
        Err(InstantiateError::Link(msg) | InstantiateError::Resource(msg)) => {
            bail!("{name}: {msg}")
        }
        Err(InstantiateError::Trap(trap)) => {
            return Ok(report_trap(&name, "start function", &trap))
        }
    };
    if args.jit == Jit::Live {
        match WasmtimeTier::new(Backend::Cranelift, &store, instance, &module) {
            Ok(mut tier) => {
                tier.enable_live_jit();
                tier.for_recording();
                store.set_tier(Box::new(tier));
            }
            Err(e) => {
                eprintln!("kiln: warning: {name}: no live JIT ({e:#}); recording loop traces only")
            }
        }
    }
    let exit = match wasi::start_command(&mut store, instance) {
        Ok(code) => code,
        Err(RunError::Instantiate(e)) => bail!("{name}: {e}"),
        Err(RunError::Trap(trap)) => report_trap(&name, "`_start`", &trap),
    };
    let added = store_traces(
        &mut corpus,
        &mut store,
        instance,
        &module,
        &bytes,
        &app,
        &args.args,
    )?;

    let stats = store.record_stats();
    let aborts: Vec<String> = stats
        .aborts
        .iter()
        .map(|(r, n)| format!("{r}: {n}"))
        .collect();
    eprintln!(
        "kiln: recorded {} traces of {name}: {} from {} hot loops, {} side traces ({} new in {}, {} already there); \
         aborted recordings: {}",
        stats.traces as usize + added.sides,
        stats.traces,
        stats.hot_anchors,
        added.sides,
        added.new,
        corpus_dir.display(),
        added.existing,
        if aborts.is_empty() {
            "none".to_string()
        } else {
            aborts.join(", ")
        },
    );
    Ok(exit)
}

/// Adds the traces `store` recorded from `instance` of `module` (whose bytes are
/// `bytes`) to `corpus` as one run of `app` with `args`.
pub(crate) fn store_traces(
    corpus: &mut Corpus,
    store: &mut Store,
    instance: InstanceId,
    module: &Module,
    bytes: &[u8],
    app: &str,
    args: &[String],
) -> anyhow::Result<Added> {
    let module_hash = hex(&Sha256::digest(bytes));
    // A trace's hotness is its anchor's count over the whole run, not the count when
    // it was recorded: that is what ranks traces for the nightly job and the reports.
    // With a tier, most passes ran in trace code, which the anchor counters do not see.
    let hits = store.anchor_hits(instance);
    let tier_passes: std::collections::HashMap<(u32, u32), u64> =
        store.tier_loop_passes().into_iter().collect();
    let anchors = module.anchors();
    let final_hits = |func: u32, offset: u32| {
        let interpreted = anchors
            .iter()
            .position(|a| a.kind == AnchorKind::Loop && a.func_index == func && a.offset == offset)
            .map(|id| hits[id]);
        let traced = tier_passes.get(&(func, offset)).copied().unwrap_or(0);
        interpreted.map(|h| h.saturating_add(traced))
    };
    let traces: Vec<(ir::Trace, ir::Provenance)> = store
        .take_recorded()
        .into_iter()
        .map(|t| {
            let provenance = ir::Provenance {
                module_hash: module_hash.clone(),
                func_index: t.func_index,
                anchor_offset: t.anchor_offset,
                kind: ir::AnchorKind::Loop,
                hits: final_hits(t.func_index, t.anchor_offset).unwrap_or(t.hits),
            };
            (t.trace, provenance)
        })
        .collect();
    // The module first: a corpus never names a module it could not hand back.
    corpus.put_module(bytes)?;
    let sides: Vec<(ir::Trace, ir::SideProvenance)> = store
        .tier_side_traces()
        .into_iter()
        .map(|s| {
            let provenance = ir::SideProvenance {
                module_hash: module_hash.clone(),
                start: s.start,
                offset: s.offset,
                passes: s.passes,
            };
            (s.trace, provenance)
        })
        .collect();
    let run = corpus.begin_run(app, &module_hash, args)?;
    let loops = corpus.add_traces(run, &traces)?;
    let side_added = corpus.add_side_traces(run, &sides)?;
    corpus.finish_run(run)?;
    Ok(Added {
        new: loops.new + side_added.new,
        existing: loops.existing + side_added.existing,
        sides: sides.len(),
    })
}

/// What [`store_traces`] added: traces new to the corpus and already there (loop and
/// side traces together), and how many of them were side traces.
pub(crate) struct Added {
    pub new: usize,
    pub existing: usize,
    pub sides: usize,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
