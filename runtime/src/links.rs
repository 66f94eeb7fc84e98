//! Trace linking: where one trace exits, the next runs, without going back to the host.
//!
//! A trace function returns at its first failing guard, and the interpreter would go on
//! at the exit's pc. Where trace code exists for that pc too (a side trace recorded from
//! a hot exit, or the loop trace of the header the exit lands on), going through the
//! host costs a suspension of the interpreter, the globals set and read back, and a call
//! from the host into wasm: tens of nanoseconds, as much as a short loop body costs
//! interpreted. So the tier links traces the way trace trees do (LuaJIT's side traces,
//! TraceMonkey's trees), but at run time and across modules: every trace function of an
//! instance sits in one funcref table, and a small wasm function, the *driver*, calls
//! them one after the other, following each exit to the code linked at its pc, until an
//! exit has nothing linked. Only then does the host see it.
//!
//! The state between two traces is the frame memory itself: a trace reads its inputs
//! from it and writes its exit's state to it (`emit::abi`), exactly as the interpreter
//! would leave its frame at that pc. The frame memory is the interpreter's value stack
//! (`WasmtimeTier`), so neither side copies a slot around a drive.
//!
//! # The links memory
//!
//! What the driver follows lives in a memory of its own, written by the host:
//!
//! | at | what |
//! |---|---|
//! | [`SEGMENTS`] | u64: trace calls plus loop iterations of the last drive |
//! | [`YIELD_AFTER`] | u64: a drive returns at the first link past this many segments |
//! | [`CALLS`] | u64: trace calls of the last drive (its hand-overs and the first call) |
//! | [`DEPTH`] | u32: frames on the shadow stack when the last drive ended |
//! | [`DEPTH_LIMIT`] | u32: the most frames a drive may push (written before each drive) |
//! | [`FRAME_END`] | u32: where the frame memory's stack ends, in bytes |
//! | [`CALL_ROOM`] | u32: bytes from a callee's frame base its traces may touch, at most |
//! | [`TRACE_RECORDS`] + 32·t | trace `t` (its table index): exit map address, exit count, own entry slot (u32 each, then 4 spare bytes); at +16 a u64, its *passes*: calls plus loop iterations since it was added; 8 spare bytes |
//! | [`SLOT_TARGETS`] + 4·k | link slot `k` (one per function and pc): -1 nothing linked, -2 a return, t ≥ 0 trace t, less than -2 a record (selector or call) at address −target |
//! | [`SHADOW_STACK`] + 16·d | frame `d` of the shadow stack: return slot, shift in bytes, callee (u32 each, 4 spare bytes) |
//! | [`HEAP`] … | exit maps (a link slot per exit id), selectors and call records |
//!
//! A selector is where a `br_table` picks the side trace: at its pc the tier may hold one
//! side trace per arm, so the driver reads the index slot from the frame and looks the arm
//! up: `[kind, index slot, arm count, target per arm…]` (the last arm is the default).
//!
//! A trace whose exit lands on its own entry slot made no progress (a side trace's first
//! guard failed): the driver returns rather than calling it again.
//!
//! # Calls and returns
//!
//! An exit at a call of one of the module's functions may be linked to the callee's
//! *entry trace* (a side trace recorded from its pc 0 in its own frame): a *call record*
//! `[kind, entry slot, shift, return slot, callee]`. The driver then pushes the return
//! slot (where the caller goes on, the call's pc + 1), the shift (the callee's frame
//! base in bytes from the caller's) and the callee on the *shadow stack*, moves its frame
//! up by the shift and calls the entry trace: the callee's frame starts at the caller's
//! argument slots, as the interpreter's calls do, so nothing is copied. An exit at a
//! return is linked to [`RETURN`]: with the shadow stack empty it ends the chain (the
//! interpreter returns), else the driver pops a frame and follows the return slot. The
//! recursion lives in the links memory, never on wasm's own stack, so a deep one cannot
//! exhaust it; the host bounds its depth per drive ([`DEPTH_LIMIT`]: what the
//! interpreter would allow) and the room a call's frame needs ([`CALL_ROOM`] below
//! [`FRAME_END`]), and a call without room, or to a callee without an entry trace, ends
//! the chain at the call. A chain that ends with frames on the shadow stack leaves them
//! there ([`DEPTH`] says how many) and the host hands the interpreter the calls they
//! stand for (`TierExit::ResumeInCalls`).
//!
//! Trace code writes its iteration word just below its frame: for a callee that is a
//! slot of its caller's, so the driver saves that word before each trace call and puts
//! it back after reading it.

use std::collections::HashMap;
use std::rc::Rc;

use ir::InlinedCall;

use wasm_encoder::{
    BlockType, CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection,
    ImportSection, Instruction, MemArg, MemArgTarget, MemoryType, Module, RefType, TableType,
    TypeSection, ValType,
};

