//! `kiln cache`: builds a cache library for one app from a corpus and the optimizer's
//! results (`build`), and lists what a cache holds (`inspect`). The format and its
//! checks are `emit::cache`'s.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use corpus::{Corpus, OptimizationResult, Verdict};
use emit::cache::{CacheLibrary, CacheWriter, ProofVerdict, TraceRecord, MAX_CACHE_BYTES};
use emit::EmitKind;
use sha2::{Digest, Sha256};

use crate::optimize_cmd;

#[derive(clap::Args, Debug)]
pub struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(clap::Subcommand, Debug)]
enum CacheCommand {
    /// Build a cache library for PROGRAM from the traces a corpus holds of it.
    #[command(after_help = "\
Takes every trace the corpus recorded from this exact module (same SHA-256), the hottest \
one per loop, and its result by the current optimizer from the corpus (`kiln optimize` \
stores them; a trace without one is optimized now, as the job would, and its result \
stored): a proven candidate ships optimized, otherwise the recorded trace ships as it \
was, with the reason in the manifest. The same corpus and results give the same bytes. \
The file is written whole or not at all (a temporary file renamed into place).

Exit codes: 0 when the cache is written; 2 when the corpus, the program or the output \
cannot be used, or the corpus holds no traces of the program.")]
    Build {
        /// The corpus directory.
        #[arg(long, value_name = "DIR")]
        corpus: PathBuf,
        /// The app the cache is for.
        #[arg(long, value_name = "PROGRAM.wasm")]
        app: PathBuf,
        /// Where to write the cache.
        #[arg(short = 'o', long = "output", value_name = "OUT.kcache")]
        output: PathBuf,
        /// Time allowed for one trace without a stored result, saturation and verification
        /// together, in seconds (as `kiln optimize --budget-per-trace`).
        #[arg(long, value_name = "S", default_value_t = optimize_cmd::DEFAULT_BUDGET_SECS)]
        budget_per_trace: f64,
    },
    /// List a cache library's traces with their costs and verdicts.
    #[command(after_help = "\
Checks the file as `kiln run` would, except that a cache of another app or another kiln \
version is shown (and said to be so) rather than refused.

Exit codes: 0 when the cache reads; 2 when it cannot be read or fails a check.")]
    Inspect {
        /// The cache file.
        #[arg(value_name = "FILE.kcache")]
        file: PathBuf,
    },
}

pub fn main(args: CacheArgs) -> anyhow::Result<i32> {
    match args.command {
        CacheCommand::Build {
            corpus,
            app,
            output,
            budget_per_trace,
        } => build(&corpus, &app, &output, budget_per_trace),
        CacheCommand::Inspect { file } => inspect(&file),
    }
}

/// One trace to ship: the hottest recorded at its anchor (or place, for a side trace).
struct Chosen {
    hash: corpus::TraceHash,
    trace: ir::Trace,
    hits: u64,
    /// A side trace's module offset (of its first instruction); a loop trace's is its
    /// anchor's, the key it is chosen by.
    offset: u32,
}

pub fn build(corpus_dir: &Path, app: &Path, output: &Path, budget: f64) -> anyhow::Result<i32> {
    let name = app.display().to_string();
    let bytes = std::fs::read(app).with_context(|| format!("{name}: cannot read"))?;
    build_from_bytes(corpus_dir, &name, &bytes, output, budget)
}

