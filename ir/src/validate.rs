//! The structural rules every trace obeys, checked in one place: the text parser and the
//! binary decoder both call [`validate`], so nothing built from outside the process is
//! handed on without them. The evaluator calls it too.
//!
//! The rules:
//! - every value is defined once (by an input or an instruction), before any use;
//! - no two inputs read the same slot or global at the same type (the recorder may read
//!   one slot at two types: slots are raw 64 bits, and a raw copy is read as i64);
//! - an operand has its use's type: a value of that type, or a constant that the type
//!   holds (32-bit constants have their upper 32 bits zero); a numeric operator has as
//!   many operands as its type says;
//! - exit and loop state name each slot at most once, in increasing order;
//! - exit ids are distinct;
//! - an exit inside inlined calls lists them outermost first, each callee's frame base
//!   above its caller's (a callee's frame starts at its caller's argument window), and
//!   is inside at most `binary::MAX_INLINED_CALLS` of them;
//! - a constant the loop writes to a slot that the trace reads as a 32-bit type has its
//!   upper half zero (the next iteration reads it back);
//! - every `global.set` of a global writes one type, the input's if the global is also an
//!   input (globals are typed).
//!
//! Slots are untyped, so the types of values written to slots are not checked: at an exit
//! the same slot may hold another type than at the anchor, and the recorder moves raw
//! slot copies as i64 values. (An i64 value written by the loop to a slot read back as
//! i32 must have its upper half zero; only the evaluator can see that, and it refuses an
//! entry state where it does not hold.)

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::trace::{End, Exit, Expect, Inst, Operand, Source, Trace, Type, ValueId};

/// Where in a trace a rule is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// The `index`-th input.
    Input(usize),
    /// The `index`-th body instruction, and which operand if one is to blame (numbered
    /// as [`Inst::operands`] lists them).
    Inst {
        index: usize,
        operand: Option<usize>,
    },
    /// The end of the trace, and which state operand if one is to blame.
    End { operand: Option<usize> },
}

/// A broken rule: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateError {
    pub site: Site,
    pub message: String,
}

