//! The rule policy (`rules/mod.rs`), checked against the cost model (`cost.rs`): a
//! rewrite's right-hand side never costs more than its left-hand side.
//!
//! # What is measured
//!
//! Each pattern rule's left-hand side is built in an e-graph with its variables bound to
//! distinct leaves, each variable once an input and once a constant, in every
//! combination, the constants drawn from edge values ([`CONSTANTS`]). Where the rule
//! fires at the root (its side condition, if any, holds), both sides are costed the way
//! extraction costs them: each distinct class once (a shared value is computed once), a
//! class whose value the analysis folds to a constant at 0 (extraction picks the
//! constant), and the variables' own classes at 0 on both sides, since both sides keep
//! them. So a right-hand side such as `(i32.add ?x (i32.add ?c1 ?c2))` over constants
//! costs one add, as it will after folding.
//!
//! What this does not see: a left-hand side's inner node that other users share stays
//! after the rewrite, so the saving a pattern shows is an upper bound on the saving in a
//! trace; the check is of the rule, the extraction test of the whole.
//!
//! The memory rules search and apply with code (a load's kind and offset are in its
//! head): their one rewrite that changes cost, store-to-load forwarding, replaces a load
//! by the steps `memory::forward_steps` lists, and those are checked for every store
//! kind, load kind and byte offset. Their other two rewrite a load into a load.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use egg::{ENodeOrVar, Id, PatternAst, Subst, Var};
use ir::ops::{LOAD_KINDS, STORE_KINDS};
use ir::Type;
use saturate::analysis::{Graph, TypeConst};
use saturate::cost::{node_cost, op_cost};
use saturate::lang::{Head, Kind, Node};
use saturate::rules::library;
use saturate::rules::memory::{forward_steps, Step};

/// Rules whose right-hand side costs more than their left-hand side under the current
/// cost model. A rule that stops violating must be taken off this list (the test says
/// so); one that starts must be fixed or listed here with its reason.
///
/// Both turn a `select` (2 units: `test` and `cmov`, measured 1.8 `i32.add`s) into a
/// comparison with zero (3: compare, `setcc` and a zero-extension, measured 3.2 to 3.9)
/// and cost one more than they replace under the measured costs (issue 4). The rule
/// owner decides: drop them, or keep them for a later rule that folds the comparison.
const KNOWN_EXCEPTIONS: &[&str] = &["i32-select-one-zero", "i32-select-zero-one"];

/// The rules that never fire on these instantiations, and why: none. A rule added to
/// the library that the instantiations cannot exercise fails the test until it is
/// listed here with its reason, so that the check never silently checks nothing.
const NEVER_FIRES: &[&str] = &[];

/// Constant values a variable bound to a constant takes (raw bits, cut to the width):
/// the edges that side conditions ask about (0, 1, all ones, powers of two, the sign
/// bit, shift counts below and at the width).
const CONSTANTS: &[u64] = &[
    0,
    1,
    2,
    3,
    8,
    31,
    32,
    63,
    255,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 63,
    u64::MAX,
];

/// More variables than this is a rule this test was not written for: every variable
/// doubles the input/constant combinations and multiplies the constant choices.
const MAX_VARIABLES: usize = 5;

/// Constant choices tried per input/constant combination: with one or two constant
/// variables this covers every pair of [`CONSTANTS`]; beyond, a spread of them.
const CONSTANT_CHOICES: usize = 200;

/// What a variable stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    Value(Type),
    Memory,
}

