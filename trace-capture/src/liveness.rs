//! Which frame slots the interpreter may still read: live-slot analysis of a function's
//! lowered code.
//!
//! A trace leaves to the interpreter at a pc with the slots it wrote. A slot the code
//! overwrites before it reads it again, on every path from that pc, is dead there: its
//! value can never be observed, so the trace need not store it (DESIGN.md: an exit hands
//! the interpreter "every local and stack slot the interpreter needs"). Most of them are
//! operand-stack temporaries, and every exit that drops them stores less, in every trace
//! and every linked segment, and gives the solver a smaller state to compare.
//!
//! The analysis is the textbook backward one over the pcs of `code.rs`, and it errs
//! towards *live*: an instruction whose writes are not exactly one slot after all its
//! reads (`Instr::pure_dst_mut`) counts as reading every slot it names and writing none,
//! and a call counts as reading its whole window and everything above it. A slot kept
//! that could have been dropped costs a store; a slot dropped that is read would be a
//! wrong result.
//!
//! What it takes from the lowering (`lower.rs`), beyond the slots each instruction names:
//! a caller never reads a slot at or above a call's window after the call, its results
//! aside, without writing it first (the callee's frame lay there); only calls and
//! `return` read slots they do not name; the scratch slot is written before it is read.
//! `tests/tier.rs` checks the analysis on every example: after each exit it overwrites
//! every slot called dead with poison, and the programs must print what they print.

use std::sync::Arc;

use ir::InlinedCall;

use crate::code::{CompiledFunc, Instr, Slot};

/// Bit words (a pc's live set takes `ceil(frame_size / 64)`) one function's analysis may
/// keep: 16 MiB, for the module's lifetime. The examples' largest needs 3,786 words
/// (bytecode_vm's function 55: 1,893 instructions, 84 slots); a function past the bound
/// (say 50,000 instructions with a 2,700-slot frame) keeps every slot at its exits.
pub const MAX_LIVENESS_WORDS: usize = 1 << 21;

/// The live slots before each instruction of one function.
#[derive(Debug, Clone)]
pub struct Liveness {
    /// Bit words per pc: `ceil(frame_size / 64)`.
    words: usize,
    /// `live_in[pc * words ..][..words]`: the slots live before `code[pc]` runs.
    live_in: Vec<u64>,
}

impl Liveness {
    /// Analyses `func`, whose code `CompiledFunc::check` accepted (every slot inside the
    /// frame, every jump inside the code).
    pub fn of(func: &CompiledFunc) -> Liveness {
        let frame_size = func.frame_size as usize;
        let words = frame_size.div_ceil(64).max(1);
        let len = func.code.len();
        if len.saturating_mul(words) > MAX_LIVENESS_WORDS {
            // No table: `is_live` answers live for every pc.
            return Liveness {
                words,
                live_in: Vec::new(),
            };
        }
        let effects: Vec<Effect> = func
            .code
            .iter()
            .map(|instr| Effect::of(instr, func))
            .collect();
        let mut live_in = vec![0u64; len * words];
        let mut out = vec![0u64; words];
        // Backward passes until nothing changes; each pass visits the code in reverse, so
        // straight-line code settles in one pass and each loop adds about one more.
        let mut changed = true;
        while changed {
            changed = false;
            for pc in (0..len).rev() {
                out.fill(0);
                for succ in successors(&func.code, pc) {
                    for (o, s) in out.iter_mut().zip(&live_in[succ * words..][..words]) {
                        *o |= s;
                    }
                }
                let effect = &effects[pc];
                if let Some(def) = effect.def {
                    clear(&mut out, def);
                }
                for &(first, count) in &effect.uses {
                    for slot in first..(first + count).min(func.frame_size) {
                        set(&mut out, slot);
                    }
                }
                let row = &mut live_in[pc * words..][..words];
                if row != out.as_slice() {
                    row.copy_from_slice(&out);
                    changed = true;
                }
            }
        }
        Liveness { words, live_in }
    }

