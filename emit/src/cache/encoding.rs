//! The manifest's bytes (layout in `docs/cache-format.md`): [`encode`] writes exactly
//! what [`decode`] reads back. Numbers are fixed-width little-endian; texts and lists are
//! length-prefixed. The decoder trusts nothing: every length is bounded by a limit
//! constant of `manifest.rs` and by the bytes left, and nothing is allocated ahead of
//! the bytes that back it.

use ir::hash::TraceHash;
use ir::{InlinedCall, Selector, SideStart, Source, Type};

use super::error::CacheError;
use super::manifest::{
    CachedTrace, EntryInput, ExitEntry, Manifest, ProofVerdict, MAX_LIST_LEN, MAX_TEXT_BYTES,
    MAX_TRACES, MAX_TRACE_BYTES,
};
use crate::module::EmitKind;

/// Bytes of the SHA-256 checksum that ends the manifest.
pub const CHECKSUM_BYTES: usize = 32;
/// Bytes of the format version that starts the manifest.
pub const VERSION_BYTES: usize = 4;

const EMIT_NAIVE: u8 = 0;
const EMIT_OPTIMIZED: u8 = 1;
const VERDICT_PROVEN: u8 = 0;
const VERDICT_UNPROVEN: u8 = 1;
const SOURCE_SLOT: u8 = 0;
const SOURCE_GLOBAL: u8 = 1;
const START_LOOP: u8 = 0;
const START_SIDE: u8 = 1;
const EXPECT_NONE: u8 = 0;
const EXPECT_FALSE: u8 = 1;
const EXPECT_TRUE: u8 = 2;
const NO_SELECTOR: u8 = 0;
const SELECTOR: u8 = 1;
const TYPES: [Type; 4] = [Type::I32, Type::I64, Type::F32, Type::F64];

/// The manifest's bytes, all but the checksum (the caller appends it: it covers the
/// module before the manifest too).
pub fn encode(manifest: &Manifest) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(manifest.format_version.to_le_bytes());
    text(&mut out, &manifest.kiln_version);
    out.extend(hash_bytes(&manifest.app_hash));
    out.extend((manifest.traces.len() as u32).to_le_bytes());
    for t in &manifest.traces {
        out.extend(t.func_index.to_le_bytes());
        out.extend(t.anchor_offset.to_le_bytes());
        start(&mut out, t.side.as_ref());
        out.extend(t.content_hash.0);
        out.push(match t.emission {
            EmitKind::Naive => EMIT_NAIVE,
            EmitKind::Optimized => EMIT_OPTIMIZED,
        });
        out.extend(t.cost_before.to_le_bytes());
        out.extend(t.cost_after.to_le_bytes());
        match &t.verdict {
            ProofVerdict::Proven => out.push(VERDICT_PROVEN),
            ProofVerdict::Unproven { reason } => {
                out.push(VERDICT_UNPROVEN);
                text(&mut out, reason);
            }
        }
        text(&mut out, &t.solver);
        out.extend((t.inputs.len() as u32).to_le_bytes());
        for input in &t.inputs {
            let (tag, index) = match input.source {
                Source::Slot(s) => (SOURCE_SLOT, s),
                Source::Global(g) => (SOURCE_GLOBAL, g),
            };
            out.push(tag);
            out.extend(index.to_le_bytes());
            out.push(TYPES.iter().position(|&ty| ty == input.ty).unwrap_or(0) as u8);
        }
        list(&mut out, &t.carried);
        list(&mut out, &t.globals_written);
        out.extend((t.exits.len() as u32).to_le_bytes());
        for e in &t.exits {
            out.extend(e.id.to_le_bytes());
            out.extend(e.pc.to_le_bytes());
            list(&mut out, &e.slots);
        }
        let trace = ir::binary::encode(&t.shipped);
        out.extend((trace.len() as u32).to_le_bytes());
        out.extend(trace);
    }
    out
}

/// Where the trace is entered: at its loop anchor, or (a side trace) at the place named.
fn start(out: &mut Vec<u8>, side: Option<&SideStart>) {
    let Some(side) = side else {
        out.push(START_LOOP);
        return;
    };
    out.push(START_SIDE);
    out.extend(side.pc.to_le_bytes());
    out.push(match side.expect {
        None => EXPECT_NONE,
        Some(false) => EXPECT_FALSE,
        Some(true) => EXPECT_TRUE,
    });
    out.extend((side.calls.len() as u32).to_le_bytes());
    for call in &side.calls {
        out.extend(call.func.to_le_bytes());
        out.extend(call.base.to_le_bytes());
        out.extend(call.return_pc.to_le_bytes());
    }
    match side.selector {
        None => out.push(NO_SELECTOR),
        Some(sel) => {
            out.push(SELECTOR);
            out.extend(sel.index_slot.to_le_bytes());
            out.extend(sel.arms.to_le_bytes());
            out.extend(sel.arm.to_le_bytes());
        }
    }
}

