//! The corpus in one process: deduplication, hit counts, provenance, lookups, corrupt
//! entries and files that are not a corpus.

mod common;

use std::collections::BTreeSet;
use std::fs;

use common::{batch, hash, module_hash, prov, raw_index, stored_schema_version, trace, trace_len};
use corpus::{AddSummary, Corpus, CorpusError, ProblemKind, TraceKey, SCHEMA_VERSION};

fn new_corpus() -> (tempfile::TempDir, Corpus) {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::open(dir.path().join("corpus")).unwrap();
    (dir, corpus)
}

#[test]
fn dedup_and_hits_add_up_across_runs_and_apps() {
    let (_dir, mut corpus) = new_corpus();
    let crc = corpus
        .begin_run("crc32", &module_hash("crc32"), &["crc32.wasm", "in.bin"])
        .unwrap();
    let added = corpus
        .add_traces(crc, &batch("crc32", [0, 1, 2], |n| 100 + n as u64))
        .unwrap();
    assert_eq!(
        added,
        AddSummary {
            new: 3,
            existing: 0,
            repaired: 0
        }
    );
    corpus.finish_run(crc).unwrap();

    // Another app records two of the same traces and one new one.
    let sha = corpus
        .begin_run("sha", &module_hash("sha"), &["sha.wasm"])
        .unwrap();
    let added = corpus
        .add_traces(sha, &batch("sha", [1, 2, 3], |n| 1000 + n as u64))
        .unwrap();
    assert_eq!(
        added,
        AddSummary {
            new: 1,
            existing: 2,
            repaired: 0
        }
    );
    corpus.finish_run(sha).unwrap();

    // And the first app runs again.
    let crc2 = corpus
        .begin_run("crc32", &module_hash("crc32"), &["crc32.wasm"])
        .unwrap();
    let added = corpus
        .add_traces(crc2, &batch("crc32", [2], |_| 7))
        .unwrap();
    assert_eq!(
        added,
        AddSummary {
            new: 0,
            existing: 1,
            repaired: 0
        }
    );

    let stats = corpus.stats().unwrap();
    assert_eq!(stats.traces, 4);
    assert_eq!(stats.runs, 3);
    assert_eq!(stats.unfinished_runs, 1);
    assert_eq!(stats.apps, 2);
    assert_eq!(stats.provenance, 7);
    assert_eq!(
        stats.total_hits,
        (100 + 101 + 102) + (1001 + 1002 + 1003) + 7
    );
    assert!(stats.problems.is_empty(), "{:?}", stats.problems);
    assert!(stats.trace_bytes > 0 && stats.file_bytes >= stats.trace_bytes);

    // Trace 2 was recorded by every run: stored once, hits summed, all three listed.
    let two = corpus.get(&hash(2)).unwrap();
    assert_eq!(two.trace, trace(2));
    assert_eq!(two.total_hits(), 102 + 1002 + 7);
    let runs: Vec<_> = two
        .provenance
        .iter()
        .map(|p| (p.run, p.app.as_str(), p.provenance.hits))
        .collect();
    assert_eq!(
        runs,
        [(crc, "crc32", 102), (sha, "sha", 1002), (crc2, "crc32", 7)]
    );
    assert_eq!(two.provenance[1].provenance, prov("sha", 2, 1002));

    let one = corpus.get(&hash(1)).unwrap();
    let apps: BTreeSet<_> = one.provenance.iter().map(|p| p.app.as_str()).collect();
    assert_eq!(apps, BTreeSet::from(["crc32", "sha"]));
    assert_eq!(one.total_hits(), 101 + 1001);

    let zero = corpus.get(&hash(0)).unwrap();
    assert_eq!(zero.provenance.len(), 1);
    assert_eq!(zero.provenance[0].app, "crc32");
}

#[test]
fn the_same_trace_twice_in_one_batch_is_new_once_and_its_hits_add_up() {
    let (_dir, mut corpus) = new_corpus();
    let run = corpus
        .begin_run("app", &module_hash("app"), &[] as &[&str])
        .unwrap();
    let mut other_anchor = prov("app", 5, 3);
    other_anchor.anchor_offset += 1;
    let items = vec![
        (trace(5), prov("app", 5, 10)),
        (trace(5), prov("app", 5, 20)),
        (trace(5), other_anchor),
    ];
    let added = corpus.add_traces(run, &items).unwrap();
    assert_eq!(
        added,
        AddSummary {
            new: 1,
            existing: 2,
            repaired: 0
        }
    );

    let stored = corpus.get(&hash(5)).unwrap();
    let rows: Vec<_> = stored
        .provenance
        .iter()
        .map(|p| (p.provenance.anchor_offset, p.provenance.hits))
        .collect();
    assert_eq!(rows, [(20, 30), (21, 3)]);
    assert_eq!(corpus.stats().unwrap().provenance, 2);
}