use emit::abi::{FRAME_MEMORY, ITERATION_WORD_BYTES, KILN_MODULE, SLOT_BYTES};

/// The import name of the links memory.
pub const LINKS_MEMORY: &str = "links";
/// The import name of the table of trace functions.
pub const TRACE_TABLE: &str = "traces";
/// The driver's export name.
pub const DRIVE_EXPORT: &str = "drive";

/// Trace functions one instance may link: a table index and a 32-byte record each, so
/// the records take 2 MiB. Kiln records a trace per hot loop and side traces per hot
/// exit; real programs have hundreds, not tens of thousands.
pub const MAX_LINKED_TRACES: u32 = 1 << 16;
/// Link slots (function and pc pairs some exit lands on): 4 bytes each, 1 MiB.
pub const MAX_LINK_SLOTS: u32 = 1 << 18;
/// Where the segment count of the last drive is.
pub const SEGMENTS: u32 = 0;
/// Where the host says after how many segments a drive returns (u64): at the next link,
/// it stops as if nothing were linked there, so the host gets a turn (to rebuild a
/// trace tree) even while a chain would go on for ever. `u64::MAX`: never.
pub const YIELD_AFTER: u32 = 8;
/// Where the trace calls of the last drive are counted: its segments less the loop
/// iterations inside trace code, so the hand-overs from trace to trace are one less.
pub const CALLS: u32 = 16;
/// Where the driver leaves the shadow stack's depth when a drive ends (u32).
pub const DEPTH: u32 = 24;
/// Where the host says how many frames a drive may push (u32).
pub const DEPTH_LIMIT: u32 = 28;
/// Where the host says where the stack ends in the frame memory, in bytes (u32).
pub const FRAME_END: u32 = 32;
/// Where the host says how many bytes above a callee's frame base its traces may touch
/// (u32): a call is made only with that much room left below [`FRAME_END`].
pub const CALL_ROOM: u32 = 36;
/// Where the trace records start (a cache line after the segment count).
pub const TRACE_RECORDS: u32 = 64;
const TRACE_RECORD_BYTES: u32 = 32;
/// Where in a trace record its pass count (u64) is.
const RECORD_PASSES: u32 = 16;
pub const SLOT_TARGETS: u32 = TRACE_RECORDS + MAX_LINKED_TRACES * TRACE_RECORD_BYTES;
/// Frames the shadow stack holds: above the interpreter's default call depth
/// (`StackLimits::max_call_depth`, 50,000), so that the interpreter's limit, not this
/// one, is what a deep recursion meets; 16 bytes each, 1 MiB.
pub const SHADOW_CAPACITY: u32 = 1 << 16;
const SHADOW_FRAME_BYTES: u32 = 16;
pub const SHADOW_STACK: u32 = SLOT_TARGETS + MAX_LINK_SLOTS * 4;
pub const HEAP: u32 = SHADOW_STACK + SHADOW_CAPACITY * SHADOW_FRAME_BYTES;
/// What the driver returns for an exit id its trace does not have (a broken trace).
pub const BAD_EXIT: u32 = u32::MAX;
/// A slot target: nothing linked.
const UNLINKED: i32 = -1;
/// A slot target: a return (pop a shadow frame, or end the chain).
pub const RETURN: i32 = -2;
/// The first word of a record in the heap.
const KIND_SELECTOR: u32 = 0;
const KIND_CALL: u32 = 1;
/// An entry slot for a trace that has none yet (a loop trace before its anchor's first
/// entry): matches no slot.
const NO_SLOT: u32 = u32::MAX - 1;
const PAGE: usize = 65536;
/// Where a selector's targets start in its record (after kind, index slot, last arm).
const SELECTOR_ARMS: u32 = 12;
/// A call record: kind, entry slot, shift in bytes, return slot, callee.
const CALL_RECORD_BYTES: u32 = 20;

/// What is linked at one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    None,
    Trace(u32),
    /// A `br_table`'s pc: its index slot and, per arm, the trace linked (if any); the
    /// record is at `addr` in the links memory.
    Selector {
        index_slot: u32,
        arms: Vec<Option<u32>>,
        addr: u32,
    },
    /// A call of `callee`, whose entry trace is linked at `entry_slot`: its frame starts
    /// `shift` slots above the caller's, which goes on at `return_slot`.
    Call {
        callee: u32,
        entry_slot: u32,
        shift: u32,
        return_slot: u32,
    },
    /// A return.
    Return,
}

/// What a link slot holds, as the tier needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    None,
    Trace,
    Selector,
    Call,
    Return,
}

/// A frame the driver left on the shadow stack: a call trace code made itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowFrame {
    /// Where the caller goes on when the callee returns.
    pub return_slot: u32,
    /// The callee's frame base, in slots from the caller's.
    pub shift: u32,
    pub callee: u32,
}

