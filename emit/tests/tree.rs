//! Trace trees (`tree.rs`): the tree function does what running its root and side traces
//! one after the other does (`ir::eval`, as the runtime's driver would chain them), on
//! Cranelift and Winch; and trees whose parts do not fit are refused by name.

mod common;

use std::collections::BTreeMap;

use common::{differences, engine, entry_state, run_wasm, Finish, Rng, RunEnd, Start, STRATEGIES};
use emit::{Arms, Branch, EmitError, GlobalInfo, GuestInfo, ModuleBuilder, Tree};
use ir::eval::{eval, Ended, PAGE_SIZE};
use ir::{End, Trace};

/// The interpreter pc of the root's loop header.
const ANCHOR_PC: u32 = 10;

/// A bytecode loop: s0 the instruction pointer, s1 an accumulator, s2 the steps left.
/// It stops when no steps are left (exit 0, where a refill side trace goes on) and
/// dispatches on the opcode byte at s0 through a `br_table` at pc 20 indexed by s3 (exit
/// 1); opcode 0 is its own path.
const ROOT: &str = "trace locals=4
  in  v0:i32 = slot 0
  in  v1:i32 = slot 1
  in  v2:i32 = slot 2
  guard v2 else exit 0 pc=90 @0x90 [s1=v1]
  v3:i32 = i32.load8_u v0
  v4:i32 = i32.eq v3 0
  guard v4 else exit 1 pc=20 @0x20 [s3=v3]
  v5:i32 = i32.add v0 1
  v6:i32 = i32.sub v2 1
  loop [s0=v5 s2=v6]";

/// At exit 0: while global 0 is non-zero, count it down and grant 5 more steps.
const REFILL: &str = "trace locals=4
  in  v0:i32 = slot 1
  in  v1:i32 = global 0
  guard v1 else exit 0 pc=90 @0x90 []
  v2:i32 = i32.sub v1 1
  global.set 0 v2
  v3:i32 = i32.add v0 100
  exit 1 pc=10 @0x10 [s1=v3 s2=5]";

/// Opcode 1: acc += 3.
const ARM1: &str = "trace locals=4
  in  v0:i32 = slot 0
  in  v1:i32 = slot 1
  in  v2:i32 = slot 2
  in  v3:i32 = slot 3
  v4:i32 = i32.eq v3 1
  guard v4 else exit 0 pc=20 @0x20 []
  v5:i32 = i32.add v1 3
  v6:i32 = i32.add v0 1
  v7:i32 = i32.sub v2 1
  exit 1 pc=10 @0x10 [s0=v6 s1=v5 s2=v7]";

/// Opcode 2: stores acc at 1024 + 4·(acc & 15), doubles it, skips a byte; leaves at
/// pc 30 once acc reaches 5000.
const ARM2: &str = "trace locals=4
  in  v0:i32 = slot 0
  in  v1:i32 = slot 1
  in  v2:i32 = slot 2
  in  v3:i32 = slot 3
  v4:i32 = i32.eq v3 2
  guard v4 else exit 0 pc=20 @0x20 []
  v5:i32 = i32.and v1 15
  v6:i32 = i32.shl v5 2
  i32.store offset=1024 v6 v1
  v7:i32 = i32.shl v1 1
  v8:i32 = i32.lt_u v7 5000
  guard v8 else exit 1 pc=30 @0x30 [s1=v7]
  v9:i32 = i32.add v0 2
  v10:i32 = i32.sub v2 1
  exit 2 pc=10 @0x10 [s0=v9 s1=v7 s2=v10]";

/// Any other opcode (the default arm): acc ^= opcode, then on at pc 50, not the anchor.
const DEFAULT_ARM: &str = "trace locals=4
  in  v0:i32 = slot 0
  in  v1:i32 = slot 1
  in  v3:i32 = slot 3
  v4:i32 = i32.ge_u v3 3
  guard v4 else exit 0 pc=20 @0x20 []
  v5:i32 = i32.xor v1 v3
  v6:i32 = i32.add v0 1
  exit 1 pc=50 @0x50 [s0=v6 s1=v5]";

/// One page of memory, growable to two; global 0 a mutable i32 (the refills left).
fn guest() -> GuestInfo {
    GuestInfo {
        memory_min_pages: 1,
        memory_max_pages: Some(2),
        globals: BTreeMap::from([(
            0,
            GlobalInfo {
                ty: ir::Type::I32,
                mutable: true,
            },
        )]),
    }
}

fn parse(text: &str) -> Trace {
    ir::text::parse(text).expect("the trace parses")
}

/// The test tree: refill at exit 0; at exit 1 a table of four arms (0, 1, 2, default)
/// with the given side traces.
fn tree(arms: [Option<&str>; 4]) -> Tree {
    Tree {
        root: parse(ROOT),
        anchor_pc: ANCHOR_PC,
        branches: vec![
            Branch {
                exit: 0,
                arms: Arms::One(parse(REFILL)),
            },
            Branch {
                exit: 1,
                arms: Arms::Table {
                    index_slot: 3,
                    arms: arms.iter().map(|a| a.map(parse)).collect(),
                },
            },
        ],
    }
}

