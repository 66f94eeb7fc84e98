//! `kiln bench --nightly`: the nightly job's own figures (issue 6): traces optimized per
//! second on one and on two threads, a rerun on the unchanged corpus against the first
//! run, and the job's peak memory.
//!
//! The job is measured as users run it: `kiln optimize` as a child process of this one,
//! on a corpus the programs were recorded into by `kiln record` children. Each
//! measurement starts from its own copy of that corpus (no results yet), the thread
//! counts take turns run by run so a burst of load from elsewhere hits both alike, and
//! the tables show medians. Peak memory is the largest resident set of any process of
//! the job (the job and the optimizer processes it starts), from `wait4`'s accounting,
//! which covers descendants the job waited for.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use corpus::Corpus;

use super::Secs;
use crate::optimize_cmd::optimizer_version;

/// Issue 6's bar: two threads optimize at least this many times as many traces per
/// second as one.
const TWO_THREAD_SPEEDUP_BAR: f64 = 1.7;

/// Issue 6's bar: a rerun on the unchanged corpus takes at most this share of the first
/// run's time.
const RERUN_SHARE_BAR: f64 = 0.05;

/// The thread counts compared: the bar is about one against two.
const THREADS: [usize; 2] = [1, 2];

/// One `kiln optimize` run as the parent saw it.
struct JobRun {
    wall: Duration,
    /// The largest resident set of any process of the job, KiB.
    peak_rss_kib: u64,
}

pub fn main(
    programs: &[(String, PathBuf)],
    scale: Option<u32>,
    runs: usize,
) -> anyhow::Result<i32> {
    let kiln = std::env::current_exe().context("finding the kiln binary")?;
    let work = std::env::temp_dir().join(format!("kiln-bench-nightly-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(work.clone());
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let base = work.join("recorded");
    for (name, path) in programs {
        let mut record = Command::new(&kiln);
        record.arg("record").arg("--corpus").arg(&base).arg(path);
        record.args(scale.iter().map(u32::to_string));
        let status = record
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("recording {name}"))?;
        if !status.success() {
            bail!("recording {name} failed: {status}");
        }
    }
    let version = optimizer_version();
    let traces = Corpus::open_existing(&base)
        .and_then(|c| c.traces_without_result(&version))
        .with_context(|| format!("corpus {}", base.display()))?
        .len();
    if traces == 0 {
        bail!("the programs recorded no traces: nothing for the job to do");
    }
    eprintln!(
        "bench: {traces} traces from {} programs; {runs} runs per thread count",
        programs.len()
    );

    let mut first: Vec<Vec<JobRun>> = THREADS.iter().map(|_| Vec::new()).collect();
    let mut reruns = Vec::new();
    for run in 0..runs {
        for (i, &threads) in THREADS.iter().enumerate() {
            let copy = work.join(format!("run{run}-threads{threads}"));
            copy_corpus(&base, &copy)?;
            let job = optimize(&kiln, &copy, threads)?;
            check_all_done(&copy, &version, traces)?;
            eprintln!(
                "bench: run {run}, {threads} thread(s): {} ({:.1} traces/s)",
                Secs(job.wall),
                traces as f64 / job.wall.as_secs_f64()
            );
            first[i].push(job);
            if threads == *THREADS.last().unwrap() {
                let rerun = optimize(&kiln, &copy, threads)?;
                eprintln!("bench: run {run}, rerun: {}", Secs(rerun.wall));
                reruns.push(rerun);
            }
            std::fs::remove_dir_all(&copy).ok();
        }
    }
    print!("{}", report(traces, &first, &reruns));
    Ok(0)
}

/// Runs `kiln optimize` on `corpus` with `threads` workers and waits for it with `wait4`,
/// which gives the peak memory of the job's processes.
fn optimize(kiln: &Path, corpus: &Path, threads: usize) -> anyhow::Result<JobRun> {
    let started = Instant::now();
    let child = Command::new(kiln)
        .arg("optimize")
        .arg("--corpus")
        .arg(corpus)
        .arg("--jobs")
        .arg(threads.to_string())
        .stdout(Stdio::null())
        .spawn()
        .context("starting kiln optimize")?;
    let (status, peak_rss_kib) = wait_with_peak_rss(child.id())?;
    let wall = started.elapsed();
    if status != 0 {
        bail!("kiln optimize --jobs {threads} failed: wait status {status:#x}");
    }
    Ok(JobRun { wall, peak_rss_kib })
}

/// Waits for the child `pid`; returns its wait status and the largest resident set of
/// it and the descendants it waited for (`ru_maxrss`, KiB on Linux). `std`'s `wait`
/// does not return the resource usage, hence `wait4` itself.
fn wait_with_peak_rss(pid: u32) -> anyhow::Result<(i32, u64)> {
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value, and `wait4` only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own unwaited child; both pointers are to live locals.
        let waited = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if waited == pid as libc::pid_t {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("waiting for kiln optimize");
        }
    }
    let exit = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        status
    };
    Ok((exit, usage.ru_maxrss.max(0) as u64))
}

/// Every one of the `traces` has a result by the current optimizer: the job did all of
/// its work, so its time is the time of the whole job.
fn check_all_done(corpus: &Path, version: &str, traces: usize) -> anyhow::Result<()> {
    let corpus = Corpus::open_existing(corpus)?;
    let done = corpus.count_results(version)? as usize;
    if done != traces {
        bail!(
            "kiln optimize left {} of {traces} traces without a result",
            traces - done
        );
    }
    Ok(())
}

/// Copies a corpus directory (the database and any journal beside it) to `to`.
fn copy_corpus(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn report(traces: usize, first: &[Vec<JobRun>], reruns: &[JobRun]) -> String {
    let mut out = String::new();
    let walls: Vec<Duration> = first
        .iter()
        .map(|runs| median(runs.iter().map(|r| r.wall).collect()))
        .collect();
    let rate = |wall: Duration| traces as f64 / wall.as_secs_f64();
    let _ = writeln!(
        out,
        "| threads | job time (median) | traces/s | peak memory (largest process) |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    for (i, &threads) in THREADS.iter().enumerate() {
        let peak = first[i].iter().map(|r| r.peak_rss_kib).max().unwrap_or(0);
        let _ = writeln!(
            out,
            "| {threads} | {} | {:.1} | {:.1} MiB |",
            Secs(walls[i]),
            rate(walls[i]),
            peak as f64 / 1024.0
        );
    }
    let rerun = median(reruns.iter().map(|r| r.wall).collect());
    let slowest_threads = *THREADS.last().unwrap();
    let _ = writeln!(
        out,
        "| {slowest_threads}, rerun on the unchanged corpus | {} | — | {:.1} MiB |",
        Secs(rerun),
        reruns.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0
    );
    let speedup = walls[0].as_secs_f64() / walls[1].as_secs_f64();
    let share = rerun.as_secs_f64() / walls[1].as_secs_f64();
    let verdict = |pass: bool| if pass { "PASS" } else { "FAIL" };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{traces} traces. Two threads against one: {speedup:.2}x the traces per second (bar: at \
         least {TWO_THREAD_SPEEDUP_BAR}x: {}; this machine has {cpus} CPUs). Rerun: {:.1}% of \
         the first run's time (bar: at most {:.0}%: {}).",
        verdict(speedup >= TWO_THREAD_SPEEDUP_BAR),
        share * 100.0,
        RERUN_SHARE_BAR * 100.0,
        verdict(share <= RERUN_SHARE_BAR),
    );
    out
}

/// Removes the bench's scratch directory however the bench ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
