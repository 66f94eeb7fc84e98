//! Properties over random well-formed traces: print → parse and decode(encode) are the
//! identity; the content hash and the evaluator's outcome do not depend on value
//! numbering or input order; corrupted blobs and texts are errors or valid traces, never
//! panics.
//!
//! A trace is built from a list of random choices (`Choices`), so proptest shrinks a
//! failing case towards fewer choices: a shorter, simpler trace.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;

use ir::binary::{decode, encode};
use ir::eval::{eval, EntryState, PAGE_SIZE};
use ir::hash::{canonicalize, content_hash, TraceHash};
use ir::ops::{LOAD_KINDS, NUM_OPS, STORE_KINDS};
use ir::text::{parse, parse_with_provenance, print_with_provenance};
use ir::validate::validate;
use ir::{
    AnchorKind, End, Exit, Expect, InlinedCall, Input, Inst, Operand, Provenance, Source, Trace,
    Type, ValueId,
};

/// Most instructions in a generated body: long enough to mix every kind, short enough
/// that hundreds of cases run in well under a second.
const MAX_GEN_BODY: u32 = 40;
/// Most inputs of a generated trace.
const MAX_GEN_INPUTS: u32 = 8;
/// Slots and globals are drawn from small ranges so that inputs, exits and the loop
/// share them.
const GEN_SLOTS: u32 = 12;
const GEN_GLOBALS: u32 = 4;

/// Random choices, consumed one at a time; 0 once exhausted.
struct Choices {
    list: Vec<u64>,
    next: usize,
}

impl Choices {
    fn raw(&mut self) -> u64 {
        let c = self.list.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        c
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.raw() % u64::from(n.max(1))) as u32
    }

    fn chance(&mut self, one_in: u32) -> bool {
        self.below(one_in) == 0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u32) as usize]
    }

    /// Bits of type `ty`, favouring edge values.
    fn bits(&mut self, ty: Type) -> u64 {
        let edge: &[u64] = match ty {
            Type::I32 => &[
                0,
                1,
                2,
                0xffff_ffff,
                0x8000_0000,
                0x7fff_ffff,
                31,
                32,
                33,
                255,
            ],
            Type::I64 => &[0, 1, u64::MAX, 1 << 63, (1 << 63) - 1, 63, 64, 0xffff_ffff],
            Type::F32 => &[
                0,
                0x8000_0000,
                0x3f80_0000,
                0x7f80_0000,
                0xff80_0000,
                0x7fc0_0000,
                0x7fa0_0001,
                0xffc0_0001,
                1,
                0x4f00_0000,
            ],
            Type::F64 => &[
                0,
                1 << 63,
                0x3ff0_0000_0000_0000,
                0x7ff0_0000_0000_0000,
                0x7ff8_0000_0000_0000,
                0x7ff4_0000_0000_0001,
                1,
                0x43e0_0000_0000_0000,
            ],
        };
        let bits = if self.chance(2) {
            self.pick(edge)
        } else {
            self.raw()
        };
        if ty.bits() == 32 {
            bits & 0xffff_ffff
        } else {
            bits
        }
    }
}

/// Builds a valid trace from choices.
struct Builder<'c> {
    c: &'c mut Choices,
    used_ids: BTreeSet<u32>,
    values: Vec<(ValueId, Type)>,
    exit_ids: BTreeSet<u32>,
    global_types: HashMap<u32, Type>,
}