impl fmt::Display for ValidateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.site {
            Site::Input(i) => write!(f, "input {i}")?,
            Site::Inst {
                index,
                operand: None,
            } => write!(f, "instruction {index}")?,
            Site::Inst {
                index,
                operand: Some(o),
            } => write!(f, "instruction {index}, operand {o}")?,
            Site::End { operand: None } => write!(f, "end")?,
            Site::End { operand: Some(o) } => write!(f, "end, operand {o}")?,
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ValidateError {}

/// Checks the rules listed in the module documentation.
pub fn validate(trace: &Trace) -> Result<(), ValidateError> {
    let mut v = Validator::default();
    for (i, input) in trace.inputs.iter().enumerate() {
        let site = Site::Input(i);
        v.define(input.value, input.ty, site)?;
        if let Some(other) = v.sources.insert((input.source, input.ty), input.value) {
            let what = match input.source {
                Source::Slot(s) => format!("slot {s}"),
                Source::Global(g) => format!("global {g}"),
            };
            let (value, ty) = (input.value, input.ty);
            return Err(error(
                site,
                format!("{what} is read as {ty} by two inputs, {other} and {value}"),
            ));
        }
        if let Source::Global(g) = input.source {
            v.globals.insert(g, input.ty);
        }
    }
    // Slots some input reads as a 32-bit type: their raw value must have its upper half
    // zero, which the loop must keep true for the next iteration.
    let narrow_slots: HashMap<u32, Type> = trace
        .inputs
        .iter()
        .filter_map(|input| match input.source {
            Source::Slot(s) if input.ty.bits() == 32 => Some((s, input.ty)),
            _ => None,
        })
        .collect();

    for (index, inst) in trace.body.iter().enumerate() {
        let site = Site::Inst {
            index,
            operand: None,
        };
        if let Inst::Num { op, args, .. } = inst {
            if args.len() != op.params().len() {
                let n = op.params().len();
                let s = if n == 1 { "" } else { "s" };
                return Err(error(
                    site,
                    format!("{} takes {n} operand{s}, found {}", op.name(), args.len()),
                ));
            }
        }
        for (o, (operand, expect)) in inst.operands().into_iter().enumerate() {
            v.check_use(
                operand,
                expect,
                Site::Inst {
                    index,
                    operand: Some(o),
                },
            )?;
        }
        match inst {
            Inst::Guard { exit, .. } => v.check_exit(
                exit,
                |o| Site::Inst {
                    index,
                    operand: Some(o + 1),
                },
                site,
            )?,
            Inst::GlobalSet {
                global,
                value: Operand::Value(value),
            } => {
                let ty = v.types[value];
                match v.globals.get(global) {
                    Some(&known) if known != ty => {
                        let site = Site::Inst {
                            index,
                            operand: Some(0),
                        };
                        return Err(error(site, format!("global.set {global} writes {ty}, but global {global} holds {known}")));
                    }
                    _ => {
                        v.globals.insert(*global, ty);
                    }
                }
            }
            _ => {}
        }
        if let Some((dst, ty)) = inst.def() {
            v.define(dst, ty, site)?;
        }
    }

    let site = Site::End { operand: None };
    for (o, &(_, operand)) in trace.end.state().iter().enumerate() {
        v.check_use(operand, Expect::Raw, Site::End { operand: Some(o) })?;
    }
    match &trace.end {
        End::Exit(exit) => v.check_exit(exit, |o| Site::End { operand: Some(o) }, site)?,
        End::Loop { state } => {
            check_state(state, |o| Site::End { operand: Some(o) })?;
            for (o, &(slot, operand)) in state.iter().enumerate() {
                if let (Some(&ty), Operand::Const(c)) = (narrow_slots.get(&slot), operand) {
                    if !ty.holds(c) {
                        let site = Site::End { operand: Some(o) };
                        return Err(error(site, format!("the loop writes {c:#x} to slot {slot}, which the trace reads as {ty}")));
                    }
                }
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct Validator {
    types: HashMap<ValueId, Type>,
    sources: HashMap<(Source, Type), ValueId>,
    /// The type of each global the trace reads or writes.
    globals: HashMap<u32, Type>,
    exit_ids: HashSet<u32>,
}

impl Validator {
    fn define(&mut self, value: ValueId, ty: Type, site: Site) -> Result<(), ValidateError> {
        if self.types.insert(value, ty).is_some() {
            return Err(error(site, format!("{value} is defined twice")));
        }
        Ok(())
    }

    fn check_use(&self, operand: Operand, expect: Expect, site: Site) -> Result<(), ValidateError> {
        match (operand, expect) {
            (Operand::Value(value), expect) => match self.types.get(&value) {
                None => Err(error(
                    site,
                    format!("{value} is used but not defined before"),
                )),
                Some(&ty) => match expect {
                    Expect::Typed(want) if want != ty => {
                        Err(error(site, format!("{value} is {ty}, expected {want}")))
                    }
                    _ => Ok(()),
                },
            },
            (Operand::Const(c), Expect::Typed(ty)) if !ty.holds(c) => {
                Err(error(site, format!("constant {c:#x} does not fit {ty}")))
            }
            (Operand::Const(_), _) => Ok(()),
        }
    }

    fn check_exit(
        &mut self,
        exit: &Exit,
        state_site: impl Fn(usize) -> Site,
        site: Site,
    ) -> Result<(), ValidateError> {
        if !self.exit_ids.insert(exit.id) {
            return Err(error(
                site,
                format!("exit {} is taken twice: exit ids must be distinct", exit.id),
            ));
        }
        if exit.calls.len() > crate::binary::MAX_INLINED_CALLS as usize {
            return Err(error(
                site,
                format!(
                    "exit {} is inside {} inlined calls, more than {}",
                    exit.id,
                    exit.calls.len(),
                    crate::binary::MAX_INLINED_CALLS
                ),
            ));
        }
        let mut caller_base = 0;
        for (i, call) in exit.calls.iter().enumerate() {
            if call.base <= caller_base {
                return Err(error(
                    site,
                    format!(
                        "exit {}: inlined call {i} (function {}) has its frame at slot {}, \
                         not above its caller's at slot {caller_base}",
                        exit.id, call.func, call.base
                    ),
                ));
            }
            caller_base = call.base;
        }
        check_state(&exit.state, state_site)
    }
}

fn check_state(
    state: &[(u32, Operand)],
    site: impl Fn(usize) -> Site,
) -> Result<(), ValidateError> {
    for (o, pair) in state.windows(2).enumerate() {
        if pair[0].0 >= pair[1].0 {
            let message = format!(
                "state slots must increase: s{} after s{}",
                pair[1].0, pair[0].0
            );
            return Err(error(site(o + 1), message));
        }
    }
    Ok(())
}

fn error(site: Site, message: String) -> ValidateError {
    ValidateError { site, message }
}
