//! Several processes on one corpus: concurrent writers lose nothing, and a writer killed
//! mid-write leaves a valid corpus holding only whole batches.
//!
//! The child processes are this test binary itself, started with the `child` test
//! selected and `KILN_CORPUS_CHILD` saying what to do.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{batch, hash, module_hash};
use corpus::Corpus;

const ROLE: &str = "KILN_CORPUS_CHILD";

/// Writers in the concurrency test, their runs each, and the traces of one run: writer
/// `i` records `trace(n)` for `n` in `10 i .. 10 i + TRACES_PER_RUN`, so neighbours
/// overlap by 20 traces.
const WRITERS: u32 = 4;
const RUNS_PER_WRITER: u32 = 5;
const TRACES_PER_RUN: u32 = 30;
/// Each run adds its traces in this many `add_traces` calls.
const BATCHES_PER_RUN: u32 = 3;
/// How long a writer works between two `add_traces` calls.
const WORK: Duration = Duration::from_millis(2);

/// Traces per run of the killed writer: enough that one `add_traces` takes about ten
/// milliseconds, a window the kill can aim at.
const LOOP_BATCH: u32 = 1000;

fn spawn_child(role: String) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(ROLE, role)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The other end of [`spawn_child`]: does what `KILN_CORPUS_CHILD` says.
#[test]
#[ignore = "a child process of the multi-process tests, which run it"]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let parts: Vec<&str> = role.split('|').collect();
    match parts.as_slice() {
        ["writer", dir, index, go] => writer(Path::new(dir), index.parse().unwrap(), Path::new(go)),
        ["looper", dir, round] => looper(Path::new(dir), round.parse().unwrap()),
        _ => panic!("unknown role {role}"),
    }
}

fn now_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

fn app_of(writer: u32) -> &'static str {
    ["crc32", "sha"][writer as usize % 2]
}

fn hits_of(n: u32) -> u64 {
    1 + n as u64
}

fn writer(dir: &Path, index: u32, go: &Path) {
    // Start together, so that the corpus is also created concurrently.
    println!("ready");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !go.exists() {
        assert!(Instant::now() < deadline, "never told to go");
        std::thread::sleep(Duration::from_millis(1));
    }
    let start = now_micros();
    let mut corpus = Corpus::open(dir).unwrap();
    let app = app_of(index);
    let first = 10 * index;
    for r in 0..RUNS_PER_WRITER {
        let run = corpus
            .begin_run(
                app,
                &module_hash(app),
                &[format!("writer {index}"), format!("run {r}")],
            )
            .unwrap();
        let per_batch = TRACES_PER_RUN / BATCHES_PER_RUN;
        for b in 0..BATCHES_PER_RUN {
            let start = first + b * per_batch;
            corpus
                .add_traces(run, &batch(app, start..start + per_batch, hits_of))
                .unwrap();
            // A recorder works between its writes; without a pause, the writer holding
            // the lock takes it again before the others' busy handlers look, and the
            // writers end up taking turns run by run.
            std::thread::sleep(WORK);
        }
        corpus.finish_run(run).unwrap();
    }
    println!("busy retries: {}", corpus.busy_retries());
    println!("span {start} {}", now_micros());
}

/// Traces of the killed writer's run `r` in round `round`: consecutive runs share half.
fn looper_traces(round: u32, r: u32) -> std::ops::Range<u32> {
    let start = round * 1_000_000 + r * LOOP_BATCH / 2;
    start..start + LOOP_BATCH
}

fn looper(dir: &Path, round: u32) {
    // Bounded, should the parent fail to kill it (it also dies printing to a closed pipe).
    const MAX_RUNS: u32 = 500;
    let mut corpus = Corpus::open(dir).unwrap();
    for r in 0..MAX_RUNS {
        let run = corpus
            .begin_run(
                "looper",
                &module_hash("looper"),
                &[round.to_string(), r.to_string()],
            )
            .unwrap();
        let traces = batch("looper", looper_traces(round, r), |_| 1);
        println!("adding {r}");
        corpus.add_traces(run, &traces).unwrap();
        corpus.finish_run(run).unwrap();
        println!("committed {r}");
    }
}