#[test]
fn list_gives_totals_lengths_and_apps_hottest_first() {
    let (_dir, mut corpus) = new_corpus();
    let a = corpus.begin_run("a", &module_hash("a"), &["x"]).unwrap();
    corpus
        .add_traces(a, &batch("a", [10, 11, 12], |n| n as u64))
        .unwrap();
    let b = corpus.begin_run("b", &module_hash("b"), &["y"]).unwrap();
    corpus.add_traces(b, &batch("b", [10], |_| 50)).unwrap();

    let listing = corpus.list().unwrap();
    assert!(listing.problems.is_empty());
    let lines: Vec<_> = listing
        .traces
        .iter()
        .map(|t| (t.hash, t.total_hits, t.insts, t.provenance, t.apps.clone()))
        .collect();
    assert_eq!(
        lines,
        [
            (
                hash(10),
                60,
                trace_len(10),
                2,
                vec!["a".to_string(), "b".to_string()]
            ),
            (hash(12), 12, trace_len(12), 1, vec!["a".to_string()]),
            (hash(11), 11, trace_len(11), 1, vec!["a".to_string()]),
        ]
    );
    assert!(listing.traces.iter().all(|t| t.bytes > 0 && t.created > 0));
}

#[test]
fn get_by_prefix_finds_a_unique_one_and_refuses_an_ambiguous_one() {
    let (_dir, mut corpus) = new_corpus();
    let run = corpus
        .begin_run("app", &module_hash("app"), &["a"])
        .unwrap();
    // 17 traces: two of them share their first hex digit at least.
    corpus.add_traces(run, &batch("app", 0..17, |_| 1)).unwrap();
    let hashes: Vec<String> = (0..17).map(|n| hash(n).to_string()).collect();

    let shared = hashes
        .iter()
        .map(|h| &h[..1])
        .find(|p| hashes.iter().filter(|h| h.starts_with(p)).count() > 1)
        .unwrap();
    let sharing = hashes.iter().filter(|h| h.starts_with(shared)).count() as u64;
    match corpus.get(shared) {
        Err(CorpusError::Ambiguous {
            prefix,
            count,
            examples,
        }) => {
            assert_eq!(prefix, shared);
            assert_eq!(count, sharing);
            assert!(
                examples.len() >= 2 && examples.iter().all(|h| h.to_string().starts_with(shared))
            );
        }
        other => panic!("expected an ambiguous prefix, got {other:?}"),
    }

    // The shortest unique prefix of trace 3's hash finds it, in either case.
    let full = &hashes[3];
    let unique = (1..=64)
        .map(|len| &full[..len])
        .find(|p| hashes.iter().filter(|h| h.starts_with(p)).count() == 1);
    let unique = unique.unwrap();
    assert_eq!(corpus.get(unique).unwrap().trace, trace(3));
    assert_eq!(
        corpus.get(unique.to_uppercase().as_str()).unwrap().hash,
        hash(3)
    );
    assert_eq!(corpus.get(full.as_str()).unwrap().hash, hash(3));
    assert_eq!(
        corpus.get(TraceKey::Hash(&hash(3))).unwrap().trace,
        trace(3)
    );
    assert_eq!(corpus.resolve(unique).unwrap(), hash(3));

    assert!(matches!(corpus.get(""), Err(CorpusError::BadPrefix(_))));
    assert!(matches!(corpus.get("12xy"), Err(CorpusError::BadPrefix(_))));
    assert!(matches!(
        corpus.get(&"a".repeat(65)),
        Err(CorpusError::BadPrefix(_))
    ));
    let absent = hash(99);
    assert!(matches!(corpus.get(&absent), Err(CorpusError::NotFound(_))));
    // A prefix that only a trace not stored has: extend a stored hash past where it ends.
    let mut missing = full.clone();
    missing.replace_range(63.., if full.ends_with('0') { "1" } else { "0" });
    assert!(matches!(
        corpus.get(missing.as_str()),
        Err(CorpusError::NotFound(_))
    ));
}

