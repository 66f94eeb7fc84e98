//! The compact binary form of a trace: what the corpus stores and what the content hash
//! is taken over. [`decode`] reads back exactly what [`encode`] writes, and trusts
//! nothing: a truncated or corrupted blob is a [`DecodeError`] naming the byte offset and
//! what was expected there, never a panic, and no allocation is sized by the blob beyond
//! what its own length can back.
//!
//! Layout, version 1 (`uN` and `u64` are unsigned LEB128 in their shortest form; `byte`
//! is one byte):
//!
//! ```text
//! trace   = "KLNT" version:byte locals:u32
//!           count:u32 input*  count:u32 inst*  end
//! input   = value:u32 type:byte source
//! source  = 0x00 slot:u32 | 0x01 global:u32
//! type    = 0x00 i32 | 0x01 i64 | 0x02 f32 | 0x03 f64
//! inst    = code:byte dst:u32 operand*        ;; a numeric operator, code < 0xf0 (ops::NUM_OPS)
//!         | 0xf0 dst:u32 type operand operand operand   ;; select a b cond
//!         | 0xf1 kind:byte dst:u32 offset:u32 operand   ;; load (ops::LOAD_KINDS)
//!         | 0xf2 kind:byte offset:u32 operand operand   ;; store address value (ops::STORE_KINDS)
//!         | 0xf3 global:u32 operand                     ;; global.set
//!         | 0xf4 dst:u32                                ;; memory.size
//!         | 0xf5 dst:u32 operand                        ;; memory.grow
//!         | 0xf6 operand exit | 0xf7 operand exit       ;; guard, expecting non-zero | zero
//!         | 0xf8 operand exit_in | 0xf9 operand exit_in ;; the same, leaving inside calls
//! end     = 0x00 state | 0x01 exit | 0x02 exit_in       ;; loop | exit | exit inside calls
//! exit    = id:u32 pc:u32 offset:u32 state
//! exit_in = exit count:u32 (func:u32 base:u32 return_pc:u32)*   ;; calls, outermost first
//! state   = count:u32 (slot:u32 operand)*
//! operand = u64 (even: the value numbered half of it) | 0x01 bits:u64 (a constant)
//! ```
//!
//! An exit inside inlined calls has codes of its own rather than a field every exit
//! carries, so the traces of version 1 that have none keep their bytes and their hashes.
//!
//! A numeric operator's operand count is its arity; other counts come first and are
//! bounded by the limits below. The decoder checks the result with [`validate`].

use std::fmt;

use crate::trace::{
    End, Exit, InlinedCall, Input, Inst, LoadKind, NumOp, Operand, Source, StoreKind, Trace, Type,
    ValueId,
};
use crate::validate::{validate, Site};

/// The first bytes of every encoded trace.
pub const MAGIC: [u8; 4] = *b"KLNT";
/// The layout's version; decoding any other is an error. Bumping it changes every
/// trace's content hash (`hash.rs` hashes this form).
pub const VERSION: u8 = 1;

/// Most inputs a decoded trace may have. Inputs are the slots and globals one path reads:
/// real traces have tens. The limit bounds what a hostile count can make the decoder do.
pub const MAX_INPUTS: u32 = 1 << 16;
/// Most body instructions a decoded trace may have. The recorder gives up on paths far
/// shorter than this; the limit bounds what a hostile count can make the decoder do.
pub const MAX_BODY: u32 = 1 << 20;
/// Most slots an exit or the loop may write: a frame is wasm's locals plus its operand
/// stack, and wasm validators cap locals at 50,000 per function.
pub const MAX_STATE: u32 = 1 << 17;
/// Most inlined calls an exit may be inside. The recorder inlines two levels
/// (`trace_capture::record::MAX_INLINE_DEPTH`); the limit leaves room and bounds what a
/// hostile count can make the decoder do.
pub const MAX_INLINED_CALLS: u32 = 16;

