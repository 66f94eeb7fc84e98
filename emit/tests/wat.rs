//! Drop-a-file tests of the emitted code: each `tests/wat/*.trace` is emitted into a
//! module of its own and printed; the text must equal the `.wat` beside it. Regenerate
//! on purpose with `KILN_BLESS=1`.

mod common;

use std::path::{Path, PathBuf};

use common::guest_for;
use emit::{EmitKind, ModuleBuilder};

/// The emitted module of the trace in `input`, as text.
fn emitted_wat(input: &str) -> String {
    let trace = ir::text::parse(input).expect("the trace parses");
    let guest = guest_for(&trace, 1, Some(4));
    let mut builder = ModuleBuilder::new(guest).expect("guest limits");
    builder.add(&trace, EmitKind::Naive).expect("emits");
    let bytes = builder.finish().expect("finishes");
    emit::validate(&bytes).expect("validates");
    emit::wat(&bytes).expect("prints")
}

/// Compares the emission of `input` with the golden file `expected` (or writes it when
/// blessing).
fn check(input: &Path, expected: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let got = emitted_wat(&text);
    if std::env::var_os("KILN_BLESS").is_some() {
        std::fs::write(expected, &got).map_err(|e| format!("{}: {e}", expected.display()))?;
        return Ok(());
    }
    let want = std::fs::read_to_string(expected).unwrap_or_default();
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{} differs from {} (bless with KILN_BLESS=1):\n{got}",
            input.display(),
            expected.display()
        ))
    }
}

#[test]
fn emitted_wat_matches_the_golden_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/wat");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/wat")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no golden inputs in {}", dir.display());
    let failures: Vec<String> = inputs
        .iter()
        .filter_map(|input| check(input, &input.with_extension("wat")).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
