//! Drop-a-file tests: every `golden/NAME.trace` is optimized and the result compared
//! with `golden/NAME.out` (cost, rules fired, and the candidate's text form). Run with
//! `KILN_BLESS=1` to write the `.out` files from what the code does now; review the diff.
//! Every candidate is also run against its original on edge and random inputs.

mod common;

use std::path::Path;

use saturate::{optimize, Limits};

/// Optimizes `input` and returns what the `.out` file holds for it.
fn render(input: &str) -> String {
    let trace = ir::text::parse(input).expect("the input parses");
    let out = optimize(&trace, &Limits::default());
    assert!(out.cost_after <= out.cost_before);
    assert_eq!(out.fallback, None, "lowering fell back");
    ir::validate::validate(&out.candidate).expect("the candidate is valid");
    common::same_outcomes(&trace, &out.candidate, 300, 0x5eed);
    let mut rules = out.rules_fired.clone();
    rules.sort();
    let mut text = format!(";; cost {} -> {}\n", out.cost_before, out.cost_after);
    for chunk in rules.chunks(6) {
        text += &format!(";; rules: {}\n", chunk.join(" "));
    }
    text += &out.candidate.to_string();
    // The expected text parses back to the candidate.
    assert_eq!(ir::text::parse(&text).unwrap(), out.candidate);
    text
}

/// Compares `render(input)` with `expected`; with `KILN_BLESS=1` writes it to `path`.
fn check(input: &str, expected: Option<&str>, path: &Path) -> Result<(), String> {
    let actual = render(input);
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
    assert!(files.len() >= 15, "only {} golden files", files.len());
    let mut failures = Vec::new();
    for input in &files {
        let out = input.with_extension("out");
        let expected = std::fs::read_to_string(&out).ok();
        let text = std::fs::read_to_string(input).unwrap();
        if let Err(e) = check(&text, expected.as_deref(), &out) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden file(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