const SELECT: u8 = 0xf0;
const LOAD: u8 = 0xf1;
const STORE: u8 = 0xf2;
const GLOBAL_SET: u8 = 0xf3;
const MEMORY_SIZE: u8 = 0xf4;
const MEMORY_GROW: u8 = 0xf5;
const GUARD_NONZERO: u8 = 0xf6;
const GUARD_ZERO: u8 = 0xf7;
const GUARD_NONZERO_IN_CALLS: u8 = 0xf8;
const GUARD_ZERO_IN_CALLS: u8 = 0xf9;
const END_LOOP: u8 = 0x00;
const END_EXIT: u8 = 0x01;
const END_EXIT_IN_CALLS: u8 = 0x02;
const SOURCE_SLOT: u8 = 0x00;
const SOURCE_GLOBAL: u8 = 0x01;
/// The operand tag that announces a constant (a value's tag is even).
const CONST_TAG: u64 = 1;

/// The binary form of `trace`. A trace that breaks `validate`'s rules may encode to a
/// blob that does not decode.
pub fn encode(trace: &Trace) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::with_capacity(16 + trace.body.len() * 6),
    };
    w.out.extend_from_slice(&MAGIC);
    w.out.push(VERSION);
    w.u64(trace.locals.into());
    w.u64(trace.inputs.len() as u64);
    for input in &trace.inputs {
        w.value(input.value);
        w.ty(input.ty);
        match input.source {
            Source::Slot(s) => {
                w.out.push(SOURCE_SLOT);
                w.u64(s.into());
            }
            Source::Global(g) => {
                w.out.push(SOURCE_GLOBAL);
                w.u64(g.into());
            }
        }
    }
    w.u64(trace.body.len() as u64);
    for inst in &trace.body {
        w.inst(inst);
    }
    match &trace.end {
        End::Loop { state } => {
            w.out.push(END_LOOP);
            w.state(state);
        }
        End::Exit(exit) => {
            w.out.push(if exit.calls.is_empty() {
                END_EXIT
            } else {
                END_EXIT_IN_CALLS
            });
            w.exit(exit);
        }
    }
    w.out
}

struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn u64(&mut self, mut n: u64) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.out.push(byte);
                return;
            }
            self.out.push(byte | 0x80);
        }
    }

    fn value(&mut self, v: ValueId) {
        self.u64(v.0.into());
    }

    fn ty(&mut self, ty: Type) {
        self.out.push(ty as u8);
    }

    fn operand(&mut self, operand: Operand) {
        match operand {
            Operand::Value(v) => self.u64(u64::from(v.0) << 1),
            Operand::Const(c) => {
                self.u64(CONST_TAG);
                self.u64(c);
            }
        }
    }

    fn inst(&mut self, inst: &Inst) {
        match inst {
            Inst::Num { dst, op, args } => {
                self.out.push(op.code());
                self.value(*dst);
                for &arg in args {
                    self.operand(arg);
                }
            }
            Inst::Select {
                dst,
                ty,
                cond,
                a,
                b,
            } => {
                self.out.push(SELECT);
                self.value(*dst);
                self.ty(*ty);
                self.operand(*a);
                self.operand(*b);
                self.operand(*cond);
            }
            Inst::Load {
                dst,
                kind,
                offset,
                addr,
            } => {
                self.out.extend_from_slice(&[LOAD, kind.code()]);
                self.value(*dst);
                self.u64((*offset).into());
                self.operand(*addr);
            }
            Inst::Store {
                kind,
                offset,
                addr,
                value,
            } => {
                self.out.extend_from_slice(&[STORE, kind.code()]);
                self.u64((*offset).into());
                self.operand(*addr);
                self.operand(*value);
            }
            Inst::GlobalSet { global, value } => {
                self.out.push(GLOBAL_SET);
                self.u64((*global).into());
                self.operand(*value);
            }
            Inst::MemorySize { dst } => {
                self.out.push(MEMORY_SIZE);
                self.value(*dst);
            }
            Inst::MemoryGrow { dst, delta } => {
                self.out.push(MEMORY_GROW);
                self.value(*dst);
                self.operand(*delta);
            }
            Inst::Guard { cond, expect, exit } => {
                self.out.push(match (*expect, exit.calls.is_empty()) {
                    (true, true) => GUARD_NONZERO,
                    (false, true) => GUARD_ZERO,
                    (true, false) => GUARD_NONZERO_IN_CALLS,
                    (false, false) => GUARD_ZERO_IN_CALLS,
                });
                self.operand(*cond);
                self.exit(exit);
            }
        }
    }

    /// An exit's fields; its calls follow when it has any (the code before it says so).
    fn exit(&mut self, exit: &Exit) {
        self.u64(exit.id.into());
        self.u64(exit.pc.into());
        self.u64(exit.offset.into());
        self.state(&exit.state);
        if !exit.calls.is_empty() {
            self.u64(exit.calls.len() as u64);
            for call in &exit.calls {
                self.u64(call.func.into());
                self.u64(call.base.into());
                self.u64(call.return_pc.into());
            }
        }
    }

    fn state(&mut self, state: &[(u32, Operand)]) {
        self.u64(state.len() as u64);
        for &(slot, operand) in state {
            self.u64(slot.into());
            self.operand(operand);
        }
    }
}

