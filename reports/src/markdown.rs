//! The report as Markdown: what a compiler engineer reads first.

use std::fmt::Write as _;

use crate::model::{Pattern, Report};
use crate::savings_histogram;

/// Rows shown per ranked table: the head of the ranking is what gets acted on; the JSON
/// holds every row.
pub const MAX_ROWS: usize = 20;

/// wasm-opt excerpts shown in "wasm-opt found, kiln missed": the top few are the to-do
/// list; more would drown the report.
pub const MAX_EXCERPTS: usize = 3;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(o, "# kiln: missed-optimization report\n");
    let _ = writeln!(o, "Optimizer version `{}`.\n", report.optimizer_version);
    summary(o, report);
    let _ = writeln!(o, "## Savings\n");
    let _ = writeln!(o, "Share of each trace's cost the shipped code saves.\n");
    let _ = writeln!(o, "| saved | traces |\n|---|---|");
    for (bin, count) in savings_histogram(report) {
        let _ = writeln!(o, "| {bin} | {count} |");
    }
    let _ = writeln!(o, "\n## Time per stage\n");
    let _ = writeln!(o, "| stage | total | mean per trace |\n|---|---|---|");
    let n = report.traces.len().max(1) as u32;
    for (stage, total) in report.stage_times() {
        let _ = writeln!(
            o,
            "| {stage} | {:.1} ms | {:.2} ms |",
            ms(total),
            ms(total / n)
        );
    }
    let _ = writeln!(o, "\n## Savings by rule family\n");
    let _ = writeln!(
        o,
        "Weight is hits × cost units saved; a pattern's weight is split evenly among the \
         families of the rules that make it alone.\n"
    );
    let _ = writeln!(o, "| family | weight | patterns |\n|---|---|---|");
    for f in &report.families {
        let _ = writeln!(o, "| {} | {} | {} |", f.family, f.weight, f.patterns);
    }
    patterns(o, report);
    against_wasm_opt(o, report);
    out
}

fn summary(o: &mut String, report: &Report) {
    let verdicts = report.verdicts();
    let improved = report.traces.iter().filter(|t| t.savings() > 0).count();
    let counts: Vec<String> = verdicts.iter().map(|(v, n)| format!("{n} {v}")).collect();
    let _ = writeln!(
        o,
        "{} traces with results ({}); {improved} ship cheaper than recorded; {} patterns.\n",
        report.traces.len(),
        counts.join(", "),
        report.patterns.len()
    );
}

fn patterns(o: &mut String, report: &Report) {
    let _ = writeln!(o, "\n## Patterns, ranked by hits × savings\n");
    if report.patterns.is_empty() {
        let _ = writeln!(o, "No trace ships cheaper than recorded: no patterns.");
        return;
    }
    for (rank, p) in report.patterns.iter().take(MAX_ROWS).enumerate() {
        pattern(o, rank + 1, p);
    }
    if report.patterns.len() > MAX_ROWS {
        let _ = writeln!(
            o,
            "{} more patterns in report.json.\n",
            report.patterns.len() - MAX_ROWS
        );
    }
}

fn pattern(o: &mut String, rank: usize, p: &Pattern) {
    let _ = writeln!(
        o,
        "### {rank}. weight {}, {} occurrence{}\n",
        p.weight,
        p.traces.len(),
        if p.traces.len() == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        o,
        "```wat\n;; before\n{}\n;; after\n{}\n```\n",
        p.rewrite.before_wat(),
        p.rewrite.after_wat()
    );
    let apps: Vec<&str> = p.apps.iter().map(String::as_str).collect();
    let _ = writeln!(o, "- apps: {}", apps.join(", "));
    let verdicts: Vec<String> = p.verdicts.iter().map(|(v, n)| format!("{n} {v}")).collect();
    let _ = writeln!(o, "- traces: {}", verdicts.join(", "));
    match &p.replay {
        Some(r) => {
            let rules: Vec<String> = r
                .rules
                .iter()
                .map(|(rule, f)| format!("`{rule}` ({f})"))
                .collect();
            let _ = writeln!(o, "- alone: {}", r.verdict);
            let _ = writeln!(
                o,
                "- rules, in the order they fire on it alone: {}",
                if rules.is_empty() {
                    "none".to_string()
                } else {
                    rules.join(" → ")
                }
            );
        }
        None => {
            let _ = writeln!(o, "- made by guard facts or lowering, not by a rule");
        }
    }
    let first: Vec<String> = p
        .traces
        .iter()
        .take(3)
        .map(|h| format!("`{}`", short(h)))
        .collect();
    let _ = writeln!(o, "- in traces {}\n", first.join(", "));
}

fn against_wasm_opt(o: &mut String, report: &Report) {
    let _ = writeln!(o, "## Against wasm-opt -O3\n");
    if let Some(why) = &report.wasm_opt_missing {
        let _ = writeln!(o, "Not compared: {why}.");
        return;
    }
    let (below, equal, above) = report.against_wasm_opt();
    let failed = report.traces.iter().filter(|t| t.wasm_opt.is_err()).count();
    let compared = below + equal + above;
    let pct = |n: usize| 100.0 * n as f64 / compared.max(1) as f64;
    let _ = writeln!(
        o,
        "{} (frame memory folded into memory 0). Both optimizers' code costed by \
         saturate's measured model read off wasm instructions. Of {compared} traces \
         compared, kiln's code costs less than wasm-opt's on {below} ({:.0}%), the same \
         on {equal} ({:.0}%), more on {above} ({:.0}%){}.\n",
        report.wasm_opt_version.as_deref().unwrap_or("wasm-opt"),
        pct(below),
        pct(equal),
        pct(above),
        if failed > 0 {
            format!("; {failed} could not be compared (see report.json)")
        } else {
            String::new()
        }
    );
    for (kiln_ahead, title) in [
        (true, "kiln found, wasm-opt missed"),
        (false, "wasm-opt found, kiln missed"),
    ] {
        let rows = report.wasm_opt_differences(kiln_ahead);
        let _ = writeln!(o, "### {title}\n");
        if rows.is_empty() {
            let _ = writeln!(o, "None.\n");
            continue;
        }
        let _ = writeln!(o, "| trace | apps | hits | naive | kiln | wasm-opt | weight |\n|---|---|---|---|---|---|---|");
        for (t, c, weight) in rows.iter().take(MAX_ROWS) {
            let _ = writeln!(
                o,
                "| `{}` | {} | {} | {} | {} | {} | {weight} |",
                short(&t.hash),
                t.apps.join(", "),
                t.hits,
                c.naive,
                c.kiln,
                c.wasm_opt
            );
        }
        let _ = writeln!(o);
        if !kiln_ahead {
            for (t, c, _) in rows.iter().take(MAX_EXCERPTS) {
                let _ = writeln!(
                    o,
                    "wasm-opt's code for `{}`:\n\n```wat\n{}\n```\n",
                    short(&t.hash),
                    c.wasm_opt_excerpt
                );
            }
        }
    }
}

fn short(hash: &corpus::TraceHash) -> String {
    hash.to_string()[..16].to_string()
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
