//! Memory: a load reads what an earlier store wrote, or looks past stores it cannot
//! overlap.
//!
//! A memory state is `mem0` (the entry memory), `(store@off mem addr value)` or
//! `(grownN mem)`. A load `(load@off mem addr)` over a state made by a store relates to
//! that store through their addresses: the address classes are equal (same SSA value
//! after rewriting), or both are constants. Effective addresses are `addr + offset`
//! without wrapping (wasm computes them in 33 bits), so comparing offsets over the same
//! address class is exact. Addresses that are different non-constant classes may be
//! equal at run time: nothing is concluded (they *may alias*).
//!
//! These rules relate *values* only. Where a load's bytes are in the store's bytes, the
//! load's value is the stored bits, shifted and narrowed ([`forward_steps`]). A load is
//! still performed at its place on the spine unless lowering shows it cannot trap (an
//! earlier access reached at least as far from the same address class), so removing a
//! load never removes a trap. Removing stores overwritten before any read, exit or trap
//! is the spine's business (`lower.rs`), not a rewrite: it changes effects, not values.
//!
//! The rules are custom searchers over load nodes (a load's kind and offset are part of
//! its head, which egg's patterns cannot bind), each with the identity it applies:
//! - `mem-forward-store`: load(store(m, a, v), a) with the load's bytes inside the
//!   store's = the stored bits at that byte offset, extended as the load extends;
//! - `mem-load-past-store`: load(store(m, a, v), a) with disjoint bytes = load(m, a);
//! - `mem-load-past-grow`: load(grown(m), a) = load(m, a) (growing keeps every byte).
//!
//! The forwarding table is proven for every store kind, load kind and byte offset by
//! `tests/rule_proofs.rs`.

use std::borrow::Cow;

use egg::{Applier, Id, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var};
use ir::{LoadKind, NumOp, StoreKind, Type};

use super::Rule;
use crate::analysis::Graph;
use crate::lang::{Head, Node};

/// One step of turning stored bits into a load's value: an operator applied to the
/// value so far, with a constant right operand for binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Unary(NumOp),
    WithConst(NumOp, u64),
}

fn int_type_of(ty: Type) -> Type {
    match ty {
        Type::F32 => Type::I32,
        Type::F64 => Type::I64,
        t => t,
    }
}

/// The steps that compute a `load`'s value from the value a `store` wrote, when the load
/// reads bytes `delta..delta + load.bytes()` of the store's bytes; `None` if those bytes
/// are not all inside the store's.
pub fn forward_steps(store: StoreKind, delta: u32, load: LoadKind) -> Option<Vec<Step>> {
    let (load_bytes, store_bytes) = (load.bytes(), store.bytes());
    if delta.checked_add(load_bytes)? > store_bytes {
        return None;
    }
    let mut steps = Vec::new();
    // The stored operand as an integer.
    let mut ty = store.operand();
    match ty {
        Type::F32 => steps.push(Step::Unary(NumOp::I32ReinterpretF32)),
        Type::F64 => steps.push(Step::Unary(NumOp::I64ReinterpretF64)),
        _ => {}
    }
    ty = int_type_of(ty);
    // Little-endian: the bytes from `delta` on are the value shifted right.
    if delta > 0 {
        let op = if ty == Type::I32 {
            NumOp::I32ShrU
        } else {
            NumOp::I64ShrU
        };
        steps.push(Step::WithConst(op, 8 * delta as u64));
    }
    // To the integer type of the load's result.
    let target = int_type_of(load.result());
    match (ty, target) {
        (Type::I64, Type::I32) => steps.push(Step::Unary(NumOp::I32WrapI64)),
        (Type::I32, Type::I64) => steps.push(Step::Unary(NumOp::I64ExtendI32U)),
        _ => {}
    }
    // Keep the bytes the load reads, extended as it extends them.
    if load_bytes * 8 < target.bits() {
        let step = match (target, load_bytes, load.info().signed) {
            (Type::I32, 1, true) => Step::Unary(NumOp::I32Extend8S),
            (Type::I32, 2, true) => Step::Unary(NumOp::I32Extend16S),
            (Type::I64, 1, true) => Step::Unary(NumOp::I64Extend8S),
            (Type::I64, 2, true) => Step::Unary(NumOp::I64Extend16S),
            (Type::I64, 4, true) => Step::Unary(NumOp::I64Extend32S),
            (Type::I32, n, false) => Step::WithConst(NumOp::I32And, (1u64 << (8 * n)) - 1),
            (Type::I64, n, false) => Step::WithConst(NumOp::I64And, (1u64 << (8 * n)) - 1),
            _ => return None,
        };
        steps.push(step);
    }
    match load.result() {
        Type::F32 => steps.push(Step::Unary(NumOp::F32ReinterpretI32)),
        Type::F64 => steps.push(Step::Unary(NumOp::F64ReinterpretI64)),
        _ => {}
    }
    Some(steps)
}

