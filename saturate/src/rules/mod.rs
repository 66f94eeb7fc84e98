//! The rule library, one file per family.
//!
//! # Policy
//!
//! - **A rewrite is never worse than what it replaces** under the cost model
//!   (`cost.rs`): its right-hand side costs at most what its left-hand side costs, and
//!   usually less. Rules of equal cost exist only to reach a cheaper form (moving a
//!   constant to the right so folding rules see it, turning a subtraction of a constant
//!   into an addition so constant chains fold).
//! - **No general associativity or commutativity.** They only grow the e-graph. Instead
//!   constants are canonicalized to the right of commutative operators, and the few
//!   reassociations that fold two constants into one are written out, each guarded by
//!   "both are constants".
//! - **Integer rules only.** Float operators have no rules and are never folded: wasm
//!   lets a NaN result be any NaN, the engine's bits may differ from the host's, and a
//!   float rewrite ships only if proven bit-for-bit. Floats pass through untouched.
//! - **Nothing that can trap is rewritten.** Trapping operators stay on the spine as
//!   opaque leaves; only a division or remainder by a constant that makes it total
//!   (non-zero, and not -1 for a signed division) is a pure node that rules may touch.
//! - **Memory rules relate values, never effects.** `memory.rs` forwards a store's bits
//!   to a load inside them and lets a load look past stores it provably does not overlap
//!   (same address class or constant addresses; different non-constant addresses may
//!   alias, so nothing is concluded). A load leaves the spine only where lowering shows
//!   it cannot trap; dead stores are removed by lowering under the conditions written
//!   there. Float bits move through memory unchanged (reinterpretations are exact).
//! - Every rule is preceded by a one-line comment with its identity and side condition,
//!   is written once for both widths where it holds (`{t}` is `i32` or `i64`, `{w}` the
//!   width), and is named `<type>-<name>`. Every rule must be proven by `verify`.

use std::collections::HashMap;
use std::sync::OnceLock;

use egg::{ConditionalApplier, Id, Pattern, Rewrite, Subst, Symbol, Var};

use crate::analysis::{Graph, TypeConst};
use crate::lang::Node;

mod bitops;
mod compare;
mod extend_wrap;
mod int_algebra;
pub mod memory;
mod select;
mod shifts;

/// A rewrite of kiln's e-graph.
pub type Rule = Rewrite<Node, TypeConst>;

/// The whole library, built once.
pub struct Library {
    pub rules: Vec<Rule>,
    /// Each family's name and its rules' names.
    pub families: Vec<(&'static str, Vec<&'static str>)>,
    names: HashMap<Symbol, &'static str>,
}

impl Library {
    /// The `'static` name of a rule egg reports by symbol.
    pub fn name(&self, symbol: Symbol) -> Option<&'static str> {
        self.names.get(&symbol).copied()
    }
}

/// The rule library.
pub fn library() -> &'static Library {
    static LIBRARY: OnceLock<Library> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let families: Vec<(&'static str, Vec<Rule>)> = vec![
            ("int_algebra", int_algebra::rules()),
            ("bitops", bitops::rules()),
            ("shifts", shifts::rules()),
            ("compare", compare::rules()),
            ("select", select::rules()),
            ("extend_wrap", extend_wrap::rules()),
            ("memory", memory::rules()),
        ];
        let mut rules = Vec::new();
        let mut names = HashMap::new();
        let mut listed = Vec::new();
        for (family, family_rules) in families {
            let mut family_names = Vec::new();
            for rule in family_rules {
                let name: &'static str = Box::leak(rule.name.to_string().into_boxed_str());
                assert!(
                    names.insert(rule.name, name).is_none(),
                    "duplicate rule {name}"
                );
                family_names.push(name);
                rules.push(rule);
            }
            listed.push((family, family_names));
        }
        Library {
            rules,
            families: listed,
            names,
        }
    })
}

/// An integer width rules are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct W {
    pub t: &'static str,
    pub bits: u32,
}

pub(crate) const I32: W = W { t: "i32", bits: 32 };
pub(crate) const I64: W = W { t: "i64", bits: 64 };
pub(crate) const WIDTHS: [W; 2] = [I32, I64];

impl W {
    /// All ones, raw.
    pub fn mask(self) -> u64 {
        if self.bits == 32 {
            0xffff_ffff
        } else {
            u64::MAX
        }
    }

    fn fill(self, template: &str) -> String {
        template
            .replace("{t}", self.t)
            .replace("{w}", &self.bits.to_string())
    }
}

fn pattern(w: W, template: &str) -> Pattern<Node> {
    let text = w.fill(template);
    text.parse()
        .unwrap_or_else(|e| panic!("bad pattern {text}: {e:?}"))
}

/// An unconditional rule `lhs => rhs` at width `w`.
pub(crate) fn rw(w: W, name: &str, lhs: &str, rhs: &str) -> Rule {
    let name = format!("{}-{name}", w.t);
    Rewrite::new(name.clone(), pattern(w, lhs), pattern(w, rhs))
        .unwrap_or_else(|e| panic!("rule {name}: {e}"))
}

/// A rule that applies only where `cond` holds of the match.
pub(crate) fn rw_if(
    w: W,
    name: &str,
    lhs: &str,
    rhs: &str,
    cond: impl Fn(&mut Graph, Id, &Subst) -> bool + Send + Sync + 'static,
) -> Rule {
    let name = format!("{}-{name}", w.t);
    let applier = ConditionalApplier {
        condition: cond,
        applier: pattern(w, rhs),
    };
    Rewrite::new(name.clone(), pattern(w, lhs), applier)
        .unwrap_or_else(|e| panic!("rule {name}: {e}"))
}

