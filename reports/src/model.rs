//! What a report says, computed from a corpus and its results store: per trace its
//! hotness and savings, the patterns ranked, savings by rule family, time per stage, and
//! the comparison with wasm-opt. Renderers (`markdown.rs`, `json.rs`, `html.rs`) only
//! format this.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use corpus::{Corpus, TraceHash, Verdict};
use emit::GuestInfo;
use rayon::prelude::*;

use crate::patterns::{self, Replay, Rewrite};
use crate::wasm_opt::{self, Comparison};
use crate::ReportError;

/// One trace with a result.
#[derive(Debug, Clone)]
pub struct TraceRow {
    pub hash: TraceHash,
    /// The apps (file names as recorded) the trace was recorded from.
    pub apps: Vec<String>,
    /// SHA-256 of the modules it was recorded from.
    pub module_hashes: Vec<String>,
    /// Hits at its anchors over every recording: how hot it is.
    pub hits: u64,
    pub verdict: Verdict,
    pub reason: String,
    pub cost_before: u64,
    pub cost_after: u64,
    pub saturation: Duration,
    pub verification: Duration,
    pub recorded: ir::Trace,
    pub candidate: Option<ir::Trace>,
    /// The same trace through wasm-opt, when it could be compared.
    pub wasm_opt: Result<Comparison, String>,
}

impl TraceRow {
    /// Cost units saved per run of the trace (0 unless a proven candidate ships).
    pub fn savings(&self) -> u64 {
        if self.verdict == Verdict::Proven && self.candidate.is_some() {
            self.cost_before.saturating_sub(self.cost_after)
        } else {
            0
        }
    }

    /// Savings as a share of the recorded cost.
    pub fn savings_share(&self) -> f64 {
        if self.cost_before == 0 {
            0.0
        } else {
            self.savings() as f64 / self.cost_before as f64
        }
    }

    /// Hotness times savings: what ranks patterns and traces.
    pub fn weight(&self) -> u64 {
        self.hits.saturating_mul(self.savings())
    }
}

/// A rewrite found in one or more traces.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub rewrite: Rewrite,
    /// The traces it occurs in, hottest first.
    pub traces: Vec<TraceHash>,
    pub apps: BTreeSet<String>,
    /// Its share of the weight of the traces it occurs in: each trace's weight is split
    /// evenly among the distinct patterns it holds.
    pub weight: u64,
    /// Verdicts of the traces it occurs in, by name, with counts.
    pub verdicts: BTreeMap<&'static str, usize>,
    /// Replayed alone (term rewrites only).
    pub replay: Option<Replay>,
}

/// Savings attributed to one rule family.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilySavings {
    pub family: String,
    /// Sum of the weights of the patterns its rules took part in (a pattern's weight is
    /// split evenly among the families of its chain).
    pub weight: u64,
    pub patterns: usize,
}

/// The whole report.
#[derive(Debug, Clone)]
pub struct Report {
    pub optimizer_version: String,
    /// Hottest first.
    pub traces: Vec<TraceRow>,
    /// Heaviest first.
    pub patterns: Vec<Pattern>,
    /// Heaviest first.
    pub families: Vec<FamilySavings>,
    /// Why the wasm-opt comparison did not run at all, if it did not.
    pub wasm_opt_missing: Option<String>,
    pub wasm_opt_version: Option<String>,
}

/// The family name given to removals (dead stores, guards decided by earlier guards)
/// and rewrites no rule makes alone: lowering and guard facts do those, not rules.
pub const CONTEXT_FAMILY: &str = "guard facts and lowering";

