//! The exact semantics of WebAssembly's numeric operators that are more than one Rust
//! expression: trapping division, float min/max and rounding, float-to-int conversion.
//!
//! Kiln's interpreter and the trace evaluator both call these, so a trace and the
//! program it came from cannot disagree about what an operator means.

/// The numeric traps, as the spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumTrap {
    IntegerDivideByZero,
    IntegerOverflow,
    InvalidConversionToInteger,
}

macro_rules! int_div {
    ($div_s:ident, $div_u:ident, $rem_s:ident, $rem_u:ident, $s:ty, $u:ty) => {
        pub fn $div_s(a: $s, b: $s) -> Result<$s, NumTrap> {
            if b == 0 {
                Err(NumTrap::IntegerDivideByZero)
            } else if a == <$s>::MIN && b == -1 {
                Err(NumTrap::IntegerOverflow)
            } else {
                Ok(a / b)
            }
        }
        pub fn $div_u(a: $u, b: $u) -> Result<$u, NumTrap> {
            a.checked_div(b).ok_or(NumTrap::IntegerDivideByZero)
        }
        /// `MIN % -1` is 0 in wasm, not an overflow.
        pub fn $rem_s(a: $s, b: $s) -> Result<$s, NumTrap> {
            if b == 0 {
                Err(NumTrap::IntegerDivideByZero)
            } else {
                Ok(a.wrapping_rem(b))
            }
        }
        pub fn $rem_u(a: $u, b: $u) -> Result<$u, NumTrap> {
            a.checked_rem(b).ok_or(NumTrap::IntegerDivideByZero)
        }
    };
}
int_div!(i32_div_s, i32_div_u, i32_rem_s, i32_rem_u, i32, u32);
int_div!(i64_div_s, i64_div_u, i64_rem_s, i64_rem_u, i64, u64);

macro_rules! float_ops {
    ($min:ident, $max:ident, $nearest:ident, $ceil:ident, $floor:ident, $trunc:ident, $f:ty, $quiet_bit:expr) => {
        /// NaN if either operand is NaN; -0 is below +0.
        pub fn $min(a: $f, b: $f) -> $f {
            if a.is_nan() || b.is_nan() {
                // Propagate a NaN the way the hardware add does (an arithmetic NaN).
                a + b
            } else if a == b {
                // Equal, so only the signs of zeros can differ: prefer -0.
                <$f>::from_bits(a.to_bits() | b.to_bits())
            } else if a < b {
                a
            } else {
                b
            }
        }
        /// NaN if either operand is NaN; +0 is above -0.
        pub fn $max(a: $f, b: $f) -> $f {
            if a.is_nan() || b.is_nan() {
                a + b
            } else if a == b {
                <$f>::from_bits(a.to_bits() & b.to_bits())
            } else if a > b {
                a
            } else {
                b
            }
        }
        /// Round to nearest, ties to even.
        pub fn $nearest(a: $f) -> $f {
            quiet(a).round_ties_even()
        }
        /// Rounding up. A NaN operand gives a quiet NaN, as wasm requires (libm's
        /// rounding functions return a signalling NaN unchanged).
        pub fn $ceil(a: $f) -> $f {
            quiet(a).ceil()
        }
        pub fn $floor(a: $f) -> $f {
            quiet(a).floor()
        }
        pub fn $trunc(a: $f) -> $f {
            quiet(a).trunc()
        }
        /// A NaN with its quiet bit set; any other value unchanged.
        fn quiet(a: $f) -> $f {
            if a.is_nan() {
                <$f>::from_bits(a.to_bits() | $quiet_bit)
            } else {
                a
            }
        }
    };
}
mod f32_ops {
    float_ops!(
        f32_min,
        f32_max,
        f32_nearest,
        f32_ceil,
        f32_floor,
        f32_trunc,
        f32,
        1 << 22
    );
}
mod f64_ops {
    float_ops!(
        f64_min,
        f64_max,
        f64_nearest,
        f64_ceil,
        f64_floor,
        f64_trunc,
        f64,
        1 << 51
    );
}
pub use f32_ops::*;
pub use f64_ops::*;

