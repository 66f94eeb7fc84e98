//! Shifts and rotations. Wasm takes shift counts modulo the width.

use super::{consts, rw, rw_if, Rule, WIDTHS};

pub(super) fn rules() -> Vec<Rule> {
    let mut r = Vec::new();
    for w in WIDTHS {
        let bits = u64::from(w.bits);
        for op in ["shl", "shr_s", "shr_u", "rotl", "rotr"] {
            // x op 0 == x
            let lhs = format!("({{t}}.{op} ?x {{t}}:0)");
            r.push(rw(w, &format!("{op}-zero"), &lhs, "?x"));
            // x op c == x op (c & (w - 1)), if c is a constant >= w (the count is masked)
            let lhs = format!("({{t}}.{op} ?x ?c)");
            let rhs = format!("({{t}}.{op} ?x ({{t}}.and ?c {{t}}:{}))", bits - 1);
            r.push(rw_if(
                w,
                &format!("{op}-mask-count"),
                &lhs,
                &rhs,
                consts(&["?c"], move |c| c[0] >= bits),
            ));
        }
        for op in ["shl", "shr_u", "shr_s", "rotl", "rotr"] {
            // 0 op x == 0
            let lhs = format!("({{t}}.{op} {{t}}:0 ?x)");
            r.push(rw(w, &format!("{op}-of-zero"), &lhs, "{t}:0"));
        }
        for op in ["shr_s", "rotl", "rotr"] {
            // -1 op x == -1
            let lhs = format!("({{t}}.{op} {{t}}:-1 ?x)");
            r.push(rw(w, &format!("{op}-of-ones"), &lhs, "{t}:-1"));
        }
        for op in ["shl", "shr_u"] {
            // (x op c1) op c2 == x op (c1 + c2), if c1, c2 < w and c1 + c2 < w
            let lhs = format!("({{t}}.{op} ({{t}}.{op} ?x ?c1) ?c2)");
            let rhs = format!("({{t}}.{op} ?x ({{t}}.add ?c1 ?c2))");
            r.push(rw_if(
                w,
                &format!("{op}-{op}-const"),
                &lhs,
                &rhs,
                consts(&["?c1", "?c2"], move |c| {
                    c[0] < bits && c[1] < bits && c[0] + c[1] < bits
                }),
            ));
            // (x op c1) op c2 == 0, if c1, c2 < w and c1 + c2 >= w (every bit shifted out)
            r.push(rw_if(
                w,
                &format!("{op}-{op}-const-out"),
                &lhs,
                "{t}:0",
                consts(&["?c1", "?c2"], move |c| {
                    c[0] < bits && c[1] < bits && c[0] + c[1] >= bits
                }),
            ));
        }
        // (x rotl c1) rotl c2 == x rotl ((c1 + c2) & (w - 1)), if c1, c2 are constants < w
        // (masked so that rotations by w, which are x, cannot mint ever larger counts)
        let rhs = format!(
            "({{t}}.rotl ?x ({{t}}.and ({{t}}.add ?c1 ?c2) {{t}}:{}))",
            bits - 1
        );
        r.push(rw_if(
            w,
            "rotl-rotl-const",
            "({t}.rotl ({t}.rotl ?x ?c1) ?c2)",
            &rhs,
            consts(&["?c1", "?c2"], move |c| c[0] < bits && c[1] < bits),
        ));
        // (x >>u c) << c == x & (-1 << c), if c is a constant
        r.push(rw_if(
            w,
            "shr-u-shl-mask",
            "({t}.shl ({t}.shr_u ?x ?c) ?c)",
            "({t}.and ?x ({t}.shl {t}:-1 ?c))",
            consts(&["?c"], |_| true),
        ));
    }
    r
}
