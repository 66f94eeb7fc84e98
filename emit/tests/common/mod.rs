//! Shared by the tests: entry states, the reference run (iterating `ir::eval`), the run of
//! an emitted function in wasmtime, and the comparison of the two.

#![allow(dead_code)]

use std::collections::BTreeMap;

use emit::abi::{self, GlobalInfo, GuestInfo, SLOT_BYTES};
use ir::eval::{eval, Ended, EntryState, TrapKind, PAGE_SIZE};
use ir::{Inst, Operand, Source, Trace, Type};
use wasmtime::{Config, Engine, Global, Instance, Memory, Strategy, Val};

/// A small deterministic generator (xorshift64*), so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick(&mut self, pool: &[u64]) -> u64 {
        pool[self.below(pool.len() as u64) as usize]
    }
}

/// Edge values of a type, raw: for integers 0, 1, -1, MIN, MAX and neighbours, small
/// numbers and addresses near the end of one and two pages; for floats the zeros,
/// infinities, NaNs and the bounds of float-to-int truncation.
pub fn edges(ty: Type) -> Vec<u64> {
    match ty {
        Type::I32 | Type::I64 => {
            let (min, max, mask) = if ty == Type::I32 {
                (0x8000_0000u64, 0x7fff_ffffu64, 0xffff_ffffu64)
            } else {
                (1u64 << 63, (1u64 << 63) - 1, u64::MAX)
            };
            let page = PAGE_SIZE as u64;
            let mut v = vec![
                0,
                1,
                2,
                3,
                7,
                8,
                31,
                32,
                33,
                63,
                64,
                255,
                256,
                1000,
                page - 8,
                page - 4,
                page - 1,
                page,
                2 * page - 4,
                mask,
                mask - 1,
                min,
                min + 1,
                max,
                max - 1,
            ];
            v.iter_mut().for_each(|x| *x &= mask);
            v
        }
        Type::F32 => [
            0.0f32,
            -0.0,
            1.0,
            -1.0,
            0.5,
            -0.5,
            2147483648.0,
            -2147483904.0,
            4294967296.0,
            f32::MAX,
            f32::MIN_POSITIVE,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ]
        .iter()
        .map(|f| u64::from(f.to_bits()))
        .chain([0x7fc0_0000, 0xffc0_0000, 0x7f80_0001])
        .collect(),
        Type::F64 => [
            0.0f64,
            -0.0,
            1.0,
            -1.0,
            0.5,
            2147483648.0,
            -2147483649.0,
            4294967296.0,
            9223372036854775808.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ]
        .iter()
        .map(|f| f.to_bits())
        .chain([0x7ff8_0000_0000_0000, 0xfff8_0000_0000_0000])
        .collect(),
    }
}

/// A value of `ty`, raw: an edge value or a random one.
pub fn value(ty: Type, rng: &mut Rng) -> u64 {
    let bits = if rng.below(3) == 0 {
        rng.next()
    } else {
        rng.pick(&edges(ty))
    };
    if ty.bits() == 32 {
        bits & 0xffff_ffff
    } else {
        bits
    }
}

/// The guest a trace runs against in the tests: the globals it touches, typed as it reads
/// them (or as the values it writes say), all mutable; memory of `min..=max` pages.
pub fn guest_for(trace: &Trace, min_pages: u32, max_pages: Option<u32>) -> GuestInfo {
    let mut globals = BTreeMap::new();
    for input in &trace.inputs {
        if let Source::Global(g) = input.source {
            globals.insert(g, input.ty);
        }
    }
    let types: BTreeMap<ir::ValueId, Type> = trace
        .inputs
        .iter()
        .map(|i| (i.value, i.ty))
        .chain(trace.body.iter().filter_map(|i| i.def()))
        .collect();
    for inst in &trace.body {
        if let Inst::GlobalSet { global, value } = *inst {
            let ty = match value {
                Operand::Value(v) => types[&v],
                Operand::Const(c) if c >> 32 == 0 => Type::I32,
                Operand::Const(_) => Type::I64,
            };
            globals.entry(global).or_insert(ty);
        }
    }
    GuestInfo {
        memory_min_pages: min_pages,
        memory_max_pages: max_pages,
        globals: globals
            .into_iter()
            .map(|(g, ty)| (g, GlobalInfo { ty, mutable: true }))
            .collect(),
    }
}

/// One run's starting point: the frame (every slot the trace names, plus garbage around
/// the ones it does not), globals, memory.
#[derive(Debug, Clone)]
pub struct Start {
    pub frame: Vec<u64>,
    pub globals: BTreeMap<u32, u64>,
    pub memory: Vec<u8>,
    pub max_pages: Option<u32>,
}

/// One past the highest slot the trace names.
pub fn frame_slots(trace: &Trace) -> u32 {
    let inputs = trace.inputs.iter().filter_map(|i| match i.source {
        Source::Slot(s) => Some(s + 1),
        Source::Global(_) => None,
    });
    let exits = trace
        .exits()
        .flat_map(|e| e.state.iter().map(|&(s, _)| s + 1));
    let end = trace.end.state().iter().map(|&(s, _)| s + 1);
    inputs.chain(exits).chain(end).max().unwrap_or(0)
}

