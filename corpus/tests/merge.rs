//! Merging shards' results (`Corpus::merge_results`): new results added, an undecided
//! result replaced by a decisive one, the target's kept otherwise, and a conflict or a
//! result for a trace the target lacks refused with nothing merged.

mod common;

use std::time::Duration;

use common::{batch, hash, module_hash};
use corpus::{Corpus, CorpusError, MergeSummary, OptimizationResult, Verdict};

/// A corpus holding traces `0..n` of one app (a shard is a copy of the same corpus).
fn corpus_of(n: u32) -> (tempfile::TempDir, Corpus) {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(dir.path()).unwrap();
    let run = corpus
        .begin_run("app", &module_hash("app"), &["a"])
        .unwrap();
    corpus.add_traces(run, &batch("app", 0..n, |_| 1)).unwrap();
    (dir, corpus)
}

fn result(verdict: Verdict, reason: &str) -> OptimizationResult {
    OptimizationResult {
        verdict,
        reason: reason.to_string(),
        candidate: None,
        cost_before: 10,
        cost_after: 10,
        saturation_time: Duration::from_micros(100),
        verification_time: Duration::ZERO,
    }
}

fn verdict_of(corpus: &Corpus, i: u32) -> Option<Verdict> {
    corpus
        .result(&hash(i), "v")
        .unwrap()
        .map(|r| r.result.verdict)
}

/// Merges `theirs` (results of traces by index) into `ours` and checks the summary and
/// the verdicts after.
fn check(
    ours: &[(u32, Verdict)],
    theirs: &[(u32, Verdict)],
    expected: Result<MergeSummary, &str>,
    after: &[(u32, Option<Verdict>)],
) {
    let (_a, mut target) = corpus_of(4);
    let (_b, mut shard) = corpus_of(4);
    for &(i, v) in ours {
        target
            .put_result(&hash(i), "v", &result(v, "ours"))
            .unwrap();
    }
    for &(i, v) in theirs {
        shard
            .put_result(&hash(i), "v", &result(v, "theirs"))
            .unwrap();
    }
    match (target.merge_results(&shard), expected) {
        (Ok(summary), Ok(expected)) => assert_eq!(summary, expected),
        (Err(e), Err(message)) => assert!(e.to_string().contains(message), "{e}"),
        (got, expected) => panic!("merge gave {got:?}, expected {expected:?}"),
    }
    for &(i, v) in after {
        assert_eq!(verdict_of(&target, i), v, "trace {i} after the merge");
    }
}

#[test]
fn new_results_are_added_and_equal_ones_kept() {
    use Verdict::*;
    check(
        &[(0, Proven)],
        &[(0, Proven), (1, Refuted), (2, Unknown)],
        Ok(MergeSummary {
            added: 2,
            decided: 0,
            kept: 1,
        }),
        &[
            (0, Some(Proven)),
            (1, Some(Refuted)),
            (2, Some(Unknown)),
            (3, None),
        ],
    );
}

#[test]
fn a_decisive_verdict_replaces_an_undecided_one_and_never_the_reverse() {
    use Verdict::*;
    check(
        &[(0, Unknown), (1, Failed), (2, Proven)],
        &[(0, Proven), (1, Refuted), (2, Unknown)],
        Ok(MergeSummary {
            added: 0,
            decided: 2,
            kept: 1,
        }),
        &[(0, Some(Proven)), (1, Some(Refuted)), (2, Some(Proven))],
    );
}

#[test]
fn opposite_decisive_verdicts_merge_nothing() {
    use Verdict::*;
    check(
        &[(0, Proven)],
        &[(1, Proven), (0, Refuted)],
        Err("is proven here and refuted in the shard"),
        &[(0, Some(Proven)), (1, None)],
    );
}

#[test]
fn a_result_for_a_trace_the_target_lacks_merges_nothing() {
    let (_a, mut target) = corpus_of(2);
    let (_b, mut shard) = corpus_of(4);
    shard
        .put_result(&hash(0), "v", &result(Verdict::Proven, ""))
        .unwrap();
    shard
        .put_result(&hash(3), "v", &result(Verdict::Proven, ""))
        .unwrap();
    let err = target.merge_results(&shard).unwrap_err();
    assert!(matches!(err, CorpusError::NotFound(_)), "{err}");
    assert_eq!(verdict_of(&target, 0), None, "nothing merged");
}