    /// Whether `slot` may be read before it is written, from `pc` on. Slots and pcs
    /// outside the function count as live.
    pub fn is_live(&self, pc: u32, slot: Slot) -> bool {
        let (pc, slot) = (pc as usize, slot as usize);
        if slot >= self.words * 64 || (pc + 1) * self.words > self.live_in.len() {
            return true;
        }
        self.live_in[pc * self.words + slot / 64] >> (slot % 64) & 1 != 0
    }
}

/// What one instruction does to liveness: the slot it writes outright, the slot ranges
/// it may read.
struct Effect {
    def: Option<Slot>,
    uses: Vec<(Slot, u32)>,
}

impl Effect {
    fn of(instr: &Instr, func: &CompiledFunc) -> Effect {
        let mut uses = Vec::new();
        instr.for_each_slot_range(|first, count| uses.push((first, count)));
        let mut copy = *instr;
        let pure_dst = copy.pure_dst_mut().map(|dst| *dst);
        // `for_each_slot_range` names a pure instruction's destination first; its operands
        // follow (one of them may be the same slot, read before the write). Should that
        // order ever change, the destination stays a read: live, never wrongly dead.
        let def = match (pure_dst, uses.first()) {
            (Some(dst), Some(&(first, 1))) if first == dst => {
                uses.remove(0);
                Some(dst)
            }
            _ => None,
        };
        match *instr {
            // The callee's frame starts at the window and may reach the frame's end; its
            // arguments are read from there.
            Instr::Call { base, .. } | Instr::CallIndirect { base, .. } => {
                uses.push((base, func.frame_size.saturating_sub(base)));
            }
            Instr::Return => uses.push((0, func.num_results)),
            _ => {}
        }
        Effect { def, uses }
    }
}

/// The pcs control may go to after `code[pc]`.
fn successors(code: &[Instr], pc: usize) -> impl Iterator<Item = usize> + '_ {
    let instr = code[pc];
    let mut copy = instr;
    let target = copy.branch_target_mut().map(|t| *t as usize);
    let (fall_through, table) = match instr {
        Instr::Br { .. } | Instr::Return | Instr::Unreachable => (None, 0..0),
        // The next `len + 1` instructions are the table's jumps.
        Instr::BrTable { len, .. } => (None, pc + 1..pc + 2 + len as usize),
        _ => (Some(pc + 1), 0..0),
    };
    target
        .into_iter()
        .chain(fall_through)
        .chain(table)
        .filter(move |&next| next < code.len())
}

fn set(bits: &mut [u64], slot: Slot) {
    bits[slot as usize / 64] |= 1 << (slot % 64);
}

fn clear(bits: &mut [u64], slot: Slot) {
    bits[slot as usize / 64] &= !(1 << (slot % 64));
}

/// One frame of the stack a trace leaves to: where it starts (in slots from the anchor's
/// frame), how many slots it has, and its function's live slots.
pub(crate) struct FrameLiveness {
    pub base: u32,
    pub size: u32,
    pub liveness: Arc<Liveness>,
}

