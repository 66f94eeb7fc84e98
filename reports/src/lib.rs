//! Reports for compiler engineers (issue 6): what the optimizer found across a corpus,
//! as Markdown, JSON and one self-contained HTML page with plots.
//!
//! - `model.rs` reads the results store into a [`Report`]: per trace its hotness (hits)
//!   and savings, patterns ranked by hits × savings, savings by rule family, time per
//!   stage, and the comparison with wasm-opt.
//! - `term.rs` and `patterns.rs` find the rewrites: each trace against its candidate,
//!   root by root, the smallest rewritten subterm abstracted into a pattern; each
//!   pattern replayed alone (its rule chain and its own proof).
//! - `wasm_opt.rs` and `wasm_cost.rs`: Binaryen's `wasm-opt -O3` on each trace's naive
//!   function, and one static cost for both optimizers' code.
//! - `markdown.rs`, `json.rs`, `html.rs` (with `svg.rs`) only format a [`Report`].
//!
//! Outputs hold nothing that changes from run to run on the same store (no clock, no
//! paths of temporary files), so they can be compared and kept as goldens.

use std::fmt;
use std::path::{Path, PathBuf};

pub mod html;
pub mod json;
pub mod markdown;
pub mod model;
pub mod patterns;
mod svg;
pub mod term;
pub mod wasm_cost;
pub mod wasm_opt;

pub use model::Report;

/// The files a report is written as, in `write`'s output directory.
pub const FILES: [&str; 3] = ["report.md", "report.json", "report.html"];

/// Why a report could not be made.
#[derive(Debug)]
pub enum ReportError {
    /// The corpus cannot be opened or read.
    Corpus { dir: PathBuf, message: String },
    /// The corpus has no result by this optimizer: `kiln optimize` has not run on it.
    NoResults { dir: PathBuf, traces: usize },
    /// An output file cannot be written.
    Write { path: PathBuf, message: String },
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::Corpus { dir, message } => {
                write!(f, "corpus {}: {message}", dir.display())
            }
            ReportError::NoResults { dir, traces } => write!(
                f,
                "corpus {}: none of its {traces} traces has a result by this optimizer; \
                 run `kiln optimize --corpus {}` first",
                dir.display(),
                dir.display()
            ),
            ReportError::Write { path, message } => {
                write!(f, "{}: cannot write: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for ReportError {}

/// Writes the report's three files into `dir` (created if absent). Each file is written
/// beside its final name and renamed into place, so a failure leaves no partial file.
pub fn write(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let write_error = |path: &Path, e: std::io::Error| ReportError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    let contents = [
        markdown::render(report),
        json::render(report),
        html::render(report),
    ];
    let mut written = Vec::new();
    for (name, text) in FILES.iter().zip(contents) {
        let path = dir.join(name);
        let temp = dir.join(format!(".{name}.tmp{}", std::process::id()));
        if let Err(e) = std::fs::write(&temp, text).and_then(|()| std::fs::rename(&temp, &path)) {
            let _ = std::fs::remove_file(&temp);
            return Err(write_error(&path, e));
        }
        written.push(path);
    }
    Ok(written)
}

/// The bins of the savings distribution: upper bounds of the share saved, in percent.
/// Zero gets a bin of its own: most traces are already as cheap as the rules make them.
pub const SAVINGS_BINS: [(f64, &str); 6] = [
    (0.0, "0%"),
    (5.0, "up to 5%"),
    (10.0, "5–10%"),
    (20.0, "10–20%"),
    (40.0, "20–40%"),
    (100.0, "over 40%"),
];

/// How many traces fall in each of [`SAVINGS_BINS`].
pub fn savings_histogram(report: &Report) -> Vec<(&'static str, usize)> {
    let mut counts: Vec<(&'static str, usize)> =
        SAVINGS_BINS.iter().map(|&(_, name)| (name, 0)).collect();
    for t in &report.traces {
        let percent = t.savings_share() * 100.0;
        let bin = SAVINGS_BINS
            .iter()
            .position(|&(upper, _)| percent <= upper)
            .unwrap_or(SAVINGS_BINS.len() - 1);
        counts[bin].1 += 1;
    }
    counts
}
