//! Side traces in the corpus: stored with their places, read back per module, their
//! passes adding up, and a damaged place skipped with a problem.

mod common;

use common::{batch, hash, module_hash, raw_index, stored_schema_version, trace};
use corpus::{AddSummary, Corpus, ProblemKind, SCHEMA_VERSION};
use ir::{InlinedCall, Selector, SideProvenance, SideStart};

fn side(app: &str, n: u32, start: SideStart, passes: u64) -> (ir::Trace, SideProvenance) {
    let provenance = SideProvenance {
        module_hash: module_hash(app),
        start,
        offset: 0x40 + n,
        passes,
    };
    (trace(n), provenance)
}

/// Three places: a plain pc, inside two inlined calls after a guard that expected
/// false, and a `br_table` arm.
fn starts() -> Vec<SideStart> {
    let plain = SideStart {
        func_index: 3,
        pc: 17,
        calls: Vec::new(),
        expect: None,
        selector: None,
    };
    let in_calls = SideStart {
        func_index: 3,
        pc: 5,
        calls: vec![
            InlinedCall {
                func: 7,
                base: 12,
                return_pc: 40,
            },
            InlinedCall {
                func: 8,
                base: 30,
                return_pc: 9,
            },
        ],
        expect: Some(false),
        selector: None,
    };
    let arm = SideStart {
        func_index: 4,
        pc: 2,
        calls: Vec::new(),
        expect: Some(true),
        selector: Some(Selector {
            index_slot: 6,
            arms: 9,
            arm: 8,
        }),
    };
    vec![plain, in_calls, arm]
}

/// Adds `batches` (each one run) to a fresh corpus; returns it with the side traces it
/// lists for app "a" as (trace number, place, passes), sorted.
fn check(batches: &[Vec<(u32, SideStart, u64)>], expected: &[(u32, SideStart, u64)]) {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(dir.path()).unwrap();
    for batch in batches {
        let run = corpus
            .begin_run("a", &module_hash("a"), &["a.wasm"])
            .unwrap();
        let sides: Vec<_> = batch
            .iter()
            .map(|(n, start, passes)| side("a", *n, start.clone(), *passes))
            .collect();
        corpus.add_side_traces(run, &sides).unwrap();
        // Another app's side trace never shows up in "a"'s.
        let other = corpus
            .begin_run("b", &module_hash("b"), &["b.wasm"])
            .unwrap();
        corpus
            .add_side_traces(other, &[side("b", 99, starts()[0].clone(), 5)])
            .unwrap();
    }
    let listing = corpus.side_traces_of(&module_hash("a")).unwrap();
    assert_eq!(listing.problems, Vec::new());
    let mut found: Vec<(u32, SideStart, u64)> = listing
        .sides
        .iter()
        .map(|s| {
            let n = (0..100)
                .find(|&n| hash(n) == s.hash)
                .expect("a known trace");
            assert_eq!(s.trace, trace(n));
            assert_eq!(s.kiln_version, corpus::KILN_VERSION);
            (n, s.provenance.start.clone(), s.provenance.passes)
        })
        .collect();
    found.sort();
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(found, expected);
    // A trace with side rows only is no orphan.
    assert_eq!(corpus.verify().unwrap(), Vec::new());
}

#[test]
fn places_come_back_as_they_were_stored() {
    let s = starts();
    let rows = vec![
        (1, s[0].clone(), 10),
        (2, s[1].clone(), 20),
        (3, s[2].clone(), 30),
    ];
    check(std::slice::from_ref(&rows), &rows);
}

#[test]
fn passes_add_up_per_run_and_place_and_places_stay_apart() {
    let s = starts();
    // One run twice at one place adds up; the same trace at another place is a row of
    // its own; a second run is a row of its own too.
    let first = vec![
        (1, s[0].clone(), 10),
        (1, s[0].clone(), 5),
        (1, s[2].clone(), 7),
    ];
    let second = vec![(1, s[0].clone(), 1)];
    check(
        &[first, second],
        &[
            (1, s[0].clone(), 15),
            (1, s[0].clone(), 1),
            (1, s[2].clone(), 7),
        ],
    );
}

