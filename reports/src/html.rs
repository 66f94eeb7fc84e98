//! The report as one self-contained HTML page: inline style and SVG plots, no script and
//! nothing fetched, so it opens offline and can be mailed or archived as one file.

use std::fmt::Write as _;

use crate::markdown::{MAX_EXCERPTS, MAX_ROWS};
use crate::model::Report;
use crate::savings_histogram;
use crate::svg::{bar_chart, escape};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;\
padding:0 1rem;color:#222}pre{background:#f4f4f4;padding:.6rem;overflow-x:auto}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;\
text-align:left}svg rect{fill:#c0562f}svg text{font-size:12px}code{font-size:90%}";

pub fn render(report: &Report) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>kiln: missed-optimization report</title><style>{STYLE}</style></head><body>\n\
         <h1>kiln: missed-optimization report</h1>\n<p>Optimizer version <code>{}</code>. \
         {} traces with results; {} ship cheaper than recorded; {} patterns.</p>\n",
        escape(&report.optimizer_version),
        report.traces.len(),
        report.traces.iter().filter(|t| t.savings() > 0).count(),
        report.patterns.len()
    );

    let _ = writeln!(o, "<h2>Distribution of savings</h2>");
    let bars: Vec<_> = savings_histogram(report)
        .into_iter()
        .map(|(bin, n)| (bin.to_string(), n as f64, format!("{n} traces")))
        .collect();
    o.push_str(&bar_chart("traces by share of cost saved", &bars));

    let _ = writeln!(
        o,
        "<h2>Savings by rule family</h2><p>Weight: hits × cost units saved.</p>"
    );
    let bars: Vec<_> = report
        .families
        .iter()
        .map(|f| (f.family.clone(), f.weight as f64, f.weight.to_string()))
        .collect();
    o.push_str(&bar_chart("weight saved by rule family", &bars));

    let _ = writeln!(o, "<h2>Time per stage</h2>");
    let bars: Vec<_> = report
        .stage_times()
        .iter()
        .map(|(stage, d)| {
            let ms = d.as_secs_f64() * 1000.0;
            (stage.to_string(), ms, format!("{ms:.1} ms"))
        })
        .collect();
    o.push_str(&bar_chart("total time per stage", &bars));

    let _ = writeln!(o, "<h2>Patterns, ranked by hits × savings</h2>");
    if report.patterns.is_empty() {
        let _ = writeln!(
            o,
            "<p>No trace ships cheaper than recorded: no patterns.</p>"
        );
    }
    for (rank, p) in report.patterns.iter().take(MAX_ROWS).enumerate() {
        let rules = p.replay.as_ref().map_or_else(
            || "made by guard facts or lowering, not by a rule".to_string(),
            |r| {
                let chain: Vec<String> = r
                    .rules
                    .iter()
                    .map(|(rule, family)| {
                        format!("<code>{}</code> ({})", escape(rule), escape(family))
                    })
                    .collect();
                format!(
                    "alone: {}; rules: {}",
                    escape(&r.verdict),
                    if chain.is_empty() {
                        "none".to_string()
                    } else {
                        chain.join(" → ")
                    }
                )
            },
        );
        let verdicts: Vec<String> = p.verdicts.iter().map(|(v, n)| format!("{n} {v}")).collect();
        let apps: Vec<&str> = p.apps.iter().map(String::as_str).collect();
        let _ = writeln!(
            o,
            "<h3>{}. weight {}, {} occurrence(s)</h3><pre>;; before\n{}\n;; after\n{}</pre>\
             <p>apps: {}; traces: {}; {rules}</p>",
            rank + 1,
            p.weight,
            p.traces.len(),
            escape(&p.rewrite.before_wat()),
            escape(&p.rewrite.after_wat()),
            escape(&apps.join(", ")),
            verdicts.join(", "),
        );
    }

    let _ = writeln!(o, "<h2>Against wasm-opt -O3</h2>");
    if let Some(why) = &report.wasm_opt_missing {
        let _ = writeln!(o, "<p>Not compared: {}.</p>", escape(why));
    } else {
        let (below, equal, above) = report.against_wasm_opt();
        let _ = writeln!(
            o,
            "<p>{}: kiln's code costs less on {below} traces, the same on {equal}, more on {above}.</p>",
            escape(report.wasm_opt_version.as_deref().unwrap_or("wasm-opt"))
        );
        for (kiln_ahead, title) in [
            (true, "kiln found, wasm-opt missed"),
            (false, "wasm-opt found, kiln missed"),
        ] {
            let rows = report.wasm_opt_differences(kiln_ahead);
            let _ = writeln!(o, "<h3>{title}</h3>");
            if rows.is_empty() {
                let _ = writeln!(o, "<p>None.</p>");
                continue;
            }
            let _ = writeln!(o, "<table><tr><th>trace</th><th>apps</th><th>hits</th><th>naive</th><th>kiln</th><th>wasm-opt</th><th>weight</th></tr>");
            for (t, c, weight) in rows.iter().take(MAX_ROWS) {
                let _ = writeln!(
                    o,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{weight}</td></tr>",
                    &t.hash.to_string()[..16],
                    escape(&t.apps.join(", ")),
                    t.hits,
                    c.naive,
                    c.kiln,
                    c.wasm_opt
                );
            }
            let _ = writeln!(o, "</table>");
            if !kiln_ahead {
                for (t, c, _) in rows.iter().take(MAX_EXCERPTS) {
                    let _ = writeln!(
                        o,
                        "<p>wasm-opt's code for <code>{}</code>:</p><pre>{}</pre>",
                        &t.hash.to_string()[..16],
                        escape(&c.wasm_opt_excerpt)
                    );
                }
            }
        }
    }
    o.push_str("</body></html>\n");
    o
}
