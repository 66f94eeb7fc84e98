//! Writing a cache library: the trace functions through [`ModuleBuilder`], then the
//! manifest section, last, ending in a checksum of everything before it.

use sha2::{Digest, Sha256};

use ir::hash::TraceHash;
use ir::Trace;

use super::encoding::encode;
use super::error::CacheWriteError;
use super::manifest::{
    check_rules, check_trace, is_hex_hash, CachedTrace, Manifest, ProofVerdict, FORMAT_VERSION,
    KILN_VERSION, MANIFEST_SECTION,
};
use crate::abi::GuestInfo;
use crate::module::{EmitKind, ModuleBuilder};

/// What the cache says about a trace besides its code, filled by the caller who ran the
/// optimizer and the solver (emit knows neither).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRecord {
    pub func_index: u32,
    /// A loop trace's anchor, or the module offset of a side trace's first instruction.
    pub anchor_offset: u32,
    /// `None` for a loop trace; a side trace's place (`CachedTrace::side`).
    pub side: Option<ir::SideStart>,
    /// The recorded trace's content hash (`ir::hash::content_hash`), its corpus key.
    pub content_hash: TraceHash,
    /// The recorded trace's cost.
    pub cost_before: u64,
    /// The shipped trace's cost (`cost_before` when the recorded trace ships).
    pub cost_after: u64,
    /// `Proven`: the shipped trace is the proven candidate (emitted as optimized);
    /// `Unproven`: it is the recorded trace (emitted as naive).
    pub verdict: ProofVerdict,
    /// The solver asked, as it names itself; empty if none was.
    pub solver: String,
}

/// Collects traces with their records, then writes one cache library.
#[derive(Debug, Clone)]
pub struct CacheWriter {
    builder: ModuleBuilder,
    manifest: Manifest,
}

impl CacheWriter {
    /// A writer of a cache for the app whose wasm bytes hash (SHA-256) to `app_hash`
    /// (hex), running against `guest`.
    pub fn new(guest: GuestInfo, app_hash: &str) -> Result<CacheWriter, CacheWriteError> {
        let app_hash = app_hash.to_ascii_lowercase();
        if !is_hex_hash(&app_hash) {
            return Err(CacheWriteError::Rule {
                trace: None,
                problem: format!("the app hash {app_hash:?} is not 64 hex digits"),
            });
        }
        Ok(CacheWriter {
            builder: ModuleBuilder::new(guest)?,
            manifest: Manifest {
                format_version: FORMAT_VERSION,
                kiln_version: KILN_VERSION.to_string(),
                app_hash,
                traces: Vec::new(),
            },
        })
    }

    /// Adds `shipped`, the trace whose code the cache will hold (the proven candidate or
    /// the recorded trace, as `record.verdict` says); returns its export index.
    pub fn add(&mut self, shipped: &Trace, record: TraceRecord) -> Result<u32, CacheWriteError> {
        let index = self.builder.len() as u32;
        let emission = match record.verdict {
            ProofVerdict::Proven => EmitKind::Optimized,
            ProofVerdict::Unproven { .. } => EmitKind::Naive,
        };
        let (inputs, carried, globals_written, exits) = CachedTrace::maps_of(shipped);
        let entry = CachedTrace {
            func_index: record.func_index,
            anchor_offset: record.anchor_offset,
            side: record.side,
            content_hash: record.content_hash,
            emission,
            cost_before: record.cost_before,
            cost_after: record.cost_after,
            verdict: record.verdict,
            solver: record.solver,
            inputs,
            carried,
            globals_written,
            exits,
            shipped: shipped.clone(),
        };
        check_trace(&entry).map_err(|problem| CacheWriteError::Rule {
            trace: Some(index),
            problem,
        })?;
        self.builder.add(shipped, emission)?;
        self.manifest.traces.push(entry);
        Ok(index)
    }

    /// The number of traces added.
    pub fn len(&self) -> usize {
        self.manifest.traces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.manifest.traces.is_empty()
    }

    /// The manifest as it stands.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The cache library's bytes: a valid module whose last section is the manifest.
    pub fn finish(&self) -> Result<Vec<u8>, CacheWriteError> {
        check_rules(&self.manifest)
            .map_err(|(trace, problem)| CacheWriteError::Rule { trace, problem })?;
        let module = self.builder.finish()?;
        Ok(assemble_unchecked(&module, &self.manifest))
    }
}

/// `module` with `manifest` appended as its last section, checksum included, checking
/// nothing: [`CacheWriter::finish`] uses it after its checks. Public for tests of the
/// reader and for tools, which can make with it caches whose manifest and code disagree.
pub fn assemble_unchecked(module: &[u8], manifest: &Manifest) -> Vec<u8> {
    let body = encode(manifest);
    let name = MANIFEST_SECTION.as_bytes();
    let mut name_len = Vec::new();
    leb128(&mut name_len, name.len() as u64);
    let payload_len = name_len.len() + name.len() + body.len() + super::encoding::CHECKSUM_BYTES;
    let mut out = module.to_vec();
    out.push(CUSTOM_SECTION_ID);
    leb128(&mut out, payload_len as u64);
    out.extend(name_len);
    out.extend(name);
    out.extend(body);
    let checksum = Sha256::digest(&out);
    out.extend(checksum);
    out
}

/// A custom section's id in the wasm binary format.
const CUSTOM_SECTION_ID: u8 = 0;

fn leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