#[test]
fn runs_are_listed_with_their_app_args_and_end() {
    let (_dir, mut corpus) = new_corpus();
    let a = corpus
        .begin_run(
            "crc32",
            &module_hash("crc32"),
            &["crc32.wasm", "with space", "ünï"],
        )
        .unwrap();
    corpus
        .add_traces(a, &batch("crc32", [1, 2], |_| 1))
        .unwrap();
    corpus.finish_run(a).unwrap();
    let b = corpus
        .begin_run("sha", &module_hash("sha"), &[] as &[String])
        .unwrap();

    let runs = corpus.runs().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0].id, runs[0].app.as_str(), runs[0].traces),
        (a, "crc32", 2)
    );
    assert_eq!(runs[0].args, ["crc32.wasm", "with space", "ünï"]);
    assert_eq!(runs[0].module_hash, module_hash("crc32"));
    assert_eq!(runs[0].kiln_version, corpus::KILN_VERSION);
    assert!(runs[0].finished.is_some_and(|f| f >= runs[0].started));
    assert_eq!((runs[1].id, runs[1].traces, runs[1].finished), (b, 0, None));
    assert!(runs[1].args.is_empty());
}

#[test]
fn adding_to_an_unknown_run_is_refused_and_stores_nothing() {
    let (_dir, mut corpus) = new_corpus();
    let bogus = corpus::RunId(42);
    assert!(
        matches!(corpus.add_traces(bogus, &batch("a", [1], |_| 1)), Err(CorpusError::UnknownRun(r)) if r == bogus)
    );
    assert!(matches!(
        corpus.finish_run(bogus),
        Err(CorpusError::UnknownRun(_))
    ));
    assert_eq!(corpus.stats().unwrap().traces, 0);
}

#[test]
fn a_reopened_corpus_has_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut corpus = Corpus::open(dir.path()).unwrap();
        let run = corpus
            .begin_run("app", &module_hash("app"), &["a"])
            .unwrap();
        corpus
            .add_traces(run, &batch("app", 0..5, |n| n as u64 + 1))
            .unwrap();
    }
    let corpus = Corpus::open_existing(dir.path()).unwrap();
    let stats = corpus.stats().unwrap();
    assert_eq!((stats.traces, stats.runs, stats.total_hits), (5, 1, 15));
    assert!(corpus.verify().unwrap().is_empty());
    let read: Vec<_> = corpus
        .iter_traces()
        .unwrap()
        .map(|e| e.unwrap().trace)
        .collect();
    assert_eq!(read.len(), 5);
    assert!((0..5).all(|n| read.contains(&trace(n))));
}

#[test]
fn open_existing_does_not_create_a_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope");
    let err = Corpus::open_existing(&path).err().unwrap();
    assert!(matches!(err, CorpusError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("no corpus here"), "{err}");
    assert!(!path.exists());
}

/// Opens a copy of `bytes` as a corpus index and returns the error.
fn open_index_file(bytes: &[u8]) -> CorpusError {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(corpus::INDEX_FILE), bytes).unwrap();
    match Corpus::open(dir.path()) {
        Ok(_) => panic!("opened a damaged index"),
        Err(e) => e,
    }
}

