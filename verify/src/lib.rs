//! Translation validation with z3: the only crate that talks to the solver.
//!
//! To come (issue 4): prove a candidate trace equivalent to its recorded trace — same
//! exit, same values handed back, same memory and global effects, traps in exactly the
//! same cases — and prove every rule of the library. A verdict is Proven,
//! Refuted(counterexample) or Unknown(reason), never a guess.
