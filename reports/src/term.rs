//! Traces as expression trees, and the smallest rewrite that turns a recorded trace's
//! tree into its candidate's.
//!
//! A trace is a list of instructions; what it computes is a handful of *roots*: guard
//! conditions, the slots each exit and the loop hand back, stored addresses and values,
//! global writes. Each root is a tree over the trace's inputs. Two traces that compute a
//! root differently differ in some subtree; descending while both sides keep the same
//! operator and differ in one operand only gives the smallest rewritten subterm. That
//! pair, with the parts both sides share abstracted into variables, is a rewrite a
//! compiler engineer can read and compare across traces.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use ir::{End, Inst, Operand, Source, Trace, Type, ValueId};

/// Trees larger than this are cut (the rest shown as `…`): a trace is a DAG, and a value
/// used many times would otherwise be unfolded into a tree exponentially large. Rewrites
/// worth reporting are small; a cut tree is compared like any other.
pub const MAX_TERM_NODES: usize = 48;

/// An expression tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Term {
    /// A trace input (a frame slot or a global at the anchor).
    Input { ty: Type, source: Source },
    /// A value the tree does not look into (`memory.size`, `memory.grow`, or a cut).
    Opaque { ty: Type, what: String },
    /// A variable of an abstracted pattern, numbered from 0 in order of appearance.
    Var { ty: Type, index: u32 },
    /// A constant; `ty` is the type where it is used (`None` for raw frame state).
    Const { ty: Option<Type>, bits: u64 },
    /// An operator: its wasm text name (with `offset=` for loads), result type, operands.
    Op {
        name: String,
        ty: Type,
        args: Vec<Term>,
    },
}

impl Term {
    pub fn ty(&self) -> Option<Type> {
        match self {
            Term::Input { ty, .. }
            | Term::Opaque { ty, .. }
            | Term::Var { ty, .. }
            | Term::Op { ty, .. } => Some(*ty),
            Term::Const { ty, .. } => *ty,
        }
    }

    fn size(&self) -> usize {
        match self {
            Term::Op { args, .. } => 1 + args.iter().map(Term::size).sum::<usize>(),
            _ => 1,
        }
    }

    fn contains(&self, needle: &Term) -> bool {
        self == needle
            || matches!(self, Term::Op { args, .. } if args.iter().any(|a| a.contains(needle)))
    }

    /// Folded WebAssembly text: `(i32.shl (local.get $a) (i32.const 3))`. Variables and
    /// inputs read as locals, since that is what a pattern's reader would write.
    pub fn wat(&self) -> String {
        let mut out = String::new();
        self.write_wat(&mut out);
        out
    }

    fn write_wat(&self, out: &mut String) {
        match self {
            Term::Input { source, .. } => match source {
                Source::Slot(s) => {
                    let _ = write!(out, "(local.get $s{s})");
                }
                Source::Global(g) => {
                    let _ = write!(out, "(global.get $g{g})");
                }
            },
            Term::Opaque { what, .. } => out.push_str(what),
            Term::Var { index, .. } => {
                let _ = write!(out, "(local.get ${})", var_name(*index));
            }
            Term::Const { ty, bits } => {
                let _ = match ty.unwrap_or(Type::I64) {
                    Type::I32 => write!(out, "(i32.const {})", *bits as u32 as i32),
                    Type::I64 => write!(out, "(i64.const {})", *bits as i64),
                    Type::F32 => write!(out, "(f32.const {})", f32::from_bits(*bits as u32)),
                    Type::F64 => write!(out, "(f64.const {})", f64::from_bits(*bits)),
                };
            }
            Term::Op { name, args, .. } => {
                out.push('(');
                out.push_str(name);
                for a in args {
                    out.push(' ');
                    a.write_wat(out);
                }
                out.push(')');
            }
        }
    }
}

/// `$a`, `$b`, … `$z`, `$v26`, …
fn var_name(index: u32) -> String {
    if index < 26 {
        char::from(b'a' + index as u8).to_string()
    } else {
        format!("v{index}")
    }
}

/// What a root is, so the same root is found in both traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RootKey {
    /// The condition of the guard leaving through this exit.
    Guard(u32),
    /// A slot an exit hands back.
    ExitSlot(u32, u32),
    /// A slot the loop hands back to its next iteration.
    LoopSlot(u32),
    /// The address of the n-th store.
    StoreAddr(usize),
    /// The value of the n-th store.
    StoreValue(usize),
    /// The value of the n-th `global.set`.
    GlobalSet(usize),
}

