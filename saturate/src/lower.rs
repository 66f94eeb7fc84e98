//! Lowering: the extracted e-graph back to an `ir::Trace`.
//!
//! The spine is walked in its recorded order; before each spine instruction the pure
//! values it needs are emitted on demand (each class once, then reused), so pure code
//! sits just before its first use. The candidate has the same inputs, the same spine
//! (less loads that repeat an earlier identical load, guards whose condition is a
//! constant that passes, and trapping operators whose operands became constants on which
//! they do not trap), the same exits, and fresh value numbers. Dead pure
//! instructions are removed at the end.

use std::collections::{HashMap, HashSet};

use egg::{Id, Language};
use ir::{End, Exit, Input, Inst, Operand, Trace, ValueId};

use crate::analysis::Graph;
use crate::extract::Choice;
use crate::lang::{Head, Node};
use crate::lift::{EndIds, ExitIds, Lifted, SpineInst};

/// Why lowering gave up (the caller keeps the recorded trace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowerError(pub String);

struct Lower<'a> {
    egraph: &'a Graph,
    choice: &'a Choice,
    memo: HashMap<Id, Operand>,
    in_progress: HashSet<Id>,
    body: Vec<Inst>,
    next: u32,
}

impl Lower<'_> {
    fn fresh(&mut self) -> ValueId {
        let v = ValueId(self.next);
        self.next += 1;
        v
    }

    /// The operand for class `id`, emitting what it needs.
    fn value(&mut self, id: Id) -> Result<Operand, LowerError> {
        let id = self.egraph.find(id);
        if let Some(&o) = self.memo.get(&id) {
            return Ok(o);
        }
        if let Some(k) = self.egraph[id].data.konst {
            return Ok(Operand::Const(k));
        }
        if !self.in_progress.insert(id) {
            return Err(LowerError(format!("cycle through class {id}")));
        }
        // The chosen node first, then any other node of the class that can be computed
        // here (a chosen spine result may not be defined yet at this point).
        let chosen = self.choice.get(&id).cloned();
        let others: Vec<Node> = self.egraph[id]
            .iter()
            .filter(|n| Some(*n) != chosen.as_ref())
            .cloned()
            .collect();
        let mut result = Err(LowerError(format!("no node of class {id} is available")));
        for node in chosen.into_iter().chain(others) {
            if let Ok(o) = self.emit(&node) {
                result = Ok(o);
                break;
            }
        }
        self.in_progress.remove(&id);
        let o = result?;
        self.memo.insert(id, o);
        Ok(o)
    }

    fn emit(&mut self, node: &Node) -> Result<Operand, LowerError> {
        let unavailable = || Err(LowerError(format!("{node} is not available here")));
        match node.head {
            Head::Const(_, bits) => Ok(Operand::Const(bits)),
            Head::Input(..) | Head::Spine(..) | Head::Mem(_) | Head::Load(..) => unavailable(),
            Head::Num(op) => {
                let args = node
                    .children()
                    .iter()
                    .map(|&c| self.value(c))
                    .collect::<Result<Vec<_>, _>>()?;
                let dst = self.fresh();
                self.body.push(Inst::Num { dst, op, args });
                Ok(Operand::Value(dst))
            }
            Head::Select(ty) => {
                let a = self.value(node.children[0])?;
                let b = self.value(node.children[1])?;
                let cond = self.value(node.children[2])?;
                let dst = self.fresh();
                self.body.push(Inst::Select {
                    dst,
                    ty,
                    cond,
                    a,
                    b,
                });
                Ok(Operand::Value(dst))
            }
        }
    }

    fn state(&mut self, state: &[(u32, Id)]) -> Result<Vec<(u32, Operand)>, LowerError> {
        state
            .iter()
            .map(|&(s, id)| Ok((s, self.value(id)?)))
            .collect()
    }

    fn exit(&mut self, exit: &ExitIds) -> Result<Exit, LowerError> {
        Ok(Exit {
            id: exit.id,
            pc: exit.pc,
            offset: exit.offset,
            state: self.state(&exit.state)?,
        })
    }

    /// Records `id`'s value as `v` unless the class already has one.
    fn define(&mut self, id: Id, v: ValueId) {
        self.memo
            .entry(self.egraph.find(id))
            .or_insert(Operand::Value(v));
    }
}

