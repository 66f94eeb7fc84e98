//! `kiln cache build` and `kiln cache inspect`, end to end through the binary.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{check, workspace};

use emit::cache::CacheLibrary;
use sha2::{Digest, Sha256};

/// A fresh directory for one test.
fn test_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cache-cli-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A corpus holding crc32's traces, recorded once for all tests. A build stores the
/// results it had to compute, which every later build reads the same.
fn crc32_corpus() -> &'static str {
    static CORPUS: OnceLock<String> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = test_dir("corpus").join("crc32");
        let d = dir.to_str().unwrap().to_string();
        check(
            &["record", "--corpus", &d, "examples/crc32.wasm", "1"],
            0,
            &[],
            &["new in"],
        );
        d
    })
}

fn app_hash(path: &str) -> String {
    let bytes = std::fs::read(workspace().join(path)).unwrap();
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Nothing but `expected` is left in `dir`: no output and no temporary file.
fn assert_only(dir: &Path, expected: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, expected, "files in {}", dir.display());
}

#[test]
fn build_then_inspect_a_cache() {
    let dir = test_dir("build");
    let out = dir.join("crc32.kcache");
    let o = out.to_str().unwrap();
    let run = check(
        &[
            "cache",
            "build",
            "--corpus",
            crc32_corpus(),
            "--app",
            "examples/crc32.wasm",
            "-o",
            o,
        ],
        0,
        &[],
        &["wrote", "traces of examples/crc32.wasm"],
    );
    assert_only(&dir, &["crc32.kcache"]);

    // The file is a cache this kiln runs for crc32, one trace per recorded loop.
    let bytes = std::fs::read(&out).unwrap();
    let hash = app_hash("examples/crc32.wasm");
    let library = CacheLibrary::read(&bytes, &hash).expect("the cache reads back");
    let traces = library.traces();
    assert!(!traces.is_empty());
    assert!(
        run.stderr.contains(&format!("{} traces", traces.len())),
        "{}",
        run.stderr
    );
    // Each entry is a trace the corpus holds of crc32, at the anchor it was recorded
    // at, with the exits the runtime would derive from the recorded trace (saturation
    // keeps every exit).
    let corpus = corpus::Corpus::open_existing(crc32_corpus()).unwrap();
    for t in traces {
        let stored = corpus
            .get(&t.content_hash)
            .expect("the trace is in the corpus");
        assert!(stored.provenance.iter().any(|p| {
            let p = &p.provenance;
            (p.module_hash.as_str(), p.func_index, p.anchor_offset)
                == (hash.as_str(), t.func_index, t.anchor_offset)
        }));
        let meta = runtime::TraceMeta::of(&stored.trace, t.func_index, t.anchor_offset);
        assert_eq!(t.exit_pcs(), meta.exits);
        if !t.verdict.is_proven() {
            let touches = meta.touches.expect("touches");
            assert_eq!(t.slots_read(), touches.reads);
            assert_eq!(t.slots_written(), touches.writes);
            assert_eq!(t.globals_touched(), touches.globals);
        }
        assert!(t.cost_after <= t.cost_before);
        if t.verdict.is_proven() {
            assert!(t.solver.starts_with("z3 "), "{}", t.solver);
        }
    }

    let run = check(
        &["cache", "inspect", o],
        0,
        &[
            &format!("format {}, written by kiln", emit::cache::FORMAT_VERSION),
            &format!("app module sha256 {hash}"),
            &format!("{} traces (", traces.len()),
        ],
        &[],
    );
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("trace"))
        .collect();
    assert_eq!(lines.len(), traces.len(), "{}", run.stdout);
    for (i, (line, t)) in lines.iter().zip(traces).enumerate() {
        let key = format!(
            "trace{i} func {} anchor {:#x} trace {}",
            t.func_index,
            t.anchor_offset,
            &t.content_hash.to_string()[..16]
        );
        assert!(line.starts_with(&key), "{line:?} is not {key:?}");
        assert!(
            line.contains(&format!("cost {} -> {}", t.cost_before, t.cost_after)),
            "{line}"
        );
        assert!(
            line.contains(" optimized proven by z3 ") || line.contains(" naive unproven: "),
            "{line}"
        );
    }

    // Built twice, the same bytes.
    let again = dir.join("again.kcache");
    check(
        &[
            "cache",
            "build",
            "--corpus",
            crc32_corpus(),
            "--app",
            "examples/crc32.wasm",
            "-o",
            again.to_str().unwrap(),
        ],
        0,
        &[],
        &[],
    );
    assert_eq!(std::fs::read(&again).unwrap(), bytes);
}

