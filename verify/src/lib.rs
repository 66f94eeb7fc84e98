//! Translation validation with z3: the only crate that talks to the solver.
//!
//! [`check_equivalent`] proves that a candidate trace (what `saturate` made of a recorded
//! trace) does exactly what the recorded trace does, or refutes it with a concrete entry
//! state that the reference evaluator ([`ir::eval::eval`]) confirms, or says why it can do
//! neither. A verdict is [`Verdict::Proven`], [`Verdict::Refuted`] or
//! [`Verdict::Unknown`]: never a guess.
//!
//! | file | its job |
//! |---|---|
//! | `symbolic.rs` | Symbolic execution of one trace: every way it can end, under which condition, with which state. The operator semantics on bit-vectors. |
//! | `equiv.rs` | The equivalence query, the counterexample it yields, and its replay on the evaluator. |
//!
//! # What equivalent means
//!
//! For every entry state — every value of every slot and global either trace touches
//! (32-bit types with their upper half clear, as the interpreter keeps them), every memory
//! content, every memory size up to 65536 pages and every declared maximum at or above it —
//! both traces end the same way:
//!
//! - through the same exit (same id and pc), or both loop back to the anchor, handing back
//!   the same value in every slot either side writes (a slot one side does not write keeps
//!   its entry value, and is compared as such); or both trap with the same trap kind;
//! - with the same globals, the same memory size and the same memory contents at every
//!   in-bounds address — at a trap too, so a store may not be moved across a possible trap.
//!
//! Traps are results: there is no refinement, a candidate may trap neither more nor less.
//! This is the evaluator's meaning of a trace (`ir`'s crate invariant): two traces are
//! equivalent exactly when [`ir::eval::eval`] gives the same `Outcome` on every entry state.
//!
//! # The encoding
//!
//! Each trace is executed symbolically, straight down its body (it has no branches: a guard
//! or a trap leaves it). Every instruction that can leave — a guard, a trapping operator,
//! a load or store — adds a *terminal*: the condition under which the trace leaves there
//! (the path so far and this failure) and the state at that moment. The terminals of one
//! trace are disjoint and cover every entry state. The query asks z3 for an entry state and
//! a pair of terminals, one per trace, both taken and differing; unsat is a proof.
//!
//! - Values are bit-vectors of their type's width; floats are their bit patterns. Slots and
//!   globals are raw 64-bit values, as the interpreter keeps them.
//! - Integer operators are exact: wrapping arithmetic, shift and rotate counts taken modulo
//!   the width, `clz`/`ctz`/`popcnt` spelled out bit by bit, sign extensions, wraps,
//!   comparisons as 0/1, `select` on a non-zero condition. Division and remainder leave
//!   with `IntegerDivideByZero` when the divisor is 0 and (`div_s` only) with
//!   `IntegerOverflow` for `MIN / -1`, in that order; `rem_s` of `MIN` by -1 is 0.
//! - Memory is an uninterpreted array from 32-bit addresses to bytes (the entry memory)
//!   followed by a log of byte writes and growths; a load reads its bytes little-endian
//!   through the log. An access at `addr` (unsigned 32-bit) `+ offset` of `n` bytes is in
//!   bounds when the 64-bit sum plus `n` is at most `pages × 65536`; otherwise it leaves with
//!   `MemoryOutOfBounds`, and a store writes nothing.
//! - `memory.size` is the current page count. `memory.grow` is modelled, not refused: it
//!   succeeds (returning the old size, the new pages reading as zero) exactly when the new
//!   size is at most the declared maximum, a symbolic entry value `pages ≤ max ≤ 65536`,
//!   and otherwise returns -1. (The evaluator can also fail a growth when the host cannot
//!   allocate it; the encoding, like the evaluator on any real run, assumes it can.)
//! - Memories are compared at a single unconstrained address: the query is existential,
//!   so one differing address is all a counterexample needs.
//!
//! # The float policy
//!
//! The evaluator's floats are the host's (kiln's interpreter gives the same on the same
//! host): bit-exact everywhere wasm fixes the bits, and the host's choice where wasm lets a
//! NaN result be any NaN. The encoding is therefore exact where no NaN *bits* are made and
//! abstract where they are:
//!
//! - exact, on bits: `abs`, `neg`, `copysign`, the reinterpretations, loads, stores,
//!   `select` and moves;
//! - exact, in z3's floating-point theory: the comparisons (NaN unordered, -0 = +0) and
//!   float-to-int truncation, trapping and saturating (NaN, range and value). These give
//!   integers, so no NaN bits are involved. A float is tied to its bits by a side
//!   constraint that every bit pattern satisfies with exactly one float (all NaN patterns
//!   being the theory's one NaN), so it excludes no entry state; there is one such float
//!   per bit-pattern term, shared by both traces, so the same computation on both sides is
//!   the same term (without that, a trace with eight truncations took seconds to prove
//!   equal to itself; with it, milliseconds);
//! - uninterpreted: arithmetic, `min`/`max`, `sqrt`, rounding, int-to-float conversion,
//!   `promote`/`demote`. Each operator is one function symbol over its operands' bits,
//!   the same in both traces. The evaluator computes each of them as a deterministic
//!   function of the operand bits, so whatever holds for every interpretation of the
//!   symbols holds for the real one: a proof is sound. It is incomplete: `x * 2` against
//!   `x + x` cannot be proven (with NaN payloads it is not even bit-exact in wasm's terms).
//!   A counterexample that relies on a meaning the real operator does not have fails the
//!   replay and gives `Unknown` (not a verifier bug, since the abstraction allowed it).
//!
//! Modelling the arithmetic bit-exactly in the floating-point theory (with the host's NaN
//! rules) is left for later: it is the piece a float rewrite would need; until then a float
//! rewrite that changes arithmetic is never proven, so floats pass through untouched, as
//! the design asks.
//!
//! # The soundness argument
//!
//! A `Proven` rests on the encoding being the evaluator's semantics (or, for the
//! uninterpreted float operators, an abstraction of it): unsat means no entry state and no
//! pair of terminals taken on it differ. A `Refuted` rests on nothing from the solver: the
//! model is turned into a concrete [`ir::eval::EntryState`] (the slots, the globals, the
//! memory size and maximum, and the bytes at every address the encoding read from the entry
//! memory, zero elsewhere — no other byte can matter), both traces are run on it by the
//! evaluator, and only outcomes that really differ are reported. A model the evaluator does
//! not confirm, with every operator exact, is a bug in this crate: it is returned as
//! `Unknown("verifier bug: …")` and printed on stderr as an error, never as `Refuted`.
//!
//! # What returns Unknown
//!
//! - the solver's time budget ([`Limits::timeout`], default [`DEFAULT_TIMEOUT`]) ran out:
//!   `Unknown("timeout")`; any other solver give-up: `Unknown("solver: …")`;
//! - an invalid trace (`ir::validate`): `Unknown("invalid recorded trace: …")`;
//! - a counterexample that needs a memory larger than [`MAX_COUNTEREXAMPLE_PAGES`] to
//!   replay (the solver is first asked for one within [`SMALL_PAGES`]);
//! - a counterexample through uninterpreted float operators that real floats do not
//!   confirm;
//! - `verifier bug: …`, as above.
//!
//! Every operator of `ir` is modelled (the match over `NumOp` is exhaustive, so a new
//! operator does not compile until it is modelled here or sent to `Unknown`), so nothing
//! returns `Unknown("unsupported: …")` today.
//!
//! # Example
//!
//! ```
//! use verify::{check_equivalent, Limits, Verdict};
//!
//! let recorded = ir::text::parse("
//!     trace locals=1
//!       in  v0:i32 = slot 0
//!       v1:i32 = i32.mul v0 2
//!       loop [s0=v1]
//! ").unwrap();
//! let shift = ir::text::parse("
//!     trace locals=1
//!       in  v0:i32 = slot 0
//!       v1:i32 = i32.shl v0 1
//!       loop [s0=v1]
//! ").unwrap();
//! assert_eq!(check_equivalent(&recorded, &shift, &Limits::default()), Verdict::Proven);
//!
//! let wrong = ir::text::parse("
//!     trace locals=1
//!       in  v0:i32 = slot 0
//!       v1:i32 = i32.mul v0 3
//!       loop [s0=v1]
//! ").unwrap();
//! let Verdict::Refuted(cex) = check_equivalent(&recorded, &wrong, &Limits::default()) else {
//!     panic!("x * 3 is not x * 2");
//! };
//! assert_ne!(cex.recorded, cex.candidate);
//! ```
//!
//! z3 runs in a thread-local context (the `z3` crate's): checks on different threads are
//! independent, so a rayon pool can verify many traces at once.

mod equiv;
mod symbolic;

pub use equiv::{
    check_equivalent, same_outcome, Counterexample, Limits, Verdict, DEFAULT_TIMEOUT,
    MAX_COUNTEREXAMPLE_PAGES, SMALL_PAGES,
};
