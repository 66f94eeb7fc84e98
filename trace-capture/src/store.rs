//! The store: every function, table, memory, global and instance the interpreter knows,
//! addressed by index as in the spec's store. Modules instantiated into one store can
//! import from each other; host functions live here too.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use crate::code::CompiledFunc;
use crate::linear::LinearBytes;
use crate::module::AnchorKind;
use crate::module::{ConstExpr, ElemMode, ExportKind, Module, ModuleInner};
use crate::record::{RecordConfig, RecordStats, RecordedTrace};
use crate::tier::TraceTier;
use crate::trap::{Trap, TrapKind};
use crate::types::{
    Extern, ExternType, FuncAddr, FuncType, GlobalAddr, GlobalType, InstanceId, Limits, MemAddr,
    MemoryType, TableAddr, TableType, Value,
};
use crate::value_stack::ValueStack;

/// Bytes in a WebAssembly page.
pub const PAGE_SIZE: usize = 65536;
/// Pages a 32-bit memory can address at most (4 GiB).
pub const MAX_PAGES: u32 = 65536;
/// Elements a table may hold. The spec allows 2^32; kiln caps tables at ten million
/// entries (80 MB of slots) so that a guest's `table.grow` cannot exhaust the host.
pub const MAX_TABLE_ELEMENTS: u32 = 10_000_000;

/// A host function: gets the caller (for the caller's memory) and the arguments.
pub type HostFunc = dyn FnMut(&mut Caller<'_>, &[Value]) -> Result<Vec<Value>, Trap>;

pub(crate) enum FuncKind {
    Wasm {
        instance: u32,
        code: Arc<CompiledFunc>,
    },
    Host(Rc<RefCell<Box<HostFunc>>>),
}

pub(crate) struct FuncInst {
    /// The function's type, interned in `Store::types`.
    pub type_id: u32,
    pub kind: FuncKind,
}

pub(crate) struct TableInst {
    pub ty: TableType,
    /// Slots: 0 is null, otherwise a reference plus one.
    pub elements: Vec<u64>,
}

pub(crate) struct MemInst {
    pub max: Option<u32>,
    /// The bytes, at an address that never moves (`linear.rs`): higher tiers share them.
    pub data: LinearBytes,
}

impl MemInst {
    pub fn pages(&self) -> u32 {
        (self.data.len() / PAGE_SIZE) as u32
    }

    /// `memory.grow`: the old size in pages, or -1 (as u32) if the memory cannot grow.
    pub fn grow(&mut self, delta: u32) -> u32 {
        let old = self.pages();
        let max = self.max.unwrap_or(MAX_PAGES).min(MAX_PAGES);
        match old.checked_add(delta) {
            Some(new) if new <= max => match self.data.grow_to(new as usize * PAGE_SIZE) {
                Ok(()) => old,
                // The host refused the pages: wasm's `memory.grow` may fail for any reason.
                Err(_) => u32::MAX,
            },
            _ => u32::MAX,
        }
    }
}

pub(crate) struct GlobalInst {
    pub ty: GlobalType,
    pub value: u64,
}

/// An instance: the module's index spaces resolved to store addresses, plus its own
/// mutable state (dropped segments, anchor counters).
pub(crate) struct InstanceData {
    pub module: Arc<ModuleInner>,
    pub funcs: Vec<u32>,
    pub tables: Vec<u32>,
    pub memories: Vec<u32>,
    pub globals: Vec<u32>,
    /// Element segments as slots; a dropped segment is empty.
    pub elems: Vec<Vec<u64>>,
    /// Whether each data segment has been dropped.
    pub data_dropped: Vec<bool>,
    /// This instance's index in the store.
    pub id: u32,
    /// Counters per anchor id of the module.
    pub anchors: Vec<AnchorCounter>,
    /// Store type id of each of the module's type indices, for `call_indirect` checks.
    pub type_ids: Vec<u32>,
}

/// An anchor's counter and its recording state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnchorCounter {
    pub hits: u64,
    /// Stop the loop once `hits` reaches this: to record the next pass, or (0) every time
    /// when trace code is attached. `u64::MAX` when recording is off, the anchor has its
    /// trace, or it has been given up on.
    pub record_at: u64,
    /// Failed recordings so far.
    pub aborts: u32,
    /// A higher tier has code for this anchor (`tier.rs`).
    pub attached: bool,
}

