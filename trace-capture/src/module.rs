//! Loading a module: validate with wasmparser, then parse it once into kiln's own form,
//! with every function body lowered to the interpreter's internal code (`lower.rs`).
//!
//! After `Module::new` succeeds nothing about the module is checked again: the lowering
//! and the interpreter rely on the validator's guarantees (types line up, indices are in
//! range, stack heights are static).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use wasmparser::{
    DataKind, ElementItems, ElementKind, ExternalKind, KnownCustom, Name, Operator, Parser,
    Payload, TypeRef, Validator, WasmFeatures,
};

use crate::code::CompiledFunc;
use crate::liveness::{read_after_exit, FrameLiveness};
use crate::lower;
use crate::types::{ExternType, FuncType, GlobalType, Limits, MemoryType, TableType, ValType};

/// The WebAssembly features kiln runs: 2.0 without SIMD.
pub fn supported_features() -> WasmFeatures {
    WasmFeatures::WASM2.difference(WasmFeatures::SIMD | WasmFeatures::RELAXED_SIMD)
}

/// Why a module could not be loaded: the validator's (or decoder's) message and the byte
/// offset in the module it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleError {
    pub offset: u64,
    pub message: String,
}

impl fmt::Display for ModuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at offset {:#x})", self.message, self.offset)
    }
}

impl std::error::Error for ModuleError {}

impl From<wasmparser::BinaryReaderError> for ModuleError {
    fn from(e: wasmparser::BinaryReaderError) -> ModuleError {
        ModuleError {
            offset: e.offset(),
            message: e.message().to_string(),
        }
    }
}

/// A constant expression of WebAssembly 2.0: a single instruction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ConstExpr {
    /// A number or null reference, already as a slot.
    Slot(u64),
    RefFunc(u32),
    GlobalGet(u32),
}

#[derive(Debug, Clone)]
pub(crate) enum ElemMode {
    Passive,
    Declared,
    Active { table: u32, offset: ConstExpr },
}

#[derive(Debug, Clone)]
pub(crate) struct ElemSegment {
    pub mode: ElemMode,
    pub items: Vec<ConstExpr>,
}

#[derive(Debug, Clone)]
pub(crate) struct DataSegment {
    /// `None` for a passive segment.
    pub offset: Option<ConstExpr>,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Import {
    pub module: String,
    pub name: String,
    pub ty: ExternType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Func,
    Table,
    Memory,
    Global,
}

#[derive(Debug, Clone)]
pub struct Export {
    pub name: String,
    pub kind: ExportKind,
    pub index: u32,
}

/// What kind of place in the code a hot-anchor counter sits at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnchorKind {
    FuncEntry,
    Loop,
}

/// A place whose executions are counted: every function entry and every `loop` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Anchor {
    /// Index in the module's function index space (imports included).
    pub func_index: u32,
    /// Byte offset in the module: of the function body for an entry, of the `loop` opcode
    /// for a loop.
    pub offset: u32,
    pub kind: AnchorKind,
}

#[derive(Debug, Default)]
pub(crate) struct ModuleInner {
    pub types: Vec<FuncType>,
    pub imports: Vec<Import>,
    /// Type index of every function in the function index space, imports first.
    pub func_types: Vec<u32>,
    pub num_imported_funcs: u32,
    pub num_imported_tables: u32,
    pub num_imported_memories: u32,
    pub num_imported_globals: u32,
    /// Types of every table, memory and global, imported ones first.
    pub tables: Vec<TableType>,
    pub memories: Vec<MemoryType>,
    pub globals: Vec<GlobalType>,
    /// Initializers of the defined (not imported) globals.
    pub global_inits: Vec<ConstExpr>,
    pub exports: Vec<Export>,
    pub start: Option<u32>,
    pub elems: Vec<ElemSegment>,
    pub datas: Vec<DataSegment>,
    /// The lowered bodies of the defined functions.
    pub funcs: Vec<Arc<CompiledFunc>>,
    pub func_names: HashMap<u32, String>,
    /// Anchor ids index this: ids `0..funcs.len()` are the entries of the defined
    /// functions, loops follow.
    pub anchors: Vec<Anchor>,
}

/// A validated module with its code lowered for the interpreter. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Module {
    pub(crate) inner: Arc<ModuleInner>,
}

