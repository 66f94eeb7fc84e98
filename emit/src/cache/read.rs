//! Reading a cache library, trusting nothing: the file's structure, the manifest's
//! version, checksum, layout and rules, its origin (kiln version, app), the module's
//! validation, and that the module is exactly what the manifest describes under the
//! ABI of `abi.rs` (its imports, its exports, their types). `read_known` is the one
//! exception: for bytes a caller knows passed all of that before, it checks their form
//! and origin only.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use wasmparser::{Encoding, ExternalKind, FuncType, Parser, Payload, TypeRef, ValType};

use super::encoding::{self, TraceCheck, CHECKSUM_BYTES, VERSION_BYTES};
use super::error::CacheError;
use super::manifest::{
    check_rules, check_shipped, CachedTrace, Manifest, FORMAT_VERSION, KILN_VERSION,
    MANIFEST_SECTION,
};
use crate::abi::{
    frame_pages, global_import_name, trace_export_name, FRAME_MEMORY, GUEST_MEMORY, GUEST_MODULE,
    KILN_MODULE, TRACE_EXPORT_PREFIX,
};
use crate::abi::{GlobalInfo, GuestInfo};

/// The largest cache file a reader accepts. A trace function is a few kilobytes at most
/// (the recorder stops at 1000 instructions), so even [`super::MAX_TRACES`] traces fit
/// well below this; a larger file is not a cache kiln wrote.
pub const MAX_CACHE_BYTES: usize = 256 << 20;

/// A cache library read back and checked: the module to instantiate and its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheLibrary {
    bytes: Vec<u8>,
    manifest: Manifest,
}

/// Whose cache a reader expects.
enum Origin<'a> {
    /// This kiln's, for the app whose module hashes to this.
    App(&'a str),
    /// Anyone's: for looking at a cache, never for running it.
    Any,
}

impl CacheLibrary {
    /// Reads a cache that this kiln may run for the app whose wasm bytes hash (hex
    /// SHA-256) to `expected_app_hash`. Every check of this module applies.
    pub fn read(bytes: &[u8], expected_app_hash: &str) -> Result<CacheLibrary, CacheError> {
        read_with(bytes, Origin::App(expected_app_hash), Depth::Full)
    }

    /// Reads a cache that [`CacheLibrary::read`] accepted before, byte for byte, for the
    /// same app, in a kiln of this version: the caller knows it from a record only the
    /// user can write (the runtime's code cache, which holds native code on the same
    /// trust). Its structure, checksum, versions and app hash are checked again and its
    /// manifest decoded, but what the earlier read proved of these very bytes is not
    /// proved again: the module's validation, each trace's IR, the module against the
    /// manifest and the code against the traces. That is most of the reading: the lz77
    /// example's library of 112 traces read this way in 1.3–1.9 ms, against 5.7 ms whole
    /// (timed in a build not committed, five runs against one).
    pub fn read_known(bytes: &[u8], expected_app_hash: &str) -> Result<CacheLibrary, CacheError> {
        read_with(bytes, Origin::App(expected_app_hash), Depth::Known)
    }

    /// Reads a cache for inspection: every check but its origin (the kiln version that
    /// wrote it and its app), so that a cache of another app or kiln can be looked at.
    /// Not for running: use [`CacheLibrary::read`].
    pub fn read_for_inspection(bytes: &[u8]) -> Result<CacheLibrary, CacheError> {
        read_with(bytes, Origin::Any, Depth::Full)
    }

    /// The whole file: a valid wasm module, `trace<i>` described by `traces()[i]` (the
    /// manifest section is a custom section engines ignore).
    pub fn module_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The traces in export order.
    pub fn traces(&self) -> &[CachedTrace] {
        &self.manifest.traces
    }

    /// The whole file ([`CacheLibrary::module_bytes`]) and the traces in export order,
    /// taken apart for a loader that keeps both: neither is copied.
    pub fn into_parts(self) -> (Vec<u8>, Vec<CachedTrace>) {
        (self.bytes, self.manifest.traces)
    }
}

/// How much of a file a read proves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Depth {
    Full,
    /// Its form and origin only ([`CacheLibrary::read_known`]).
    Known,
}

