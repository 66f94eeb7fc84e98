//! The module builder: many traces in one module, each guest global imported once and
//! only when used, every output validated, and bad input refused with a named error.

use std::collections::BTreeMap;

use emit::abi::{frame_pages, MAX_FRAME_SLOTS};
use emit::{EmitError, EmitKind, GlobalInfo, GuestInfo, ModuleBuilder};
use ir::Type;
use wasmparser::{Parser, Payload, TypeRef};

fn trace(text: &str) -> ir::Trace {
    ir::text::parse(text).expect("the trace parses")
}

fn guest(globals: &[(u32, Type, bool)]) -> GuestInfo {
    GuestInfo {
        memory_min_pages: 1,
        memory_max_pages: None,
        globals: globals
            .iter()
            .map(|&(g, ty, mutable)| (g, GlobalInfo { ty, mutable }))
            .collect(),
    }
}

/// The module's imports as `module.name` → what they import, and its export names.
fn imports_and_exports(bytes: &[u8]) -> (Vec<(String, String)>, Vec<String>) {
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("parses") {
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    let import = import.expect("import");
                    let what = match import.ty {
                        TypeRef::Memory(m) => {
                            format!("memory min {} max {:?}", m.initial, m.maximum)
                        }
                        TypeRef::Global(g) => {
                            format!("global {} mut {}", g.content_type, g.mutable)
                        }
                        other => format!("{other:?}"),
                    };
                    imports.push((format!("{}.{}", import.module, import.name), what));
                }
            }
            Payload::ExportSection(section) => {
                for export in section {
                    exports.push(export.expect("export").name.to_string());
                }
            }
            _ => {}
        }
    }
    (imports, exports)
}

const READS_GLOBAL_3: &str = "trace locals=1
  in  v0:i64 = global 3
  exit 0 pc=1 @0x1 [s0=v0]";
const WRITES_GLOBALS_3_AND_7: &str = "trace locals=1
  in  v0:i32 = slot 9
  global.set 3 5
  global.set 7 v0
  loop [s0=v0]";
const NO_GLOBALS: &str = "trace locals=1
  in  v0:i32 = slot 0
  exit 4 pc=1 @0x1 [s0=v0]";

#[test]
fn many_traces_share_one_module_and_each_used_global_is_imported_once() {
    let guest = guest(&[
        (1, Type::I32, true),
        (3, Type::I64, true),
        (7, Type::I32, true),
    ]);
    let mut builder = ModuleBuilder::new(guest).expect("limits");
    for (i, text) in [READS_GLOBAL_3, WRITES_GLOBALS_3_AND_7, NO_GLOBALS]
        .iter()
        .enumerate()
    {
        let kind = if i == 1 {
            EmitKind::Optimized
        } else {
            EmitKind::Naive
        };
        assert_eq!(builder.add(&trace(text), kind), Ok(i as u32));
    }
    let bytes = builder.finish().expect("finishes");
    emit::validate(&bytes).expect("validates");
    let (imports, exports) = imports_and_exports(&bytes);
    let imports: Vec<String> = imports
        .iter()
        .map(|(name, what)| format!("{name}: {what}"))
        .collect();
    assert_eq!(
        imports,
        [
            "guest.memory: memory min 1 max None",
            "kiln.frame: memory min 1 max None",
            "guest.global3: global i64 mut true",
            "guest.global7: global i32 mut true",
        ]
    );
    assert_eq!(exports, ["trace0", "trace1", "trace2"]);
    let text = emit::wat(&bytes).expect("prints");
    assert!(text.contains("$trace1.optimized"), "{text}");
    assert!(text.contains("$trace2.naive"), "{text}");
}

#[test]
fn an_empty_module_validates() {
    let bytes = ModuleBuilder::new(guest(&[]))
        .expect("limits")
        .finish()
        .expect("finishes");
    emit::validate(&bytes).expect("validates");
    let (imports, exports) = imports_and_exports(&bytes);
    assert_eq!(imports.len(), 2, "{imports:?}");
    assert!(exports.is_empty());
}

#[test]
fn the_frame_import_holds_the_highest_slot() {
    assert_eq!(frame_pages(0), 0);
    assert_eq!(frame_pages(8192), 1);
    assert_eq!(frame_pages(8193), 2);
    let high = "trace locals=1
  in  v0:i32 = slot 8192
  exit 0 pc=1 @0x1 [s0=v0]";
    let mut builder = ModuleBuilder::new(guest(&[])).expect("limits");
    builder.add(&trace(high), EmitKind::Naive).expect("adds");
    let (imports, _) = imports_and_exports(&builder.finish().expect("finishes"));
    assert_eq!(imports[1].1, "memory min 2 max None");
}

#[test]
fn bad_input_is_refused_with_a_named_error() {
    let refused = |guest: GuestInfo, text: &str| {
        ModuleBuilder::new(guest)
            .expect("limits")
            .add(&trace(text), EmitKind::Naive)
            .expect_err("refused")
    };
    assert_eq!(
        refused(guest(&[]), READS_GLOBAL_3),
        EmitError::UnknownGlobal {
            trace: 0,
            global: 3
        }
    );
    assert_eq!(
        refused(
            guest(&[(3, Type::I32, false), (7, Type::I32, true)]),
            WRITES_GLOBALS_3_AND_7
        ),
        EmitError::ImmutableGlobal {
            trace: 0,
            global: 3
        }
    );
    let far = format!(
        "trace locals=1\n  in  v0:i32 = slot {MAX_FRAME_SLOTS}\n  exit 0 pc=1 @0x1 [s0=v0]"
    );
    assert_eq!(
        refused(guest(&[]), &far),
        EmitError::SlotTooLarge {
            trace: 0,
            slot: MAX_FRAME_SLOTS
        }
    );
    let mut invalid = trace(NO_GLOBALS);
    invalid.end = ir::End::Loop {
        state: vec![(0, ir::Operand::Value(ir::ValueId(99)))],
    };
    let error = ModuleBuilder::new(guest(&[]))
        .expect("limits")
        .add(&invalid, EmitKind::Naive)
        .expect_err("refused");
    assert!(
        matches!(error, EmitError::Invalid { trace: 0, .. }),
        "{error}"
    );
    for (min, max) in [(2, Some(1)), (70000, None), (1, Some(70000))] {
        let bad = GuestInfo {
            memory_min_pages: min,
            memory_max_pages: max,
            globals: BTreeMap::new(),
        };
        assert_eq!(
            ModuleBuilder::new(bad).expect_err("refused"),
            EmitError::BadMemoryLimits { min, max }
        );
    }
    assert!(emit::validate(b"\0asm\x01\0\0\0\x05").is_err());
}