/// Where an exit lands: a pc of the trace's function, or of a callee inside calls the
/// trace inlined; and, for a guard's exit, which way the guard expected its branch to go.
/// Two guards at one branch that expected opposite ways continue on different paths, so
/// they land on different slots, each with a side trace of its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Place {
    pub func_index: u32,
    /// In the function itself, or in the innermost of `calls`.
    pub pc: u32,
    /// The inlined calls (outermost first) the exit is inside, if any.
    pub calls: Option<Rc<[InlinedCall]>>,
    /// The guard's `expect`, for a guard's exit.
    pub expect: Option<bool>,
}

impl Place {
    /// `pc` of function `func_index`, reached other than by a guard (a loop header, a
    /// trace's end).
    pub fn at(func_index: u32, pc: u32) -> Place {
        Place {
            func_index,
            pc,
            calls: None,
            expect: None,
        }
    }

    /// Where side trace start `start` is linked (its `br_table` arm aside).
    pub fn of_side(start: &ir::SideStart) -> Place {
        Place {
            func_index: start.func_index,
            pc: start.pc,
            calls: (!start.calls.is_empty()).then(|| Rc::from(start.calls.as_slice())),
            expect: start.expect,
        }
    }
}

/// One place some exit lands on.
#[derive(Debug, Clone)]
pub struct LinkSlot {
    pub place: Place,
    target: Target,
    /// Exits to the interpreter here since the last side-trace request.
    pub misses: u32,
    /// Side-trace recordings asked for here that produced nothing.
    pub failures: u32,
    /// Side traces linked here.
    pub side_traces: u32,
    /// A side trace for here is being compiled (`compiler.rs`): no other is asked for.
    pub pending: bool,
}

/// The host's side of the links memory: slots by place, records written through
/// [`LinkImage::write`] to wherever the memory is.
#[derive(Debug, Default)]
pub struct Links {
    pub slots: Vec<LinkSlot>,
    by_place: HashMap<Place, u32>,
    /// Next free byte of the heap.
    heap_top: u32,
    /// Writes not yet applied to the memory: (address, little-endian bytes).
    writes: Vec<(u32, Vec<u8>)>,
}

/// Why something could not be linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    TooManyTraces,
    TooManySlots,
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::TooManyTraces => write!(f, "more than {MAX_LINKED_TRACES} trace functions"),
            LinkError::TooManySlots => write!(f, "more than {MAX_LINK_SLOTS} exit pcs"),
        }
    }
}

impl Links {
    pub fn new() -> Links {
        let mut links = Links {
            heap_top: HEAP,
            ..Links::default()
        };
        links.set_yield_after(u64::MAX);
        links
    }

    /// Drives return at the first link past `segments` segments ([`YIELD_AFTER`]).
    pub fn set_yield_after(&mut self, segments: u64) {
        self.writes
            .push((YIELD_AFTER, segments.to_le_bytes().to_vec()));
    }

    /// The bytes the links memory must have for everything written so far.
    pub fn bytes_needed(&self) -> usize {
        self.heap_top as usize
    }

    /// Pages for [`Links::bytes_needed`].
    pub fn pages_needed(&self) -> u64 {
        self.bytes_needed().div_ceil(PAGE) as u64
    }

    /// The slot for `place`, made (unlinked) on first use.
    pub fn slot(&mut self, place: Place) -> Result<u32, LinkError> {
        if let Some(&k) = self.by_place.get(&place) {
            return Ok(k);
        }
        let k = self.slots.len() as u32;
        if k >= MAX_LINK_SLOTS {
            return Err(LinkError::TooManySlots);
        }
        self.slots.push(LinkSlot {
            place: place.clone(),
            target: Target::None,
            misses: 0,
            failures: 0,
            side_traces: 0,
            pending: false,
        });
        self.by_place.insert(place, k);
        self.set_target(k, UNLINKED);
        Ok(k)
    }

    /// Writes trace `t`'s record: its exits land on `exit_slots` (by exit id; `None`
    /// for an id the trace does not have), and it is entered at `entry_slot`.
    pub fn add_trace(
        &mut self,
        t: u32,
        exit_slots: &[Option<u32>],
        entry_slot: Option<u32>,
    ) -> Result<(), LinkError> {
        if t >= MAX_LINKED_TRACES {
            return Err(LinkError::TooManyTraces);
        }
        let map = self.alloc(exit_slots.len() as u32 * 4);
        let bytes: Vec<u8> = exit_slots
            .iter()
            .flat_map(|s| s.unwrap_or(BAD_EXIT).to_le_bytes())
            .collect();
        self.writes.push((map, bytes));
        let mut record = Vec::with_capacity(TRACE_RECORD_BYTES as usize);
        record.extend(map.to_le_bytes());
        record.extend((exit_slots.len() as u32).to_le_bytes());
        record.extend(entry_slot.unwrap_or(NO_SLOT).to_le_bytes());
        record.extend(0u32.to_le_bytes());
        record.extend(0u64.to_le_bytes()); // passes
        self.writes
            .push((TRACE_RECORDS + t * TRACE_RECORD_BYTES, record));
        Ok(())
    }