fn text(out: &mut Vec<u8>, text: &str) {
    out.extend((text.len() as u32).to_le_bytes());
    out.extend(text.as_bytes());
}

fn list(out: &mut Vec<u8>, items: &[u32]) {
    out.extend((items.len() as u32).to_le_bytes());
    for item in items {
        out.extend(item.to_le_bytes());
    }
}

/// 64 hex digits as 32 bytes (`check_rules` has made sure they are hex).
fn hash_bytes(hex: &str) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).take(32).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
        bytes[i] = digit(pair[0]) << 4 | pair.get(1).map_or(0, |&b| digit(b));
    }
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the format version at the start of `body` (the manifest's bytes, which start at
/// file offset `base`), before anything else, so that a cache of another layout is
/// named as such rather than as damaged.
pub fn format_version(body: &[u8], base: usize) -> Result<u32, CacheError> {
    Decoder {
        body,
        pos: 0,
        base,
        traces: TraceCheck::Validate,
    }
    .u32("the format version (4 bytes)")
}

/// Decodes the manifest's bytes without the checksum (`body`, at file offset `base`);
/// every byte must be used.
pub fn decode(body: &[u8], base: usize, traces: TraceCheck) -> Result<Manifest, CacheError> {
    let mut d = Decoder {
        body,
        pos: 0,
        base,
        traces,
    };
    let format_version = d.u32("the format version (4 bytes)")?;
    let kiln_version = d.text("the kiln version")?;
    let app_hash = hex(d.take(32, "the app hash (32 bytes)")?);
    let count = d.count(MAX_TRACES, "the trace count")?;
    let mut traces = Vec::new();
    for _ in 0..count {
        traces.push(d.trace()?);
    }
    if d.pos != body.len() {
        return Err(d.bad("the checksum right after the last trace"));
    }
    Ok(Manifest {
        format_version,
        kiln_version,
        app_hash,
        traces,
    })
}

/// Whether the traces' IR is validated as it is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceCheck {
    Validate,
    /// The manifest is one this kiln decoded and validated before, byte for byte
    /// (`CacheLibrary::read_known`).
    KnownValid,
}

struct Decoder<'a> {
    body: &'a [u8],
    pos: usize,
    /// The file offset of `body[0]`, for errors.
    base: usize,
    traces: TraceCheck,
}