/// Recording configuration, results and counters of a store.
pub(crate) struct RecordingState {
    pub config: RecordConfig,
    pub traces: Vec<RecordedTrace>,
    pub stats: RecordStats,
}

/// Why instantiation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstantiateError {
    /// An import is missing or has the wrong type.
    Link(String),
    /// Initialization (element or data segments, the start function) trapped.
    Trap(Trap),
    /// The host could not provide what the module needs (a memory's address space).
    Resource(String),
}

impl fmt::Display for InstantiateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstantiateError::Link(msg) => f.write_str(msg),
            InstantiateError::Trap(trap) => write!(f, "instantiation trapped: {trap}"),
            InstantiateError::Resource(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for InstantiateError {}

/// Structural type identity for `call_indirect` across modules.
#[derive(Default)]
pub(crate) struct TypeRegistry {
    types: Vec<FuncType>,
    ids: HashMap<FuncType, u32>,
}

impl TypeRegistry {
    pub fn intern(&mut self, ty: &FuncType) -> u32 {
        if let Some(&id) = self.ids.get(ty) {
            return id;
        }
        let id = self.types.len() as u32;
        self.types.push(ty.clone());
        self.ids.insert(ty.clone(), id);
        id
    }

    pub fn get(&self, id: u32) -> &FuncType {
        &self.types[id as usize]
    }
}

/// Limits of the interpreter's own stacks. Deep guest recursion hits these and traps with
/// "call stack exhausted" instead of crashing kiln.
#[derive(Debug, Clone, Copy)]
pub struct StackLimits {
    /// Nested wasm calls. Clang's default wasm stack (64 KiB of linear memory) runs out
    /// long before this for C programs; the spec tests' infinite recursions hit it.
    pub max_call_depth: usize,
    /// 64-bit slots of the value stack, shared by all frames (8 MiB by default; at most
    /// `value_stack::MAX_VALUE_SLOTS`, what a 32-bit memory holds, since a higher tier
    /// views the stack as one).
    pub max_value_slots: usize,
}

impl Default for StackLimits {
    fn default() -> StackLimits {
        StackLimits {
            max_call_depth: 50_000,
            max_value_slots: 1 << 20,
        }
    }
}

/// Everything a set of instances shares, and the interpreter's stacks.
pub struct Store {
    pub(crate) types: TypeRegistry,
    pub(crate) funcs: Vec<FuncInst>,
    pub(crate) tables: Vec<TableInst>,
    pub(crate) memories: Vec<MemInst>,
    pub(crate) globals: Vec<GlobalInst>,
    pub(crate) instances: Vec<InstanceData>,
    pub(crate) limits: StackLimits,
    /// The value stack; allocated zeroed at full size once, so the OS maps it lazily, at
    /// an address a higher tier can view (`value_stack.rs`).
    pub(crate) stack: ValueStack,
    /// Trace recording, when enabled.
    pub(crate) recording: Option<RecordingState>,
    /// The higher tier that runs trace code at attached anchors.
    pub(crate) tier: Option<Box<dyn TraceTier>>,
    /// Whether to count dispatched instructions, and the count.
    pub(crate) count_dispatches: bool,
    pub(crate) dispatched: u64,
}

impl Default for Store {
    fn default() -> Store {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Store {
        Store::with_limits(StackLimits::default())
    }

    pub fn with_limits(limits: StackLimits) -> Store {
        Store {
            types: TypeRegistry::default(),
            funcs: Vec::new(),
            tables: Vec::new(),
            memories: Vec::new(),
            globals: Vec::new(),
            instances: Vec::new(),
            limits,
            stack: ValueStack::new(limits.max_value_slots),
            recording: None,
            tier: None,
            count_dispatches: false,
            dispatched: 0,
        }
    }

    /// Adds a host function.
    pub fn host_func(
        &mut self,
        ty: FuncType,
        f: impl FnMut(&mut Caller<'_>, &[Value]) -> Result<Vec<Value>, Trap> + 'static,
    ) -> FuncAddr {
        let type_id = self.types.intern(&ty);
        self.funcs.push(FuncInst {
            type_id,
            kind: FuncKind::Host(Rc::new(RefCell::new(Box::new(f)))),
        });
        FuncAddr(self.funcs.len() as u32 - 1)
    }

    /// A new memory of type `ty`; fails only if the host cannot reserve its address
    /// space (see `linear.rs`).
    pub fn alloc_memory(&mut self, ty: MemoryType) -> Result<MemAddr, String> {
        self.memories.push(MemInst {
            max: ty.limits.max,
            data: LinearBytes::new(ty.limits.min as usize * PAGE_SIZE)?,
        });
        Ok(MemAddr(self.memories.len() as u32 - 1))
    }

    pub fn alloc_table(&mut self, ty: TableType, init: Value) -> TableAddr {
        self.tables.push(TableInst {
            ty,
            elements: vec![init.to_slot(); ty.limits.min as usize],
        });
        TableAddr(self.tables.len() as u32 - 1)
    }

    pub fn alloc_global(&mut self, ty: GlobalType, init: Value) -> GlobalAddr {
        self.globals.push(GlobalInst {
            ty,
            value: init.to_slot(),
        });
        GlobalAddr(self.globals.len() as u32 - 1)
    }

    pub fn func_type(&self, f: FuncAddr) -> &FuncType {
        self.types.get(self.funcs[f.0 as usize].type_id)
    }

    /// The current type of an extern (tables and memories report their current size as
    /// the minimum, as import matching requires).
    pub fn extern_type(&self, e: Extern) -> ExternType {
        match e {
            Extern::Func(f) => ExternType::Func(self.func_type(f).clone()),
            Extern::Table(t) => {
                let t = &self.tables[t.0 as usize];
                ExternType::Table(TableType {
                    elem: t.ty.elem,
                    limits: Limits {
                        min: t.elements.len() as u32,
                        max: t.ty.limits.max,
                    },
                })
            }
            Extern::Memory(m) => {
                let m = &self.memories[m.0 as usize];
                ExternType::Memory(MemoryType {
                    limits: Limits {
                        min: m.pages(),
                        max: m.max,
                    },
                })
            }
            Extern::Global(g) => ExternType::Global(self.globals[g.0 as usize].ty),
        }
    }

    pub fn global_value(&self, g: GlobalAddr) -> Value {
        let g = &self.globals[g.0 as usize];
        Value::from_slot(g.value, g.ty.ty)
    }

    pub fn memory(&self, m: MemAddr) -> &[u8] {
        &self.memories[m.0 as usize].data
    }

    pub fn memory_mut(&mut self, m: MemAddr) -> &mut [u8] {
        &mut self.memories[m.0 as usize].data
    }

    /// The export `name` of an instance.
    pub fn export(&self, instance: InstanceId, name: &str) -> Option<Extern> {
        let inst = &self.instances[instance.0 as usize];
        let export = inst.module.exports.iter().find(|e| e.name == name)?;
        let i = export.index as usize;
        Some(match export.kind {
            ExportKind::Func => Extern::Func(FuncAddr(inst.funcs[i])),
            ExportKind::Table => Extern::Table(TableAddr(inst.tables[i])),
            ExportKind::Memory => Extern::Memory(MemAddr(inst.memories[i])),
            ExportKind::Global => Extern::Global(GlobalAddr(inst.globals[i])),
        })
    }

    /// The module an instance was made from.
    pub fn instance_module(&self, instance: InstanceId) -> Module {
        Module {
            inner: self.instances[instance.0 as usize].module.clone(),
        }
    }

    /// Hit counts of an instance's anchors, indexed like [`Module::anchors`].
    pub fn anchor_hits(&self, instance: InstanceId) -> Vec<u64> {
        self.instances[instance.0 as usize]
            .anchors
            .iter()
            .map(|a| a.hits)
            .collect()
    }

    /// The value stack's bytes at their fixed address, for a higher tier to view the
    /// frames in place (slot `i` at byte `value_stack::LEADING_BYTES + 8 * i`); `None` if
    /// the stack could not be placed so, or while a call has taken it.
    pub fn value_stack_bytes(&self) -> Option<&LinearBytes> {
        self.stack.bytes()
    }

    /// Memory 0 of `instance`, if it has one: its bytes at their fixed address, for a
    /// higher tier to share.
    pub fn instance_memory(&self, instance: InstanceId) -> Option<&LinearBytes> {
        let inst = self.instances.get(instance.0 as usize)?;
        let mem = *inst.memories.first()?;
        Some(&self.memories[mem as usize].data)
    }

    /// Global `index` (module index space) of `instance`, raw.
    pub fn instance_global(&self, instance: InstanceId, index: u32) -> Option<u64> {
        let inst = self.instances.get(instance.0 as usize)?;
        let addr = *inst.globals.get(index as usize)?;
        Some(self.globals[addr as usize].value)
    }

    /// Installs the tier that runs trace code at attached anchors (`tier.rs`).
    pub fn set_tier(&mut self, tier: Box<dyn TraceTier>) {
        self.tier = Some(tier);
    }

    /// The side traces the installed tier runs (`TraceTier::side_traces`); none without
    /// a tier.
    pub fn tier_side_traces(&self) -> Vec<crate::SideTraceRecord> {
        self.tier
            .as_ref()
            .map(|t| t.side_traces())
            .unwrap_or_default()
    }

    /// The installed tier's passes through loop anchors (`TraceTier::loop_passes`).
    pub fn tier_loop_passes(&self) -> Vec<((u32, u32), u64)> {
        self.tier
            .as_ref()
            .map(|t| t.loop_passes())
            .unwrap_or_default()
    }

    /// The installed tier's profile of its trace code (`TraceTier::report`).
    pub fn tier_report(&self) -> Vec<crate::TraceReport> {
        self.tier.as_ref().map(|t| t.report()).unwrap_or_default()
    }

    /// Removes the tier (attached anchors then just run in the interpreter).
    pub fn take_tier(&mut self) -> Option<Box<dyn TraceTier>> {
        self.tier.take()
    }

    /// Marks loop anchor `anchor` (an index into `Module::anchors`) of `instance` as
    /// having trace code: from now on every pass through its header goes to the tier.
    /// `false` if there is no such loop anchor.
    pub fn attach_trace(&mut self, instance: InstanceId, anchor: u32) -> bool {
        let Some(inst) = self.instances.get_mut(instance.0 as usize) else {
            return false;
        };
        let is_loop = inst
            .module
            .anchors
            .get(anchor as usize)
            .is_some_and(|a| a.kind == AnchorKind::Loop);
        match inst.anchors.get_mut(anchor as usize) {
            Some(counter) if is_loop => {
                counter.attached = true;
                counter.record_at = 0;
                true
            }
            _ => false,
        }
    }

    /// Turns on trace recording: from now on an anchor whose counter reaches
    /// `config.hot_threshold` has its next pass recorded.
    pub fn enable_recording(&mut self, config: RecordConfig) {
        for inst in &mut self.instances {
            for a in inst.anchors.iter_mut().filter(|a| !a.attached) {
                a.record_at = a.hits.max(config.hot_threshold);
            }
        }
        self.recording = Some(RecordingState {
            config,
            traces: Vec::new(),
            stats: RecordStats::default(),
        });
    }

    /// Counts every interpreter instruction dispatched from now on (slower; for
    /// measurements only). Instructions run while a trace is recorded are not counted.
    pub fn count_dispatches(&mut self, on: bool) {
        self.count_dispatches = on;
    }

    /// Interpreter instructions dispatched while counting was on.
    pub fn dispatched(&self) -> u64 {
        self.dispatched
    }

    /// The traces recorded so far (handed over once).
    pub fn take_recorded(&mut self) -> Vec<RecordedTrace> {
        self.recording
            .as_mut()
            .map(|r| std::mem::take(&mut r.traces))
            .unwrap_or_default()
    }

    /// The recorder's counters (all zero when recording is off).
    pub fn record_stats(&self) -> RecordStats {
        self.recording
            .as_ref()
            .map(|r| r.stats.clone())
            .unwrap_or_default()
    }

    /// Calls an exported function by name.
    pub fn call_export(
        &mut self,
        instance: InstanceId,
        name: &str,
        args: &[Value],
    ) -> Result<Vec<Value>, Trap> {
        match self.export(instance, name) {
            Some(Extern::Func(f)) => self.invoke(f, args),
            _ => Err(Trap::new(TrapKind::Host(format!(
                "no exported function named `{name}`"
            )))),
        }
    }

    /// Instantiates `module` with `imports` given in the order of `module.imports()`.
    ///
    /// Follows the spec's order: check imports, allocate, then run the active element and
    /// data segments in order, then the start function. A trap in initialization leaves
    /// earlier segment writes to imported tables and memories in place, as the spec says.
    pub fn instantiate(
        &mut self,
        module: &Module,
        imports: &[Extern],
    ) -> Result<InstanceId, InstantiateError> {
        let m = &module.inner;
        if imports.len() != m.imports.len() {
            return Err(InstantiateError::Link(format!(
                "module needs {} imports, {} given",
                m.imports.len(),
                imports.len()
            )));
        }
        let mut inst = InstanceData {
            module: m.clone(),
            funcs: Vec::new(),
            tables: Vec::new(),
            memories: Vec::new(),
            globals: Vec::new(),
            elems: Vec::new(),
            data_dropped: vec![false; m.datas.len()],
            id: self.instances.len() as u32,
            anchors: vec![
                AnchorCounter {
                    hits: 0,
                    record_at: self
                        .recording
                        .as_ref()
                        .map_or(u64::MAX, |r| r.config.hot_threshold),
                    aborts: 0,
                    attached: false,
                };
                m.anchors.len()
            ],
            type_ids: m.types.iter().map(|t| self.types.intern(t)).collect(),
        };
        for (import, &ext) in m.imports.iter().zip(imports) {
            let have = self.extern_type(ext);
            if !extern_matches(&have, &import.ty) {
                return Err(InstantiateError::Link(format!(
                    "incompatible import type for `{}`.`{}`: expected {} {}, got {} {}",
                    import.module,
                    import.name,
                    import.ty.kind_name(),
                    describe(&import.ty),
                    have.kind_name(),
                    describe(&have)
                )));
            }
            match ext {
                Extern::Func(f) => inst.funcs.push(f.0),
                Extern::Table(t) => inst.tables.push(t.0),
                Extern::Memory(mem) => inst.memories.push(mem.0),
                Extern::Global(g) => inst.globals.push(g.0),
            }
        }
        let id = self.instances.len() as u32;
        for (i, code) in m.funcs.iter().enumerate() {
            let ty = &m.types[m.func_types[m.num_imported_funcs as usize + i] as usize];
            let type_id = self.types.intern(ty);
            inst.funcs.push(self.funcs.len() as u32);
            self.funcs.push(FuncInst {
                type_id,
                kind: FuncKind::Wasm {
                    instance: id,
                    code: code.clone(),
                },
            });
        }
        for ty in &m.tables[m.num_imported_tables as usize..] {
            inst.tables
                .push(self.alloc_table(*ty, Value::FuncRef(None)).0);
        }
        for ty in &m.memories[m.num_imported_memories as usize..] {
            let mem = self.alloc_memory(*ty).map_err(InstantiateError::Resource)?;
            inst.memories.push(mem.0);
        }
        for (ty, init) in m.globals[m.num_imported_globals as usize..]
            .iter()
            .zip(&m.global_inits)
        {
            let value = self.eval_const(&inst, *init);
            self.globals.push(GlobalInst { ty: *ty, value });
            inst.globals.push(self.globals.len() as u32 - 1);
        }
        inst.elems = m
            .elems
            .iter()
            .map(|seg| {
                seg.items
                    .iter()
                    .map(|item| self.eval_const(&inst, *item))
                    .collect()
            })
            .collect();
        self.instances.push(inst);

        // Active and declared element segments are dropped once used (spec 4.5.4).
        for (i, seg) in m.elems.iter().enumerate() {
            match &seg.mode {
                ElemMode::Active { table, offset } => {
                    let inst = &self.instances[id as usize];
                    let offset = self.eval_const(inst, *offset) as u32;
                    let table = inst.tables[*table as usize];
                    let items = std::mem::take(&mut self.instances[id as usize].elems[i]);
                    let dst = &mut self.tables[table as usize].elements;
                    let end = offset as u64 + items.len() as u64;
                    if end > dst.len() as u64 {
                        return Err(InstantiateError::Trap(TrapKind::TableOutOfBounds.into()));
                    }
                    dst[offset as usize..end as usize].copy_from_slice(&items);
                }
                ElemMode::Declared => self.instances[id as usize].elems[i].clear(),
                ElemMode::Passive => {}
            }
        }
        for (i, seg) in m.datas.iter().enumerate() {
            if let Some(offset) = seg.offset {
                let inst = &self.instances[id as usize];
                let offset = self.eval_const(inst, offset) as u32;
                let mem = inst.memories[0];
                let data = &mut self.memories[mem as usize].data;
                let end = offset as u64 + seg.bytes.len() as u64;
                if end > data.len() as u64 {
                    return Err(InstantiateError::Trap(TrapKind::MemoryOutOfBounds.into()));
                }
                data[offset as usize..end as usize].copy_from_slice(&seg.bytes);
                self.instances[id as usize].data_dropped[i] = true;
            }
        }
        if let Some(start) = m.start {
            let f = FuncAddr(self.instances[id as usize].funcs[start as usize]);
            self.invoke(f, &[]).map_err(InstantiateError::Trap)?;
        }
        Ok(InstanceId(id))
    }

    fn eval_const(&self, inst: &InstanceData, expr: ConstExpr) -> u64 {
        match expr {
            ConstExpr::Slot(v) => v,
            ConstExpr::RefFunc(f) => inst.funcs[f as usize] as u64 + 1,
            ConstExpr::GlobalGet(g) => self.globals[inst.globals[g as usize] as usize].value,
        }
    }
}

fn extern_matches(have: &ExternType, want: &ExternType) -> bool {
    match (have, want) {
        (ExternType::Func(a), ExternType::Func(b)) => a == b,
        (ExternType::Table(a), ExternType::Table(b)) => {
            a.elem == b.elem && a.limits.matches(&b.limits)
        }
        (ExternType::Memory(a), ExternType::Memory(b)) => a.limits.matches(&b.limits),
        (ExternType::Global(a), ExternType::Global(b)) => a == b,
        _ => false,
    }
}

fn describe(ty: &ExternType) -> String {
    let limits = |l: &Limits| match l.max {
        Some(max) => format!("{}..{}", l.min, max),
        None => format!("{}..", l.min),
    };
    match ty {
        ExternType::Func(f) => f.to_string(),
        ExternType::Table(t) => format!("{} {}", t.elem, limits(&t.limits)),
        ExternType::Memory(m) => limits(&m.limits),
        ExternType::Global(g) => {
            format!("{}{}", if g.mutable { "mut " } else { "" }, g.ty)
        }
    }
}

/// What a host function sees of its caller.
pub struct Caller<'a> {
    pub(crate) store: &'a mut Store,
    /// The calling wasm instance, if the host function was called from wasm.
    pub(crate) instance: Option<u32>,
}

impl Caller<'_> {
    /// Memory 0 of the calling instance, if it has one.
    pub fn memory(&mut self) -> Option<&mut [u8]> {
        let inst = &self.store.instances[self.instance? as usize];
        let mem = *inst.memories.first()?;
        Some(&mut self.store.memories[mem as usize].data)
    }
}

/// Resolves imports by module and field name.
#[derive(Default, Clone)]
pub struct Linker {
    defs: HashMap<(String, String), Extern>,
}

impl Linker {
    pub fn new() -> Linker {
        Linker::default()
    }

    pub fn define(&mut self, module: &str, name: &str, ext: Extern) -> &mut Linker {
        self.defs
            .insert((module.to_string(), name.to_string()), ext);
        self
    }

    /// Defines every export of `instance` under the module name `module`.
    pub fn define_instance(&mut self, store: &Store, module: &str, instance: InstanceId) {
        let inst = &store.instances[instance.0 as usize];
        for export in &inst.module.exports {
            if let Some(ext) = store.export(instance, &export.name) {
                self.define(module, &export.name, ext);
            }
        }
    }

    pub fn get(&self, module: &str, name: &str) -> Option<Extern> {
        self.defs
            .get(&(module.to_string(), name.to_string()))
            .copied()
    }

    /// Resolves the module's imports by name and instantiates it. A missing import is an
    /// error naming it.
    pub fn instantiate(
        &self,
        store: &mut Store,
        module: &Module,
    ) -> Result<InstanceId, InstantiateError> {
        let imports = module
            .imports()
            .iter()
            .map(|import| {
                self.get(&import.module, &import.name).ok_or_else(|| {
                    InstantiateError::Link(format!(
                        "unknown import: `{}`.`{}` ({} {}) is not provided",
                        import.module,
                        import.name,
                        import.ty.kind_name(),
                        describe(&import.ty)
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        store.instantiate(module, &imports)
    }
}
