//! `kiln record` and `kiln corpus`, end to end through the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh corpus directory for one test.
fn corpus_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("corpus-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn kiln(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.args(args).current_dir(workspace()).stdin(Stdio::null());
    cmd
}

/// Runs kiln, checks its exit code, returns stdout and stderr.
fn check(args: &[&str], code: i32) -> (String, String) {
    let output = kiln(args).output().expect("kiln runs");
    expect_exit(args, &output, code)
}

fn expect_exit(args: &[&str], output: &Output, code: i32) -> (String, String) {
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

/// `kiln corpus stats` as (name, number) pairs.
fn stats(corpus: &Path) -> Vec<(String, u64)> {
    let (out, _) = check(
        &["corpus", "--corpus", corpus.to_str().unwrap(), "stats"],
        0,
    );
    out.lines()
        .map(|l| {
            let mut words = l.split_whitespace();
            let value = l.split_whitespace().rev().find_map(|w| w.parse().ok());
            let name: Vec<&str> = words
                .by_ref()
                .take_while(|w| w.parse::<u64>().is_err())
                .collect();
            (name.join(" "), value.unwrap_or(0))
        })
        .collect()
}

fn stat(corpus: &Path, name: &str) -> u64 {
    stats(corpus)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no `{name}` in corpus stats"))
        .1
}

#[test]
fn recording_twice_stores_each_trace_once_and_adds_hits() {
    let dir = corpus_dir("twice");
    let d = dir.to_str().unwrap();
    let (out, err) = check(&["record", "--corpus", d, "examples/crc32.wasm", "1"], 0);
    let expected =
        std::fs::read_to_string(workspace().join("examples/expected/crc32.1.out")).unwrap();
    assert_eq!(
        out, expected,
        "recording must not change what the program prints"
    );
    assert!(err.contains("new in"), "{err}");
    let traces = stat(&dir, "traces");
    let hits = stat(&dir, "total hits");
    assert!(traces > 0, "crc32 has hot loops");

    let (_, err) = check(&["record", "--corpus", d, "examples/crc32.wasm", "1"], 0);
    assert!(
        err.contains(&format!("0 new in {d}, {traces} already there")),
        "{err}"
    );
    assert_eq!(stat(&dir, "traces"), traces);
    assert_eq!(stat(&dir, "runs"), 2);
    assert_eq!(stat(&dir, "total hits"), 2 * hits);

    // Every trace shows its text form and both runs.
    let (listing, _) = check(&["corpus", "--corpus", d, "ls"], 0);
    let ids: Vec<&str> = listing
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids.len() as u64, traces);
    for id in ids {
        let (text, _) = check(&["corpus", "--corpus", d, "show", id], 0);
        assert!(text.starts_with("trace func="), "{text}");
        assert_eq!(text.matches(";; recorded by run").count(), 2, "{text}");
        let trace = ir::text::parse(&text).expect("show prints a trace that parses back");
        assert_eq!(ir::hash::content_hash(&trace).to_string()[..16], *id);
    }
}

#[test]
fn four_recorders_at_once_lose_nothing() {
    let dir = corpus_dir("four");
    let d = dir.to_str().unwrap().to_string();
    let args = ["record", "--corpus", &d, "examples/sort.wasm", "1"];
    let children: Vec<_> = (0..4)
        .map(|_| {
            kiln(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("recorder finishes");
        expect_exit(&args, &output, 0);
    }
    // One more run, alone, tells how much a single run adds.
    let single = corpus_dir("four-single");
    check(
        &[
            "record",
            "--corpus",
            single.to_str().unwrap(),
            "examples/sort.wasm",
            "1",
        ],
        0,
    );
    assert_eq!(stat(&dir, "runs"), 4);
    assert_eq!(stat(&dir, "traces"), stat(&single, "traces"));
    assert_eq!(stat(&dir, "total hits"), 4 * stat(&single, "total hits"));
    assert_eq!(stat(&dir, "provenance"), 4 * stat(&single, "provenance"));
    // The live JIT's side traces come along, the same ones every run (its decisions
    // depend on counts only while recording).
    assert!(stat(&single, "side places") > 0);
    assert_eq!(stat(&dir, "side places"), 4 * stat(&single, "side places"));
    check(&["corpus", "--corpus", &d, "verify"], 0);
}

#[test]
fn corpus_commands_refuse_what_is_not_a_corpus() {
    let dir = corpus_dir("missing");
    let (_, err) = check(&["corpus", "--corpus", dir.to_str().unwrap(), "stats"], 2);
    assert!(err.contains(dir.to_str().unwrap()), "{err}");
    assert!(!dir.exists(), "looking must not create a corpus");

    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(corpus::INDEX_FILE), b"this is not a database").unwrap();
    let (_, err) = check(&["corpus", "--corpus", dir.to_str().unwrap(), "ls"], 2);
    assert!(err.contains("corpus"), "{err}");
    let (_, err) = check(
        &[
            "record",
            "--corpus",
            dir.to_str().unwrap(),
            "examples/crc32.wasm",
            "1",
        ],
        2,
    );
    assert!(err.contains("corpus"), "{err}");
}

#[test]
fn record_without_a_corpus_is_a_usage_error() {
    let (_, err) = check(&["record", "examples/crc32.wasm", "1"], 2);
    assert!(err.contains("--corpus"), "{err}");
}

#[test]
fn show_needs_a_known_unique_id() {
    let dir = corpus_dir("show");
    let d = dir.to_str().unwrap();
    check(&["record", "--corpus", d, "examples/crc32.wasm", "1"], 0);
    let (_, err) = check(
        &["corpus", "--corpus", d, "show", "ffffffffffffffffffff"],
        2,
    );
    assert!(!err.is_empty());
    let (_, err) = check(&["corpus", "--corpus", d, "show", "zz"], 2);
    assert!(!err.is_empty());
}