/// Whether the interpreter may read `slot` (from the anchor's frame) when it goes on at
/// an exit at `pc` inside `calls`. `frames` are the anchor's frame and then one per call.
/// A slot belongs to the innermost frame that starts at or below it. The innermost
/// frame goes on at `pc`; each caller where its callee returns to.
pub(crate) fn read_after_exit(
    frames: &[FrameLiveness],
    calls: &[InlinedCall],
    pc: u32,
    slot: u32,
) -> bool {
    let Some(i) = frames.iter().rposition(|f| f.base <= slot) else {
        return true;
    };
    let frame = &frames[i];
    let resume_pc = calls.get(i).map_or(pc, |call| call.return_pc);
    // A slot past its frame's end is not one the analysis covers: kept.
    slot - frame.base >= frame.size || frame.liveness.is_live(resume_pc, slot - frame.base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Module;

    /// Lowers the module's first defined function and prints each instruction with the
    /// slots live before it; compares with `expected` (spaces at line ends ignored).
    fn check(wat: &str, expected: &str) {
        let module = Module::new(&wat::parse_str(wat).expect("test module parses"))
            .expect("test module validates");
        let func = &module.inner.funcs[0];
        let liveness = Liveness::of(func);
        let mut got = String::new();
        for (pc, instr) in func.code.iter().enumerate() {
            let live: Vec<String> = (0..func.frame_size)
                .filter(|&s| liveness.is_live(pc as u32, s))
                .map(|s| format!("s{s}"))
                .collect();
            got.push_str(&format!(
                "{pc:>2} {:<40} {}\n",
                format!("{instr:?}"),
                live.join(" ")
            ));
        }
        let trim = |s: &str| -> Vec<String> {
            s.lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        };
        assert_eq!(trim(&got), trim(expected), "got:\n{got}");
    }

    #[test]
    fn a_temporary_is_dead_once_read_and_a_local_while_it_is_read_again() {
        // s0 = n, s1 = i, s2 = acc; the loop's sum goes through a stack slot.
        check(
            r#"(module (func (param $n i32) (result i32) (local $i i32) (local $acc i32)
                 (loop $l
                   (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $i) (local.get $i))))
                   (local.set $i (i32.add (local.get $i) (i32.const 1)))
                   (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
                 (local.get $acc)))"#,
            "
             0 LoopHeader { anchor: 1 }                 s0 s1 s2
             1 I32Mul { dst: 5, a: 1, b: 1 }            s0 s1 s2
             2 I32Add { dst: 2, a: 2, b: 5 }            s0 s1 s2 s5
             3 I32AddImm { dst: 1, a: 1, imm: 1 }       s0 s1 s2
             4 BrI32LtU { a: 1, b: 0, target: 0 }       s0 s1 s2
             5 Copy { dst: 0, src: 2 }                  s2
             6 Return                                   s0
            ",
        );
    }

    #[test]
    fn a_function_past_the_bound_keeps_every_slot() {
        // 6,400 locals (101 bit words per pc) and 21,000 copies: past `MAX_LIVENESS_WORDS`.
        let copies = "(local.set 1 (local.get 0))".repeat(21_000);
        let locals = "i64 ".repeat(6_399);
        let wat = format!("(module (func (param i64) (local {locals}) {copies}))");
        let module = Module::new(&wat::parse_str(&wat).expect("parses")).expect("validates");
        let func = &module.inner.funcs[0];
        assert!(func.code.len() * (func.frame_size as usize).div_ceil(64) > MAX_LIVENESS_WORDS);
        let liveness = Liveness::of(func);
        // Local 1 is written before every read of it: dead, were it analysed.
        assert!(liveness.is_live(0, 1) && liveness.is_live(10_000, 6_000));
        assert!(liveness.live_in.is_empty(), "no table kept");
    }

    #[test]
    fn a_call_reads_its_window_and_a_select_its_destination() {
        check(
            r#"(module
                 (func $f (param $a i32) (param $b i32) (result i32)
                   (call $g (select (local.get $a) (local.get $b) (local.get $b)) (i32.const 7)))
                 (func $g (param i32 i32) (result i32) (local.get 0)))"#,
            // The window is s3 and s4; the conservative call also keeps s5, above it.
            "
             0 Copy { dst: 3, src: 0 }                  s0 s1 s5
             1 SelectElse { dst: 3, b: 1, cond: 1 }     s1 s3 s5
             2 Const64 { dst: 4, value: 7 }             s3 s5
             3 Call { func: 1, base: 3 }                s3 s4 s5
             4 Copy { dst: 0, src: 3 }                  s3
             5 Return                                   s0
            ",
        );
    }
}
