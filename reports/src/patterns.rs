//! Rewrites found in traces, grouped into patterns.
//!
//! Each improved trace is compared root by root with its candidate (`term.rs`); every
//! differing root gives its smallest rewrite, abstracted, and a guard or store the
//! candidate no longer has gives a removal. The same abstracted rewrite in many traces is
//! one pattern. A pattern is then replayed alone: its left side as a trace of its own,
//! saturated (the rules that fire on it are its rule chain) and its two sides proven
//! equivalent by z3, or not, when the rewrite holds only in its trace's context (a value
//! an earlier guard decided, say).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ir::{End, Input, Inst, LoadKind, NumOp, Operand, Source, Trace, Type, ValueId};

use crate::term::{self, RootKey, Term};

/// The solver's time per pattern proof: patterns are a few operators, proven in
/// milliseconds; more means the pattern is not the small thing it looks like.
const PATTERN_PROOF_TIMEOUT: Duration = Duration::from_secs(2);

/// One rewrite found in one trace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rewrite {
    /// A subterm computed differently.
    Term { before: Term, after: Term },
    /// A guard the candidate no longer checks (an earlier guard decides it).
    GuardDropped { cond: Term },
    /// Stores the candidate no longer makes (a later store overwrites them).
    StoresDropped { count: usize },
}

impl Rewrite {
    /// The rewrite's left side as folded wasm text.
    pub fn before_wat(&self) -> String {
        match self {
            Rewrite::Term { before, .. } => before.wat(),
            Rewrite::GuardDropped { cond } => format!("(br_if $exit {})", cond.wat()),
            Rewrite::StoresDropped { count } => format!("{count} × (store …) overwritten later"),
        }
    }

    /// The rewrite's right side as folded wasm text.
    pub fn after_wat(&self) -> String {
        match self {
            Rewrite::Term { after, .. } => after.wat(),
            Rewrite::GuardDropped { .. } | Rewrite::StoresDropped { .. } => "(nop)".to_string(),
        }
    }

    /// The key patterns are grouped by.
    pub fn key(&self) -> String {
        format!("{} => {}", self.before_wat(), self.after_wat())
    }
}

/// The rewrites that turn `recorded` into `candidate`, each once, in a stable order.
pub fn rewrites(recorded: &Trace, candidate: &Trace) -> BTreeSet<Rewrite> {
    let before = term::roots(recorded);
    let after = term::roots(candidate);
    let mut found = BTreeSet::new();
    for (key, b) in &before {
        match (key, after.get(key)) {
            (_, Some(a)) if a != b => {
                let mut pairs = Vec::new();
                term::decompose(b, a, &mut pairs);
                for (x, y) in pairs {
                    let (before, after) = term::abstracted(&x, &y);
                    found.insert(Rewrite::Term { before, after });
                }
            }
            (RootKey::Guard(_), None) => {
                let (cond, _) = term::abstracted(
                    b,
                    &Term::Opaque {
                        ty: Type::I32,
                        what: String::new(),
                    },
                );
                found.insert(Rewrite::GuardDropped { cond });
            }
            _ => {}
        }
    }
    let stores = |t: &Trace| {
        t.body
            .iter()
            .filter(|i| matches!(i, Inst::Store { .. }))
            .count()
    };
    let dropped = stores(recorded).saturating_sub(stores(candidate));
    if dropped > 0 {
        found.insert(Rewrite::StoresDropped { count: dropped });
    }
    found
}

/// What replaying a pattern alone showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Rules that fired saturating the left side alone, in the order they first fired,
    /// each with its family.
    pub rules: Vec<(String, String)>,
    /// z3 on the two sides alone: `proven`, or why not.
    pub verdict: String,
}

/// Replays a term rewrite alone; `None` for a removal or a side with a cut subterm.
pub fn replay(rewrite: &Rewrite) -> Option<Replay> {
    let Rewrite::Term { before, after } = rewrite else {
        return None;
    };
    let (left, right) = (trace_of(before)?, trace_of(after)?);
    let saturated = saturate::optimize(&left, &saturate::Limits::default());
    let library = saturate::rules::library();
    let family = |rule: &str| {
        library
            .families
            .iter()
            .find(|(_, rules)| rules.contains(&rule))
            .map_or("unknown", |(f, _)| f)
            .to_string()
    };
    let rules = saturated
        .rules_fired
        .iter()
        .map(|r| (r.to_string(), family(r)))
        .collect();
    let limits = verify::Limits {
        timeout: PATTERN_PROOF_TIMEOUT,
    };
    let verdict = match verify::check_equivalent(&left, &right, &limits) {
        verify::Verdict::Proven => "proven".to_string(),
        verify::Verdict::Refuted(_) => {
            "holds only in its traces (alone, z3 finds a counterexample)".to_string()
        }
        verify::Verdict::Unknown(why) => format!("unknown alone: {why}"),
    };
    Some(Replay { rules, verdict })
}

