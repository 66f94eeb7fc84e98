//! Lifting: the whole trace becomes one e-graph plus its spine.
//!
//! Pure values (non-trapping operators, selects, constants) are e-nodes and float free.
//! The spine keeps, in recorded order, every instruction that has an effect or may leave
//! the trace: loads, stores, `global.set`, `memory.size`/`memory.grow`, guards and
//! operators that may trap. The spine is never rewritten structurally; only the e-classes
//! of its operands are, so a trap is never removed or moved across a guard or effect.
//!
//! - A trapping operator's result is an opaque leaf ([`Head::Spine`]): no rule sees
//!   through it. A division or remainder whose divisor is a constant that makes it total
//!   (non-zero, and not -1 for `div_s`) cannot trap, so it is lifted as a pure node.
//! - A load is the node `Load(kind, offset)[mem, addr]` over the memory state `mem`.
//!   The entry memory is a leaf; every store adds `Store(kind, offset)[mem, addr, value]`
//!   and every `memory.grow` adds `Grown(index)[mem]`, so the memory rules
//!   (`rules/memory.rs`) can see what was stored where. Two loads of the same kind, offset
//!   and address class over the same state are one e-class.
//! - Guard facts ([`crate::facts`]): after each guard, what it says about its condition
//!   and the value the condition compares is used by the instructions that follow (a
//!   value known to be a constant is that constant; a comparison the facts decide is a
//!   constant). Never by what comes before: the guard's own exit is lifted first.
//!
//! The roots of the e-graph are the operands of the spine and of the end.

use std::collections::HashMap;

use egg::Id;
use ir::{End, Exit, Expect, Inst, LoadKind, NumOp, Operand, StoreKind, Trace, Type, ValueId};

use crate::analysis::{Graph, TypeConst};
use crate::facts::GuardFacts;
use crate::lang::{Head, Kind, Node, SKind};

/// An exit with its state as e-classes.
#[derive(Debug, Clone)]
pub struct ExitIds {
    pub id: u32,
    pub pc: u32,
    pub offset: u32,
    pub state: Vec<(u32, Id)>,
    /// The inlined calls the exit leaves inside, as recorded.
    pub calls: Vec<ir::InlinedCall>,
}

/// A spine instruction with its operands as e-classes.
#[derive(Debug, Clone)]
pub enum SpineInst {
    /// An operator that may trap; `result` is the class of its opaque leaf.
    Trapping {
        op: NumOp,
        args: Vec<Id>,
        result: Id,
    },
    Load {
        kind: LoadKind,
        offset: u32,
        addr: Id,
        result: Id,
    },
    Store {
        kind: StoreKind,
        offset: u32,
        addr: Id,
        value: Id,
    },
    GlobalSet {
        global: u32,
        value: Id,
    },
    MemorySize {
        result: Id,
    },
    MemoryGrow {
        delta: Id,
        result: Id,
    },
    Guard {
        cond: Id,
        expect: bool,
        exit: ExitIds,
    },
}

/// How the lifted trace ends.
#[derive(Debug, Clone)]
pub enum EndIds {
    Loop(Vec<(u32, Id)>),
    Exit(ExitIds),
}

/// A trace as an e-graph and a spine.
pub struct Lifted {
    pub egraph: Graph,
    pub spine: Vec<SpineInst>,
    pub end: EndIds,
    /// Each input's leaf class, in the trace's input order.
    pub inputs: Vec<Id>,
}

/// Whether `op` applied to the lifted operands `args` cannot trap whatever its
/// non-constant operands are: its divisor is a constant (recorded, or folded from
/// constants) that makes it total.
fn total_on(op: NumOp, args: &[Id], egraph: &Graph) -> bool {
    use NumOp::*;
    let divisor = match args.get(1).and_then(|&d| egraph[d].data.konst) {
        Some(c) => c,
        None => return false,
    };
    match op {
        I32DivU | I32RemU | I32RemS | I64DivU | I64RemU | I64RemS => divisor != 0,
        I32DivS => divisor != 0 && divisor != 0xffff_ffff,
        I64DivS => divisor != 0 && divisor != u64::MAX,
        _ => false,
    }
}

struct Lifter {
    egraph: Graph,
    values: HashMap<ValueId, Id>,
    /// The current memory state's class.
    mem: Id,
    facts: GuardFacts,
    /// The classes of guard conditions that passed, with the value each then has (1 for
    /// a comparison that passed with `expect`, 0 for any that passed without). A later
    /// instruction computing the same class (the same check again) is that constant.
    passed: HashMap<Id, u64>,
}

