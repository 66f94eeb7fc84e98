//! Many trace functions packed into one wasm module, with the imports of `abi.rs`, and the
//! checks every written module passes (wasmparser validation) plus its text form.

use std::collections::{BTreeMap, BTreeSet};

use ir::Trace;
use wasm_encoder::{
    CodeSection, EntityType, ExportKind, ExportSection, FunctionSection, GlobalType, ImportSection,
    IndirectNameMap, MemoryType, Module, NameMap, NameSection, TypeSection, ValType,
};
use wasmparser::{Validator, WasmFeatures};

use crate::abi::{
    frame_pages, global_import_name, trace_export_name, GuestInfo, FRAME_MEMORY, GUEST_MEMORY,
    GUEST_MODULE, KILN_MODULE,
};
use crate::error::EmitError;
use crate::function::{self, TraceNeeds};
use crate::region::Region;
use crate::tree::Tree;

/// The most pages a 32-bit memory can have.
const MAX_MEMORY_PAGES: u32 = 65536;

/// Which trace a function is: metadata only (it names the function in the module's name
/// section); both are emitted by the same code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitKind {
    /// The recorded trace, 1:1.
    Naive,
    /// An optimized candidate of a recorded trace.
    Optimized,
}

impl EmitKind {
    pub fn name(self) -> &'static str {
        match self {
            EmitKind::Naive => "naive",
            EmitKind::Optimized => "optimized",
        }
    }
}

/// The features emitted modules use: wasm 2.0 (sign extension, saturating truncation)
/// and multi-memory for the frame. Validation accepts nothing beyond them.
pub fn features() -> WasmFeatures {
    WasmFeatures::WASM2 | WasmFeatures::MULTI_MEMORY
}

/// Validates `bytes` as a module with [`features`].
pub fn validate(bytes: &[u8]) -> Result<(), EmitError> {
    Validator::new_with_features(features())
        .validate_all(bytes)
        .map(|_| ())
        .map_err(|e| EmitError::InvalidModule(e.to_string()))
}

/// The text form of a module, for people and golden files.
pub fn wat(bytes: &[u8]) -> Result<String, EmitError> {
    wasmprinter::print_bytes(bytes).map_err(|e| EmitError::Unprintable(e.to_string()))
}

/// What one function of the module is.
#[derive(Debug, Clone)]
enum Body {
    Trace(Trace, EmitKind),
    /// A trace tree (`tree.rs`): naive emission of a root and its side traces.
    Tree(Tree),
    /// An entry of region `region` (an index into `ModuleBuilder::regions`) at `member`.
    RegionEntry {
        region: usize,
        member: u32,
    },
}

/// Collects traces, then writes them as one module.
#[derive(Debug, Clone)]
pub struct ModuleBuilder {
    guest: GuestInfo,
    traces: Vec<(Body, TraceNeeds)>,
    /// Region bodies, functions of their own after every exported one.
    regions: Vec<Region>,
}

impl ModuleBuilder {
    /// A builder for modules running against `guest`.
    pub fn new(guest: GuestInfo) -> Result<ModuleBuilder, EmitError> {
        let (min, max) = (guest.memory_min_pages, guest.memory_max_pages);
        let max_ok = max.is_none_or(|max| min <= max && max <= MAX_MEMORY_PAGES);
        if min > MAX_MEMORY_PAGES || !max_ok {
            return Err(EmitError::BadMemoryLimits { min, max });
        }
        Ok(ModuleBuilder {
            guest,
            traces: Vec::new(),
            regions: Vec::new(),
        })
    }

    /// Adds a trace; it will be exported as `trace<i>` with the returned `i`.
    pub fn add(&mut self, trace: &Trace, kind: EmitKind) -> Result<u32, EmitError> {
        let index = self.traces.len() as u32;
        let needs = function::check(trace, index, &self.guest)?;
        self.traces.push((Body::Trace(trace.clone(), kind), needs));
        Ok(index)
    }

    /// Adds a trace tree, exported as `trace<i>` with the returned `i` like a trace; it
    /// follows the same ABI, its exits numbered as `Tree::exits` says.
    pub fn add_tree(&mut self, tree: &Tree) -> Result<u32, EmitError> {
        let index = self.traces.len() as u32;
        let needs = function::check_tree(tree, index, &self.guest)?;
        self.traces.push((Body::Tree(tree.clone()), needs));
        Ok(index)
    }

    /// Adds a region (`region.rs`): an exported function per entry, `trace<i>` with the
    /// returned `i`s in the order of `Region::entries`, each following a trace's ABI, the
    /// exits numbered as `Region::exits` says.
    pub fn add_region(&mut self, region: &Region) -> Result<Vec<u32>, EmitError> {
        let first = self.traces.len() as u32;
        let needs = function::check_region(region, first, &self.guest)?;
        let at = self.regions.len();
        self.regions.push(region.clone());
        Ok(region
            .entries
            .iter()
            .map(|&member| {
                let index = self.traces.len() as u32;
                let body = Body::RegionEntry { region: at, member };
                self.traces.push((body, needs.clone()));
                index
            })
            .collect())
    }

