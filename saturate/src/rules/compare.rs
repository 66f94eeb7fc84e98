//! Integer comparisons. Their results are 0 or 1, of type i32.

use super::{const_left, rw, rw_fixed, rw_if, Rule, WIDTHS};

/// Each comparison with its negation: `!(a op b) == a neg b`.
const NEGATIONS: [(&str, &str); 10] = [
    ("eq", "ne"),
    ("ne", "eq"),
    ("lt_s", "ge_s"),
    ("lt_u", "ge_u"),
    ("gt_s", "le_s"),
    ("gt_u", "le_u"),
    ("le_s", "gt_s"),
    ("le_u", "gt_u"),
    ("ge_s", "lt_s"),
    ("ge_u", "lt_u"),
];

/// Each comparison with its mirror: `a op b == b mirror a`.
const MIRRORS: [(&str, &str); 10] = [
    ("eq", "eq"),
    ("ne", "ne"),
    ("lt_s", "gt_s"),
    ("lt_u", "gt_u"),
    ("gt_s", "lt_s"),
    ("gt_u", "lt_u"),
    ("le_s", "ge_s"),
    ("le_u", "ge_u"),
    ("ge_s", "le_s"),
    ("ge_u", "le_u"),
];

pub(super) fn rules() -> Vec<Rule> {
    let mut r = Vec::new();
    for w in WIDTHS {
        // x op x == 1 for op in eq, le_s, le_u, ge_s, ge_u; == 0 for ne, lt_s, lt_u, gt_s, gt_u
        for (op, value) in [
            ("eq", 1),
            ("le_s", 1),
            ("le_u", 1),
            ("ge_s", 1),
            ("ge_u", 1),
            ("ne", 0),
            ("lt_s", 0),
            ("lt_u", 0),
            ("gt_s", 0),
            ("gt_u", 0),
        ] {
            let lhs = format!("({{t}}.{op} ?x ?x)");
            r.push(rw(w, &format!("{op}-self"), &lhs, &format!("i32:{value}")));
        }
        // eqz (a op b) == a neg b, for every comparison op and its negation
        for (op, neg) in NEGATIONS {
            let lhs = format!("(i32.eqz ({{t}}.{op} ?a ?b))");
            let rhs = format!("({{t}}.{neg} ?a ?b)");
            r.push(rw(w, &format!("eqz-{op}"), &lhs, &rhs));
        }
        // c op x == x mirror c, if c is a constant and x is not
        for (op, mirror) in MIRRORS {
            let lhs = format!("({{t}}.{op} ?c ?x)");
            let rhs = format!("({{t}}.{mirror} ?x ?c)");
            r.push(rw_if(
                w,
                &format!("{op}-const-right"),
                &lhs,
                &rhs,
                const_left("?c", "?x"),
            ));
        }
        // x == 0 is eqz x
        r.push(rw(w, "eq-zero", "({t}.eq ?x {t}:0)", "({t}.eqz ?x)"));
        // x <u 0 == 0
        r.push(rw(w, "lt-u-zero", "({t}.lt_u ?x {t}:0)", "i32:0"));
        // x >=u 0 == 1
        r.push(rw(w, "ge-u-zero", "({t}.ge_u ?x {t}:0)", "i32:1"));
        // x >u -1 == 0 (nothing is above the maximum)
        r.push(rw(w, "gt-u-max", "({t}.gt_u ?x {t}:-1)", "i32:0"));
        // x <=u -1 == 1
        r.push(rw(w, "le-u-max", "({t}.le_u ?x {t}:-1)", "i32:1"));
        // x <=u 0 == eqz x
        r.push(rw(w, "le-u-zero", "({t}.le_u ?x {t}:0)", "({t}.eqz ?x)"));
        // (x - y) == 0 is x == y
        r.push(rw(
            w,
            "eqz-sub",
            "({t}.eqz ({t}.sub ?x ?y))",
            "({t}.eq ?x ?y)",
        ));
        // (x ^ y) == 0 is x == y
        r.push(rw(
            w,
            "eqz-xor",
            "({t}.eqz ({t}.xor ?x ?y))",
            "({t}.eq ?x ?y)",
        ));
    }
    // eqz (eqz (a op b)) == a op b, for i32 comparisons of either width (results are 0 or 1)
    for w in WIDTHS {
        for (op, _) in NEGATIONS {
            let name = format!("{}-eqz-eqz-{op}", w.t);
            let lhs = format!("(i32.eqz (i32.eqz ({}.{op} ?a ?b)))", w.t);
            let rhs = format!("({}.{op} ?a ?b)", w.t);
            r.push(rw_fixed(&name, &lhs, &rhs));
        }
    }
    // (a op b) != 0 is a op b; (a op b) & 1 is a op b: comparisons give 0 or 1
    for w in WIDTHS {
        for (op, _) in NEGATIONS {
            let name = format!("{}-{op}-ne-zero", w.t);
            r.push(rw_fixed(
                &name,
                &format!("(i32.ne ({}.{op} ?a ?b) i32:0)", w.t),
                &format!("({}.{op} ?a ?b)", w.t),
            ));
            let name = format!("{}-{op}-and-one", w.t);
            r.push(rw_fixed(
                &name,
                &format!("(i32.and ({}.{op} ?a ?b) i32:1)", w.t),
                &format!("({}.{op} ?a ?b)", w.t),
            ));
        }
    }
    r
}