/// Every root of a trace with its tree.
pub fn roots(trace: &Trace) -> BTreeMap<RootKey, Term> {
    let trees = Trees::new(trace);
    let mut roots = BTreeMap::new();
    let (mut stores, mut global_sets) = (0, 0);
    for inst in &trace.body {
        match inst {
            Inst::Guard { cond, exit, .. } => {
                roots.insert(
                    RootKey::Guard(exit.id),
                    trees.operand(*cond, Some(Type::I32)),
                );
                for &(slot, value) in &exit.state {
                    roots.insert(RootKey::ExitSlot(exit.id, slot), trees.operand(value, None));
                }
            }
            Inst::Store {
                kind, addr, value, ..
            } => {
                roots.insert(
                    RootKey::StoreAddr(stores),
                    trees.operand(*addr, Some(Type::I32)),
                );
                let ty = kind.info().operand;
                roots.insert(RootKey::StoreValue(stores), trees.operand(*value, Some(ty)));
                stores += 1;
            }
            Inst::GlobalSet { value, .. } => {
                roots.insert(RootKey::GlobalSet(global_sets), trees.operand(*value, None));
                global_sets += 1;
            }
            _ => {}
        }
    }
    match &trace.end {
        End::Loop { state } => {
            for &(slot, value) in state {
                roots.insert(RootKey::LoopSlot(slot), trees.operand(value, None));
            }
        }
        End::Exit(exit) => {
            for &(slot, value) in &exit.state {
                roots.insert(RootKey::ExitSlot(exit.id, slot), trees.operand(value, None));
            }
        }
    }
    roots
}

/// Builds trees of a trace's values.
struct Trees<'t> {
    defs: HashMap<ValueId, &'t Inst>,
    inputs: HashMap<ValueId, (Type, Source)>,
}

impl<'t> Trees<'t> {
    fn new(trace: &'t Trace) -> Trees<'t> {
        Trees {
            defs: trace
                .body
                .iter()
                .filter_map(|i| i.def().map(|(v, _)| (v, i)))
                .collect(),
            inputs: trace
                .inputs
                .iter()
                .map(|i| (i.value, (i.ty, i.source)))
                .collect(),
        }
    }

    fn operand(&self, operand: Operand, ty: Option<Type>) -> Term {
        let mut budget = MAX_TERM_NODES;
        self.build(operand, ty, &mut budget)
    }

    fn build(&self, operand: Operand, ty: Option<Type>, budget: &mut usize) -> Term {
        let value = match operand {
            Operand::Const(bits) => return Term::Const { ty, bits },
            Operand::Value(v) => v,
        };
        if let Some(&(ty, source)) = self.inputs.get(&value) {
            return Term::Input { ty, source };
        }
        let Some(inst) = self.defs.get(&value) else {
            // A valid trace defines every value it uses; say so rather than guess.
            return Term::Opaque {
                ty: ty.unwrap_or(Type::I64),
                what: format!("(undefined {value})"),
            };
        };
        let ty = inst.def().map_or(Type::I64, |(_, t)| t);
        if *budget == 0 {
            return Term::Opaque {
                ty,
                what: "…".to_string(),
            };
        }
        *budget -= 1;
        let mut arg = |o: Operand, t: Option<Type>| self.build(o, t, budget);
        match inst {
            Inst::Num { op, args, .. } => Term::Op {
                name: op.name().to_string(),
                ty,
                args: args
                    .iter()
                    .zip(op.params())
                    .map(|(&a, &t)| arg(a, Some(t)))
                    .collect(),
            },
            Inst::Select {
                ty: t, cond, a, b, ..
            } => Term::Op {
                name: "select".to_string(),
                ty,
                args: vec![
                    arg(*a, Some(*t)),
                    arg(*b, Some(*t)),
                    arg(*cond, Some(Type::I32)),
                ],
            },
            Inst::Load {
                kind, offset, addr, ..
            } => Term::Op {
                name: if *offset == 0 {
                    kind.name().to_string()
                } else {
                    format!("{} offset={offset}", kind.name())
                },
                ty,
                args: vec![arg(*addr, Some(Type::I32))],
            },
            Inst::MemorySize { .. } => Term::Opaque {
                ty,
                what: "(memory.size)".to_string(),
            },
            Inst::MemoryGrow { .. } => Term::Opaque {
                ty,
                what: "(memory.grow …)".to_string(),
            },
            Inst::Store { .. } | Inst::GlobalSet { .. } | Inst::Guard { .. } => Term::Opaque {
                ty,
                what: "(?)".to_string(),
            },
        }
    }
}

/// The smallest differing pair of subterms of `before` and `after`: while both apply the
/// same operator and differ in exactly one operand, look into that operand.
pub fn smallest_difference<'a>(before: &'a Term, after: &'a Term) -> (&'a Term, &'a Term) {
    if let (
        Term::Op {
            name: a, args: aa, ..
        },
        Term::Op {
            name: b, args: bb, ..
        },
    ) = (before, after)
    {
        if a == b && aa.len() == bb.len() {
            let mut differing = aa.iter().zip(bb).filter(|(x, y)| x != y);
            if let (Some((x, y)), None) = (differing.next(), differing.next()) {
                return smallest_difference(x, y);
            }
        }
    }
    (before, after)
}

