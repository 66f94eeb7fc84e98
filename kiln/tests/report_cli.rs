//! `kiln report` through the binary, on a corpus of hand-written traces whose rewrites
//! are known: the Markdown against a golden file (`KILN_BLESS=1` rewrites it), the HTML
//! self-contained, the JSON's shape, the comparison with wasm-opt (and without it), and
//! the errors for a corpus without results or without a corpus.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{check, workspace};

/// Two traces multiplying by 8 in different contexts (one pattern, two occurrences),
/// and one with nothing to improve.
const TRACES: [&str; 3] = [
    "trace locals=2\n  in  v0:i32 = slot 0\n  in  v1:i32 = slot 1\n  v2:i32 = i32.mul v0 8\n  v3:i32 = i32.add v2 v1\n  v4:i32 = i32.lt_u v3 1000\n  guard v4 else exit 0 pc=4 @0x10 [s0=v3]\n  loop [s0=v3 s1=v1]\n",
    "trace locals=1\n  in  v0:i32 = slot 0\n  v1:i32 = i32.sub v0 1\n  v2:i32 = i32.mul v1 8\n  v3:i32 = i32.ne v2 0\n  guard v3 else exit 0 pc=7 @0x20 [s0=v2]\n  loop [s0=v2]\n",
    "trace locals=1\n  in  v0:i32 = slot 0\n  v1:i32 = i32.add v0 1\n  v2:i32 = i32.lt_s v1 100\n  guard v2 else exit 0 pc=3 @0x30 [s0=v1]\n  loop [s0=v1]\n",
];

/// A fresh directory for one test.
fn test_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("report-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A corpus of [`TRACES`], recorded (so to speak) from an app named `app.wasm` that is
/// nowhere on disk: the report then derives what trace functions import from the traces.
fn corpus_of_traces(dir: &Path) -> String {
    let corpus_dir = dir.join("corpus");
    let mut corpus = corpus::Corpus::open(&corpus_dir).unwrap();
    let module_hash = "ab".repeat(32);
    let run = corpus
        .begin_run("app.wasm", &module_hash, &["app.wasm"])
        .unwrap();
    let traces: Vec<_> = TRACES
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let provenance = ir::Provenance {
                module_hash: module_hash.clone(),
                func_index: 1,
                anchor_offset: 0x10 * (i as u32 + 1),
                kind: ir::AnchorKind::Loop,
                hits: 1000 * (i as u64 + 1),
            };
            (ir::text::parse(text).unwrap(), provenance)
        })
        .collect();
    corpus.add_traces(run, &traces).unwrap();
    corpus_dir.to_str().unwrap().to_string()
}

/// What changes with every rule or machine, replaced so the golden holds still.
fn normalized(markdown: &str) -> String {
    markdown
        .lines()
        .map(|line| {
            if line.starts_with("Optimizer version `") {
                "Optimizer version `VERSION`.".to_string()
            } else if let Some(rest) = line.strip_prefix("wasm-opt version ") {
                let tail = rest.split_once(' ').map_or("", |(_, t)| t);
                format!("wasm-opt version N {tail}")
            } else if line.starts_with("| saturation |") || line.starts_with("| verification |") {
                let stage = line.split('|').nth(1).unwrap_or("").trim();
                format!("| {stage} | (time) | (time) |")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn check_golden(actual: &str, golden: &Path) {
    if std::env::var_os("KILN_BLESS").is_some() {
        std::fs::write(golden, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(golden).unwrap_or_else(|_| {
        panic!(
            "no golden {}; run with KILN_BLESS=1 to write it",
            golden.display()
        )
    });
    assert!(
        actual == expected,
        "{} differs (KILN_BLESS=1 rewrites it):\n--- actual:\n{actual}",
        golden.display()
    );
}

#[test]
fn a_report_of_known_rewrites() {
    let dir = test_dir("known");
    let corpus = corpus_of_traces(&dir);
    check(
        &["optimize", "--corpus", &corpus],
        0,
        &["optimize: 3 traces, 3 proven"],
        &[],
    );
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    check(
        &["report", "--corpus", &corpus, "-o", o],
        0,
        &[
            "report: 3 traces, ",
            "wrote ",
            "report.md",
            "report.json",
            "report.html",
        ],
        &[],
    );

    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    // The golden file holds the comparison with wasm-opt: without binaryen, say so rather
    // than show a golden mismatch (`without_wasm_opt_the_comparison_says_so_...` covers
    // the report without it).
    assert!(
        !markdown.contains("Not compared: `wasm-opt` cannot be run"),
        "wasm-opt (binaryen) is not on PATH; `bash scripts/setup.sh` installs it"
    );
    check_golden(
        &normalized(&markdown),
        &workspace().join("kiln/tests/golden/report.md"),
    );
    assert!(
        markdown.contains("(i32.mul (local.get $a) (i32.const 8))"),
        "the multiplication is a pattern"
    );

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for outside in ["http://", "https://", "<script", "<link", "src="] {
        assert!(
            !html.contains(outside),
            "the page reaches outside itself: {outside}"
        );
    }
    assert_eq!(html.matches("<svg").count(), 3, "three plots");

    let json = std::fs::read_to_string(out.join("report.json")).unwrap();
    for key in [
        "\"optimizer_version\": ",
        "\"verdicts\": ",
        "\"savings_histogram\": ",
        "\"stage_times_ms\": ",
        "\"families\": ",
        "\"patterns\": ",
        "\"wasm_opt\": ",
        "\"traces\": ",
    ] {
        assert!(json.contains(key), "report.json has {key}");
    }
    assert!(
        json.contains("\"occurrences\": 2"),
        "one pattern in two traces"
    );
    assert!(
        !json.contains("\"kiln_above\": 0,"),
        "wasm-opt improves some naive function (kiln's emission leaves it room)"
    );

    // The same store gives the same files.
    let again = dir.join("again");
    check(
        &["report", "--corpus", &corpus, "-o", again.to_str().unwrap()],
        0,
        &[],
        &[],
    );
    for file in ["report.md", "report.json", "report.html"] {
        assert!(
            std::fs::read(out.join(file)).unwrap() == std::fs::read(again.join(file)).unwrap(),
            "{file} differs between two reports of one store"
        );
    }
}

#[test]
fn without_wasm_opt_the_comparison_says_so_and_the_report_is_written() {
    let dir = test_dir("no-wasm-opt");
    let corpus = corpus_of_traces(&dir);
    check(&["optimize", "--corpus", &corpus], 0, &[], &[]);
    let out = dir.join("out");
    let empty_path = dir.join("empty-path");
    std::fs::create_dir_all(&empty_path).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["report", "--corpus", &corpus, "-o", out.to_str().unwrap()])
        .env("PATH", &empty_path)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        markdown.contains("Not compared: `wasm-opt` cannot be run"),
        "{markdown}"
    );
}

#[test]
fn a_corpus_without_results_or_no_corpus_is_an_error_that_writes_nothing() {
    let dir = test_dir("errors");
    let corpus = corpus_of_traces(&dir);
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    check(
        &["report", "--corpus", &corpus, "-o", o],
        2,
        &[],
        &[
            "none of its 3 traces has a result",
            "run `kiln optimize --corpus",
        ],
    );
    let missing = dir.join("missing");
    check(
        &["report", "--corpus", missing.to_str().unwrap(), "-o", o],
        2,
        &[],
        &["kiln: error: corpus ", "missing"],
    );
    assert!(!out.exists(), "nothing written");
}