/// [`build`] for an app's module given as bytes, called `name` in messages.
pub fn build_from_bytes(
    corpus_dir: &Path,
    name: &str,
    bytes: &[u8],
    output: &Path,
    budget: f64,
) -> anyhow::Result<i32> {
    let budget = optimize_cmd::parse_budget(budget)?;
    let module =
        trace_capture::Module::new(bytes).map_err(|e| anyhow!("{name}: invalid module: {e}"))?;
    let app_hash = hex(&Sha256::digest(bytes));
    let mut corpus = Corpus::open_existing(corpus_dir)
        .with_context(|| format!("corpus {}", corpus_dir.display()))?;

    let Found { chosen, other_kiln } = traces_of(&corpus, &app_hash)?;
    if chosen.is_empty() {
        let others = if other_kiln > 0 {
            format!(
                " recorded by this kiln ({}; {other_kiln} recordings by other versions left out)",
                corpus::KILN_VERSION
            )
        } else {
            String::new()
        };
        bail!(
            "the corpus {} holds no traces of {name}{others} (module sha256 {app_hash}); \
             record some first with `kiln record --corpus {} {name} ...`",
            corpus_dir.display(),
            corpus_dir.display()
        );
    }
    if other_kiln > 0 {
        eprintln!(
            "kiln: warning: left out {other_kiln} recordings of {name} made by other kiln versions"
        );
    }

    // z3 names its version only (`4.8.12.0`); the optimizer version holds it too, so a
    // stored result was proven by this very solver.
    let solver = format!("z3 {}", z3::full_version());
    let version = optimize_cmd::optimizer_version();
    let mut writer = CacheWriter::new(runtime::guest_info(&module), &app_hash)?;
    let mut tally = Tally::default();
    let mut builder = Builder {
        corpus: &mut corpus,
        corpus_dir,
        writer: &mut writer,
        solver: &solver,
        version: &version,
        budget,
        tally: &mut tally,
    };
    for (&(func_index, anchor_offset), c) in &chosen {
        let key = format!(
            "function {func_index} anchor {anchor_offset:#x} ({})",
            c.hash
        );
        builder.ship(c, func_index, anchor_offset, None, &key)?;
    }
    // Side traces: the cache links them where the recording run did, and the runtime
    // grows trees of them from the start instead of recording and compiling them again.
    let sides = sides_of(builder.corpus, &app_hash, name)?;
    let loops_shipped = builder.writer.len();
    for (start, c) in sides.values() {
        let key = format!(
            "side trace at function {} pc {}{} ({})",
            start.func_index,
            start.pc,
            start
                .selector
                .map_or(String::new(), |s| format!(" arm {}", s.arm)),
            c.hash
        );
        builder.ship(c, start.func_index, c.offset, Some(start.clone()), &key)?;
    }
    let sides_shipped = builder.writer.len() - loops_shipped;
    let Tally {
        proven,
        skipped,
        optimized_now,
        from_store,
    } = tally;
    if writer.is_empty() {
        bail!(
            "none of the {} traces of {name} could be emitted",
            chosen.len()
        );
    }
    let cache = writer.finish()?;
    // What is written must read back: a failure here is a bug of the writer, and no file
    // is left for `kiln run` to trip over.
    CacheLibrary::read(&cache, &app_hash)
        .map_err(|e| anyhow!("the cache built does not read back (a kiln bug): {e}"))?;
    write_atomically(output, &cache)?;
    eprintln!(
        "kiln: wrote {}: {} traces of {name} ({loops_shipped} loop traces, {sides_shipped} side traces; {proven} optimized and proven, {} recorded as they were{}), {} bytes; {from_store} results from the store, {optimized_now} optimized now",
        output.display(),
        writer.len(),
        writer.len() - proven,
        if skipped > 0 { format!(", {skipped} left out") } else { String::new() },
        cache.len(),
    );
    Ok(0)
}

/// What a build shipped, and how.
#[derive(Default)]
struct Tally {
    proven: usize,
    skipped: usize,
    optimized_now: usize,
    from_store: usize,
}

/// What shipping one trace needs.
struct Builder<'a> {
    corpus: &'a mut Corpus,
    corpus_dir: &'a Path,
    writer: &'a mut CacheWriter,
    solver: &'a str,
    version: &'a str,
    budget: Duration,
    tally: &'a mut Tally,
}

