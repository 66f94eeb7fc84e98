//! The nightly job split across machines: three `kiln optimize --shard I/3` processes on
//! copies of one corpus, joined by `kiln merge`, give the same results and the same cache
//! bytes as one unsharded run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{check, workspace};

const SHARDS: usize = 3;

/// Copies a corpus directory's files (the database and its journal).
fn copy_corpus(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Every result of the corpus by `version`, by trace, without the stage times (which
/// differ from run to run).
fn results(
    dir: &Path,
    version: &str,
) -> Vec<(String, String, String, Option<ir::Trace>, u64, u64)> {
    let corpus = corpus::Corpus::open_existing(dir).unwrap();
    let mut out = Vec::new();
    for summary in corpus.list().unwrap().traces {
        let r = corpus
            .result(&summary.hash, version)
            .unwrap()
            .unwrap_or_else(|| panic!("{}: no result for {}", dir.display(), summary.hash))
            .result;
        out.push((
            summary.hash.to_string(),
            r.verdict.name().to_string(),
            r.reason,
            r.candidate,
            r.cost_before,
            r.cost_after,
        ));
    }
    out
}

/// The optimizer version the store's results are under, from the report.
fn optimizer_version(corpus: &str, out: &Path) -> String {
    check(
        &["report", "--corpus", corpus, "-o", out.to_str().unwrap()],
        0,
        &[],
        &[],
    );
    let json = std::fs::read_to_string(out.join("report.json")).unwrap();
    let line = json
        .lines()
        .find_map(|l| l.trim().strip_prefix("\"optimizer_version\": \""))
        .expect("report.json names its optimizer version");
    line.trim_end_matches(',').trim_end_matches('"').to_string()
}

#[test]
fn three_shards_merged_equal_one_run() {
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shards");
    let _ = std::fs::remove_dir_all(&work);
    let base = work.join("base");
    let app = "examples/sieve.wasm";
    check(
        &[
            "record",
            "--corpus",
            base.to_str().unwrap(),
            "--threshold",
            "50",
            app,
            "1",
        ],
        0,
        &[],
        &[],
    );

    let single = work.join("single");
    copy_corpus(&base, &single);
    check(
        &["optimize", "--corpus", single.to_str().unwrap()],
        0,
        &[],
        &[],
    );

    // The shards run at once, as separate processes, each on its own copy.
    let shards: Vec<PathBuf> = (0..SHARDS)
        .map(|i| work.join(format!("shard{i}")))
        .collect();
    let jobs: Vec<_> = shards
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            copy_corpus(&base, dir);
            Command::new(env!("CARGO_BIN_EXE_kiln"))
                .args(["optimize", "--corpus", dir.to_str().unwrap(), "--jobs", "1"])
                .args(["--shard", &format!("{i}/{SHARDS}")])
                .current_dir(workspace())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .expect("kiln runs")
        })
        .collect();
    let mut taken = 0;
    for job in jobs {
        let output = job.wait_with_output().unwrap();
        assert!(output.status.success());
        let stdout = String::from_utf8_lossy(&output.stdout);
        // "optimize: shard I/N: K of the M traces without a current result"
        let share: usize = stdout
            .split_whitespace()
            .skip_while(|w| !w.ends_with(':') || !w.contains('/'))
            .nth(1)
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no share in:\n{stdout}"));
        let summary = common::optimize_summary(&stdout);
        assert_eq!(
            summary.traces as usize, share,
            "the summary counts the shard's traces"
        );
        assert_eq!(summary.skipped, 0, "{stdout}");
        taken += share;
    }

    let merged = work.join("merged");
    copy_corpus(&base, &merged);
    let merged_arg = merged.to_str().unwrap();
    let mut args = vec!["merge", "--into", merged_arg];
    args.extend(shards.iter().map(|s| s.to_str().unwrap()));
    check(&args, 0, &["merge: ", "results added"], &[]);
    // Merging again changes nothing.
    check(
        &args,
        0,
        &["0 results added, 0 undecided ones decided"],
        &[],
    );

    let version = optimizer_version(single.to_str().unwrap(), &work.join("report"));
    let one_run = results(&single, &version);
    assert_eq!(
        taken,
        one_run.len(),
        "the shards split the traces without overlap"
    );
    assert_eq!(
        results(&merged, &version),
        one_run,
        "merged results equal one run's"
    );

    let cache = |corpus: &Path, name: &str| {
        let out = work.join(name);
        check(
            &[
                "cache",
                "build",
                "--corpus",
                corpus.to_str().unwrap(),
                "--app",
                app,
                "-o",
                out.to_str().unwrap(),
            ],
            0,
            &[],
            &[" 0 optimized now"],
        );
        std::fs::read(out).unwrap()
    };
    assert!(
        cache(&merged, "merged.kcache") == cache(&single, "single.kcache"),
        "the merged store builds the same cache bytes as one run"
    );
}

#[test]
fn merging_a_shard_of_another_corpus_changes_nothing() {
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shards-foreign");
    let _ = std::fs::remove_dir_all(&work);
    let (ours, theirs) = (work.join("ours"), work.join("theirs"));
    for (dir, app) in [
        (&ours, "examples/sieve.wasm"),
        (&theirs, "examples/crc32.wasm"),
    ] {
        let d = dir.to_str().unwrap();
        check(&["record", "--corpus", d, app, "1"], 0, &[], &[]);
    }
    check(
        &["optimize", "--corpus", theirs.to_str().unwrap()],
        0,
        &[],
        &[],
    );
    let into = ours.to_str().unwrap();
    check(
        &["merge", "--into", into, theirs.to_str().unwrap()],
        2,
        &[],
        &["kiln: error: shard ", "no trace "],
    );
    check(
        &[
            "merge",
            "--into",
            into,
            work.join("missing").to_str().unwrap(),
        ],
        2,
        &[],
        &["no corpus here"],
    );
    // Nothing merged: optimizing ours still has every trace to do.
    check(&["optimize", "--corpus", into], 0, &[" 0 skipped"], &[]);
}