    /// The number of traces added.
    pub fn len(&self) -> usize {
        self.traces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// The module's bytes, validated.
    pub fn finish(&self) -> Result<Vec<u8>, EmitError> {
        let bytes = self.finish_for_compiler()?;
        validate(&bytes)?;
        Ok(bytes)
    }

    /// The module's bytes, not validated here: for a caller that hands them straight to a
    /// compiler that validates what it compiles (wasmtime's `Module::new` does; code that
    /// a code cache keeps was compiled from the same bytes). The runtime builds trees and
    /// regions while the program runs, and validating twice took about 6% of a short
    /// run's time (sort at scale 1, `perf record`).
    pub fn finish_for_compiler(&self) -> Result<Vec<u8>, EmitError> {
        let globals: BTreeSet<u32> = self
            .traces
            .iter()
            .flat_map(|(_, needs)| needs.globals.iter().copied())
            .collect();
        // Globals are imported in index order; no other globals exist, so the n-th
        // import is global n of the module.
        let global_index: BTreeMap<u32, u32> = globals
            .iter()
            .enumerate()
            .map(|(i, &g)| (g, i as u32))
            .collect();
        let frame_slots = self
            .traces
            .iter()
            .map(|(_, needs)| needs.frame_slots)
            .max()
            .unwrap_or(0);

        let mut module = Module::new();
        let mut types = TypeSection::new();
        types.ty().function([ValType::I32], [ValType::I32]);
        if !self.regions.is_empty() {
            // A region body: the frame and the member to run.
            types
                .ty()
                .function([ValType::I32, ValType::I32], [ValType::I32]);
        }
        module.section(&types);

        let mut imports = ImportSection::new();
        let memory = |minimum: u64, maximum: Option<u64>| MemoryType {
            minimum,
            maximum,
            memory64: false,
            shared: false,
            page_size_log2: None,
        };
        imports.import(
            GUEST_MODULE,
            GUEST_MEMORY,
            EntityType::Memory(memory(
                u64::from(self.guest.memory_min_pages),
                self.guest.memory_max_pages.map(u64::from),
            )),
        );
        imports.import(
            KILN_MODULE,
            FRAME_MEMORY,
            EntityType::Memory(memory(frame_pages(frame_slots), None)),
        );
        for &g in &globals {
            // `check` has made sure the guest describes every global a trace touches.
            let info = self.guest.globals[&g];
            let val_type = match info.ty {
                ir::Type::I32 => ValType::I32,
                ir::Type::I64 => ValType::I64,
                ir::Type::F32 => ValType::F32,
                ir::Type::F64 => ValType::F64,
            };
            imports.import(
                GUEST_MODULE,
                &global_import_name(g),
                EntityType::Global(GlobalType {
                    val_type,
                    mutable: info.mutable,
                    shared: false,
                }),
            );
        }
        module.section(&imports);

        let mut functions = FunctionSection::new();
        let mut exports = ExportSection::new();
        let mut code = CodeSection::new();
        let mut names = NameMap::new();
        // Region bodies follow the exported functions.
        let region_body = |r: usize| (self.traces.len() + r) as u32;
        for (i, (body, _)) in self.traces.iter().enumerate() {
            let i = i as u32;
            functions.function(0);
            exports.export(&trace_export_name(i), ExportKind::Func, i);
            let (function, kind) = match body {
                Body::Trace(trace, kind) => (
                    function::emit(trace, &self.guest, &global_index),
                    kind.name(),
                ),
                Body::Tree(tree) => (
                    function::emit_tree(tree, &self.guest, &global_index),
                    "tree",
                ),
                Body::RegionEntry { region, member } => (
                    function::emit_region_entry(region_body(*region), *member),
                    "entry",
                ),
            };
            code.function(&function);
            names.append(i, &format!("{}.{kind}", trace_export_name(i)));
        }
        for (r, region) in self.regions.iter().enumerate() {
            functions.function(1);
            code.function(&function::emit_region(region, &self.guest, &global_index));
            names.append(region_body(r), &format!("region{r}"));
        }
        module.section(&functions);
        module.section(&exports);
        module.section(&code);
        let mut name_section = NameSection::new();
        name_section.functions(&names);
        let mut locals = IndirectNameMap::new();
        let mut frame = NameMap::new();
        frame.append(0, "frame");
        for i in 0..self.traces.len() as u32 {
            locals.append(i, &frame);
        }
        let mut region_params = NameMap::new();
        region_params.append(0, "frame");
        region_params.append(1, "member");
        for r in 0..self.regions.len() {
            locals.append(region_body(r), &region_params);
        }
        name_section.locals(&locals);
        module.section(&name_section);

        Ok(module.finish())
    }
}
