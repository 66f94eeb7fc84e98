//! Regions (`region.rs`): a region's function does what running its members one after the
//! other does (`ir::eval`, following the links as the runtime's driver would), from every
//! entry, on Cranelift and Winch; a call hands over at most `MAX_HANDOVERS_PER_CALL`
//! times and then leaves through the linked exit; regions whose parts do not fit are
//! refused by name.

mod common;

use std::collections::BTreeMap;

use common::{differences, engine, entry_state, run_wasm, Finish, Rng, RunEnd, Start, STRATEGIES};
use emit::region::MAX_HANDOVERS_PER_CALL;
use emit::{EmitError, GuestInfo, ModuleBuilder, Region};
use ir::eval::{eval, Ended, PAGE_SIZE};
use ir::Trace;

/// A Hoare partition of the i32 array at address 0 around the pivot in s2: s0 is i, s1
/// is j, s3 counts rounds. Three loops hand over to each other: the outer header's trace
/// (pc 10) ends at the first inner loop (pc 20), whose exit (pc 25) has a side trace
/// ending at the second inner loop (pc 30), whose exit (pc 35) has a side trace that swaps
/// and ends back at the outer header, or leaves once i meets j.
const OUTER: &str = "trace locals=4
  in  v0:i32 = slot 3
  v1:i32 = i32.lt_u v0 40
  guard v1 else exit 0 pc=98 @0x98 []
  v2:i32 = i32.add v0 1
  exit 1 pc=20 @0x20 [s3=v2]";

/// `while (a[i] < pivot) i++`
const SCAN_UP: &str = "trace locals=4
  in  v0:i32 = slot 0
  in  v1:i32 = slot 2
  v2:i32 = i32.shl v0 2
  v3:i32 = i32.load v2
  v4:i32 = i32.lt_s v3 v1
  guard v4 else exit 0 pc=25 @0x25 []
  v5:i32 = i32.add v0 1
  loop [s0=v5]";

/// After the first loop: on to the second unless i ran past the array.
const AFTER_UP: &str = "trace locals=4
  in  v0:i32 = slot 0
  v1:i32 = i32.lt_u v0 64
  guard v1 else exit 0 pc=97 @0x97 []
  exit 1 pc=30 @0x30 []";

/// `while (a[j] > pivot) j--`
const SCAN_DOWN: &str = "trace locals=4
  in  v0:i32 = slot 1
  in  v1:i32 = slot 2
  v2:i32 = i32.shl v0 2
  v3:i32 = i32.load v2
  v4:i32 = i32.gt_s v3 v1
  guard v4 else exit 0 pc=35 @0x35 []
  v5:i32 = i32.sub v0 1
  loop [s1=v5]";

/// After the second loop: done once i meets j, else swap a[i] and a[j], step both, and
/// back to the outer header.
const SWAP: &str = "trace locals=4
  in  v0:i32 = slot 0
  in  v1:i32 = slot 1
  v2:i32 = i32.lt_u v0 v1
  guard v2 else exit 0 pc=99 @0x99 []
  v3:i32 = i32.shl v0 2
  v4:i32 = i32.shl v1 2
  v5:i32 = i32.load v3
  v6:i32 = i32.load v4
  i32.store v3 v6
  i32.store v4 v5
  v7:i32 = i32.add v0 1
  v8:i32 = i32.sub v1 1
  exit 1 pc=10 @0x10 [s0=v7 s1=v8]";

fn parse(text: &str) -> Trace {
    ir::text::parse(text).expect("the trace parses")
}

fn guest() -> GuestInfo {
    GuestInfo {
        memory_min_pages: 1,
        memory_max_pages: Some(1),
        ..GuestInfo::default()
    }
}

