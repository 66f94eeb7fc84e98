//! `kiln opt`: one trace through saturation and proof, with what each stage did.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Context};
use corpus::Corpus;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Prints the recorded trace, the candidate equality saturation found, their costs, the \
rules that fired, z3's verdict on their equivalence and the time of each stage. TRACE is \
a .trace file (the text form) or, with --corpus, a trace id or unique prefix.

Exit codes: 0 when the candidate is proven (or unchanged); 1 when it is refuted or \
unknown (it would not ship); 2 when the trace cannot be read.")]
pub struct OptArgs {
    /// Look TRACE up in this corpus instead of reading a file.
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Also print the trace functions `emit` makes of the recorded trace (naive) and of
    /// a proven candidate (optimized), as WebAssembly text.
    #[arg(long)]
    wat: bool,
    /// Solver time limit per query, in seconds.
    #[arg(long, value_name = "S", default_value_t = verify::DEFAULT_TIMEOUT.as_secs_f64())]
    timeout: f64,
    /// A .trace file, or a corpus id with --corpus.
    trace: String,
}

pub fn main(args: OptArgs) -> anyhow::Result<i32> {
    let trace = match &args.corpus {
        Some(dir) => {
            let corpus =
                Corpus::open_existing(dir).with_context(|| format!("corpus {}", dir.display()))?;
            corpus.get(args.trace.as_str())?.trace
        }
        None => {
            let text = std::fs::read_to_string(&args.trace)
                .with_context(|| format!("{}: cannot read", args.trace))?;
            ir::text::parse(&text).map_err(|e| anyhow!("{}:{e}", args.trace))?
        }
    };
    println!(";; recorded\n{trace}");

    let start = Instant::now();
    let out = saturate::optimize(&trace, &saturate::Limits::default());
    let saturate_time = start.elapsed();
    println!(";; candidate\n{}", out.candidate);
    println!(";; cost {} -> {}", out.cost_before, out.cost_after);
    println!(";; rules fired: {}", out.rules_fired.join(", "));
    println!(
        ";; saturation stopped: {:?} after {} iterations, {} e-nodes",
        out.stop_reason, out.iterations, out.egraph_nodes
    );
    if let Some(why) = &out.fallback {
        println!(";; fell back to the recorded trace: {why}");
    }

    let start = Instant::now();
    let limits = verify::Limits {
        timeout: std::time::Duration::from_secs_f64(args.timeout),
    };
    let verdict = verify::check_equivalent(&trace, &out.candidate, &limits);
    let verify_time = start.elapsed();
    println!(";; verdict: {verdict}");
    println!(";; time: saturate {saturate_time:.2?}, verify {verify_time:.2?}");
    if args.wat {
        println!(";; wasm (naive)\n{}", wat(&trace, emit::EmitKind::Naive)?);
        if verdict.is_proven() && out.candidate != trace {
            println!(
                ";; wasm (optimized)\n{}",
                wat(&out.candidate, emit::EmitKind::Optimized)?
            );
        }
    }
    Ok(if verdict.is_proven() { 0 } else { 1 })
}

/// `trace` as a one-function module in WebAssembly text. The guest is what the trace
/// shows of it: the globals it reads (with their types) or writes, and a memory with no
/// declared limits.
fn wat(trace: &ir::Trace, kind: emit::EmitKind) -> anyhow::Result<String> {
    use std::collections::HashMap;
    let mut types: HashMap<ir::ValueId, ir::Type> =
        trace.inputs.iter().map(|i| (i.value, i.ty)).collect();
    for inst in &trace.body {
        if let Some((v, ty)) = inst.def() {
            types.insert(v, ty);
        }
    }
    let mut guest = emit::GuestInfo::default();
    for input in &trace.inputs {
        if let ir::Source::Global(g) = input.source {
            guest.globals.insert(
                g,
                emit::GlobalInfo {
                    ty: input.ty,
                    mutable: true,
                },
            );
        }
    }
    for inst in &trace.body {
        if let ir::Inst::GlobalSet { global, value } = inst {
            let ty = match value {
                ir::Operand::Value(v) => types.get(v).copied().unwrap_or(ir::Type::I64),
                ir::Operand::Const(_) => ir::Type::I64,
            };
            guest
                .globals
                .entry(*global)
                .or_insert(emit::GlobalInfo { ty, mutable: true });
        }
    }
    let mut builder = emit::ModuleBuilder::new(guest)?;
    builder.add(trace, kind)?;
    Ok(emit::wat(&builder.finish()?)?)
}