#[test]
fn a_garbage_index_file_is_a_clear_error() {
    let err = open_index_file(&b"this is not a database, just some text\n".repeat(200));
    assert!(matches!(err, CorpusError::NotACorpus { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("corpus.sqlite") && message.contains("not a usable kiln corpus"),
        "{message}"
    );
}

#[test]
fn a_truncated_index_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut corpus = Corpus::open(dir.path()).unwrap();
        let run = corpus
            .begin_run("app", &module_hash("app"), &["a"])
            .unwrap();
        corpus
            .add_traces(run, &batch("app", 0..300, |_| 1))
            .unwrap();
    }
    let whole = fs::read(dir.path().join(corpus::INDEX_FILE)).unwrap();
    assert!(
        whole.len() > 8 * 4096,
        "the index should span many pages ({} bytes)",
        whole.len()
    );

    // Cut inside the header, and inside the first page: SQLite cannot even read the schema.
    for len in [50, 100, 1000] {
        let err = open_index_file(&whole[..len]);
        assert!(
            matches!(err, CorpusError::NotACorpus { .. }),
            "cut at {len}: {err:?}"
        );
    }

    // Cut after the schema pages: the corpus may open, but then every reader reports the
    // damage as an error or a problem instead of panicking or inventing data.
    let dir2 = tempfile::tempdir().unwrap();
    fs::write(
        dir2.path().join(corpus::INDEX_FILE),
        &whole[..whole.len() / 2],
    )
    .unwrap();
    match Corpus::open(dir2.path()) {
        Err(err) => assert!(matches!(err, CorpusError::NotACorpus { .. }), "{err:?}"),
        Ok(corpus) => {
            let problems = corpus.verify().unwrap();
            assert!(problems.iter().any(|p| p.id == "database"), "{problems:?}");
            match corpus.stats() {
                Err(err) => assert!(err.to_string().contains("malformed"), "{err}"),
                Ok(stats) => assert!(
                    stats.traces < 300 || !stats.problems.is_empty(),
                    "{stats:?}"
                ),
            }
        }
    }
}

#[test]
fn another_programs_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conn = raw_index(dir.path());
    conn.execute_batch("CREATE TABLE songs (title TEXT); INSERT INTO songs VALUES ('la');")
        .unwrap();
    drop(conn);
    let err = Corpus::open(dir.path()).err().unwrap();
    assert!(matches!(err, CorpusError::NotACorpus { .. }), "{err:?}");
    assert!(err.to_string().contains("another program"), "{err}");
}

#[test]
fn a_newer_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Corpus::open(dir.path()).unwrap());
    let conn = raw_index(dir.path());
    let newer = SCHEMA_VERSION + 1;
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
        [newer.to_string()],
    )
    .unwrap();
    drop(conn);

    let err = Corpus::open(dir.path()).err().unwrap();
    match &err {
        CorpusError::NewerSchema {
            found, supported, ..
        } => assert_eq!((*found, *supported), (newer, SCHEMA_VERSION)),
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(err.to_string().contains("newer kiln"), "{err}");
    // Refusing changed nothing.
    let version = stored_schema_version(dir.path());
    assert_eq!(version, newer.to_string());
}

#[test]
fn a_new_corpus_is_at_the_current_schema_version() {
    let (dir, corpus) = new_corpus();
    drop(corpus);
    let version = stored_schema_version(&dir.path().join("corpus"));
    assert_eq!(version, SCHEMA_VERSION.to_string());
    let mode: String = raw_index(&dir.path().join("corpus"))
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

/// Stores traces 0..5 in a fresh corpus, closes it, and returns its directory.
fn corpus_of_five() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(dir.path()).unwrap();
    let run = corpus
        .begin_run("app", &module_hash("app"), &["a"])
        .unwrap();
    corpus
        .add_traces(run, &batch("app", 0..5, |n| 10 + n as u64))
        .unwrap();
    dir
}

/// The stored blob of `trace(n)`.
fn stored_blob(dir: &std::path::Path, n: u32) -> Vec<u8> {
    raw_index(dir)
        .query_row(
            "SELECT blob FROM traces WHERE hash = ?1",
            [hash(n).to_string()],
            |r| r.get(0),
        )
        .unwrap()
}

/// Checks that trace `bad` is reported by its hash and skipped by every reader, while
/// traces `0..5` but `bad` read fine.
fn assert_only_entry_is_corrupt(corpus: &Corpus, bad: u32) {
    let id = hash(bad).to_string();
    match corpus.get(&hash(bad)) {
        Err(CorpusError::Corrupt(problem)) => assert_eq!(problem.id, id),
        other => panic!("expected a corrupt entry, got {other:?}"),
    }
    let good: Vec<u32> = (0..5).filter(|&n| n != bad).collect();
    for &n in &good {
        assert_eq!(corpus.get(&hash(n)).unwrap().trace, trace(n));
    }

    let (mut read, mut problems) = (Vec::new(), Vec::new());
    for entry in corpus.iter_traces().unwrap() {
        match entry {
            Ok(entry) => read.push(entry.trace),
            Err(problem) => problems.push(problem),
        }
    }
    assert_eq!(read.len(), 4);
    assert!(good.iter().all(|&n| read.contains(&trace(n))));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].id, id);
    assert!(problems[0].is_corrupt_trace());

    let listing = corpus.list().unwrap();
    assert_eq!(listing.traces.len(), 4);
    assert!(listing.traces.iter().all(|t| t.hash != hash(bad)));
    assert_eq!(listing.problems, problems);

    let stats = corpus.stats().unwrap();
    assert_eq!(stats.traces, 4);
    assert_eq!(
        stats.total_hits,
        good.iter().map(|&n| 10 + n as u64).sum::<u64>()
    );
    assert_eq!(stats.problems, problems);

    let verified = corpus.verify().unwrap();
    assert!(
        verified.iter().any(|p| p.id == id && p.is_corrupt_trace()),
        "{verified:?}"
    );
    assert!(verified.iter().all(|p| p.id == id), "{verified:?}");
}

