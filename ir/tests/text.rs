//! The text form's errors and edge cases, each through one helper: `check_error(input,
//! "line:col: message")` for text that must not parse, `check_print(trace, text)` for
//! what the printer writes.

use ir::text::{parse, parse_with_provenance, print_with_provenance};
use ir::{
    AnchorKind, End, Exit, Input, Inst, NumOp, Operand, Provenance, Source, Trace, Type, ValueId,
};

/// `input` (when it starts with two spaces, a trace body: the header `trace locals=2`
/// and inputs `v0:i32 = slot 0`, `v1:i32 = slot 1` are put in front) must fail to
/// parse with exactly `expected`, which is `line:column: message`.
#[track_caller]
fn check_error(input: &str, expected: &str) {
    let text = if input.starts_with("  ") {
        format!("trace locals=2\n  in  v0:i32 = slot 0\n  in  v1:i32 = slot 1\n{input}")
    } else {
        input.to_string()
    };
    match parse_with_provenance(&text) {
        Ok((trace, _)) => panic!("expected the error `{expected}`, but it parsed:\n{trace}"),
        Err(e) => assert_eq!(e.to_string(), expected, "for input:\n{text}"),
    }
}

#[test]
fn header_errors() {
    check_error(
        "",
        "1:1: expected a trace header (`trace locals=N`), found end of input",
    );
    check_error(
        ";; only a comment\n",
        "1:1: expected a trace header (`trace locals=N`), found end of input",
    );
    check_error(
        "tracer locals=1\n  loop []",
        "1:1: expected `trace`, found `tracer`",
    );
    check_error(
        "trace\n  loop []",
        "1:6: expected `locals=`, found end of line",
    );
    check_error(
        "trace locals=x\n  loop []",
        "1:14: expected an unsigned 32-bit number, found `x`",
    );
    check_error(
        "trace locals=1 locals=2\n  loop []",
        "1:16: `locals=` is given twice",
    );
    check_error("trace locals=1 depth=3\n  loop []", "1:16: expected `locals=`, `func=`, `anchor=`, `kind=`, `hits=` or `module=`, found `depth=3`");
    check_error(
        "trace func=1 anchor=0x10 kind=loop module=ab locals=1\n  loop []",
        "1:54: expected `hits=`: a provenance has all of func, anchor, kind, hits and module, or none",
    );
    check_error(
        "trace func=1 anchor=0x10 kind=hot hits=1 module=ab locals=1\n  loop []",
        "1:31: expected `loop` or `entry`, found `hot`",
    );
    check_error(
        "trace func=1 anchor=0x10 kind=loop hits=1 module=xyz locals=1\n  loop []",
        "1:50: expected the module's hash in hex, found `xyz`",
    );
}

#[test]
fn line_structure_errors() {
    check_error(
        "  v2:i32 = i32.add v0 v1\n",
        "4:25: expected the end of the trace (`loop [...]` or `exit ...`), found end of input",
    );
    check_error(
        "  loop []\n  loop []",
        "5:3: expected nothing after the end of the trace",
    );
    check_error(
        "  v2:i32 = i32.add v0 v1\n  in  v3:i32 = slot 2\n  loop []",
        "5:3: expected an instruction: inputs come before the body",
    );
    check_error("  frob v0\n  loop []", "4:3: expected an instruction (`vN:type = ...`, a store, `global.set`, `guard`) or the end (`loop`, `exit`), found `frob`");
    check_error("  loop [] [s0=v0]", "4:11: expected end of line, found `[`");
}

#[test]
fn input_errors() {
    check_error(
        "trace locals=1\n  in v0:i32 = local 0\n  loop []",
        "2:15: expected `slot` or `global`, found `local`",
    );
    check_error(
        "trace locals=1\n  in v0:i32 = slot\n  loop []",
        "2:19: expected an index, found end of line",
    );
    check_error(
        "trace locals=1\n  in v0 = slot 0\n  loop []",
        "2:6: expected a value and its type (`v0:i32`), found `v0`",
    );
    check_error(
        "trace locals=1\n  in x0:i32 = slot 0\n  loop []",
        "2:6: expected a value (`v0`), found `x0`",
    );
    check_error(
        "trace locals=1\n  in v0:i33 = slot 0\n  loop []",
        "2:9: expected a type (`i32`, `i64`, `f32`, `f64`), found `i33`",
    );
    check_error(
        "trace locals=1\n  in v99999999999:i32 = slot 0\n  loop []",
        "2:6: value number `v99999999999` is too large for u32",
    );
    check_error(
        "trace locals=1\n  in v0:i32 = slot 0\n  in v1:i32 = slot 0\n  loop []",
        "3:6: slot 0 is read as i32 by two inputs, v0 and v1",
    );
    check_error(
        "trace locals=1\n  in v0:i32 = slot 0\n  in v0:i64 = global 0\n  loop []",
        "3:6: v0 is defined twice",
    );
}