/// A blob that is not an encoded trace: the byte offset where reading failed and what
/// was expected there (or, for a well-formed blob holding an invalid trace, the offset of
/// the offending part and the rule it breaks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for DecodeError {}

/// Reads an encoded trace and checks it with [`validate`].
pub fn decode(bytes: &[u8]) -> Result<Trace, DecodeError> {
    let (trace, sites) = parse(bytes)?;
    validate(&trace).map_err(|e| {
        let offset = match e.site {
            Site::Input(i) => sites.inputs[i],
            Site::Inst { index, .. } => sites.insts[index],
            Site::End { .. } => sites.end,
        };
        DecodeError {
            offset,
            message: format!("invalid trace: {}", e.message),
        }
    })?;
    Ok(trace)
}

/// Reads an encoded trace without [`validate`], for a blob the caller knows `decode`
/// accepted before, byte for byte: a cache library this kiln read whole once
/// (`emit::cache::CacheLibrary::read_known`; validating the 112 traces of the lz77
/// example's library again took 0.7 ms of its 5.7 ms read). The blob's form is still
/// checked; anything else must use [`decode`].
pub fn decode_unvalidated(bytes: &[u8]) -> Result<Trace, DecodeError> {
    parse(bytes).map(|(trace, _)| trace)
}

/// The trace a blob encodes, and where its parts start (to place validation errors).
fn parse(bytes: &[u8]) -> Result<(Trace, Sites), DecodeError> {
    let mut r = Reader { bytes, at: 0 };
    let magic = r.take(MAGIC.len(), "the magic bytes `KLNT`")?;
    if magic != MAGIC {
        return Err(r.error_at(0, "expected the magic bytes `KLNT`"));
    }
    let version = r.byte("a version byte")?;
    if version != VERSION {
        return Err(r.error_at(
            MAGIC.len(),
            &format!("expected version {VERSION}, found {version}"),
        ));
    }
    let locals = r.u32("the number of locals")?;

    let mut sites = Sites::default();
    let n = r.count("the number of inputs", MAX_INPUTS)?;
    let mut inputs = Vec::with_capacity(n);
    for _ in 0..n {
        sites.inputs.push(r.at);
        let value = r.value()?;
        let ty = r.ty()?;
        let tag_at = r.at;
        let what = "an input source (0x00 slot or 0x01 global)";
        let source = match r.byte(what)? {
            SOURCE_SLOT => Source::Slot(r.u32("a slot")?),
            SOURCE_GLOBAL => Source::Global(r.u32("a global index")?),
            other => {
                return Err(r.error_at(tag_at, &format!("expected {what}, found {other:#04x}")))
            }
        };
        inputs.push(Input { value, ty, source });
    }

    let n = r.count("the number of instructions", MAX_BODY)?;
    let mut body = Vec::with_capacity(n);
    for _ in 0..n {
        sites.insts.push(r.at);
        body.push(r.inst()?);
    }

    sites.end = r.at;
    let end = match r.byte("the end (0x00 loop, 0x01 or 0x02 exit)")? {
        END_LOOP => End::Loop { state: r.state()? },
        END_EXIT => End::Exit(r.exit(false)?),
        END_EXIT_IN_CALLS => End::Exit(r.exit(true)?),
        other => {
            return Err(r.error_at(
                sites.end,
                &format!("expected the end (0x00 loop, 0x01 or 0x02 exit), found {other:#04x}"),
            ))
        }
    };
    if r.at != bytes.len() {
        let more = bytes.len() - r.at;
        let s = if more == 1 { "" } else { "s" };
        return Err(r.error(&format!(
            "expected the end of the blob, found {more} more byte{s}"
        )));
    }
    let trace = Trace {
        locals,
        inputs,
        body,
        end,
    };
    Ok((trace, sites))
}