impl Builder<'_> {
    /// A fresh value number, sparse and in no particular order.
    fn fresh(&mut self, ty: Type) -> ValueId {
        let mut id = self.c.below(1000);
        while !self.used_ids.insert(id) {
            id += 1;
        }
        self.values.push((ValueId(id), ty));
        ValueId(id)
    }

    fn operand(&mut self, ty: Type) -> Operand {
        let candidates: Vec<ValueId> = self
            .values
            .iter()
            .filter(|v| v.1 == ty)
            .map(|v| v.0)
            .collect();
        if candidates.is_empty() || self.c.chance(4) {
            Operand::Const(self.c.bits(ty))
        } else {
            Operand::Value(self.c.pick(&candidates))
        }
    }

    /// An operand for a raw slot or global: a value of any type, or any bits.
    fn raw_operand(&mut self) -> Operand {
        if self.values.is_empty() || self.c.chance(4) {
            let ty = self.c.pick(&Type::ALL);
            Operand::Const(self.c.bits(ty))
        } else {
            Operand::Value(self.c.pick(&self.values).0)
        }
    }

    fn address(&mut self) -> Operand {
        // Mostly in bounds of a one-page memory, some near its end, some anywhere.
        match self.c.below(8) {
            0 => Operand::Const(u64::from(PAGE_SIZE as u32 - 8 + self.c.below(16))),
            1 => self.operand(Type::I32),
            _ => Operand::Const(u64::from(self.c.below(128))),
        }
    }

    fn offset(&mut self) -> u32 {
        match self.c.below(16) {
            0 => self.c.raw() as u32,
            1..=8 => 0,
            _ => self.c.below(64),
        }
    }

    fn state(&mut self, narrow_slots: &BTreeSet<u32>, is_loop: bool) -> Vec<(u32, Operand)> {
        let mut slots = BTreeSet::new();
        for _ in 0..self.c.below(5) {
            slots.insert(self.c.below(GEN_SLOTS));
        }
        slots
            .into_iter()
            .map(|slot| {
                let mut operand = self.raw_operand();
                // The loop must keep a slot read as a 32-bit type zero-extended.
                if is_loop && narrow_slots.contains(&slot) {
                    if let Operand::Const(c) = &mut operand {
                        *c &= 0xffff_ffff;
                    }
                }
                (slot, operand)
            })
            .collect()
    }

    fn exit(&mut self, narrow_slots: &BTreeSet<u32>) -> Exit {
        let mut id = self.c.below(50);
        while !self.exit_ids.insert(id) {
            id += 1;
        }
        // Some exits leave inside inlined calls: frames at increasing bases.
        let mut calls = Vec::new();
        if self.c.chance(3) {
            let mut base = 0;
            for _ in 0..1 + self.c.below(2) {
                base += 1 + self.c.below(GEN_SLOTS);
                calls.push(InlinedCall {
                    func: self.c.below(100),
                    base,
                    return_pc: self.c.below(500),
                });
            }
        }
        Exit {
            id,
            pc: self.c.below(500),
            offset: self.c.below(0x1000),
            state: self.state(narrow_slots, false),
            calls,
        }
    }

    fn trace(&mut self) -> Trace {
        let locals = self.c.below(GEN_SLOTS);
        let mut inputs = Vec::new();
        let mut sources = BTreeSet::new();
        for _ in 0..self.c.below(MAX_GEN_INPUTS + 1) {
            let ty = self.c.pick(&Type::ALL);
            let source = if self.c.chance(3) {
                Source::Global(self.c.below(GEN_GLOBALS))
            } else {
                Source::Slot(self.c.below(GEN_SLOTS))
            };
            if let Source::Global(g) = source {
                // A global has one type.
                if self.global_types.get(&g).is_some_and(|&t| t != ty) {
                    continue;
                }
                self.global_types.insert(g, ty);
            }
            if sources.insert((source, ty)) {
                let value = self.fresh(ty);
                inputs.push(Input { value, ty, source });
            }
        }
        let narrow_slots: BTreeSet<u32> = inputs
            .iter()
            .filter_map(|i| match i.source {
                Source::Slot(s) if i.ty.bits() == 32 => Some(s),
                _ => None,
            })
            .collect();

        let mut body = Vec::new();
        for _ in 0..self.c.below(MAX_GEN_BODY + 1) {
            let inst = match self.c.below(12) {
                0..=4 => {
                    let info = self.c.pick(&NUM_OPS[..]);
                    let args = info.params.iter().map(|&p| self.operand(p)).collect();
                    Inst::Num {
                        dst: self.fresh(info.result),
                        op: info.op,
                        args,
                    }
                }
                5 => {
                    let ty = self.c.pick(&Type::ALL);
                    let (a, b, cond) =
                        (self.operand(ty), self.operand(ty), self.operand(Type::I32));
                    Inst::Select {
                        dst: self.fresh(ty),
                        ty,
                        cond,
                        a,
                        b,
                    }
                }
                6 => {
                    let info = self.c.pick(&LOAD_KINDS[..]);
                    let offset = self.offset();
                    let addr = self.address();
                    Inst::Load {
                        dst: self.fresh(info.result),
                        kind: info.kind,
                        offset,
                        addr,
                    }
                }
                7 => {
                    let info = self.c.pick(&STORE_KINDS[..]);
                    let offset = self.offset();
                    let addr = self.address();
                    Inst::Store {
                        kind: info.kind,
                        offset,
                        addr,
                        value: self.operand(info.operand),
                    }
                }
                8 => {
                    let global = self.c.below(GEN_GLOBALS);
                    let value = match self.global_types.get(&global) {
                        Some(&ty) => self.operand(ty),
                        None => {
                            let value = self.raw_operand();
                            if let Operand::Value(v) = value {
                                let ty = self.values.iter().find(|x| x.0 == v).expect("defined").1;
                                self.global_types.insert(global, ty);
                            }
                            value
                        }
                    };
                    Inst::GlobalSet { global, value }
                }
                9 => Inst::MemorySize {
                    dst: self.fresh(Type::I32),
                },
                10 => {
                    let delta = if self.c.chance(2) {
                        Operand::Const(u64::from(self.c.below(3)))
                    } else {
                        self.operand(Type::I32)
                    };
                    Inst::MemoryGrow {
                        dst: self.fresh(Type::I32),
                        delta,
                    }
                }
                _ => {
                    let cond = self.operand(Type::I32);
                    let expect = self.c.chance(2);
                    Inst::Guard {
                        cond,
                        expect,
                        exit: self.exit(&narrow_slots),
                    }
                }
            };
            body.push(inst);
        }
        let end = if self.c.chance(2) {
            End::Exit(self.exit(&narrow_slots))
        } else {
            End::Loop {
                state: self.state(&narrow_slots, true),
            }
        };
        Trace {
            locals,
            inputs,
            body,
            end,
        }
    }

    /// An entry state with every input the trace reads.
    fn entry(&mut self, trace: &Trace) -> EntryState {
        let mut entry = EntryState {
            max_pages: Some(1 + self.c.below(2)),
            ..EntryState::default()
        };
        for input in &trace.inputs {
            // An input read at two types gets bits both can hold.
            let bits = self.c.bits(input.ty)
                & if self.narrow(trace, input.source) {
                    0xffff_ffff
                } else {
                    u64::MAX
                };
            match input.source {
                Source::Slot(s) => entry.slots.insert(s, bits),
                Source::Global(g) => entry.globals.insert(g, bits),
            };
        }
        if !self.c.chance(16) {
            entry.memory = vec![0; PAGE_SIZE];
            for _ in 0..self.c.below(16) {
                let at = self.c.below(80) as usize;
                entry.memory[at] = self.c.raw() as u8;
            }
        }
        entry
    }

    fn narrow(&self, trace: &Trace, source: Source) -> bool {
        trace
            .inputs
            .iter()
            .any(|i| i.source == source && i.ty.bits() == 32)
    }
}