/// The bound of the small integers some starts use.
const SMALL: u64 = 40;

/// A random start for `trace` against `guest`, with `pages` pages of memory.
pub fn random_start(trace: &Trace, guest: &GuestInfo, pages: u32, rng: &mut Rng) -> Start {
    let mut frame: Vec<u64> = (0..frame_slots(trace)).map(|_| rng.next()).collect();
    // Half the starts draw integers below SMALL only: counted loops then end within the
    // reference's iteration cap, and addresses land in bounds.
    let small = rng.below(2) == 0;
    for input in &trace.inputs {
        if let Source::Slot(s) = input.source {
            frame[s as usize] = if small && !input.ty.is_float() {
                rng.below(SMALL)
            } else {
                value(input.ty, rng)
            };
        }
    }
    // A slot read at a 32-bit type anywhere holds a zero-extended value.
    for input in &trace.inputs {
        if let Source::Slot(s) = input.source {
            if input.ty.bits() == 32 {
                frame[s as usize] &= 0xffff_ffff;
            }
        }
    }
    let globals = guest
        .globals
        .iter()
        .map(|(&g, info)| (g, value(info.ty, rng)))
        .collect();
    let pages = pages as usize;
    let mut memory = vec![0u8; pages * PAGE_SIZE];
    // Random bytes in the first and last 4 KiB of each page, where edge addresses land.
    for page in 0..pages {
        for i in (0..4096).chain(PAGE_SIZE - 4096..PAGE_SIZE) {
            memory[page * PAGE_SIZE + i] = rng.next() as u8;
        }
    }
    Start {
        frame,
        globals,
        memory,
        max_pages: guest.memory_max_pages,
    }
}

/// How a run ended, in terms both sides can give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    Exit(u32),
    Trap(TrapKind),
    /// Still looping at the iteration (eval) or fuel (wasm) cap.
    Unbounded,
}

/// What a run left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    pub end: RunEnd,
    /// The frame after the run (meaningful at an exit only).
    pub frame: Vec<u64>,
    pub globals: BTreeMap<u32, u64>,
    pub memory: Vec<u8>,
}

/// Why the reference side could not run: `eval` refused an iteration's state.
#[derive(Debug)]
pub struct EvalRefused(pub String);

/// The state `ir::eval` starts a trace from: `frame`'s slots, `globals`, `memory`, and
/// `start`'s memory limit.
pub fn entry_state(
    frame: &[u64],
    globals: &BTreeMap<u32, u64>,
    memory: Vec<u8>,
    start: &Start,
) -> EntryState {
    EntryState {
        slots: frame
            .iter()
            .enumerate()
            .map(|(s, &v)| (s as u32, v))
            .collect(),
        globals: globals.clone(),
        memory,
        max_pages: start.max_pages,
    }
}

/// Iterates `ir::eval` from `start` at most `max_iterations` times, as the interpreter
/// would run the trace: a loop end's slots become the next iteration's frame.
pub fn reference(trace: &Trace, start: &Start, max_iterations: u64) -> Result<Finish, EvalRefused> {
    let mut frame = start.frame.clone();
    let mut globals = start.globals.clone();
    let mut memory = start.memory.clone();
    for _ in 0..max_iterations {
        let entry = entry_state(&frame, &globals, std::mem::take(&mut memory), start);
        let outcome = eval(trace, entry).map_err(|e| EvalRefused(e.to_string()))?;
        globals = outcome.globals;
        memory = outcome.memory;
        let written = match outcome.end {
            Ended::Loop { slots } => slots,
            Ended::Exit { id, slots, .. } => {
                for (s, v) in slots {
                    frame[s as usize] = v;
                }
                return Ok(Finish {
                    end: RunEnd::Exit(id),
                    frame,
                    globals,
                    memory,
                });
            }
            Ended::Trap(kind) => {
                return Ok(Finish {
                    end: RunEnd::Trap(kind),
                    frame,
                    globals,
                    memory,
                })
            }
        };
        for (s, v) in written {
            frame[s as usize] = v;
        }
    }
    Ok(Finish {
        end: RunEnd::Unbounded,
        frame,
        globals,
        memory,
    })
}

/// The two backends the ABI must run on.
pub const STRATEGIES: [Strategy; 2] = [Strategy::Cranelift, Strategy::Winch];

/// An engine with fuel on, for `strategy`.
pub fn engine(strategy: Strategy) -> Engine {
    let mut config = Config::new();
    config.strategy(strategy).consume_fuel(true);
    Engine::new(&config).expect("engine")
}

/// Where the tests place the frame in memory 1: not at 0, so a wrong base shows.
pub const FRAME_BASE: u32 = 64;

