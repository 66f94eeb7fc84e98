//! Guard facts: what a guard that passed tells the rest of the trace.
//!
//! A trace is specialised to one path, and every guard on it is a fact for the code that
//! follows: after `guard (i32.eq x 5)` passes, `x` *is* 5; after `guard (i32.lt_u i 100)`
//! passes, `i <u 100`, so a later `i32.lt_u i 200` is 1. The lifter ([`crate::lift`])
//! learns each guard's fact right after the guard, and uses it only for instructions
//! after it: a fact never flows backwards, so an exit before the guard (or the guard's
//! own exit) still hands back the value as it was computed.
//!
//! Facts are kept per SSA value, for comparisons of a value with a constant, which is
//! what compilers emit for loop bounds, bounds checks and switch cases:
//! - an exact value (from `eq`/`ne`/`eqz`, and the guard's own condition: a comparison
//!   that passed with `expect = true` is 1, any condition that passed with
//!   `expect = false` is 0);
//! - an unsigned and a signed interval (from `lt`/`le`/`gt`/`ge`, signed or unsigned,
//!   constant on either side), each tightening the other where the sign bit is known.
//!
//! A fact is used by [`GuardFacts::constant`] (the lifter substitutes the constant for the
//! value) and [`GuardFacts::decide`] (a later comparison of the value with a constant
//! that the intervals decide becomes that constant). Nothing else: no arithmetic on
//! intervals, so what is derived is easy to check, and `verify` proves every candidate
//! anyway.

use std::collections::HashMap;

use ir::{NumOp, Operand, ValueId};

/// What is known about one value: inclusive bounds as unsigned and as signed numbers of
/// its width (`i128` holds both without overflow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bounds {
    bits: u32,
    ulo: i128,
    uhi: i128,
    slo: i128,
    shi: i128,
}

impl Bounds {
    fn full(bits: u32) -> Bounds {
        Bounds {
            bits,
            ulo: 0,
            uhi: (1i128 << bits) - 1,
            slo: -(1i128 << (bits - 1)),
            shi: (1i128 << (bits - 1)) - 1,
        }
    }

    /// Each interval tightened by the other: a value whose signed interval is
    /// non-negative has the same unsigned interval, and vice versa below the sign bit.
    fn normalize(&mut self) {
        let smax = (1i128 << (self.bits - 1)) - 1;
        if self.slo >= 0 {
            self.ulo = self.ulo.max(self.slo);
            self.uhi = self.uhi.min(self.shi);
        }
        if self.uhi <= smax {
            self.slo = self.slo.max(self.ulo);
            self.shi = self.shi.min(self.uhi);
        }
    }

    /// The single value, if the bounds allow only one.
    fn exact(&self) -> Option<u64> {
        (self.ulo == self.uhi).then_some(self.ulo as u64)
    }
}

/// A comparison of a value with a constant, normalized to `value <op> constant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Eq,
    Ne,
    Lt { signed: bool },
    Le { signed: bool },
    Gt { signed: bool },
    Ge { signed: bool },
}

impl Relation {
    /// The relation that holds when this one does not.
    fn negate(self) -> Relation {
        use Relation::*;
        match self {
            Eq => Ne,
            Ne => Eq,
            Lt { signed } => Ge { signed },
            Le { signed } => Gt { signed },
            Gt { signed } => Le { signed },
            Ge { signed } => Lt { signed },
        }
    }

    /// The relation with its operands swapped: `k < x` is `x > k`.
    fn swap(self) -> Relation {
        use Relation::*;
        match self {
            Eq | Ne => self,
            Lt { signed } => Gt { signed },
            Le { signed } => Ge { signed },
            Gt { signed } => Lt { signed },
            Ge { signed } => Le { signed },
        }
    }
}

/// `op` as a relation and the width of its operands, if it is an integer comparison.
fn relation(op: NumOp) -> Option<(Relation, u32)> {
    use NumOp::*;
    use Relation::*;
    let (rel, bits) = match op {
        I32Eq => (Eq, 32),
        I32Ne => (Ne, 32),
        I32LtS => (Lt { signed: true }, 32),
        I32LtU => (Lt { signed: false }, 32),
        I32GtS => (Gt { signed: true }, 32),
        I32GtU => (Gt { signed: false }, 32),
        I32LeS => (Le { signed: true }, 32),
        I32LeU => (Le { signed: false }, 32),
        I32GeS => (Ge { signed: true }, 32),
        I32GeU => (Ge { signed: false }, 32),
        I64Eq => (Eq, 64),
        I64Ne => (Ne, 64),
        I64LtS => (Lt { signed: true }, 64),
        I64LtU => (Lt { signed: false }, 64),
        I64GtS => (Gt { signed: true }, 64),
        I64GtU => (Gt { signed: false }, 64),
        I64LeS => (Le { signed: true }, 64),
        I64LeU => (Le { signed: false }, 64),
        I64GeS => (Ge { signed: true }, 64),
        I64GeU => (Ge { signed: false }, 64),
        _ => return None,
    };
    Some((rel, bits))
}