/// The partition: members OUTER, SCAN_UP, AFTER_UP, SCAN_DOWN, SWAP, each exit that
/// goes on linked; entered at the three loop headers.
fn partition() -> Region {
    Region {
        members: [OUTER, SCAN_UP, AFTER_UP, SCAN_DOWN, SWAP]
            .into_iter()
            .map(parse)
            .collect(),
        links: BTreeMap::from([
            ((0, 1), 1),
            ((1, 0), 2),
            ((2, 1), 3),
            ((3, 0), 4),
            ((4, 1), 0),
        ]),
        entries: vec![0, 1, 3],
    }
}

/// Runs the region's members one after the other with `ir::eval` from member `entry`,
/// as linked traces would run, handing over at most `budget` times: then a linked exit
/// leaves as an unlinked one does. At most `max_passes` traces or loop iterations run.
fn reference(region: &Region, entry: u32, start: &Start, budget: u64, max_passes: u64) -> Finish {
    let mut frame = start.frame.clone();
    let mut globals = start.globals.clone();
    let mut memory = start.memory.clone();
    let bases = region.member_bases();
    let mut member = entry;
    let mut handovers = 0;
    for _ in 0..max_passes {
        let entry = entry_state(&frame, &globals, std::mem::take(&mut memory), start);
        let outcome = eval(&region.members[member as usize], entry).expect("eval runs");
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
            }
            Ended::Exit { id, slots, .. } => {
                for (s, v) in slots {
                    frame[s as usize] = v;
                }
                match region.links.get(&(member, id)) {
                    Some(&next) if handovers < budget => {
                        handovers += 1;
                        member = next;
                    }
                    _ => return finish(RunEnd::Exit(bases[member as usize] + id), frame),
                }
            }
        }
    }
    Finish {
        end: RunEnd::Unbounded,
        frame,
        globals,
        memory,
    }
}

/// A start for the partition: 64 random small i32s at address 0, zeros after them; i
/// and j inside the array or past its ends (so a scan runs off it, up to the end of the
/// memory and a trap, or i is past the array with a pivot of 0 that stops the scan at
/// once), a pivot, a round count.
fn start(rng: &mut Rng) -> Start {
    let mut memory = vec![0u8; PAGE_SIZE];
    for k in 0..64 {
        let v = rng.below(100) as u32;
        memory[4 * k..4 * k + 4].copy_from_slice(&v.to_le_bytes());
    }
    let (i, pivot) = match rng.below(6) {
        0 => (16380 + rng.below(8), rng.below(100)),
        1 => (64 + rng.below(8), 0),
        _ => (rng.below(8), rng.below(100)),
    };
    let j = match rng.below(6) {
        0 => rng.below(2).wrapping_sub(1) & 0xffff_ffff,
        _ => 56 + rng.below(8),
    };
    Start {
        frame: vec![i, j, pivot, rng.below(44)],
        globals: BTreeMap::new(),
        memory,
        max_pages: Some(1),
    }
}

/// Runs `region` from every entry and many starts, on both compilers, against the
/// reference; returns how the runs ended, counted.
fn check(region: &Region, starts: &[Start], budget: u64) -> BTreeMap<String, u32> {
    let guest = guest();
    let mut builder = ModuleBuilder::new(guest.clone()).expect("guest limits");
    let indices = builder.add_region(region).expect("the region emits");
    let bytes = builder.finish().expect("the module validates");
    let mut ends = BTreeMap::new();
    for strategy in STRATEGIES {
        let engine = engine(strategy);
        let module = wasmtime::Module::new(&engine, &bytes).expect("compiles");
        for (&index, &entry) in indices.iter().zip(&region.entries) {
            for (i, start) in starts.iter().enumerate() {
                let want = reference(region, entry, start, budget, 1_000_000);
                let got = run_wasm(&engine, &module, index, &guest, start, 100_000_000);
                let diff = differences(&want, &got);
                assert!(
                    diff.is_empty(),
                    "{strategy:?}, entry member {entry}, start {i} {start:?}: {diff:?}"
                );
                *ends.entry(format!("{:?}", want.end)).or_insert(0) += 1;
            }
        }
    }
    ends
}