/// A rule for a fixed pair of types (no `{t}` template), named as given.
pub(crate) fn rw_fixed(name: &str, lhs: &str, rhs: &str) -> Rule {
    let lhs: Pattern<Node> = lhs.parse().unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let rhs: Pattern<Node> = rhs.parse().unwrap_or_else(|e| panic!("{name}: {e:?}"));
    Rewrite::new(name.to_string(), lhs, rhs).unwrap_or_else(|e| panic!("rule {name}: {e}"))
}

pub(crate) fn var(name: &str) -> Var {
    name.parse().expect("a pattern variable")
}

/// The constant bits of the class bound to `v`, if known.
pub(crate) fn konst(egraph: &Graph, subst: &Subst, v: Var) -> Option<u64> {
    egraph[subst[v]].data.konst
}

/// Condition: `?c` is a constant and `?x` is not (canonicalize constants to the right).
pub(crate) fn const_left(
    c: &str,
    x: &str,
) -> impl Fn(&mut Graph, Id, &Subst) -> bool + Send + Sync + 'static {
    let (c, x) = (var(c), var(x));
    move |g: &mut Graph, _, s: &Subst| konst(g, s, c).is_some() && konst(g, s, x).is_none()
}

/// Condition: every one of `vars` is bound to a constant, and `pred` holds of them.
pub(crate) fn consts(
    vars: &[&str],
    pred: impl Fn(&[u64]) -> bool + Send + Sync + 'static,
) -> impl Fn(&mut Graph, Id, &Subst) -> bool + Send + Sync + 'static {
    let vars: Vec<Var> = vars.iter().map(|v| var(v)).collect();
    move |g: &mut Graph, _, s: &Subst| {
        let values: Option<Vec<u64>> = vars.iter().map(|&v| konst(g, s, v)).collect();
        values.is_some_and(|values| pred(&values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_builds_with_unique_names() {
        let lib = library();
        let total: usize = lib.families.iter().map(|(_, r)| r.len()).sum();
        assert_eq!(total, lib.rules.len());
        for (family, rules) in &lib.families {
            println!("{family}: {}", rules.len());
            assert!(!rules.is_empty(), "{family}");
        }
        assert!(lib.rules.len() >= 60, "{} rules", lib.rules.len());
    }
    /// The type of every variable of `ast`, from the operand types of where it is used.
    fn var_types(ast: &egg::PatternAst<Node>) -> HashMap<Var, ir::Type> {
        use crate::lang::Head;
        use egg::ENodeOrVar;
        let mut types = HashMap::new();
        for node in ast.as_ref() {
            if let ENodeOrVar::ENode(n) = node {
                let params: Vec<ir::Type> = match n.head {
                    Head::Num(op) => op.params().to_vec(),
                    Head::Select(ty) => vec![ty, ty, ir::Type::I32],
                    _ => continue,
                };
                for (child, ty) in n.children.iter().zip(params) {
                    if let ENodeOrVar::Var(v) = &ast[*child] {
                        types.insert(*v, ty);
                    }
                }
            }
        }
        types
    }

    /// Every rule, applied to constants (edge values and random ones), joins two classes
    /// of the same constant value: the analysis asserts that on every merge. This checks
    /// each rule on concrete values (proofs are `verify`'s); rules whose side condition
    /// asks for a non-constant operand are exercised by the random-trace test instead.
    #[test]
    fn every_rule_holds_on_constants() {
        use crate::analysis::TypeConst;
        let edges = [
            0u64,
            1,
            2,
            3,
            7,
            8,
            31,
            32,
            33,
            63,
            64,
            255,
            256,
            65535,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            1 << 63,
            u64::MAX,
            u64::MAX - 1,
        ];
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let lib = library();
        let mut never_fired = Vec::new();
        for rule in &lib.rules {
            let name = lib.name(rule.name).unwrap();
            // The memory rules search with code, not patterns; `memory.rs` tests them.
            let Some(ast) = rule.searcher.get_pattern_ast().cloned() else {
                continue;
            };
            let types = var_types(&ast);
            let mut fired = false;
            for trial in 0..300 {
                let mut g = Graph::new(TypeConst);
                let mut subst = Subst::with_capacity(types.len());
                let mut values = Vec::new();
                for (v, ty) in &types {
                    // Some trials give every variable the same value (x op x rules).
                    let r = if trial % 5 == 0 {
                        edges[trial / 5 % edges.len()]
                    } else if next() % 2 == 0 {
                        edges[(next() % edges.len() as u64) as usize]
                    } else {
                        next()
                    };
                    let bits = if ty.bits() == 32 { r & 0xffff_ffff } else { r };
                    values.push((v.to_string(), bits));
                    subst.insert(*v, g.add(Node::leaf(crate::lang::Head::Const(*ty, bits))));
                }
                g.add_instantiation(&ast, &subst);
                g.rebuild();
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let matches = rule.search(&g);
                    let changed = !rule.apply(&mut g, &matches).is_empty();
                    g.rebuild();
                    changed || !matches.is_empty()
                }));
                match result {
                    Ok(f) => fired |= f,
                    Err(_) => panic!("rule {name} is wrong for {values:?}"),
                }
            }
            if !fired {
                never_fired.push(name);
            }
        }
        let unexpected: Vec<_> = never_fired
            .iter()
            .filter(|n| !n.ends_with("const-right"))
            .collect();
        assert!(
            unexpected.is_empty(),
            "never fired on constants: {unexpected:?}"
        );
    }
}