fn choices() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(any::<u64>(), 0..600)
}

fn build(list: Vec<u64>) -> (Trace, EntryState, Choices) {
    let mut c = Choices { list, next: 0 };
    let mut b = Builder {
        c: &mut c,
        used_ids: BTreeSet::new(),
        values: Vec::new(),
        exit_ids: BTreeSet::new(),
        global_types: HashMap::new(),
    };
    let trace = b.trace();
    let entry = b.entry(&trace);
    (trace, entry, c)
}

/// `trace` with its values renumbered by a random injection and its inputs shuffled.
fn renumber(trace: &Trace, c: &mut Choices) -> Trace {
    let mut out = trace.clone();
    let mut taken = BTreeSet::new();
    let mut map: HashMap<ValueId, ValueId> = HashMap::new();
    let mut new_id = |old: ValueId, c: &mut Choices| -> ValueId {
        *map.entry(old).or_insert_with(|| {
            let mut id = c.raw() as u32;
            while !taken.insert(id) {
                id = id.wrapping_add(1);
            }
            ValueId(id)
        })
    };
    for input in &mut out.inputs {
        input.value = new_id(input.value, c);
    }
    for inst in &mut out.body {
        for operand in inst.operands_mut() {
            if let Operand::Value(v) = operand {
                *v = new_id(*v, c);
            }
        }
        if let Some(dst) = inst.def_mut() {
            *dst = new_id(*dst, c);
        }
    }
    for (_, operand) in out.end.state_mut() {
        if let Operand::Value(v) = operand {
            *v = new_id(*v, c);
        }
    }
    // Fisher-Yates over the inputs.
    for i in (1..out.inputs.len()).rev() {
        let j = c.below(i as u32 + 1) as usize;
        out.inputs.swap(i, j);
    }
    out
}

