//! Drop-a-file tests: every `tests/traces/*.trace` is parsed, printed, encoded, decoded,
//! canonicalized and hashed. The invariants are asserted here; what the files turn into
//! (the printed and canonical forms, the hash and the binary form) is compared with the
//! `.out` file beside each, which `KILN_BLESS=1 cargo test -p ir --test golden` rewrites.
//! The hashes and encodings in the `.out` files pin the binary layout and the operator
//! codes: a change to either shows up as a diff here.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ir::binary::{decode, encode};
use ir::hash::{canonicalize, content_hash};
use ir::text::{parse, parse_with_provenance, print_with_provenance};

const BLESS_VAR: &str = "KILN_BLESS";

#[test]
fn golden_traces() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/traces");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/traces exists")
        .map(|e| e.expect("readable directory").path())
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 12,
        "expected at least 12 golden traces, found {}",
        files.len()
    );

    let bless = std::env::var_os(BLESS_VAR).is_some();
    let mut failures = Vec::new();
    for file in &files {
        let input = std::fs::read_to_string(file).expect("readable trace");
        let actual = check(&input).unwrap_or_else(|e| format!("ERROR: {e}\n"));
        let expected_path = file.with_extension("out");
        if bless {
            std::fs::write(&expected_path, &actual).expect("writable .out file");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{}: output differs from {}\n--- expected\n{expected}--- actual\n{actual}",
                file.display(),
                expected_path.display()
            )),
            Err(_) => failures.push(format!(
                "{}: no {} (run with {BLESS_VAR}=1)",
                file.display(),
                expected_path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden traces failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// Checks the invariants on one trace text and renders what the `.out` file holds.
fn check(input: &str) -> Result<String, String> {
    let (trace, provenance) = parse_with_provenance(input).map_err(|e| e.to_string())?;
    let printed = print_with_provenance(&trace, provenance.as_ref());

    // print → parse is the identity, and the printed form is a fixpoint.
    let (reparsed, reprovenance) =
        parse_with_provenance(&printed).map_err(|e| format!("printed form: {e}"))?;
    assert_eq!(
        reparsed, trace,
        "print → parse changed the trace:\n{printed}"
    );
    assert_eq!(
        reprovenance, provenance,
        "print → parse changed the provenance"
    );
    assert_eq!(
        print_with_provenance(&reparsed, reprovenance.as_ref()),
        printed
    );
    // Without provenance the header still carries `locals=`, and the trace is the same.
    assert_eq!(parse(&trace.to_string()).as_ref(), Ok(&trace));

    // decode(encode(t)) = t.
    let blob = encode(&trace);
    assert_eq!(
        decode(&blob).as_ref(),
        Ok(&trace),
        "decode(encode) changed the trace"
    );

    // The canonical form is a fixpoint with the same hash.
    let canonical = canonicalize(&trace);
    assert_eq!(
        canonicalize(&canonical),
        canonical,
        "canonicalize is not idempotent"
    );
    let hash = content_hash(&trace);
    assert_eq!(content_hash(&canonical), hash);
    let canonical_blob = encode(&canonical);

    let mut out = String::new();
    writeln!(out, ";; printed").unwrap();
    out.push_str(&printed);
    writeln!(out, ";; canonical").unwrap();
    if canonical == trace {
        writeln!(out, ";; (the same)").unwrap();
    } else {
        out.push_str(&canonical.to_string());
    }
    writeln!(out, ";; hash\n{hash}").unwrap();
    writeln!(
        out,
        ";; binary, canonical form ({} bytes)",
        canonical_blob.len()
    )
    .unwrap();
    for chunk in canonical_blob.chunks(32) {
        let line: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(out, "{}", line.join(" ")).unwrap();
    }
    Ok(out)
}