/// The rewrites that turn `before` into `after`, smallest first: the smallest differing
/// pair, and where both sides of it apply operators of the same arity, each pair of
/// operands that are operators and differ is a rewrite of its own, replaced in the outer
/// pair by one shared placeholder. So `(i32.mul (i32.sub a 1) 8) → (i32.shl (i32.add a
/// -1) 3)` is two rewrites, each of which recurs across traces, not one that does not.
pub fn decompose(before: &Term, after: &Term, out: &mut Vec<(Term, Term)>) {
    if before == after {
        return;
    }
    let (x, y) = smallest_difference(before, after);
    let (
        Term::Op {
            name: xn,
            ty: xt,
            args: xa,
        },
        Term::Op {
            name: yn,
            ty: yt,
            args: ya,
        },
    ) = (x, y)
    else {
        out.push((x.clone(), y.clone()));
        return;
    };
    if xa.len() != ya.len() {
        out.push((x.clone(), y.clone()));
        return;
    }
    let (mut left, mut right) = (xa.clone(), ya.clone());
    for (i, (a, b)) in xa.iter().zip(ya).enumerate() {
        if a != b && matches!(a, Term::Op { .. }) && matches!(b, Term::Op { .. }) {
            decompose(a, b, out);
            let placeholder = Term::Opaque {
                ty: a.ty().unwrap_or(Type::I64),
                what: format!("(rewritten {i})"),
            };
            left[i] = placeholder.clone();
            right[i] = placeholder;
        }
    }
    let outer = (
        Term::Op {
            name: xn.clone(),
            ty: *xt,
            args: left,
        },
        Term::Op {
            name: yn.clone(),
            ty: *yt,
            args: right,
        },
    );
    if outer.0 != outer.1 {
        out.push(outer);
    }
}

/// A rewrite with its variables abstracted: every input, and every larger subterm of the
/// left side that the right side keeps, becomes a variable, numbered in order of
/// appearance on the left, then the right. Two traces applying the same rewrite to
/// different operands give the same abstracted pair.
pub fn abstracted(before: &Term, after: &Term) -> (Term, Term) {
    let mut vars: Vec<Term> = Vec::new();
    let left = abstract_shared(before, after, true, &mut vars);
    let right = abstract_shared(after, before, false, &mut vars);
    (left, right)
}

fn abstract_shared(term: &Term, other: &Term, is_root: bool, vars: &mut Vec<Term>) -> Term {
    let shared = !is_root && !matches!(term, Term::Const { .. }) && other.contains(term);
    if shared || matches!(term, Term::Input { .. } | Term::Opaque { .. }) {
        let index = match vars.iter().position(|v| v == term) {
            Some(i) => i,
            None => {
                vars.push(term.clone());
                vars.len() - 1
            }
        } as u32;
        return Term::Var {
            ty: term.ty().unwrap_or(Type::I64),
            index,
        };
    }
    match term {
        Term::Op { name, ty, args } => Term::Op {
            name: name.clone(),
            ty: *ty,
            args: args
                .iter()
                .map(|a| abstract_shared(a, other, false, vars))
                .collect(),
        },
        other_term => other_term.clone(),
    }
}

