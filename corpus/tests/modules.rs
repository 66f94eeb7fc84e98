//! The apps' modules in the corpus (schema 3): stored once by their SHA-256, read back
//! checked, and a schema-2 corpus migrated.

mod common;

use common::{raw_index, stored_schema_version};
use corpus::{Corpus, CorpusError, SCHEMA_VERSION};

/// A tiny valid-looking module; the corpus stores bytes, it does not parse them.
const MODULE: &[u8] = b"\0asm\x01\0\0\0";

#[test]
fn a_module_is_stored_once_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(dir.path()).unwrap();
    let hash = corpus.put_module(MODULE).unwrap();
    assert_eq!(
        hash, "93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476",
        "the key is the SHA-256 runs name modules by"
    );
    assert_eq!(
        corpus.put_module(MODULE).unwrap(),
        hash,
        "stored again: same key"
    );
    assert_eq!(corpus.module(&hash).unwrap().as_deref(), Some(MODULE));
    assert_eq!(corpus.module(&"00".repeat(32)).unwrap(), None);
    let rows: i64 = raw_index(dir.path())
        .query_row("SELECT count(*) FROM modules", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
}

#[test]
fn a_module_whose_bytes_changed_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(dir.path()).unwrap();
    let hash = corpus.put_module(MODULE).unwrap();
    raw_index(dir.path())
        .execute("UPDATE modules SET bytes = x'00' WHERE hash = ?1", [&hash])
        .unwrap();
    match corpus.module(&hash) {
        Err(CorpusError::Corrupt(problem)) => {
            assert!(problem.to_string().contains(&hash), "{problem}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_schema_version_2_corpus_migrates() {
    let dir = tempfile::tempdir().unwrap();
    drop(Corpus::open(dir.path()).unwrap());
    raw_index(dir.path())
        .execute_batch(
            "DROP TABLE modules; DROP TABLE side_traces;
             UPDATE meta SET value = '2' WHERE key = 'schema_version';",
        )
        .unwrap();
    let mut corpus = Corpus::open(dir.path()).unwrap();
    let version = stored_schema_version(dir.path());
    assert_eq!(version, SCHEMA_VERSION.to_string());
    let hash = corpus.put_module(MODULE).unwrap();
    assert_eq!(corpus.module(&hash).unwrap().as_deref(), Some(MODULE));
}