/// Truncation of a float to an integer type: trap on NaN (invalid conversion) and when the
/// truncated value is outside `[lo, hi)`, where the bounds are exact powers of two.
macro_rules! trunc {
    ($name:ident, $f:ty, $i:ty, $lo:expr, $hi:expr) => {
        pub fn $name(x: $f) -> Result<$i, NumTrap> {
            if x.is_nan() {
                return Err(NumTrap::InvalidConversionToInteger);
            }
            let t = (x as f64).trunc();
            if ($lo..$hi).contains(&t) {
                Ok(t as $i)
            } else {
                Err(NumTrap::IntegerOverflow)
            }
        }
    };
}
// f32 and f64 values convert to f64 exactly, so one f64 comparison serves both. The
// 64-bit bounds are exact in f64 (powers of two); values just below -2^63 truncate to
// -2^63 only if they are above -2^63 - 1, which in f64 means equal to -2^63.
trunc!(i32_trunc_f32_s, f32, i32, -2147483648.0, 2147483648.0);
trunc!(i32_trunc_f32_u, f32, u32, 0.0, 4294967296.0);
trunc!(i32_trunc_f64_s, f64, i32, -2147483648.0, 2147483648.0);
trunc!(i32_trunc_f64_u, f64, u32, 0.0, 4294967296.0);
trunc!(
    i64_trunc_f32_s,
    f32,
    i64,
    -9223372036854775808.0,
    9223372036854775808.0
);
trunc!(i64_trunc_f32_u, f32, u64, 0.0, 18446744073709551616.0);
trunc!(
    i64_trunc_f64_s,
    f64,
    i64,
    -9223372036854775808.0,
    9223372036854775808.0
);
trunc!(i64_trunc_f64_u, f64, u64, 0.0, 18446744073709551616.0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn division_traps_as_the_spec_says() {
        assert_eq!(i32_div_s(7, 0), Err(NumTrap::IntegerDivideByZero));
        assert_eq!(i32_div_s(i32::MIN, -1), Err(NumTrap::IntegerOverflow));
        assert_eq!(i32_rem_s(i32::MIN, -1), Ok(0));
        assert_eq!(i64_div_u(7, 0), Err(NumTrap::IntegerDivideByZero));
        assert_eq!(i32_div_s(-7, 2), Ok(-3));
        assert_eq!(i32_rem_s(-7, 2), Ok(-1));
    }

    #[test]
    fn min_max_order_zeros_and_propagate_nan() {
        assert_eq!(f32_min(0.0, -0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(f32_max(-0.0, 0.0).to_bits(), 0.0f32.to_bits());
        assert!(f64_min(f64::NAN, 1.0).is_nan());
        assert!(f64_max(1.0, f64::NAN).is_nan());
        assert_eq!(f64_min(1.0, 2.0), 1.0);
    }

    #[test]
    fn nearest_rounds_ties_to_even() {
        assert_eq!(f32_nearest(2.5), 2.0);
        assert_eq!(f32_nearest(3.5), 4.0);
        assert_eq!(f64_nearest(-0.5).to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn rounding_quiets_signalling_nans() {
        let snan = f32::from_bits(0x7fa0_0000);
        for f in [f32_ceil, f32_floor, f32_trunc, f32_nearest] {
            assert_eq!(f(snan).to_bits(), 0x7fe0_0000);
        }
        let snan = f64::from_bits(0xfff4_0000_0000_0000);
        assert_eq!(f64_floor(snan).to_bits(), 0xfffc_0000_0000_0000);
    }

    #[test]
    fn truncation_bounds_are_exact() {
        assert_eq!(i32_trunc_f32_s(-2147483648.0), Ok(i32::MIN));
        assert_eq!(i32_trunc_f32_s(2147483648.0), Err(NumTrap::IntegerOverflow));
        assert_eq!(i32_trunc_f64_s(-2147483648.9), Ok(i32::MIN));
        assert_eq!(
            i32_trunc_f64_s(-2147483649.0),
            Err(NumTrap::IntegerOverflow)
        );
        assert_eq!(i32_trunc_f64_u(-0.9), Ok(0));
        assert_eq!(i32_trunc_f64_u(-1.0), Err(NumTrap::IntegerOverflow));
        assert_eq!(
            i64_trunc_f64_u(18446744073709549568.0),
            Ok(18446744073709549568)
        );
        assert_eq!(
            i64_trunc_f64_s(f64::NAN),
            Err(NumTrap::InvalidConversionToInteger)
        );
    }
}
