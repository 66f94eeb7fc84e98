//! The content hash of a trace: the corpus's key, so the same path recorded by two runs
//! or two apps is stored once.
//!
//! The hash is SHA-256 of the binary form (`binary.rs`) of the trace's canonical form
//! ([`canonicalize`]): inputs sorted by source (slots, then globals, each by index; then
//! by type, as a slot may be read at two types) and
//! values renumbered `v0, v1, ...` in definition order. It depends on nothing else: not
//! on how the recorder numbered values or ordered inputs, and not on provenance (which is
//! not part of a `Trace`). It does depend on everything that is content: operators,
//! constants, the order of the body, exit ids, pcs, offsets and state, and `locals`.
//! Since it hashes the binary form, changing that form's layout (and so its `VERSION`)
//! changes every hash.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::binary::encode;
use crate::trace::{Operand, Trace, ValueId};

/// A trace's content hash; `Display` and `FromStr` use 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceHash(pub [u8; 32]);

impl fmt::Display for TraceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TraceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceHash({self})")
    }
}

/// Text that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseHashError;

impl fmt::Display for ParseHashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected a trace hash: 64 hex digits")
    }
}

impl std::error::Error for ParseHashError {}

impl FromStr for TraceHash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<TraceHash, ParseHashError> {
        let s = s.as_bytes();
        if s.len() != 64 {
            return Err(ParseHashError);
        }
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(s.chunks(2)) {
            let digits = std::str::from_utf8(pair).map_err(|_| ParseHashError)?;
            if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ParseHashError);
            }
            *byte = u8::from_str_radix(digits, 16).map_err(|_| ParseHashError)?;
        }
        Ok(TraceHash(bytes))
    }
}

/// The content hash of `trace` (see the module documentation).
pub fn content_hash(trace: &Trace) -> TraceHash {
    TraceHash(Sha256::digest(encode(&canonicalize(trace))).into())
}

/// The canonical form of `trace`: inputs sorted by source and type, values renumbered from `v0`
/// in definition order (inputs first). It means the same as `trace` and has the same
/// content hash; canonicalizing it again changes nothing.
///
/// Meant for valid traces; for an invalid one it still returns (a value used but never
/// defined gets a number after all defined ones).
pub fn canonicalize(trace: &Trace) -> Trace {
    let mut out = trace.clone();
    out.inputs.sort_by_key(|input| (input.source, input.ty));
    let mut renumber = Renumber::default();
    for input in &mut out.inputs {
        input.value = renumber.define(input.value);
    }
    for inst in &mut out.body {
        // Operands first: they refer to earlier definitions, never to this one.
        for operand in inst.operands_mut() {
            renumber.operand(operand);
        }
        if let Some(dst) = inst.def_mut() {
            *dst = renumber.define(*dst);
        }
    }
    for (_, operand) in out.end.state_mut() {
        renumber.operand(operand);
    }
    renumber.finish_undefined(&mut out);
    out
}

#[derive(Default)]
struct Renumber {
    new: HashMap<ValueId, ValueId>,
    next: u32,
    /// Uses of values not yet defined (an invalid trace), by their old number.
    undefined: Vec<ValueId>,
}

/// Marks an undefined use until every definition has its number.
const UNDEFINED: u32 = u32::MAX;

impl Renumber {
    fn define(&mut self, old: ValueId) -> ValueId {
        let new = ValueId(self.next);
        self.next = self.next.wrapping_add(1);
        self.new.insert(old, new);
        new
    }

    fn operand(&mut self, operand: &mut Operand) {
        if let Operand::Value(v) = operand {
            *v = match self.new.get(v) {
                Some(&new) => new,
                None => {
                    self.undefined.push(*v);
                    // Numbered in `finish_undefined`, by position in `undefined`.
                    ValueId(UNDEFINED)
                }
            };
        }
    }

    /// Gives the undefined uses numbers after every definition, in order of first use.
    fn finish_undefined(self, trace: &mut Trace) {
        if self.undefined.is_empty() {
            return;
        }
        let mut first_use: HashMap<ValueId, u32> = HashMap::new();
        let mut next = self.next;
        let mut numbers = self.undefined.iter().map(|old| {
            *first_use.entry(*old).or_insert_with(|| {
                next = next.wrapping_add(1);
                next - 1
            })
        });
        let mut patch = |operand: &mut Operand| {
            if let Operand::Value(v) = operand {
                if v.0 == UNDEFINED {
                    *v = ValueId(numbers.next().unwrap_or(UNDEFINED));
                }
            }
        };
        // Same walk order as `canonicalize`, so the n-th marker is the n-th undefined use.
        for inst in &mut trace.body {
            for operand in inst.operands_mut() {
                patch(operand);
            }
        }
        for (_, operand) in trace.end.state_mut() {
            patch(operand);
        }
    }
}