/// Runs the tree's parts one after the other with `ir::eval`, as linked traces would
/// run: a root exit with a branch goes on in its side trace (a table's picked by the
/// index slot, clamped to the default arm); a side trace ending at the anchor goes on in
/// the root. At most `max_passes` traces run.
fn reference(tree: &Tree, start: &Start, max_passes: u32) -> Finish {
    let mut frame = start.frame.clone();
    let mut globals = start.globals.clone();
    let mut memory = start.memory.clone();
    let sides: Vec<&Trace> = tree.sides().collect();
    let bases = tree.side_bases();
    let side_of = |t: &Trace| sides.iter().position(|s| std::ptr::eq(*s, t)).unwrap();
    // None: the root runs next.
    let mut next: Option<&Trace> = None;
    for _ in 0..max_passes {
        let trace = next.unwrap_or(&tree.root);
        let entry = entry_state(&frame, &globals, std::mem::take(&mut memory), start);
        let outcome = eval(trace, entry).expect("eval runs the trace");
        globals = outcome.globals;
        memory = outcome.memory;
        let finish = |end, frame| Finish {
            end,
            frame,
            globals: globals.clone(),
            memory: memory.clone(),
        };
        match outcome.end {
            Ended::Trap(kind) => return finish(RunEnd::Trap(kind), frame),
            Ended::Loop { slots } => {
                for (s, v) in slots {
                    frame[s as usize] = v;
                }
                next = None;
            }
            Ended::Exit { id, pc, slots, .. } => {
                for (s, v) in slots {
                    frame[s as usize] = v;
                }
                match next {
                    None => {
                        let branch = tree.branches.iter().find(|b| b.exit == id);
                        next = match branch.map(|b| &b.arms) {
                            None => None,
                            Some(Arms::One(side)) => Some(side),
                            Some(Arms::Table { index_slot, arms }) => {
                                let index = frame[*index_slot as usize] as u32 as usize;
                                arms[index.min(arms.len() - 1)].as_ref()
                            }
                        };
                        if next.is_none() {
                            return finish(RunEnd::Exit(id), frame);
                        }
                    }
                    Some(side) => {
                        let is_end = matches!(&side.end, End::Exit(e) if e.id == id);
                        if is_end && pc == tree.anchor_pc {
                            next = None;
                        } else {
                            return finish(RunEnd::Exit(bases[side_of(side)] + id), frame);
                        }
                    }
                }
            }
        }
    }
    panic!("the reference ran {max_passes} traces without an exit");
}

/// A start: a program of opcodes 0..=3 in the first 256 bytes, small steps and refills;
/// sometimes an instruction pointer at the end of memory, so the opcode load traps.
fn start(rng: &mut Rng) -> Start {
    let mut memory = vec![0u8; PAGE_SIZE];
    for byte in memory.iter_mut().take(256) {
        *byte = rng.below(4) as u8;
    }
    let ip = if rng.below(8) == 0 {
        PAGE_SIZE as u64 - 1 - rng.below(3)
    } else {
        rng.below(128)
    };
    Start {
        frame: vec![ip, rng.below(1 << 20), rng.below(40), rng.next()],
        globals: BTreeMap::from([(0, rng.below(4))]),
        memory,
        max_pages: Some(2),
    }
}

/// Runs `tree` from many starts on both compilers against the reference.
fn check(tree: &Tree) {
    let guest = guest();
    let mut builder = ModuleBuilder::new(guest.clone()).expect("guest limits");
    let index = builder.add_tree(tree).expect("the tree emits");
    let bytes = builder.finish().expect("the module validates");
    let mut rng = Rng(0x7e_e50f_5eed);
    let starts: Vec<Start> = (0..200).map(|_| start(&mut rng)).collect();
    let mut ends = BTreeMap::new();
    for strategy in STRATEGIES {
        let engine = engine(strategy);
        let module = wasmtime::Module::new(&engine, &bytes).expect("compiles");
        for (i, start) in starts.iter().enumerate() {
            let want = reference(tree, start, 100_000);
            let got = run_wasm(&engine, &module, index, &guest, start, 10_000_000);
            let diff = differences(&want, &got);
            assert!(
                diff.is_empty(),
                "{strategy:?}, start {i} {start:?}: {diff:?}"
            );
            *ends.entry(format!("{:?}", want.end)).or_insert(0) += 1;
        }
    }
    // The starts reach the tree's exits and its traps, not one path only.
    assert!(ends.len() >= 3, "too few ways out: {ends:?}");
}

#[test]
fn a_tree_runs_as_its_traces_chained() {
    check(&tree([None, Some(ARM1), Some(ARM2), Some(DEFAULT_ARM)]));
}