#[test]
fn an_app_with_no_traces_in_the_corpus_is_an_error_and_writes_nothing() {
    let dir = test_dir("no-traces");
    let out = dir.join("sort.kcache");
    // An older file at the output path survives a failed build.
    std::fs::write(&out, b"old").unwrap();
    check(
        &[
            "cache",
            "build",
            "--corpus",
            crc32_corpus(),
            "--app",
            "examples/sort.wasm",
            "-o",
            out.to_str().unwrap(),
        ],
        2,
        &[],
        &[
            "holds no traces of examples/sort.wasm",
            &app_hash("examples/sort.wasm"),
            "kiln record",
        ],
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"old");
    assert_only(&dir, &["sort.kcache"]);
}

#[test]
fn bad_inputs_to_build_are_errors_that_write_nothing() {
    let dir = test_dir("bad-build");
    let out = dir.join("out.kcache");
    let o = out.to_str().unwrap();
    let missing = dir.join("no-such-corpus");
    check(
        &[
            "cache",
            "build",
            "--corpus",
            missing.to_str().unwrap(),
            "--app",
            "examples/crc32.wasm",
            "-o",
            o,
        ],
        2,
        &[],
        &["no-such-corpus"],
    );
    check(
        &[
            "cache",
            "build",
            "--corpus",
            crc32_corpus(),
            "--app",
            "examples/none.wasm",
            "-o",
            o,
        ],
        2,
        &[],
        &["examples/none.wasm: cannot read"],
    );
    let not_wasm = dir.join("not.wasm");
    std::fs::write(&not_wasm, b"hello").unwrap();
    check(
        &[
            "cache",
            "build",
            "--corpus",
            crc32_corpus(),
            "--app",
            not_wasm.to_str().unwrap(),
            "-o",
            o,
        ],
        2,
        &[],
        &["not.wasm: invalid module"],
    );
    let into_missing_dir = dir.join("no-dir").join("out.kcache");
    check(
        &[
            "cache",
            "build",
            "--corpus",
            crc32_corpus(),
            "--app",
            "examples/crc32.wasm",
            "-o",
            into_missing_dir.to_str().unwrap(),
        ],
        2,
        &[],
        &["out.kcache: cannot write"],
    );
    assert_only(&dir, &["not.wasm"]);
}

#[test]
fn bad_caches_are_refused_by_inspect_naming_the_problem() {
    let dir = test_dir("bad-inspect");
    let good = dir.join("good.kcache");
    check(
        &[
            "cache",
            "build",
            "--corpus",
            crc32_corpus(),
            "--app",
            "examples/crc32.wasm",
            "-o",
            good.to_str().unwrap(),
        ],
        0,
        &[],
        &[],
    );
    let bytes = std::fs::read(&good).unwrap();
    let bad = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };

    let truncated = bad("truncated.kcache", &bytes[..bytes.len() - 10]);
    check(
        &["cache", "inspect", &truncated],
        2,
        &[],
        &["truncated.kcache: ", "truncated or damaged"],
    );

    // The last byte is the checksum's: the file's structure stays whole.
    let mut flipped = bytes.clone();
    flipped[bytes.len() - 1] ^= 0x20;
    let flipped = bad("flipped.kcache", &flipped);
    check(
        &["cache", "inspect", &flipped],
        2,
        &[],
        &["flipped.kcache: ", "checksum"],
    );

    let app = bad(
        "app.kcache",
        &std::fs::read(workspace().join("examples/crc32.wasm")).unwrap(),
    );
    check(
        &["cache", "inspect", &app],
        2,
        &[],
        &["not a kiln cache library"],
    );

    let missing = dir.join("missing.kcache");
    check(
        &["cache", "inspect", missing.to_str().unwrap()],
        2,
        &[],
        &["missing.kcache: cannot read"],
    );
}

