//! `kiln report`: the missed-optimization report of a corpus's results, as Markdown,
//! JSON and one self-contained HTML page. The work is the `reports` crate's.

use std::path::PathBuf;

use std::collections::HashMap;

use anyhow::{anyhow, Context};

use crate::optimize_cmd::{modules_in, optimizer_version};

/// Where the report goes unless `-o` says otherwise.
const DEFAULT_OUTPUT: &str = "kiln-report";

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Reads the results `kiln optimize` stored for the current optimizer version and writes \
report.md, report.json and report.html into OUT: savings, time per stage, savings by rule \
family, rewrites grouped into patterns and ranked by hits × savings (each with its wasm \
text before and after, its rule chain and its proof), and the comparison with Binaryen's \
`wasm-opt -O3` (when wasm-opt is on PATH). The same store gives the same files.

Exit codes: 0 when the report is written; 2 when the corpus cannot be read, has no \
results (run `kiln optimize` first), or OUT cannot be written.")]
pub struct ReportArgs {
    /// The corpus directory.
    #[arg(long, value_name = "DIR")]
    corpus: PathBuf,
    /// The directory to write the report into (created if absent).
    #[arg(short = 'o', long = "output", value_name = "OUT", default_value = DEFAULT_OUTPUT)]
    output: PathBuf,
    /// Where to find apps' modules the corpus does not hold (`.wasm` files, matched by
    /// SHA-256). Trace functions for the wasm-opt comparison import the app's own memory
    /// and globals; without its module they are derived from what each trace reads
    #[arg(long, value_name = "DIR")]
    apps: Option<PathBuf>,
}

pub fn main(args: ReportArgs) -> anyhow::Result<i32> {
    let mut guests = HashMap::new();
    if let Some(dir) = &args.apps {
        for (hash, path) in modules_in(dir)? {
            let bytes = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
            let module = trace_capture::Module::new(&bytes)
                .map_err(|e| anyhow!("{}: invalid module: {e}", path.display()))?;
            guests.insert(hash, runtime::guest_info(&module));
        }
    }
    // Modules the corpus holds; a missing or unreadable one only costs the comparison
    // the app's own memory and global types, so it is skipped, not an error.
    if let Ok(corpus) = corpus::Corpus::open_existing(&args.corpus) {
        for run in corpus.runs().unwrap_or_default() {
            if guests.contains_key(&run.module_hash) {
                continue;
            }
            let module = corpus.module(&run.module_hash).ok().flatten();
            if let Some(module) = module.and_then(|b| trace_capture::Module::new(&b).ok()) {
                guests.insert(run.module_hash.clone(), runtime::guest_info(&module));
            }
        }
    }
    let report = reports::Report::build(&args.corpus, &optimizer_version(), &guests)
        .map_err(|e| anyhow!("{e}"))?;
    let written = reports::write(&report, &args.output).map_err(|e| anyhow!("{e}"))?;
    let (below, equal, above) = report.against_wasm_opt();
    println!(
        "report: {} traces, {} patterns; against wasm-opt -O3: kiln below on {below}, equal on {equal}, above on {above}",
        report.traces.len(),
        report.patterns.len(),
    );
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(0)
}