#[test]
fn a_corrupt_blob_on_disk_is_reported_by_id_and_skipped() {
    let dir = corpus_of_five();
    let blob = stored_blob(dir.path(), 2);
    let index = dir.path().join(corpus::INDEX_FILE);
    assert!(
        !dir.path().join("corpus.sqlite-wal").exists(),
        "closing should have checkpointed the log"
    );
    let mut bytes = fs::read(&index).unwrap();
    let at: Vec<usize> = bytes
        .windows(blob.len())
        .enumerate()
        .filter(|(_, w)| *w == blob)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "the blob should be in the file once");
    // Flip bits in the middle of the blob, as a failing disk would.
    bytes[at[0] + blob.len() / 2] ^= 0x55;
    fs::write(&index, bytes).unwrap();

    let corpus = Corpus::open_existing(dir.path()).unwrap();
    assert_only_entry_is_corrupt(&corpus, 2);
}

#[test]
fn a_blob_of_another_trace_and_a_garbage_blob_are_told_apart() {
    let dir = corpus_of_five();
    let conn = raw_index(dir.path());
    // Entry 1 holds trace 0's blob: it decodes, to the wrong trace.
    conn.execute(
        "UPDATE traces SET blob = ?1 WHERE hash = ?2",
        rusqlite::params![stored_blob(dir.path(), 0), hash(1).to_string()],
    )
    .unwrap();
    // Entry 3 holds garbage.
    conn.execute(
        "UPDATE traces SET blob = x'ff00ff00' WHERE hash = ?1",
        [hash(3).to_string()],
    )
    .unwrap();
    drop(conn);

    let corpus = Corpus::open_existing(dir.path()).unwrap();
    let problems: Vec<_> = corpus
        .iter_traces()
        .unwrap()
        .filter_map(Result::err)
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    for problem in &problems {
        if problem.id == hash(1).to_string() {
            assert_eq!(problem.kind, ProblemKind::HashMismatch { actual: hash(0) });
        } else {
            assert_eq!(problem.id, hash(3).to_string());
            assert!(
                matches!(problem.kind, ProblemKind::Undecodable(_)),
                "{problem}"
            );
        }
    }
    assert_eq!(corpus.list().unwrap().traces.len(), 3);
    assert!(matches!(corpus.get(&hash(1)), Err(CorpusError::Corrupt(_))));
}

#[test]
fn adding_a_corrupt_trace_again_repairs_it() {
    let dir = corpus_of_five();
    raw_index(dir.path())
        .execute(
            "UPDATE traces SET blob = x'00' WHERE hash = ?1",
            [hash(4).to_string()],
        )
        .unwrap();

    let mut corpus = Corpus::open_existing(dir.path()).unwrap();
    assert!(matches!(corpus.get(&hash(4)), Err(CorpusError::Corrupt(_))));
    let run = corpus
        .begin_run("app", &module_hash("app"), &["again"])
        .unwrap();
    let added = corpus
        .add_traces(run, &batch("app", [3, 4], |_| 1))
        .unwrap();
    assert_eq!(
        added,
        AddSummary {
            new: 0,
            existing: 2,
            repaired: 1
        }
    );
    let four = corpus.get(&hash(4)).unwrap();
    assert_eq!(four.trace, trace(4));
    assert_eq!(four.total_hits(), 14 + 1);
    assert!(corpus.verify().unwrap().is_empty());
}

