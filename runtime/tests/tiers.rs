//! Same results on every tier: each example program runs under the interpreter alone and
//! with its traces compiled by wasmtime (Cranelift and Winch; the recorded traces
//! emitted 1:1, and the optimizer's proven candidates), and must print the same, exit
//! the same and leave the same memory.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use emit::cache::{CacheWriter, ProofVerdict, TraceRecord};
use emit::EmitKind;
use runtime::{guest_info, Backend, TierStats, TraceCode, WasmtimeTier};
use trace_capture::wasi::{self, SharedBuffer, WasiCtx};
use trace_capture::{Linker, Module, RecordConfig, RecordedTrace, SideTraceRecord, Store};

/// Low enough that the examples' hot loops get recorded at scale 1.
const TEST_THRESHOLD: u64 = 50;

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut wasm: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    wasm.sort();
    assert!(!wasm.is_empty(), "no example programs in {}", dir.display());
    wasm
}

#[derive(Debug, PartialEq, Eq)]
struct Observed {
    stdout: String,
    exit: i32,
    /// FNV-1a of memory 0 at the end.
    memory: u64,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How trace code gets to a run.
enum Code<'a> {
    None,
    /// These traces, emitted as `EmitKind`, loaded before the run.
    Loaded(Backend, &'a [(ir::Trace, u32, u32)], EmitKind),
    /// Live JIT: recorded and compiled during the run.
    Live(Backend),
}

/// Runs `path` at scale 1, with `code`.
fn run(path: &PathBuf, record: bool, code: Code) -> (Observed, Vec<RecordedTrace>, TierStats) {
    let bytes = std::fs::read(path).expect("example readable");
    let module = Module::new(&bytes).expect("example loads");
    let mut store = Store::new();
    if record || matches!(code, Code::Live(_)) {
        store.enable_recording(RecordConfig {
            hot_threshold: TEST_THRESHOLD,
            ..RecordConfig::default()
        });
    }
    let stdout = SharedBuffer::default();
    let mut linker = Linker::new();
    let ctx = WasiCtx::new(vec![path.display().to_string(), "1".to_string()])
        .stdout(Box::new(stdout.clone()));
    wasi::define(&mut linker, &mut store, ctx);
    let instance = linker
        .instantiate(&mut store, &module)
        .expect("instantiates");
    let mut stats = None;
    if let Code::Live(backend) = code {
        let mut tier = WasmtimeTier::new(backend, &store, instance, &module).expect("tier");
        tier.enable_live_jit();
        stats = Some(tier.stats_handle());
        store.set_tier(Box::new(tier));
    }
    if let Code::Loaded(backend, traces, kind) = code {
        let mut tier = WasmtimeTier::new(backend, &store, instance, &module).expect("tier");
        let list: Vec<_> = traces.iter().map(|(t, f, a)| (t, *f, *a, kind)).collect();
        let code = TraceCode::build(&guest_info(&module), &list).expect("emits");
        let keys = tier.load(&code).expect("loads");
        for (func_index, offset) in keys {
            let anchor = module
                .anchors()
                .iter()
                .position(|a| a.func_index == func_index && a.offset == offset)
                .expect("anchor");
            assert!(store.attach_trace(instance, anchor as u32));
        }
        stats = Some(tier.stats_handle());
        store.set_tier(Box::new(tier));
    }
    let exit = wasi::start_command(&mut store, instance).expect("example runs");
    let memory = store.instance_memory(instance).map_or(0, |m| fnv1a(m));
    let observed = Observed {
        stdout: String::from_utf8_lossy(&stdout.contents()).into_owned(),
        exit,
        memory,
    };
    let stats = stats.map_or(TierStats::default(), |s| s.get());
    (observed, store.take_recorded(), stats)
}

#[test]
fn every_example_gives_the_same_results_on_every_tier() {
    let mut totals: HashMap<String, u64> = HashMap::new();
    for path in examples() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let (_, recorded, _) = run(&path, true, Code::None);
        let naive: Vec<(ir::Trace, u32, u32)> = recorded
            .iter()
            .map(|r| (r.trace.clone(), r.func_index, r.anchor_offset))
            .collect();
        let optimized: Vec<(ir::Trace, u32, u32)> = recorded
            .iter()
            .map(|r| {
                let out = saturate::optimize(&r.trace, &saturate::Limits::default());
                let proven = out.candidate == r.trace
                    || verify::check_equivalent(
                        &r.trace,
                        &out.candidate,
                        &verify::Limits::default(),
                    ) == verify::Verdict::Proven;
                let trace = if proven {
                    out.candidate
                } else {
                    r.trace.clone()
                };
                (trace, r.func_index, r.anchor_offset)
            })
            .collect();
        let (plain, _, _) = run(&path, false, Code::None);
        for backend in [Backend::Cranelift, Backend::Winch] {
            for (kind, traces) in [(EmitKind::Naive, &naive), (EmitKind::Optimized, &optimized)] {
                let (tiered, _, stats) = run(&path, false, Code::Loaded(backend, traces, kind));
                let what = format!("{name} on {} ({})", backend.name(), kind.name());
                assert_eq!(plain, tiered, "{what}: {stats:?}");
                assert!(stats.entries > 0, "{what}: trace code never ran");
                println!("{what}: {} trace calls", stats.entries);
                *totals
                    .entry(what.split(" on ").nth(1).unwrap().to_string())
                    .or_default() += stats.entries;
            }
        }
    }
    println!("tiers: trace calls per tier {totals:?}");
}

#[test]
fn live_jit_gives_the_interpreters_results() {
    for path in examples() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let (plain, _, _) = run(&path, false, Code::None);
        for backend in [Backend::Cranelift, Backend::Winch] {
            let (live, recorded, stats) = run(&path, false, Code::Live(backend));
            let what = format!("{name} live on {}", backend.name());
            assert_eq!(plain, live, "{what}: {stats:?}");
            assert_eq!(stats.live_failures, 0, "{what}");
            // A trace is compiled when its anchor is next entered: one recorded near the
            // end of the run may never be.
            assert!(
                stats.live_traces <= recorded.len() as u64,
                "{what}: {stats:?}"
            );
            assert!(stats.live_traces > 0, "{what}: {stats:?}");
            assert!(stats.entries > 0, "{what}: trace code never ran");
            // Batching: never more modules than traces.
            assert!(stats.live_modules <= stats.live_traces, "{what}");
            println!(
                "{what}: {} traces in {} modules, {} trace calls",
                stats.live_traces, stats.live_modules, stats.entries
            );
        }
    }
}

