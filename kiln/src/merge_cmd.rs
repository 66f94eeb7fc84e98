//! `kiln merge`: joins the results of shards (`kiln optimize --shard I/N`, each run on a
//! copy of one corpus) into one corpus, so that cache builds and reports from it are what
//! one unsharded run would give. The rules for results both sides hold are the corpus's
//! (`corpus::merge`).

use std::path::PathBuf;

use anyhow::{bail, Context};
use corpus::Corpus;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Each SHARD_DIR is a copy of the corpus at DIR on which `kiln optimize --shard I/N` ran. \
Their results are added to DIR, one shard at a time, each in one transaction: a shard that \
cannot be read, holds a result for a trace DIR lacks, or contradicts DIR (one proven, the \
other refuted) changes nothing and stops the merge with an error naming it; shards merged \
before it stay merged, and rerunning the merge is harmless. Where both hold a result, a \
decided verdict (proven, refuted) wins over an undecided one (unknown, failed); otherwise \
DIR's stays.

Exit codes: 0 when every shard is merged; 2 otherwise.")]
pub struct MergeArgs {
    /// The corpus the results go into.
    #[arg(long, value_name = "DIR")]
    into: PathBuf,
    /// The shards' corpora.
    #[arg(value_name = "SHARD_DIR", required = true)]
    shards: Vec<PathBuf>,
}

pub fn main(args: MergeArgs) -> anyhow::Result<i32> {
    let mut target = Corpus::open_existing(&args.into)
        .with_context(|| format!("corpus {}", args.into.display()))?;
    for dir in &args.shards {
        if dir.canonicalize().ok() == args.into.canonicalize().ok() {
            bail!(
                "{}: a shard is the corpus it would be merged into",
                dir.display()
            );
        }
        let shard =
            Corpus::open_existing(dir).with_context(|| format!("shard {}", dir.display()))?;
        let merged = target
            .merge_results(&shard)
            .with_context(|| format!("shard {}", dir.display()))?;
        println!(
            "merge: {}: {} results added, {} undecided ones decided, {} kept",
            dir.display(),
            merged.added,
            merged.decided,
            merged.kept
        );
    }
    Ok(0)
}