#[test]
fn instruction_errors() {
    check_error(
        "  v2:i64 = i32.add v0 v1\n  loop []",
        "4:6: `i32.add` gives i32, not i64",
    );
    check_error("  v2:i32 = i32.frob v0 v1\n  loop []", "4:12: expected an operator (`i32.add`, `select`, `i32.load`, `memory.grow`, ...), found `i32.frob`");
    check_error(
        "  v2:i32 = i32.add v0\n  loop []",
        "4:22: expected an operand (i32), found end of line",
    );
    check_error(
        "  v2:i32 = i32.add v0 v1 v1\n  loop []",
        "4:26: expected end of line, found `v1`",
    );
    check_error(
        "  v2:i32 = i32.add v0 4294967296\n  loop []",
        "4:23: expected a value or an i32 constant (out of range), found `4294967296`",
    );
    check_error(
        "  v2:i32 = i32.add v0 -2147483649\n  loop []",
        "4:23: expected a value or an i32 constant (out of range), found `-2147483649`",
    );
    check_error(
        "  v2:i32 = i32.add v0 1.5\n  loop []",
        "4:23: expected a value or an i32 constant, found `1.5`",
    );
    check_error(
        "  v2:f32 = f32.convert_i32_s v0\n  v3:f32 = f32.add v2 nan\n  loop []",
        "5:23: expected a value or an f32 constant (NaNs as bits: `f32:0x...`), found `nan`",
    );
    check_error("  v2:f32 = f32.convert_i32_s v0\n  v3:f32 = f32.add v2 f32:0x123456789\n  loop []", "5:23: expected a value or an f32 constant (NaNs as bits: `f32:0x...`), found `f32:0x123456789`");
    check_error(
        "  v2:f32 = f32.convert_i32_s v0\n  v3:f32 = f32.add v2 f64:0x1\n  loop []",
        "5:23: expected a value or an f32 constant (NaNs as bits: `f32:0x...`), found `f64:0x1`",
    );
    check_error(
        "  v2:i64 = memory.size\n  loop []",
        "4:6: `memory.size` gives i32, not i64",
    );
    check_error(
        "  v2:i32 = i32.load offset=-1 v0\n  loop []",
        "4:28: expected an unsigned 32-bit number, found `-1`",
    );
    check_error(
        "  i32.store v0\n  loop []",
        "4:15: expected an operand (i32), found end of line",
    );
    check_error(
        "  global.set x v0\n  loop []",
        "4:14: expected an unsigned 32-bit number, found `x`",
    );
    check_error(
        "  global.set 0 -1\n  loop []",
        "4:16: expected a value or an unsigned 64-bit constant, found `-1`",
    );
}

#[test]
fn guard_and_exit_errors() {
    check_error(
        "  guard v0 exit 0 pc=1 @0x2 []\n  loop []",
        "4:12: expected `else`, found `exit`",
    );
    check_error(
        "  guard ! else exit 0 pc=1 @0x2 []\n  loop []",
        "4:9: expected an operand right after `!`, found `!`",
    );
    check_error(
        "  guard v0 else exit 0 pc=1 []\n  loop []",
        "4:29: expected `@N`, found `[`",
    );
    check_error(
        "  guard v0 else exit 0 @0x2 pc=1 []\n  loop []",
        "4:24: expected `pc=N`, found `@0x2`",
    );
    check_error(
        "  exit 0 pc=1 @0x2 [s0=v0",
        "4:26: expected `sN=value` or `]`, found end of line",
    );
    check_error(
        "  exit 0 pc=1 @0x2 [x0=v0]",
        "4:21: expected `sN=value` or `]`, found `x0=v0`",
    );
    check_error(
        "  exit 0 pc=1 @0x2 [sx=v0]",
        "4:22: expected an unsigned 32-bit number, found `x`",
    );
    check_error(
        "  exit 0 pc=1 @0x2 [s0=-5]",
        "4:24: expected a value or an unsigned 64-bit constant, found `-5`",
    );
}

/// Rules of `validate`, reported at the line and column of the part that breaks them.
#[test]
fn validation_errors_point_at_the_operand() {
    check_error(
        "  v2:i32 = i32.add v0 v7\n  loop []",
        "4:23: v7 is used but not defined before",
    );
    check_error(
        "  v2:i32 = i32.add v0 v2\n  loop []",
        "4:23: v2 is used but not defined before",
    );
    check_error(
        "  v2:i64 = i64.extend_i32_u v0\n  v3:i32 = i32.add v0 v2\n  loop []",
        "5:23: v2 is i64, expected i32",
    );
    check_error(
        "  v2:i32 = i32.add v0 v1\n  v2:i32 = i32.sub v0 v1\n  loop []",
        "5:3: v2 is defined twice",
    );
    check_error(
        "  v2:i64 = i64.extend_i32_u v0\n  v3:i32 = select v0 v1 v2\n  loop []",
        "5:25: v2 is i64, expected i32",
    );
    check_error(
        "  guard v0 else exit 0 pc=1 @0x2 [s1=v0 s0=v1]\n  loop []",
        "4:41: state slots must increase: s0 after s1",
    );
    check_error(
        "  guard v0 else exit 0 pc=1 @0x2 [s1=v9]\n  loop []",
        "4:35: v9 is used but not defined before",
    );
    check_error(
        "  guard v0 else exit 3 pc=1 @0x2 []\n  exit 3 pc=2 @0x4 []",
        "5:3: exit 3 is taken twice: exit ids must be distinct",
    );
    check_error(
        "  loop [s1=0x100000000]",
        "4:9: the loop writes 0x100000000 to slot 1, which the trace reads as i32",
    );
    check_error(
        "  v2:i64 = i64.extend_i32_u v0\n  global.set 0 v0\n  global.set 0 v2\n  loop []",
        "6:16: global.set 0 writes i64, but global 0 holds i32",
    );
    check_error(
        "trace locals=1\n  in v0:f64 = global 4\n  v1:i32 = i32.const_is_not_an_op\n  loop []",
        "3:12: expected an operator (`i32.add`, `select`, `i32.load`, `memory.grow`, ...), found `i32.const_is_not_an_op`",
    );
    check_error(
        "trace locals=1\n  in v0:f64 = global 4\n  global.set 4 v1\n  loop []",
        "3:16: v1 is used but not defined before",
    );
}