/// Whether `op` gives only 0 or 1 (every comparison, integer or float, and `eqz`).
pub fn is_boolean(op: NumOp) -> bool {
    use NumOp::*;
    relation(op).is_some()
        || matches!(
            op,
            I32Eqz
                | I64Eqz
                | F32Eq
                | F32Ne
                | F32Lt
                | F32Gt
                | F32Le
                | F32Ge
                | F64Eq
                | F64Ne
                | F64Lt
                | F64Gt
                | F64Le
                | F64Ge
        )
}

/// A constant of width `bits` as an unsigned and a signed number.
fn as_numbers(k: u64, bits: u32) -> (i128, i128) {
    if bits == 32 {
        (k as u32 as i128, k as u32 as i32 as i128)
    } else {
        (k as i128, k as i64 as i128)
    }
}

/// `value <rel> k` for an integer comparison with one value and one constant operand,
/// normalized so the value is on the left; `None` for anything else.
fn value_vs_constant(op: NumOp, args: &[Operand]) -> Option<(ValueId, Relation, u64, u32)> {
    use NumOp::*;
    match (op, args) {
        (I32Eqz, [Operand::Value(x)]) => Some((*x, Relation::Eq, 0, 32)),
        (I64Eqz, [Operand::Value(x)]) => Some((*x, Relation::Eq, 0, 64)),
        _ => {
            let (rel, bits) = relation(op)?;
            match args {
                [Operand::Value(x), Operand::Const(k)] => Some((*x, rel, *k, bits)),
                [Operand::Const(k), Operand::Value(x)] => Some((*x, rel.swap(), *k, bits)),
                _ => None,
            }
        }
    }
}

/// The facts learned so far, in trace order.
#[derive(Debug, Default)]
pub struct GuardFacts {
    bounds: HashMap<ValueId, Bounds>,
}

impl GuardFacts {
    /// Learns what `guard cond` passing with `expect` says. `def` is the instruction that
    /// defines `cond`, if it is a numeric operator (its recorded operands).
    pub fn learn(&mut self, cond: ValueId, expect: bool, def: Option<(NumOp, &[Operand])>) {
        // The condition itself (an i32): non-zero when `expect`, so exactly 1 for a
        // comparison; zero otherwise.
        let cond_bits = 32;
        if !expect {
            self.constrain(cond, cond_bits, Relation::Eq, 0);
        } else if def.is_some_and(|(op, _)| is_boolean(op)) {
            self.constrain(cond, 32, Relation::Eq, 1);
        } else {
            self.constrain(cond, cond_bits, Relation::Ne, 0);
        }
        // What the comparison says about its value operand.
        if let Some((x, rel, k, bits)) = def.and_then(|(op, args)| value_vs_constant(op, args)) {
            let rel = if expect { rel } else { rel.negate() };
            self.constrain(x, bits, rel, k);
        }
    }

    /// Narrows `x`'s bounds by `x <rel> k`.
    fn constrain(&mut self, x: ValueId, bits: u32, rel: Relation, k: u64) {
        let b = self.bounds.entry(x).or_insert_with(|| Bounds::full(bits));
        if b.bits != bits {
            // The same value compared at two widths cannot happen in a valid trace.
            return;
        }
        let (ku, ks) = as_numbers(k, bits);
        match rel {
            Relation::Eq => {
                b.ulo = b.ulo.max(ku);
                b.uhi = b.uhi.min(ku);
                b.slo = b.slo.max(ks);
                b.shi = b.shi.min(ks);
            }
            // Only an excluded end point narrows an interval.
            Relation::Ne => {
                if b.ulo == ku {
                    b.ulo += 1;
                }
                if b.uhi == ku {
                    b.uhi -= 1;
                }
                if b.slo == ks {
                    b.slo += 1;
                }
                if b.shi == ks {
                    b.shi -= 1;
                }
            }
            Relation::Lt { signed: false } => b.uhi = b.uhi.min(ku - 1),
            Relation::Le { signed: false } => b.uhi = b.uhi.min(ku),
            Relation::Gt { signed: false } => b.ulo = b.ulo.max(ku + 1),
            Relation::Ge { signed: false } => b.ulo = b.ulo.max(ku),
            Relation::Lt { signed: true } => b.shi = b.shi.min(ks - 1),
            Relation::Le { signed: true } => b.shi = b.shi.min(ks),
            Relation::Gt { signed: true } => b.slo = b.slo.max(ks + 1),
            Relation::Ge { signed: true } => b.slo = b.slo.max(ks),
        }
        b.normalize();
    }

    /// The constant `x` is known to be, if one.
    pub fn constant(&self, x: ValueId) -> Option<u64> {
        let b = self.bounds.get(&x)?;
        // Empty bounds mean the path is impossible (contradicting guards): claim nothing.
        if b.ulo > b.uhi || b.slo > b.shi {
            return None;
        }
        b.exact()
    }

