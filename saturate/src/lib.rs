//! Equality saturation over traces: a recorded trace in, a cheaper candidate out.
//!
//! `saturate` **never claims a candidate is correct**. It proposes; the `verify` crate
//! proves the candidate equivalent to the recorded trace with z3, and an unproven
//! candidate never ships. Tests here run both traces on concrete inputs, which catches
//! unsound rules early but proves nothing.
//!
//! The pipeline, one file per step:
//!
//! | file | its job |
//! |---|---|
//! | `lang.rs` | The e-graph language: `ir`'s operators with types, constants as typed bit patterns, inputs, opaque spine results, memory states, loads. |
//! | `facts.rs` | Guard facts: what a passed guard says about the values after it (an exact constant, unsigned and signed bounds). |
//! | `analysis.rs` | Each e-class's type and constant value (folding with `ir::eval::apply`, integers only, never a trapping evaluation). |
//! | `lift.rs` | Trace → one e-graph plus the *spine*: effects, guards and possible traps in recorded order, never rewritten structurally. |
//! | `rules/` | The rule library, one file per family, with its policy (`rules/mod.rs`). |
//! | `cost.rs` | The (provisional) cost table. |
//! | `extract.rs` | Sharing-aware extraction over all roots at once (DAG cost). |
//! | `lower.rs` | The extracted e-graph → a valid `ir::Trace` with the same spine and exits. |
//!
//! Invariants:
//! - A trapping operator, load, store, `global.set`, `memory.size`/`memory.grow` or guard
//!   is never removed, duplicated or moved relative to another, with three exceptions that
//!   cannot change the outcome: a load that repeats an identical earlier load (same kind,
//!   offset, address and no store or grow between) is not repeated; a guard whose
//!   condition folds to a constant that passes is dropped; a trapping integer operator
//!   whose operands fold to constants on which it does not trap becomes that constant.
//! - Floats pass through untouched: no float rule, no float folding.
//! - The candidate passes `ir::validate::validate` and costs no more than the recorded
//!   trace; otherwise [`optimize`] returns the recorded trace itself.
//!
//! ```
//! let trace = ir::text::parse("
//!     trace locals=1
//!       in  v0:i32 = slot 0
//!       v1:i32 = i32.add v0 0
//!       v2:i32 = i32.mul v1 8
//!       loop [s0=v2]
//! ").unwrap();
//! let out = saturate::optimize(&trace, &saturate::Limits::default());
//! assert_eq!(out.candidate.to_string(), "\
//! trace locals=1
//!   in  v0:i32 = slot 0
//!   v1:i32 = i32.shl v0 3
//!   loop [s0=v1]
//! ");
//! assert!(out.cost_after < out.cost_before);
//! ```

pub mod analysis;
pub mod cost;
pub mod extract;
pub mod facts;
pub mod lang;
pub mod lift;
pub mod lower;
pub mod rules;
mod version;
pub use version::version;

use std::time::Duration;

use egg::Runner;

/// Default e-node limit. Traces are short (tens to hundreds of instructions); ten
/// thousand nodes is room for every rule to fire many times over such a trace, and
/// bounds the memory and the extractor's time on a pathological one.
pub const DEFAULT_NODE_LIMIT: usize = 10_000;
/// Default iteration limit. Without associativity/commutativity rules the library
/// saturates small traces in a handful of iterations; 30 (egg's default) is a ceiling.
pub const DEFAULT_ITER_LIMIT: usize = 30;
/// Default time limit for saturation. The nightly job optimizes thousands of traces;
/// one second each keeps a run bounded, and a trace that hits it still gets its best
/// candidate so far.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(1);

/// The limits of one saturation run.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Stop once the e-graph has this many nodes. Default: [`DEFAULT_NODE_LIMIT`].
    pub nodes: usize,
    /// Stop after this many iterations. Default: [`DEFAULT_ITER_LIMIT`].
    pub iterations: usize,
    /// Stop after this long. Default: [`DEFAULT_TIME_LIMIT`].
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            nodes: DEFAULT_NODE_LIMIT,
            iterations: DEFAULT_ITER_LIMIT,
            time: DEFAULT_TIME_LIMIT,
        }
    }
}

/// Why saturation stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    /// No rule had anything new to say: the e-graph holds every rewrite the library can
    /// make of this trace.
    Saturated,
    /// [`Limits::iterations`] was reached.
    IterationLimit,
    /// [`Limits::nodes`] was reached.
    NodeLimit,
    /// [`Limits::time`] was reached.
    TimeLimit,
    /// Anything else egg reports.
    Other(String),
}

impl StopReason {
    /// Whether a limit cut saturation short.
    pub fn hit_limit(&self) -> bool {
        matches!(
            self,
            StopReason::IterationLimit | StopReason::NodeLimit | StopReason::TimeLimit
        )
    }
}

