//! Shared by the tests: running the recorded trace and its candidate side by side.

use std::collections::BTreeMap;

use ir::eval::{eval, EntryState, PAGE_SIZE};
use ir::{Source, Trace, Type};

/// A small deterministic generator (xorshift64*), so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Edge values of a type's width, raw: 0, 1, -1, MIN, MAX and their neighbours, and
/// small numbers (which make addresses in bounds).
pub fn edges(ty: Type) -> Vec<u64> {
    let (min, max, mask) = match ty.bits() {
        32 => (0x8000_0000u64, 0x7fff_ffffu64, 0xffff_ffffu64),
        _ => (1u64 << 63, (1u64 << 63) - 1, u64::MAX),
    };
    let mut v = vec![
        0,
        1,
        2,
        3,
        7,
        8,
        31,
        32,
        63,
        64,
        255,
        256,
        1000,
        mask,
        mask - 1,
        min,
        min + 1,
        max,
        max - 1,
    ];
    v.iter_mut().for_each(|x| *x &= mask);
    v
}

/// One entry state for `trace`: each input an edge value or a random one.
pub fn entry(trace: &Trace, rng: &mut Rng) -> EntryState {
    let mut slots = BTreeMap::new();
    let mut globals = BTreeMap::new();
    // A slot read at a 32-bit type anywhere must hold a zero-extended value.
    let narrow = |source: Source| {
        trace
            .inputs
            .iter()
            .any(|i| i.source == source && i.ty.bits() == 32)
    };
    for input in &trace.inputs {
        let pool = edges(input.ty);
        let mut bits = if rng.below(3) == 0 {
            rng.next()
        } else {
            pool[rng.below(pool.len() as u64) as usize]
        };
        if narrow(input.source) {
            bits &= 0xffff_ffff;
        }
        match input.source {
            Source::Slot(s) => slots.insert(s, bits),
            Source::Global(g) => globals.insert(g, bits),
        };
    }
    let mut memory = vec![0u8; PAGE_SIZE];
    for b in memory.iter_mut().take(4096) {
        *b = rng.next() as u8;
    }
    EntryState {
        slots,
        globals,
        memory,
        max_pages: Some(2),
    }
}

/// Runs both traces on `runs` entry states; panics with the first disagreement.
pub fn same_outcomes(original: &Trace, candidate: &Trace, runs: usize, seed: u64) {
    let mut rng = Rng(seed | 1);
    for run in 0..runs {
        let entry = entry(original, &mut rng);
        let a = eval(original, entry.clone()).expect("the original runs");
        let b = eval(candidate, entry.clone()).expect("the candidate runs");
        assert!(
            a == b,
            "run {run}: outcomes differ\nentry slots {:?} globals {:?}\noriginal:\n{original}\n→ {:?}\ncandidate:\n{candidate}\n→ {:?}",
            entry.slots,
            entry.globals,
            a.end,
            b.end
        );
    }
}