    /// Trace `t`'s passes so far (calls plus loop iterations), read from the links
    /// memory's bytes `memory`.
    pub fn passes(memory: &[u8], t: u32) -> u64 {
        let at = (TRACE_RECORDS + t * TRACE_RECORD_BYTES + RECORD_PASSES) as usize;
        memory
            .get(at..at + 8)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// Sets trace `t`'s entry slot (a loop trace's, once its anchor's pc is known).
    pub fn set_entry(&mut self, t: u32, entry_slot: u32) {
        self.writes.push((
            TRACE_RECORDS + t * TRACE_RECORD_BYTES + 8,
            entry_slot.to_le_bytes().to_vec(),
        ));
    }

    /// Links trace `t` at slot `k`: every exit landing there goes on in `t`.
    pub fn link(&mut self, k: u32, t: u32) {
        self.slots[k as usize].target = Target::Trace(t);
        self.set_target(k, t as i32);
    }

    /// Links trace `t` at slot `k` for arm `arm` of the `br_table` there, which reads
    /// `index_slot` and has `arm_count` arms (the default last). `false` if the slot
    /// already links a trace for every arm, or a selector of another shape.
    pub fn link_arm(&mut self, k: u32, index_slot: u32, arm_count: u32, arm: u32, t: u32) -> bool {
        if arm >= arm_count {
            return false;
        }
        let addr = match &self.slots[k as usize].target {
            Target::Selector {
                index_slot: s,
                arms,
                addr,
            } if *s == index_slot && arms.len() as u32 == arm_count => *addr,
            Target::None => {
                let addr = self.alloc(SELECTOR_ARMS + 4 * arm_count);
                let mut record = Vec::with_capacity((SELECTOR_ARMS + 4 * arm_count) as usize);
                record.extend(KIND_SELECTOR.to_le_bytes());
                record.extend(index_slot.to_le_bytes());
                // The driver clamps the index to the last arm: it reads `arm_count - 1`.
                record.extend((arm_count - 1).to_le_bytes());
                for _ in 0..arm_count {
                    record.extend(UNLINKED.to_le_bytes());
                }
                self.writes.push((addr, record));
                self.slots[k as usize].target = Target::Selector {
                    index_slot,
                    arms: vec![None; arm_count as usize],
                    addr,
                };
                self.set_target(k, -(addr as i32));
                addr
            }
            _ => return false,
        };
        let Target::Selector { arms, .. } = &mut self.slots[k as usize].target else {
            unreachable!("the slot was just made a selector");
        };
        if arms[arm as usize].is_some() {
            return false;
        }
        arms[arm as usize] = Some(t);
        self.writes.push((
            addr + SELECTOR_ARMS + 4 * arm,
            (t as i32).to_le_bytes().to_vec(),
        ));
        true
    }

    /// Links slot `k`, an exit at a call of `callee`, to the callee's entry trace at
    /// `entry_slot`: the callee's frame is `shift` slots above the caller's, and the caller
    /// goes on at `return_slot`. `false` if `k` has something linked already.
    pub fn link_call(
        &mut self,
        k: u32,
        callee: u32,
        entry_slot: u32,
        shift: u32,
        return_slot: u32,
    ) -> bool {
        if !matches!(self.slots[k as usize].target, Target::None) {
            return false;
        }
        let addr = self.alloc(CALL_RECORD_BYTES);
        let mut record = Vec::with_capacity(CALL_RECORD_BYTES as usize);
        for word in [
            KIND_CALL,
            entry_slot,
            shift * SLOT_BYTES as u32,
            return_slot,
            callee,
        ] {
            record.extend(word.to_le_bytes());
        }
        self.writes.push((addr, record));
        self.slots[k as usize].target = Target::Call {
            callee,
            entry_slot,
            shift,
            return_slot,
        };
        self.set_target(k, -(addr as i32));
        true
    }

    /// Links slot `k`, an exit at a return, as one. `false` if `k` has something linked
    /// already.
    pub fn link_return(&mut self, k: u32) -> bool {
        if !matches!(self.slots[k as usize].target, Target::None) {
            return false;
        }
        self.slots[k as usize].target = Target::Return;
        self.set_target(k, RETURN);
        true
    }

    /// The frames the last drive left on the shadow stack (outermost first), read from
    /// the links memory's bytes `memory`; `None` if its words say something no drive
    /// leaves (a depth past the capacity).
    pub fn shadow_frames(memory: &[u8]) -> Option<Vec<ShadowFrame>> {
        let word = |at: u32| -> Option<u32> {
            let at = at as usize;
            Some(u32::from_le_bytes(memory.get(at..at + 4)?.try_into().ok()?))
        };
        let depth = word(DEPTH)?;
        if depth > SHADOW_CAPACITY {
            return None;
        }
        (0..depth)
            .map(|d| {
                let at = SHADOW_STACK + d * SHADOW_FRAME_BYTES;
                let shift = word(at + 4)?;
                Some(ShadowFrame {
                    return_slot: word(at)?,
                    shift: shift / SLOT_BYTES as u32,
                    callee: word(at + 8)?,
                })
            })
            .collect()
    }

    /// The slot of `place`, if some exit lands there.
    pub fn find(&self, place: &Place) -> Option<u32> {
        self.by_place.get(place).copied()
    }

    /// What is linked at slot `k`.
    pub fn target(&self, k: u32) -> &Target {
        &self.slots[k as usize].target
    }

    /// What kind of thing is linked at slot `k`.
    pub fn target_kind(&self, k: u32) -> TargetKind {
        match self.slots[k as usize].target {
            Target::None => TargetKind::None,
            Target::Trace(_) => TargetKind::Trace,
            Target::Selector { .. } => TargetKind::Selector,
            Target::Call { .. } => TargetKind::Call,
            Target::Return => TargetKind::Return,
        }
    }

    /// Whether [`Links::link_arm`] with these arguments would link.
    pub fn arm_is_free(&self, k: u32, index_slot: u32, arm_count: u32, arm: u32) -> bool {
        if arm >= arm_count {
            return false;
        }
        match &self.slots[k as usize].target {
            Target::None => true,
            Target::Selector {
                index_slot: s,
                arms,
                ..
            } => *s == index_slot && arms.len() as u32 == arm_count && arms[arm as usize].is_none(),
            Target::Trace(_) | Target::Call { .. } | Target::Return => false,
        }
    }

    /// Whether some write has not reached the memory yet.
    pub fn has_writes(&self) -> bool {
        !self.writes.is_empty()
    }

    /// Applies the pending writes to `memory`, which must be at least
    /// [`Links::bytes_needed`] long.
    pub fn flush(&mut self, memory: &mut [u8]) {
        for (at, bytes) in self.writes.drain(..) {
            let at = at as usize;
            memory[at..at + bytes.len()].copy_from_slice(&bytes);
        }
    }

    fn set_target(&mut self, k: u32, target: i32) {
        self.writes
            .push((SLOT_TARGETS + 4 * k, target.to_le_bytes().to_vec()));
    }

    fn alloc(&mut self, bytes: u32) -> u32 {
        let at = self.heap_top;
        self.heap_top += bytes.next_multiple_of(8);
        at
    }
}

/// The driver module: imports the frame memory (0), the links memory (1) and the trace
/// table, exports `drive(frame, trace) -> slot`, which calls `trace` and every trace
/// linked after it, and returns the link slot of the exit that ends the chain (or
/// [`BAD_EXIT`]), having stored the segment count at [`SEGMENTS`].
pub fn driver_module() -> Vec<u8> {
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]); // 0: a trace function
    types
        .ty()
        .function([ValType::I32, ValType::I32], [ValType::I32]); // 1: the driver
    module.section(&types);
    let mut imports = ImportSection::new();
    let memory = |min| {
        EntityType::Memory(MemoryType {
            minimum: min,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        })
    };
    imports.import(KILN_MODULE, FRAME_MEMORY, memory(0));
    imports.import(
        KILN_MODULE,
        LINKS_MEMORY,
        memory(u64::from(HEAP).div_ceil(PAGE as u64)),
    );
    imports.import(
        KILN_MODULE,
        TRACE_TABLE,
        EntityType::Table(TableType {
            element_type: RefType::FUNCREF,
            table64: false,
            minimum: 0,
            maximum: None,
            shared: false,
        }),
    );
    module.section(&imports);
    let mut funcs = FunctionSection::new();
    funcs.function(1);
    module.section(&funcs);
    let mut exports = ExportSection::new();
    exports.export(DRIVE_EXPORT, ExportKind::Func, 0);
    module.section(&exports);
    let mut code = CodeSection::new();
    code.function(&driver_body());
    module.section(&code);
    module.finish()
}

