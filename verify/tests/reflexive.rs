//! Every golden trace of `ir` (`ir/tests/traces`, which between them use every operator)
//! is proven equivalent to itself and to its canonical renumbering: the encoding handles
//! every operator, and a proof does not depend on value numbering or input order.

use std::path::Path;
use std::time::{Duration, Instant};

use verify::{check_equivalent, Limits, Verdict};

#[test]
fn golden_traces_are_equivalent_to_themselves() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ir/tests/traces");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .collect();
    files.sort();
    assert!(files.len() >= 12);
    let limits = Limits {
        timeout: Duration::from_secs(30),
    };
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let trace = ir::text::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        let canonical = ir::hash::canonicalize(&trace);
        for (what, other) in [("itself", &trace), ("canonical", &canonical)] {
            let start = Instant::now();
            let verdict = check_equivalent(&trace, other, &limits);
            let ms = start.elapsed().as_millis();
            println!("{name} vs {what} ({ms} ms): {verdict}");
            if verdict != Verdict::Proven {
                failures.push(format!("{name} vs {what}: {verdict}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
