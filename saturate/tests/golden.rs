//! Drop-a-file tests: every `golden/NAME.trace` is optimized and the result compared
//! with `golden/NAME.out` (cost, rules fired, and the candidate's text form). Run with
//! `KILN_BLESS=1` to write the `.out` files from what the code does now; review the diff.
//!
//! Every candidate is run against its original on edge and random inputs, and every
//! candidate that differs from its recorded trace is proven equivalent to it by z3
//! (`verify::check_equivalent`): a `Refuted` or `Unknown` verdict fails the test, naming
//! the file, blessing or not. Each `.trace` starts with `;;` lines saying what it tests
//! and what the optimizer should (or must not) do; the `.out` is what it does today.

mod common;

use std::path::Path;
use std::time::Duration;

use saturate::{optimize, Limits};
use verify::{check_equivalent, Verdict};

/// The solver's budget per golden candidate. Far above what these small traces need
/// (milliseconds), so that a machine busy with other builds does not turn a proof into
/// `Unknown("timeout")` and a flaky failure.
const PROOF_TIMEOUT: Duration = Duration::from_secs(60);

/// Optimizes `input` and returns what the `.out` file holds for it, or why the candidate
/// could not be proven equivalent to the recorded trace.
fn render(input: &str) -> Result<String, String> {
    let trace = ir::text::parse(input).expect("the input parses");
    let out = optimize(&trace, &Limits::default());
    assert!(out.cost_after <= out.cost_before);
    assert_eq!(out.fallback, None, "lowering fell back");
    ir::validate::validate(&out.candidate).expect("the candidate is valid");
    common::same_outcomes(&trace, &out.candidate, 300, 0x5eed);
    if out.candidate != trace {
        let limits = verify::Limits {
            timeout: PROOF_TIMEOUT,
        };
        match check_equivalent(&trace, &out.candidate, &limits) {
            Verdict::Proven => {}
            verdict @ (Verdict::Refuted(_) | Verdict::Unknown(_)) => {
                return Err(format!(
                    "the candidate is not proven equivalent ({verdict})\nrecorded:\n{trace}candidate:\n{}",
                    out.candidate
                ))
            }
        }
    }
    let mut rules = out.rules_fired.clone();
    rules.sort();
    let mut text = format!(";; cost {} -> {}\n", out.cost_before, out.cost_after);
    for chunk in rules.chunks(6) {
        text += &format!(";; rules: {}\n", chunk.join(" "));
    }
    text += &out.candidate.to_string();
    // The expected text parses back to the candidate.
    assert_eq!(ir::text::parse(&text).unwrap(), out.candidate);
    Ok(text)
}

/// Compares `render(input)` with `expected`; with `KILN_BLESS=1` writes it to `path`.
fn check(input: &str, expected: Option<&str>, path: &Path) -> Result<(), String> {
    let actual = render(input).map_err(|e| format!("{}: {e}", path.display()))?;
    if std::env::var_os("KILN_BLESS").is_some() {
        std::fs::write(path, &actual).unwrap();
        return Ok(());
    }
    match expected {
        Some(e) if e == actual => Ok(()),
        Some(e) => Err(format!(
            "{}: expected\n{e}\nactual\n{actual}",
            path.display()
        )),
        None => Err(format!(
            "{}: missing (run with KILN_BLESS=1)\nactual\n{actual}",
            path.display()
        )),
    }
}

#[test]
fn golden() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .collect();
    files.sort();
    assert!(files.len() >= 60, "only {} golden files", files.len());
    let mut failures = Vec::new();
    for input in &files {
        let out = input.with_extension("out");
        let expected = std::fs::read_to_string(&out).ok();
        let text = std::fs::read_to_string(input).unwrap();
        // A panic (a differing run, an invalid candidate) is reported with its file too.
        let result = std::panic::catch_unwind(|| check(&text, expected.as_deref(), &out))
            .unwrap_or_else(|panic| {
                let why = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                Err(format!("{}: {why}", input.display()))
            });
        if let Err(e) = result {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden file(s) fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