/// What [`optimize`] found.
#[derive(Debug, Clone)]
pub struct Optimized {
    /// The candidate: a valid trace, not known to be correct until `verify` proves it.
    /// The recorded trace itself when nothing cheaper was found.
    pub candidate: ir::Trace,
    /// The recorded trace's cost (`cost.rs`).
    pub cost_before: u64,
    /// The candidate's cost; never more than `cost_before`.
    pub cost_after: u64,
    /// The rules that fired, each once, in the order they first fired.
    pub rules_fired: Vec<&'static str>,
    pub stop_reason: StopReason,
    pub iterations: usize,
    /// E-nodes and e-classes at the end of saturation.
    pub egraph_nodes: usize,
    pub egraph_classes: usize,
    /// Why the recorded trace was returned instead of the extracted one, if it was.
    pub fallback: Option<String>,
}

/// An e-graph after saturation, with the trace's spine and what the run did.
pub struct Saturated {
    /// The e-graph (rebuilt) and the spine, with canonical ids.
    pub lifted: lift::Lifted,
    pub stop_reason: StopReason,
    /// The rules that fired, each once, in the order they first fired.
    pub rules_fired: Vec<&'static str>,
    /// How many times each rule that fired was applied, in the order of `rules_fired`.
    pub applications: Vec<usize>,
    pub iterations: usize,
}

/// Lifts `trace` (which must be valid) and saturates it with the rule library within
/// `limits`.
pub fn saturate(trace: &ir::Trace, limits: &Limits) -> Saturated {
    let library = rules::library();
    let mut lifted = lift::lift(trace);
    let egraph = std::mem::replace(
        &mut lifted.egraph,
        analysis::Graph::new(analysis::TypeConst),
    );
    let runner = Runner::default()
        .with_egraph(egraph)
        .with_node_limit(limits.nodes)
        .with_iter_limit(limits.iterations)
        .with_time_limit(limits.time)
        .run(&library.rules);
    let stop_reason = match &runner.stop_reason {
        Some(egg::StopReason::Saturated) => StopReason::Saturated,
        Some(egg::StopReason::IterationLimit(_)) => StopReason::IterationLimit,
        Some(egg::StopReason::NodeLimit(_)) => StopReason::NodeLimit,
        Some(egg::StopReason::TimeLimit(_)) => StopReason::TimeLimit,
        Some(egg::StopReason::Other(s)) => StopReason::Other(s.clone()),
        None => StopReason::Other("no stop reason".into()),
    };
    let mut rules_fired: Vec<&'static str> = Vec::new();
    let mut applications: Vec<usize> = Vec::new();
    for iteration in &runner.iterations {
        for (symbol, &count) in &iteration.applied {
            if let Some(name) = library.name(*symbol) {
                match rules_fired.iter().position(|&n| n == name) {
                    Some(i) => applications[i] += count,
                    None => {
                        rules_fired.push(name);
                        applications.push(count);
                    }
                }
            }
        }
    }
    let iterations = runner.iterations.len();
    let mut egraph = runner.egraph;
    egraph.rebuild();
    lifted.egraph = egraph;
    lifted.canonicalize();
    Saturated {
        lifted,
        stop_reason,
        rules_fired,
        applications,
        iterations,
    }
}

/// Saturates `trace` (which must be valid) with the rule library within `limits`, and
/// returns the cheapest candidate found. A run cut short by a limit still extracts its
/// best candidate so far ([`Optimized::stop_reason`] says which limit).
pub fn optimize(trace: &ir::Trace, limits: &Limits) -> Optimized {
    let Saturated {
        lifted,
        stop_reason,
        rules_fired,
        iterations,
        ..
    } = saturate(trace, limits);
    let (egraph_nodes, egraph_classes) = (
        lifted.egraph.total_size(),
        lifted.egraph.number_of_classes(),
    );
    let roots = lifted.roots();
    let (choice, _) = extract::extract(&lifted.egraph, &roots);

    let cost_before = cost::trace_cost(trace);
    let lowered = lower::lower(trace, &lifted, &choice)
        .map_err(|e| e.0)
        .and_then(|t| match ir::validate::validate(&t) {
            Ok(()) => Ok(t),
            Err(e) => Err(format!("the lowered candidate is invalid: {e}")),
        })
        .and_then(|t| {
            let cost = cost::trace_cost(&t);
            if cost <= cost_before {
                Ok(t)
            } else {
                Err(format!(
                    "the extracted candidate costs {cost}, more than {cost_before}"
                ))
            }
        });
    let (candidate, fallback) = match lowered {
        Ok(t) => (t, None),
        Err(e) => (trace.clone(), Some(e)),
    };
    Optimized {
        cost_after: cost::trace_cost(&candidate),
        candidate,
        cost_before,
        rules_fired,
        stop_reason,
        iterations,
        egraph_nodes,
        egraph_classes,
        fallback,
    }
}
