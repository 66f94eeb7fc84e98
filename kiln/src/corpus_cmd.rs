//! `kiln corpus`: looks into a corpus of recorded traces.

use std::path::PathBuf;

use anyhow::Context;
use corpus::{Corpus, Problem};

#[derive(clap::Args, Debug)]
pub struct CorpusArgs {
    /// The corpus directory.
    #[arg(long, value_name = "DIR", global = true, default_value = "kiln-corpus")]
    corpus: PathBuf,
    #[command(subcommand)]
    command: CorpusCommand,
}

#[derive(clap::Subcommand, Debug)]
enum CorpusCommand {
    /// Counts: traces, runs, apps, hits, bytes, and any corrupt entries.
    Stats,
    /// One line per trace, hottest first: id, total hits, length, apps.
    Ls,
    /// A trace's text form and every run that recorded it. ID is a hash or a unique
    /// prefix of one.
    Show { id: String },
    /// Checks every entry; exits 1 if any problem is found.
    Verify,
}

pub fn main(args: CorpusArgs) -> anyhow::Result<i32> {
    let corpus = Corpus::open_existing(&args.corpus)
        .with_context(|| format!("corpus {}", args.corpus.display()))?;
    match args.command {
        CorpusCommand::Stats => {
            let s = corpus.stats()?;
            println!("traces        {}", s.traces);
            println!(
                "runs          {} ({} unfinished)",
                s.runs, s.unfinished_runs
            );
            println!("apps          {}", s.apps);
            println!("provenance    {}", s.provenance);
            println!("total hits    {}", s.total_hits);
            println!("trace bytes   {}", s.trace_bytes);
            println!("file bytes    {}", s.file_bytes);
            println!("problems      {}", s.problems.len());
            report(&s.problems);
        }
        CorpusCommand::Ls => {
            let listing = corpus.list()?;
            println!(
                "{:<16}  {:>12}  {:>6}  {:>5}  apps",
                "id", "hits", "insts", "runs"
            );
            for t in &listing.traces {
                let id = t.hash.to_string();
                println!(
                    "{:<16}  {:>12}  {:>6}  {:>5}  {}",
                    &id[..16],
                    t.total_hits,
                    t.insts,
                    t.provenance,
                    t.apps.join(",")
                );
            }
            report(&listing.problems);
        }
        CorpusCommand::Show { id } => {
            let stored = corpus.get(id.as_str())?;
            print!(
                "{}",
                ir::text::print_with_provenance(
                    &stored.trace,
                    stored.provenance.first().map(|p| &p.provenance)
                )
            );
            println!(";; id {}", stored.hash);
            for p in &stored.provenance {
                println!(
                    ";; recorded by run {} of {} (module {}) at func {} anchor {:#x}, {} hits",
                    p.run.0,
                    p.app,
                    &p.provenance.module_hash[..16.min(p.provenance.module_hash.len())],
                    p.provenance.func_index,
                    p.provenance.anchor_offset,
                    p.provenance.hits
                );
            }
        }
        CorpusCommand::Verify => {
            let problems = corpus.verify()?;
            report(&problems);
            if !problems.is_empty() {
                return Ok(1);
            }
            println!("corpus {}: no problems", args.corpus.display());
        }
    }
    Ok(0)
}

/// Corrupt entries are skipped by every reader; say which, on stderr.
fn report(problems: &[Problem]) {
    for p in problems {
        eprintln!("kiln: corpus problem: {p}");
    }
}
