//! Trace trees: a loop trace with the side traces recorded at its exits inlined, as one
//! function; or, the same way, a trace that ends in an exit (a function's entry trace,
//! which the runtime's driver enters at a call) with the side traces at its exits.
//!
//! A side trace starts where its root exits and most often ends back at the root's loop
//! header. Run as separate functions, each such round trip is a return to the runtime's
//! driver, a look-up of what is linked at the exit, a `call_indirect` into the side trace
//! and another back into the root, with the frame written and read in between (tens of
//! instructions per segment; on a bytecode interpreter's dispatch loop, most of the time).
//! A tree compiles the path as a wasm compiler sees a loop with branches: a root exit with
//! a side trace goes on in the side trace's code, and a side trace that ends at the root's
//! anchor branches back to the top of the root's loop.
//!
//! The tree keeps the root's exit ids; the exits of the side traces are renumbered after
//! them, side trace by side trace in [`Tree::sides`] order ([`Tree::exits`] gives every
//! exit with its tree id). An exit the tree does not inline is a plain exit (`abi.rs`);
//! so is a side trace's end that goes anywhere but the anchor.
//!
//! Only one level is inlined: the exits of a side trace stay exits (whatever is linked
//! at them runs through the driver), which bounds a tree by its root's exits, and each
//! side trace appears once.
//!
//! # State
//!
//! The frame slots a path may change before it comes back to the top of the loop are
//! kept in locals (the *carried* slots, as for a lone loop trace): the root's loop-end
//! slots, the slots an inlined root exit writes, and the slots a side trace's end writes
//! where it loops back. Every other slot keeps, throughout the call, the value it had in
//! the frame at entry. A root exit that goes on in a side trace first makes its state the
//! carried slots' values; the side trace then reads a slot input from its carried local,
//! or from the frame if it is not carried. Every exit writes its own state and every
//! carried slot it does not name, so the frame is exactly what running the root and its
//! side traces one after the other would have left.

use std::collections::{BTreeMap, BTreeSet};

use ir::{End, Exit, Source, Trace};

use crate::error::EmitError;

/// Arms a `br_table` branch may list: a label each in the emitted `br_table`. A
/// recorded `br_table` of a real program has at most a few hundred.
pub const MAX_TABLE_ARMS: u32 = 1 << 16;

/// A root trace and the side traces inlined at its exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// The loop trace the tree is entered at (its anchor's trace).
    pub root: Trace,
    /// The interpreter pc of the root's anchor (its loop header): a side trace whose end
    /// exits there loops back.
    pub anchor_pc: u32,
    pub branches: Vec<Branch>,
}

/// What runs at one root exit instead of leaving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// The root's exit id.
    pub exit: u32,
    pub arms: Arms,
}

/// The side code at a root exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arms {
    /// One side trace, recorded from the exit's pc.
    One(Trace),
    /// The exit's pc is a `br_table` whose index is in frame slot `index_slot`: one side
    /// trace per arm (the last is the default, taken for any index past the others);
    /// an arm without one leaves through the root's exit.
    Table {
        index_slot: u32,
        arms: Vec<Option<Trace>>,
    },
}

impl Tree {
    /// The side traces, in the order their exits are numbered.
    pub fn sides(&self) -> impl Iterator<Item = &Trace> {
        self.branches.iter().flat_map(|b| match &b.arms {
            Arms::One(t) => vec![t],
            Arms::Table { arms, .. } => arms.iter().flatten().collect(),
        })
    }

    /// The first tree exit id of each side trace (in [`Tree::sides`] order): after the
    /// root's ids, each side trace's ids follow the previous one's highest.
    pub fn side_bases(&self) -> Vec<u32> {
        let mut next = id_span(&self.root);
        self.sides()
            .map(|side| {
                let base = next;
                next = next.saturating_add(id_span(side));
                base
            })
            .collect()
    }

    /// Every exit of the tree with its tree id: the root's (inlined or not, as a `br_table`
    /// arm without a side trace still leaves through it), then each side trace's that does
    /// not loop back.
    pub fn exits(&self) -> Vec<(u32, &Exit)> {
        let mut exits: Vec<(u32, &Exit)> = self.root.exits().map(|e| (e.id, e)).collect();
        for (side, base) in self.sides().zip(self.side_bases()) {
            for exit in side.exits() {
                if !self.loops_back(side, exit) {
                    exits.push((base.saturating_add(exit.id), exit));
                }
            }
        }
        exits
    }