impl Module {
    /// Validates `bytes` as a WebAssembly 2.0 module (without SIMD) and prepares it to run.
    pub fn new(bytes: &[u8]) -> Result<Module, ModuleError> {
        Validator::new_with_features(supported_features()).validate_all(bytes)?;
        let mut m = ModuleInner::default();
        let mut bodies = Vec::new();
        let mut num_defined_funcs = 0;
        for payload in Parser::new(0).parse_all(bytes) {
            match payload? {
                Payload::TypeSection(reader) => {
                    for group in reader {
                        for sub in group?.into_types() {
                            let f = sub.unwrap_func();
                            m.types.push(FuncType::new(
                                convert_types(f.params()),
                                convert_types(f.results()),
                            ));
                        }
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import?;
                        let ty = match import.ty {
                            TypeRef::Func(t) | TypeRef::FuncExact(t) => {
                                m.func_types.push(t);
                                m.num_imported_funcs += 1;
                                ExternType::Func(m.types[t as usize].clone())
                            }
                            TypeRef::Table(t) => {
                                let t = convert_table(t);
                                m.tables.push(t);
                                m.num_imported_tables += 1;
                                ExternType::Table(t)
                            }
                            TypeRef::Memory(t) => {
                                let t = convert_memory(t);
                                m.memories.push(t);
                                m.num_imported_memories += 1;
                                ExternType::Memory(t)
                            }
                            TypeRef::Global(t) => {
                                let t = convert_global(t);
                                m.globals.push(t);
                                m.num_imported_globals += 1;
                                ExternType::Global(t)
                            }
                            TypeRef::Tag(_) => unreachable!("tags are rejected by validation"),
                        };
                        m.imports.push(Import {
                            module: import.module.to_string(),
                            name: import.name.to_string(),
                            ty,
                        });
                    }
                }
                Payload::FunctionSection(reader) => {
                    for t in reader {
                        m.func_types.push(t?);
                        num_defined_funcs += 1;
                    }
                }
                Payload::TableSection(reader) => {
                    for table in reader {
                        let table = table?;
                        m.tables.push(convert_table(table.ty));
                    }
                }
                Payload::MemorySection(reader) => {
                    for mem in reader {
                        m.memories.push(convert_memory(mem?));
                    }
                }
                Payload::GlobalSection(reader) => {
                    for global in reader {
                        let global = global?;
                        m.globals.push(convert_global(global.ty));
                        m.global_inits.push(convert_const(&global.init_expr)?);
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export?;
                        let kind = match export.kind {
                            ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func,
                            ExternalKind::Table => ExportKind::Table,
                            ExternalKind::Memory => ExportKind::Memory,
                            ExternalKind::Global => ExportKind::Global,
                            ExternalKind::Tag => unreachable!("tags are rejected by validation"),
                        };
                        m.exports.push(Export {
                            name: export.name.to_string(),
                            kind,
                            index: export.index,
                        });
                    }
                }
                Payload::StartSection { func, .. } => m.start = Some(func),
                Payload::ElementSection(reader) => {
                    for elem in reader {
                        let elem = elem?;
                        let mode = match elem.kind {
                            ElementKind::Passive => ElemMode::Passive,
                            ElementKind::Declared => ElemMode::Declared,
                            ElementKind::Active {
                                table_index,
                                offset_expr,
                            } => ElemMode::Active {
                                table: table_index.unwrap_or(0),
                                offset: convert_const(&offset_expr)?,
                            },
                        };
                        let mut items = Vec::new();
                        match elem.items {
                            ElementItems::Functions(funcs) => {
                                for f in funcs {
                                    items.push(ConstExpr::RefFunc(f?));
                                }
                            }
                            ElementItems::Expressions(_, exprs) => {
                                for e in exprs {
                                    items.push(convert_const(&e?)?);
                                }
                            }
                        }
                        m.elems.push(ElemSegment { mode, items });
                    }
                }
                Payload::DataSection(reader) => {
                    for data in reader {
                        let data = data?;
                        let offset = match data.kind {
                            DataKind::Passive => None,
                            DataKind::Active { offset_expr, .. } => {
                                Some(convert_const(&offset_expr)?)
                            }
                        };
                        m.datas.push(DataSegment {
                            offset,
                            bytes: data.data.to_vec(),
                        });
                    }
                }
                Payload::CodeSectionEntry(body) => bodies.push(body),
                Payload::CustomSection(reader) => {
                    // A malformed name section is not an error (the spec says custom
                    // sections are ignored); we just keep the names we could read.
                    if let KnownCustom::Name(names) = reader.as_known() {
                        for name in names.into_iter().flatten() {
                            if let Name::Function(map) = name {
                                for naming in map.into_iter().flatten() {
                                    m.func_names.insert(naming.index, naming.name.to_string());
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        debug_assert_eq!(bodies.len(), num_defined_funcs);
        // Anchor ids: one entry anchor per defined function first, then loops as the
        // lowering meets them.
        for (i, body) in bodies.iter().enumerate() {
            m.anchors.push(Anchor {
                func_index: m.num_imported_funcs + i as u32,
                offset: body.range().start as u32,
                kind: AnchorKind::FuncEntry,
            });
        }
        let mut anchors = std::mem::take(&mut m.anchors);
        for (i, body) in bodies.iter().enumerate() {
            let func_index = m.num_imported_funcs + i as u32;
            let compiled = lower::lower_function(&m, func_index, body, &mut anchors)?;
            m.funcs.push(Arc::new(compiled));
        }
        m.anchors = anchors;
        Ok(Module { inner: Arc::new(m) })
    }

    pub fn imports(&self) -> &[Import] {
        &self.inner.imports
    }

    pub fn exports(&self) -> &[Export] {
        &self.inner.exports
    }

    /// Every anchor of the module, indexed by anchor id.
    pub fn anchors(&self) -> &[Anchor] {
        &self.inner.anchors
    }

    /// Whether the interpreter may read `slot` (counted from the frame of defined function
    /// `func_index`) when a trace of that function leaves at `pc` inside `calls`: the
    /// slots a trace's exit must store (`liveness.rs`). A function or call this module
    /// does not define counts every slot as read.
    pub fn slot_read_after_exit(
        &self,
        func_index: u32,
        pc: u32,
        calls: &[ir::InlinedCall],
        slot: u32,
    ) -> bool {
        let frame = |func: u32, base: u32| {
            let code = self
                .inner
                .funcs
                .get(func.checked_sub(self.inner.num_imported_funcs)? as usize)?;
            Some(FrameLiveness {
                base,
                size: code.frame_size,
                liveness: code.liveness(),
            })
        };
        let frames: Option<Vec<FrameLiveness>> = std::iter::once(frame(func_index, 0))
            .chain(calls.iter().map(|c| frame(c.func, c.base)))
            .collect();
        frames.is_none_or(|frames| read_after_exit(&frames, calls, pc, slot))
    }

    /// The name-section name of a function, if any.
    pub fn func_name(&self, func_index: u32) -> Option<&str> {
        self.inner.func_names.get(&func_index).map(String::as_str)
    }

    /// The type of memory `index` (imports included).
    pub fn memory_type(&self, index: u32) -> Option<MemoryType> {
        self.inner.memories.get(index as usize).copied()
    }

    /// The type of global `index` (imports included).
    pub fn global_type(&self, index: u32) -> Option<GlobalType> {
        self.inner.globals.get(index as usize).copied()
    }

    /// How many globals the module has (imports included).
    pub fn global_count(&self) -> u32 {
        self.inner.globals.len() as u32
    }

    /// The type of the function with this index (imports included).
    pub fn func_type(&self, func_index: u32) -> Option<&FuncType> {
        let t = *self.inner.func_types.get(func_index as usize)?;
        self.inner.types.get(t as usize)
    }

    /// Number of interpreter instructions the module's code lowered to.
    pub fn lowered_len(&self) -> usize {
        self.inner.funcs.iter().map(|f| f.code.len()).sum()
    }
}

fn convert_types(types: &[wasmparser::ValType]) -> Vec<ValType> {
    types
        .iter()
        .map(|t| ValType::from_wasmparser(*t).expect("validated: a 2.0 value type"))
        .collect()
}

fn convert_table(t: wasmparser::TableType) -> TableType {
    TableType {
        elem: ValType::from_wasmparser(wasmparser::ValType::Ref(t.element_type))
            .expect("validated: funcref or externref"),
        limits: Limits {
            min: t.initial as u32,
            max: t.maximum.map(|m| m as u32),
        },
    }
}

fn convert_memory(t: wasmparser::MemoryType) -> MemoryType {
    MemoryType {
        limits: Limits {
            min: t.initial as u32,
            max: t.maximum.map(|m| m as u32),
        },
    }
}

fn convert_global(t: wasmparser::GlobalType) -> GlobalType {
    GlobalType {
        ty: ValType::from_wasmparser(t.content_type).expect("validated: a 2.0 value type"),
        mutable: t.mutable,
    }
}

fn convert_const(expr: &wasmparser::ConstExpr<'_>) -> Result<ConstExpr, ModuleError> {
    let mut reader = expr.get_operators_reader();
    let op = reader.read()?;
    Ok(match op {
        Operator::I32Const { value } => ConstExpr::Slot(value as u32 as u64),
        Operator::I64Const { value } => ConstExpr::Slot(value as u64),
        Operator::F32Const { value } => ConstExpr::Slot(value.bits() as u64),
        Operator::F64Const { value } => ConstExpr::Slot(value.bits()),
        Operator::RefNull { .. } => ConstExpr::Slot(0),
        Operator::RefFunc { function_index } => ConstExpr::RefFunc(function_index),
        Operator::GlobalGet { global_index } => ConstExpr::GlobalGet(global_index),
        other => {
            return Err(ModuleError {
                offset: reader.original_position(),
                message: format!("unsupported constant expression {other:?}"),
            })
        }
    })
}

/// Where an instruction hands control ([`Module::control_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlAt {
    /// A call of defined function `callee` (module index space) whose frame starts at
    /// slot `base` of the caller's and takes `frame_size` slots.
    Call {
        callee: u32,
        base: u32,
        frame_size: u32,
    },
    /// A return: the results are in slots `0..n` of the frame.
    Return,
    /// A loop header: code resumed there is the loop's (its trace's, if it has one).
    LoopHeader,
}

impl Module {
    /// Functions in the module's function index space, imports included.
    pub fn func_count(&self) -> u32 {
        self.inner.num_imported_funcs + self.inner.funcs.len() as u32
    }

    /// The frame size in slots of defined function `func_index` (module index space):
    /// what a call to it takes of the interpreter's stack.
    pub fn frame_size(&self, func_index: u32) -> Option<u32> {
        let defined = func_index.checked_sub(self.inner.num_imported_funcs)?;
        Some(self.inner.funcs.get(defined as usize)?.frame_size)
    }

    /// What the instruction at `pc` of defined function `func_index` hands control to,
    /// for a tier that links trace exits there: a call of one of the module's own
    /// functions, a return, or a loop; `None` for anything else (an imported callee
    /// included, and a pc outside the function).
    pub fn control_at(&self, func_index: u32, pc: u32) -> Option<ControlAt> {
        let defined = func_index.checked_sub(self.inner.num_imported_funcs)?;
        let code = self.inner.funcs.get(defined as usize)?;
        match *code.code.get(pc as usize)? {
            crate::code::Instr::Return => Some(ControlAt::Return),
            crate::code::Instr::LoopHeader { .. } => Some(ControlAt::LoopHeader),
            crate::code::Instr::Call { func, base } => {
                let callee = func.checked_sub(self.inner.num_imported_funcs)?;
                let callee = self.inner.funcs.get(callee as usize)?;
                Some(ControlAt::Call {
                    callee: func,
                    base,
                    frame_size: callee.frame_size,
                })
            }
            _ => None,
        }
    }

    /// Checks that code of function `func_index` may resume at `pc` inside `calls`
    /// (outermost first; none: in the function itself), as trace exits and side traces
    /// do: the function is defined here, each call is the one its caller's code makes
    /// there with that frame base, and `pc` is inside the innermost function's code.
    /// Returns where the frames involved end, in slots from the function's frame base (a
    /// callee's frame may reach past its caller's): no such code touches a slot there or
    /// beyond.
    pub fn check_place(
        &self,
        func_index: u32,
        pc: u32,
        calls: &[ir::InlinedCall],
    ) -> Result<u32, String> {
        let function = |f: u32| {
            let defined = f.checked_sub(self.inner.num_imported_funcs)?;
            self.inner.funcs.get(defined as usize)
        };
        let code = function(func_index)
            .ok_or_else(|| format!("function {func_index} is not defined in the module"))?;
        let callees = crate::tier::callees_of(code, calls, pc, function)?;
        let end = calls
            .iter()
            .zip(callees)
            .map(|(call, callee)| call.base.saturating_add(callee.frame_size))
            .fold(code.frame_size, u32::max);
        Ok(end)
    }

    /// The interpreter code a defined function lowered to, one instruction a line with
    /// its index and wasm offset: for debugging the lowering and for golden tests.
    pub fn lowered_code(&self, func_index: u32) -> Option<String> {
        let defined = func_index.checked_sub(self.inner.num_imported_funcs)?;
        let f = self.inner.funcs.get(defined as usize)?;
        let mut out = format!(
            "func {} params={} locals={} frame={}\n",
            f.func_index, f.num_params, f.num_locals, f.frame_size
        );
        for (pc, (instr, offset)) in f.code.iter().zip(&f.offsets).enumerate() {
            out.push_str(&format!("{pc:4} @{offset:#06x}  {instr:?}\n"));
        }
        Some(out)
    }
}
