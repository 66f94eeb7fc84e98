//! The nightly job's worker processes. `kiln optimize` optimizes no trace itself: each of
//! its threads drives one `kiln optimize-worker` child, so that a solver crash (an abort
//! or a segfault inside libz3, which no `catch_unwind` can stop) kills one worker and one
//! trace, not the job. Processes also keep z3's process-wide locks out of each other's
//! way, which is what lets the job scale with threads.
//!
//! The protocol is lines of text. The parent writes a trace hash; the worker answers
//! `stage saturating`, `stage verifying` as it goes, stores the result in the corpus
//! itself (its own connection, one transaction) and ends with `done <verdict>`. The
//! worker exits when its input ends.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context;
use corpus::{TraceHash, Verdict};

use crate::optimize_cmd::{self, optimizer_version, Stage};

/// The hidden subcommand a worker runs as.
pub const WORKER_COMMAND: &str = "optimize-worker";

/// Fault injection, for tests only: a worker given a trace whose hash starts with this
/// variable's value aborts, as a crash inside the solver would.
pub const FAULT_ABORT_ENV: &str = "KILN_FAULT_ABORT_ON_TRACE";

/// Fault injection, for tests only: a worker given a trace whose hash starts with this
/// variable's value asks for more memory than [`WORKER_ADDRESS_SPACE`], as a runaway
/// e-graph or solver would.
pub const FAULT_RUNAWAY_ENV: &str = "KILN_FAULT_RUNAWAY_ON_TRACE";

/// The address space a worker may use. The largest worker `kiln bench --nightly` sees
/// is about 40 MiB resident; 4 GiB is a hundred times that, room for any trace the
/// per-trace limits let through, while a runaway that gets past them (a solver
/// allocating without bound) fails its allocation and dies, which the job stores as
/// `failed`, instead of taking the machine's memory from everything else on it.
pub const WORKER_ADDRESS_SPACE: u64 = 4 << 30;

#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    #[arg(long, value_name = "DIR")]
    corpus: PathBuf,
    #[arg(long, value_name = "S")]
    budget_per_trace: f64,
}

/// The worker: optimizes the traces named on stdin, one at a time.
pub fn main(args: WorkerArgs) -> anyhow::Result<i32> {
    stop_with_parent();
    bound_memory(WORKER_ADDRESS_SPACE)?;
    let budget = optimize_cmd::parse_budget(args.budget_per_trace)?;
    let version = optimizer_version();
    let mut corpus = corpus::Corpus::open_existing(&args.corpus)
        .with_context(|| format!("corpus {}", args.corpus.display()))?;
    let fault = |name| std::env::var(name).ok().filter(|p: &String| !p.is_empty());
    let (abort_on, runaway_on) = (fault(FAULT_ABORT_ENV), fault(FAULT_RUNAWAY_ENV));
    let say = |line: &str| {
        let mut out = std::io::stdout().lock();
        // A parent that is gone reads nothing; the result is in the corpus either way.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    };
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading the job's request")?;
        let hash: TraceHash = line
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("the job sent `{line}`, not a trace hash"))?;
        if abort_on.as_deref().is_some_and(|p| line.starts_with(p)) {
            std::process::abort();
        }
        if runaway_on.as_deref().is_some_and(|p| line.starts_with(p)) {
            let runaway = vec![0u8; 2 * WORKER_ADDRESS_SPACE as usize];
            std::hint::black_box(&runaway);
        }
        let verdict = optimize_cmd::optimize_and_store(&mut corpus, &hash, &version, |trace| {
            optimize_cmd::optimize_one_with_stages(trace, budget, &|stage| {
                say(&format!("stage {}", stage.name()))
            })
        });
        say(&format!("done {}", verdict.name()));
    }
    Ok(0)
}

/// Asks the kernel to end this worker when the job that started it dies (a kill -9 of
/// the job must not leave workers behind). Linux only; elsewhere workers end when their
/// input does.
fn stop_with_parent() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and changes nothing else.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
    }
}

/// Limits this process's address space to `bytes` (`RLIMIT_AS`).
fn bound_memory(bytes: u64) -> anyhow::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct and changes only this process's limit.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } != 0 {
        return Err(std::io::Error::last_os_error()).context("bounding the worker's memory");
    }
    Ok(())
}

/// Why a worker gave no verdict.
#[derive(Debug)]
pub enum Lost {
    /// The process ended: how, in words.
    Died(String),
    /// No answer within the deadline; the worker was killed.
    TimedOut,
}

/// The job's handle on one worker process.
pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Worker {
    pub fn spawn(corpus: &Path, budget_secs: f64) -> anyhow::Result<Worker> {
        let exe = std::env::current_exe().context("finding the kiln binary")?;
        let mut child = Command::new(exe)
            .arg(WORKER_COMMAND)
            .arg("--corpus")
            .arg(corpus)
            .arg("--budget-per-trace")
            .arg(budget_secs.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting an optimizer process")?;
        let stdin = child.stdin.take().context("the worker's stdin")?;
        let stdout = child.stdout.take().context("the worker's stdout")?;
        // A thread turns the worker's answers into messages, so the job can wait for
        // one with a deadline.
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Worker {
            child,
            stdin,
            lines,
        })
    }

    /// Has the worker optimize and store `hash`; reports each stage to `on_stage`.
    pub fn optimize(
        &mut self,
        hash: &TraceHash,
        deadline: Duration,
        mut on_stage: impl FnMut(Stage),
    ) -> Result<Verdict, Lost> {
        let started = Instant::now();
        if writeln!(self.stdin, "{hash}")
            .and_then(|()| self.stdin.flush())
            .is_err()
        {
            return Err(Lost::Died(self.end()));
        }
        loop {
            let left = deadline.saturating_sub(started.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(stage) = line.strip_prefix("stage ").and_then(Stage::from_name) {
                        on_stage(stage);
                    } else if let Some(verdict) =
                        line.strip_prefix("done ").and_then(Verdict::from_name)
                    {
                        return Ok(verdict);
                    }
                    // Anything else is not the protocol; the deadline still holds.
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(Lost::TimedOut);
                }
                Err(RecvTimeoutError::Disconnected) => return Err(Lost::Died(self.end())),
            }
        }
    }

    /// Waits for a worker whose output ended and says how it ended.
    fn end(&mut self) -> String {
        match self.child.wait() {
            Ok(status) => describe(status),
            Err(e) => format!("the optimizer process was lost: {e}"),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Between traces a worker holds nothing (every result is committed), so it is
        // killed rather than asked to stop.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a worker process ended, in words: `signal 6 (SIGABRT)`.
fn describe(status: ExitStatus) -> String {
    match status.signal() {
        Some(signal) => {
            let name = match signal {
                libc::SIGABRT => " (SIGABRT)",
                libc::SIGSEGV => " (SIGSEGV)",
                libc::SIGBUS => " (SIGBUS)",
                libc::SIGILL => " (SIGILL)",
                libc::SIGFPE => " (SIGFPE)",
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGTERM => " (SIGTERM)",
                _ => "",
            };
            format!("the optimizer process died: signal {signal}{name}")
        }
        None => format!("the optimizer process ended early: {status}"),
    }
}