/// Runs export `trace<index>` of `module` from `start` with `fuel`.
pub fn run_wasm(
    engine: &Engine,
    module: &wasmtime::Module,
    index: u32,
    guest: &GuestInfo,
    start: &Start,
    fuel: u64,
) -> Finish {
    let mut store = wasmtime::Store::new(engine, ());
    store.set_fuel(fuel).expect("fuel");
    let pages = (start.memory.len() / PAGE_SIZE) as u32;
    let memory = Memory::new(
        &mut store,
        wasmtime::MemoryType::new(pages, start.max_pages),
    )
    .expect("guest memory");
    memory.data_mut(&mut store).copy_from_slice(&start.memory);
    let frame_bytes = u64::from(FRAME_BASE) + start.frame.len() as u64 * SLOT_BYTES;
    let frame_pages = frame_bytes.div_ceil(abi::PAGE_BYTES).max(1) as u32;
    let frame = Memory::new(&mut store, wasmtime::MemoryType::new(frame_pages, None))
        .expect("frame memory");
    for (s, v) in start.frame.iter().enumerate() {
        let at = FRAME_BASE as usize + s * SLOT_BYTES as usize;
        frame.data_mut(&mut store)[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    let mut imports: Vec<wasmtime::Extern> = vec![memory.into(), frame.into()];
    let mut globals = Vec::new();
    for (&g, info) in &guest.globals {
        let bits = start.globals[&g];
        let (ty, val) = match info.ty {
            Type::I32 => (wasmtime::ValType::I32, Val::I32(bits as u32 as i32)),
            Type::I64 => (wasmtime::ValType::I64, Val::I64(bits as i64)),
            Type::F32 => (wasmtime::ValType::F32, Val::F32(bits as u32)),
            Type::F64 => (wasmtime::ValType::F64, Val::F64(bits)),
        };
        let global = Global::new(
            &mut store,
            wasmtime::GlobalType::new(ty, wasmtime::Mutability::Var),
            val,
        )
        .expect("global");
        imports.push(global.into());
        globals.push((g, global));
    }
    let instance = Instance::new(&mut store, module, &imports).expect("instantiates");
    let func = instance
        .get_typed_func::<i32, i32>(&mut store, &abi::trace_export_name(index))
        .expect("trace export");
    let end = match func.call(&mut store, FRAME_BASE as i32) {
        Ok(id) => RunEnd::Exit(id as u32),
        Err(error) => match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::OutOfFuel) => RunEnd::Unbounded,
            Some(wasmtime::Trap::IntegerDivisionByZero) => {
                RunEnd::Trap(TrapKind::IntegerDivideByZero)
            }
            Some(wasmtime::Trap::IntegerOverflow) => RunEnd::Trap(TrapKind::IntegerOverflow),
            Some(wasmtime::Trap::BadConversionToInteger) => {
                RunEnd::Trap(TrapKind::InvalidConversionToInteger)
            }
            Some(wasmtime::Trap::MemoryOutOfBounds) => RunEnd::Trap(TrapKind::MemoryOutOfBounds),
            other => panic!("unexpected wasmtime error {other:?}: {error:?}"),
        },
    };
    let frame_data = frame.data(&store);
    let frame = (0..start.frame.len())
        .map(|s| {
            let at = FRAME_BASE as usize + s * SLOT_BYTES as usize;
            u64::from_le_bytes(frame_data[at..at + 8].try_into().expect("8 bytes"))
        })
        .collect();
    let globals = globals
        .into_iter()
        .map(|(g, global)| {
            let bits = match global.get(&mut store) {
                Val::I32(x) => u64::from(x as u32),
                Val::I64(x) => x as u64,
                Val::F32(x) => u64::from(x),
                Val::F64(x) => x,
                other => panic!("global {g} holds {other:?}"),
            };
            (g, bits)
        })
        .collect();
    Finish {
        end,
        frame,
        globals,
        memory: memory.data(&store).to_vec(),
    }
}

/// The differences between the reference and the wasm run, in words (empty if none).
/// The frame is compared at exits only: a trap leaves it unspecified (see `abi.rs`).
pub fn differences(want: &Finish, got: &Finish) -> Vec<String> {
    let mut out = Vec::new();
    if want.end != got.end {
        out.push(format!("end: eval {:?}, wasm {:?}", want.end, got.end));
        return out;
    }
    if matches!(want.end, RunEnd::Exit(_)) {
        for (s, (w, g)) in want.frame.iter().zip(&got.frame).enumerate() {
            if w != g {
                out.push(format!("slot {s}: eval {w:#x}, wasm {g:#x}"));
            }
        }
    }
    if want.globals != got.globals {
        out.push(format!(
            "globals: eval {:x?}, wasm {:x?}",
            want.globals, got.globals
        ));
    }
    if want.memory.len() != got.memory.len() {
        out.push(format!(
            "memory size: eval {} pages, wasm {} pages",
            want.memory.len() / PAGE_SIZE,
            got.memory.len() / PAGE_SIZE
        ));
    } else if let Some(at) = want
        .memory
        .iter()
        .zip(&got.memory)
        .position(|(a, b)| a != b)
    {
        out.push(format!(
            "memory byte {at}: eval {:#x}, wasm {:#x}",
            want.memory[at], got.memory[at]
        ));
    }
    out
}