/// Where each part started, to place validation errors.
#[derive(Default)]
struct Sites {
    inputs: Vec<usize>,
    insts: Vec<usize>,
    end: usize,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, message: &str) -> DecodeError {
        self.error_at(self.at, message)
    }

    fn error_at(&self, offset: usize, message: &str) -> DecodeError {
        DecodeError {
            offset,
            message: message.to_string(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        match self.bytes.get(self.at..self.at + n) {
            Some(slice) => {
                self.at += n;
                Ok(slice)
            }
            None => Err(self.error(&format!("expected {what}, found the end of the blob"))),
        }
    }

    fn byte(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    /// An unsigned LEB128 number of at most `bits` bits, in its shortest encoding.
    fn leb(&mut self, bits: u32, what: &str) -> Result<u64, DecodeError> {
        let start = self.at;
        let out_of_range = |r: &Self| {
            r.error_at(
                start,
                &format!("expected {what} (a LEB128 u{bits}), found one out of range"),
            )
        };
        let mut n: u64 = 0;
        let mut shift = 0;
        loop {
            let byte = self.byte(what)?;
            let payload = u64::from(byte & 0x7f);
            let room = bits - shift;
            if room < 7 && payload >> room != 0 {
                return Err(out_of_range(self));
            }
            n |= payload << shift;
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 {
                    return Err(self.error_at(
                        start,
                        &format!("expected {what} (a LEB128 u{bits}), found an overlong encoding"),
                    ));
                }
                return Ok(n);
            }
            shift += 7;
            if shift >= bits {
                return Err(out_of_range(self));
            }
        }
    }

    fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        Ok(self.leb(32, what)? as u32)
    }

    /// A count of items, each of which takes at least one byte: above `max`, or above
    /// what the rest of the blob could hold, it is an error (so the caller may reserve it).
    fn count(&mut self, what: &str, max: u32) -> Result<usize, DecodeError> {
        let start = self.at;
        let n = self.u32(what)?;
        let left = self.bytes.len() - self.at;
        if n > max {
            return Err(self.error_at(start, &format!("expected {what}, at most {max}, found {n}")));
        }
        if n as usize > left {
            return Err(self.error_at(
                start,
                &format!("expected {what}, found {n}, more than the {left} bytes left"),
            ));
        }
        Ok(n as usize)
    }

    fn value(&mut self) -> Result<ValueId, DecodeError> {
        self.u32("a value number").map(ValueId)
    }

    fn ty(&mut self) -> Result<Type, DecodeError> {
        let at = self.at;
        let code = self.byte("a type")?;
        Type::ALL.get(code as usize).copied().ok_or_else(|| {
            self.error_at(
                at,
                &format!("expected a type (0x00 to 0x03), found {code:#04x}"),
            )
        })
    }

    fn operand(&mut self) -> Result<Operand, DecodeError> {
        let start = self.at;
        let tag = self.leb(33, "an operand")?;
        if tag == CONST_TAG {
            return Ok(Operand::Const(self.leb(64, "a constant")?));
        }
        if tag & 1 == 1 {
            return Err(self.error_at(
                start,
                &format!("expected an operand (an even value tag or 0x01), found {tag:#x}"),
            ));
        }
        Ok(Operand::Value(ValueId((tag >> 1) as u32)))
    }

    fn inst(&mut self) -> Result<Inst, DecodeError> {
        let at = self.at;
        let code = self.byte("an instruction")?;
        Ok(match code {
            SELECT => {
                let dst = self.value()?;
                let ty = self.ty()?;
                let a = self.operand()?;
                let b = self.operand()?;
                let cond = self.operand()?;
                Inst::Select {
                    dst,
                    ty,
                    cond,
                    a,
                    b,
                }
            }
            LOAD => {
                let kind_at = self.at;
                let code = self.byte("a load kind")?;
                let kind = LoadKind::from_code(code).ok_or_else(|| {
                    self.error_at(kind_at, &format!("expected a load kind, found {code:#04x}"))
                })?;
                let dst = self.value()?;
                let offset = self.u32("an offset")?;
                let addr = self.operand()?;
                Inst::Load {
                    dst,
                    kind,
                    offset,
                    addr,
                }
            }
            STORE => {
                let kind_at = self.at;
                let code = self.byte("a store kind")?;
                let kind = StoreKind::from_code(code).ok_or_else(|| {
                    self.error_at(
                        kind_at,
                        &format!("expected a store kind, found {code:#04x}"),
                    )
                })?;
                let offset = self.u32("an offset")?;
                let addr = self.operand()?;
                let value = self.operand()?;
                Inst::Store {
                    kind,
                    offset,
                    addr,
                    value,
                }
            }
            GLOBAL_SET => {
                let global = self.u32("a global index")?;
                Inst::GlobalSet {
                    global,
                    value: self.operand()?,
                }
            }
            MEMORY_SIZE => Inst::MemorySize { dst: self.value()? },
            MEMORY_GROW => {
                let dst = self.value()?;
                Inst::MemoryGrow {
                    dst,
                    delta: self.operand()?,
                }
            }
            GUARD_NONZERO | GUARD_ZERO | GUARD_NONZERO_IN_CALLS | GUARD_ZERO_IN_CALLS => {
                let cond = self.operand()?;
                Inst::Guard {
                    cond,
                    expect: matches!(code, GUARD_NONZERO | GUARD_NONZERO_IN_CALLS),
                    exit: self
                        .exit(matches!(code, GUARD_NONZERO_IN_CALLS | GUARD_ZERO_IN_CALLS))?,
                }
            }
            _ => {
                let op = NumOp::from_code(code).ok_or_else(|| {
                    self.error_at(at, &format!("expected an instruction, found {code:#04x}"))
                })?;
                let dst = self.value()?;
                let args = (0..op.params().len())
                    .map(|_| self.operand())
                    .collect::<Result<_, _>>()?;
                Inst::Num { dst, op, args }
            }
        })
    }

    /// An exit; `in_calls`: its code says inlined calls follow.
    fn exit(&mut self, in_calls: bool) -> Result<Exit, DecodeError> {
        let id = self.u32("an exit id")?;
        let pc = self.u32("an exit pc")?;
        let offset = self.u32("an exit offset")?;
        let state = self.state()?;
        let mut calls = Vec::new();
        if in_calls {
            let at = self.at;
            let n = self.count("the number of inlined calls", MAX_INLINED_CALLS)?;
            if n == 0 {
                // An exit in no call has codes of its own: one meaning, one encoding.
                return Err(self.error_at(at, "expected at least one inlined call, found 0"));
            }
            for _ in 0..n {
                calls.push(InlinedCall {
                    func: self.u32("an inlined call's function")?,
                    base: self.u32("an inlined call's frame base")?,
                    return_pc: self.u32("an inlined call's return pc")?,
                });
            }
        }
        Ok(Exit {
            id,
            pc,
            offset,
            state,
            calls,
        })
    }

    fn state(&mut self) -> Result<Vec<(u32, Operand)>, DecodeError> {
        let n = self.count("the number of state slots", MAX_STATE)?;
        let mut state = Vec::with_capacity(n);
        for _ in 0..n {
            let slot = self.u32("a slot")?;
            state.push((slot, self.operand()?));
        }
        Ok(state)
    }
}
