//! Lowering: the extracted e-graph back to an `ir::Trace`.
//!
//! The spine is walked in its recorded order; before each spine instruction the pure
//! values it needs are emitted on demand (each class once, then reused), so pure code
//! sits just before its first use. The candidate has the same inputs, the same spine,
//! the same exits, and fresh value numbers, less what provably changes nothing:
//! - a load that cannot trap (an earlier access from the same address class, or at a
//!   constant address, reached at least as far: memory never shrinks) and whose value is
//!   known without it (computed before, or forwarded from a store by the memory rules);
//! - a store whose bytes a later store to the same address class, offset and width
//!   overwrites before anything could observe them ([`dead_stores`]);
//! - a guard whose condition is a constant that passes;
//! - a trapping operator whose operands became constants on which it does not trap.
//!
//! Dead pure instructions are removed at the end.

use std::collections::{HashMap, HashSet};

use egg::{Id, Language};
use ir::{End, Exit, Input, Inst, Operand, Trace, ValueId};

use crate::analysis::Graph;
use crate::extract::Choice;
use crate::lang::{Head, Node};
use crate::lift::{EndIds, ExitIds, Lifted, SpineInst};
use crate::rules::memory::{overlap, Overlap};

/// The memory accesses performed so far on the spine, as the reach of each: an access of
/// `bytes` at `addr + offset` that did not trap proves every byte below its end is in
/// bounds from then on (memory only grows).
#[derive(Debug, Clone, Default)]
struct Coverage {
    /// The furthest end offset reached from each address class.
    by_class: HashMap<Id, u64>,
    /// The furthest absolute end reached by an access at a constant address.
    absolute: u64,
}

impl Coverage {
    fn end(egraph: &Graph, addr: Id, offset: u32, bytes: u32) -> (Id, u64, Option<u64>) {
        let addr = egraph.find(addr);
        let end = offset as u64 + bytes as u64;
        let absolute = egraph[addr].data.konst.map(|k| (k & 0xffff_ffff) + end);
        (addr, end, absolute)
    }

    /// Whether an access of `bytes` at `addr + offset` is sure not to trap here.
    fn covers(&self, egraph: &Graph, addr: Id, offset: u32, bytes: u32) -> bool {
        let (addr, end, absolute) = Self::end(egraph, addr, offset, bytes);
        self.by_class.get(&addr).is_some_and(|&reach| reach >= end)
            || absolute.is_some_and(|a| a <= self.absolute)
    }

    /// Records an access that, from here on, is known not to have trapped.
    fn record(&mut self, egraph: &Graph, addr: Id, offset: u32, bytes: u32) {
        let (addr, end, absolute) = Self::end(egraph, addr, offset, bytes);
        let reach = self.by_class.entry(addr).or_insert(0);
        *reach = (*reach).max(end);
        if let Some(a) = absolute {
            self.absolute = self.absolute.max(a);
        }
    }

    /// Records what spine instruction `item` accesses.
    fn record_item(&mut self, egraph: &Graph, item: &SpineInst) {
        match item {
            SpineInst::Load {
                kind, offset, addr, ..
            } => self.record(egraph, *addr, *offset, kind.bytes()),
            SpineInst::Store {
                kind, offset, addr, ..
            } => self.record(egraph, *addr, *offset, kind.bytes()),
            _ => {}
        }
    }
}