/// The nightly job's results and a build's own give the same cache: a build after
/// `kiln optimize` reads every result from the store (no solver work), and a build on a
/// corpus without results optimizes, stores what it found (so the job then has nothing
/// to do), and writes the same bytes.
#[test]
fn a_build_uses_the_stored_results_and_gives_the_same_bytes_either_way() {
    let dir = test_dir("results");
    let record = |name: &str| {
        let corpus = dir.join(name);
        let c = corpus.to_str().unwrap().to_string();
        check(
            &["record", "--corpus", &c, "examples/sieve.wasm", "1"],
            0,
            &[],
            &["new in"],
        );
        c
    };
    let build = |corpus: &str, out: &str, expect: &str| {
        let out = dir.join(out);
        let o = out.to_str().unwrap();
        let args = [
            "cache",
            "build",
            "--corpus",
            corpus,
            "--app",
            "examples/sieve.wasm",
            "-o",
            o,
        ];
        check(&args, 0, &[], &[expect]);
        std::fs::read(&out).unwrap()
    };

    let after_job = record("after-job");
    check(
        &["optimize", "--corpus", &after_job],
        0,
        &["optimize: "],
        &[],
    );
    let from_store = build(&after_job, "from-store.kcache", " 0 optimized now");

    let fresh = record("fresh");
    let built_now = build(&fresh, "built-now.kcache", " 0 results from the store");
    assert!(
        built_now == from_store,
        "the same corpus and results give the same bytes"
    );
    let again = build(&fresh, "again.kcache", " 0 optimized now");
    assert!(
        again == from_store,
        "a rebuild reads what the first build stored"
    );
}

/// Recordings by another kiln version are left out of a build with a warning that counts
/// them (side traces and loop traces alike); with nothing of this kiln's left, the build
/// is an error naming how many were left out, and writes nothing.
#[test]
fn recordings_by_another_kiln_are_left_out_with_a_warning() {
    let dir = test_dir("other-kiln");
    let corpus = dir.join("corpus").display().to_string();
    check(
        &["record", "--corpus", &corpus, "examples/crc32.wasm"],
        0,
        &[],
        &["side traces"],
    );
    // A run of another kiln, and this corpus's side traces moved to it.
    let db = rusqlite::Connection::open(dir.join("corpus").join("corpus.sqlite")).unwrap();
    db.execute(
        "INSERT INTO runs (app, module_hash, started, finished, kiln_version, args)
         SELECT app, module_hash, started, finished, '0.0.0-other', args FROM runs LIMIT 1",
        [],
    )
    .unwrap();
    let other = db.last_insert_rowid();
    let sides = db
        .execute("UPDATE side_traces SET run_id = ?1", [other])
        .unwrap();
    assert!(sides > 0, "crc32 at its default scale links side traces");

    let out = dir.join("crc32.kcache");
    let o = out.to_str().unwrap();
    let build = [
        "cache",
        "build",
        "--corpus",
        &corpus,
        "--app",
        "examples/crc32.wasm",
    ];
    let left_out = format!(
        "left out {sides} side-trace recordings of examples/crc32.wasm made by other kiln versions"
    );
    check(&[&build[..], &["-o", o]].concat(), 0, &[], &[&left_out]);
    let library = CacheLibrary::read(
        &std::fs::read(&out).unwrap(),
        &app_hash("examples/crc32.wasm"),
    )
    .unwrap();
    assert!(!library.traces().is_empty());
    assert!(library.traces().iter().all(|t| t.side.is_none()));

    // The loop traces too: nothing of this kiln's is left.
    let loops = db
        .execute("UPDATE provenance SET run_id = ?1", [other])
        .unwrap();
    let none = dir.join("none.kcache");
    check(
        &[&build[..], &["-o", none.to_str().unwrap()]].concat(),
        2,
        &[],
        &[&format!("{loops} recordings by other versions left out")],
    );
    assert!(!none.exists());
}
