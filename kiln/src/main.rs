//! `kiln`: the command-line front end. One file per subcommand; each only orchestrates
//! the library crates.
//!
//! Every subcommand returns the process's exit code, or an error that is printed as
//! `kiln: error: ...` and exits with [`EXIT_USAGE`].

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod cache_cmd;
mod corpus_cmd;
mod merge_cmd;
mod opt;
mod optimize_cmd;
mod optimize_worker;
mod record;
mod report_cmd;
mod run;

/// Exit code of a usage error, an unreadable, invalid or unlinkable module: everything
/// that stops kiln before the guest runs (clap uses it for bad command lines too).
pub const EXIT_USAGE: i32 = 2;
/// Exit code when the guest traps, as for a process killed by SIGABRT (128 + 6).
pub const EXIT_TRAP: i32 = 134;

#[derive(Parser, Debug)]
#[command(
    name = "kiln",
    version,
    about = "Bakes the hot paths of WebAssembly programs into proven, superoptimized wasm.",
    after_help = "Exit codes: the guest's own exit code after a run; 2 for a usage error or \
                  a module that cannot be read, validated or linked; 134 when the guest \
                  traps (as for an abort)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a WASI command with kiln's interpreter, or call one of a module's exports.
    Run(run::RunArgs),
    /// Run a WASI command with trace recording on and add its hot traces to a corpus.
    Record(record::RecordArgs),
    /// Look into a corpus of recorded traces: stats, ls, show ID, verify.
    Corpus(corpus_cmd::CorpusArgs),
    /// Saturate one trace, prove the candidate, and show what each stage did.
    Opt(opt::OptArgs),
    /// Optimize and verify every trace of a corpus without a current result; store each.
    Optimize(optimize_cmd::OptimizeArgs),
    /// Benchmark kiln against other engines (or, with --recording, recording's cost).
    Bench(bench::BenchArgs),
    /// Build a cache library of an app's traces from a corpus, or list one's traces.
    Cache(cache_cmd::CacheArgs),
    /// Join the results of `kiln optimize --shard` runs into one corpus.
    Merge(merge_cmd::MergeArgs),
    /// Internal: one of `kiln optimize`'s worker processes.
    #[command(name = "optimize-worker", hide = true)]
    OptimizeWorker(optimize_worker::WorkerArgs),
    /// Write the missed-optimization report of a corpus's results (Markdown, JSON, HTML).
    Report(report_cmd::ReportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::main(args),
        Command::Record(args) => record::main(args),
        Command::Corpus(args) => corpus_cmd::main(args),
        Command::Opt(args) => opt::main(args),
        Command::Optimize(args) => optimize_cmd::main(args),
        Command::Bench(args) => bench::main(args),
        Command::Cache(args) => cache_cmd::main(args),
        Command::Report(args) => report_cmd::main(args),
        Command::Merge(args) => merge_cmd::main(args),
        Command::OptimizeWorker(args) => optimize_worker::main(args),
    };
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kiln: error: {err:#}");
            EXIT_USAGE
        }
    };
    let _ = std::io::stdout().flush();
    // Exit codes are 8 bits on Unix; a guest's `exit(256)` is 0 there as it is natively.
    ExitCode::from(code as u8)
}
