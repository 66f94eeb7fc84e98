//! Loading a cache library (`emit::cache`) into a [`WasmtimeTier`].
//!
//! The reader trusts nothing it reads (`emit::cache::CacheLibrary::read`: checksum,
//! versions, app hash, layout, validation, the module against the manifest); what it
//! cannot know without the app — that each anchor exists and each exit pc fits its
//! function — is checked here (anchors) and by the tier at a trace's first call (pcs and
//! slots). A cache that fails any check is refused whole, with the reason: the caller
//! warns and runs on without it.
//!
//! Checking is most of loading a library once its code is in the machine's code cache
//! (lz77's: 6.4 ms of reading and checking against 1.2 ms of loading its code). So a
//! library that passed every check is remembered there, by the SHA-256 of its bytes, the
//! app's hash and the kiln binary that checked it (`checked_record`), and the same bytes
//! are later read without the checks whose outcome those inputs decide
//! (`CacheLibrary::read_known`; no side trace checked against the app again). The record
//! is trusted as the native code beside it is, and vouches for those very bytes only: a
//! library changed in any byte has another key and is checked whole.

use std::collections::HashMap;
use std::rc::Rc;

use emit::cache::{CacheLibrary, CachedTrace, KILN_VERSION, MAX_CACHE_BYTES};
use ir::SideStart;
use sha2::{Digest, Sha256};
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
    // A library this kiln binary read whole and checked against this app before, byte
    // for byte, is not proved again: the code cache keeps a record of it.
    let code_cache = tier.code_cache().cloned();
    let record = code_cache
        .as_ref()
        .and_then(|_| checked_record(bytes, app_hash));
    let known = match (&code_cache, &record) {
        (Some(cache), Some(key)) => cache.knows(key),
        _ => false,
    };
    let library = if known {
        CacheLibrary::read_known(bytes, app_hash)
    } else {
        CacheLibrary::read(bytes, app_hash)
    }
    .map_err(|e| e.to_string())?;
    let anchors: HashMap<(u32, u32), u32> = module
        .anchors()
        .iter()
        .enumerate()
        .filter(|(_, a)| a.kind == AnchorKind::Loop)
        .map(|(id, a)| ((a.func_index, a.offset), id as u32))
        .collect();
    let mut metas = Vec::new();
    let mut ids = Vec::new();
    // Taken apart, so that the module and each trace's IR move into the tier uncopied.
    let (module_bytes, traces) = library.into_parts();
    for (i, t) in traces.into_iter().enumerate() {
        if let Some(side) = &t.side {
            if !known {
                check_side_trace(&t, side, module).map_err(|e| format!("side trace {i}: {e}"))?;
            }
            metas.push(meta_of(t));
            continue;
        }
        let Some(&id) = anchors.get(&(t.func_index, t.anchor_offset)) else {
            return Err(format!(
                "trace {i} is for a loop at function {} offset {:#x}, which the app does not have",
                t.func_index, t.anchor_offset
            ));
        };
        ids.push(id);
        metas.push(meta_of(t));
    }
    let code = TraceCode {
        module: module_bytes,
        traces: metas,
    };
    tier.load_library(&code).map_err(|e| format!("{e:#}"))?;
    if known {
        tier.count_known_library();
    } else if let (Some(cache), Some(key)) = (code_cache, record) {
        cache.remember(&key);
    }
    Ok(ids)
}

/// The key of the code cache's record that library `bytes` passed every check of
/// [`load_cache`] for the app whose wasm hashes to `app_hash`: the SHA-256 of those
/// bytes, the app's hash and the kiln binary that checked them (its version, and the
/// size and modification time of its executable, so that a rebuilt kiln, whose checks
/// may differ, proves the library again). `None` when the executable cannot be looked
/// at: then every load checks everything.
fn checked_record(bytes: &[u8], app_hash: &str) -> Option<[u8; 32]> {
    let exe = std::fs::metadata(std::env::current_exe().ok()?).ok()?;
    let modified = exe
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let mut key = Sha256::new();
    key.update(b"kiln: a cache library read whole and checked against its app\0");
    key.update(KILN_VERSION.as_bytes());
    key.update([0]);
    key.update(exe.len().to_le_bytes());
    key.update(modified.as_nanos().to_le_bytes());
    key.update(app_hash.to_ascii_lowercase().as_bytes());
    key.update([0]);
    key.update(bytes);
    Some(key.finalize().into())
}

fn meta_of(t: CachedTrace) -> TraceMeta {
    let touches = Touches {
        reads: t.slots_read(),
        writes: t.slots_written(),
        globals: t.globals_touched(),
    };
    TraceMeta {
        func_index: t.func_index,
        anchor_offset: t.anchor_offset,
        exits: t.exit_pcs(),
        exit_calls: exit_calls(t.shipped.exits().map(|e| (e.id, e))),
        exit_expects: exit_expects([&t.shipped], t.shipped.exits().map(|e| (e.id, e))),
        touches: Some(touches),
        ir: Some(Rc::new(t.shipped)),
        side: t.side,
    }
}

/// What the tier checks of a loop trace at its first entry, checked of side trace `t` at
/// load (the interpreter never enters one, so the tier sees no entry of its own): its
/// place and every exit are places of the app's code (pcs inside their functions, the
/// calls the ones the code makes), it touches no slot beyond the frames those involve,
/// and the `br_table` index its arm is picked by is a slot it reads.
fn check_side_trace(t: &CachedTrace, side: &SideStart, module: &Module) -> Result<(), String> {
    let mut frames_end = module
        .check_place(side.func_index, side.pc, &side.calls)
        .map_err(|e| format!("its place: {e}"))?;
    // A loop header is its loop trace's place (kiln records no side trace there): a side
    // trace linked there would take the loop's place, and one from a function's pc 0 would
    // pass for an entry trace, which reads no local.
    let code_func = side.calls.last().map_or(side.func_index, |call| call.func);
    if module.control_at(code_func, side.pc) == Some(trace_capture::ControlAt::LoopHeader) {
        return Err(format!(
            "its place (function {code_func}, pc {}) is a loop header",
            side.pc
        ));
    }
    for exit in t.shipped.exits() {
        let end = module
            .check_place(side.func_index, exit.pc, &exit.calls)
            .map_err(|e| format!("exit {}: {e}", exit.id))?;
        frames_end = frames_end.max(end);
    }
    if t.frame_slots() > frames_end {
        return Err(format!(
            "it touches slot {}, beyond the frames of its function and calls ({frames_end} slots)",
            t.frame_slots() - 1
        ));
    }
    if let Some(sel) = side.selector {
        if !t.slots_read().contains(&sel.index_slot) {
            return Err(format!(
                "its br_table arm is picked by slot {}, which it does not read",
                sel.index_slot
            ));
        }
    }
    Ok(())
}