/// A trace computing `term` into slot N from inputs in slots 0..N (N variables), or
/// `None` when the term holds something a trace cannot compute alone (a cut, an
/// input not abstracted, `memory.grow`).
fn trace_of(term: &Term) -> Option<Trace> {
    let mut vars = BTreeMap::new();
    collect_vars(term, &mut vars);
    let slots = vars.len() as u32;
    let mut builder = Builder {
        body: Vec::new(),
        next: slots,
    };
    let inputs = vars
        .iter()
        .map(|(&index, &ty)| Input {
            value: ValueId(index),
            ty,
            source: Source::Slot(index),
        })
        .collect();
    // Variables are numbered from 0 without gaps, so variable i is value i and slot i.
    if vars.keys().copied().ne(0..slots) {
        return None;
    }
    let result = builder.operand(term)?;
    let trace = Trace {
        locals: slots + 1,
        inputs,
        body: builder.body,
        end: End::Loop {
            state: vec![(slots, result)],
        },
    };
    ir::validate::validate(&trace).ok()?;
    Some(trace)
}

fn collect_vars(term: &Term, vars: &mut BTreeMap<u32, Type>) {
    match term {
        Term::Var { ty, index } => {
            vars.insert(*index, *ty);
        }
        Term::Op { args, .. } => args.iter().for_each(|a| collect_vars(a, vars)),
        _ => {}
    }
}

struct Builder {
    body: Vec<Inst>,
    next: u32,
}

impl Builder {
    fn operand(&mut self, term: &Term) -> Option<Operand> {
        let (name, args) = match term {
            Term::Var { index, .. } => return Some(Operand::Value(ValueId(*index))),
            Term::Const { bits, .. } => return Some(Operand::Const(*bits)),
            Term::Input { .. } | Term::Opaque { .. } => return None,
            Term::Op { name, args, .. } => (name, args),
        };
        let args: Vec<Operand> = args
            .iter()
            .map(|a| self.operand(a))
            .collect::<Option<_>>()?;
        let dst = ValueId(self.next);
        self.next += 1;
        let inst = if name == "select" {
            let [a, b, cond] = args[..] else { return None };
            Inst::Select {
                dst,
                ty: term.ty()?,
                cond,
                a,
                b,
            }
        } else if let Some(op) = NumOp::from_name(name) {
            Inst::Num { dst, op, args }
        } else {
            let (kind, offset) = match name.split_once(" offset=") {
                Some((kind, offset)) => (kind, offset.parse().ok()?),
                None => (name.as_str(), 0),
            };
            let [addr] = args[..] else { return None };
            Inst::Load {
                dst,
                kind: LoadKind::from_name(kind)?,
                offset,
                addr,
            }
        };
        self.body.push(inst);
        Some(Operand::Value(dst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(text: &str) -> Trace {
        ir::text::parse(text).unwrap()
    }

    #[test]
    fn a_strength_reduction_replays_alone_and_is_proven() {
        let found = rewrites(
            &trace(
                "trace locals=1\n  in  v0:i32 = slot 0\n  v1:i32 = i32.mul v0 8\n  loop [s0=v1]\n",
            ),
            &trace(
                "trace locals=1\n  in  v0:i32 = slot 0\n  v1:i32 = i32.shl v0 3\n  loop [s0=v1]\n",
            ),
        );
        assert_eq!(found.len(), 1);
        let rewrite = found.into_iter().next().unwrap();
        let replay = replay(&rewrite).expect("a term rewrite replays");
        assert_eq!(replay.verdict, "proven");
        assert!(
            replay.rules.iter().any(|(_, family)| family != "unknown"),
            "a rule of a known family fired: {:?}",
            replay.rules
        );
    }

    #[test]
    fn a_rewrite_that_needs_its_guard_is_not_proven_alone() {
        let rewrite = Rewrite::Term {
            before: Term::Op {
                name: "i32.lt_u".into(),
                ty: Type::I32,
                args: vec![
                    Term::Var {
                        ty: Type::I32,
                        index: 0,
                    },
                    Term::Var {
                        ty: Type::I32,
                        index: 1,
                    },
                ],
            },
            after: Term::Const { ty: None, bits: 1 },
        };
        let replay = replay(&rewrite).unwrap();
        assert!(
            replay.verdict.starts_with("holds only in its traces"),
            "{}",
            replay.verdict
        );
    }

    #[test]
    fn a_dropped_guard_is_a_removal() {
        let recorded = trace(
            "trace locals=1\n  in  v0:i32 = slot 0\n  v1:i32 = i32.lt_u v0 10\n  guard v1 else exit 0 pc=1 @0x1 []\n  v2:i32 = i32.lt_u v0 10\n  guard v2 else exit 1 pc=2 @0x2 []\n  loop [s0=v0]\n",
        );
        let candidate = trace(
            "trace locals=1\n  in  v0:i32 = slot 0\n  v1:i32 = i32.lt_u v0 10\n  guard v1 else exit 0 pc=1 @0x1 []\n  loop [s0=v0]\n",
        );
        let found: Vec<String> = rewrites(&recorded, &candidate)
            .iter()
            .map(Rewrite::key)
            .collect();
        assert_eq!(
            found,
            ["(br_if $exit (i32.lt_u (local.get $a) (i32.const 10))) => (nop)"]
        );
    }
}
