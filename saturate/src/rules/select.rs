//! `select a b cond` over integer types (floats untouched: see the policy).

use super::{consts, rw, rw_fixed, rw_if, Rule, WIDTHS};

pub(super) fn rules() -> Vec<Rule> {
    let mut r = Vec::new();
    for w in WIDTHS {
        // select x x c == x
        r.push(rw(w, "select-same", "(select:{t} ?x ?x ?c)", "?x"));
        // select a b c == a, if c is a non-zero constant
        r.push(rw_if(
            w,
            "select-true",
            "(select:{t} ?a ?b ?c)",
            "?a",
            consts(&["?c"], |c| c[0] != 0),
        ));
        // select a b 0 == b
        r.push(rw(w, "select-false", "(select:{t} ?a ?b i32:0)", "?b"));
        // select a b (eqz c) == select b a c
        r.push(rw(
            w,
            "select-eqz",
            "(select:{t} ?a ?b (i32.eqz ?c))",
            "(select:{t} ?b ?a ?c)",
        ));
        // select a b (c != 0) == select a b c
        r.push(rw(
            w,
            "select-ne-zero",
            "(select:{t} ?a ?b (i32.ne ?c i32:0))",
            "(select:{t} ?a ?b ?c)",
        ));
    }
    // select 1 0 c == c != 0 (i32)
    r.push(rw_fixed(
        "i32-select-one-zero",
        "(select:i32 i32:1 i32:0 ?c)",
        "(i32.ne ?c i32:0)",
    ));
    // select 0 1 c == eqz c (i32)
    r.push(rw_fixed(
        "i32-select-zero-one",
        "(select:i32 i32:0 i32:1 ?c)",
        "(i32.eqz ?c)",
    ));
    // select x 0 c == x & -(c != 0)... not cheaper; omitted.
    r
}