/// A loop of arithmetic, `$straight(n)`: one path, so its trace runs it to the end.
const STRAIGHT: &str = r#"
      (func $straight (param $n i32) (result i32) (local $i i32) (local $acc i32)
        (loop $l
          (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $i) (local.get $i))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
        (local.get $acc))"#;

/// A little bytecode interpreter, `$interpret(n)`: a `br_table` in a loop runs ops
/// 0 to n-1, op i being i mod 5 of a program of four kinds (0 add, 1 xor, 2 shift;
/// 3 and 4 the default, multiply).
const INTERPRET: &str = r#"
      (func $interpret (param $n i32) (result i32) (local $i i32) (local $acc i32)
        (loop $l
          (block $mul (block $shl (block $xor (block $add
            (br_table $add $xor $shl $mul (i32.rem_u (local.get $i) (i32.const 5))))
            (local.set $acc (i32.add (local.get $acc) (local.get $i))) (br $shl))
            (local.set $acc (i32.xor (local.get $acc) (i32.const 0x5a5a))) (br $shl))
            (local.set $acc (i32.rotl (local.get $acc) (i32.const 3))))
          (local.set $acc (i32.mul (local.get $acc) (i32.const 3)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
        (local.get $acc))"#;

/// Runs export `run` of `wat` with live JIT on `backend` (recording at `TEST_THRESHOLD`);
/// returns its result, which must be the interpreter's, and the tier's counters.
fn run_live(wat: &str, backend: Backend) -> TierStats {
    run_live_compiling(wat, backend, false)
}

/// `run_live`, with side traces and trees compiled on the tier's compile thread if
/// `background` (as `kiln run` does), else as soon as recorded (so that a short run's
/// links can be counted).
fn run_live_compiling(wat: &str, backend: Backend, background: bool) -> TierStats {
    common::run_live_with(
        wat,
        TEST_THRESHOLD,
        backend.name(),
        |store, instance, module| {
            let mut tier = WasmtimeTier::new(backend, store, instance, module).unwrap();
            tier.compile_in_background(background);
            tier
        },
    )
}

/// A trace that mostly exits in its first iteration, where no side trace can take over,
/// costs an entry for nothing: after its probation it is left to the interpreter, and
/// the program's result does not change. One that runs its loop stays.
#[test]
fn traces_that_exit_at_once_go_back_to_the_interpreter() {
    // $alternate takes the other branch each iteration, and that branch calls $pick
    // indirectly (never inlined): its trace's guard fails on every second pass, and a
    // side trace from there ends at the call. $straight runs one path to the end.
    let wat = format!(
        r#"(module
      (memory (export "memory") 1)
      (type $pick_type (func (param i32) (result i32)))
      (table 1 funcref)
      (elem (i32.const 0) $pick)
      (func $pick (param $n i32) (result i32)
        (if (result i32) (i32.gt_s (local.get $n) (i32.const 1))
          (then (local.get $n))
          (else (i32.const 7))))
      (func $alternate (param $n i32) (result i32) (local $i i32) (local $acc i32)
        (loop $l
          (if (i32.and (local.get $i) (i32.const 1))
            (then (local.set $acc (i32.add (local.get $acc)
              (call_indirect (type $pick_type) (local.get $i) (i32.const 0)))))
            (else (local.set $acc (i32.xor (local.get $acc) (local.get $i)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
        (local.get $acc))
{STRAIGHT}
      (func (export "run") (result i32)
        (local $r i32) (local $k i32)
        (loop $outer
          (local.set $r (i32.add (local.get $r) (call $alternate (i32.const 3000))))
          (local.set $r (i32.add (local.get $r) (call $straight (i32.const 3000))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $outer (i32.lt_u (local.get $k) (i32.const 20))))
        (local.get $r)))"#
    );
    for backend in [Backend::Cranelift, Backend::Winch] {
        let stats = run_live(&wat, backend);
        // Probation detaches it, unless its timed trial has already given it back.
        assert_eq!(
            stats.detached + stats.lost_trials,
            1,
            "{}: {stats:?}",
            backend.name()
        );
        assert!(stats.live_traces >= 2, "{}: {stats:?}", backend.name());
    }
}

/// A loop calling a helper that branches: the trace inlines the helper (and the helper
/// it calls), and where a guard inside them fails the interpreter goes on inside the
/// calls, their frames rebuilt from the trace's exit: their parameters, locals and
/// constants, and the callers' return pcs. Those exits get hot, so side traces are
/// recorded from inside the calls, linked there and inlined into the root's tree. Every
/// few iterations take one of the other paths, and the result (which every path feeds,
/// through a global and memory too) must be the interpreter's.
#[test]
fn exits_inside_inlined_calls_rebuild_the_callees_frames() {
    let wat = r#"(module
      (memory 1)
      (global $g (mut i32) (i32.const 5))
      (func $inner (param $v i32) (result i32)
        (if (result i32) (i32.lt_u (local.get $v) (i32.const 0xe0000000))
          (then (i32.rotl (local.get $v) (i32.const 5)))
          (else
            (i32.store (i32.const 64) (i32.add (i32.load (i32.const 64)) (local.get $v)))
            (i32.shr_u (local.get $v) (i32.const 3)))))
      (func $step (param $x i32) (param $k i32) (result i32) (local $t i32)
        (local.set $t (i32.mul (local.get $x) (i32.const 0x9e3779b1)))
        (if (i32.eqz (i32.rem_u (local.get $x) (i32.const 7)))
          (then
            (global.set $g (i32.add (global.get $g) (local.get $t)))
            (local.set $t (i32.xor (local.get $t) (i32.const 0x5bd1e995)))))
        (i32.add (call $inner (local.get $t)) (i32.add (local.get $k) (global.get $g))))
      (func (export "run") (result i32) (local $i i32) (local $acc i32)
        (loop $l
          ;; A bijection of $acc each iteration: a lost or doubled update shows.
          (local.set $acc (i32.xor (i32.rotl (local.get $acc) (i32.const 5))
            (call $step (local.get $i) (i32.mul (local.get $i) (i32.const 3)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 30000))))
        (i32.add (local.get $acc) (i32.add (global.get $g) (i32.load (i32.const 64))))))"#;
    for backend in [Backend::Cranelift, Backend::Winch] {
        let stats = run_live(wat, backend);
        // Exits inside the calls, until side traces recorded from inside them are linked
        // there and the tree takes them in.
        let ok = stats.call_exits > 0 && stats.side_traces > 0 && stats.tree_sides > 0;
        assert!(ok, "{}: {stats:?}", backend.name());
    }
}

/// `run` calls `$alternate(3000)` `rounds` times: a loop whose branch goes the other way
/// each iteration.
fn alternating(rounds: u32) -> String {
    format!(
        r#"(module
      (memory 1)
      (func $alternate (param $n i32) (result i32) (local $i i32) (local $acc i32)
        (loop $l
          (if (i32.and (local.get $i) (i32.const 1))
            (then (local.set $acc (i32.add (local.get $acc) (local.get $i))))
            (else (local.set $acc (i32.xor (local.get $acc) (local.get $i)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
        (local.get $acc))
      (func (export "run") (result i32)
        (local $r i32) (local $k i32)
        (loop $outer
          (local.set $r (i32.add (local.get $r) (call $alternate (i32.const 3000))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $outer (i32.lt_u (local.get $k) (i32.const {rounds}))))
        (local.get $r)))"#
    )
}

/// Where a trace keeps exiting, a side trace is recorded from the exit and linked there:
/// the loop whose path alternates then runs in trace code from entry to end, and the
/// result is the interpreter's.
#[test]
fn a_hot_exit_gets_a_side_trace_linked_there() {
    for backend in [Backend::Cranelift, Backend::Winch] {
        let stats = run_live(&alternating(20), backend);
        let name = backend.name();
        assert!(stats.side_traces >= 1, "{name}: {stats:?}");
        assert_eq!(stats.detached, 0, "{name}: {stats:?}");
        // Unlinked, every second iteration would end an entry: 30000 of them. Linked,
        // an entry runs to the end of a call (20 calls), after the misses that made the
        // exit hot.
        assert!(stats.entries < 1000, "{name}: {stats:?}");
    }
}

/// The same with side traces compiled on the compile thread: the exit goes on to the
/// interpreter until the code is there, and the tier links it at a later entry. The loop
/// runs long enough (6 million iterations) for the thread to have finished long before.
#[test]
fn side_traces_compiled_in_background_are_linked_at_a_later_entry() {
    for backend in [Backend::Cranelift, Backend::Winch] {
        let stats = run_live_compiling(&alternating(2000), backend, true);
        assert!(stats.side_traces >= 1, "{}: {stats:?}", backend.name());
        // Unlinked, every second iteration ends an entry: 3 million. Linked, most of the
        // run is trace code (the bound leaves a compile of tens of milliseconds).
        assert!(stats.entries < 1_000_000, "{}: {stats:?}", backend.name());
    }
}

/// A `br_table` dispatch loop (a bytecode interpreter's shape) gets a side trace per hot
/// arm, picked by the table's index, then a tree with them inlined, and runs in trace code
/// with the interpreter's result.
#[test]
fn a_dispatch_loop_gets_a_side_trace_per_arm() {
    // One call: a million ops, long enough for every arm's side trace and a tree with
    // all of them.
    let wat = format!(
        r#"(module (memory 1)
{INTERPRET}
      (func (export "run") (result i32) (call $interpret (i32.const 1000000))))"#
    );
    for backend in [Backend::Cranelift, Backend::Winch] {
        // Rebuilds at once: waiting three times a compile's time (`TREE_REBUILD_RATIO`)
        // outlasted the run when the tests' parallel compiles slowed Cranelift down.
        let stats = common::run_live_with(
            &wat,
            TEST_THRESHOLD,
            backend.name(),
            |store, instance, module| {
                let mut tier = WasmtimeTier::new(backend, store, instance, module).unwrap();
                tier.compile_in_background(false);
                tier.rebuild_trees_at_once();
                tier
            },
        );
        let name = backend.name();
        // Five indices, four arms (3 and 4 share the default): the root trace takes
        // one, side traces the other three.
        assert!(stats.side_traces >= 3, "{name}: {stats:?}");
        assert_eq!(stats.detached, 0, "{name}: {stats:?}");
        assert!(stats.entries < 1000, "{name}: {stats:?}");
        // The root grows a tree with the arms' side traces inlined (`emit::tree`).
        assert!(stats.trees >= 1, "{name}: {stats:?}");
        assert!(stats.tree_sides >= 3, "{name}: {stats:?}");
        assert_eq!(stats.tree_failures, 0, "{name}: {stats:?}");
    }
}

/// A loop that trace code runs many times faster than the interpreter (long drives, each
/// an arithmetic loop run to its end inside one trace, on either compiler) keeps its trace
/// code: it needs no timed trial, or wins it.
#[test]
fn a_loop_trace_code_runs_much_faster_keeps_it() {
    let wat = format!(
        r#"(module
      (memory 1)
{STRAIGHT}
      (func (export "run") (result i32)
        (local $r i32) (local $k i32)
        (loop $outer
          (local.set $r (i32.add (local.get $r) (call $straight (i32.const 3000))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $outer (i32.lt_u (local.get $k) (i32.const 200))))
        (local.get $r)))"#
    );
    for backend in [Backend::Cranelift, Backend::Winch] {
        let stats = run_live(&wat, backend);
        let name = backend.name();
        assert_eq!(stats.lost_trials, 0, "{name}: {stats:?}");
        assert_eq!(stats.detached, 0, "{name}: {stats:?}");
        // Every call of $straight but the first few (recording) runs as one entry.
        assert!(stats.entries >= 150, "{name}: {stats:?}");
    }
}

/// A dispatch loop entered for a few dozen ops at a time needs the timed trial (each
/// drive is short: its entry cost is repaid a few times at most), and the trial runs to
/// its end: it is decided (which way depends on the machine), and the result is the
/// interpreter's either way.
#[test]
fn a_dispatch_loop_runs_a_timed_trial() {
    // 15000 calls of 40 ops each.
    let wat = format!(
        r#"(module (memory 1)
{INTERPRET}
      (func (export "run") (result i32)
        (local $r i32) (local $k i32)
        (loop $outer
          (local.set $r (i32.add (local.get $r) (call $interpret (i32.const 40))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $outer (i32.lt_u (local.get $k) (i32.const 15000))))
        (local.get $r)))"#
    );
    for backend in [Backend::Cranelift, Backend::Winch] {
        let stats = run_live(&wat, backend);
        let name = backend.name();
        assert!(stats.trials >= 1, "{name}: {stats:?}");
    }
}

/// A guest trap inside trace code is the interpreter's trap: same kind, and the same
/// memory at that moment (every store before the trapping one done, none after).
#[test]
fn a_trap_in_trace_code_leaves_the_interpreters_memory() {
    // Writes i at 4*i until past the end of its one page; the loop is hot (and compiled)
    // long before the store that traps.
    let wat = r#"(module
      (memory (export "memory") 1)
      (func (export "run") (local $i i32)
        (loop $l
          (i32.store (i32.mul (local.get $i) (i32.const 4)) (i32.xor (local.get $i) (i32.const 0x5a5a)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 100000))))))"#;
    let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
    let run = |backend: Option<Backend>| {
        let mut store = Store::new();
        let instance = Linker::new().instantiate(&mut store, &module).unwrap();
        let mut stats = None;
        if let Some(backend) = backend {
            store.enable_recording(RecordConfig {
                hot_threshold: TEST_THRESHOLD,
                ..RecordConfig::default()
            });
            let mut tier = WasmtimeTier::new(backend, &store, instance, &module).unwrap();
            tier.enable_live_jit();
            stats = Some(tier.stats_handle());
            store.set_tier(Box::new(tier));
        }
        let trap = store.call_export(instance, "run", &[]).unwrap_err();
        let memory = fnv1a(store.instance_memory(instance).unwrap());
        (trap.kind, memory, stats.map(|s| s.get().traps))
    };
    let (kind, memory, _) = run(None);
    assert_eq!(kind, trace_capture::TrapKind::MemoryOutOfBounds);
    for backend in [Backend::Cranelift, Backend::Winch] {
        let (tier_kind, tier_memory, traps) = run(Some(backend));
        assert_eq!(tier_kind, kind, "{}", backend.name());
        assert_eq!(
            tier_memory,
            memory,
            "{}: memory at the trap",
            backend.name()
        );
        assert_eq!(
            traps,
            Some(1),
            "{}: the trap happened in trace code",
            backend.name()
        );
    }
}

/// Near the end of the interpreter's stacks a trace that inlines a call must not run:
/// the interpreter would have trapped making the call (too deep, or the callee's frame
/// beyond the value stack), and resuming inside it would need a frame that is not there.
/// The tier declines such entries, so every depth gives what the interpreter alone gives,
/// traps included, with either limit the one that runs out, whether the trace leaves
/// inside the call (a helper that branches) or runs it straight through.
#[test]
fn traces_inlining_calls_decline_near_the_end_of_the_stack() {
    let branching = "(if (result i32) (i32.and (local.get $x) (i32.const 1))
          (then (i32.add (local.get $x) (i32.const 3)))
          (else (i32.mul (local.get $x) (i32.const 5))))";
    let straight = "(i32.add (i32.mul (local.get $x) (i32.const 5)) (i32.const 3))";
    for helper in [branching, straight] {
        check_stack_limits(helper);
    }
}

/// A store with `module` instantiated under `limits`; with `tier` (whether it links
/// calls), recording at `TEST_THRESHOLD` with the live JIT on `backend` compiling on the
/// program's thread. The tier's counters, if any.
fn tiered_store(
    module: &Module,
    limits: trace_capture::StackLimits,
    backend: Backend,
    tier: Option<bool>,
) -> (
    Store,
    trace_capture::InstanceId,
    Option<runtime::TierStatsHandle>,
) {
    let mut store = Store::with_limits(limits);
    let instance = Linker::new().instantiate(&mut store, module).unwrap();
    let stats = tier.map(|link_calls| {
        store.enable_recording(RecordConfig {
            hot_threshold: TEST_THRESHOLD,
            ..RecordConfig::default()
        });
        let mut tier = WasmtimeTier::new(backend, &store, instance, module).unwrap();
        tier.enable_live_jit();
        tier.compile_in_background(false);
        tier.link_calls(link_calls);
        let stats = tier.stats_handle();
        store.set_tier(Box::new(tier));
        stats
    });
    (store, instance, stats)
}

/// `run(d)` of `module` for each of `depths` in turn, in one store (`tiered_store`): each
/// result or trap kind, and the tier's counters at the end.
fn run_depths(
    module: &Module,
    limits: trace_capture::StackLimits,
    tier: Option<bool>,
    depths: &[i32],
) -> (Vec<String>, Option<TierStats>) {
    let (mut store, instance, stats) = tiered_store(module, limits, Backend::Cranelift, tier);
    let results = depths
        .iter()
        .map(|&d| {
            let got = store.call_export(instance, "run", &[trace_capture::Value::I32(d)]);
            format!("run({d}) = {:?}", got.map_err(|t| t.kind))
        })
        .collect();
    (results, stats.map(|s| s.get()))
}

/// Runs a loop calling a helper whose body is `helper_body` (parameter `$x`), from ever
/// deeper recursion under a range of stack limits, with and without the tier: the same
/// results and traps, and the tier declined some entries.
fn check_stack_limits(helper_body: &str) {
    let wat = r#"(module
      (memory 1)
      (func $helper (param $x i32) (result i32)
        HELPER)
      (func $work (result i32) (local $i i32) (local $acc i32)
        (loop $l
          (local.set $acc (i32.add (local.get $acc) (call $helper (local.get $i))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 3000))))
        (local.get $acc))
      (func $deep (param $d i32) (result i32)
        (if (result i32) (local.get $d)
          (then (i32.add (call $deep (i32.sub (local.get $d) (i32.const 1))) (i32.const 1)))
          (else (call $work))))
      (func (export "run") (param $d i32) (result i32) (call $deep (local.get $d))))"#
        .replace("HELPER", helper_body);
    let module = Module::new(&wat::parse_str(&wat).unwrap()).unwrap();
    // Each limit in a range, so that some value puts the helper's frame just past it
    // while the loop's own frame fits.
    let limits = (36..46)
        .map(|depth| trace_capture::StackLimits {
            max_call_depth: depth,
            max_value_slots: 1 << 20,
        })
        .chain(
            (200..400)
                .step_by(3)
                .map(|slots| trace_capture::StackLimits {
                    max_call_depth: 50_000,
                    max_value_slots: slots,
                }),
        );
    let (mut declined, mut traps) = (0, 0);
    for limits in limits {
        // Shallow first (the loop gets its trace), then ever deeper.
        let depths = [0, 10, 20, 30, 34, 36, 38, 40, 42, 44, 46, 48, 50, 55, 60];
        let runs = |tiered: bool| -> (Vec<String>, u64) {
            let (results, stats) = run_depths(&module, limits, tiered.then_some(false), &depths);
            (results, stats.map_or(0, |s| s.declined))
        };
        let ((plain, _), (tiered, declines)) = (runs(false), runs(true));
        assert_eq!(plain, tiered, "{helper_body}: {limits:?}");
        traps += plain
            .iter()
            .filter(|r| r.contains("CallStackExhausted"))
            .count();
        declined += declines;
    }
    assert!(
        traps > 0 && declined > 0,
        "{helper_body}: {traps} traps, {declined} declined entries"
    );
}

/// A guest without a memory gets trace code too (its traces touch none; an empty memory
/// stands in for the one trace modules import).
#[test]
fn a_guest_without_a_memory_gets_trace_code() {
    let wat = r#"(module
      (func (export "run") (result i32) (local $i i32) (local $acc i32)
        (loop $l
          (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $i) (local.get $i))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 100000))))
        (local.get $acc)))"#;
    for backend in [Backend::Cranelift, Backend::Winch] {
        let stats = run_live(wat, backend);
        let name = backend.name();
        assert_eq!(stats.live_failures, 0, "{name}: {stats:?}");
        assert!(
            stats.live_traces >= 1 && stats.entries >= 1,
            "{name}: {stats:?}"
        );
    }
}

/// Doubly recursive Fibonacci from a hot loop: the loop's trace exits at the call, the
/// callee's entry trace is recorded there, and the driver makes the calls itself
/// (`links::Target::Call`), following returns into the side traces that go on after each
/// call. Most calls then run in trace code: the interpreter's entries stay a few per
/// outer pass; `$fib`'s entry trace grows a tree with the side traces at its exits. With
/// calls not linked the result is the same and every call of `$fib` from trace code goes
/// through the interpreter.
const FIB: &str = r#"
      (func $fib (param $n i32) (result i32)
        (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
          (then (local.get $n))
          (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                         (call $fib (i32.sub (local.get $n) (i32.const 2)))))))"#;

#[test]
fn recursive_calls_are_made_by_the_driver() {
    let wat = format!(
        r#"(module (memory 1)
{FIB}
      (func (export "run") (result i32) (local $k i32) (local $r i32)
        (loop $l
          (local.set $r (i32.add (local.get $r)
            (call $fib (i32.add (i32.const 8) (i32.rem_u (local.get $k) (i32.const 3))))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $k) (i32.const 6000))))
        (local.get $r)))"#
    );
    let module = Module::new(&wat::parse_str(&wat).unwrap()).unwrap();
    let expected = {
        let mut store = Store::new();
        let instance = Linker::new().instantiate(&mut store, &module).unwrap();
        store.call_export(instance, "run", &[]).unwrap()
    };
    // The result, the tier's counters, and the calls of $fib (anchor 0, the first
    // function's entry) the interpreter made.
    let run = |backend: Backend, link_calls: bool| {
        let limits = trace_capture::StackLimits::default();
        let (mut store, instance, stats) = tiered_store(&module, limits, backend, Some(link_calls));
        let got = store.call_export(instance, "run", &[]).unwrap();
        let stats = stats.expect("a tier").get();
        (got, stats, store.anchor_hits(instance)[0])
    };
    for backend in [Backend::Cranelift, Backend::Winch] {
        let name = backend.name();
        let (on, on_stats, on_interpreted) = run(backend, true);
        let (off, off_stats, off_interpreted) = run(backend, false);
        assert_eq!((&on, &off), (&expected, &expected), "{name}");
        // The loop's call, $fib's two calls of itself, and the same calls where traces
        // inlined one level of $fib.
        assert!(on_stats.calls_linked >= 3, "{name}: {on_stats:?}");
        assert_eq!(
            (off_stats.calls_linked, off_stats.unwinds),
            (0, 0),
            "{name}: {off_stats:?}"
        );
        // $fib's entry trace grows a tree with the side trace at its guard (the leaf
        // path), as a loop trace does: the run's only tree.
        assert!(
            on_stats.trees >= 1 && on_stats.tree_sides >= 1,
            "{name}: {on_stats:?}"
        );
        // About 700,000 calls of $fib: without linked calls the interpreter makes all of
        // them; with them, trace code makes most once every call and return is linked.
        assert!(
            off_interpreted > 600_000,
            "{name}: {off_interpreted} calls interpreted"
        );
        assert!(
            on_interpreted * 3 < off_interpreted,
            "{name}: {on_interpreted} calls interpreted with calls linked: {on_stats:?}"
        );
    }
}