/// The spine indices of stores that can be dropped: a later store writes the same bytes
/// (same address class, offset and width) and nothing between can observe the first.
///
/// Between the two, every instruction must be one that neither reads those bytes nor
/// lets anyone see memory: a load whose bytes are disjoint from the store's and that
/// cannot trap, `memory.size`, or a guard whose condition is a constant that passes. A
/// guard that may exit, an operator that may trap, or the trace's end would show memory
/// without the store's bytes. When the dropped store itself might trap (no earlier access
/// covers it) the later store, writing the same bytes, traps in its place with the same
/// memory, provided nothing between has an effect; when it cannot trap, stores that
/// cannot trap, `global.set` and `memory.grow` may also lie between.
///
/// `dropped_loads` are the spine indices of loads lowering does not perform: they read
/// nothing and cannot trap.
fn dead_stores(
    egraph: &Graph,
    spine: &[SpineInst],
    dropped_loads: &HashSet<usize>,
) -> HashSet<usize> {
    let mut dead = HashSet::new();
    let mut coverage = Coverage::default();
    for (i, item) in spine.iter().enumerate() {
        if let SpineInst::Store {
            kind, offset, addr, ..
        } = item
        {
            let bytes = kind.bytes();
            let cannot_trap = coverage.covers(egraph, *addr, *offset, bytes);
            let mut after = coverage.clone();
            after.record_item(egraph, item);
            for (j, later) in spine.iter().enumerate().skip(i + 1) {
                let allowed = match later {
                    SpineInst::Load { .. } if dropped_loads.contains(&j) => true,
                    SpineInst::Store {
                        kind: k2,
                        offset: o2,
                        addr: a2,
                        ..
                    } => {
                        if egraph.find(*a2) == egraph.find(*addr)
                            && o2 == offset
                            && k2.bytes() == bytes
                        {
                            dead.insert(i);
                            break;
                        }
                        cannot_trap && after.covers(egraph, *a2, *o2, k2.bytes())
                    }
                    SpineInst::Load {
                        kind: k2,
                        offset: o2,
                        addr: a2,
                        ..
                    } => {
                        after.covers(egraph, *a2, *o2, k2.bytes())
                            && overlap(egraph, (*a2, *o2, k2.bytes()), (*addr, *offset, bytes))
                                == Overlap::Disjoint
                    }
                    SpineInst::MemorySize { .. } => true,
                    SpineInst::GlobalSet { .. } | SpineInst::MemoryGrow { .. } => cannot_trap,
                    SpineInst::Guard { cond, expect, .. } => egraph[egraph.find(*cond)]
                        .data
                        .konst
                        .is_some_and(|c| (c != 0) == *expect),
                    SpineInst::Trapping { .. } => false,
                };
                if !allowed {
                    break;
                }
                after.record_item(egraph, later);
            }
        }
        coverage.record_item(egraph, item);
    }
    dead
}

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
            Head::Input(..)
            | Head::Spine(..)
            | Head::Mem(_)
            | Head::Store(..)
            | Head::Grown(_)
            | Head::Load(..) => unavailable(),
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
            calls: exit.calls.clone(),
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
    // Which loads leave the spine decides which stores are dead (a load that is not done
    // reads nothing), so lowering runs once to find the loads it drops, then again
    // without the dead stores, dropping exactly those loads (or failing, which keeps the
    // recorded trace: a load a dead store's removal relied on must never be done).
    let no_stores = HashSet::new();
    let (first, dropped_loads) = lower_with(trace, lifted, choice, &no_stores, None)?;
    let dead = dead_stores(&lifted.egraph, &lifted.spine, &dropped_loads);
    if dead.is_empty() {
        return Ok(first);
    }
    let (second, _) = lower_with(trace, lifted, choice, &dead, Some(&dropped_loads))?;
    Ok(second)
}

/// Lowers with the stores at spine indices `dead` removed. With `drop_loads`, exactly
/// the loads at those spine indices are dropped; otherwise each load that can be is.
/// Returns the trace and the spine indices of the loads it dropped.
fn lower_with(
    trace: &Trace,
    lifted: &Lifted,
    choice: &Choice,
    dead: &HashSet<usize>,
    drop_loads: Option<&HashSet<usize>>,
) -> Result<(Trace, HashSet<usize>), LowerError> {
    let egraph = &lifted.egraph;
    let mut dropped = HashSet::new();
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
    let mut coverage = Coverage::default();
    for (index, item) in lifted.spine.iter().enumerate() {
        let in_bounds = match item {
            SpineInst::Load {
                kind, offset, addr, ..
            } => coverage.covers(egraph, *addr, *offset, kind.bytes()),
            _ => false,
        };
        coverage.record_item(egraph, item);
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
                // A load that cannot trap is only needed for its value: not at all if
                // the value is known (computed before: the same load done earlier, or a
                // value equal to it) or if extraction chose another way to compute it.
                let class = egraph.find(*result);
                if let Some(drop_loads) = drop_loads {
                    if drop_loads.contains(&index) {
                        l.value(*result)?;
                        dropped.insert(index);
                        continue;
                    }
                } else if in_bounds {
                    let known = l.memo.contains_key(&class) || egraph[class].data.konst.is_some();
                    let chose_other = !matches!(
                        choice.get(&class).map(|n| n.head),
                        None | Some(Head::Load(..))
                    );
                    if known || (chose_other && l.value(*result).is_ok()) {
                        dropped.insert(index);
                        continue;
                    }
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
                if dead.contains(&index) {
                    continue;
                }
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
    Ok((out, dropped))
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