/// Each variable's sort, from where the pattern uses it.
fn sorts(asts: &[&PatternAst<Node>], sorts: &mut BTreeMap<Var, Sort>) {
    for ast in asts {
        for node in ast.as_ref() {
            let ENodeOrVar::ENode(n) = node else { continue };
            let operands: Vec<Sort> = match n.head {
                Head::Num(op) => op.params().iter().map(|&t| Sort::Value(t)).collect(),
                Head::Select(ty) => vec![Sort::Value(ty), Sort::Value(ty), Sort::Value(Type::I32)],
                Head::Load(..) => vec![Sort::Memory, Sort::Value(Type::I32)],
                Head::Store(kind, _) => vec![
                    Sort::Memory,
                    Sort::Value(Type::I32),
                    Sort::Value(kind.0.operand()),
                ],
                Head::Grown(_) => vec![Sort::Memory],
                Head::Const(..) | Head::Input(..) | Head::Spine(..) | Head::Mem(_) => vec![],
            };
            for (child, sort) in n.children.iter().zip(operands) {
                if let ENodeOrVar::Var(v) = &ast[*child] {
                    sorts.insert(*v, sort);
                }
            }
        }
    }
}

/// The cost of the term `ast` as extraction sees it in `g` (see the module comment).
/// Every node of the term must already be in `g`.
fn term_cost(g: &Graph, ast: &PatternAst<Node>, subst: &Subst) -> u64 {
    let mut ids: Vec<Id> = Vec::with_capacity(ast.as_ref().len());
    let mut counted = HashSet::new();
    let mut cost = 0;
    for node in ast.as_ref() {
        let id = match node {
            ENodeOrVar::Var(v) => {
                counted.insert(g.find(subst[*v]));
                subst[*v]
            }
            ENodeOrVar::ENode(n) => {
                let mut n = n.clone();
                for child in n.children.iter_mut() {
                    *child = ids[usize::from(*child)];
                }
                let id = g.lookup(n.clone()).expect("the term is in the e-graph");
                let class = g.find(id);
                if counted.insert(class) && g[class].data.konst.is_none() {
                    cost += node_cost(&n);
                }
                id
            }
        };
        ids.push(id);
    }
    cost
}

/// A finding: a rule fired and its right-hand side cost more.
#[derive(Debug)]
struct Violation {
    rule: &'static str,
    lhs: u64,
    rhs: u64,
    bindings: String,
}

/// Checks one pattern rule on every instantiation; returns whether it ever fired and the
/// violations seen (at most one per rule: the worst).
fn check_rule(
    rule: &saturate::rules::Rule,
    name: &'static str,
    lhs: &PatternAst<Node>,
    rhs: &PatternAst<Node>,
) -> (bool, Option<Violation>) {
    let mut var_sorts = BTreeMap::new();
    sorts(&[lhs, rhs], &mut var_sorts);
    let vars: Vec<(Var, Sort)> = var_sorts.into_iter().collect();
    assert!(
        vars.len() <= MAX_VARIABLES,
        "{name}: {} variables",
        vars.len()
    );
    let mut fired = false;
    let mut worst: Option<Violation> = None;
    for constant_mask in 0u32..(1 << vars.len()) {
        let constant_vars = (0..vars.len())
            .filter(|i| constant_mask & (1 << i) != 0)
            .count() as u32;
        let choices = (CONSTANTS.len().pow(constant_vars)).min(CONSTANT_CHOICES);
        for choice in 0..choices {
            let mut g = Graph::new(TypeConst);
            let mut subst = Subst::with_capacity(vars.len());
            let mut bindings = Vec::new();
            let mut digit = choice;
            for (index, (var, sort)) in vars.iter().enumerate() {
                let head = match *sort {
                    Sort::Memory => Head::Mem(index as u32),
                    Sort::Value(ty) if constant_mask & (1 << index) != 0 => {
                        let raw = CONSTANTS[digit % CONSTANTS.len()];
                        digit /= CONSTANTS.len();
                        let bits = if ty.bits() == 32 {
                            raw & 0xffff_ffff
                        } else {
                            raw
                        };
                        Head::Const(ty, bits)
                    }
                    Sort::Value(ty) => Head::Input(index as u32, ty),
                };
                bindings.push(format!("{var}={}", Node::leaf(head)));
                subst.insert(*var, g.add(Node::leaf(head)));
            }
            let root = g.add_instantiation(lhs, &subst);
            g.rebuild();
            let lhs_cost = term_cost(&g, lhs, &subst);
            let Some(found) = rule.searcher.search_eclass(&g, g.find(root)) else {
                continue;
            };
            let changed = rule.applier.apply_matches(&mut g, &[found], rule.name);
            if changed.is_empty() {
                // The side condition does not hold here (or both sides are already one
                // class, which costs the same).
                continue;
            }
            fired = true;
            g.rebuild();
            let rhs_cost = term_cost(&g, rhs, &subst);
            if rhs_cost > lhs_cost
                && worst
                    .as_ref()
                    .is_none_or(|w| rhs_cost - lhs_cost > w.rhs - w.lhs)
            {
                worst = Some(Violation {
                    rule: name,
                    lhs: lhs_cost,
                    rhs: rhs_cost,
                    bindings: bindings.join(" "),
                });
            }
        }
    }
    (fired, worst)
}

