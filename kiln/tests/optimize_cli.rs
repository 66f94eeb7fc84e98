//! `kiln optimize` end to end through the binary: a first run stores a result for every
//! trace, a rerun finds them all current and does no work, a job killed midway loses
//! nothing and is finished by the next run, a missing corpus is refused.

mod common;

use std::path::{Path, PathBuf};

use common::optimize_summary as summary;
use std::process::{Command, Stdio};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh corpus directory for one test.
fn corpus_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("optimize-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs kiln, checks its exit code, returns stdout and stderr.
fn check(args: &[&str], code: i32) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .current_dir(workspace())
        .stdin(Stdio::null())
        .output()
        .expect("kiln runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "kiln {}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}",
        args.join(" ")
    );
    (stdout, stderr)
}

fn record_sieve(corpus: &Path) -> u64 {
    let dir = corpus.to_str().unwrap();
    let (_, stderr) = check(
        &[
            "record",
            "--corpus",
            dir,
            "--threshold",
            "50",
            "examples/sieve.wasm",
            "1",
        ],
        0,
    );
    // "kiln: recorded N traces of ...": loop and side traces
    stderr
        .split_whitespace()
        .skip_while(|w| *w != "recorded")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no trace count in:\n{stderr}"))
}

#[test]
fn optimize_stores_every_result_and_a_rerun_skips_them_all() {
    let corpus = corpus_dir("rerun");
    let recorded = record_sieve(&corpus);
    assert!(recorded > 0, "sieve records traces");
    let dir = corpus.to_str().unwrap();

    let (stdout, _) = check(&["optimize", "--corpus", dir, "--jobs", "2"], 0);
    let first = summary(&stdout);
    assert_eq!(first.traces, recorded);
    assert_eq!(first.skipped, 0);
    assert_eq!(
        first.refuted, 0,
        "a refuted candidate is an optimizer bug: {stdout}"
    );
    assert_eq!(first.failed, 0, "{stdout}");
    assert_eq!(
        first.proven + first.unknown,
        recorded,
        "every trace gets a verdict: {stdout}"
    );
    assert!(first.proven > 0, "{stdout}");

    let (stdout, _) = check(&["optimize", "--corpus", dir], 0);
    let again = summary(&stdout);
    assert_eq!(again.traces, recorded);
    assert_eq!(again.skipped, recorded, "{stdout}");
    assert_eq!(
        (again.proven, again.refuted, again.unknown, again.failed),
        (0, 0, 0, 0),
        "a rerun on an unchanged corpus optimizes nothing: {stdout}"
    );
    // No saturation and no solver: only opening the corpus and one query.
    assert!(again.seconds < 1.0, "{stdout}");
}

#[test]
fn a_missing_corpus_is_a_clear_error() {
    let corpus = corpus_dir("missing");
    let (stdout, stderr) = check(&["optimize", "--corpus", corpus.to_str().unwrap()], 2);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("no corpus here"), "{stderr}");
    assert!(!corpus.exists(), "optimize must not create a corpus");
}

#[test]
fn bad_flags_are_refused() {
    let corpus = corpus_dir("flags");
    let dir = corpus.to_str().unwrap();
    let (_, stderr) = check(&["optimize", "--corpus", dir, "--jobs", "0"], 2);
    assert!(stderr.contains("--jobs"), "{stderr}");
    let (_, stderr) = check(&["optimize", "--corpus", dir, "--budget-per-trace", "0"], 2);
    assert!(stderr.contains("--budget-per-trace"), "{stderr}");
}

#[test]
fn a_kill_mid_job_loses_nothing_and_the_rerun_finishes() {
    let corpus = corpus_dir("kill");
    let dir = corpus.to_str().unwrap();
    for example in ["examples/lz77.wasm", "examples/hashtable.wasm"] {
        check(
            &["record", "--corpus", dir, "--threshold", "50", example, "1"],
            0,
        );
    }
    let mut job = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["optimize", "--corpus", dir, "--jobs", "1"])
        .current_dir(workspace())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kiln runs");
    // Somewhere in the middle of the job (it takes about half a second in a debug build);
    // wherever it lands, nothing committed may be lost.
    std::thread::sleep(std::time::Duration::from_millis(150));
    job.kill().expect("SIGKILL");
    job.wait().unwrap();

    let (stdout, _) = check(&["optimize", "--corpus", dir], 0);
    let rerun = summary(&stdout);
    assert_eq!(rerun.failed, 0, "{stdout}");
    assert_eq!(
        rerun.proven + rerun.refuted + rerun.unknown + rerun.skipped,
        rerun.traces
    );
    let (last, _) = check(&["optimize", "--corpus", dir], 0);
    let last = summary(&last);
    assert_eq!(last.traces, rerun.traces);
    assert_eq!(last.skipped, last.traces, "the rerun finished the job");
}

