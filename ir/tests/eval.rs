//! The reference evaluator, through one helper: `check(trace, entry, expected)` runs a
//! trace (text form; `trace locals=0` is put in front if it has no header) from an entry
//! state written as
//!
//! ```text
//! s0=5 s1=0xffffffff s2=f64:1.5 g0=i32:-1 pages=1 max=2 @0x10=01020304
//! ```
//!
//! (slots `sN` and globals `gN` raw, or typed with a constant of the text form; memory
//! pages, zero-filled; the declared maximum; bytes in hex at an address), and compares
//! the outcome rendered as
//!
//! ```text
//! loop [s0=1] | exit 1 pc=57 [s0=1] | trap integer divide by zero
//! globals g0=1 g3=0xffffffff        ;; if there are globals
//! pages 2                           ;; if the size changed
//! @0x10: 01 02                      ;; each run of bytes that differ from the entry's
//! ```
//!
//! Every check also runs the trace's canonical form and its decoded binary form, which
//! must give the same outcome.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ir::binary::{decode, encode};
use ir::eval::{eval, Ended, EntryState, EvalError, Outcome, PAGE_SIZE};
use ir::hash::canonicalize;
use ir::text::{constant, constant_text, parse};
use ir::{Expect, Type};

#[track_caller]
fn check(trace: &str, entry: &str, expected: &str) {
    let trace = parse(&with_header(trace)).unwrap_or_else(|e| panic!("{e}"));
    let entry = entry_state(entry);
    let outcome = eval(&trace, entry.clone()).unwrap_or_else(|e| panic!("{e}"));
    let actual = render(&outcome, &entry);
    let expected: Vec<&str> = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(actual, expected.join("\n") + "\n", "trace:\n{trace}");
    assert_eq!(
        eval(&canonicalize(&trace), entry.clone()),
        Ok(outcome.clone()),
        "the canonical form disagrees"
    );
    assert_eq!(
        eval(&decode(&encode(&trace)).unwrap(), entry),
        Ok(outcome),
        "the decoded form disagrees"
    );
}

/// Running `trace` from `entry` must be refused with exactly `expected`.
#[track_caller]
fn check_error(trace: &str, entry: &str, expected: &str) {
    let trace = parse(&with_header(trace)).unwrap_or_else(|e| panic!("{e}"));
    match eval(&trace, entry_state(entry)) {
        Ok(outcome) => panic!("expected `{expected}`, got {outcome:?}"),
        Err(e) => assert_eq!(e.to_string(), expected),
    }
}

fn with_header(trace: &str) -> String {
    if trace.trim_start().starts_with("trace") {
        trace.to_string()
    } else {
        format!("trace locals=0\n{trace}")
    }
}

fn entry_state(text: &str) -> EntryState {
    let mut entry = EntryState::default();
    for item in text.split_whitespace() {
        let (key, value) = item
            .split_once('=')
            .unwrap_or_else(|| panic!("entry item `{item}`"));
        let number = |s: &str| -> u64 {
            match s.split_once(':') {
                Some((ty, c)) => {
                    let ty = Type::from_name(ty).unwrap_or_else(|| panic!("type in `{item}`"));
                    // Float bits keep their prefix (`f32:0x7fc00001`), as the text form writes them.
                    let c = if ty.is_float() && c.starts_with("0x") {
                        s
                    } else {
                        c
                    };
                    constant(c, Expect::Typed(ty))
                        .unwrap_or_else(|e| panic!("`{item}`: expected {e}"))
                }
                None => {
                    constant(s, Expect::Raw).unwrap_or_else(|e| panic!("`{item}`: expected {e}"))
                }
            }
        };
        if let Some(at) = key.strip_prefix('@') {
            let at = number(at) as usize;
            let bytes: Vec<u8> = (0..value.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&value[i..i + 2], 16).unwrap())
                .collect();
            entry.memory[at..at + bytes.len()].copy_from_slice(&bytes);
        } else if key == "pages" {
            entry.memory = vec![0; number(value) as usize * PAGE_SIZE];
        } else if key == "max" {
            entry.max_pages = Some(number(value) as u32);
        } else if let Some(s) = key.strip_prefix('s') {
            entry.slots.insert(s.parse().unwrap(), number(value));
        } else if let Some(g) = key.strip_prefix('g') {
            entry.globals.insert(g.parse().unwrap(), number(value));
        } else {
            panic!("entry item `{item}`");
        }
    }
    entry
}