/// A trace that inlined a call and leaves inside it at the callee's loop header goes on in
/// the callee's loop trace, as if the driver had made the call (`header_in_call`): here
/// the loop's trace inlines `$sum`'s short path, and a side trace from the long path's
/// guard ends at `$sum`'s loop header. The interpreter then passes that header a few
/// times, not once per long call.
#[test]
fn a_loop_header_inside_an_inlined_call_goes_on_in_the_callees_loop() {
    let wat = r#"(module (memory 1)
      (func $sum (param $x i32) (result i32) (local $i i32) (local $s i32)
        (if (i32.lt_u (local.get $x) (i32.const 100))
          (then (return (i32.mul (local.get $x) (i32.const 2)))))
        (loop $l
          (local.set $s (i32.add (local.get $s) (local.get $i)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (local.get $x))))
        (local.get $s))
      (func (export "run") (result i32) (local $k i32) (local $r i32)
        (loop $l
          (local.set $r (i32.add (local.get $r)
            (call $sum (i32.rem_u (i32.mul (local.get $k) (i32.const 7)) (i32.const 130)))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $k) (i32.const 20000))))
        (local.get $r)))"#;
    let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
    let expected = {
        let mut store = Store::new();
        let instance = Linker::new().instantiate(&mut store, &module).unwrap();
        store.call_export(instance, "run", &[]).unwrap()
    };
    // $sum's loop: the first loop anchor, after the two functions' entries.
    let header = module
        .anchors()
        .iter()
        .position(|a| a.kind == trace_capture::AnchorKind::Loop && a.func_index == 0)
        .expect("$sum loops");
    let run = |link_calls: bool| {
        let limits = trace_capture::StackLimits::default();
        let (mut store, instance, stats) =
            tiered_store(&module, limits, Backend::Cranelift, Some(link_calls));
        let got = store.call_export(instance, "run", &[]).unwrap();
        let stats = stats.expect("a tier").get();
        (got, stats, store.anchor_hits(instance)[header])
    };
    let (on, on_stats, on_passed) = run(true);
    let (off, off_stats, off_passed) = run(false);
    assert_eq!((&on, &off), (&expected, &expected));
    assert!(on_stats.calls_linked >= 1, "{on_stats:?}");
    // About 4,600 long calls: the interpreter passes the header at each without the link.
    assert!(off_passed > 4000, "{off_passed} passes: {off_stats:?}");
    assert!(
        on_passed * 5 < off_passed,
        "{on_passed} passes: {on_stats:?}"
    );
}

