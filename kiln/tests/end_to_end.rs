//! The whole story on two bundled examples, through the binary as the README's main
//! command runs it: record traces into a corpus, `kiln optimize`, build each program's
//! cache from the stored results, run each program with its cache, write the report.
//!
//! Checks what issue 6 asks of it: every trace a cache ships optimized is proven, the
//! cached run prints what the interpreter printed, the report lists at least one
//! missed-optimization pattern, and a rerun of the job does no solver work.

mod common;

use std::path::{Path, PathBuf};

use common::{check, optimize_summary as summary};
use emit::cache::CacheLibrary;
use emit::EmitKind;
use sha2::{Digest, Sha256};

/// Two examples whose hot loops the optimizer improves, and that run in well under a
/// second each on the interpreter. (It ran sieve and crc32 until exits stopped storing
/// dead slots; since then no trace of theirs has a cheaper form.)
const PROGRAMS: [&str; 2] = ["sort", "matmul"];

#[test]
fn record_optimize_cache_run_report() {
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("end-to-end");
    let _ = std::fs::remove_dir_all(&work);
    let corpus = work.join("corpus");
    let corpus_arg = corpus.to_str().unwrap();

    for name in PROGRAMS {
        check(
            &["record", "--corpus", corpus_arg, &example(name)],
            0,
            &[],
            &[],
        );
    }

    let first = check(
        &["optimize", "--corpus", corpus_arg],
        0,
        &["optimize: "],
        &[],
    );
    let first = summary(&first.stdout);
    assert!(first.traces > 0, "the examples recorded traces");
    assert_eq!(first.skipped, 0, "a fresh corpus has no results");
    assert_eq!(first.failed, 0, "no trace failed");
    assert_eq!(first.refuted, 0, "no candidate refuted");

    for name in PROGRAMS {
        let app = example(name);
        let cache = work.join(format!("{name}.kcache"));
        let cache_arg = cache.to_str().unwrap();
        check(
            &[
                "cache", "build", "--corpus", corpus_arg, "--app", &app, "-o", cache_arg,
            ],
            0,
            &[],
            &[],
        );
        let shipped = shipped_traces(&cache, Path::new(&app));
        assert!(
            shipped.optimized > 0,
            "{name}: the cache ships an optimized trace"
        );
        assert_eq!(
            shipped.unproven_optimized, 0,
            "{name}: an optimized trace ships unproven"
        );

        let interpreted = check(&["run", &app], 0, &[], &[]).stdout;
        let cached = check(&["run", "--cache", cache_arg, &app], 0, &[], &[]).stdout;
        assert!(!interpreted.is_empty(), "{name} prints its result");
        assert_eq!(cached, interpreted, "{name} prints the same with its cache");
    }

    let report_dir = work.join("report");
    let report_arg = report_dir.to_str().unwrap();
    check(
        &["report", "--corpus", corpus_arg, "-o", report_arg],
        0,
        &[report_arg],
        &[],
    );
    let json = std::fs::read_to_string(report_dir.join("report.json")).expect("report.json");
    assert!(
        pattern_count(&json) >= 1,
        "the report lists at least one pattern:\n{json}"
    );
    for file in ["report.md", "report.html"] {
        assert!(report_dir.join(file).is_file(), "{file} written");
    }

    let rerun = check(
        &["optimize", "--corpus", corpus_arg],
        0,
        &["optimize: "],
        &[],
    );
    let rerun = summary(&rerun.stdout);
    assert_eq!(rerun.traces, first.traces, "the same traces");
    assert_eq!(rerun.skipped, first.traces, "every result is current");
    assert_eq!(
        rerun.proven + rerun.refuted + rerun.unknown + rerun.failed,
        0,
        "the rerun optimized nothing, so asked the solver nothing"
    );
}

/// The path of a bundled example, relative to the workspace root the tests run in.
fn example(name: &str) -> String {
    format!("examples/{name}.wasm")
}

/// What a cache ships, by emission and proof.
struct Shipped {
    optimized: usize,
    unproven_optimized: usize,
}

fn shipped_traces(cache: &Path, app: &Path) -> Shipped {
    let bytes = std::fs::read(cache).expect("the cache was written");
    let app = std::fs::read(common::workspace().join(app)).expect("the app reads");
    let app_hash: String = Sha256::digest(&app)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let library = CacheLibrary::read(&bytes, &app_hash).expect("the cache reads back");
    let optimized: Vec<_> = library
        .traces()
        .iter()
        .filter(|t| t.emission == EmitKind::Optimized)
        .collect();
    Shipped {
        optimized: optimized.len(),
        unproven_optimized: optimized.iter().filter(|t| !t.verdict.is_proven()).count(),
    }
}

/// The number of patterns in report.json: each has a `"rank"`, and nothing else does.
fn pattern_count(json: &str) -> usize {
    json.matches("\"rank\": ").count()
}