/// Lowers the lifted trace with `choice`. `trace` is the recorded trace (for its inputs
/// and locals).
pub fn lower(trace: &Trace, lifted: &Lifted, choice: &Choice) -> Result<Trace, LowerError> {
    let egraph = &lifted.egraph;
    let mut l = Lower {
        egraph,
        choice,
        memo: HashMap::new(),
        in_progress: HashSet::new(),
        body: Vec::new(),
        next: 0,
    };
    let mut inputs = Vec::new();
    for (input, &id) in trace.inputs.iter().zip(&lifted.inputs) {
        let value = l.fresh();
        l.define(id, value);
        inputs.push(Input {
            value,
            ty: input.ty,
            source: input.source,
        });
    }
    let mut loads_done: HashSet<Id> = HashSet::new();
    for item in &lifted.spine {
        match item {
            SpineInst::Trapping { op, args, result } => {
                let args = args
                    .iter()
                    .map(|&a| l.value(a))
                    .collect::<Result<Vec<_>, _>>()?;
                // Operands that simplified to constants on which the operator does not
                // trap: it never traps here, and its value is a constant. (One that does
                // trap always traps, and stays.) Integer operators only, as in folding.
                let constants: Option<Vec<u64>> = args
                    .iter()
                    .map(|a| match a {
                        Operand::Const(c) => Some(*c),
                        Operand::Value(_) => None,
                    })
                    .collect();
                let integer = !op.result().is_float() && op.params().iter().all(|t| !t.is_float());
                if let (true, Some(constants)) = (integer, constants) {
                    if let Ok(k) = ir::eval::apply(*op, &constants) {
                        l.memo
                            .entry(egraph.find(*result))
                            .or_insert(Operand::Const(k));
                        continue;
                    }
                }
                let dst = l.fresh();
                l.body.push(Inst::Num { dst, op: *op, args });
                l.define(*result, dst);
            }
            SpineInst::Load {
                kind,
                offset,
                addr,
                result,
            } => {
                // The same load (kind, offset, memory state, address) done before cannot
                // trap now and reads the same bytes: it is not repeated.
                if !loads_done.insert(egraph.find(*result))
                    && l.memo.contains_key(&egraph.find(*result))
                {
                    continue;
                }
                let addr = l.value(*addr)?;
                let dst = l.fresh();
                l.body.push(Inst::Load {
                    dst,
                    kind: *kind,
                    offset: *offset,
                    addr,
                });
                l.define(*result, dst);
            }
            SpineInst::Store {
                kind,
                offset,
                addr,
                value,
            } => {
                let addr = l.value(*addr)?;
                let value = l.value(*value)?;
                l.body.push(Inst::Store {
                    kind: *kind,
                    offset: *offset,
                    addr,
                    value,
                });
            }
            SpineInst::GlobalSet { global, value } => {
                let value = l.value(*value)?;
                l.body.push(Inst::GlobalSet {
                    global: *global,
                    value,
                });
            }
            SpineInst::MemorySize { result } => {
                let dst = l.fresh();
                l.body.push(Inst::MemorySize { dst });
                l.define(*result, dst);
            }
            SpineInst::MemoryGrow { delta, result } => {
                let delta = l.value(*delta)?;
                let dst = l.fresh();
                l.body.push(Inst::MemoryGrow { dst, delta });
                l.define(*result, dst);
            }
            SpineInst::Guard { cond, expect, exit } => {
                let cond = l.value(*cond)?;
                // A guard whose condition is a constant that passes never exits.
                if let Operand::Const(c) = cond {
                    if (c != 0) == *expect {
                        continue;
                    }
                }
                let exit = l.exit(exit)?;
                l.body.push(Inst::Guard {
                    cond,
                    expect: *expect,
                    exit,
                });
            }
        }
    }
    let end = match &lifted.end {
        EndIds::Loop(state) => End::Loop {
            state: l.state(state)?,
        },
        EndIds::Exit(exit) => End::Exit(l.exit(exit)?),
    };
    let mut out = Trace {
        locals: trace.locals,
        inputs,
        body: l.body,
        end,
    };
    remove_dead(&mut out);
    renumber(&mut out);
    Ok(out)
}

/// Removes pure instructions whose value nobody uses.
fn remove_dead(trace: &mut Trace) {
    let mut used: HashSet<ValueId> = HashSet::new();
    let mark = |o: &Operand, used: &mut HashSet<ValueId>| {
        if let Operand::Value(v) = o {
            used.insert(*v);
        }
    };
    for (_, o) in trace.end.state() {
        mark(o, &mut used);
    }
    let mut keep = vec![true; trace.body.len()];
    for (i, inst) in trace.body.iter().enumerate().rev() {
        let live = inst.is_spine() || inst.def().is_some_and(|(v, _)| used.contains(&v));
        if live {
            for (o, _) in inst.operands() {
                mark(&o, &mut used);
            }
        } else {
            keep[i] = false;
        }
    }
    let mut i = 0;
    trace.body.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

/// Numbers values 0, 1, 2... in definition order.
fn renumber(trace: &mut Trace) {
    let mut map: HashMap<ValueId, ValueId> = HashMap::new();
    for input in &mut trace.inputs {
        let new = ValueId(map.len() as u32);
        map.insert(input.value, new);
        input.value = new;
    }
    let fix = |o: &mut Operand, map: &HashMap<ValueId, ValueId>| {
        if let Operand::Value(v) = o {
            *v = map[v];
        }
    };
    for inst in &mut trace.body {
        for o in inst.operands_mut() {
            fix(o, &map);
        }
        if let Some(dst) = inst.def_mut() {
            let new = ValueId(map.len() as u32);
            map.insert(*dst, new);
            *dst = new;
        }
    }
    for (_, o) in trace.end.state_mut() {
        fix(o, &map);
    }
}
