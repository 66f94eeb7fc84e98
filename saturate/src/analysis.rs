//! The e-class analysis: every class's type, and its constant value when it has one.
//!
//! Folding uses `ir::eval::apply`, the evaluator's own semantics (wrapping arithmetic,
//! shift counts modulo the width), and folds only operators over integer types: float
//! results may be NaNs whose bits the host chooses, and kiln passes floats through
//! untouched. An evaluation that traps is never folded: a division or remainder node is
//! pure only when its divisor makes it total, and spine results are opaque leaves anyway.

use egg::{Analysis, DidMerge, EGraph, Id};
use ir::Type;

use crate::lang::{Head, Node};

/// The facts kept per e-class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The value's type; `None` for a memory state.
    pub ty: Option<Type>,
    /// The raw bits, if the class is a known integer constant.
    pub konst: Option<u64>,
}

/// The analysis: type and constant value.
#[derive(Debug, Default, Clone)]
pub struct TypeConst;

/// The e-graph of kiln's language.
pub type Graph = EGraph<Node, TypeConst>;

fn is_int(ty: Type) -> bool {
    matches!(ty, Type::I32 | Type::I64)
}

/// The constant `node` evaluates to, if its operands are known integer constants.
fn fold(egraph: &Graph, node: &Node) -> Option<u64> {
    let k = |id: &Id| egraph[*id].data.konst;
    match node.head {
        Head::Const(ty, bits) if is_int(ty) => Some(bits),
        Head::Num(op) => {
            if !is_int(op.result()) || !op.params().iter().all(|t| is_int(*t)) {
                return None;
            }
            let args: Option<Vec<u64>> = node.children.iter().map(k).collect();
            ir::eval::apply(op, &args?).ok()
        }
        Head::Select(ty) if is_int(ty) => {
            let cond = k(&node.children[2])?;
            k(&node.children[if cond != 0 { 0 } else { 1 }])
        }
        _ => None,
    }
}

fn type_of(node: &Node) -> Option<Type> {
    match node.head {
        Head::Const(ty, _) | Head::Input(_, ty) | Head::Spine(_, ty) | Head::Select(ty) => Some(ty),
        Head::Mem(_) | Head::Store(..) | Head::Grown(_) => None,
        Head::Num(op) => Some(op.result()),
        Head::Load(kind, _) => Some(kind.0.result()),
    }
}

impl Analysis<Node> for TypeConst {
    type Data = Facts;

    fn make(egraph: &mut Graph, enode: &Node, _id: Id) -> Facts {
        Facts {
            ty: type_of(enode),
            konst: fold(egraph, enode),
        }
    }

    fn merge(&mut self, a: &mut Facts, b: Facts) -> DidMerge {
        // Two classes of different types are never equal: a rule that says so is wrong.
        assert_eq!(a.ty, b.ty, "merging classes of different types");
        match (a.konst, b.konst) {
            (None, Some(k)) => {
                a.konst = Some(k);
                DidMerge(true, false)
            }
            (Some(x), Some(y)) => {
                assert_eq!(x, y, "merging classes with different constant values");
                DidMerge(false, false)
            }
            (Some(_), None) => DidMerge(false, true),
            (None, None) => DidMerge(false, false),
        }
    }

    fn modify(egraph: &mut Graph, id: Id) {
        let facts = &egraph[id].data;
        if let (Some(ty), Some(k)) = (facts.ty, facts.konst) {
            let c = egraph.add(Node::leaf(Head::Const(ty, k)));
            egraph.union(id, c);
        }
    }
}