impl Report {
    /// Reads every result of `optimizer_version` in the corpus at `dir`.
    /// `guests` describes the apps' modules by SHA-256 where they are at hand (what trace
    /// functions import for the wasm-opt comparison); for other traces it is derived
    /// from the trace.
    pub fn build(
        dir: &Path,
        optimizer_version: &str,
        guests: &HashMap<String, GuestInfo>,
    ) -> Result<Report, ReportError> {
        let corpus = Corpus::open_existing(dir).map_err(|e| ReportError::Corpus {
            dir: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let corpus_error = |e: corpus::CorpusError| ReportError::Corpus {
            dir: dir.to_path_buf(),
            message: e.to_string(),
        };
        let listing = corpus.list().map_err(corpus_error)?;
        let mut rows = Vec::new();
        for summary in &listing.traces {
            let Some(stored) = corpus
                .result(&summary.hash, optimizer_version)
                .map_err(corpus_error)?
            else {
                continue;
            };
            let trace = corpus.get(&summary.hash).map_err(corpus_error)?;
            let mut module_hashes: Vec<String> = trace
                .provenance
                .iter()
                .map(|p| p.provenance.module_hash.clone())
                .collect();
            module_hashes.sort();
            module_hashes.dedup();
            let r = stored.result;
            rows.push(TraceRow {
                hash: summary.hash,
                apps: summary.apps.clone(),
                module_hashes,
                hits: summary.total_hits,
                verdict: r.verdict,
                reason: r.reason,
                cost_before: r.cost_before,
                cost_after: r.cost_after,
                saturation: r.saturation_time,
                verification: r.verification_time,
                recorded: trace.trace,
                candidate: r.candidate,
                wasm_opt: Err(String::new()),
            });
        }
        if rows.is_empty() {
            return Err(ReportError::NoResults {
                dir: dir.to_path_buf(),
                traces: listing.traces.len(),
            });
        }
        // Hottest first; the hash breaks ties so the order never depends on the store's.
        rows.sort_by(|a, b| b.hits.cmp(&a.hits).then(a.hash.cmp(&b.hash)));

        let wasm_opt_version = wasm_opt::version();
        let wasm_opt_missing = wasm_opt_version.as_ref().err().cloned();
        if wasm_opt_missing.is_none() {
            rows.par_iter_mut().for_each(|row| {
                row.wasm_opt = wasm_opt::compare(row, guests);
            });
        } else {
            for row in &mut rows {
                row.wasm_opt = Err("wasm-opt did not run".to_string());
            }
        }

        let patterns = group_patterns(&rows);
        let families = family_savings(&patterns);
        Ok(Report {
            optimizer_version: optimizer_version.to_string(),
            traces: rows,
            patterns,
            families,
            wasm_opt_missing,
            wasm_opt_version: wasm_opt_version.ok(),
        })
    }

    /// Total saturation and verification time over the traces.
    pub fn stage_times(&self) -> [(&'static str, Duration); 2] {
        [
            ("saturation", self.traces.iter().map(|t| t.saturation).sum()),
            (
                "verification",
                self.traces.iter().map(|t| t.verification).sum(),
            ),
        ]
    }

    /// Counts of traces by verdict.
    pub fn verdicts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for t in &self.traces {
            *counts.entry(t.verdict.name()).or_default() += 1;
        }
        counts
    }

    /// Traces whose kiln cost is below, equal to, and above wasm-opt -O3's, of those
    /// compared.
    pub fn against_wasm_opt(&self) -> (usize, usize, usize) {
        let mut shares = (0, 0, 0);
        for c in self.traces.iter().filter_map(|t| t.wasm_opt.as_ref().ok()) {
            match c.kiln.cmp(&c.wasm_opt) {
                std::cmp::Ordering::Less => shares.0 += 1,
                std::cmp::Ordering::Equal => shares.1 += 1,
                std::cmp::Ordering::Greater => shares.2 += 1,
            }
        }
        shares
    }

    /// Traces where one optimizer's code is cheaper than the other's, heaviest first:
    /// `kiln_ahead` true for "kiln found, wasm-opt missed". Weight: hits times the cost
    /// difference.
    pub fn wasm_opt_differences(&self, kiln_ahead: bool) -> Vec<(&TraceRow, &Comparison, u64)> {
        let mut found: Vec<_> = self
            .traces
            .iter()
            .filter_map(|t| {
                let c = t.wasm_opt.as_ref().ok()?;
                let (better, worse) = if kiln_ahead {
                    (c.kiln, c.wasm_opt)
                } else {
                    (c.wasm_opt, c.kiln)
                };
                (better < worse).then(|| (t, c, t.hits.saturating_mul(worse - better)))
            })
            .collect();
        found.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.hash.cmp(&b.0.hash)));
        found
    }
}

/// Groups the rewrites of every improved, proven trace into patterns, heaviest first.
fn group_patterns(rows: &[TraceRow]) -> Vec<Pattern> {
    let mut by_key: BTreeMap<String, Pattern> = BTreeMap::new();
    for row in rows {
        let Some(candidate) = &row.candidate else {
            continue;
        };
        let found = patterns::rewrites(&row.recorded, candidate);
        if found.is_empty() {
            continue;
        }
        let share = row.weight() / found.len() as u64;
        for rewrite in found {
            let pattern = by_key.entry(rewrite.key()).or_insert_with(|| Pattern {
                rewrite,
                traces: Vec::new(),
                apps: BTreeSet::new(),
                weight: 0,
                verdicts: BTreeMap::new(),
                replay: None,
            });
            pattern.traces.push(row.hash);
            pattern.apps.extend(row.apps.iter().cloned());
            pattern.weight = pattern.weight.saturating_add(share);
            *pattern.verdicts.entry(row.verdict.name()).or_default() += 1;
        }
    }
    let mut patterns: Vec<Pattern> = by_key.into_values().collect();
    patterns
        .par_iter_mut()
        .for_each(|p| p.replay = patterns::replay(&p.rewrite));
    patterns.sort_by(|a, b| {
        b.weight
            .cmp(&a.weight)
            .then(b.traces.len().cmp(&a.traces.len()))
            .then(a.rewrite.key().cmp(&b.rewrite.key()))
    });
    patterns
}

fn family_savings(patterns: &[Pattern]) -> Vec<FamilySavings> {
    let mut families: BTreeMap<String, (u64, usize)> = BTreeMap::new();
    for p in patterns {
        // Rules get the credit only for a rewrite they make alone; one that needs its
        // trace's context (or is a removal) is the guard facts' and lowering's.
        let mut names: BTreeSet<String> = match &p.replay {
            Some(r) if r.verdict == "proven" => {
                r.rules.iter().map(|(_, family)| family.clone()).collect()
            }
            _ => BTreeSet::new(),
        };
        if names.is_empty() {
            names.insert(CONTEXT_FAMILY.to_string());
        }
        let share = p.weight / names.len() as u64;
        for name in names {
            let entry = families.entry(name).or_default();
            entry.0 = entry.0.saturating_add(share);
            entry.1 += 1;
        }
    }
    let mut out: Vec<FamilySavings> = families
        .into_iter()
        .map(|(family, (weight, patterns))| FamilySavings {
            family,
            weight,
            patterns,
        })
        .collect();
    out.sort_by(|a, b| b.weight.cmp(&a.weight).then(a.family.cmp(&b.family)));
    out
}
