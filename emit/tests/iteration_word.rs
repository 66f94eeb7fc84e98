//! The iteration word (`abi.rs`): at every exit, the loop iterations the call completed,
//! at `$frame - 8`.

use emit::abi::{trace_export_name, ITERATION_WORD_BYTES, SLOT_BYTES};
use emit::{EmitKind, GuestInfo, ModuleBuilder};
use wasmtime::{Engine, Instance, Memory, MemoryType, Store};

/// Where the frame starts: past the iteration word, and not at its minimum, so a wrong
/// base shows.
const FRAME_BASE: usize = 24;

/// Runs `trace` (text form) with slot 0 = `start`; returns (exit id, iteration word).
fn check(trace: &str, start: u64, expected: (u32, u64)) {
    let trace = ir::text::parse(trace).expect("parses");
    let mut builder = ModuleBuilder::new(GuestInfo {
        memory_min_pages: 1,
        ..GuestInfo::default()
    })
    .unwrap();
    builder.add(&trace, EmitKind::Naive).unwrap();
    let bytes = builder.finish().unwrap();
    for strategy in [wasmtime::Strategy::Cranelift, wasmtime::Strategy::Winch] {
        let mut config = wasmtime::Config::new();
        config.strategy(strategy);
        let engine = Engine::new(&config).unwrap();
        let module = wasmtime::Module::new(&engine, &bytes).unwrap();
        let mut store = Store::new(&engine, ());
        let guest = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
        let frame = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
        // Garbage in the word: the function must overwrite it.
        let word = FRAME_BASE - ITERATION_WORD_BYTES as usize;
        frame.data_mut(&mut store)[word..word + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        frame.data_mut(&mut store)[FRAME_BASE..FRAME_BASE + SLOT_BYTES as usize]
            .copy_from_slice(&start.to_le_bytes());
        let instance = Instance::new(&mut store, &module, &[guest.into(), frame.into()]).unwrap();
        let func = instance
            .get_typed_func::<i32, i32>(&mut store, &trace_export_name(0))
            .unwrap();
        let exit = func.call(&mut store, FRAME_BASE as i32).unwrap() as u32;
        let data = frame.data(&store);
        let iterations = u64::from_le_bytes(data[word..word + 8].try_into().unwrap());
        assert_eq!((exit, iterations), expected, "{strategy:?}");
    }
}

#[test]
fn a_loop_counts_its_completed_iterations() {
    let countdown = "trace locals=1
  in  v0:i32 = slot 0
  v1:i32 = i32.sub v0 1
  v2:i32 = i32.ne v1 0
  guard v2 else exit 7 pc=3 @0x10 [s0=v1]
  loop [s0=v1]";
    // From 10: passes 1..=9 loop back, the tenth pass exits.
    check(countdown, 10, (7, 9));
    check(countdown, 1, (7, 0));
}

#[test]
fn a_trace_without_a_loop_completes_none() {
    check(
        "trace locals=1
  in  v0:i32 = slot 0
  exit 3 pc=2 @0x8 [s0=v0]",
        5,
        (3, 0),
    );
}
