//! Drop-a-file tests: every `tests/pairs/*.trace` holds a recorded trace, a line `---`, and
//! a candidate trace, with the expected verdict in a first line `;; expect: proven`
//! (or `refuted`, or `unknown`). Each is checked through [`check`]; a refutation must come
//! with a counterexample the evaluator confirms, and no verdict may be a verifier bug.
//! Name a new file after what it catches.

use std::path::Path;

use std::time::{Duration, Instant};

use verify::{check_equivalent, Limits, Verdict};

/// Generous, so that a loaded machine does not turn a proof into Unknown("timeout"): these
/// tests are about verdicts, not speed (the run prints each pair's time).
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Proven,
    Refuted,
    Unknown,
}

/// Checks `candidate_text` against `recorded_text` and returns an error if the verdict is
/// not of the `expected` kind (or is a verifier bug, or a refutation that does not hold).
fn check(recorded_text: &str, candidate_text: &str, expected: Kind) -> Result<Verdict, String> {
    let recorded = ir::text::parse(recorded_text).map_err(|e| format!("recorded: {e}"))?;
    let candidate = ir::text::parse(candidate_text).map_err(|e| format!("candidate: {e}"))?;
    let verdict = check_equivalent(
        &recorded,
        &candidate,
        &Limits {
            timeout: TEST_TIMEOUT,
        },
    );
    let kind = match &verdict {
        Verdict::Proven => Kind::Proven,
        Verdict::Refuted(cex) => {
            // The crate has replayed it already; replay again so the test does not trust
            // the crate under test.
            let a = ir::eval::eval(&recorded, cex.entry.clone()).map_err(|e| e.to_string())?;
            let b = ir::eval::eval(&candidate, cex.entry.clone()).map_err(|e| e.to_string())?;
            if a != cex.recorded || b != cex.candidate || a == b {
                return Err(format!("counterexample does not hold: {verdict}"));
            }
            Kind::Refuted
        }
        Verdict::Unknown(why) => {
            if why.contains("verifier bug") {
                return Err(format!("{verdict}"));
            }
            Kind::Unknown
        }
    };
    if kind == expected {
        Ok(verdict)
    } else {
        Err(format!("expected {expected:?}, got {verdict}"))
    }
}

fn split(text: &str) -> Result<(Kind, &str, &str), String> {
    let first = text.lines().next().unwrap_or("");
    let expected = match first.trim().strip_prefix(";; expect:").map(str::trim) {
        Some("proven") => Kind::Proven,
        Some("refuted") => Kind::Refuted,
        Some("unknown") => Kind::Unknown,
        _ => return Err("first line must be `;; expect: proven|refuted|unknown`".into()),
    };
    let at = text
        .find("\n---\n")
        .ok_or("no `---` line between the two traces")?;
    Ok((expected, &text[..at], &text[at + 5..]))
}

#[test]
fn pairs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pairs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "only {} pairs", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let start = Instant::now();
        let result = split(&text).and_then(|(kind, a, b)| check(a, b, kind));
        let ms = start.elapsed().as_millis();
        match result {
            Ok(verdict) => println!("ok   {name} ({ms} ms): {verdict}"),
            Err(e) => {
                println!("FAIL {name}: {e}");
                failures.push(name);
            }
        }
    }
    assert!(failures.is_empty(), "failing pairs: {failures:?}");
}