impl Builder<'_> {
    /// Adds `c` to the cache: its proven candidate if the optimizer has one, else the
    /// recorded trace with the reason; a trace that cannot be emitted either way is left
    /// out with a warning. `side` is a side trace's place; `key` names it in messages.
    fn ship(
        &mut self,
        c: &Chosen,
        func_index: u32,
        anchor_offset: u32,
        side: Option<ir::SideStart>,
        key: &str,
    ) -> anyhow::Result<()> {
        let (result, fresh) = stored_or_optimized(self.corpus, c, self.version, self.budget)
            .with_context(|| format!("corpus {}: {key}", self.corpus_dir.display()))?;
        if fresh {
            self.tally.optimized_now += 1;
        } else {
            self.tally.from_store += 1;
        }
        let record = |verdict, cost_after, solver: &str| TraceRecord {
            func_index,
            anchor_offset,
            side: side.clone(),
            content_hash: c.hash,
            cost_before: result.cost_before,
            cost_after,
            verdict,
            solver: solver.to_string(),
        };
        // The solver was asked only when there was a candidate to prove.
        let asked = if result.candidate.is_some() {
            self.solver
        } else {
            ""
        };
        let recorded = |reason: String| {
            record(
                ProofVerdict::Unproven {
                    reason: format!("{}; the recorded trace ships as it was", one_line(&reason)),
                },
                result.cost_before,
                asked,
            )
        };
        let fallback_record = match (&result.verdict, &result.candidate) {
            (Verdict::Proven, Some(candidate)) => {
                let shipped = self.writer.add(
                    candidate,
                    record(ProofVerdict::Proven, result.cost_after, self.solver),
                );
                match shipped {
                    Ok(_) => {
                        self.tally.proven += 1;
                        return Ok(());
                    }
                    Err(e) => recorded(format!("the proven candidate could not be emitted: {e}")),
                }
            }
            (Verdict::Proven, None) => recorded(format!("saturation {}", result.reason)),
            (Verdict::Refuted, _) => recorded(format!(
                "the candidate (cost {}) was refuted: {}",
                result.cost_after, result.reason
            )),
            (Verdict::Unknown, _) => recorded(format!(
                "the candidate (cost {}) was not proven: {}",
                result.cost_after, result.reason
            )),
            (Verdict::Failed, _) => recorded(format!("the optimizer failed: {}", result.reason)),
        };
        if let Err(e) = self.writer.add(&c.trace, fallback_record) {
            eprintln!("kiln: warning: {key} left out of the cache: {e}");
            self.tally.skipped += 1;
        }
        Ok(())
    }
}

/// The side trace shipped per place (its `br_table` shape aside) and arm: its start as
/// recorded, and the trace.
type ChosenSides = BTreeMap<(ir::SideStart, Option<u32>), (ir::SideStart, Chosen)>;

/// The side traces the corpus recorded from the module hashing to `app_hash`, by place
/// (and `br_table` arm): at each the one that ran most there over this kiln's runs (ties:
/// the smaller hash), so the cache is the same whatever order the corpus lists them in.
fn sides_of(corpus: &Corpus, app_hash: &str, name: &str) -> anyhow::Result<ChosenSides> {
    let listing = corpus.side_traces_of(app_hash)?;
    for problem in &listing.problems {
        eprintln!("kiln: warning: skipped a side trace of the corpus: {problem}");
    }
    // Passes per (place, trace), over every run of this kiln.
    let mut passes: BTreeMap<(ir::SideStart, Option<u32>, corpus::TraceHash), (u64, usize)> =
        BTreeMap::new();
    let mut other_kiln = 0;
    for (i, side) in listing.sides.iter().enumerate() {
        if side.kiln_version != corpus::KILN_VERSION {
            other_kiln += 1;
            continue;
        }
        // The place without its `br_table`'s shape, and the arm: what one side trace is
        // shipped per.
        let mut place = side.provenance.start.clone();
        let arm = place.selector.take().map(|s| s.arm);
        let entry = passes.entry((place, arm, side.hash)).or_insert((0, i));
        entry.0 = entry.0.saturating_add(side.provenance.passes);
    }
    if other_kiln > 0 {
        eprintln!(
            "kiln: warning: left out {other_kiln} side-trace recordings of {name} made by \
             other kiln versions"
        );
    }
    let mut chosen: BTreeMap<(ir::SideStart, Option<u32>), (ir::SideStart, Chosen)> =
        BTreeMap::new();
    for ((place, arm, hash), (passes, i)) in passes {
        let better = chosen.get(&(place.clone(), arm)).is_none_or(|(_, c)| {
            (passes, std::cmp::Reverse(hash)) > (c.hits, std::cmp::Reverse(c.hash))
        });
        if better {
            let side = &listing.sides[i];
            let c = Chosen {
                hash,
                trace: side.trace.clone(),
                hits: passes,
                offset: side.provenance.offset,
            };
            chosen.insert((place, arm), (side.provenance.start.clone(), c));
        }
    }
    Ok(chosen)
}

