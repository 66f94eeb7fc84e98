//! Integer arithmetic: add, sub, mul, and division or remainder by a constant that makes
//! them total (the only divisions the e-graph holds as pure nodes).

use super::{const_left, consts, rw, rw_if, Rule, WIDTHS};

pub(super) fn rules() -> Vec<Rule> {
    let mut r = Vec::new();
    for w in WIDTHS {
        let mask = w.mask();
        // x + 0 == x
        r.push(rw(w, "add-zero", "({t}.add ?x {t}:0)", "?x"));
        // c + x == x + c, if c is a constant and x is not (constants to the right)
        r.push(rw_if(
            w,
            "add-const-right",
            "({t}.add ?c ?x)",
            "({t}.add ?x ?c)",
            const_left("?c", "?x"),
        ));
        // (x + c1) + c2 == x + (c1 + c2), if c1 and c2 are constants (folds)
        r.push(rw_if(
            w,
            "add-add-const",
            "({t}.add ({t}.add ?x ?c1) ?c2)",
            "({t}.add ?x ({t}.add ?c1 ?c2))",
            consts(&["?c1", "?c2"], |_| true),
        ));
        // x - 0 == x
        r.push(rw(w, "sub-zero", "({t}.sub ?x {t}:0)", "?x"));
        // x - x == 0
        r.push(rw(w, "sub-self", "({t}.sub ?x ?x)", "{t}:0"));
        // x - c == x + (0 - c), if c is a constant (so constant chains fold as additions)
        r.push(rw_if(
            w,
            "sub-const",
            "({t}.sub ?x ?c)",
            "({t}.add ?x ({t}.sub {t}:0 ?c))",
            consts(&["?c"], |_| true),
        ));
        // (x + y) - y == x
        r.push(rw(
            w,
            "add-sub-cancel",
            "({t}.sub ({t}.add ?x ?y) ?y)",
            "?x",
        ));
        // (x + y) - x == y
        r.push(rw(
            w,
            "add-sub-cancel-left",
            "({t}.sub ({t}.add ?x ?y) ?x)",
            "?y",
        ));
        // (x - y) + y == x
        r.push(rw(
            w,
            "sub-add-cancel",
            "({t}.add ({t}.sub ?x ?y) ?y)",
            "?x",
        ));
        // x - (x - y) == y
        r.push(rw(
            w,
            "sub-sub-cancel",
            "({t}.sub ?x ({t}.sub ?x ?y))",
            "?y",
        ));
        // 0 - (0 - x) == x
        r.push(rw(w, "neg-neg", "({t}.sub {t}:0 ({t}.sub {t}:0 ?x))", "?x"));
        // x + (0 - y) == x - y
        r.push(rw(
            w,
            "add-neg",
            "({t}.add ?x ({t}.sub {t}:0 ?y))",
            "({t}.sub ?x ?y)",
        ));
        // x - (0 - y) == x + y
        r.push(rw(
            w,
            "sub-neg",
            "({t}.sub ?x ({t}.sub {t}:0 ?y))",
            "({t}.add ?x ?y)",
        ));
        // x * 0 == 0
        r.push(rw(w, "mul-zero", "({t}.mul ?x {t}:0)", "{t}:0"));
        // x * 1 == x
        r.push(rw(w, "mul-one", "({t}.mul ?x {t}:1)", "?x"));
        // x * -1 == 0 - x
        r.push(rw(
            w,
            "mul-minus-one",
            "({t}.mul ?x {t}:-1)",
            "({t}.sub {t}:0 ?x)",
        ));
        // c * x == x * c, if c is a constant and x is not
        r.push(rw_if(
            w,
            "mul-const-right",
            "({t}.mul ?c ?x)",
            "({t}.mul ?x ?c)",
            const_left("?c", "?x"),
        ));
        // (x * c1) * c2 == x * (c1 * c2), if c1 and c2 are constants (wrapping; folds)
        r.push(rw_if(
            w,
            "mul-mul-const",
            "({t}.mul ({t}.mul ?x ?c1) ?c2)",
            "({t}.mul ?x ({t}.mul ?c1 ?c2))",
            consts(&["?c1", "?c2"], |_| true),
        ));
        // x * 2^k == x << k, if c = 2^k is a constant power of two (k = ctz c)
        r.push(rw_if(
            w,
            "mul-pow2",
            "({t}.mul ?x ?c)",
            "({t}.shl ?x ({t}.ctz ?c))",
            consts(&["?c"], move |c| (c[0] & mask).is_power_of_two()),
        ));
        // x div_u 1 == x, x div_s 1 == x
        r.push(rw(w, "div-u-one", "({t}.div_u ?x {t}:1)", "?x"));
        r.push(rw(w, "div-s-one", "({t}.div_s ?x {t}:1)", "?x"));
        // x div_u 2^k == x >>u k, if c = 2^k is a constant power of two
        r.push(rw_if(
            w,
            "div-u-pow2",
            "({t}.div_u ?x ?c)",
            "({t}.shr_u ?x ({t}.ctz ?c))",
            consts(&["?c"], move |c| (c[0] & mask).is_power_of_two()),
        ));
        // x rem_u 2^k == x & (2^k - 1), if c = 2^k is a constant power of two
        r.push(rw_if(
            w,
            "rem-u-pow2",
            "({t}.rem_u ?x ?c)",
            "({t}.and ?x ({t}.sub ?c {t}:1))",
            consts(&["?c"], move |c| (c[0] & mask).is_power_of_two()),
        ));
        // x rem_s 1 == 0 and x rem_s -1 == 0 (wasm's rem_s MIN -1 is 0, no trap)
        r.push(rw(w, "rem-s-one", "({t}.rem_s ?x {t}:1)", "{t}:0"));
        r.push(rw(w, "rem-s-minus-one", "({t}.rem_s ?x {t}:-1)", "{t}:0"));
        // x rem_u 1 == 0
        r.push(rw(w, "rem-u-one", "({t}.rem_u ?x {t}:1)", "{t}:0"));
    }
    r
}