#[test]
fn branches_listed_out_of_body_order_number_their_exits_the_same() {
    let mut reversed = tree([None, Some(ARM1), Some(ARM2), Some(DEFAULT_ARM)]);
    reversed.branches.reverse();
    check(&reversed);
}

#[test]
fn a_table_arm_without_a_side_trace_leaves_through_the_root_exit() {
    check(&tree([None, Some(ARM1), None, Some(DEFAULT_ARM)]));
    check(&tree([None, None, Some(ARM2), None]));
}

#[test]
fn side_exits_are_numbered_after_the_root() {
    let tree = tree([None, Some(ARM1), Some(ARM2), Some(DEFAULT_ARM)]);
    // Root ids 0-1; refill 2-3; arm 1 4-5; arm 2 6-8; default 9-10.
    assert_eq!(tree.side_bases(), vec![2, 4, 6, 9]);
    let exits: Vec<(u32, u32)> = tree.exits().iter().map(|&(id, e)| (id, e.pc)).collect();
    // Ends at the anchor (refill's 3, arm 1's 5, arm 2's 8) loop back: not exits.
    let want = [
        (0, 90),
        (1, 20),
        (2, 90),
        (4, 20),
        (6, 20),
        (7, 30),
        (9, 20),
        (10, 50),
    ];
    assert_eq!(exits, want);
    // Carried: the loop's s0 and s2, exit 1's s3, the ends' s0, s1 and s2.
    assert_eq!(
        tree.carried().into_iter().collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
}

/// Adds `tree` to a builder; the error's text.
fn refusal(tree: &Tree) -> String {
    let mut builder = ModuleBuilder::new(guest()).unwrap();
    match builder.add_tree(tree) {
        Ok(_) => panic!("a bad tree was accepted"),
        Err(e @ EmitError::BadTree { .. }) => e.to_string(),
        Err(e) => panic!("refused for another reason: {e}"),
    }
}

#[test]
fn trees_that_do_not_fit_together_are_refused() {
    let mut bad = tree([None, Some(ARM1), None, None]);
    bad.branches[0].exit = 7;
    assert!(refusal(&bad).contains("exit 7, which the root lacks"));

    let mut bad = tree([None, Some(ARM1), None, None]);
    bad.branches[1].exit = 0;
    assert!(refusal(&bad).contains("exit 0 has two branches"));

    let mut bad = tree([None, Some(ARM1), None, None]);
    bad.branches[1].arms = Arms::Table {
        index_slot: 3,
        arms: vec![],
    };
    assert!(refusal(&bad).contains("0 arms"));

    let mut bad = tree([None, Some(ARM1), None, None]);
    bad.branches[0].arms = Arms::One(parse(ROOT));
    assert!(refusal(&bad).contains("ends in a loop"));
}

/// A function's entry trace: no loop; a guard's exit where the leaf path's side trace
/// goes on, and an end where another goes on (itself guarded).
const ENTRY: &str = "trace locals=4
  in  v0:i32 = slot 0
  in  v1:i32 = slot 2
  v2:i32 = i32.lt_u v0 v1
  guard v2 else exit 0 pc=3 @0x3 [s2=v0]
  v3:i32 = i32.sub v0 1
  exit 1 pc=8 @0x8 [s2=v3 s3=0]";

/// At the entry's guard exit: returns slot 2 plus 7 in slot 0.
const LEAF: &str = "trace locals=4
  in  v0:i32 = slot 2
  v1:i32 = i32.add v0 7
  exit 0 pc=40 @0x40 [s0=v1]";

/// At the entry's end: leaves unless slot 2 is odd, then triples it into slot 1, plus
/// global 0.
const AFTER: &str = "trace locals=4
  in  v0:i32 = slot 2
  in  v1:i32 = slot 3
  in  v4:i32 = global 0
  v2:i32 = i32.and v0 1
  guard v2 else exit 0 pc=9 @0x9 [s1=v1]
  v3:i32 = i32.mul v0 3
  v5:i32 = i32.add v3 v4
  exit 1 pc=12 @0x12 [s1=v5]";

/// A root that ends in an exit grows a tree too: its guard's side trace and its end's
/// run inside it, as chained.
#[test]
fn a_root_that_ends_in_an_exit_runs_as_its_traces_chained() {
    let entry = Tree {
        root: parse(ENTRY),
        anchor_pc: ANCHOR_PC,
        branches: vec![
            Branch {
                exit: 0,
                arms: Arms::One(parse(LEAF)),
            },
            Branch {
                exit: 1,
                arms: Arms::One(parse(AFTER)),
            },
        ],
    };
    // Carried: what the two inlined exits hand over, nothing for a loop.
    assert_eq!(entry.carried().into_iter().collect::<Vec<_>>(), vec![2, 3]);
    check(&entry);
}