/// The trace's result by the current optimizer: the stored one when the nightly job has
/// run, else optimized now exactly as the job would and stored, so the next build (and
/// the job) finds it. `true` with a result optimized now. A result that cannot be stored
/// is still used, with a warning: the cache is right either way.
fn stored_or_optimized(
    corpus: &mut Corpus,
    chosen: &Chosen,
    version: &str,
    budget: Duration,
) -> anyhow::Result<(OptimizationResult, bool)> {
    if let Some(stored) = corpus.result(&chosen.hash, version)? {
        return Ok((stored.result, false));
    }
    let result = optimize_cmd::optimize_one(&chosen.trace, budget);
    if let Err(e) = corpus.put_result(&chosen.hash, version, &result) {
        eprintln!(
            "kiln: warning: {}: the result could not be stored: {e}",
            chosen.hash
        );
    }
    Ok((result, true))
}

/// The traces the corpus recorded from the module hashing to `app_hash`, by anchor: at
/// each loop anchor the one with the most hits there (ties: the smaller hash), so the
/// cache is the same whatever order the corpus lists them in.
fn traces_of(corpus: &Corpus, app_hash: &str) -> anyhow::Result<Found> {
    // Only this kiln's recordings: a trace names interpreter slots and pcs, which another
    // kiln version's lowering may number differently.
    let this_kiln: std::collections::BTreeSet<corpus::RunId> = corpus
        .runs()?
        .into_iter()
        .filter(|r| r.kiln_version == corpus::KILN_VERSION)
        .map(|r| r.id)
        .collect();
    let mut other_kiln = 0;
    let listing = corpus.list()?;
    for problem in &listing.problems {
        eprintln!("kiln: warning: skipped a corpus entry: {problem}");
    }
    let mut chosen: BTreeMap<(u32, u32), Chosen> = BTreeMap::new();
    for summary in &listing.traces {
        let stored = match corpus.get(&summary.hash) {
            Ok(stored) => stored,
            Err(e) => {
                eprintln!("kiln: warning: skipped trace {}: {e}", summary.hash);
                continue;
            }
        };
        // Hits per anchor of this app: one trace may be recorded at an anchor by many
        // runs. Only loop anchors get trace code.
        let mut hits: BTreeMap<(u32, u32), u64> = BTreeMap::new();
        for record in &stored.provenance {
            let p = &record.provenance;
            if p.module_hash != app_hash {
                continue;
            }
            if !this_kiln.contains(&record.run) {
                other_kiln += 1;
            } else if p.kind == ir::AnchorKind::Loop {
                *hits.entry((p.func_index, p.anchor_offset)).or_default() += p.hits;
            }
        }
        for (anchor, hits) in hits {
            let better = chosen.get(&anchor).is_none_or(|c| {
                (hits, std::cmp::Reverse(stored.hash)) > (c.hits, std::cmp::Reverse(c.hash))
            });
            if better {
                chosen.insert(
                    anchor,
                    Chosen {
                        hash: stored.hash,
                        trace: stored.trace.clone(),
                        hits,
                        offset: anchor.1,
                    },
                );
            }
        }
    }
    Ok(Found { chosen, other_kiln })
}