#[test]
fn verify_reports_what_the_readers_do_not_see() {
    let dir = corpus_of_five();
    let conn = raw_index(dir.path());
    conn.execute(
        "UPDATE traces SET size = size + 1 WHERE hash = ?1",
        [hash(0).to_string()],
    )
    .unwrap();
    conn.execute(
        "DELETE FROM provenance WHERE trace_hash = ?1",
        [hash(1).to_string()],
    )
    .unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    conn.execute("DELETE FROM traces WHERE hash = ?1", [hash(2).to_string()])
        .unwrap();
    drop(conn);

    let corpus = Corpus::open_existing(dir.path()).unwrap();
    let mut problems: Vec<_> = corpus
        .verify()
        .unwrap()
        .into_iter()
        .map(|p| (p.id, p.kind))
        .collect();
    problems.sort_by(|a, b| a.0.cmp(&b.0));
    let blob_len = stored_blob(dir.path(), 0).len() as u64;
    let mut expected = vec![
        (
            hash(0).to_string(),
            ProblemKind::SizeMismatch {
                recorded: blob_len + 1,
                actual: blob_len,
            },
        ),
        (hash(1).to_string(), ProblemKind::NoProvenance),
        (
            hash(2).to_string(),
            ProblemKind::DanglingProvenance { rows: 1 },
        ),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(problems, expected);
}

#[test]
fn a_damaged_page_is_reported_and_the_rest_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut corpus = Corpus::open(dir.path()).unwrap();
        let run = corpus
            .begin_run("app", &module_hash("app"), &["a"])
            .unwrap();
        corpus
            .add_traces(run, &batch("app", 0..300, |_| 1))
            .unwrap();
    }
    // Overwrite the last page, where the last rows went, with garbage.
    let index = dir.path().join(corpus::INDEX_FILE);
    let mut bytes = fs::read(&index).unwrap();
    let len = bytes.len();
    bytes[len - 4096..].fill(0xaa);
    fs::write(&index, bytes).unwrap();

    // The schema pages are intact, so the corpus opens; verify finds the damage, and
    // every reader either reads correctly or fails with SQLite's clear complaint.
    let corpus = Corpus::open_existing(dir.path()).unwrap();
    let problems = corpus.verify().unwrap();
    assert!(
        !problems.is_empty() && problems.iter().all(|p| p.id == "database"),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.to_string().contains("malformed")),
        "{problems:?}"
    );
    let malformed = |e: &dyn std::fmt::Display| assert!(e.to_string().contains("malformed"), "{e}");
    let mut readable = 0;
    for n in 0..300 {
        match corpus.get(&hash(n)) {
            Ok(stored) => {
                assert_eq!(stored.trace, trace(n));
                readable += 1;
            }
            Err(e) => malformed(&e),
        }
    }
    assert!(readable > 200, "only {readable} of 300 traces readable");
    for entry in corpus.iter_traces().unwrap() {
        match entry {
            Ok(entry) => assert_eq!(entry.hash, common::content_hash(&entry.trace)),
            Err(problem) => malformed(&problem),
        }
    }
    if let Err(e) = corpus.stats() {
        malformed(&e);
    }
    if let Err(e) = corpus.list() {
        malformed(&e);
    }
}

#[test]
fn a_corpus_of_another_trace_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Corpus::open(dir.path()).unwrap());
    let conn = raw_index(dir.path());
    let format: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'trace_format'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(format, ir::binary::VERSION.to_string());
    conn.execute("UPDATE meta SET value = '0' WHERE key = 'trace_format'", [])
        .unwrap();
    drop(conn);

    let err = Corpus::open(dir.path()).err().unwrap();
    assert!(
        matches!(&err, CorpusError::TraceFormat { found, .. } if found == "0"),
        "{err:?}"
    );
    assert!(err.to_string().contains("binary form version 0"), "{err}");
}

#[test]
fn a_writer_waits_for_another_connections_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(dir.path()).unwrap();
    let holder = raw_index(dir.path());
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        holder.execute_batch("COMMIT").unwrap();
    });
    let start = std::time::Instant::now();
    let run = corpus
        .begin_run("app", &module_hash("app"), &["a"])
        .unwrap();
    corpus.add_traces(run, &batch("app", [1], |_| 1)).unwrap();
    assert!(
        start.elapsed() >= std::time::Duration::from_millis(250),
        "did not wait for the lock"
    );
    release.join().unwrap();
    assert_eq!(corpus.stats().unwrap().traces, 1);
}