fn render(outcome: &Outcome, entry: &EntryState) -> String {
    let raw = |bits: u64| constant_text(bits, Expect::Raw);
    let slots = |slots: &BTreeMap<u32, u64>| {
        slots
            .iter()
            .map(|(s, &v)| format!("s{s}={}", raw(v)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = String::new();
    match &outcome.end {
        Ended::Loop { slots: s } => writeln!(out, "loop [{}]", slots(s)).unwrap(),
        Ended::Exit {
            id, pc, slots: s, ..
        } => writeln!(out, "exit {id} pc={pc} [{}]", slots(s)).unwrap(),
        Ended::Trap(kind) => writeln!(out, "trap {kind}").unwrap(),
    }
    if !outcome.globals.is_empty() {
        let globals: Vec<String> = outcome
            .globals
            .iter()
            .map(|(g, &v)| format!("g{g}={}", raw(v)))
            .collect();
        writeln!(out, "globals {}", globals.join(" ")).unwrap();
    }
    assert_eq!(
        outcome.memory.len(),
        outcome.memory_pages as usize * PAGE_SIZE
    );
    if outcome.memory.len() != entry.memory.len() {
        writeln!(out, "pages {}", outcome.memory_pages).unwrap();
    }
    let before = |i: usize| entry.memory.get(i).copied().unwrap_or(0);
    let mut i = 0;
    while i < outcome.memory.len() {
        if outcome.memory[i] == before(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < outcome.memory.len() && outcome.memory[i] != before(i) {
            i += 1;
        }
        let bytes: Vec<String> = outcome.memory[start..i]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        writeln!(out, "@{start:#x}: {}", bytes.join(" ")).unwrap();
    }
    out
}

const CRC32_STEP: &str = "trace locals=3
  in  v0:i32 = slot 0
  in  v1:i32 = slot 1
  in  v2:i32 = slot 2
  v3:i32 = i32.xor v0 v1
  v4:i32 = i32.and v3 255
  v5:i32 = i32.shl v4 2
  v6:i32 = i32.load offset=1024 v5
  v7:i32 = i32.shr_u v0 8
  v8:i32 = i32.xor v6 v7
  v9:i32 = i32.add v1 1
  v10:i32 = i32.lt_s v9 v2
  guard v10 else exit 1 pc=57 @0x62 [s0=v8 s1=v9 s2=v2]
  loop [s0=v8 s1=v9 s2=v2]
";

#[test]
fn a_loop_iteration_and_its_exit() {
    // crc = 0xffffffff, i = 0: table index 0xff, entry at 1024 + 0x3fc holds 0x12345678;
    // 0x12345678 ^ 0x00ffffff = 0x12cba987.
    check(
        CRC32_STEP,
        "s0=0xffffffff s1=0 s2=10 pages=1 @0x7fc=78563412",
        "loop [s0=0x12cba987 s1=1 s2=10]",
    );
    // The last iteration: i + 1 = n, so the guard fails and the exit takes the same state.
    // The last iteration: i + 1 = n, so the guard fails. Index 0xf6: the table entry is 0.
    check(
        CRC32_STEP,
        "s0=0xffffffff s1=9 s2=10 pages=1 @0x7fc=78563412",
        "exit 1 pc=57 [s0=0xffffff s1=10 s2=10]",
    );
}

#[test]
fn division_traps_keep_earlier_effects() {
    let trace = "trace locals=2
  in  v0:i32 = slot 0
  in  v1:i32 = slot 1
  i32.store 16 v0
  global.set 0 v1
  v2:i32 = i32.div_s v0 v1
  i32.store 32 v2
  global.set 0 v2
  loop [s0=v2]
";
    check(
        trace,
        "s0=7 s1=2 g0=9 pages=1",
        "loop [s0=3]\nglobals g0=3\n@0x10: 07\n@0x20: 03",
    );
    // Dividing by zero: the store and global write before it happened, those after not.
    check(
        trace,
        "s0=7 s1=0 g0=9 pages=1",
        "trap integer divide by zero\nglobals g0=0\n@0x10: 07",
    );
    // INT_MIN / -1 overflows.
    check(
        trace,
        "s0=0x80000000 s1=0xffffffff g0=9 pages=1",
        "trap integer overflow\nglobals g0=0xffffffff\n@0x13: 80",
    );
}

#[test]
fn remainder_of_int_min_by_minus_one_is_zero() {
    let trace = "  in  v0:i32 = slot 0
  in  v1:i64 = slot 1
  v2:i32 = i32.rem_s v0 -1
  v3:i64 = i64.rem_s v1 -1
  v4:i64 = i64.div_s v1 -1
  loop [s0=v2 s1=v3 s2=v4]
";
    check(trace, "s0=7 s1=i64:-7", "loop [s0=0 s1=0 s2=7]");
    check(
        trace,
        "s0=i32:-2147483648 s1=i64:-9223372036854775808",
        "trap integer overflow",
    );
    let trace = "  in  v0:i64 = slot 0
  v1:i64 = i64.rem_s v0 -1
  v2:i64 = i64.rem_u v0 0
  loop [s0=v1 s1=v2]
";
    check(
        trace,
        "s0=i64:-9223372036854775808",
        "trap integer divide by zero",
    );
}

#[test]
fn out_of_bounds_accesses_trap_and_write_nothing() {
    let trace = "  in  v0:i32 = slot 0
  i32.store 0 0x11223344
  i32.store v0 -1
  i32.store 8 0x55
  loop []
";
    // In bounds: the last 4 bytes of the page.
    check(
        trace,
        "s0=65532 pages=1",
        "loop []\n@0x0: 44 33 22 11\n@0x8: 55\n@0xfffc: ff ff ff ff",
    );
    // Straddling the end: nothing of it is written, and the store after it does not run.
    check(
        trace,
        "s0=65533 pages=1",
        "trap out of bounds memory access\n@0x0: 44 33 22 11",
    );
    // No memory at all: the first store traps.
    check(trace, "s0=0", "trap out of bounds memory access");
    // The address is unsigned and address + offset does not wrap around 2^32.
    let trace = "  in  v0:i32 = slot 0
  v1:i32 = i32.load8_u offset=1 v0
  loop [s0=v1]
";
    check(
        trace,
        "s0=0xffffffff pages=1",
        "trap out of bounds memory access",
    );
    check(trace, "s0=65534 pages=1 @0xffff=2a", "loop [s0=42]");
    check(
        trace,
        "s0=65535 pages=1",
        "trap out of bounds memory access",
    );
}

#[test]
fn loads_extend_and_stores_truncate() {
    let trace = "  v0:i32 = i32.load8_s 0
  v1:i32 = i32.load8_u 0
  v2:i32 = i32.load16_s 0
  v3:i64 = i64.load8_s 0
  v4:i64 = i64.load16_u 0
  v5:i64 = i64.load32_s 0
  v6:i64 = i64.load32_u 0
  v7:i64 = i64.load 0
  i64.store16 16 v7
  i64.store32 24 v7
  i32.store8 32 v0
  loop [s0=v0 s1=v1 s2=v2 s3=v3 s4=v4 s5=v5 s6=v6 s7=v7]
";
    check(
        trace,
        "pages=1 @0=80f1f2f3f4f5f6f7",
        "loop [s0=0xffffff80 s1=128 s2=0xfffff180 s3=0xffffffffffffff80 s4=61824 s5=0xfffffffff3f2f180 s6=0xf3f2f180 s7=0xf7f6f5f4f3f2f180]
         @0x10: 80 f1
         @0x18: 80 f1 f2 f3
         @0x20: 80",
    );
}

#[test]
fn guards_leave_through_their_own_exit() {
    let trace = "trace locals=1
  in  v0:i32 = slot 0
  v1:i32 = i32.gt_u v0 10
  guard !v1 else exit 1 pc=5 @0x10 [s0=v0 s1=1]
  v2:i32 = i32.eqz v0
  guard v2 else exit 2 pc=9 @0x18 [s0=v0 s1=2]
  exit 3 pc=12 @0x1c [s0=v0 s1=0xffffffffffffffff]
";
    check(trace, "s0=11", "exit 1 pc=5 [s0=11 s1=1]");
    check(trace, "s0=3", "exit 2 pc=9 [s0=3 s1=2]");
    check(trace, "s0=0", "exit 3 pc=12 [s0=0 s1=0xffffffffffffffff]");
}

#[test]
fn loops_write_only_their_state() {
    let trace = "trace locals=3
  in  v0:i64 = slot 0
  in  v1:i32 = slot 2
  v2:i64 = i64.add v0 -1
  loop [s0=v2 s1=0x8000000000000000]
";
    // Slot 2 is read but not written, and slot 5 is neither: neither shows.
    check(
        trace,
        "s0=0 s2=1 s5=9",
        "loop [s0=0xffffffffffffffff s1=0x8000000000000000]",
    );
}

#[test]
fn shift_counts_wrap_and_arithmetic_wraps() {
    let trace = "  v0:i32 = i32.shl 1 33
  v1:i64 = i64.shr_s -8 65
  v2:i32 = i32.shr_u -1 32
  v3:i32 = i32.rotl 0x80000001 33
  v4:i64 = i64.rotr 1 -1
  v5:i32 = i32.add 2147483647 1
  v6:i32 = i32.mul 65536 65536
  v7:i64 = i64.sub -9223372036854775808 1
  v8:i32 = i32.clz 0
  v9:i64 = i64.ctz 0
  v10:i32 = i32.extend8_s 0x80
  loop [s0=v0 s1=v1 s2=v2 s3=v3 s4=v4 s5=v5 s6=v6 s7=v7 s8=v8 s9=v9 s10=v10]
";
    check(
        trace,
        "",
        "loop [s0=2 s1=0xfffffffffffffffc s2=0xffffffff s3=3 s4=2 s5=0x80000000 s6=0 s7=0x7fffffffffffffff s8=32 s9=64 s10=0xffffff80]",
    );
}

#[test]
fn float_bit_operations_keep_nan_payloads() {
    let trace = "  in  v0:f32 = slot 0
  in  v1:f64 = slot 1
  v2:f32 = f32.neg v0
  v3:f32 = f32.abs v2
  v4:f32 = f32.copysign v0 -1.0
  v5:i32 = i32.reinterpret_f32 v0
  v6:f64 = f64.neg v1
  v7:f64 = select v1 0.0 1
  f32.store 0 v0
  v8:f32 = f32.load 0
  v9:f32 = f32.ceil v0
  v10:i32 = f32.eq v0 v0
  v11:i32 = f32.ne v0 v0
  v12:i32 = f64.lt v1 inf
  exit 0 pc=0 @0x0 [s0=v2 s1=v3 s2=v4 s3=v5 s4=v6 s5=v7 s6=v8 s7=v9 s8=v10 s9=v11 s10=v12]
";
    // A signalling NaN (quiet bit clear) with a payload, and a negative f64 NaN.
    check(
        trace,
        "s0=f32:0x7fa00001 s1=f64:0xfff4000000000001 pages=1",
        "exit 0 pc=0 [s0=0xffa00001 s1=0x7fa00001 s2=0xffa00001 s3=0x7fa00001 s4=0x7ff4000000000001 s5=0xfff4000000000001 s6=0x7fa00001 s7=0x7fe00001 s8=0 s9=1 s10=0]
         @0x0: 01
         @0x2: a0 7f",
    );
}

#[test]
fn float_to_int_truncation() {
    let trace = "  in  v0:f32 = slot 0
  v1:i32 = i32.trunc_sat_f32_s v0
  v2:i64 = i64.trunc_sat_f32_u v0
  v3:i32 = i32.trunc_f32_s v0
  exit 0 pc=0 @0x0 [s0=v1 s1=v2 s2=v3]
";
    check(
        trace,
        "s0=f32:-1.9",
        "exit 0 pc=0 [s0=0xffffffff s1=0 s2=0xffffffff]",
    );
    check(
        trace,
        "s0=f32:0x7fc00000",
        "trap invalid conversion to integer",
    );
    check(trace, "s0=f32:2147483648.0", "trap integer overflow");
    // The saturating forms alone do not trap.
    let trace = "  in  v0:f32 = slot 0
  v1:i32 = i32.trunc_sat_f32_s v0
  v2:i64 = i64.trunc_sat_f32_u v0
  loop [s1=v1 s2=v2]
";
    check(trace, "s0=f32:0x7fc00000", "loop [s1=0 s2=0]");
    check(trace, "s0=f32:-inf", "loop [s1=0x80000000 s2=0]");
    check(
        trace,
        "s0=f32:1e30",
        "loop [s1=0x7fffffff s2=0xffffffffffffffff]",
    );
}

#[test]
fn memory_grow_succeeds_up_to_the_maximum() {
    let trace = "  in  v0:i32 = slot 0
  v1:i32 = memory.grow v0
  v2:i32 = memory.size
  i32.store8 65536 7
  loop [s0=v1 s1=v2]
";
    check(
        trace,
        "s0=1 pages=1 max=2",
        "loop [s0=1 s1=2]\npages 2\n@0x10000: 07",
    );
    // Past the declared maximum: -1, and memory stays as it was (so the store traps).
    check(
        trace,
        "s0=2 pages=1 max=2",
        "trap out of bounds memory access",
    );
    // Growing by 0 gives the size; with no declared maximum, 65536 pages is the limit.
    let trace = "  in  v0:i32 = slot 0
  v1:i32 = memory.grow v0
  v2:i32 = memory.size
  loop [s0=v1 s1=v2]
";
    check(trace, "s0=0 pages=1", "loop [s0=1 s1=1]");
    check(trace, "s0=65536 pages=1", "loop [s0=0xffffffff s1=1]");
    check(trace, "s0=0xffffffff pages=1", "loop [s0=0xffffffff s1=1]");
    check(trace, "s0=1 pages=0", "loop [s0=0 s1=1]\npages 1");
}

#[test]
fn globals_and_select() {
    let trace = "  in  v0:i32 = global 0
  in  v1:i64 = global 1
  v2:i64 = select v1 -1 v0
  global.set 1 v2
  global.set 5 0x1234
  loop []
";
    check(trace, "g0=1 g1=40", "loop []\nglobals g0=1 g1=40 g5=4660");
    check(
        trace,
        "g0=0 g1=40",
        "loop []\nglobals g0=0 g1=0xffffffffffffffff g5=4660",
    );
}

#[test]
fn malformed_entry_states_are_errors() {
    let trace = "  in  v0:i32 = slot 3
  in  v1:i32 = global 2
  loop []
";
    check_error(
        trace,
        "g2=0",
        "the trace reads slot 3, which the entry state lacks",
    );
    check_error(
        trace,
        "s3=0",
        "the trace reads global 2, which the entry state lacks",
    );
    check_error(
        trace,
        "s3=0x100000000 g2=0",
        "entry slot 3 holds 0x100000000, which is not a raw i32",
    );
    let mut entry = entry_state("s3=0 g2=0");
    entry.memory = vec![0; 100];
    let trace = parse(&with_header(trace)).unwrap();
    assert_eq!(
        eval(&trace, entry).unwrap_err().to_string(),
        "entry memory of 100 bytes is not a whole number of 65536-byte pages, at most 65536"
    );
    check_error(
        "  loop []",
        "pages=2 max=1",
        "entry memory of 131072 bytes is not a whole number of 65536-byte pages, at most 1",
    );
}

#[test]
fn invalid_traces_are_refused() {
    use ir::{End, Inst, NumOp, Operand, Trace, ValueId};
    let trace = Trace {
        locals: 0,
        inputs: vec![],
        body: vec![Inst::Num {
            dst: ValueId(0),
            op: NumOp::I32Eqz,
            args: vec![Operand::Value(ValueId(9))],
        }],
        end: End::Loop { state: vec![] },
    };
    assert!(matches!(
        eval(&trace, EntryState::default()),
        Err(EvalError::Invalid(_))
    ));
}

/// Every operator on every pair of edge values: a result has its type's width (a 32-bit
/// result keeps its upper half zero) and only trapping operators trap.
#[test]
fn operators_are_total_except_their_traps() {
    use ir::eval::apply;
    use ir::ops::NUM_OPS;
    let edges = |ty: Type| -> Vec<u64> {
        match ty {
            Type::I32 => vec![0, 1, 31, 32, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff],
            Type::I64 => vec![0, 1, 63, 64, (1 << 63) - 1, 1 << 63, u64::MAX],
            Type::F32 => vec![
                0,
                0x8000_0000,
                0x3f80_0000,
                0x4f00_0000,
                0xcf00_0001,
                0x7f80_0000,
                0xff80_0000,
                0x7fc0_0000,
                0x7fa0_0001,
                1,
            ],
            Type::F64 => vec![
                0,
                1 << 63,
                0x3ff0_0000_0000_0000,
                0x43e0_0000_0000_0000,
                0xc3e0_0000_0000_0001,
                0x7ff0_0000_0000_0000,
                0x7ff8_0000_0000_0000,
                0x7ff4_0000_0000_0001,
                1,
            ],
        }
    };
    let mut traps = 0;
    for info in &NUM_OPS {
        let first = edges(info.params[0]);
        let second = info.params.get(1).map_or(vec![0], |&t| edges(t));
        for &a in &first {
            for &b in &second {
                let args = &[a, b][..info.arity()];
                match apply(info.op, args) {
                    Ok(bits) => assert!(
                        info.result.holds(bits),
                        "{} {args:x?} = {bits:#x}",
                        info.name
                    ),
                    Err(trap) => {
                        assert!(info.can_trap, "{} {args:x?} trapped: {trap}", info.name);
                        traps += 1;
                    }
                }
            }
        }
    }
    assert!(traps > 0);
}