#[test]
fn no_rule_costs_more_than_it_replaces() {
    let lib = library();
    let mut checked = 0;
    let mut by_code = Vec::new();
    let mut never_fired = BTreeSet::new();
    let mut violations = Vec::new();
    for rule in &lib.rules {
        let name = lib.name(rule.name).expect("every rule is named");
        let (Some(lhs), Some(rhs)) = (
            rule.searcher.get_pattern_ast(),
            rule.applier.get_pattern_ast(),
        ) else {
            by_code.push(name);
            continue;
        };
        checked += 1;
        let (fired, violation) = check_rule(rule, name, lhs, rhs);
        if !fired {
            never_fired.insert(name);
        }
        violations.extend(violation);
    }
    println!(
        "{checked} pattern rules checked; {} searched or applied by code: {by_code:?}",
        by_code.len()
    );
    for v in &violations {
        println!(
            "violation: {} costs {} -> {} with {}",
            v.rule, v.lhs, v.rhs, v.bindings
        );
    }
    assert!(checked > 0);

    let expected_never: BTreeSet<&str> = NEVER_FIRES.iter().copied().collect();
    assert_eq!(
        never_fired, expected_never,
        "rules that never fired on the instantiations (NEVER_FIRES is stale or incomplete)"
    );
    let found: BTreeSet<&str> = violations.iter().map(|v| v.rule).collect();
    let known: BTreeSet<&str> = KNOWN_EXCEPTIONS.iter().copied().collect();
    let new: Vec<_> = found.difference(&known).collect();
    let stale: Vec<_> = known.difference(&found).collect();
    assert!(
        new.is_empty(),
        "rules costing more than they replace: {new:?}"
    );
    assert!(
        stale.is_empty(),
        "listed exceptions that no longer violate: {stale:?}"
    );
}

/// Store-to-load forwarding replaces a load by the operators that cut the stored bits
/// to the load's: those never cost more than the load.
#[test]
fn forwarding_a_store_never_costs_more_than_the_load() {
    let mut forwarded = 0;
    let mut worst: HashMap<(String, String, u32), u64> = HashMap::new();
    for store in &STORE_KINDS {
        for load in &LOAD_KINDS {
            for delta in 0..8 {
                let Some(steps) = forward_steps(store.kind, delta, load.kind) else {
                    continue;
                };
                forwarded += 1;
                let steps_cost: u64 = steps
                    .iter()
                    .map(|s| match *s {
                        Step::Unary(op) | Step::WithConst(op, _) => op_cost(op),
                    })
                    .sum();
                let load_cost = node_cost(&Node::new(Head::Load(Kind(load.kind), 0), vec![]));
                if steps_cost > load_cost {
                    worst.insert(
                        (store.name.to_string(), load.name.to_string(), delta),
                        steps_cost,
                    );
                }
            }
        }
    }
    assert!(forwarded > 0);
    assert!(
        worst.is_empty(),
        "forwarding costs more than the load: {worst:?}"
    );
}
