//! Sign and zero extension, wrapping, and the extension a narrow load already did.

use super::{rw_fixed, Rule};

pub(super) fn rules() -> Vec<Rule> {
    vec![
        // wrap (extend_u x) == x
        rw_fixed(
            "wrap-extend-u",
            "(i32.wrap_i64 (i64.extend_i32_u ?x))",
            "?x",
        ),
        // wrap (extend_s x) == x
        rw_fixed(
            "wrap-extend-s",
            "(i32.wrap_i64 (i64.extend_i32_s ?x))",
            "?x",
        ),
        // extend_u (wrap x) == x & 0xffffffff
        rw_fixed(
            "extend-u-wrap",
            "(i64.extend_i32_u (i32.wrap_i64 ?x))",
            "(i64.and ?x i64:0xffffffff)",
        ),
        // extend_s (wrap x) == extend32_s x
        rw_fixed(
            "extend-s-wrap",
            "(i64.extend_i32_s (i32.wrap_i64 ?x))",
            "(i64.extend32_s ?x)",
        ),
        // extend_u x & 0xffffffff == extend_u x
        rw_fixed(
            "extend-u-mask",
            "(i64.and (i64.extend_i32_u ?x) i64:0xffffffff)",
            "(i64.extend_i32_u ?x)",
        ),
        // extend32_s (extend_i32_s x) == extend_i32_s x
        rw_fixed(
            "extend32-extend-s",
            "(i64.extend32_s (i64.extend_i32_s ?x))",
            "(i64.extend_i32_s ?x)",
        ),
        // extend32_s (extend_i32_u x) == extend_i32_s x
        rw_fixed(
            "extend32-extend-u",
            "(i64.extend32_s (i64.extend_i32_u ?x))",
            "(i64.extend_i32_s ?x)",
        ),
        // eqz (extend_u x) == eqz x (i64 → i32)
        rw_fixed(
            "eqz-extend-u",
            "(i64.eqz (i64.extend_i32_u ?x))",
            "(i32.eqz ?x)",
        ),
        // eqz (extend_s x) == eqz x (i64 → i32)
        rw_fixed(
            "eqz-extend-s",
            "(i64.eqz (i64.extend_i32_s ?x))",
            "(i32.eqz ?x)",
        ),
        // wrap (x & c) == wrap x & wrap c... omitted (grows); wrap of a constant folds.
        // i32: extend8_s (extend8_s x) == extend8_s x
        rw_fixed(
            "i32-extend8-extend8",
            "(i32.extend8_s (i32.extend8_s ?x))",
            "(i32.extend8_s ?x)",
        ),
        // i32: extend16_s (extend16_s x) == extend16_s x
        rw_fixed(
            "i32-extend16-extend16",
            "(i32.extend16_s (i32.extend16_s ?x))",
            "(i32.extend16_s ?x)",
        ),
        // i32: extend16_s (extend8_s x) == extend8_s x
        rw_fixed(
            "i32-extend16-extend8",
            "(i32.extend16_s (i32.extend8_s ?x))",
            "(i32.extend8_s ?x)",
        ),
        // i32: extend8_s (extend16_s x) == extend8_s x
        rw_fixed(
            "i32-extend8-extend16",
            "(i32.extend8_s (i32.extend16_s ?x))",
            "(i32.extend8_s ?x)",
        ),
        // i32: extend8_s (x & 255) == extend8_s x
        rw_fixed(
            "i32-extend8-mask",
            "(i32.extend8_s (i32.and ?x i32:255))",
            "(i32.extend8_s ?x)",
        ),
        // i32: extend16_s (x & 65535) == extend16_s x
        rw_fixed(
            "i32-extend16-mask",
            "(i32.extend16_s (i32.and ?x i32:65535))",
            "(i32.extend16_s ?x)",
        ),
        // i32: extend8_s x & 255 == x & 255
        rw_fixed(
            "i32-mask-extend8",
            "(i32.and (i32.extend8_s ?x) i32:255)",
            "(i32.and ?x i32:255)",
        ),
        // i64: extend8_s (extend8_s x) == extend8_s x
        rw_fixed(
            "i64-extend8-extend8",
            "(i64.extend8_s (i64.extend8_s ?x))",
            "(i64.extend8_s ?x)",
        ),
        // i64: extend16_s (extend16_s x) == extend16_s x
        rw_fixed(
            "i64-extend16-extend16",
            "(i64.extend16_s (i64.extend16_s ?x))",
            "(i64.extend16_s ?x)",
        ),
        // i64: extend32_s (extend32_s x) == extend32_s x
        rw_fixed(
            "i64-extend32-extend32",
            "(i64.extend32_s (i64.extend32_s ?x))",
            "(i64.extend32_s ?x)",
        ),
        // i64: extend32_s (extend8_s x) == extend8_s x
        rw_fixed(
            "i64-extend32-extend8",
            "(i64.extend32_s (i64.extend8_s ?x))",
            "(i64.extend8_s ?x)",
        ),
        // i64: extend32_s (extend16_s x) == extend16_s x
        rw_fixed(
            "i64-extend32-extend16",
            "(i64.extend32_s (i64.extend16_s ?x))",
            "(i64.extend16_s ?x)",
        ),
    ]
}