impl Lifter {
    fn operand(&mut self, operand: Operand, expect: Expect) -> Id {
        let constant = match operand {
            Operand::Value(v) => match self.facts.constant(v) {
                Some(k) => k,
                None => return self.values[&v],
            },
            Operand::Const(c) => c,
        };
        // A raw constant is untyped: lift it as its 64 bits (a value known to be a
        // constant is kept zero-extended, as raw slots hold it).
        let ty = match expect {
            Expect::Typed(ty) => ty,
            Expect::Raw => Type::I64,
        };
        self.egraph.add(Node::leaf(Head::Const(ty, constant)))
    }

    fn state(&mut self, state: &[(u32, Operand)]) -> Vec<(u32, Id)> {
        state
            .iter()
            .map(|&(slot, o)| (slot, self.operand(o, Expect::Raw)))
            .collect()
    }

    fn exit(&mut self, exit: &Exit) -> ExitIds {
        ExitIds {
            id: exit.id,
            pc: exit.pc,
            offset: exit.offset,
            state: self.state(&exit.state),
            calls: exit.calls.clone(),
        }
    }
}

/// Each numeric instruction's operator and recorded operands, by the value it defines
/// (what a guard's condition compares).
fn numeric_defs(trace: &Trace) -> HashMap<ValueId, (NumOp, Vec<Operand>)> {
    trace
        .body
        .iter()
        .filter_map(|inst| match inst {
            Inst::Num { dst, op, args } => Some((*dst, (*op, args.clone()))),
            _ => None,
        })
        .collect()
}

/// Lifts `trace` (which must be valid).
pub fn lift(trace: &Trace) -> Lifted {
    let mut egraph = Graph::new(TypeConst);
    let mem = egraph.add(Node::leaf(Head::Mem(0)));
    let mut l = Lifter {
        egraph,
        values: HashMap::new(),
        mem,
        facts: GuardFacts::default(),
        passed: HashMap::new(),
    };
    let defs = numeric_defs(trace);
    let mut inputs = Vec::new();
    for (i, input) in trace.inputs.iter().enumerate() {
        let id = l.egraph.add(Node::leaf(Head::Input(i as u32, input.ty)));
        l.values.insert(input.value, id);
        inputs.push(id);
    }
    let mut spine = Vec::new();
    for (index, inst) in trace.body.iter().enumerate() {
        let operands: Vec<Id> = inst
            .operands()
            .into_iter()
            .map(|(o, e)| l.operand(o, e))
            .collect();
        let (def, item) = match inst {
            // A comparison the guard facts decide is that constant.
            Inst::Num { op, args, .. } if l.facts.decide(*op, args).is_some() => {
                let k = l.facts.decide(*op, args).unwrap_or_default();
                (
                    Some(l.egraph.add(Node::leaf(Head::Const(op.result(), k)))),
                    None,
                )
            }
            Inst::Num { op, .. } if op.can_trap() && !total_on(*op, &operands, &l.egraph) => {
                let result = l
                    .egraph
                    .add(Node::leaf(Head::Spine(index as u32, op.result())));
                (
                    Some(result),
                    Some(SpineInst::Trapping {
                        op: *op,
                        args: operands,
                        result,
                    }),
                )
            }
            Inst::Num { op, .. } => (
                Some({
                    let id = l.egraph.add(Node::new(Head::Num(*op), operands));
                    // The same value as a guard condition that passed: its constant.
                    match l.passed.get(&l.egraph.find(id)) {
                        Some(&k) => l.egraph.add(Node::leaf(Head::Const(op.result(), k))),
                        None => id,
                    }
                }),
                None,
            ),
            Inst::Select { ty, .. } => (
                Some(l.egraph.add(Node::new(Head::Select(*ty), operands))),
                None,
            ),
            Inst::Load { kind, offset, .. } => {
                let addr = operands[0];
                let result = l.egraph.add(Node::new(
                    Head::Load(Kind(*kind), *offset),
                    vec![l.mem, addr],
                ));
                (
                    Some(result),
                    Some(SpineInst::Load {
                        kind: *kind,
                        offset: *offset,
                        addr,
                        result,
                    }),
                )
            }
            Inst::Store { kind, offset, .. } => {
                l.mem = l.egraph.add(Node::new(
                    Head::Store(SKind(*kind), *offset),
                    vec![l.mem, operands[0], operands[1]],
                ));
                (
                    None,
                    Some(SpineInst::Store {
                        kind: *kind,
                        offset: *offset,
                        addr: operands[0],
                        value: operands[1],
                    }),
                )
            }
            Inst::GlobalSet { global, .. } => (
                None,
                Some(SpineInst::GlobalSet {
                    global: *global,
                    value: operands[0],
                }),
            ),
            Inst::MemorySize { .. } => {
                let result = l
                    .egraph
                    .add(Node::leaf(Head::Spine(index as u32, Type::I32)));
                (Some(result), Some(SpineInst::MemorySize { result }))
            }
            Inst::MemoryGrow { .. } => {
                let result = l
                    .egraph
                    .add(Node::leaf(Head::Spine(index as u32, Type::I32)));
                l.mem = l
                    .egraph
                    .add(Node::new(Head::Grown(index as u32), vec![l.mem]));
                (
                    Some(result),
                    Some(SpineInst::MemoryGrow {
                        delta: operands[0],
                        result,
                    }),
                )
            }
            Inst::Guard {
                cond: guard_cond,
                expect,
                exit,
            } => {
                let cond = operands[0];
                // The exit is lifted before the guard's fact is learned: it is taken
                // exactly when the fact does not hold.
                let exit = l.exit(exit);
                if let Operand::Value(c) = guard_cond {
                    let def = defs.get(c).map(|(op, args)| (*op, args.as_slice()));
                    l.facts.learn(*c, *expect, def);
                    let class = l.egraph.find(cond);
                    match (*expect, def) {
                        (false, _) => {
                            l.passed.insert(class, 0);
                        }
                        (true, Some((op, _))) if crate::facts::is_boolean(op) => {
                            l.passed.insert(class, 1);
                        }
                        _ => {}
                    }
                }
                (
                    None,
                    Some(SpineInst::Guard {
                        cond,
                        expect: *expect,
                        exit,
                    }),
                )
            }
        };
        if let (Some(id), Some((v, _))) = (def, inst.def()) {
            l.values.insert(v, id);
        }
        spine.extend(item);
    }
    let end = match &trace.end {
        End::Loop { state } => EndIds::Loop(l.state(state)),
        End::Exit(exit) => EndIds::Exit(l.exit(exit)),
    };
    l.egraph.rebuild();
    Lifted {
        egraph: l.egraph,
        spine,
        end,
        inputs,
    }
}