fn provenance(c: &mut Choices) -> Option<Provenance> {
    c.chance(2).then(|| Provenance {
        module_hash: format!("{:016x}{:016x}", c.raw(), c.raw()),
        func_index: c.raw() as u32,
        anchor_offset: c.raw() as u32,
        kind: if c.chance(2) {
            AnchorKind::Loop
        } else {
            AnchorKind::FuncEntry
        },
        hits: c.raw(),
    })
}

proptest! {
    #[test]
    fn generated_traces_are_valid(list in choices()) {
        let (trace, _, _) = build(list);
        prop_assert_eq!(validate(&trace), Ok(()), "{}", trace);
    }

    #[test]
    fn print_then_parse_is_the_identity(list in choices()) {
        let (trace, _, mut c) = build(list);
        let provenance = provenance(&mut c);
        let text = print_with_provenance(&trace, provenance.as_ref());
        let parsed = parse_with_provenance(&text);
        prop_assert_eq!(parsed, Ok((trace.clone(), provenance)), "{}", text);
        prop_assert_eq!(parse(&trace.to_string()), Ok(trace));
    }

    #[test]
    fn decode_after_encode_is_the_identity(list in choices()) {
        let (trace, _, _) = build(list);
        prop_assert_eq!(decode(&encode(&trace)), Ok(trace));
    }

    #[test]
    fn numbering_and_input_order_change_neither_hash_nor_meaning(list in choices()) {
        let (trace, entry, mut c) = build(list);
        let renumbered = renumber(&trace, &mut c);
        prop_assert_eq!(validate(&renumbered), Ok(()));
        prop_assert_eq!(content_hash(&renumbered), content_hash(&trace));
        let canonical = canonicalize(&trace);
        prop_assert_eq!(&canonicalize(&renumbered), &canonical);
        prop_assert_eq!(&canonicalize(&canonical), &canonical);
        prop_assert_eq!(validate(&canonical), Ok(()));
        let outcome = eval(&trace, entry.clone());
        prop_assert!(outcome.is_ok(), "{:?}", outcome);
        prop_assert_eq!(&eval(&renumbered, entry.clone()), &outcome);
        prop_assert_eq!(&eval(&canonical, entry), &outcome);
    }

    /// The hash sees content: a different pc at the end is a different trace.
    #[test]
    fn the_hash_sees_content(list in choices()) {
        let (trace, _, _) = build(list);
        let mut other = trace.clone();
        match &mut other.end {
            End::Exit(exit) => exit.pc = exit.pc.wrapping_add(1),
            End::Loop { state } => state.push((GEN_SLOTS + 1, Operand::Const(0))),
        }
        prop_assert_ne!(content_hash(&other), content_hash(&trace));
        let hash: TraceHash = content_hash(&trace).to_string().parse().unwrap();
        prop_assert_eq!(hash, content_hash(&trace));
    }

    /// A corrupted blob decodes to an error naming an offset inside it, or to a valid
    /// trace that round-trips; never a panic.
    #[test]
    fn corrupted_blobs_are_errors_or_valid_traces(list in choices(), edits in prop::collection::vec((any::<u8>(), any::<u32>(), any::<u8>()), 1..4)) {
        let (trace, _, _) = build(list);
        let mut blob = encode(&trace);
        for (what, at, byte) in edits {
            let at = at as usize % (blob.len() + 1);
            match what % 4 {
                0 => blob.truncate(at),
                1 if at < blob.len() => blob[at] ^= byte.max(1),
                2 => blob.insert(at, byte),
                _ if at < blob.len() => { blob.remove(at); }
                _ => {}
            }
        }
        match decode(&blob) {
            Ok(t) => {
                prop_assert_eq!(validate(&t), Ok(()));
                prop_assert_eq!(decode(&encode(&t)), Ok(t));
            }
            Err(e) => prop_assert!(e.offset <= blob.len(), "{} for {} bytes", e, blob.len()),
        }
    }

    /// The same for the text form: a mangled text parses to a valid trace or fails with a
    /// position inside the text.
    #[test]
    fn mangled_texts_are_errors_or_valid_traces(list in choices(), edits in prop::collection::vec((any::<u8>(), any::<u32>(), prop::sample::select(vec!['v', '0', '9', ' ', '\n', '[', ']', '=', '-', '!', ':', ';', 'x', '.'])), 1..4)) {
        let (trace, _, _) = build(list);
        let mut text: Vec<char> = trace.to_string().chars().collect();
        for (what, at, ch) in edits {
            let at = at as usize % (text.len() + 1);
            match what % 3 {
                0 => text.insert(at, ch),
                1 if at < text.len() => text[at] = ch,
                _ if at < text.len() => { text.remove(at); }
                _ => {}
            }
        }
        let text: String = text.into_iter().collect();
        match parse(&text) {
            Ok(t) => {
                prop_assert_eq!(validate(&t), Ok(()));
                prop_assert_eq!(parse(&t.to_string()), Ok(t));
            }
            Err(e) => {
                let lines = text.lines().count().max(1);
                prop_assert!(e.line >= 1 && e.line <= lines, "{} in a text of {} lines", e, lines);
            }
        }
    }
}