#[test]
fn four_processes_adding_overlapping_traces_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let corpus_dir = dir.path().join("corpus");
    let go = dir.path().join("go");
    let mut children: Vec<(Child, _)> = (0..WRITERS)
        .map(|i| {
            let mut child = spawn_child(format!(
                "writer|{}|{i}|{}",
                corpus_dir.display(),
                go.display()
            ));
            let lines = BufReader::new(child.stdout.take().unwrap()).lines();
            (child, lines)
        })
        .collect();
    // Go when every writer is up and waiting.
    for (_, lines) in &mut children {
        let ready = lines.find(|line| line.as_ref().is_ok_and(|l| l == "ready"));
        assert!(ready.is_some(), "a writer never got ready");
    }
    std::fs::write(&go, "").unwrap();
    let mut spans = Vec::new();
    for (mut child, lines) in children {
        let stdout: Vec<String> = lines.map(Result::unwrap).collect();
        assert!(
            child.wait().unwrap().success(),
            "a writer failed: {stdout:?}"
        );
        let span = stdout.iter().find_map(|l| l.strip_prefix("span "));
        let span: Vec<u128> = span
            .unwrap_or_else(|| panic!("the writer did not finish: {stdout:?}"))
            .split(' ')
            .map(|t| t.parse().unwrap())
            .collect();
        spans.push((span[0], span[1]));
    }
    // They did write at the same time: there was a moment when all four were at it.
    let last_start = spans.iter().map(|s| s.0).max().unwrap();
    let first_end = spans.iter().map(|s| s.1).min().unwrap();
    assert!(
        last_start < first_end,
        "the writers did not overlap: {spans:?}"
    );

    // What the writers did, worked out here: for each trace, its recordings.
    let mut expected: BTreeMap<u32, Vec<(&str, u64)>> = BTreeMap::new();
    for i in 0..WRITERS {
        for n in 10 * i..10 * i + TRACES_PER_RUN {
            for _ in 0..RUNS_PER_WRITER {
                expected.entry(n).or_default().push((app_of(i), hits_of(n)));
            }
        }
    }

    let corpus = Corpus::open_existing(&corpus_dir).unwrap();
    assert_eq!(corpus.verify().unwrap(), []);
    let stats = corpus.stats().unwrap();
    assert_eq!(stats.traces, expected.len() as u64);
    assert_eq!(stats.runs, (WRITERS * RUNS_PER_WRITER) as u64);
    assert_eq!(stats.unfinished_runs, 0);
    assert_eq!(stats.apps, 2);
    assert_eq!(
        stats.provenance,
        (WRITERS * RUNS_PER_WRITER * TRACES_PER_RUN) as u64
    );
    let total: u64 = expected.values().flatten().map(|(_, hits)| hits).sum();
    assert_eq!(stats.total_hits, total);

    for (&n, recordings) in &expected {
        let stored = corpus.get(&hash(n)).unwrap();
        assert_eq!(stored.trace, common::trace(n));
        assert_eq!(stored.provenance.len(), recordings.len(), "trace {n}");
        assert_eq!(
            stored.total_hits(),
            recordings.iter().map(|(_, h)| h).sum::<u64>(),
            "trace {n}"
        );
        let apps: BTreeSet<&str> = stored.provenance.iter().map(|p| p.app.as_str()).collect();
        let expected_apps: BTreeSet<&str> = recordings.iter().map(|(app, _)| *app).collect();
        assert_eq!(apps, expected_apps, "trace {n}");
    }
    for run in corpus.runs().unwrap() {
        assert_eq!(run.traces, TRACES_PER_RUN as u64, "{run:?}");
        assert!(run.finished.is_some());
    }
}

#[test]
fn a_writer_killed_mid_write_leaves_a_valid_corpus_of_whole_runs() {
    // Kill rounds until two kills landed inside `add_traces`, within reason.
    const MAX_ROUNDS: u32 = 8;
    const WANTED_KILLS_INSIDE_ADD: u32 = 2;
    let dir = tempfile::tempdir().unwrap();
    let corpus_dir = dir.path().join("corpus");
    let (mut rounds, mut inside_add) = (0, 0);
    while rounds < MAX_ROUNDS && inside_add < WANTED_KILLS_INSIDE_ADD {
        let mut child = spawn_child(format!("looper|{}|{rounds}", corpus_dir.display()));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Let it commit a few runs, then kill it while it is inside `add_traces`: a few
        // milliseconds after it says it is adding, in a call that takes about ten.
        let adding = loop {
            let line = lines.next().expect("the child stopped talking").unwrap();
            if let Some(r) = line
                .strip_prefix("adding ")
                .map(|r| r.parse::<u32>().unwrap())
            {
                if r >= 3 {
                    break r;
                }
            }
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        std::thread::sleep(Duration::from_micros((nanos % 6000) as u64));
        child.kill().unwrap(); // SIGKILL
        assert!(!child.wait().unwrap().success());

        // The run it was adding to began (it said so after `begin_run` returned); if its
        // traces are not there, the kill came before `add_traces` committed.
        let corpus = Corpus::open_existing(&corpus_dir).unwrap();
        let runs = corpus.runs().unwrap();
        let that = runs
            .iter()
            .find(|run| run.args == [rounds.to_string(), adding.to_string()])
            .unwrap();
        if that.traces == 0 {
            inside_add += 1;
        }
        rounds += 1;
    }
    assert!(
        inside_add >= 1,
        "no kill landed inside add_traces in {rounds} rounds"
    );

    let corpus = Corpus::open_existing(&corpus_dir).unwrap();
    assert_eq!(corpus.verify().unwrap(), []);

    // Every run has its whole batch or nothing of it; a finished run has its batch.
    let runs = corpus.runs().unwrap();
    let mut stored_traces = BTreeSet::new();
    let mut whole = 0;
    for run in &runs {
        assert!(
            run.traces == 0 || run.traces == LOOP_BATCH as u64,
            "run with part of a batch: {run:?}"
        );
        if run.finished.is_some() {
            assert_eq!(run.traces, LOOP_BATCH as u64, "{run:?}");
        }
        if run.traces > 0 {
            whole += 1;
            let round: u32 = run.args[0].parse().unwrap();
            let r: u32 = run.args[1].parse().unwrap();
            stored_traces.extend(looper_traces(round, r));
        }
    }
    assert!(whole >= 3 * rounds, "only {whole} runs committed");
    // At most one run per kill is left unfinished.
    assert!(runs.iter().filter(|r| r.finished.is_none()).count() <= rounds as usize);

    // Exactly the traces of the committed runs are there, each readable.
    let stats = corpus.stats().unwrap();
    assert!(stats.problems.is_empty(), "{:?}", stats.problems);
    assert_eq!(stats.traces, stored_traces.len() as u64);
    let read: BTreeSet<_> = corpus
        .iter_traces()
        .unwrap()
        .map(|e| e.unwrap().hash.to_string())
        .collect();
    let expected: BTreeSet<_> = stored_traces.iter().map(|&n| hash(n).to_string()).collect();
    assert_eq!(read, expected);
}