/// Recursion in trace code meets the interpreter's limits where the interpreter does: a
/// call the driver has no room for (too deep for `max_call_depth`, or its frame too
/// close to the end of the value stack) ends the drive, and the interpreter, given the
/// frames of the calls the driver made, makes it and traps or goes on. Every depth under
/// a range of limits gives what the interpreter alone gives, traps included.
#[test]
fn recursion_in_trace_code_traps_where_the_interpreter_does() {
    let wat = r#"(module (memory 1)
      (func $down (param $n i32) (result i32)
        (if (result i32) (i32.eqz (local.get $n))
          (then (i32.const 0))
          (else (i32.add (i32.const 1) (call $down (i32.sub (local.get $n) (i32.const 1)))))))
      (func (export "run") (param $d i32) (result i32) (local $k i32) (local $r i32)
        (loop $l
          (local.set $r (i32.add (local.get $r)
            (call $down (i32.add (local.get $d) (i32.rem_u (local.get $k) (i32.const 3))))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $k) (i32.const 300))))
        (local.get $r)))"#;
    let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
    let limits = (30..42)
        .map(|depth| trace_capture::StackLimits {
            max_call_depth: depth,
            max_value_slots: 1 << 20,
        })
        .chain(
            (150..300)
                .step_by(7)
                .map(|slots| trace_capture::StackLimits {
                    max_call_depth: 50_000,
                    max_value_slots: slots,
                }),
        );
    let (mut traps, mut unwinds, mut linked) = (0, 0, 0);
    for limits in limits {
        // Shallow first (the loop gets its trace and the calls their links), then deeper.
        let depths = [2, 5, 10, 20, 25, 28, 30, 32, 34, 36, 38, 40, 45, 60];
        let runs = |tiered: bool| run_depths(&module, limits, tiered.then_some(true), &depths);
        let ((plain, _), (tiered, stats)) = (runs(false), runs(true));
        assert_eq!(plain, tiered, "{limits:?}");
        let stats = stats.expect("the tiered run's counters");
        traps += plain
            .iter()
            .filter(|r| r.contains("CallStackExhausted"))
            .count();
        unwinds += stats.unwinds;
        linked += stats.calls_linked;
    }
    assert!(
        traps > 0 && unwinds > 0 && linked > 0,
        "{traps} traps, {unwinds} drives ended inside calls, {linked} calls linked"
    );
}

