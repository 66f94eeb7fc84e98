//! Optimization results: stored and read back, kept apart per optimizer version, a corrupt
//! candidate reported, and a corpus of schema version 1 migrated.

mod common;

use std::time::Duration;

use common::{batch, hash, module_hash, raw_index, stored_schema_version, trace};
use corpus::{Corpus, CorpusError, OptimizationResult, ProblemKind, Verdict, SCHEMA_VERSION};

/// A corpus holding traces `0..3`.
fn corpus_of_three() -> (tempfile::TempDir, Corpus) {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(dir.path()).unwrap();
    let run = corpus
        .begin_run("app", &module_hash("app"), &["a"])
        .unwrap();
    corpus.add_traces(run, &batch("app", 0..3, |_| 1)).unwrap();
    (dir, corpus)
}

fn proven_with_candidate() -> OptimizationResult {
    OptimizationResult {
        verdict: Verdict::Proven,
        reason: String::new(),
        // Any valid trace other than the recorded one stands in for a candidate.
        candidate: Some(trace(7)),
        cost_before: 40,
        cost_after: 25,
        saturation_time: Duration::from_micros(1500),
        verification_time: Duration::from_micros(32_000),
    }
}

#[test]
fn a_result_round_trips() {
    let (_dir, mut corpus) = corpus_of_three();
    assert!(corpus.result(&hash(0), "v1").unwrap().is_none());
    let result = proven_with_candidate();
    corpus.put_result(&hash(0), "v1", &result).unwrap();
    let stored = corpus.result(&hash(0), "v1").unwrap().unwrap();
    assert_eq!(stored.hash, hash(0));
    assert_eq!(stored.optimizer_version, "v1");
    assert_eq!(stored.result, result);
    assert!(stored.created > 0);

    // A failure without a candidate, stored again under the same key, replaces it.
    let failed = OptimizationResult {
        verdict: Verdict::Failed,
        reason: "panicked: boom".into(),
        candidate: None,
        cost_before: 40,
        cost_after: 40,
        saturation_time: Duration::ZERO,
        verification_time: Duration::ZERO,
    };
    corpus.put_result(&hash(0), "v1", &failed).unwrap();
    assert_eq!(
        corpus.result(&hash(0), "v1").unwrap().unwrap().result,
        failed
    );
}

#[test]
fn versions_keep_results_apart() {
    let (_dir, mut corpus) = corpus_of_three();
    let all: Vec<_> = (0..3)
        .map(hash)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(corpus.traces_without_result("v1").unwrap(), all);

    corpus
        .put_result(&hash(1), "v1", &proven_with_candidate())
        .unwrap();
    let without_v1 = corpus.traces_without_result("v1").unwrap();
    assert_eq!(without_v1.len(), 2);
    assert!(!without_v1.contains(&hash(1)));
    assert_eq!(corpus.count_results("v1").unwrap(), 1);
    assert_eq!(corpus.count_results("v2").unwrap(), 0);
    // Another optimizer version has seen nothing.
    assert_eq!(corpus.traces_without_result("v2").unwrap(), all);
    assert!(corpus.result(&hash(1), "v2").unwrap().is_none());
}

#[test]
fn a_result_for_an_unknown_trace_is_refused() {
    let (_dir, mut corpus) = corpus_of_three();
    let err = corpus
        .put_result(&hash(9), "v1", &proven_with_candidate())
        .unwrap_err();
    assert!(matches!(err, CorpusError::NotFound(_)), "{err:?}");
    assert!(corpus.result(&hash(9), "v1").unwrap().is_none());
}

#[test]
fn a_corrupt_candidate_blob_is_reported_not_panicked() {
    let (dir, mut corpus) = corpus_of_three();
    corpus
        .put_result(&hash(2), "v1", &proven_with_candidate())
        .unwrap();
    raw_index(dir.path())
        .execute(
            "UPDATE results SET candidate = x'deadbeef' WHERE trace_hash = ?1",
            [hash(2).to_string()],
        )
        .unwrap();
    match corpus.result(&hash(2), "v1") {
        Err(CorpusError::Corrupt(problem)) => {
            assert!(problem.id.contains(&hash(2).to_string()), "{problem}");
            assert!(
                matches!(problem.kind, ProblemKind::Undecodable(_)),
                "{problem}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_schema_version_1_corpus_migrates_and_keeps_its_traces() {
    let (dir, corpus) = corpus_of_three();
    drop(corpus);
    // Turn it back into what the previous kiln wrote: no results table, version 1.
    let conn = raw_index(dir.path());
    conn.execute_batch(
        "DROP TABLE side_traces; DROP TABLE modules; DROP TABLE results;
         UPDATE meta SET value = '1' WHERE key = 'schema_version';",
    )
    .unwrap();
    drop(conn);

    let mut corpus = Corpus::open(dir.path()).unwrap();
    let version = stored_schema_version(dir.path());
    assert_eq!(version, SCHEMA_VERSION.to_string());
    assert_eq!(corpus.stats().unwrap().traces, 3);
    assert_eq!(corpus.traces_without_result("v1").unwrap().len(), 3);
    corpus
        .put_result(&hash(0), "v1", &proven_with_candidate())
        .unwrap();
    assert!(corpus.result(&hash(0), "v1").unwrap().is_some());
}
