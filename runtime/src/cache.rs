//! Loading a cache library (`emit::cache`) into a [`WasmtimeTier`].
//!
//! The reader trusts nothing it reads (`emit::cache::CacheLibrary::read`: checksum,
//! versions, app hash, layout, validation, the module against the manifest); what it
//! cannot know without the app — that each anchor exists and each exit pc fits its
//! function — is checked here (anchors) and by the tier at a trace's first call (pcs and
//! slots). A cache that fails any check is refused whole, with the reason: the caller
//! warns and runs on without it.

use std::collections::HashMap;
use std::rc::Rc;

use emit::cache::{CacheLibrary, MAX_CACHE_BYTES};
use trace_capture::{AnchorKind, Module};

use crate::trace_code::{exit_calls, exit_expects, Touches, TraceCode, TraceMeta};
use crate::wasm_tier::WasmtimeTier;

/// Loads the cache library `bytes` (for the app whose wasm hashes to `app_hash`, hex
/// SHA-256) into `tier`; returns the loop anchor ids of `module` that now have code.
pub fn load_cache(
    tier: &mut WasmtimeTier,
    bytes: &[u8],
    app_hash: &str,
    module: &Module,
) -> Result<Vec<u32>, String> {
    if bytes.len() > MAX_CACHE_BYTES {
        return Err(format!(
            "{} bytes, more than a cache library may hold ({MAX_CACHE_BYTES})",
            bytes.len()
        ));
    }
    let library = CacheLibrary::read(bytes, app_hash).map_err(|e| e.to_string())?;
    let anchors: HashMap<(u32, u32), u32> = module
        .anchors()
        .iter()
        .enumerate()
        .filter(|(_, a)| a.kind == AnchorKind::Loop)
        .map(|(id, a)| ((a.func_index, a.offset), id as u32))
        .collect();
    let mut metas = Vec::new();
    let mut ids = Vec::new();
    for (i, t) in library.traces().iter().enumerate() {
        let Some(&id) = anchors.get(&(t.func_index, t.anchor_offset)) else {
            return Err(format!(
                "trace {i} is for a loop at function {} offset {:#x}, which the app does not have",
                t.func_index, t.anchor_offset
            ));
        };
        ids.push(id);
        metas.push(TraceMeta {
            func_index: t.func_index,
            anchor_offset: t.anchor_offset,
            exits: t.exit_pcs(),
            exit_calls: exit_calls(t.shipped.exits().map(|e| (e.id, e))),
            exit_expects: exit_expects([&t.shipped], t.shipped.exits().map(|e| (e.id, e))),
            touches: Some(Touches {
                reads: t.slots_read(),
                writes: t.slots_written(),
                globals: t.globals_touched(),
            }),
            ir: Some(Rc::new(t.shipped.clone())),
        });
    }
    let code = TraceCode {
        module: library.module_bytes().to_vec(),
        traces: metas,
    };
    tier.load(&code).map_err(|e| format!("{e:#}"))?;
    Ok(ids)
}