/// A loaded trace (a cache's, say) that writes a slot beyond its function's frame, and
/// beyond the frame of any call it leaves inside, is not that function's trace: the tier
/// detaches it at the first entry, and the loop runs in the interpreter with its result.
#[test]
fn a_trace_touching_slots_beyond_its_frames_is_refused() {
    let wat = r#"(module
      (memory 1)
      (func (export "run") (result i32) (local $i i32)
        (loop $l
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 5000))))
        (local.get $i)))"#;
    let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
    let anchor = module
        .anchors()
        .iter()
        .position(|a| a.kind == trace_capture::AnchorKind::Loop)
        .unwrap();
    let info = module.anchors()[anchor];
    // Loops back writing slot 0 (the local) and slot 400, far beyond a frame of a few
    // slots; an exit inside a call to the function itself would allow its frame only.
    let trace = ir::text::parse(
        "trace locals=1
          in  v0:i32 = slot 0
          v1:i32 = i32.add v0 1
          v2:i32 = i32.lt_u v1 5000
          guard v2 else exit 0 pc=1 @0x0 [s0=v1]
          loop [s0=v1 s400=v1]",
    )
    .unwrap();
    let code = TraceCode::build(
        &guest_info(&module),
        &[(&trace, info.func_index, info.offset, EmitKind::Naive)],
    )
    .unwrap();
    let mut store = Store::new();
    let instance = Linker::new().instantiate(&mut store, &module).unwrap();
    let mut tier = WasmtimeTier::new(Backend::Cranelift, &store, instance, &module).unwrap();
    tier.load(&code).unwrap();
    let stats = tier.stats_handle();
    store.set_tier(Box::new(tier));
    assert!(store.attach_trace(instance, anchor as u32));
    let got = store.call_export(instance, "run", &[]).unwrap();
    assert_eq!(got, [trace_capture::Value::I32(5000)]);
    let s = stats.get();
    assert_eq!((s.entries, s.declined), (0, 1), "{s:?}");
}