/// What [`traces_of`] found.
struct Found {
    /// The trace to ship at each anchor.
    chosen: BTreeMap<(u32, u32), Chosen>,
    /// Recordings of the app left out because another kiln version made them.
    other_kiln: usize,
}

/// Writes `bytes` to `path` whole or not at all: into a temporary file beside it, synced,
/// then renamed over `path` (a rename within a directory is atomic), so a crash or an
/// error leaves either the old file or the new one, never part of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| anyhow!("{}: not a file name", path.display()))?;
    let temp = dir.join(format!(
        ".{}.tmp{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| -> std::io::Result<()> {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(anyhow!("{}: cannot write: {e}", path.display()));
    }
    // The rename is durable once the directory is; not every platform can sync one.
    if let Ok(dir) = File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn inspect(file: &Path) -> anyhow::Result<i32> {
    let name = file.display().to_string();
    let size = std::fs::metadata(file)
        .with_context(|| format!("{name}: cannot read"))?
        .len();
    if size > MAX_CACHE_BYTES as u64 {
        bail!("{name}: {size} bytes, more than a cache may be ({MAX_CACHE_BYTES} bytes)");
    }
    let bytes = std::fs::read(file).with_context(|| format!("{name}: cannot read"))?;
    let library = CacheLibrary::read_for_inspection(&bytes).map_err(|e| anyhow!("{name}: {e}"))?;
    let manifest = library.manifest();
    let mut out = String::new();
    use std::fmt::Write as _;
    let this_kiln = emit::cache::KILN_VERSION;
    let _ = writeln!(out, "cache {name}: {} bytes", bytes.len());
    let _ = writeln!(
        out,
        "format {}, written by kiln {}{}",
        manifest.format_version,
        manifest.kiln_version,
        if manifest.kiln_version == this_kiln {
            String::new()
        } else {
            format!(" (this is kiln {this_kiln}, which will not run it)")
        }
    );
    let _ = writeln!(out, "app module sha256 {}", manifest.app_hash);
    let proven = library
        .traces()
        .iter()
        .filter(|t| t.verdict.is_proven())
        .count();
    let _ = writeln!(
        out,
        "{} traces ({} side traces): {proven} optimized and proven, {} recorded",
        library.traces().len(),
        library.traces().iter().filter(|t| t.side.is_some()).count(),
        library.traces().len() - proven
    );
    for (i, t) in library.traces().iter().enumerate() {
        let verdict = match &t.verdict {
            ProofVerdict::Proven => format!("proven by {}", t.solver),
            ProofVerdict::Unproven { reason } => format!("unproven: {reason}"),
        };
        let kind = match t.emission {
            EmitKind::Naive => "naive",
            EmitKind::Optimized => "optimized",
        };
        let hash = t.content_hash.to_string();
        let place = match &t.side {
            None => format!("anchor {:#x}", t.anchor_offset),
            Some(side) => format!(
                "side at {:#x} pc {}{}{}",
                t.anchor_offset,
                side.pc,
                if side.calls.is_empty() {
                    String::new()
                } else {
                    format!(" in {} calls", side.calls.len())
                },
                side.selector
                    .map_or(String::new(), |s| format!(" arm {}/{}", s.arm, s.arms))
            ),
        };
        let _ = writeln!(
            out,
            "trace{i} func {} {place} trace {} cost {} -> {} {kind} {verdict}",
            t.func_index,
            &hash[..16],
            t.cost_before,
            t.cost_after,
        );
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(0),
    }
}

/// The first line of `text`, at most `MAX_REASON_CHARS` characters: a reason is one line
/// of a listing (and the manifest bounds its texts), while a refutation's counterexample
/// spans many.
fn one_line(text: &str) -> String {
    const MAX_REASON_CHARS: usize = 300;
    let line = text.lines().next().unwrap_or("");
    let mut short: String = line.chars().take(MAX_REASON_CHARS).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    short
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