fn read_with(bytes: &[u8], origin: Origin<'_>, depth: Depth) -> Result<CacheLibrary, CacheError> {
    if bytes.len() > MAX_CACHE_BYTES {
        return Err(CacheError::TooLarge { bytes: bytes.len() });
    }
    let (data_offset, data) = find_manifest(bytes)?;

    if data.len() < VERSION_BYTES {
        return Err(CacheError::BadManifest {
            offset: data_offset,
            expected: "the format version (4 bytes), but the manifest ends".to_string(),
        });
    }
    let version = encoding::format_version(data, data_offset)?;
    if version != FORMAT_VERSION {
        return Err(CacheError::FormatVersion {
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    if data.len() < VERSION_BYTES + CHECKSUM_BYTES {
        return Err(CacheError::BadManifest {
            offset: data_offset + VERSION_BYTES,
            expected: "the manifest and its checksum (32 bytes), but the manifest ends".to_string(),
        });
    }
    // The manifest is the file's last section (`find_manifest`), so its checksum is the
    // file's last 32 bytes and covers every byte before it.
    let checksum_at = bytes.len() - CHECKSUM_BYTES;
    if Sha256::digest(&bytes[..checksum_at]).as_slice() != &bytes[checksum_at..] {
        return Err(CacheError::Checksum {
            offset: checksum_at,
        });
    }
    let traces = match depth {
        Depth::Full => TraceCheck::Validate,
        Depth::Known => TraceCheck::KnownValid,
    };
    let manifest = encoding::decode(&data[..data.len() - CHECKSUM_BYTES], data_offset, traces)?;
    if depth == Depth::Full {
        check_rules(&manifest)
            .map_err(|(trace, problem)| CacheError::ManifestRule { trace, problem })?;
    }

    if let Origin::App(expected) = origin {
        if manifest.kiln_version != KILN_VERSION {
            return Err(CacheError::KilnVersion {
                found: manifest.kiln_version,
                expected: KILN_VERSION.to_string(),
            });
        }
        if manifest.app_hash != expected.to_ascii_lowercase() {
            return Err(CacheError::AppHash {
                found: manifest.app_hash,
                expected: expected.to_string(),
            });
        }
    }

    if depth == Depth::Full {
        crate::module::validate(bytes).map_err(|e| match e {
            crate::EmitError::InvalidModule(message) => CacheError::InvalidModule(message),
            other => CacheError::InvalidModule(other.to_string()),
        })?;
        let shape = ModuleShape::of(bytes)?;
        shape.check_against(&manifest)?;
        check_code(bytes, &manifest, &shape, matches!(origin, Origin::App(_)))?;
    }
    Ok(CacheLibrary {
        bytes: bytes.to_vec(),
        manifest,
    })
}

/// Checks each entry's shipped trace (valid, and its maps the entry's) and, with
/// `emission`, that function `i` of the module is, byte for byte, what `emit` makes of
/// entry `i`'s trace: the code that runs and the trace a runtime grows trees from are one
/// and the same. (Inspection leaves the emission out: a cache of another kiln build may
/// emit differently and is still worth looking at.)
fn check_code(
    bytes: &[u8],
    manifest: &Manifest,
    shape: &ModuleShape,
    emission: bool,
) -> Result<(), CacheError> {
    for (i, t) in manifest.traces.iter().enumerate() {
        check_shipped(t).map_err(|problem| CacheError::Disagrees {
            trace: Some(i as u32),
            problem,
        })?;
    }
    if !emission {
        return Ok(());
    }
    let mut guest = GuestInfo::default();
    let mut global_index = BTreeMap::new();
    for (position, &(g, ty, mutable, _)) in shape.globals.iter().enumerate() {
        let ty = match ty {
            ValType::I32 => ir::Type::I32,
            ValType::I64 => ir::Type::I64,
            ValType::F32 => ir::Type::F32,
            ValType::F64 => ir::Type::F64,
            // `check_against` has matched every global import to a trace's numeric use.
            _ => continue,
        };
        guest.globals.insert(g, GlobalInfo { ty, mutable });
        global_index.insert(g, position as u32);
    }
    let mut index = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        if let Payload::CodeSectionEntry(body) = payload.map_err(malformed)? {
            let range = body.range();
            let range = range.start as usize..range.end as usize;
            // `check_against` has matched the functions one to one with the entries.
            let Some(t) = manifest.traces.get(index) else {
                break;
            };
            // The imports may not be what the trace needs (a global imported at a
            // reference type and set by the trace): refused, not emitted.
            crate::function::check(&t.shipped, index as u32, &guest).map_err(|e| {
                CacheError::Disagrees {
                    trace: Some(index as u32),
                    problem: format!("its trace does not fit the module's imports: {e}"),
                }
            })?;
            let expected = crate::function::emit(&t.shipped, &guest, &global_index);
            if bytes[range.clone()] != expected.into_raw_body()[..] {
                return Err(CacheError::Disagrees {
                    trace: Some(index as u32),
                    problem: format!(
                        "its code (at offset {}) is not what its trace emits",
                        range.start
                    ),
                });
            }
            index += 1;
        }
    }
    Ok(())
}

fn malformed(e: wasmparser::BinaryReaderError) -> CacheError {
    CacheError::Malformed {
        offset: e.offset() as usize,
        message: e.message().to_string(),
    }
}

/// The manifest section's data and its file offset, having checked that the bytes are a
/// sequence of well-formed sections with exactly one manifest, last.
fn find_manifest(bytes: &[u8]) -> Result<(usize, &[u8]), CacheError> {
    let mut manifest: Option<(usize, &[u8])> = None;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(malformed)?;
        if let Payload::End(_) = payload {
            break;
        }
        let offset = section_offset(&payload);
        if manifest.is_some() {
            return Err(match &payload {
                Payload::CustomSection(c) if c.name() == MANIFEST_SECTION => {
                    CacheError::TwoManifests { offset }
                }
                _ => CacheError::ManifestNotLast { offset },
            });
        }
        match &payload {
            Payload::Version {
                encoding: Encoding::Component,
                ..
            } => {
                return Err(CacheError::UnexpectedSection {
                    offset: 0,
                    section: "component header (a cache is a core module)".to_string(),
                })
            }
            Payload::CustomSection(c) if c.name() == MANIFEST_SECTION => {
                manifest = Some((c.data_offset() as usize, c.data()));
            }
            _ => {}
        }
    }
    manifest.ok_or(CacheError::NoManifest)
}

fn section_offset(payload: &Payload<'_>) -> usize {
    match payload {
        Payload::CustomSection(c) => c.range().start as usize,
        Payload::CodeSectionEntry(body) => body.range().start as usize,
        other => other.as_section().map_or(0, |(_, r)| r.start as usize),
    }
}

/// What a validated module imports, defines and exports.
#[derive(Default)]
struct ModuleShape {
    /// The frame memory's minimum, in pages.
    frame_min_pages: Option<u64>,
    guest_memory: bool,
    /// Guest global index → (type, mutable, import offset), in import order.
    globals: Vec<(u32, ValType, bool, usize)>,
    types: Vec<FuncType>,
    /// Each defined function's type index.
    functions: Vec<u32>,
    /// (name, kind, index, offset).
    exports: Vec<(String, ExternalKind, u32, usize)>,
}

impl ModuleShape {
    /// Walks a module that validated; refuses every section kiln never writes.
    fn of(bytes: &[u8]) -> Result<ModuleShape, CacheError> {
        let mut shape = ModuleShape::default();
        let mut memories = 0u32;
        for payload in Parser::new(0).parse_all(bytes) {
            let payload = payload.map_err(malformed)?;
            let offset = section_offset(&payload);
            let unexpected = |section: &str| CacheError::UnexpectedSection {
                offset,
                section: section.to_string(),
            };
            match payload {
                Payload::Version { .. } | Payload::CodeSectionStart { .. } => {}
                Payload::CodeSectionEntry(_) | Payload::End(_) => {}
                Payload::TypeSection(reader) => {
                    for ty in reader.into_iter_err_on_gc_types() {
                        shape.types.push(ty.map_err(malformed)?);
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports_with_offsets() {
                        let (at, import) = import.map_err(malformed)?;
                        shape.import(at as usize, import, &mut memories)?;
                    }
                }
                Payload::FunctionSection(reader) => {
                    for ty in reader {
                        shape.functions.push(ty.map_err(malformed)?);
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader.into_iter_with_offsets() {
                        let (at, e) = export.map_err(malformed)?;
                        shape
                            .exports
                            .push((e.name.to_string(), e.kind, e.index, at as usize));
                    }
                }
                Payload::CustomSection(c) => {
                    if c.name() != "name" && c.name() != MANIFEST_SECTION {
                        return Err(unexpected(&format!("custom section `{}`", c.name())));
                    }
                }
                Payload::TableSection(_) => return Err(unexpected("table section")),
                Payload::MemorySection(_) => return Err(unexpected("memory section")),
                Payload::TagSection(_) => return Err(unexpected("tag section")),
                Payload::GlobalSection(_) => return Err(unexpected("global section")),
                // A start function or data segments would run or write guest memory the
                // moment the cache is instantiated.
                Payload::StartSection { .. } => return Err(unexpected("start section")),
                Payload::ElementSection(_) => return Err(unexpected("element section")),
                Payload::DataCountSection { .. } => return Err(unexpected("data count section")),
                Payload::DataSection(_) => return Err(unexpected("data section")),
                _ => return Err(unexpected("section")),
            }
        }
        Ok(shape)
    }

    fn import(
        &mut self,
        offset: usize,
        import: wasmparser::Import<'_>,
        memories: &mut u32,
    ) -> Result<(), CacheError> {
        let bad = |problem: String| CacheError::BadImport {
            offset,
            import: format!("\"{}\" \"{}\"", import.module, import.name),
            problem,
        };
        match import.ty {
            TypeRef::Memory(memory) => {
                let index = *memories;
                *memories += 1;
                match (index, import.module, import.name) {
                    (0, GUEST_MODULE, GUEST_MEMORY) => self.guest_memory = true,
                    (1, KILN_MODULE, FRAME_MEMORY) => self.frame_min_pages = Some(memory.initial),
                    _ => {
                        return Err(bad(format!(
                            "memory {index}: expected \"{GUEST_MODULE}\" \"{GUEST_MEMORY}\" as memory 0 and \"{KILN_MODULE}\" \"{FRAME_MEMORY}\" as memory 1, nothing else"
                        )))
                    }
                }
            }
            TypeRef::Global(global) => {
                let index = import
                    .name
                    .strip_prefix("global")
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|&n| global_import_name(n) == import.name);
                match (import.module, index) {
                    (GUEST_MODULE, Some(n)) => {
                        if let Some(&(last, ..)) = self.globals.last() {
                            if n <= last {
                                return Err(bad(format!(
                                    "guest globals are imported once each, by increasing index; global {n} follows global {last}"
                                )));
                            }
                        }
                        self.globals
                            .push((n, global.content_type, global.mutable, offset));
                    }
                    _ => {
                        return Err(bad(format!(
                            "a global import must be \"{GUEST_MODULE}\" \"global<N>\""
                        )))
                    }
                }
            }
            _ => {
                return Err(bad(
                    "a cache imports only the guest's memory and globals and the frame memory"
                        .to_string(),
                ))
            }
        }
        Ok(())
    }

    /// The module is what the manifest describes: one exported function of type
    /// `(i32) -> (i32)` per entry and nothing more, the imports its traces need.
    fn check_against(&self, manifest: &Manifest) -> Result<(), CacheError> {
        let traces = manifest.traces.len() as u32;
        // Exports: exactly `trace<i>` → function i, for each entry i.
        let mut exported = BTreeSet::new();
        for (name, kind, index, offset) in &self.exports {
            let i = name
                .strip_prefix(TRACE_EXPORT_PREFIX)
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|&i| trace_export_name(i) == *name && i < traces);
            let Some(i) = i else {
                return Err(CacheError::ExportWithoutEntry { name: name.clone() });
            };
            if *kind != ExternalKind::Func || *index != i {
                return Err(CacheError::Disagrees {
                    trace: Some(i),
                    problem: format!(
                        "export `{name}` at offset {offset:#x} is {kind:?} {index}, expected function {i}"
                    ),
                });
            }
            exported.insert(i);
        }
        if let Some(i) = (0..traces).find(|i| !exported.contains(i)) {
            return Err(CacheError::EntryWithoutExport { trace: i });
        }
        if self.functions.len() as u32 != traces {
            return Err(CacheError::Disagrees {
                trace: None,
                problem: format!(
                    "the module defines {} functions for {traces} traces",
                    self.functions.len()
                ),
            });
        }
        for (i, &ty) in self.functions.iter().enumerate() {
            // Validation has checked the type index.
            let Some(ty) = self.types.get(ty as usize) else {
                continue;
            };
            if ty.params() != [ValType::I32] || ty.results() != [ValType::I32] {
                return Err(CacheError::WrongFunctionType {
                    trace: i as u32,
                    found: signature(ty),
                });
            }
        }

        if !self.guest_memory {
            return Err(CacheError::Disagrees {
                trace: None,
                problem: format!(
                    "the module does not import \"{GUEST_MODULE}\" \"{GUEST_MEMORY}\""
                ),
            });
        }
        let Some(frame_pages_imported) = self.frame_min_pages else {
            return Err(CacheError::Disagrees {
                trace: None,
                problem: format!("the module does not import \"{KILN_MODULE}\" \"{FRAME_MEMORY}\""),
            });
        };
        for (i, t) in manifest.traces.iter().enumerate() {
            let needed = frame_pages(t.frame_slots());
            if needed > frame_pages_imported {
                return Err(CacheError::Disagrees {
                    trace: Some(i as u32),
                    problem: format!(
                        "it names frame slot {}, but the frame memory's minimum is {frame_pages_imported} pages, not the {needed} it needs",
                        t.frame_slots() - 1
                    ),
                });
            }
        }

        // Globals: exactly those some trace touches, of the types the traces read.
        let imported: BTreeMap<u32, (ValType, bool, usize)> = self
            .globals
            .iter()
            .map(|&(n, ty, mutable, offset)| (n, (ty, mutable, offset)))
            .collect();
        let mut touched = BTreeSet::new();
        for (i, t) in manifest.traces.iter().enumerate() {
            let disagrees = |problem: String| CacheError::Disagrees {
                trace: Some(i as u32),
                problem,
            };
            for g in t.globals_touched() {
                touched.insert(g);
                if !imported.contains_key(&g) {
                    return Err(disagrees(format!(
                        "it touches guest global {g}, which the module does not import"
                    )));
                }
            }
            for (g, ty) in t.globals_read() {
                let Some(&(imported_ty, ..)) = imported.get(&g) else {
                    continue; // reported above: every global read is touched
                };
                if imported_ty != val_type(ty) {
                    return Err(disagrees(format!(
                        "it reads guest global {g} as {ty}, but the module imports it as {imported_ty}"
                    )));
                }
            }
            for &g in &t.globals_written {
                if imported.get(&g).is_some_and(|&(_, mutable, _)| !mutable) {
                    return Err(disagrees(format!(
                        "it writes guest global {g}, but the module imports it immutable"
                    )));
                }
            }
        }
        if let Some((&g, &(_, _, offset))) = imported.iter().find(|(g, _)| !touched.contains(g)) {
            return Err(CacheError::BadImport {
                offset,
                import: format!("\"{GUEST_MODULE}\" \"{}\"", global_import_name(g)),
                problem: "no trace of the manifest touches this global".to_string(),
            });
        }
        Ok(())
    }
}

fn val_type(ty: ir::Type) -> ValType {
    match ty {
        ir::Type::I32 => ValType::I32,
        ir::Type::I64 => ValType::I64,
        ir::Type::F32 => ValType::F32,
        ir::Type::F64 => ValType::F64,
    }
}

fn signature(ty: &FuncType) -> String {
    let list = |types: &[ValType]| {
        types
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", list(ty.params()), list(ty.results()))
}