/// What the printer writes for a trace built by hand.
#[track_caller]
fn check_print(trace: &Trace, provenance: Option<&Provenance>, expected: &str) {
    let printed = print_with_provenance(trace, provenance);
    assert_eq!(printed, expected);
    let (reparsed, reprovenance) = parse_with_provenance(&printed).expect("printed form parses");
    assert_eq!(&reparsed, trace);
    assert_eq!(reprovenance.as_ref(), provenance);
}

fn slot_input(value: u32, ty: Type, slot: u32) -> Input {
    Input {
        value: ValueId(value),
        ty,
        source: Source::Slot(slot),
    }
}

#[test]
fn printer_writes_the_canonical_text() {
    let trace = Trace {
        locals: 1,
        inputs: vec![slot_input(0, Type::F64, 0)],
        body: vec![
            Inst::Num {
                dst: ValueId(1),
                op: NumOp::F64Add,
                args: vec![
                    Operand::Value(ValueId(0)),
                    Operand::Const(0x7ff4_0000_0000_0000),
                ],
            },
            Inst::Num {
                dst: ValueId(2),
                op: NumOp::F64Add,
                args: vec![Operand::Value(ValueId(1)), Operand::Const(2.5f64.to_bits())],
            },
            Inst::Guard {
                cond: Operand::Const(0),
                expect: false,
                exit: Exit {
                    id: 7,
                    pc: 100,
                    offset: 255,
                    state: vec![
                        (0, Operand::Const(u64::MAX)),
                        (3, Operand::Value(ValueId(2))),
                    ],
                    calls: Vec::new(),
                },
            },
        ],
        end: End::Exit(Exit {
            id: 8,
            pc: 101,
            offset: 256,
            state: vec![],
            calls: Vec::new(),
        }),
    };
    let provenance = Provenance {
        module_hash: "abc123".into(),
        func_index: 4,
        anchor_offset: 0x4a,
        kind: AnchorKind::FuncEntry,
        hits: 99,
    };
    check_print(
        &trace,
        None,
        "trace locals=1
  in  v0:f64 = slot 0
  v1:f64 = f64.add v0 f64:0x7ff4000000000000
  v2:f64 = f64.add v1 2.5
  guard !0 else exit 7 pc=100 @0xff [s0=0xffffffffffffffff s3=v2]
  exit 8 pc=101 @0x100 []
",
    );
    check_print(
        &trace,
        Some(&provenance),
        "trace func=4 anchor=0x4a kind=entry hits=99 module=abc123 locals=1
  in  v0:f64 = slot 0
  v1:f64 = f64.add v0 f64:0x7ff4000000000000
  v2:f64 = f64.add v1 2.5
  guard !0 else exit 7 pc=100 @0xff [s0=0xffffffffffffffff s3=v2]
  exit 8 pc=101 @0x100 []
",
    );
    // `Display` is the form without provenance.
    assert_eq!(trace.to_string(), print_with_provenance(&trace, None));
}

#[test]
fn provenance_keys_may_come_in_any_order() {
    let text = "trace locals=0 module=ff hits=3 kind=loop anchor=16 func=2\n  loop []\n";
    let (trace, provenance) = parse_with_provenance(text).unwrap();
    let provenance = provenance.expect("a provenance");
    assert_eq!(
        provenance,
        Provenance {
            module_hash: "ff".into(),
            func_index: 2,
            anchor_offset: 16,
            kind: AnchorKind::Loop,
            hits: 3
        }
    );
    // `parse` accepts the header and drops the provenance.
    assert_eq!(parse(text), Ok(trace));
}

/// Slots are raw 64 bits: the recorder may read one slot at two types (a raw copy is read
/// as i64), and the loop may write a value of any type to a slot.
#[test]
fn slots_are_untyped() {
    let text = "trace locals=1
  in  v0:i32 = slot 0
  in  v1:i64 = slot 0
  v2:i64 = i64.extend_i32_u v0
  loop [s0=v2 s1=v1]
";
    let trace = parse(text).unwrap();
    assert_eq!(trace.to_string(), text);
}
