//! The engines the ABI must work on: wasmtime's Cranelift and Winch backends both compile
//! and run a module that imports two memories (multi-memory) and consumes fuel. The
//! frame-in-a-second-memory ABI (`emit::abi`) rests on this.

use wasm_encoder::{
    CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection, ImportSection,
    Instruction, MemArg, MemArgTarget, MemoryType, Module, TypeSection, ValType,
};
use wasmtime::{Config, Engine, Instance, Memory, Store, Strategy};

/// `(func (param $frame i32) (result i32))`: copies the guest's i64 at 0 into the frame
/// at `$frame + 8`, returns 7.
fn two_memory_module() -> Vec<u8> {
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]);
    module.section(&types);
    let page = |min| MemoryType {
        minimum: min,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    };
    let mut imports = ImportSection::new();
    imports.import("guest", "memory", EntityType::Memory(page(1)));
    imports.import("kiln", "frame", EntityType::Memory(page(1)));
    module.section(&imports);
    let mut functions = FunctionSection::new();
    functions.function(0);
    module.section(&functions);
    let mut exports = ExportSection::new();
    exports.export("probe", ExportKind::Func, 0);
    module.section(&exports);
    let mut body = Function::new([]);
    let arg = |memory_index| MemArg {
        offset: 0,
        align: 3,
        target: MemArgTarget::Memory(memory_index),
        ordering: None,
    };
    body.instruction(&Instruction::LocalGet(0))
        .instruction(&Instruction::I32Const(0))
        .instruction(&Instruction::I64Load(arg(0)))
        .instruction(&Instruction::I64Store(MemArg {
            offset: 8,
            ..arg(1)
        }))
        .instruction(&Instruction::I32Const(7))
        .instruction(&Instruction::End);
    let mut code = CodeSection::new();
    code.function(&body);
    module.section(&code);
    module.finish()
}

#[test]
fn cranelift_and_winch_run_a_two_memory_module_with_fuel() {
    let bytes = two_memory_module();
    for strategy in [Strategy::Cranelift, Strategy::Winch] {
        let mut config = Config::new();
        config.strategy(strategy).consume_fuel(true);
        let engine = Engine::new(&config).expect("engine");
        let module = wasmtime::Module::new(&engine, &bytes)
            .unwrap_or_else(|e| panic!("{strategy:?} compiles the module: {e:?}"));
        let mut store = Store::new(&engine, ());
        store.set_fuel(1000).expect("fuel");
        let ty = wasmtime::MemoryType::new(1, None);
        let guest = Memory::new(&mut store, ty.clone()).expect("guest memory");
        let frame = Memory::new(&mut store, ty).expect("frame memory");
        guest.data_mut(&mut store)[..8].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        let instance = Instance::new(&mut store, &module, &[guest.into(), frame.into()])
            .expect("instantiates");
        let probe = instance
            .get_typed_func::<i32, i32>(&mut store, "probe")
            .expect("export");
        assert_eq!(probe.call(&mut store, 16).expect("runs"), 7, "{strategy:?}");
        assert_eq!(
            frame.data(&store)[24..32],
            0x1122_3344_5566_7788u64.to_le_bytes(),
            "{strategy:?} wrote the frame"
        );
        assert!(
            store.get_fuel().expect("fuel") < 1000,
            "{strategy:?} used fuel"
        );
    }
}