    /// The result (0 or 1) of the comparison `op args`, if the facts decide it.
    pub fn decide(&self, op: NumOp, args: &[Operand]) -> Option<u64> {
        let (x, rel, k, bits) = value_vs_constant(op, args)?;
        let b = self.bounds.get(&x)?;
        if b.bits != bits || b.ulo > b.uhi || b.slo > b.shi {
            return None;
        }
        let (ku, ks) = as_numbers(k, bits);
        let decided = |always: bool, never: bool| match (always, never) {
            (true, _) => Some(1),
            (_, true) => Some(0),
            _ => None,
        };
        match rel {
            Relation::Eq => decided(
                b.ulo == ku && b.uhi == ku,
                ku < b.ulo || ku > b.uhi || ks < b.slo || ks > b.shi,
            ),
            Relation::Ne => decided(
                ku < b.ulo || ku > b.uhi || ks < b.slo || ks > b.shi,
                b.ulo == ku && b.uhi == ku,
            ),
            Relation::Lt { signed: false } => decided(b.uhi < ku, b.ulo >= ku),
            Relation::Le { signed: false } => decided(b.uhi <= ku, b.ulo > ku),
            Relation::Gt { signed: false } => decided(b.ulo > ku, b.uhi <= ku),
            Relation::Ge { signed: false } => decided(b.ulo >= ku, b.uhi < ku),
            Relation::Lt { signed: true } => decided(b.shi < ks, b.slo >= ks),
            Relation::Le { signed: true } => decided(b.shi <= ks, b.slo > ks),
            Relation::Gt { signed: true } => decided(b.slo > ks, b.shi <= ks),
            Relation::Ge { signed: true } => decided(b.slo >= ks, b.shi < ks),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NumOp::*;

    const X: ValueId = ValueId(7);

    fn x_vs(k: u64) -> [Operand; 2] {
        [Operand::Value(X), Operand::Const(k)]
    }

    /// Learns `op(x, learn_k) == expect`, then checks what `ask(x, ask_k)` decides.
    fn check(learn: (NumOp, u64, bool), ask: (NumOp, u64), expected: Option<u64>) {
        let mut facts = GuardFacts::default();
        let cond = ValueId(100);
        facts.learn(cond, learn.2, Some((learn.0, &x_vs(learn.1))));
        assert_eq!(
            facts.decide(ask.0, &x_vs(ask.1)),
            expected,
            "after {learn:?}, {ask:?}"
        );
    }

    #[test]
    fn bounds_decide_later_comparisons() {
        check((I32LtU, 100, true), (I32LtU, 200), Some(1));
        check((I32LtU, 100, true), (I32LtU, 100), Some(1));
        check((I32LtU, 100, true), (I32LtU, 99), None);
        check((I32LtU, 100, true), (I32GeU, 100), Some(0));
        check((I32LtU, 100, false), (I32LtU, 50), Some(0));
        check((I32LtS, 10, true), (I32LtS, 11), Some(1));
        // Signed and unsigned bounds tighten each other only where the sign is known.
        check((I32LtS, 10, true), (I32LtU, 11), None);
        check((I32GeS, 0, true), (I32LtU, 0x8000_0000), Some(1));
        check((I32LtU, 100, true), (I32LtS, 100), Some(1));
        check((I64GtU, 5, true), (I64Eq, 3), Some(0));
        check((I64GtU, 5, true), (I64Ne, 3), Some(1));
        check((I32Eq, 5, true), (I32Eq, 5), Some(1));
        check((I32Ne, 5, false), (I32GtU, 4), Some(1));
        // A constant on the left is the swapped relation.
        let mut facts = GuardFacts::default();
        facts.learn(
            ValueId(1),
            true,
            Some((I32GtU, &[Operand::Const(100), Operand::Value(X)])),
        );
        assert_eq!(facts.decide(I32LtU, &x_vs(100)), Some(1));
        // Unsigned extremes do not wrap.
        check((I32LtU, 0, true), (I32Eq, 0), None);
        check((I64GeU, u64::MAX, true), (I64Eq, u64::MAX), Some(1));
    }

    #[test]
    fn exact_values_and_conditions() {
        let mut facts = GuardFacts::default();
        facts.learn(ValueId(1), true, Some((I32Eq, &x_vs(42))));
        assert_eq!(facts.constant(X), Some(42));
        assert_eq!(facts.constant(ValueId(1)), Some(1));
        facts.learn(ValueId(2), false, Some((I32Add, &x_vs(1))));
        assert_eq!(facts.constant(ValueId(2)), Some(0));
        facts.learn(ValueId(3), true, None);
        assert_eq!(facts.constant(ValueId(3)), None);
        let mut facts = GuardFacts::default();
        facts.learn(ValueId(1), true, Some((I64Eqz, &[Operand::Value(X)])));
        assert_eq!(facts.constant(X), Some(0));
        // Contradicting guards claim nothing.
        let mut facts = GuardFacts::default();
        facts.learn(ValueId(1), true, Some((I32LtU, &x_vs(5))));
        facts.learn(ValueId(2), true, Some((I32GtU, &x_vs(9))));
        assert_eq!(facts.decide(I32Eq, &x_vs(7)), None);
        assert_eq!(facts.constant(X), None);
    }
}
