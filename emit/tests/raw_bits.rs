//! Raw bit patterns cross the ABI unchanged: constants written to float globals (NaN
//! payloads included, which wasm's `global.set` keeps), float slots, and globals whose
//! guest type differs from the type the trace reads them at.

mod common;

use std::collections::BTreeMap;

use common::{engine, reference, run_wasm, RunEnd, Start, STRATEGIES};
use emit::{EmitKind, GlobalInfo, GuestInfo, ModuleBuilder};
use ir::eval::PAGE_SIZE;
use ir::Type;

const TRACE: &str = "trace locals=2
  in  v0:f32 = slot 0
  in  v1:i32 = global 2
  global.set 7 0x7ff8000000000001
  global.set 8 0x7f800001
  v2:i32 = i32.add v1 1
  global.set 2 v2
  exit 6 pc=1 @0x1 [s0=v0 s1=v1 s2=0x7ff0000000000002]";

#[test]
fn raw_bits_survive_globals_and_slots_on_both_backends() {
    let trace = ir::text::parse(TRACE).expect("parses");
    let global = |ty| GlobalInfo { ty, mutable: true };
    let guest = GuestInfo {
        memory_min_pages: 1,
        memory_max_pages: None,
        // Global 2 is an f32 the trace reads and writes as i32 bits.
        globals: BTreeMap::from([
            (2, global(Type::F32)),
            (7, global(Type::F64)),
            (8, global(Type::F32)),
        ]),
    };
    let mut builder = ModuleBuilder::new(guest.clone()).expect("limits");
    builder.add(&trace, EmitKind::Naive).expect("adds");
    let bytes = builder.finish().expect("finishes");
    emit::validate(&bytes).expect("validates");
    let start = Start {
        // An f32 signalling NaN in slot 0; slots 1 and 2 are garbage the exit overwrites.
        frame: vec![0x7fa0_0001, 0xdead, 0xbeef],
        globals: BTreeMap::from([(2, 0x7f80_0005), (7, 0), (8, 0)]),
        memory: vec![0; PAGE_SIZE],
        max_pages: None,
    };
    let want = reference(&trace, &start, 1).expect("eval runs");
    assert_eq!(want.end, RunEnd::Exit(6));
    assert_eq!(
        want.frame,
        [0x7fa0_0001, 0x7f80_0005, 0x7ff0_0000_0000_0002]
    );
    assert_eq!(
        want.globals,
        BTreeMap::from([
            (2, 0x7f80_0006),
            (7, 0x7ff8_0000_0000_0001),
            (8, 0x7f80_0001)
        ])
    );
    for strategy in STRATEGIES {
        let engine = engine(strategy);
        let module = wasmtime::Module::new(&engine, &bytes).expect("compiles");
        let got = run_wasm(&engine, &module, 0, &guest, &start, 10_000);
        assert_eq!(got, want, "{strategy:?}");
    }
}
