//! Bitwise and, or, xor, and the bit-counting operators.

use super::{const_left, consts, rw, rw_if, Rule, WIDTHS};

pub(super) fn rules() -> Vec<Rule> {
    let mut r = Vec::new();
    for w in WIDTHS {
        // x & 0 == 0
        r.push(rw(w, "and-zero", "({t}.and ?x {t}:0)", "{t}:0"));
        // x & -1 == x
        r.push(rw(w, "and-ones", "({t}.and ?x {t}:-1)", "?x"));
        // x & x == x
        r.push(rw(w, "and-self", "({t}.and ?x ?x)", "?x"));
        // x | 0 == x
        r.push(rw(w, "or-zero", "({t}.or ?x {t}:0)", "?x"));
        // x | -1 == -1
        r.push(rw(w, "or-ones", "({t}.or ?x {t}:-1)", "{t}:-1"));
        // x | x == x
        r.push(rw(w, "or-self", "({t}.or ?x ?x)", "?x"));
        // x ^ 0 == x
        r.push(rw(w, "xor-zero", "({t}.xor ?x {t}:0)", "?x"));
        // x ^ x == 0
        r.push(rw(w, "xor-self", "({t}.xor ?x ?x)", "{t}:0"));
        // (x ^ y) ^ y == x
        r.push(rw(
            w,
            "xor-xor-cancel",
            "({t}.xor ({t}.xor ?x ?y) ?y)",
            "?x",
        ));
        // x & (x | y) == x
        r.push(rw(w, "and-or-absorb", "({t}.and ?x ({t}.or ?x ?y))", "?x"));
        // x | (x & y) == x
        r.push(rw(w, "or-and-absorb", "({t}.or ?x ({t}.and ?x ?y))", "?x"));
        // x & ~x == 0
        r.push(rw(
            w,
            "and-not-self",
            "({t}.and ?x ({t}.xor ?x {t}:-1))",
            "{t}:0",
        ));
        // x | ~x == -1
        r.push(rw(
            w,
            "or-not-self",
            "({t}.or ?x ({t}.xor ?x {t}:-1))",
            "{t}:-1",
        ));
        // x ^ ~x == -1
        r.push(rw(
            w,
            "xor-not-self",
            "({t}.xor ?x ({t}.xor ?x {t}:-1))",
            "{t}:-1",
        ));
        // c op x == x op c for op in and, or, xor, if c is a constant and x is not
        for op in ["and", "or", "xor"] {
            let lhs = format!("({{t}}.{op} ?c ?x)");
            let rhs = format!("({{t}}.{op} ?x ?c)");
            r.push(rw_if(
                w,
                &format!("{op}-const-right"),
                &lhs,
                &rhs,
                const_left("?c", "?x"),
            ));
        }
        // (x op c1) op c2 == x op (c1 op c2) for op in and, or, xor, if c1, c2 are constants
        for op in ["and", "or", "xor"] {
            let lhs = format!("({{t}}.{op} ({{t}}.{op} ?x ?c1) ?c2)");
            let rhs = format!("({{t}}.{op} ?x ({{t}}.{op} ?c1 ?c2))");
            r.push(rw_if(
                w,
                &format!("{op}-{op}-const"),
                &lhs,
                &rhs,
                consts(&["?c1", "?c2"], |_| true),
            ));
        }
        // (x | y) & ~y... not here: kept to identities that never grow.
        // popcnt(x) == 0 iff x == 0: (eqz (popcnt x)) == eqz x
        r.push(rw(
            w,
            "eqz-popcnt",
            "({t}.eqz ({t}.popcnt ?x))",
            "({t}.eqz ?x)",
        ));
    }
    r
}