/// The hash prefix of the corpus's hottest trace, from `kiln corpus ls`.
fn hottest_trace(dir: &str) -> String {
    let (stdout, _) = check(&["corpus", "--corpus", dir, "ls", "--limit", "1"], 0);
    stdout
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no trace listed in:\n{stdout}"))
        .to_string()
}

#[test]
fn a_crashing_optimizer_process_fails_one_trace_and_the_job_goes_on() {
    let corpus = corpus_dir("crash");
    let recorded = record_sieve(&corpus);
    let dir = corpus.to_str().unwrap();
    let victim = hottest_trace(dir);
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["optimize", "--corpus", dir, "--jobs", "2"])
        .env("KILN_FAULT_ABORT_ON_TRACE", &victim)
        .current_dir(workspace())
        .stdin(Stdio::null())
        .output()
        .expect("kiln runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let job = summary(&stdout);
    assert_eq!(job.failed, 1, "exactly the crashed trace fails: {stdout}");
    assert_eq!(
        job.proven + job.unknown + job.refuted,
        recorded - 1,
        "{stdout}"
    );

    // The failure says how the process died, for the report and the next morning.
    let out = corpus.join("report");
    check(&["report", "--corpus", dir, "-o", out.to_str().unwrap()], 0);
    let json = std::fs::read_to_string(out.join("report.json")).unwrap();
    let line = json
        .lines()
        .find(|l| l.contains(&format!("\"hash\": \"{victim}")))
        .unwrap_or_else(|| panic!("{victim} not in report.json"));
    assert!(line.contains("\"verdict\": \"failed\""), "{line}");
    assert!(
        line.contains("the optimizer process died: signal 6 (SIGABRT)"),
        "{line}"
    );
}

#[test]
fn a_runaway_worker_hits_its_memory_bound_and_fails_one_trace() {
    let corpus = corpus_dir("runaway");
    let recorded = record_sieve(&corpus);
    let dir = corpus.to_str().unwrap();
    let victim = hottest_trace(dir);
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["optimize", "--corpus", dir, "--jobs", "1"])
        .env("KILN_FAULT_RUNAWAY_ON_TRACE", &victim)
        .current_dir(workspace())
        .stdin(Stdio::null())
        .output()
        .expect("kiln runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let job = summary(&stdout);
    assert_eq!(job.failed, 1, "the runaway's allocation fails: {stdout}");
    assert_eq!(
        job.proven + job.unknown + job.refuted,
        recorded - 1,
        "{stdout}"
    );
}

#[test]
fn bad_shards_are_refused() {
    let corpus = corpus_dir("shards");
    let dir = corpus.to_str().unwrap();
    for shard in ["3/3", "0/0", "1", "a/b", "2/x"] {
        let (_, stderr) = check(&["optimize", "--corpus", dir, "--shard", shard], 2);
        assert!(stderr.contains("is not a shard"), "{shard}: {stderr}");
    }
}

#[test]
/// The corpus holds the modules it recorded from, so the job needs nothing else.
fn emit_builds_a_cache_for_every_app_after_the_job() {
    let corpus = corpus_dir("emit");
    let dir = corpus.to_str().unwrap();
    for example in ["examples/sieve.wasm", "examples/crc32.wasm"] {
        check(&["record", "--corpus", dir, example, "1"], 0);
    }
    let out = corpus.join("caches");
    let (_, stderr) = check(
        &[
            "optimize",
            "--corpus",
            dir,
            "--emit",
            out.to_str().unwrap(),
            "--apps",
            "examples",
        ],
        0,
    );
    for app in ["sieve", "crc32"] {
        let cache = out.join(format!("{app}.kcache"));
        assert!(cache.is_file(), "{app}'s cache: {stderr}");
        let (stdout, _) = check(&["cache", "inspect", cache.to_str().unwrap()], 0);
        assert!(stdout.contains(" traces ("), "{stdout}");
    }
    assert!(
        stderr.contains(" 0 optimized now"),
        "the caches use the job's results: {stderr}"
    );
    let (_, stderr) = check(
        &[
            "optimize", "--corpus", dir, "--emit", "x", "--apps", "examples", "--shard", "0/2",
        ],
        2,
    );
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    let (_, stderr) = check(&["optimize", "--corpus", dir, "--apps", "examples"], 2);
    assert!(stderr.contains("--emit"), "{stderr}");
}