/// How a load's bytes lie relative to a store's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overlap {
    /// Inside the store's bytes, starting this many bytes into them.
    Inside(u32),
    Disjoint,
    /// Partly overlapping, or the addresses may or may not be equal.
    Unknown,
}

/// Where `[load_addr + load_offset, + load_bytes)` lies relative to
/// `[store_addr + store_offset, + store_bytes)`.
pub(crate) fn overlap(
    egraph: &Graph,
    (load_addr, load_offset, load_bytes): (Id, u32, u32),
    (store_addr, store_offset, store_bytes): (Id, u32, u32),
) -> Overlap {
    let (load_base, store_base) = if egraph.find(load_addr) == egraph.find(store_addr) {
        (0, 0)
    } else {
        match (egraph[load_addr].data.konst, egraph[store_addr].data.konst) {
            // Addresses are i32: the constants are zero-extended.
            (Some(l), Some(s)) => (l & 0xffff_ffff, s & 0xffff_ffff),
            _ => return Overlap::Unknown,
        }
    };
    let load_start = load_base + load_offset as u64;
    let load_end = load_start + load_bytes as u64;
    let store_start = store_base + store_offset as u64;
    let store_end = store_start + store_bytes as u64;
    if load_end <= store_start || store_end <= load_start {
        Overlap::Disjoint
    } else if store_start <= load_start && load_end <= store_end {
        Overlap::Inside((load_start - store_start) as u32)
    } else {
        Overlap::Unknown
    }
}

/// Which of the three memory identities a rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    ForwardStore,
    PastStore,
    PastGrow,
}

/// A load node of a class, with the memory state node under it.
struct LoadOverState {
    kind: LoadKind,
    offset: u32,
    addr: Id,
    state: Node,
}

/// Every (load node of `eclass`, node of its memory state) pair.
fn loads_over_states(egraph: &Graph, eclass: Id) -> Vec<LoadOverState> {
    let mut found = Vec::new();
    for node in egraph[eclass].iter() {
        if let Head::Load(kind, offset) = node.head {
            for state in egraph[node.children[0]].iter() {
                found.push(LoadOverState {
                    kind: kind.0,
                    offset,
                    addr: node.children[1],
                    state: state.clone(),
                });
            }
        }
    }
    found
}