/// Runs export `run` of `wat` with live JIT (compiling at once) on Cranelift; returns the
/// module, the loop traces recorded and the side traces the tier linked.
fn record_live(wat: &str) -> (Module, Vec<RecordedTrace>, Vec<SideTraceRecord>) {
    let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
    let mut store = Store::new();
    let instance = Linker::new().instantiate(&mut store, &module).unwrap();
    store.enable_recording(RecordConfig {
        hot_threshold: TEST_THRESHOLD,
        ..RecordConfig::default()
    });
    let mut tier = WasmtimeTier::new(Backend::Cranelift, &store, instance, &module).unwrap();
    tier.enable_live_jit();
    tier.compile_in_background(false);
    store.set_tier(Box::new(tier));
    store.call_export(instance, "run", &[]).unwrap();
    let sides = store.tier_side_traces();
    (module, store.take_recorded(), sides)
}

/// Stands for the app's SHA-256 in the cache tests (`load_cache` is given it).
const APP_HASH: &str = "ab54ab54ab54ab54ab54ab54ab54ab54ab54ab54ab54ab54ab54ab54ab54ab54";

/// A cache library of `roots` and `sides`, each shipped as recorded.
fn cache_of(module: &Module, roots: &[RecordedTrace], sides: &[SideTraceRecord]) -> Vec<u8> {
    let mut writer = CacheWriter::new(guest_info(module), APP_HASH).unwrap();
    let record = |trace: &ir::Trace, func_index, anchor_offset, side| TraceRecord {
        func_index,
        anchor_offset,
        side,
        content_hash: ir::hash::content_hash(trace),
        cost_before: 1,
        cost_after: 1,
        verdict: ProofVerdict::Unproven {
            reason: "a test ships it as recorded".into(),
        },
        solver: String::new(),
    };
    for r in roots {
        let rec = record(&r.trace, r.func_index, r.anchor_offset, None);
        writer.add(&r.trace, rec).unwrap();
    }
    for s in sides {
        let rec = record(
            &s.trace,
            s.start.func_index,
            s.offset,
            Some(s.start.clone()),
        );
        writer.add(&s.trace, rec).unwrap();
    }
    writer.finish().unwrap()
}

