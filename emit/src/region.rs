//! Regions: the linked traces of one function as one wasm function.
//!
//! A tree (`tree.rs`) inlines the side traces at its root's exits, one level deep, and
//! only where they come back to the root's own header. Loop nests do not fit that shape:
//! a quicksort partition is three loops whose traces hand over to each other (the outer
//! header's trace ends at the first inner loop's header, that loop's exit has a side
//! trace that ends at the second inner loop's header, and so on), and each hand-over is a
//! return to the runtime's driver, a look-up of the link, a `call_indirect`, and the frame
//! written by one trace and read back by the next. On `examples/sort.wasm` the driver alone
//! took 21.7% of the samples of `perf record` (`kiln run --cache`), on lz77 17.6%.
//!
//! A region compiles such a set of traces, its *members*, into one function that hands
//! over the way a compiler lowers irreducible control flow: a dispatch loop around a
//! `br_table` on the member to run next. A member's exit that [`Region::links`] names goes
//! on in that member without leaving the function; any other exit leaves as a trace's
//! does (`abi.rs`). A member that ends in a loop keeps iterating in a `loop` of its own.
//!
//! # State
//!
//! The slots some member's loop end or linked exit writes are *carried*: read from the
//! frame once at entry, kept in locals across hand-overs, and written back by every exit
//! that leaves, as a tree does. Every other slot keeps its entry value until the call
//! returns, so members read it from the frame. The frame at an exit is therefore exactly
//! what running the members one after the other would have left.
//!
//! # Entries and exits
//!
//! The module exports one function per entry member ([`Region::entries`]), with the
//! ABI of a trace function; each calls the region's body with its member. Exit ids are
//! renumbered as a tree's are: member by member, each after the previous one's highest
//! ([`Region::member_bases`]). Every exit keeps an id, a linked one too: a call returns
//! through a linked exit once it has handed over [`MAX_HANDOVERS_PER_CALL`] times, so that
//! a runtime that wants its turn back (to install new code) gets one; its caller goes on
//! through the link at once if it does not.
//!
//! The iteration word counts the loop iterations and hand-overs of the call.

use std::collections::{BTreeMap, BTreeSet};

use ir::{End, Exit, Trace};

use crate::error::EmitError;
use crate::tree::id_span;

/// Members one region may hold: a label each in the dispatch `br_table`. A function's
/// linked traces number in the tens.
pub const MAX_REGION_MEMBERS: u32 = 1 << 12;

/// Hand-overs inside one call before a linked exit leaves after all (see the module
/// comment). Each call of the region costs the caller about one hand-over's worth of
/// driver work, so at this rate it is lost in the noise, and the runtime still gets a
/// turn many times a second.
pub const MAX_HANDOVERS_PER_CALL: u64 = 1 << 16;

/// Traces of one function that go on in each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub members: Vec<Trace>,
    /// `(member, exit id)` → the member that runs next, for exits that stay inside.
    pub links: BTreeMap<(u32, u32), u32>,
    /// The members the region is entered at, in the order of their exported functions.
    pub entries: Vec<u32>,
}

impl Region {
    /// The first region exit id of each member: after the previous member's highest.
    pub fn member_bases(&self) -> Vec<u32> {
        let mut next = 0u32;
        self.members
            .iter()
            .map(|member| {
                let base = next;
                next = next.saturating_add(id_span(member));
                base
            })
            .collect()
    }

    /// Every exit with its region id and its member.
    pub fn exits(&self) -> Vec<(u32, u32, &Exit)> {
        self.members
            .iter()
            .zip(self.member_bases())
            .enumerate()
            .flat_map(|(m, (member, base))| {
                member
                    .exits()
                    .map(move |exit| (base.saturating_add(exit.id), m as u32, exit))
            })
            .collect()
    }

    /// The slots kept in locals (see the module comment).
    pub fn carried(&self) -> BTreeSet<u32> {
        let mut carried = BTreeSet::new();
        for (m, member) in self.members.iter().enumerate() {
            if let End::Loop { state } = &member.end {
                carried.extend(state.iter().map(|&(s, _)| s));
            }
            for exit in member.exits() {
                if self.links.contains_key(&(m as u32, exit.id)) {
                    carried.extend(exit.state.iter().map(|&(s, _)| s));
                }
            }
        }
        carried
    }

    /// Checks what `check` of each member cannot see: there are members and entries,
    /// within [`MAX_REGION_MEMBERS`]; links and entries name members and exits that exist;
    /// the renumbered exit ids fit.
    pub(crate) fn check_shape(&self, index: u32) -> Result<(), EmitError> {
        let bad = |why: String| Err(EmitError::BadRegion { trace: index, why });
        let n = self.members.len();
        if n == 0 || n as u64 > u64::from(MAX_REGION_MEMBERS) {
            return bad(format!("it has {n} members (1 to {MAX_REGION_MEMBERS})"));
        }
        if self.entries.is_empty() {
            return bad("it has no entry".into());
        }
        if let Some(e) = self.entries.iter().find(|&&e| e as usize >= n) {
            return bad(format!("entry {e} is not a member"));
        }
        for (&(from, id), &to) in &self.links {
            let Some(member) = self.members.get(from as usize) else {
                return bad(format!("a link leaves member {from}, which does not exist"));
            };
            if !member.exits().any(|e| e.id == id) {
                return bad(format!(
                    "a link leaves exit {id} of member {from}, which lacks it"
                ));
            }
            if to as usize >= n {
                return bad(format!(
                    "exit {id} of member {from} links to member {to}, which does not exist"
                ));
            }
        }
        let total = self
            .members
            .iter()
            .fold(0u64, |sum, m| sum + u64::from(id_span(m)));
        if total > u64::from(u32::MAX) {
            return bad("its exit ids do not fit 32 bits".into());
        }
        Ok(())
    }
}