/// What `identity` says `load` equals, as a class to add (`None` if it does not apply).
fn rewrite(egraph: &mut Graph, identity: Identity, load: &LoadOverState) -> Option<Id> {
    match (identity, load.state.head) {
        (Identity::PastGrow, Head::Grown(_)) => {
            let before = load.state.children[0];
            Some(egraph.add(load_node(load, before)))
        }
        (Identity::ForwardStore | Identity::PastStore, Head::Store(store_kind, store_offset)) => {
            let [before, store_addr, value] = load.state.children[..] else {
                return None;
            };
            let found = overlap(
                egraph,
                (load.addr, load.offset, load.kind.bytes()),
                (store_addr, store_offset, store_kind.0.bytes()),
            );
            match (identity, found) {
                (Identity::ForwardStore, Overlap::Inside(delta)) => {
                    let steps = forward_steps(store_kind.0, delta, load.kind)?;
                    Some(apply_steps(egraph, value, &steps))
                }
                (Identity::PastStore, Overlap::Disjoint) => {
                    Some(egraph.add(load_node(load, before)))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn load_node(load: &LoadOverState, state: Id) -> Node {
    Node::new(
        Head::Load(crate::lang::Kind(load.kind), load.offset),
        vec![state, load.addr],
    )
}

/// Adds the nodes of `steps` applied to `value`; returns the last one's class.
pub fn apply_steps(egraph: &mut Graph, value: Id, steps: &[Step]) -> Id {
    let mut current = value;
    for step in steps {
        current = match *step {
            Step::Unary(op) => egraph.add(Node::new(Head::Num(op), vec![current])),
            Step::WithConst(op, k) => {
                let k = egraph.add(Node::leaf(Head::Const(op.params()[1], k)));
                egraph.add(Node::new(Head::Num(op), vec![current, k]))
            }
        };
    }
    current
}

/// The searcher and applier of one memory identity.
struct MemoryRule(Identity);

impl Searcher<Node, crate::analysis::TypeConst> for MemoryRule {
    fn search_eclass_with_limit(
        &self,
        egraph: &Graph,
        eclass: Id,
        limit: usize,
    ) -> Option<SearchMatches<'_, Node>> {
        if limit == 0 {
            return None;
        }
        // A match is the class; the applier works out what each of its loads equals.
        // Only classes where this identity has something to say match, so that egg's
        // scheduler sees real matches.
        let applies = loads_over_states(egraph, eclass)
            .iter()
            .any(|load| self.could_apply(egraph, load));
        applies.then(|| SearchMatches {
            eclass,
            substs: vec![Subst::default()],
            ast: None::<Cow<'_, PatternAst<Node>>>,
        })
    }

    fn vars(&self) -> Vec<Var> {
        Vec::new()
    }
}

impl MemoryRule {
    /// Whether `load` is a shape this identity rewrites (without changing the graph).
    fn could_apply(&self, egraph: &Graph, load: &LoadOverState) -> bool {
        match (self.0, load.state.head) {
            (Identity::PastGrow, Head::Grown(_)) => true,
            (Identity::ForwardStore | Identity::PastStore, Head::Store(kind, offset)) => {
                let found = overlap(
                    egraph,
                    (load.addr, load.offset, load.kind.bytes()),
                    (load.state.children[1], offset, kind.0.bytes()),
                );
                match (self.0, found) {
                    (Identity::ForwardStore, Overlap::Inside(delta)) => {
                        forward_steps(kind.0, delta, load.kind).is_some()
                    }
                    (Identity::PastStore, Overlap::Disjoint) => true,
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

impl Applier<Node, crate::analysis::TypeConst> for MemoryRule {
    fn apply_one(
        &self,
        egraph: &mut Graph,
        eclass: Id,
        _subst: &Subst,
        _searcher_ast: Option<&PatternAst<Node>>,
        _rule_name: Symbol,
    ) -> Vec<Id> {
        // egg's appliers do their own unions and report the classes that changed.
        let loads = loads_over_states(egraph, eclass);
        let mut changed = Vec::new();
        for load in &loads {
            if let Some(equal) = rewrite(egraph, self.0, load) {
                if egraph.union(eclass, equal) {
                    changed.push(equal);
                }
            }
        }
        changed
    }
}

pub(crate) fn rules() -> Vec<Rule> {
    let rule = |name: &str, identity| {
        Rewrite::new(name, MemoryRule(identity), MemoryRule(identity))
            .unwrap_or_else(|e| panic!("rule {name}: {e}"))
    };
    vec![
        // load(store(m, a, v), a) = bits of v at the load's offset, extended like the
        // load; when the load's bytes are inside the store's (same address class or
        // constant addresses).
        rule("mem-forward-store", Identity::ForwardStore),
        // load(store(m, a, v), b) = load(m, b); when the bytes are disjoint.
        rule("mem-load-past-store", Identity::PastStore),
        // load(grown(m), a) = load(m, a).
        rule("mem-load-past-grow", Identity::PastGrow),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_steps_cover_exactly_the_contained_loads() {
        use ir::ops::{LOAD_KINDS, STORE_KINDS};
        let mut forwarded = 0;
        for store in &STORE_KINDS {
            for load in &LOAD_KINDS {
                for delta in 0..8 {
                    let inside = delta + load.bytes <= store.bytes;
                    let steps = forward_steps(store.kind, delta, load.kind);
                    assert_eq!(steps.is_some(), inside, "{store:?} {load:?} {delta}");
                    forwarded += steps.is_some() as usize;
                }
            }
        }
        assert!(forwarded > 100, "{forwarded}");
        // Same kind, same place: nothing to do.
        assert_eq!(
            forward_steps(StoreKind::I32, 0, LoadKind::I32),
            Some(vec![])
        );
        assert_eq!(
            forward_steps(StoreKind::I64, 4, LoadKind::I32_8U),
            Some(vec![
                Step::WithConst(NumOp::I64ShrU, 32),
                Step::Unary(NumOp::I32WrapI64),
                Step::WithConst(NumOp::I32And, 0xff),
            ])
        );
    }
}