/// Runs export `run` of `module` on `backend` with `cache` and no live JIT (trees built at
/// once); the result must be the interpreter's. `Err`: the cache was refused, why.
fn run_cached(module: &Module, cache: &[u8], backend: Backend) -> Result<TierStats, String> {
    run_cached_regions(module, cache, backend, true)
}

/// `run_cached`, building regions or not.
fn run_cached_regions(
    module: &Module,
    cache: &[u8],
    backend: Backend,
    regions: bool,
) -> Result<TierStats, String> {
    let expected = {
        let mut store = Store::new();
        let instance = Linker::new().instantiate(&mut store, module).unwrap();
        store.call_export(instance, "run", &[]).unwrap()
    };
    let mut store = Store::new();
    let instance = Linker::new().instantiate(&mut store, module).unwrap();
    let mut tier = WasmtimeTier::new(backend, &store, instance, module).unwrap();
    tier.compile_in_background(false);
    tier.build_regions(regions);
    let anchors = runtime::load_cache(&mut tier, cache, APP_HASH, module)?;
    let stats = tier.stats_handle();
    store.set_tier(Box::new(tier));
    for anchor in anchors {
        assert!(store.attach_trace(instance, anchor));
    }
    let got = store.call_export(instance, "run", &[]).unwrap();
    assert_eq!(got, expected, "{}: {:?}", backend.name(), stats.get());
    Ok(stats.get())
}

/// Side traces a cache library holds are linked at their places when it loads, and the
/// roots grow trees with them from their first entry: no exit waits to turn hot, nothing
/// is recorded, and the result is the interpreter's. Both shapes: a branch's two paths,
/// and a dispatch loop's `br_table` arms (picked by selector).
#[test]
fn side_traces_in_a_cache_are_linked_at_load_and_grown_into_trees() {
    let dispatch = format!(
        r#"(module (memory 1)
{INTERPRET}
      (func (export "run") (result i32) (call $interpret (i32.const 200000))))"#
    );
    // Each call of $alternate runs its loop in one entry (and so does each pass of the
    // outer loop); the dispatch loop is entered once.
    for (wat, max_entries) in [(alternating(200), 400), (dispatch, 2)] {
        let (module, roots, sides) = record_live(&wat);
        assert!(!sides.is_empty(), "the live run linked side traces");
        let with_sides = cache_of(&module, &roots, &sides);
        let roots_only = cache_of(&module, &roots, &[]);
        for backend in [Backend::Cranelift, Backend::Winch] {
            let name = backend.name();
            let s = run_cached(&module, &with_sides, backend).unwrap();
            assert_eq!(s.cached_side_traces, sides.len() as u64, "{name}: {s:?}");
            assert_eq!((s.side_requests, s.side_traces), (0, 0), "{name}: {s:?}");
            assert!(s.trees >= 1 && s.tree_sides >= 1, "{name}: {s:?}");
            assert_eq!((s.tree_failures, s.detached), (0, 0), "{name}: {s:?}");
            assert!(s.entries <= max_entries, "{name}: {s:?}");
            // Without them every path change is an exit to the interpreter.
            let r = run_cached(&module, &roots_only, backend).unwrap();
            assert!(r.entries > max_entries, "{name}: {r:?}");
        }
    }
}