impl<'a> Decoder<'a> {
    fn bad(&self, expected: &str) -> CacheError {
        CacheError::BadManifest {
            offset: self.base + self.pos,
            expected: expected.to_string(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], CacheError> {
        match self.body.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(bytes) => {
                self.pos += n;
                Ok(bytes)
            }
            None => Err(self.bad(&format!("{what}, but the manifest ends"))),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8, CacheError> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, CacheError> {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(bytes))
    }

    fn u64(&mut self, what: &str) -> Result<u64, CacheError> {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(bytes))
    }

    /// A count, at most `limit` (the caller's constant says why).
    fn count(&mut self, limit: u32, what: &str) -> Result<u32, CacheError> {
        let at = self.pos;
        let n = self.u32(what)?;
        if n > limit {
            self.pos = at;
            return Err(self.bad(&format!("{what} at most {limit}, found {n}")));
        }
        Ok(n)
    }

    fn text(&mut self, what: &str) -> Result<String, CacheError> {
        let len = self.count(MAX_TEXT_BYTES, &format!("the length of {what}"))?;
        let at = self.pos;
        let bytes = self.take(len as usize, what)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_string()),
            Err(_) => {
                self.pos = at;
                Err(self.bad(&format!("{what} in UTF-8")))
            }
        }
    }

    fn list(&mut self, what: &str) -> Result<Vec<u32>, CacheError> {
        let n = self.count(MAX_LIST_LEN, &format!("the number of {what}"))?;
        let mut items = Vec::new();
        for _ in 0..n {
            items.push(self.u32(what)?);
        }
        Ok(items)
    }

    fn ty(&mut self) -> Result<Type, CacheError> {
        let at = self.pos;
        let code = self.u8("a value type")?;
        TYPES.get(code as usize).copied().ok_or_else(|| {
            self.pos = at;
            self.bad(&format!(
                "a value type (0 i32, 1 i64, 2 f32, 3 f64), found {code}"
            ))
        })
    }

    /// A byte that must be one of `codes` (`what` names them).
    fn tag(&mut self, codes: &[u8], what: &str) -> Result<u8, CacheError> {
        let at = self.pos;
        let code = self.u8(what)?;
        if !codes.contains(&code) {
            self.pos = at;
            return Err(self.bad(&format!("{what}, found {code}")));
        }
        Ok(code)
    }

    fn start(&mut self, func_index: u32) -> Result<Option<SideStart>, CacheError> {
        let what = "where the trace starts (0 its loop anchor, 1 a side trace's place)";
        if self.tag(&[START_LOOP, START_SIDE], what)? == START_LOOP {
            return Ok(None);
        }
        let pc = self.u32("a side trace's pc")?;
        let what = "a side trace's guard expectation (0 none, 1 false, 2 true)";
        let expect = match self.tag(&[EXPECT_NONE, EXPECT_FALSE, EXPECT_TRUE], what)? {
            EXPECT_NONE => None,
            code => Some(code == EXPECT_TRUE),
        };
        let n = self.count(
            ir::binary::MAX_INLINED_CALLS,
            "the number of calls a side trace starts inside",
        )?;
        let mut calls = Vec::new();
        for _ in 0..n {
            calls.push(InlinedCall {
                func: self.u32("an inlined call's function")?,
                base: self.u32("an inlined call's frame base")?,
                return_pc: self.u32("an inlined call's return pc")?,
            });
        }
        let what = "a side trace's br_table arm (0 none, 1 one)";
        let selector = match self.tag(&[NO_SELECTOR, SELECTOR], what)? {
            NO_SELECTOR => None,
            _ => Some(Selector {
                index_slot: self.u32("a br_table's index slot")?,
                arms: self.u32("a br_table's arm count")?,
                arm: self.u32("a br_table arm")?,
            }),
        };
        Ok(Some(SideStart {
            func_index,
            pc,
            calls,
            expect,
            selector,
        }))
    }

    fn trace(&mut self) -> Result<CachedTrace, CacheError> {
        let func_index = self.u32("a trace's function index")?;
        let anchor_offset = self.u32("a trace's anchor offset")?;
        let side = self.start(func_index)?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(self.take(32, "a trace's content hash (32 bytes)")?);
        let at = self.pos;
        let emission = match self.u8("a trace's emission")? {
            EMIT_NAIVE => EmitKind::Naive,
            EMIT_OPTIMIZED => EmitKind::Optimized,
            other => {
                self.pos = at;
                return Err(self.bad(&format!(
                    "an emission (0 naive, 1 optimized), found {other}"
                )));
            }
        };
        let cost_before = self.u64("a trace's cost before")?;
        let cost_after = self.u64("a trace's cost after")?;
        let at = self.pos;
        let verdict = match self.u8("a trace's verdict")? {
            VERDICT_PROVEN => ProofVerdict::Proven,
            VERDICT_UNPROVEN => ProofVerdict::Unproven {
                reason: self.text("the reason it is unproven")?,
            },
            other => {
                self.pos = at;
                return Err(self.bad(&format!("a verdict (0 proven, 1 unproven), found {other}")));
            }
        };
        let solver = self.text("the solver")?;
        let inputs_len = self.count(MAX_LIST_LEN, "the number of inputs")?;
        let mut inputs = Vec::new();
        for _ in 0..inputs_len {
            let at = self.pos;
            let tag = self.u8("an input's source")?;
            let index = self.u32("an input's slot or global index")?;
            let source = match tag {
                SOURCE_SLOT => Source::Slot(index),
                SOURCE_GLOBAL => Source::Global(index),
                other => {
                    self.pos = at;
                    return Err(self.bad(&format!(
                        "an input's source (0 slot, 1 global), found {other}"
                    )));
                }
            };
            inputs.push(EntryInput {
                source,
                ty: self.ty()?,
            });
        }
        let carried = self.list("carried slots")?;
        let globals_written = self.list("globals written")?;
        let exits_len = self.count(MAX_LIST_LEN, "the number of exits")?;
        let mut exits = Vec::new();
        for _ in 0..exits_len {
            exits.push(ExitEntry {
                id: self.u32("an exit id")?,
                pc: self.u32("an exit pc")?,
                slots: self.list("an exit's slots")?,
            });
        }
        let len = self.count(MAX_TRACE_BYTES, "the length of the trace's IR")?;
        let at = self.pos;
        let bytes = self.take(len as usize, "the trace's IR (ir's binary form)")?;
        let decode = match self.traces {
            TraceCheck::Validate => ir::binary::decode,
            TraceCheck::KnownValid => ir::binary::decode_unvalidated,
        };
        let shipped = decode(bytes).map_err(|e| {
            self.pos = at;
            self.bad(&format!("the trace's IR in ir's binary form ({e})"))
        })?;
        Ok(CachedTrace {
            shipped,
            func_index,
            side,
            anchor_offset,
            content_hash: TraceHash(hash),
            emission,
            cost_before,
            cost_after,
            verdict,
            solver,
            inputs,
            carried,
            globals_written,
            exits,
        })
    }
}