    /// Whether `exit`, of side trace `side`, is its end and goes back to the anchor.
    pub(crate) fn loops_back(&self, side: &Trace, exit: &Exit) -> bool {
        matches!(&side.end, End::Exit(end) if std::ptr::eq(end, exit))
            && exit.pc == self.anchor_pc
            && exit.calls.is_empty()
            && matches!(self.root.end, End::Loop { .. })
    }

    /// The slots kept in locals across the loop (see the module comment). A root that ends
    /// in an exit has no loop: only the slots its inlined exits hand to side traces.
    pub fn carried(&self) -> BTreeSet<u32> {
        let mut carried: BTreeSet<u32> = match &self.root.end {
            End::Loop { state } => state.iter().map(|&(s, _)| s).collect(),
            End::Exit(_) => BTreeSet::new(),
        };
        let inlined: BTreeSet<u32> = self.branches.iter().map(|b| b.exit).collect();
        for exit in self.root.exits() {
            if inlined.contains(&exit.id) {
                carried.extend(exit.state.iter().map(|&(s, _)| s));
            }
        }
        for side in self.sides() {
            if let End::Exit(end) = &side.end {
                if self.loops_back(side, end) {
                    carried.extend(end.state.iter().map(|&(s, _)| s));
                }
            }
        }
        carried
    }

    /// Every frame slot the tree reads: the carried slots, every slot input and every
    /// `br_table` branch's index slot.
    pub fn reads(&self) -> BTreeSet<u32> {
        let mut reads = self.carried();
        for branch in &self.branches {
            if let Arms::Table { index_slot, .. } = branch.arms {
                reads.insert(index_slot);
            }
        }
        for trace in std::iter::once(&self.root).chain(self.sides()) {
            for input in &trace.inputs {
                if let Source::Slot(s) = input.source {
                    reads.insert(s);
                }
            }
        }
        reads
    }

    /// Checks what `check` of each trace cannot see: each branch names a root exit once,
    /// side traces end in an exit, tables are not too wide, and the renumbered exit ids
    /// fit.
    pub(crate) fn check_shape(&self, index: u32) -> Result<(), EmitError> {
        let bad = |why: String| Err(EmitError::BadTree { trace: index, why });
        let root_exits: BTreeSet<u32> = self.root.exits().map(|e| e.id).collect();
        let mut seen = BTreeSet::new();
        for branch in &self.branches {
            if !root_exits.contains(&branch.exit) {
                return bad(format!(
                    "a branch names exit {}, which the root lacks",
                    branch.exit
                ));
            }
            if !seen.insert(branch.exit) {
                return bad(format!("exit {} has two branches", branch.exit));
            }
            if let Arms::Table { arms, .. } = &branch.arms {
                if arms.is_empty() || arms.len() as u64 > u64::from(MAX_TABLE_ARMS) {
                    return bad(format!(
                        "the branch at exit {} has {} arms (1 to {MAX_TABLE_ARMS})",
                        branch.exit,
                        arms.len()
                    ));
                }
            }
        }
        if self.sides().any(|s| matches!(s.end, End::Loop { .. })) {
            return bad("a side trace ends in a loop of its own".into());
        }
        let total = self.sides().fold(u64::from(id_span(&self.root)), |n, s| {
            n + u64::from(id_span(s))
        });
        if total > u64::from(u32::MAX) {
            return bad("its exit ids do not fit 32 bits".into());
        }
        Ok(())
    }
}

/// One past a trace's highest exit id: the ids it takes in a tree (or a region).
pub(crate) fn id_span(trace: &Trace) -> u32 {
    trace
        .exits()
        .map(|e| e.id.saturating_add(1))
        .max()
        .unwrap_or(0)
}

/// The branches of a tree by root exit id, for the emitter.
pub(crate) fn branches_by_exit(tree: &Tree) -> BTreeMap<u32, &Branch> {
    tree.branches.iter().map(|b| (b.exit, b)).collect()
}