fn driver_body() -> Function {
    use Instruction as I;
    // Parameters: 0 frame, 1 trace. Locals: 2 exit, 3 record, 4 slot, 5 next, 6 index,
    // 7 depth, 8 at; 9 segments (i64), 10 passes of this call (i64), 11 calls (i64),
    // 12 the word below the frame (i64).
    let (frame, trace, exit, record, slot, next, index, depth, at) = (0, 1, 2, 3, 4, 5, 6, 7, 8);
    let (segments, passes, calls, below) = (9, 10, 11, 12);
    let mut f = Function::new([(7, ValType::I32), (4, ValType::I64)]);
    let frame_mem = |offset: u64| MemArg {
        offset,
        align: 3,
        target: MemArgTarget::Memory(0),
        ordering: None,
    };
    let links32 = |offset: u64| MemArg {
        offset,
        align: 2,
        target: MemArgTarget::Memory(1),
        ordering: None,
    };
    let links64 = |offset: u64| MemArg {
        offset,
        align: 3,
        target: MemArgTarget::Memory(1),
        ordering: None,
    };
    let word = |addr: u32| [I::I32Const(0), I::I32Load(links32(u64::from(addr)))];
    let mut insts = vec![
        I::Block(BlockType::Empty), // $out: the chain ends with `slot` set
        I::Loop(BlockType::Empty),  // $next: call `trace`
        // below = the word under the frame, which the trace's iteration word overwrites
        I::LocalGet(frame),
        I::I32Const(ITERATION_WORD_BYTES as i32),
        I::I32Sub,
        I::I64Load(frame_mem(0)),
        I::LocalSet(below),
        // exit = traces[trace](frame)
        I::LocalGet(frame),
        I::LocalGet(trace),
        I::CallIndirect {
            type_index: 0,
            table_index: 0,
        },
        I::LocalSet(exit),
        I::LocalGet(calls),
        I::I64Const(1),
        I::I64Add,
        I::LocalSet(calls),
        // passes = iteration word + 1; segments += passes; the word below is put back
        I::LocalGet(frame),
        I::I32Const(ITERATION_WORD_BYTES as i32),
        I::I32Sub,
        I::I64Load(frame_mem(0)),
        I::I64Const(1),
        I::I64Add,
        I::LocalTee(passes),
        I::LocalGet(segments),
        I::I64Add,
        I::LocalSet(segments),
        I::LocalGet(frame),
        I::I32Const(ITERATION_WORD_BYTES as i32),
        I::I32Sub,
        I::LocalGet(below),
        I::I64Store(frame_mem(0)),
        // record = TRACE_RECORDS + 32 * trace; its pass count += passes
        I::LocalGet(trace),
        I::I32Const(TRACE_RECORD_BYTES as i32),
        I::I32Mul,
        I::LocalTee(record),
        I::LocalGet(record),
        I::I64Load(links64(u64::from(TRACE_RECORDS + RECORD_PASSES))),
        I::LocalGet(passes),
        I::I64Add,
        I::I64Store(links64(u64::from(TRACE_RECORDS + RECORD_PASSES))),
        // An exit id the trace does not have ends the chain with BAD_EXIT.
        I::I32Const(BAD_EXIT as i32),
        I::LocalSet(slot),
        I::LocalGet(exit),
        I::LocalGet(record),
        I::I32Load(links32(u64::from(TRACE_RECORDS) + 4)),
        I::I32GeU,
        I::BrIf(1),
        // slot = exit_map[exit]
        I::LocalGet(record),
        I::I32Load(links32(u64::from(TRACE_RECORDS))),
        I::LocalGet(exit),
        I::I32Const(4),
        I::I32Mul,
        I::I32Add,
        I::I32Load(links32(0)),
        I::LocalSet(slot),
        // Back at its own entry: no progress, the host takes over.
        I::LocalGet(slot),
        I::LocalGet(record),
        I::I32Load(links32(u64::from(TRACE_RECORDS) + 8)),
        I::I32Eq,
        I::BrIf(1),
        // The host wants a turn: stop here, as if nothing were linked.
        I::LocalGet(segments),
        I::I32Const(0),
        I::I64Load(links64(u64::from(YIELD_AFTER))),
        I::I64GeU,
        I::BrIf(1),
        // $resolve: what is linked at `slot` (labels inside: $resolve 0, $next 1, $out 2).
        I::Loop(BlockType::Empty),
        // next = slot_targets[slot]
        I::LocalGet(slot),
        I::I32Const(4),
        I::I32Mul,
        I::I32Load(links32(u64::from(SLOT_TARGETS))),
        I::LocalTee(next),
        I::I32Const(0),
        I::I32GeS,
        I::If(BlockType::Empty),
        I::LocalGet(next),
        I::LocalSet(trace),
        I::Br(2), // $next
        I::End,
        I::LocalGet(next),
        I::I32Const(UNLINKED),
        I::I32Eq,
        I::BrIf(2), // $out
        // A return: pop a frame and follow its return slot; with none, the chain ends.
        I::LocalGet(next),
        I::I32Const(RETURN),
        I::I32Eq,
        I::If(BlockType::Empty),
        I::LocalGet(depth),
        I::I32Eqz,
        I::BrIf(3), // $out
        I::LocalGet(depth),
        I::I32Const(1),
        I::I32Sub,
        I::LocalTee(depth),
        I::I32Const(SHADOW_FRAME_BYTES as i32),
        I::I32Mul,
        I::LocalTee(at),
        I::I32Load(links32(u64::from(SHADOW_STACK))),
        I::LocalSet(slot),
        I::LocalGet(frame),
        I::LocalGet(at),
        I::I32Load(links32(u64::from(SHADOW_STACK) + 4)),
        I::I32Sub,
        I::LocalSet(frame),
        I::Br(1), // $resolve
        I::End,
        // A record at -next.
        I::I32Const(0),
        I::LocalGet(next),
        I::I32Sub,
        I::LocalTee(next),
        I::I32Load(links32(0)),
        I::I32Const(KIND_SELECTOR as i32),
        I::I32Eq,
        I::If(BlockType::Empty),
        // A selector: index = min(frame slot, last arm); next = arms[index]. (In a frame
        // the driver set up for a call the constant slots are unwritten: a `br_table` on
        // a constant reads garbage here, but only that constant's arm can have a side
        // trace, so another arm just ends the chain, and the interpreter writes them.)
        I::LocalGet(frame),
        I::LocalGet(next),
        I::I32Load(links32(4)),
        I::I32Const(SLOT_BYTES as i32),
        I::I32Mul,
        I::I32Add,
        I::I32Load(MemArg {
            offset: 0,
            align: 2,
            target: MemArgTarget::Memory(0),
            ordering: None,
        }),
        I::LocalTee(index),
        I::LocalGet(next),
        I::I32Load(links32(8)),
        I::LocalGet(index),
        I::LocalGet(next),
        I::I32Load(links32(8)),
        I::I32LeU,
        I::Select,
        I::I32Const(4),
        I::I32Mul,
        I::LocalGet(next),
        I::I32Add,
        I::I32Load(links32(u64::from(SELECTOR_ARMS))),
        I::LocalTee(next),
        I::I32Const(0),
        I::I32LtS,
        I::BrIf(3), // $out: no side trace for this arm
        I::LocalGet(next),
        I::LocalSet(trace),
        I::Br(2), // $next
        I::End,
        // A call: index = the entry trace linked at its entry slot; none ends the chain.
        I::LocalGet(next),
        I::I32Load(links32(4)),
        I::I32Const(4),
        I::I32Mul,
        I::I32Load(links32(u64::from(SLOT_TARGETS))),
        I::LocalTee(index),
        I::I32Const(0),
        I::I32LtS,
        I::BrIf(2), // $out
        // No frame left to push: the interpreter makes the call (and traps if it must).
        I::LocalGet(depth),
    ];
    insts.extend(word(DEPTH_LIMIT));
    insts.extend([
        I::I32GeU,
        I::BrIf(2), // $out
        // frame + shift + CALL_ROOM > FRAME_END: no room for the callee's frames.
        I::LocalGet(frame),
        I::I64ExtendI32U,
        I::LocalGet(next),
        I::I32Load(links32(8)),
        I::I64ExtendI32U,
        I::I64Add,
    ]);
    insts.extend(word(CALL_ROOM));
    insts.extend([I::I64ExtendI32U, I::I64Add]);
    insts.extend(word(FRAME_END));
    insts.extend([
        I::I64ExtendI32U,
        I::I64GtU,
        I::BrIf(2), // $out
        // Push [return slot, shift, callee]; frame += shift; call the entry trace.
        I::LocalGet(depth),
        I::I32Const(SHADOW_FRAME_BYTES as i32),
        I::I32Mul,
        I::LocalTee(at),
        I::LocalGet(next),
        I::I32Load(links32(12)),
        I::I32Store(links32(u64::from(SHADOW_STACK))),
        I::LocalGet(at),
        I::LocalGet(next),
        I::I32Load(links32(8)),
        I::I32Store(links32(u64::from(SHADOW_STACK) + 4)),
        I::LocalGet(at),
        I::LocalGet(next),
        I::I32Load(links32(16)),
        I::I32Store(links32(u64::from(SHADOW_STACK) + 8)),
        I::LocalGet(depth),
        I::I32Const(1),
        I::I32Add,
        I::LocalSet(depth),
        I::LocalGet(frame),
        I::LocalGet(next),
        I::I32Load(links32(8)),
        I::I32Add,
        I::LocalSet(frame),
        I::LocalGet(index),
        I::LocalSet(trace),
        I::Br(1), // $next
        I::End,   // $resolve
        I::End,   // $next
        I::End,   // $out
        I::I32Const(0),
        I::LocalGet(segments),
        I::I64Store(links64(u64::from(SEGMENTS))),
        I::I32Const(0),
        I::LocalGet(calls),
        I::I64Store(links64(u64::from(CALLS))),
        I::I32Const(0),
        I::LocalGet(depth),
        I::I32Store(links32(u64::from(DEPTH))),
        I::LocalGet(slot),
        I::End,
    ]);
    for inst in &insts {
        f.instruction(inst);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace_code::TraceMeta;

    /// Exits land on places: the same place is one slot; a guard that expected the other
    /// way, another pc, exits inside a call, or an exit that is not a guard's are others.
    #[test]
    fn exits_land_on_a_slot_per_place() {
        let trace = ir::text::parse(
            "trace locals=2
              in  v0:i32 = slot 0
              in  v1:i32 = slot 1
              guard v0 else exit 0 pc=5 @0x10 []
              guard !v1 else exit 1 pc=5 @0x10 []
              guard v1 else exit 2 pc=5 @0x10 in f3 s4 ret=9 [s4=v0]
              guard v0 else exit 3 pc=7 @0x14 []
              exit 4 pc=5 @0x10 []",
        )
        .expect("the trace parses");
        let meta = TraceMeta::of(&trace, 1, 0x40);
        assert_eq!(
            meta.exit_expects,
            [(0, true), (1, false), (2, true), (3, true)].into()
        );
        let mut links = Links::new();
        let place = |id: u32| Place {
            func_index: meta.func_index,
            pc: meta.exits[&id],
            calls: meta.exit_calls.get(&id).cloned(),
            expect: meta.exit_expects.get(&id).copied(),
        };
        let slots: Vec<u32> = (0..5).map(|id| links.slot(place(id)).unwrap()).collect();
        assert_eq!(slots, [0, 1, 2, 3, 4]);
        assert_eq!(links.slot(place(1)), Ok(1));
        assert_eq!(links.find(&place(2)), Some(2));
        assert_eq!(links.find(&Place::at(1, 7)), None);
        assert_eq!(links.slot(Place::at(1, 5)), Ok(4));
    }

    /// A call record and a return say what they link; the frames a drive leaves on the
    /// shadow stack read back as written, and a depth past the stack's capacity is
    /// refused rather than read.
    #[test]
    fn calls_returns_and_the_shadow_stack() {
        let mut links = Links::new();
        let call = links.slot(Place::at(1, 4)).unwrap();
        let entry = links.slot(Place::at(2, 0)).unwrap();
        let back = links.slot(Place::at(1, 5)).unwrap();
        let ret = links.slot(Place::at(2, 9)).unwrap();
        links.link(entry, 7);
        assert!(links.link_call(call, 2, entry, 3, back));
        assert!(!links.link_call(call, 2, entry, 3, back), "linked once");
        assert!(links.link_return(ret));
        assert!(!links.link_return(entry), "a trace is linked there");
        assert_eq!(links.target_kind(call), TargetKind::Call);
        assert_eq!(links.target_kind(ret), TargetKind::Return);
        assert!(!links.arm_is_free(call, 0, 2, 0));
        let mut memory = vec![0u8; links.bytes_needed()];
        links.flush(&mut memory);
        let word =
            |at: u32| i32::from_le_bytes(memory[at as usize..at as usize + 4].try_into().unwrap());
        assert_eq!(word(SLOT_TARGETS + 4 * ret), RETURN);
        let record = -word(SLOT_TARGETS + 4 * call) as u32;
        assert_eq!(
            (1..5)
                .map(|i| word(record + 4 * i) as u32)
                .collect::<Vec<_>>(),
            [entry, 3 * SLOT_BYTES as u32, back, 2]
        );
        // Two frames, as the driver pushes them.
        for (d, frame) in [[back, 24, 2], [back, 16, 2]].iter().enumerate() {
            for (i, w) in frame.iter().enumerate() {
                let at = SHADOW_STACK as usize + 16 * d + 4 * i;
                memory[at..at + 4].copy_from_slice(&w.to_le_bytes());
            }
        }
        memory[DEPTH as usize..DEPTH as usize + 4].copy_from_slice(&2u32.to_le_bytes());
        let frame = |shift| ShadowFrame {
            return_slot: back,
            shift,
            callee: 2,
        };
        assert_eq!(
            Links::shadow_frames(&memory),
            Some(vec![frame(3), frame(2)])
        );
        memory[DEPTH as usize..DEPTH as usize + 4]
            .copy_from_slice(&(SHADOW_CAPACITY + 1).to_le_bytes());
        assert_eq!(Links::shadow_frames(&memory), None);
    }

    #[test]
    fn the_driver_module_validates() {
        let bytes = driver_module();
        let mut validator = wasmparser::Validator::new_with_features(
            wasmparser::WasmFeatures::default() | wasmparser::WasmFeatures::MULTI_MEMORY,
        );
        validator
            .validate_all(&bytes)
            .expect("the driver validates");
    }
}