/// Every constant form the printer can choose reads back to the same bits.
#[test]
fn constants_round_trip_at_every_type() {
    use ir::text::{constant, constant_text};
    let mut c = Choices {
        list: (0..4000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect(),
        next: 0,
    };
    for _ in 0..1000 {
        for ty in Type::ALL {
            let bits = c.bits(ty);
            let text = constant_text(bits, Expect::Typed(ty));
            assert_eq!(
                constant(&text, Expect::Typed(ty)),
                Ok(bits),
                "{ty} {bits:#x} printed as {text}"
            );
            let raw = constant_text(bits, Expect::Raw);
            assert_eq!(constant(&raw, Expect::Raw), Ok(bits));
        }
    }
}

/// The generator reaches every kind of instruction and every way a run ends, so the
/// properties above are not vacuous.
#[test]
fn generated_traces_cover_every_construct() {
    use ir::eval::Ended;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = BTreeSet::new();
    for _ in 0..300 {
        let list = choices().new_tree(&mut runner).unwrap().current();
        let (trace, entry, _) = build(list);
        for inst in &trace.body {
            seen.insert(match inst {
                Inst::Num { op, .. } if op.can_trap() => "trapping operator",
                Inst::Num { .. } => "operator",
                Inst::Select { .. } => "select",
                Inst::Load { .. } => "load",
                Inst::Store { .. } => "store",
                Inst::GlobalSet { .. } => "global.set",
                Inst::MemorySize { .. } => "memory.size",
                Inst::MemoryGrow { .. } => "memory.grow",
                Inst::Guard { expect: true, .. } => "guard",
                Inst::Guard { expect: false, .. } => "guard !",
            });
        }
        seen.insert(match eval(&trace, entry).expect("runs").end {
            Ended::Loop { .. } => "ended in a loop",
            Ended::Exit { .. } => "ended in an exit",
            Ended::Trap(_) => "ended in a trap",
        });
    }
    let all = [
        "trapping operator",
        "operator",
        "select",
        "load",
        "store",
        "global.set",
        "memory.size",
        "memory.grow",
        "guard",
        "guard !",
        "ended in a loop",
        "ended in an exit",
        "ended in a trap",
    ];
    let missing: Vec<_> = all.iter().filter(|k| !seen.contains(*k)).collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
}