/// The number of nodes of the larger side: patterns are shown smallest first among
/// equals, and a cut side is never smaller than [`MAX_TERM_NODES`].
pub fn pattern_size(before: &Term, after: &Term) -> usize {
    before.size().max(after.size())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(text: &str) -> Trace {
        ir::text::parse(text).unwrap()
    }

    /// The abstracted smallest rewrite at the loop's slot 0, as folded wasm text.
    fn check(before: &str, after: &str, expected: &str) {
        let (b, a) = (roots(&trace(before)), roots(&trace(after)));
        let key = RootKey::LoopSlot(0);
        let mut found = Vec::new();
        decompose(&b[&key], &a[&key], &mut found);
        let found: Vec<String> = found
            .iter()
            .map(|(x, y)| {
                let (x, y) = abstracted(x, y);
                format!("{} => {}", x.wat(), y.wat())
            })
            .collect();
        assert_eq!(found.join("; "), expected);
    }

    #[test]
    fn a_rewrite_inside_a_shared_context_is_found_and_abstracted() {
        check(
            "trace locals=2\n  in  v0:i32 = slot 0\n  in  v1:i32 = slot 1\n  v2:i32 = i32.add v0 v1\n  v3:i32 = i32.mul v2 8\n  v4:i32 = i32.xor v3 v1\n  loop [s0=v4]\n",
            "trace locals=2\n  in  v0:i32 = slot 0\n  in  v1:i32 = slot 1\n  v2:i32 = i32.add v0 v1\n  v3:i32 = i32.shl v2 3\n  v4:i32 = i32.xor v3 v1\n  loop [s0=v4]\n",
            "(i32.mul (local.get $a) (i32.const 8)) => (i32.shl (local.get $a) (i32.const 3))",
        );
    }

    #[test]
    fn different_operands_give_the_same_pattern() {
        check(
            "trace locals=1\n  in  v0:i32 = slot 0\n  v1:i32 = i32.sub v0 4\n  v2:i32 = i32.mul v1 8\n  loop [s0=v2]\n",
            "trace locals=1\n  in  v0:i32 = slot 0\n  v1:i32 = i32.sub v0 4\n  v2:i32 = i32.shl v1 3\n  loop [s0=v2]\n",
            "(i32.mul (local.get $a) (i32.const 8)) => (i32.shl (local.get $a) (i32.const 3))",
        );
    }

    #[test]
    fn two_rewrites_nested_are_two_patterns() {
        check(
            "trace locals=1\n  in  v0:i32 = slot 0\n  v1:i32 = i32.sub v0 1\n  v2:i32 = i32.mul v1 8\n  loop [s0=v2]\n",
            "trace locals=1\n  in  v0:i32 = slot 0\n  v1:i32 = i32.add v0 -1\n  v2:i32 = i32.shl v1 3\n  loop [s0=v2]\n",
            "(i32.sub (local.get $a) (i32.const 1)) => (i32.add (local.get $a) (i32.const -1)); \
             (i32.mul (local.get $a) (i32.const 8)) => (i32.shl (local.get $a) (i32.const 3))",
        );
    }

    #[test]
    fn a_value_replaced_by_a_constant_keeps_its_whole_tree() {
        check(
            "trace locals=2\n  in  v0:i32 = slot 0\n  in  v1:i32 = slot 1\n  v2:i32 = i32.lt_u v0 v1\n  guard v2 else exit 0 pc=1 @0x1 []\n  loop [s0=v2]\n",
            "trace locals=2\n  in  v0:i32 = slot 0\n  in  v1:i32 = slot 1\n  v2:i32 = i32.lt_u v0 v1\n  guard v2 else exit 0 pc=1 @0x1 []\n  loop [s0=1]\n",
            "(i32.lt_u (local.get $a) (local.get $b)) => (i64.const 1)",
        );
    }

    #[test]
    fn a_large_tree_is_cut() {
        let mut text = String::from("trace locals=1\n  in  v0:i32 = slot 0\n");
        for i in 1..200 {
            let _ = writeln!(text, "  v{i}:i32 = i32.add v{} v{}", i - 1, i - 1);
        }
        text.push_str("  loop [s0=v199]\n");
        let roots = roots(&trace(&text));
        let size = roots[&RootKey::LoopSlot(0)].size();
        assert!(size <= 2 * MAX_TERM_NODES + 1, "{size} nodes");
    }
}