#[test]
fn a_side_trace_of_a_stored_trace_is_not_new() {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(dir.path()).unwrap();
    let run = corpus
        .begin_run("a", &module_hash("a"), &["a.wasm"])
        .unwrap();
    let first = corpus
        .add_side_traces(run, &[side("a", 1, starts()[0].clone(), 1)])
        .unwrap();
    let again = corpus
        .add_side_traces(run, &[side("a", 1, starts()[1].clone(), 1)])
        .unwrap();
    assert_eq!(
        first,
        AddSummary {
            new: 1,
            ..AddSummary::default()
        }
    );
    assert_eq!(
        again,
        AddSummary {
            existing: 1,
            ..AddSummary::default()
        }
    );
}

/// A closed corpus in a fresh directory holding side traces 1 and 2 of app `a`, from one
/// run, at two places.
fn two_side_traces() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(dir.path()).unwrap();
    let run = corpus
        .begin_run("a", &module_hash("a"), &["a.wasm"])
        .unwrap();
    let s = starts();
    corpus
        .add_side_traces(
            run,
            &[side("a", 1, s[1].clone(), 1), side("a", 2, s[0].clone(), 1)],
        )
        .unwrap();
    dir
}

#[test]
fn a_damaged_place_is_skipped_with_a_problem() {
    let dir = two_side_traces();
    raw_index(dir.path())
        .execute(
            "UPDATE side_traces SET calls = x'0102' WHERE trace_hash = ?1",
            [hash(1).to_string()],
        )
        .unwrap();
    let corpus = Corpus::open_existing(dir.path()).unwrap();
    let listing = corpus.side_traces_of(&module_hash("a")).unwrap();
    assert_eq!(listing.sides.len(), 1);
    assert_eq!(listing.sides[0].hash, hash(2));
    assert_eq!(listing.problems.len(), 1);
    assert_eq!(listing.problems[0].id, hash(1).to_string());
    assert!(matches!(
        &listing.problems[0].kind,
        ProblemKind::Unreadable(why) if why.contains("2 bytes, not a whole number of 12-byte calls")
    ));
}

#[test]
fn verify_finds_side_rows_of_a_run_that_is_not_stored() {
    let dir = two_side_traces();
    // As a database edited by hand, or by a tool that does not enforce the keys.
    raw_index(dir.path())
        .execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM runs;")
        .unwrap();
    let corpus = Corpus::open_existing(dir.path()).unwrap();
    let problems = corpus.verify().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].id.starts_with("run "), "{problems:?}");
    assert_eq!(
        problems[0].kind,
        ProblemKind::DanglingProvenance { rows: 2 }
    );
}

#[test]
fn a_schema_version_3_corpus_migrates_and_keeps_its_traces() {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(dir.path()).unwrap();
    let run = corpus
        .begin_run("a", &module_hash("a"), &["a.wasm"])
        .unwrap();
    corpus
        .add_traces(run, &batch("a", 0..3, |n| n.into()))
        .unwrap();
    drop(corpus);
    raw_index(dir.path())
        .execute_batch(
            "DROP TABLE side_traces; UPDATE meta SET value = '3' WHERE key = 'schema_version';",
        )
        .unwrap();
    let mut corpus = Corpus::open(dir.path()).unwrap();
    assert_eq!(
        stored_schema_version(dir.path()),
        SCHEMA_VERSION.to_string()
    );
    assert_eq!(corpus.list().unwrap().traces.len(), 3);
    let run = corpus
        .begin_run("a", &module_hash("a"), &["a.wasm"])
        .unwrap();
    let added = corpus
        .add_side_traces(run, &[side("a", 1, starts()[0].clone(), 4)])
        .unwrap();
    assert_eq!(added.existing, 1);
    assert_eq!(
        corpus
            .side_traces_of(&module_hash("a"))
            .unwrap()
            .sides
            .len(),
        1
    );
}