#[test]
fn a_region_runs_as_its_members_handing_over() {
    let mut rng = Rng(0x9e61_0f5e_ed01);
    let starts: Vec<Start> = (0..150).map(|_| start(&mut rng)).collect();
    let ends = check(&partition(), &starts, MAX_HANDOVERS_PER_CALL);
    // The starts reach every way out: i meeting j, the rounds running out, i running
    // past the array, and a scan trapping past the memory.
    let bases = partition().member_bases();
    for end in [
        RunEnd::Exit(bases[4]),
        RunEnd::Exit(bases[0]),
        RunEnd::Exit(bases[2]),
    ] {
        assert!(
            ends.contains_key(&format!("{end:?}")),
            "{end:?} never reached: {ends:?}"
        );
    }
    assert!(
        ends.keys().any(|e| e.starts_with("Trap")),
        "no start traps: {ends:?}"
    );
}

/// Two members that count s0 up, handing over to each other until s0 reaches s1.
fn ping_pong() -> Region {
    let up = "trace locals=2
      in  v0:i32 = slot 0
      v1:i32 = i32.add v0 1
      exit 0 pc=10 @0x10 [s0=v1]";
    let test = "trace locals=2
      in  v0:i32 = slot 0
      in  v1:i32 = slot 1
      v2:i32 = i32.lt_u v0 v1
      guard v2 else exit 0 pc=99 @0x99 []
      exit 1 pc=5 @0x5 []";
    Region {
        members: vec![parse(up), parse(test)],
        links: BTreeMap::from([((0, 0), 1), ((1, 1), 0)]),
        entries: vec![0],
    }
}

#[test]
fn a_call_leaves_through_a_linked_exit_once_its_hand_overs_run_out() {
    let region = ping_pong();
    let start = |limit: u64| Start {
        frame: vec![0, limit],
        globals: BTreeMap::new(),
        memory: vec![0u8; PAGE_SIZE],
        max_pages: Some(1),
    };
    // Within the budget the count reaches the limit; past it, the call stops halfway
    // through the count, at a linked exit.
    let starts = [start(1000), start(3 * MAX_HANDOVERS_PER_CALL)];
    let ends = check(&region, &starts, MAX_HANDOVERS_PER_CALL);
    let within = format!("{:?}", RunEnd::Exit(region.member_bases()[1]));
    let cut = format!("{:?}", RunEnd::Exit(region.member_bases()[0]));
    assert_eq!(ends.get(&within), Some(&2), "{ends:?}");
    assert_eq!(ends.get(&cut), Some(&2), "{ends:?}");
}

fn refusal(region: &Region) -> String {
    let mut builder = ModuleBuilder::new(guest()).expect("guest limits");
    match builder.add_region(region) {
        Err(e @ EmitError::BadRegion { .. }) => e.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn regions_that_do_not_fit_together_are_refused() {
    let check = |edit: fn(&mut Region), expected: &str| {
        let mut region = partition();
        edit(&mut region);
        assert_eq!(refusal(&region), expected);
    };
    check(
        |r| r.members.clear(),
        "region at trace 0: it has 0 members (1 to 4096)",
    );
    check(|r| r.entries.clear(), "region at trace 0: it has no entry");
    check(
        |r| r.entries.push(5),
        "region at trace 0: entry 5 is not a member",
    );
    check(
        |r| {
            r.links.insert((7, 0), 0);
        },
        "region at trace 0: a link leaves member 7, which does not exist",
    );
    check(
        |r| {
            r.links.insert((1, 3), 0);
        },
        "region at trace 0: a link leaves exit 3 of member 1, which lacks it",
    );
    check(
        |r| {
            r.links.insert((4, 0), 9);
        },
        "region at trace 0: exit 0 of member 4 links to member 9, which does not exist",
    );
}
