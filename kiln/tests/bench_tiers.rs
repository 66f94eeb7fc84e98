//! `kiln bench --tiers` end to end: the built executable benches one small example on
//! every tier and prints every column, ratios, the steady-state table and issue 5's bars.

use std::path::Path;
use std::process::{Command, Stdio};

/// Every engine column of the tables, in order.
const ENGINE_COLUMNS: [&str; 7] = [
    "kiln",
    "kiln-live",
    "kiln-live-winch",
    "kiln-cache",
    "kiln-cache-winch",
    "wasmtime",
    "wasmi",
];

/// The start of each of issue 5's bar lines.
const BAR_LINES: [&str; 3] = [
    "bar: kiln-cache at least 5.0x faster than kiln's interpreter (geometric mean): ",
    "bar: kiln-cache within 2.0x of wasmtime whole-module (geometric mean): ",
    "bar: kiln-cache never slower than kiln-live on any program (same compiler): ",
];

/// A bar's verdict while the cache columns are empty.
const NOT_MEASURED: &str = "NOT MEASURED";

#[test]
fn tiers_bench_prints_every_engine_ratios_and_the_bars() {
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["bench", "--tiers", "--runs", "1", "--scale", "1", "sieve"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .stdin(Stdio::null())
        .output()
        .expect("kiln runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!("--- stdout:\n{stdout}\n--- stderr:\n{stderr}");
    assert_eq!(output.status.code(), Some(0), "{context}");

    // Both ratio tables and the peak-RSS table have a column per engine, in order.
    let header = format!("| program | {} |", ENGINE_COLUMNS.join(" | "));
    assert_eq!(stdout.matches(&header).count(), 3, "{context}");

    // sieve's row in the speedup table: the interpreter is 1.00x against itself, and every
    // other cell is a ratio, except that the cache columns are n/a until kiln can load a
    // cache library (both together).
    let speedups = table_row(&stdout, "Speedup over kiln's interpreter", "| sieve |");
    assert_eq!(speedups.len(), ENGINE_COLUMNS.len(), "{context}");
    assert_eq!(speedups[0], "1.00x", "{context}");
    let cache_measured = is_ratio(&speedups[3]);
    for (engine, cell) in ENGINE_COLUMNS.iter().zip(&speedups) {
        let expect_ratio = cache_measured || !engine.starts_with("kiln-cache");
        assert!(
            if expect_ratio {
                is_ratio(cell)
            } else {
                cell == "n/a"
            },
            "{engine}: `{cell}`\n{context}"
        );
    }
    let vs_wasmtime = table_row(&stdout, "Engine time ÷ wasmtime's", "| sieve |");
    assert_eq!(
        vs_wasmtime[5], "1.00x",
        "wasmtime against itself\n{context}"
    );
    assert!(
        table_row(&stdout, "Engine time ÷ wasmtime's", "| geometric mean |")
            .iter()
            .all(|c| is_ratio(c) || c == "n/a"),
        "{context}"
    );

    // Steady state: a ratio per tiered engine (n/a when one run at scales 1 and 2 cannot
    // resolve the slope), then a signed share per engine.
    let steady = table_row(&stdout, "Steady state", "| sieve |");
    assert_eq!(steady.len(), 8, "{context}");
    assert!(
        steady[..4].iter().all(|c| is_ratio(c) || c == "n/a"),
        "{context}"
    );
    assert!(
        steady[4..].iter().all(|c| c.ends_with('%') || c == "n/a"),
        "{context}"
    );

    // The bars: PASS or FAIL with the figure once the cache is measured, NOT MEASURED
    // before; never missing.
    for bar in BAR_LINES {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(bar))
            .unwrap_or_else(|| panic!("no bar line `{bar}`\n{context}"));
        let verdict = &line[bar.len()..];
        let decided = verdict.contains("PASS") || verdict.contains("FAIL");
        assert_eq!(
            decided, cache_measured,
            "`{line}`: the verdict does not fit the cache columns\n{context}"
        );
        assert!(
            decided || verdict.starts_with(NOT_MEASURED),
            "`{line}`\n{context}"
        );
    }
}

/// The cells of the first row starting with `row` after the line starting with `title`.
fn table_row(stdout: &str, title: &str, row: &str) -> Vec<String> {
    let after = &stdout[stdout
        .find(title)
        .unwrap_or_else(|| panic!("no `{title}` in\n{stdout}"))..];
    let line = after
        .lines()
        .find(|l| l.starts_with(row))
        .unwrap_or_else(|| panic!("no row `{row}` after `{title}` in\n{stdout}"));
    line.trim_matches('|')
        .split('|')
        .skip(1)
        .map(|c| c.trim().to_string())
        .collect()
}

/// `1.23x`: a positive ratio with two decimals.
fn is_ratio(cell: &str) -> bool {
    cell.strip_suffix('x')
        .and_then(|n| n.parse::<f64>().ok())
        .is_some_and(|v| v > 0.0 && cell.split('.').nth(1).is_some_and(|d| d.len() == 3))
}
