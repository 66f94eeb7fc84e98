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
    Ls {
        /// Show only the N hottest.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// A trace's text form and every run that recorded it. ID is a hash or a unique
    /// prefix of one.
    Show { id: String },
    /// Checks every entry; exits 1 if any problem is found.
    Verify,
}

pub fn main(args: CorpusArgs) -> anyhow::Result<i32> {
    let corpus = Corpus::open_existing(&args.corpus)
        .with_context(|| format!("corpus {}", args.corpus.display()))?;
    let mut out = String::new();
    let code = command(&corpus, &args, &mut out)?;
    write_stdout(&out)?;
    Ok(code)
}

/// Writes the command's output. A reader that stops early (`kiln corpus ls | head`) is
/// not an error.
fn write_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn command(corpus: &Corpus, args: &CorpusArgs, out: &mut String) -> anyhow::Result<i32> {
    use std::fmt::Write;
    match &args.command {
        CorpusCommand::Stats => {
            let s = corpus.stats()?;
            writeln!(out, "traces        {}", s.traces)?;
            writeln!(
                out,
                "runs          {} ({} unfinished)",
                s.runs, s.unfinished_runs
            )?;
            writeln!(out, "apps          {}", s.apps)?;
            writeln!(out, "provenance    {}", s.provenance)?;
            writeln!(out, "side places   {}", s.side_places)?;
            writeln!(out, "total hits    {}", s.total_hits)?;
            writeln!(out, "trace bytes   {}", s.trace_bytes)?;
            writeln!(out, "file bytes    {}", s.file_bytes)?;
            writeln!(out, "problems      {}", s.problems.len())?;
            report(&s.problems);
        }
        CorpusCommand::Ls { limit } => {
            let listing = corpus.list()?;
            writeln!(
                out,
                "{:<16}  {:>12}  {:>6}  {:>5}  apps",
                "id", "hits", "insts", "runs"
            )?;
            for t in listing.traces.iter().take(limit.unwrap_or(usize::MAX)) {
                let id = t.hash.to_string();
                writeln!(
                    out,
                    "{:<16}  {:>12}  {:>6}  {:>5}  {}",
                    &id[..16],
                    t.total_hits,
                    t.insts,
                    t.provenance,
                    t.apps.join(",")
                )?;
            }
            report(&listing.problems);
        }
        CorpusCommand::Show { id } => {
            let stored = corpus.get(id.as_str())?;
            write!(
                out,
                "{}",
                ir::text::print_with_provenance(
                    &stored.trace,
                    stored.provenance.first().map(|p| &p.provenance)
                )
            )?;
            writeln!(out, ";; id {}", stored.hash)?;
            for p in &stored.provenance {
                writeln!(
                    out,
                    ";; recorded by run {} of {} (module {}) at func {} anchor {:#x}, {} hits",
                    p.run.0,
                    p.app,
                    &p.provenance.module_hash[..16.min(p.provenance.module_hash.len())],
                    p.provenance.func_index,
                    p.provenance.anchor_offset,
                    p.provenance.hits
                )?;
            }
        }
        CorpusCommand::Verify => {
            let problems = corpus.verify()?;
            report(&problems);
            if !problems.is_empty() {
                return Ok(1);
            }
            writeln!(out, "corpus {}: no problems", args.corpus.display())?;
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