/// A loop nest entered from the interpreter once per call, `calls` calls: the outer loop
/// runs `outer` iterations plus the call's number, the inner one `1 + (i & 3)` plus `inner`
/// each pass. The outer loop's trace ends at the inner loop's header, the inner loop's
/// exit has a side trace back to the outer header, so every outer pass hands over twice.
fn loop_nest(calls: u32, outer: u32, inner: u32) -> String {
    format!(
        r#"(module (memory 1)
      (func $nest (param $n i32) (result i32)
        (local $i i32) (local $j i32) (local $acc i32)
        (loop $outer
          (local.set $j (i32.const 0))
          (loop $inner
            (i32.store (i32.shl (i32.and (local.get $j) (i32.const 255)) (i32.const 2))
              (local.get $acc))
            (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $j) (local.get $i))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br_if $inner (i32.le_u (local.get $j)
              (i32.add (i32.and (local.get $i) (i32.const 3)) (i32.const {inner})))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $outer (i32.lt_u (local.get $i) (local.get $n))))
        (local.get $acc))
      (func (export "run") (result i32)
        (local $k i32) (local $sum i32)
        (loop $calls
          (local.set $sum (i32.xor (local.get $sum)
            (call $nest (i32.add (i32.const {outer}) (local.get $k)))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $calls (i32.lt_u (local.get $k) (i32.const {calls}))))
        (local.get $sum)))"#
    )
}

/// With a loop nest's traces in a cache library, the roots grow a region (one function
/// handing over between them) once entered often enough, and the results are the
/// interpreter's (`run_cached` checks them); with regions off, none is built.
#[test]
fn a_cached_loop_nest_grows_a_region() {
    let (module, roots, sides) = record_live(&loop_nest(400, 300, 0));
    assert!(!sides.is_empty(), "the live run linked side traces");
    let cache = cache_of(&module, &roots, &sides);
    for backend in [Backend::Cranelift, Backend::Winch] {
        let name = backend.name();
        let with = run_cached_regions(&module, &cache, backend, true).unwrap();
        assert!(
            with.regions >= 1 && with.region_members >= 3,
            "{name}: {with:?}"
        );
        assert_eq!(with.region_failures, 0, "{name}: {with:?}");
        let without = run_cached_regions(&module, &cache, backend, false).unwrap();
        assert_eq!(
            (without.regions, without.region_members),
            (0, 0),
            "{name}: {without:?}"
        );
    }
}

/// Drives of more than `REGION_MAX_SEGMENTS_PER_ENTRY` (4096) segments grow a region only
/// where hand-overs are dense (at least one segment in 16): an outer loop of 5000 passes
/// handing over twice a pass, round an inner loop of 1 to 4 iterations, does; one of 200
/// passes round 61 to 64 iterations does not (about 32 segments a hand-over).
#[test]
fn long_drives_grow_a_region_only_where_hand_overs_are_dense() {
    for (outer, inner, region) in [(5000, 0, true), (200, 60, false)] {
        // 400 calls: a root decides at its 64th entry, and while a timed trial interprets
        // windows of the outer loop the inner loop's root takes some of the entries.
        let (module, roots, sides) = record_live(&loop_nest(400, outer, inner));
        assert!(!sides.is_empty(), "the live run linked side traces");
        let cache = cache_of(&module, &roots, &sides);
        let s = run_cached(&module, &cache, Backend::Cranelift).unwrap();
        assert_eq!(
            s.regions >= 1,
            region,
            "outer {outer}, inner +{inner}: {s:?}"
        );
        assert_eq!(s.region_failures, 0, "{s:?}");
    }
}

/// A cached side trace is checked against the app's code at load, since the interpreter
/// never enters one (the tier checks a loop trace at its first entry): a place or exit
/// outside its function, a place at a loop header, calls the code does not make there, a
/// slot beyond its frames.
/// Each refuses the whole cache, naming the side trace and the problem.
#[test]
fn a_cached_side_trace_the_app_cannot_have_is_refused() {
    let (module, roots, sides) = record_live(&alternating(200));
    let side = &sides[0];
    let refused = |side: SideTraceRecord, words: &[&str]| {
        let cache = cache_of(&module, &roots, &[side]);
        let why = run_cached(&module, &cache, Backend::Cranelift).unwrap_err();
        for word in words {
            assert!(why.contains(word), "{why:?} lacks {word:?}");
        }
    };
    let mut far = side.clone();
    far.start.pc = 1_000_000;
    refused(
        far,
        &["side trace", "its place", "pc 1000000 is outside function"],
    );

    // A loop header is its loop trace's place: a side trace there would take it over
    // (and at pc 0, pass for an entry trace, which reads no local).
    let header = (0..10_000)
        .find(|&pc| {
            module.control_at(side.start.func_index, pc)
                == Some(trace_capture::ControlAt::LoopHeader)
        })
        .expect("the side trace's function loops");
    let mut at_header = side.clone();
    at_header.start.pc = header;
    refused(at_header, &["side trace", "is a loop header"]);

    let mut in_calls = side.clone();
    in_calls.start.calls = vec![ir::InlinedCall {
        func: side.start.func_index,
        base: 2,
        return_pc: 1,
    }];
    refused(in_calls, &["side trace", "makes no call"]);

    let mut wide = side.clone();
    let ir::End::Exit(end) = &mut wide.trace.end else {
        panic!("a side trace ends in an exit")
    };
    let value = end.state[0].1;
    end.state.push((400, value));
    refused(wide, &["side trace", "touches slot 400"]);

    let mut lost = side.clone();
    let ir::End::Exit(end) = &mut lost.trace.end else {
        panic!("a side trace ends in an exit")
    };
    end.pc = 1_000_000;
    let id = end.id;
    refused(
        lost,
        &[
            "side trace",
            &format!("exit {id}: pc 1000000 is outside function"),
        ],
    );

    // An arm picked by a slot the side trace never reads: its code cannot have checked
    // the index, so it could run for the wrong arm.
    let mut unread = side.clone();
    let slot = 399;
    assert!(!unread
        .trace
        .inputs
        .iter()
        .any(|i| i.source == ir::Source::Slot(slot)));
    unread.start.selector = Some(ir::Selector {
        index_slot: slot,
        arms: 2,
        arm: 0,
    });
    refused(
        unread,
        &["side trace", "picked by slot 399, which it does not read"],
    );
}