impl Lifted {
    /// Every class the candidate must compute: spine operands and end state.
    pub fn roots(&self) -> Vec<Id> {
        let mut roots = Vec::new();
        let state =
            |roots: &mut Vec<Id>, s: &[(u32, Id)]| roots.extend(s.iter().map(|&(_, id)| id));
        for item in &self.spine {
            match item {
                SpineInst::Trapping { args, .. } => roots.extend(args),
                SpineInst::Load { addr, .. } => roots.push(*addr),
                SpineInst::Store { addr, value, .. } => roots.extend([*addr, *value]),
                SpineInst::GlobalSet { value, .. } => roots.push(*value),
                SpineInst::MemorySize { .. } => {}
                SpineInst::MemoryGrow { delta, .. } => roots.push(*delta),
                SpineInst::Guard { cond, exit, .. } => {
                    roots.push(*cond);
                    state(&mut roots, &exit.state);
                }
            }
        }
        match &self.end {
            EndIds::Loop(s) => state(&mut roots, s),
            EndIds::Exit(e) => state(&mut roots, &e.state),
        }
        roots.iter().map(|&id| self.egraph.find(id)).collect()
    }

    /// Points every id at its class's canonical id (after the e-graph changed).
    pub fn canonicalize(&mut self) {
        let g = &self.egraph;
        let f = |id: &mut Id| *id = g.find(*id);
        let fs = |s: &mut Vec<(u32, Id)>| s.iter_mut().for_each(|(_, id)| *id = g.find(*id));
        for item in &mut self.spine {
            match item {
                SpineInst::Trapping { args, result, .. } => {
                    args.iter_mut().for_each(f);
                    f(result);
                }
                SpineInst::Load { addr, result, .. } => {
                    f(addr);
                    f(result);
                }
                SpineInst::Store { addr, value, .. } => {
                    f(addr);
                    f(value);
                }
                SpineInst::GlobalSet { value, .. } => f(value),
                SpineInst::MemorySize { result } => f(result),
                SpineInst::MemoryGrow { delta, result } => {
                    f(delta);
                    f(result);
                }
                SpineInst::Guard { cond, exit, .. } => {
                    f(cond);
                    fs(&mut exit.state);
                }
            }
        }
        match &mut self.end {
            EndIds::Loop(s) => fs(s),
            EndIds::Exit(e) => fs(&mut e.state),
        }
        self.inputs.iter_mut().for_each(f);
    }
}
