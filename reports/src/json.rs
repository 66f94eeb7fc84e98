//! The report as JSON, for tools. The shape (every key always present; `null` where a
//! value does not apply):
//!
//! ```text
//! { "optimizer_version": str,
//!   "verdicts": { verdict: count },
//!   "savings_histogram": [ { "bin": str, "traces": n } ],
//!   "stage_times_ms": { "saturation": x, "verification": x },
//!   "families": [ { "family": str, "weight": n, "patterns": n } ],
//!   "patterns": [ { "rank": n, "before": wat, "after": wat, "weight": n,
//!                   "occurrences": n, "apps": [str], "trace_verdicts": { verdict: n },
//!                   "alone": str|null, "rules": [ { "rule": str, "family": str } ],
//!                   "traces": [hash] } ],
//!   "wasm_opt": { "version": str|null, "missing": str|null,
//!                 "kiln_below": n, "equal": n, "kiln_above": n },
//!   "traces": [ { "hash": hash, "apps": [str], "hits": n, "verdict": str, "reason": str,
//!                 "cost_before": n, "cost_after": n, "savings": n, "weight": n,
//!                 "wasm_opt": { "naive": n, "kiln": n, "wasm_opt": n } | { "error": str } } ] }
//! ```

use std::fmt::Write as _;

use crate::model::Report;
use crate::savings_histogram;

pub fn render(report: &Report) -> String {
    let mut o = String::new();
    o.push_str("{\n");
    let _ = writeln!(
        o,
        "  \"optimizer_version\": {},",
        string(&report.optimizer_version)
    );
    let verdicts: Vec<String> = report
        .verdicts()
        .iter()
        .map(|(v, n)| format!("{}: {n}", string(v)))
        .collect();
    let _ = writeln!(o, "  \"verdicts\": {{{}}},", verdicts.join(", "));
    let bins: Vec<String> = savings_histogram(report)
        .iter()
        .map(|(bin, n)| format!("{{\"bin\": {}, \"traces\": {n}}}", string(bin)))
        .collect();
    let _ = writeln!(o, "  \"savings_histogram\": [{}],", bins.join(", "));
    let times: Vec<String> = report
        .stage_times()
        .iter()
        .map(|(stage, d)| format!("{}: {:.3}", string(stage), d.as_secs_f64() * 1000.0))
        .collect();
    let _ = writeln!(o, "  \"stage_times_ms\": {{{}}},", times.join(", "));
    let families: Vec<String> = report
        .families
        .iter()
        .map(|f| {
            format!(
                "{{\"family\": {}, \"weight\": {}, \"patterns\": {}}}",
                string(&f.family),
                f.weight,
                f.patterns
            )
        })
        .collect();
    let _ = writeln!(o, "  \"families\": [{}],", families.join(", "));

    let patterns: Vec<String> = report
        .patterns
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let rules: Vec<String> = p
                .replay
                .iter()
                .flat_map(|r| &r.rules)
                .map(|(rule, family)| {
                    format!(
                        "{{\"rule\": {}, \"family\": {}}}",
                        string(rule),
                        string(family)
                    )
                })
                .collect();
            let verdicts: Vec<String> = p
                .verdicts
                .iter()
                .map(|(v, n)| format!("{}: {n}", string(v)))
                .collect();
            format!(
                "    {{\"rank\": {}, \"before\": {}, \"after\": {}, \"weight\": {}, \
                 \"occurrences\": {}, \"apps\": {}, \"trace_verdicts\": {{{}}}, \
                 \"alone\": {}, \"rules\": [{}], \"traces\": {}}}",
                i + 1,
                string(&p.rewrite.before_wat()),
                string(&p.rewrite.after_wat()),
                p.weight,
                p.traces.len(),
                strings(p.apps.iter()),
                verdicts.join(", "),
                p.replay
                    .as_ref()
                    .map_or("null".to_string(), |r| string(&r.verdict)),
                rules.join(", "),
                strings(p.traces.iter().map(|h| h.to_string())),
            )
        })
        .collect();
    let _ = writeln!(o, "  \"patterns\": [\n{}\n  ],", patterns.join(",\n"));

    let (below, equal, above) = report.against_wasm_opt();
    let _ = writeln!(
        o,
        "  \"wasm_opt\": {{\"version\": {}, \"missing\": {}, \"kiln_below\": {below}, \
         \"equal\": {equal}, \"kiln_above\": {above}}},",
        report
            .wasm_opt_version
            .as_deref()
            .map_or("null".to_string(), string),
        report
            .wasm_opt_missing
            .as_deref()
            .map_or("null".to_string(), string),
    );

    let traces: Vec<String> = report
        .traces
        .iter()
        .map(|t| {
            let wasm_opt = match &t.wasm_opt {
                Ok(c) => format!(
                    "{{\"naive\": {}, \"kiln\": {}, \"wasm_opt\": {}}}",
                    c.naive, c.kiln, c.wasm_opt
                ),
                Err(e) => format!("{{\"error\": {}}}", string(e)),
            };
            format!(
                "    {{\"hash\": \"{}\", \"apps\": {}, \"hits\": {}, \"verdict\": {}, \
                 \"reason\": {}, \"cost_before\": {}, \"cost_after\": {}, \"savings\": {}, \
                 \"weight\": {}, \"wasm_opt\": {wasm_opt}}}",
                t.hash,
                strings(t.apps.iter()),
                t.hits,
                string(t.verdict.name()),
                string(&t.reason),
                t.cost_before,
                t.cost_after,
                t.savings(),
                t.weight(),
            )
        })
        .collect();
    let _ = writeln!(o, "  \"traces\": [\n{}\n  ]", traces.join(",\n"));
    o.push_str("}\n");
    o
}

/// A JSON string literal.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn strings<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    let items: Vec<String> = items.map(|s| string(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn strings_are_escaped() {
        assert_eq!(
            super::string("a\"b\\c\nd\u{1}"),
            "\"a\\\"b\\\\c\\nd\\u0001\""
        );
    }
}
