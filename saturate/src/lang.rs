//! The e-graph language: one node kind per `ir` operator, with types.
//!
//! A node is a [`Head`] (what it computes) and its children (e-class ids). Constants are
//! bit patterns with their type; inputs and the results of spine instructions that the
//! e-graph must not rewrite (trapping operators, `memory.size`, `memory.grow`) are
//! leaves.
//!
//! Memory is a value too: the entry memory is a leaf, and every store and `memory.grow`
//! makes a new memory state node over the previous one (`Store` keeps what was stored
//! where, so the memory rules can forward it to a load). A load is a node over a memory
//! state and an address; it means "the bytes there, in that state", and is only ever
//! computed at its place on the spine, which is where its trap is checked.
//!
//! The text form (used by rule patterns and in debugging output):
//! `i32:5` (a constant, signed decimal), `in3:i32` (input 3), `spine4:i32` (the result
//! of body instruction 4), `mem0` (the entry memory), `(i32.store@8 mem addr value)`,
//! `(grown5 mem)` (the memory after the `memory.grow` at body instruction 5),
//! `(i32.add a b)`, `(select:i32 a b cond)`, `(i32.load8_u@8 mem addr)`.

use std::fmt;
use std::str::FromStr;

use egg::{FromOp, Id, Language};
use ir::{LoadKind, NumOp, StoreKind, Type};

/// What a node computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Head {
    /// A constant: its type and raw bits (32-bit types zero-extended).
    Const(Type, u64),
    /// The trace's `index`-th input.
    Input(u32, Type),
    /// The result of body instruction `index`, which stays on the spine and is opaque
    /// to the rules: a possibly trapping operator, `memory.size` or `memory.grow`.
    Spine(u32, Type),
    /// The memory the trace starts with (always `Mem(0)`).
    Mem(u32),
    /// The memory after a store of this kind at this offset: children are the memory
    /// before, the address and the value stored.
    Store(SKind, u32),
    /// The memory after the `memory.grow` at body instruction `index` (its child is the
    /// memory before). Growing keeps every byte that was there.
    Grown(u32),
    /// A pure numeric operator (never one that can trap on these operands).
    Num(NumOp),
    /// `select a b cond`, of this type.
    Select(Type),
    /// A load from memory state `children[0]` at address `children[1]`.
    Load(Kind, u32),
}

/// A load kind, ordered by its binary code (egg wants ordered nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kind(pub LoadKind);

impl PartialOrd for Kind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Kind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.code().cmp(&other.0.code())
    }
}

/// A store kind, ordered by its binary code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SKind(pub StoreKind);

impl PartialOrd for SKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.code().cmp(&other.0.code())
    }
}

/// An e-node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    pub head: Head,
    pub children: Vec<Id>,
}

impl Node {
    pub fn leaf(head: Head) -> Node {
        Node {
            head,
            children: Vec::new(),
        }
    }

    pub fn new(head: Head, children: Vec<Id>) -> Node {
        Node { head, children }
    }
}

impl Language for Node {
    type Discriminant = Head;

    fn discriminant(&self) -> Head {
        self.head
    }

    fn matches(&self, other: &Self) -> bool {
        self.head == other.head && self.children.len() == other.children.len()
    }

    fn children(&self) -> &[Id] {
        &self.children
    }

    fn children_mut(&mut self) -> &mut [Id] {
        &mut self.children
    }
}

/// Writes a constant of type `ty` as the patterns read it: `i32:-1`.
pub fn const_text(ty: Type, bits: u64) -> String {
    match ty {
        Type::I32 => format!("i32:{}", bits as u32 as i32),
        Type::I64 => format!("i64:{}", bits as i64),
        Type::F32 => format!("f32:{bits:#x}"),
        Type::F64 => format!("f64:{bits:#x}"),
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.head {
            Head::Const(ty, bits) => f.write_str(&const_text(ty, bits)),
            Head::Input(i, ty) => write!(f, "in{i}:{ty}"),
            Head::Spine(i, ty) => write!(f, "spine{i}:{ty}"),
            Head::Mem(n) => write!(f, "mem{n}"),
            Head::Store(kind, offset) => write!(f, "{}@{offset}", kind.0.name()),
            Head::Grown(index) => write!(f, "grown{index}"),
            Head::Num(op) => f.write_str(op.name()),
            Head::Select(ty) => write!(f, "select:{ty}"),
            Head::Load(kind, offset) => write!(f, "{}@{offset}", kind.0.name()),
        }
    }
}

/// A pattern or expression atom that is not a node of this language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNodeError(pub String);

fn parse_const(ty: Type, text: &str) -> Option<u64> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let magnitude = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => u64::from_str(digits).ok()?,
    };
    let bits = if neg {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    Some(if ty.bits() == 32 {
        bits & 0xffff_ffff
    } else {
        bits
    })
}

impl FromOp for Node {
    type Error = ParseNodeError;

    fn from_op(op: &str, children: Vec<Id>) -> Result<Self, Self::Error> {
        let err = || ParseNodeError(format!("not a node: {op}/{}", children.len()));
        if let Some(n) = NumOp::from_name(op) {
            return if n.params().len() == children.len() {
                Ok(Node::new(Head::Num(n), children))
            } else {
                Err(err())
            };
        }
        let leaf = |head| {
            if children.is_empty() {
                Ok(Node::leaf(head))
            } else {
                Err(err())
            }
        };
        if let Some((name, rest)) = op.split_once(':') {
            if let Some(ty) = Type::from_name(name) {
                let bits = parse_const(ty, rest).ok_or_else(err)?;
                return leaf(Head::Const(ty, bits));
            }
            let ty = Type::from_name(rest).ok_or_else(err)?;
            if name == "select" {
                return if children.len() == 3 {
                    Ok(Node::new(Head::Select(ty), children))
                } else {
                    Err(err())
                };
            }
            if let Some(i) = name.strip_prefix("in") {
                return leaf(Head::Input(i.parse().map_err(|_| err())?, ty));
            }
            if let Some(i) = name.strip_prefix("spine") {
                return leaf(Head::Spine(i.parse().map_err(|_| err())?, ty));
            }
            return Err(err());
        }
        if let Some(n) = op.strip_prefix("mem") {
            return leaf(Head::Mem(n.parse().map_err(|_| err())?));
        }
        if let Some(n) = op.strip_prefix("grown") {
            let index = n.parse().map_err(|_| err())?;
            return if children.len() == 1 {
                Ok(Node::new(Head::Grown(index), children))
            } else {
                Err(err())
            };
        }
        if let Some((name, offset)) = op.split_once('@') {
            let offset = offset.parse().map_err(|_| err())?;
            let head = match (LoadKind::from_name(name), StoreKind::from_name(name)) {
                (Some(kind), _) if children.len() == 2 => Head::Load(Kind(kind), offset),
                (_, Some(kind)) if children.len() == 3 => Head::Store(SKind(kind), offset),
                _ => return Err(err()),
            };
            return Ok(Node::new(head, children));
        }
        Err(err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egg::RecExpr;

    #[test]
    fn text_round_trips() {
        for text in [
            "(i32.add in0:i32 i32:-1)",
            "(select:i64 i64:5 (i64.load32_u@8 mem0 spine3:i32) (i32.eqz i32:0))",
            "(i32.load@4 (grown7 (i64.store8@2 mem0 in0:i32 in1:i64)) in0:i32)",
        ] {
            let expr: RecExpr<Node> = text.parse().unwrap();
            assert_eq!(expr.to_string(), text);
        }
    }
}
