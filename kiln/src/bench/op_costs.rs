//! `kiln bench --op-costs`: what each operator costs on wasmtime's two compilers,
//! Cranelift and Winch, measured (issue 4). The figures become the cost model in
//! `saturate/src/cost.rs`.
//!
//! # Method
//!
//! Every *subject* (each `ir::NumOp`, plus `select`, `i32.load`, `i32.store`,
//! `global.set` and `memory.grow`) gets its own wasm module whose exported function runs
//! a loop of `iterations` iterations with [`APPLICATIONS_PER_ITERATION`] applications of
//! the subject in each. The same module is compiled once with Cranelift and once with
//! Winch; each is timed [`REPETITIONS`] times in a row, and the median kept, in each of
//! [`ROUNDS`] sweeps over all subjects in this one process; the median of the rounds is
//! the figure. An empty loop of the same shape and iteration count is timed beside every
//! repetition and subtracted, so the loop's counter and branch are not charged to the
//! operator.
//!
//! - **Latency** (every numeric operator, `select`, the load): the applications form one
//!   dependency chain. The accumulator starts as a parameter and each result is the next
//!   application's first operand; second operands rotate over
//!   [`ROTATING_OPERANDS`] parameters, so no two neighbours have the same operand and
//!   the compiler cannot fold `(x ^ y) ^ y` or `min(min(x, y), y)`; the function returns
//!   the accumulator, so nothing is dead. The load chases a pointer: memory holds
//!   [`LOAD_ADDRESS`] at [`LOAD_ADDRESS`], so each load's address is the previous load's
//!   value.
//! - **Chains that need help** are charged for the help, then it is subtracted:
//!   - an operator whose result type differs from its first operand's gets a *return
//!     conversion* back to it (a comparison's i32 result is widened or converted; a
//!     truncation's integer is converted back to the float);
//!   - a unary operator, a rotation, a division or a remainder gets a *perturbation*
//!     (see [`perturbation`]): an integer result is rotated, a float gets `add`, a
//!     rotation is xored, a quotient gets a large bias added, so that `abs(abs(x))`,
//!     `rotl(rotl(x, a), b)` or `wrap(extend(x))` cannot fold and a quotient never
//!     shrinks to zero;
//!   - the figure of every return conversion and perturbation (itself measured, in this
//!     run) is subtracted from the chain's. An operator whose return conversion is its
//!     exact inverse (wrap and unsigned extend, the reinterpretations, promote and
//!     demote) cannot be told apart from that inverse: such a pair's chain, less the
//!     perturbation, is split evenly between its two operators.
//! - **Independent chains** (every latency subject, a second time): the same
//!   applications spread over [`INDEPENDENT_CHAINS`] accumulators, so an out-of-order
//!   core overlaps them: a throughput figure. It is reported beside the latency (in the
//!   same unit, the compiler's `i32.add` latency) for subjects with nothing subtracted,
//!   and not used by the cost model.
//! - **Throughput** (`i32.store`, `global.set`, `memory.grow`): they produce no value to
//!   chain on (a store's latency is paid by a later load, which is costed as a load).
//!   Their applications are independent: stores of the loop counter to distinct
//!   addresses, writes of the loop counter to one global each, `memory.grow 0` (a call
//!   into the runtime that grows nothing).
//!
//! **Operands never trap**: divisors are the odd constants 3, 5, 7, 9 (passed as
//! parameters), never 0 and never -1, and the dividend is kept near the
//! [`Arguments::bias`] (positive, far from `MIN`); truncations read a float that is an
//! integer plus 0.25, far inside every target range, because their return conversion
//! and perturbation keep it there. A trap would fail the row, not hide in it.
//!
//! Output: a Markdown table of ns per application on each compiler, each relative to
//! that compiler's `i32.add`, the unit that figure rounds to (Cranelift's, at least 1),
//! what `saturate::cost` charges now ("model"), and how far Cranelift's figure is from
//! that charge when it is [`MODEL_TOLERANCE`] or more ("off by"), and the independent
//! chains' figures ("independent", throughput). Absolute times are
//! printed for the record only: on a shared machine, quote the ratios.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use ir::ops::NUM_OPS;
use ir::{NumOp, Type};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, DataSection, ExportKind, ExportSection, Function,
    FunctionSection, GlobalSection, GlobalType, Instruction, MemArg, MemArgTarget, MemorySection,
    MemoryType, Module, TypeSection, ValType,
};
use wasmtime::{Config, Engine, Func, Store, Strategy, Val};

/// Applications of the subject per loop iteration: enough that the loop's own counter
/// and branch are a small share of an iteration even for a 1-cycle operator (and the
/// empty-loop subtraction removes what is left), few enough that the function stays
/// small for Winch.
const APPLICATIONS_PER_ITERATION: u32 = 16;

/// Distinct second operands a chain rotates over: with two or more, no application has
/// the same second operand as its neighbour, which is what Cranelift's identities
/// (`(x ^ y) ^ y`, `band(band(x, y), y)`) need to fold a chain.
const ROTATING_OPERANDS: u32 = 4;

/// Timed runs per subject and compiler in a round; the median of seven ignores up to
/// three runs hit by another process on a shared machine.
const REPETITIONS: usize = 7;

/// Sweeps over every subject; a subject's figure is the median of its rounds. A burst
/// of load from elsewhere that outlasts one subject's repetitions (tens of ms) then
/// spoils one round of it, not its figure.
const ROUNDS: usize = 5;

/// How long one timed run should take: long against the timer's resolution and a
/// call's fixed cost (tens of ns), short enough that the whole bench (both compilers,
/// both variants, every round) takes under a minute.
const TARGET_RUN: Duration = Duration::from_millis(3);

/// Iterations of the untimed first runs (warm-up, then calibration of the iteration
/// count for [`TARGET_RUN`]).
const CALIBRATION_ITERATIONS: u32 = 2_000;

/// Bounds on the calibrated iteration count: at least enough iterations that the
/// empty-loop subtraction is not of two tiny numbers; at most what keeps a perturbed
/// f32 chain (which grows by at most [`FLOAT_OPERANDS`]' sum per rotation) exact and
/// far from overflow.
const MIN_ITERATIONS: u32 = 1_000;
const MAX_ITERATIONS: u32 = 200_000;

/// The address the load chain chases: memory holds this value at this address.
const LOAD_ADDRESS: u32 = 1024;

/// Where the stores write, as a static offset from [`LOAD_ADDRESS`]: beyond the load's
/// cell, one 4-byte slot per application.
const STORE_OFFSET: u64 = 64;

/// Integer second operands (divisors too): odd and neither 0 nor -1, so no division or
/// remainder traps.
const INT_OPERANDS: [i64; ROTATING_OPERANDS as usize] = [3, 5, 7, 9];

/// Float second operands: their product over a rotation is 1, so a multiplication or
/// division chain neither overflows nor reaches denormals (which are slow on x86).
const FLOAT_OPERANDS: [f64; ROTATING_OPERANDS as usize] = [2.0, 0.5, 1.0, 1.0];

// The exported function's parameters, in order.
const PARAM_COUNTER: u32 = 0;
const PARAM_ACC: u32 = 1;
const PARAM_OPERANDS: u32 = 2;
const PARAM_BIAS: u32 = PARAM_OPERANDS + ROTATING_OPERANDS;
const PARAM_CONDS: u32 = PARAM_BIAS + 1;
const PARAM_COUNT: u32 = PARAM_CONDS + ROTATING_OPERANDS;

/// Accumulators of the throughput variant: independent chains interleaved in one loop,
/// so an out-of-order core overlaps them. Four matches how many simple integer
/// operators current x86 cores issue per cycle (their throughput then shows as about a
/// quarter of a latency); slower operators would need more chains to show their full
/// throughput, so their figure is an upper bound.
const INDEPENDENT_CHAINS: u32 = 4;

/// The exported function's name.
const EXPORT: &str = "run";

/// How a subject's applications relate to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chain {
    /// Each application's result is the next one's first operand.
    Latency,
    /// Applications are independent; the accumulator passes through untouched.
    Throughput,
}

/// The two ways a latency subject is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Variant {
    /// One chain: each application waits for the previous one (latency).
    Chained,
    /// [`INDEPENDENT_CHAINS`] chains interleaved (throughput); throughput subjects have
    /// only the chained variant, which already is their throughput.
    Independent,
}

const VARIANTS: [Variant; 2] = [Variant::Chained, Variant::Independent];

impl Variant {
    fn chains(self) -> u32 {
        match self {
            Variant::Chained => 1,
            Variant::Independent => INDEPENDENT_CHAINS,
        }
    }
}

/// The figures of one run, keyed by compiler, variant and subject name.
type Keyed<T> = HashMap<(Compiler, Variant, String), T>;

/// One thing to measure.
struct Subject {
    /// The wasm text name (`i32.add`, `select`, `i32.load`, ...).
    name: String,
    /// The accumulator's type.
    carry: Type,
    chain: Chain,
    /// The instructions of the `j`-th application of an iteration. A latency chain
    /// finds the accumulator on the stack and leaves the next one there, and depends on
    /// `j` only through `j % ROTATING_OPERANDS` (its operand slot); a throughput
    /// application leaves the stack as it found it.
    body: Vec<Vec<Instruction<'static>>>,
    /// Subjects measured inside this chain, whose figures are subtracted from it.
    overhead: Vec<NumOp>,
    /// The chain is this operator and its exact inverse: half of what remains is its.
    halved: bool,
    /// What `saturate`'s cost model charges for it now, shown beside the measurement.
    model: u64,
}

/// The compilers measured, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Compiler {
    Cranelift,
    Winch,
}

const COMPILERS: [Compiler; 2] = [Compiler::Cranelift, Compiler::Winch];

impl Compiler {
    fn engine(self) -> anyhow::Result<Engine> {
        let mut config = Config::new();
        config.strategy(match self {
            Compiler::Cranelift => Strategy::Cranelift,
            Compiler::Winch => Strategy::Winch,
        });
        Engine::new(&config).map_err(|e| anyhow!("{self:?} engine: {e:?}"))
    }
}

pub fn main() -> anyhow::Result<i32> {
    let subjects = subjects();
    let empty = Subject::empty();
    // Per compiler: the empty loop, and each subject's variants compiled and
    // instantiated once (a module that does not compile keeps its reason).
    let mut compiled = Vec::new();
    for compiler in COMPILERS {
        let engine = compiler.engine()?;
        let baseline = Runner::new(&engine, &empty, Variant::Chained)
            .with_context(|| format!("{compiler:?}: the empty loop"))?;
        let mut runners = Vec::new();
        for subject in &subjects {
            for variant in subject.variants() {
                let runner = Runner::new(&engine, subject, variant).map_err(|e| format!("{e:#}"));
                runners.push((variant, subject.name.clone(), runner));
            }
        }
        compiled.push((compiler, baseline, runners));
    }
    // ns per application, per compiler, variant and subject: one figure per round.
    let mut rounds: Keyed<Result<Vec<f64>, String>> = HashMap::new();
    let measurements = compiled[0].2.len();
    for round in 0..ROUNDS {
        for index in 0..measurements {
            // Both compilers back to back, so a burst of load hits both alike.
            for (compiler, baseline, runners) in compiled.iter_mut() {
                let (variant, name, runner) = &mut runners[index];
                let figure = match runner {
                    Ok(runner) => measure(runner, baseline).map_err(|e| format!("{e:#}")),
                    Err(e) => Err(e.clone()),
                };
                let key = (*compiler, *variant, name.clone());
                let entry = rounds.entry(key).or_insert_with(|| Ok(Vec::new()));
                match (entry, figure) {
                    (Ok(figures), Ok(f)) => figures.push(f),
                    (entry @ Ok(_), Err(e)) => {
                        eprintln!("op-costs: {compiler:?} {variant:?} {name}: {e}");
                        *entry = Err(e);
                    }
                    (Err(_), _) => {}
                }
            }
        }
        eprintln!("op-costs: round {} of {ROUNDS} done", round + 1);
    }
    let raw = rounds
        .into_iter()
        .map(|(key, figures)| (key, figures.map(|mut f| median(&mut f))))
        .collect();
    let figures = Figures::derive(&subjects, &raw);
    print!("{}", figures.report(&subjects));
    Ok(if figures.failures() == 0 { 0 } else { 1 })
}

/// Times `runner`: the median over [`REPETITIONS`] of (its run − the empty loop's run
/// of the same iteration count), per application, in ns.
fn measure(runner: &mut Runner, baseline: &mut Runner) -> anyhow::Result<f64> {
    runner.run(CALIBRATION_ITERATIONS)?;
    let per_iteration =
        runner.run(CALIBRATION_ITERATIONS)?.as_secs_f64() / f64::from(CALIBRATION_ITERATIONS);
    let iterations = (TARGET_RUN.as_secs_f64() / per_iteration.max(1e-12))
        .clamp(f64::from(MIN_ITERATIONS), f64::from(MAX_ITERATIONS)) as u32;
    let mut samples = Vec::with_capacity(REPETITIONS);
    for _ in 0..REPETITIONS {
        let with = runner.run(iterations)?;
        let without = baseline.run(iterations)?;
        samples.push(with.as_secs_f64() - without.as_secs_f64());
    }
    let applications = f64::from(iterations) * f64::from(APPLICATIONS_PER_ITERATION);
    Ok(median(&mut samples) * 1e9 / applications)
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// One compiled and instantiated subject, ready to call.
struct Runner {
    store: Store<()>,
    func: Func,
    args: Vec<Val>,
    results: Vec<Val>,
}

impl Runner {
    fn new(engine: &Engine, subject: &Subject, variant: Variant) -> anyhow::Result<Runner> {
        let wasm = subject.module(variant.chains());
        let module = wasmtime::Module::new(engine, &wasm).map_err(|e| anyhow!("{e:?}"))?;
        let mut store = Store::new(engine, ());
        let instance =
            wasmtime::Instance::new(&mut store, &module, &[]).map_err(|e| anyhow!("{e:?}"))?;
        let func = instance
            .get_func(&mut store, EXPORT)
            .context("no exported function")?;
        let arguments = Arguments::of(subject.carry);
        let results = vec![arguments.acc];
        Ok(Runner {
            store,
            func,
            args: arguments.values(),
            results,
        })
    }

    fn run(&mut self, iterations: u32) -> anyhow::Result<Duration> {
        self.args[PARAM_COUNTER as usize] = Val::I32(iterations as i32);
        let start = Instant::now();
        self.func
            .call(&mut self.store, &self.args, &mut self.results)
            .map_err(|e| anyhow!("{e:?}"))?;
        Ok(start.elapsed())
    }
}

/// The values the exported function is called with, by the accumulator's type.
struct Arguments {
    /// The accumulator's start: the load chain's address for integers.
    acc: Val,
    operands: Vec<Val>,
    /// What perturbations add: large for integers, so a dividend stays far from zero
    /// (and, at 2^30 or 2^62 plus a quotient, far from overflow); a quarter for floats,
    /// so a truncation's operand is never an integer's edge.
    bias: Val,
}

impl Arguments {
    fn of(carry: Type) -> Arguments {
        match carry {
            Type::I32 => Arguments {
                acc: Val::I32(LOAD_ADDRESS as i32),
                operands: INT_OPERANDS.iter().map(|&v| Val::I32(v as i32)).collect(),
                bias: Val::I32(1 << 30),
            },
            Type::I64 => Arguments {
                acc: Val::I64(i64::from(LOAD_ADDRESS)),
                operands: INT_OPERANDS.iter().map(|&v| Val::I64(v)).collect(),
                bias: Val::I64(1 << 62),
            },
            Type::F32 => Arguments {
                acc: Val::F32(1000.25f32.to_bits()),
                operands: FLOAT_OPERANDS
                    .iter()
                    .map(|&v| Val::F32((v as f32).to_bits()))
                    .collect(),
                bias: Val::F32(0.25f32.to_bits()),
            },
            Type::F64 => Arguments {
                acc: Val::F64(1000.25f64.to_bits()),
                operands: FLOAT_OPERANDS
                    .iter()
                    .map(|&v| Val::F64(v.to_bits()))
                    .collect(),
                bias: Val::F64(0.25f64.to_bits()),
            },
        }
    }

    /// The argument list, in parameter order; `select`'s conditions are all 1 (which
    /// operand is picked does not change a `cmov`'s latency; the chain runs through
    /// the accumulator either way).
    fn values(self) -> Vec<Val> {
        let mut values = vec![Val::I32(0), self.acc];
        values.extend(self.operands);
        values.push(self.bias);
        values.extend((0..ROTATING_OPERANDS).map(|_| Val::I32(1)));
        debug_assert_eq!(values.len(), PARAM_COUNT as usize);
        values
    }
}

fn val_type(ty: Type) -> ValType {
    match ty {
        Type::I32 => ValType::I32,
        Type::I64 => ValType::I64,
        Type::F32 => ValType::F32,
        Type::F64 => ValType::F64,
    }
}

/// The `add` of a type: the perturbation.
fn add_of(ty: Type) -> NumOp {
    match ty {
        Type::I32 => NumOp::I32Add,
        Type::I64 => NumOp::I64Add,
        Type::F32 => NumOp::F32Add,
        Type::F64 => NumOp::F64Add,
    }
}

/// The operators that take `op`'s result back to its first operand's type, in order.
/// Exact inverses where one exists (so the value survives the round trip and a
/// truncation never traps); otherwise the cheapest exact widening of a 0-or-1 result.
fn return_conversions(op: NumOp) -> Vec<NumOp> {
    use NumOp::*;
    match op {
        I32WrapI64 => vec![I64ExtendI32U],
        I64ExtendI32U | I64ExtendI32S => vec![I32WrapI64],
        I32ReinterpretF32 => vec![F32ReinterpretI32],
        F32ReinterpretI32 => vec![I32ReinterpretF32],
        I64ReinterpretF64 => vec![F64ReinterpretI64],
        F64ReinterpretI64 => vec![I64ReinterpretF64],
        F32DemoteF64 => vec![F64PromoteF32],
        F64PromoteF32 => vec![F32DemoteF64],
        I32TruncF32S | I32TruncSatF32S => vec![F32ConvertI32S],
        I32TruncF32U | I32TruncSatF32U => vec![F32ConvertI32U],
        I32TruncF64S | I32TruncSatF64S => vec![F64ConvertI32S],
        I32TruncF64U | I32TruncSatF64U => vec![F64ConvertI32U],
        I64TruncF32S | I64TruncSatF32S => vec![F32ConvertI64S],
        I64TruncF32U | I64TruncSatF32U => vec![F32ConvertI64U],
        I64TruncF64S | I64TruncSatF64S => vec![F64ConvertI64S],
        I64TruncF64U | I64TruncSatF64U => vec![F64ConvertI64U],
        F32ConvertI32S | F32ConvertI32U => vec![I32ReinterpretF32],
        F32ConvertI64S | F32ConvertI64U => vec![I32ReinterpretF32, I64ExtendI32U],
        F64ConvertI32S | F64ConvertI32U => vec![I64ReinterpretF64, I32WrapI64],
        F64ConvertI64S | F64ConvertI64U => vec![I64ReinterpretF64],
        _ => match (op.result(), op.params()[0]) {
            (result, carry) if result == carry => vec![],
            // A comparison or eqz: an i32 that is 0 or 1.
            (Type::I32, Type::I64) => vec![I64ExtendI32U],
            (Type::I32, Type::F32) => vec![F32ConvertI32U],
            (Type::I32, Type::F64) => vec![F64ConvertI32U],
            (result, carry) => unreachable!("{}: no way back from {result} to {carry}", op.name()),
        },
    }
}

/// What a chain adds to each application so the compiler cannot fold it, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Perturbation {
    /// A binary operator of the perturbed value's type; its second operand is chosen by
    /// [`Perturbation::operand`].
    op: NumOp,
    /// Applied to the accumulator after the return conversion (the carry type), rather
    /// than to the operator's result.
    after_return: bool,
}

impl Perturbation {
    /// The instructions pushing the second operand of the `j`-th application's
    /// perturbation: a parameter when the perturbed value has the carry's type (the
    /// bias for `add` and `xor`, a rotating operand for a rotation); otherwise an i32
    /// parameter (widened for i64: a loop-invariant that Cranelift hoists) or a float
    /// constant. Rotation amounts are never constants, since the subtracted rotation
    /// was measured with its amount in a register.
    fn operand(self, carry: Type, j: u32) -> Vec<Instruction<'static>> {
        let ty = self.op.params()[0];
        let rotation = matches!(self.op, NumOp::I32Rotl | NumOp::I64Rotl);
        if ty == carry {
            let param = if rotation {
                PARAM_OPERANDS + j % ROTATING_OPERANDS
            } else {
                PARAM_BIAS
            };
            return vec![Instruction::LocalGet(param)];
        }
        let small = Instruction::LocalGet(PARAM_CONDS + j % ROTATING_OPERANDS);
        match ty {
            Type::I32 => vec![small],
            Type::I64 => vec![small, Instruction::I64ExtendI32U],
            Type::F32 => vec![Instruction::F32Const(0.25f32.into())],
            Type::F64 => vec![Instruction::F64Const(0.25f64.into())],
        }
    }
}

/// The perturbation of `op`'s chain, if it needs one:
/// - a division or remainder adds the bias to its quotient, so the dividend stays large
///   (a quotient chain would reach 0, and some dividers are faster on small values);
/// - a rotation is xored with the bias (Cranelift merges `rotl(rotl(x, a), b)`);
/// - a truncation adds the bias (0.25) to its float, after the conversion back, so it
///   never truncates an integer's edge and never traps;
/// - any other unary operator perturbs its result: an integer is rotated (narrowing
///   distributes over `add`, `xor`, `and`, so Cranelift folds `extend8_s` or
///   `wrap`/`extend` through them, never through a rotation), a float gets `add`.
fn perturbation(op: NumOp) -> Option<Perturbation> {
    use NumOp::*;
    let result = op.result();
    let binary = op.params().len() == 2;
    let (op, after_return) = match op {
        _ if binary && op.can_trap() => (add_of(result), false),
        I32Rotl | I32Rotr => (I32Xor, false),
        // Its result's perturbation would sit between `extend_i32_u` and the next
        // `wrap`, which Cranelift folds away, leaving adjacent rotations to merge: the
        // chain is perturbed on the i64 side instead, as `extend_i32_u`'s is.
        I32WrapI64 => (I64Rotl, true),
        I64Rotl | I64Rotr => (I64Xor, false),
        _ if binary => return None,
        _ if op.can_trap() || op.name().contains(".trunc_sat_") => (add_of(op.params()[0]), true),
        _ => match result {
            Type::I32 => (I32Rotl, false),
            Type::I64 => (I64Rotl, false),
            Type::F32 | Type::F64 => (add_of(result), false),
        },
    };
    Some(Perturbation { op, after_return })
}

impl Subject {
    /// The chain of one numeric operator.
    fn num(op: NumOp) -> Subject {
        let carry = op.params()[0];
        let binary = op.params().len() == 2;
        let back = return_conversions(op);
        let perturbation = perturbation(op);
        let halved = back.len() == 1 && return_conversions(back[0]) == [op];
        let mut overhead = if halved { Vec::new() } else { back.clone() };
        overhead.extend(perturbation.map(|p| p.op));
        let body = (0..APPLICATIONS_PER_ITERATION)
            .map(|j| {
                let mut app = Vec::new();
                if binary {
                    app.push(Instruction::LocalGet(
                        PARAM_OPERANDS + j % ROTATING_OPERANDS,
                    ));
                }
                app.push(num_instruction(op));
                let perturb = |app: &mut Vec<Instruction<'static>>, p: Perturbation| {
                    app.extend(p.operand(carry, j));
                    app.push(num_instruction(p.op));
                };
                match perturbation {
                    Some(p) if !p.after_return => perturb(&mut app, p),
                    _ => {}
                }
                app.extend(back.iter().map(|&b| num_instruction(b)));
                match perturbation {
                    Some(p) if p.after_return => perturb(&mut app, p),
                    _ => {}
                }
                app
            })
            .collect();
        Subject {
            name: op.name().to_string(),
            carry,
            chain: Chain::Latency,
            body,
            overhead,
            halved,
            model: saturate::cost::op_cost(op),
        }
    }

    /// A subject that needs no return conversion and no perturbation.
    fn plain(
        name: &str,
        carry: Type,
        chain: Chain,
        model: u64,
        app: impl Fn(u32) -> Vec<Instruction<'static>>,
    ) -> Subject {
        Subject {
            name: name.to_string(),
            carry,
            chain,
            body: (0..APPLICATIONS_PER_ITERATION).map(app).collect(),
            overhead: Vec::new(),
            halved: false,
            model,
        }
    }

    /// The loop with nothing in it: subtracted from every other subject's time.
    fn empty() -> Subject {
        Subject {
            name: "empty loop".to_string(),
            carry: Type::I32,
            chain: Chain::Throughput,
            body: Vec::new(),
            overhead: Vec::new(),
            halved: false,
            model: 0,
        }
    }

    /// The variants this subject is measured in: a latency chain also independently.
    fn variants(&self) -> Vec<Variant> {
        match self.chain {
            Chain::Latency => VARIANTS.to_vec(),
            Chain::Throughput => vec![Variant::Chained],
        }
    }

    /// The module: one memory page (holding the load chain's cell), one mutable i32
    /// global per application (Cranelift's dead-store elimination keeps one of sixteen
    /// writes to a single global in an iteration), and the exported loop function, with
    /// its applications spread over `chains` accumulators (1 keeps the accumulator on
    /// the operand stack; more are locals, each a chain of its own, summed at the end so
    /// every chain is live).
    fn module(&self, chains: u32) -> Vec<u8> {
        assert!(chains == 1 || self.chain == Chain::Latency);
        let carry = val_type(self.carry);
        let mut params = vec![ValType::I32, carry];
        params.extend((0..ROTATING_OPERANDS).map(|_| carry));
        params.push(carry);
        params.extend((0..ROTATING_OPERANDS).map(|_| ValType::I32));
        debug_assert_eq!(params.len(), PARAM_COUNT as usize);

        let mut types = TypeSection::new();
        types.ty().function(params, [carry]);
        let mut functions = FunctionSection::new();
        functions.function(0);
        let mut memories = MemorySection::new();
        memories.memory(MemoryType {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        let mut globals = GlobalSection::new();
        for _ in 0..APPLICATIONS_PER_ITERATION {
            globals.global(
                GlobalType {
                    val_type: ValType::I32,
                    mutable: true,
                    shared: false,
                },
                &ConstExpr::i32_const(0),
            );
        }
        let mut exports = ExportSection::new();
        exports.export(EXPORT, ExportKind::Func, 0);

        // Accumulator k: the parameter for k = 0, then locals after the parameters.
        let acc = |k: u32| {
            if k == 0 {
                PARAM_ACC
            } else {
                PARAM_COUNT + k - 1
            }
        };
        let mut f = Function::new([(chains - 1, carry)]);
        for k in 1..chains {
            f.instruction(&Instruction::LocalGet(PARAM_ACC));
            f.instruction(&Instruction::LocalSet(acc(k)));
        }
        // if (counter != 0) loop { acc = applications(acc); counter -= 1; br_if counter }
        f.instruction(&Instruction::Block(BlockType::Empty));
        f.instruction(&Instruction::LocalGet(PARAM_COUNTER));
        f.instruction(&Instruction::I32Eqz);
        f.instruction(&Instruction::BrIf(0));
        f.instruction(&Instruction::Loop(BlockType::Empty));
        if chains == 1 {
            f.instruction(&Instruction::LocalGet(PARAM_ACC));
            for app in &self.body {
                for instruction in app {
                    f.instruction(instruction);
                }
            }
            f.instruction(&Instruction::LocalSet(PARAM_ACC));
        } else {
            for j in 0..self.body.len() as u32 {
                // Chain k takes every chains-th application; its operand slot moves on
                // by one at each of its steps, so no chain repeats an operand.
                let k = j % chains;
                let slot = (j / chains + k) % ROTATING_OPERANDS;
                f.instruction(&Instruction::LocalGet(acc(k)));
                for instruction in &self.body[slot as usize] {
                    f.instruction(instruction);
                }
                f.instruction(&Instruction::LocalSet(acc(k)));
            }
        }
        f.instruction(&Instruction::LocalGet(PARAM_COUNTER));
        f.instruction(&Instruction::I32Const(1));
        f.instruction(&Instruction::I32Sub);
        f.instruction(&Instruction::LocalTee(PARAM_COUNTER));
        f.instruction(&Instruction::BrIf(0));
        f.instruction(&Instruction::End);
        f.instruction(&Instruction::End);
        f.instruction(&Instruction::LocalGet(PARAM_ACC));
        for k in 1..chains {
            f.instruction(&Instruction::LocalGet(acc(k)));
            f.instruction(&num_instruction(add_of(self.carry)));
        }
        f.instruction(&Instruction::End);
        let mut code = CodeSection::new();
        code.function(&f);

        let mut data = DataSection::new();
        data.active(
            0,
            &ConstExpr::i32_const(LOAD_ADDRESS as i32),
            LOAD_ADDRESS.to_le_bytes(),
        );

        let mut module = Module::new();
        module
            .section(&types)
            .section(&functions)
            .section(&memories)
            .section(&globals)
            .section(&exports)
            .section(&code)
            .section(&data);
        module.finish()
    }
}

/// Every subject, in table order: the numeric operators in `ir`'s order, then the
/// others.
fn subjects() -> Vec<Subject> {
    let mut subjects: Vec<Subject> = NUM_OPS.iter().map(|info| Subject::num(info.op)).collect();
    subjects.push(Subject::plain(
        "select",
        Type::I32,
        Chain::Latency,
        saturate::cost::SELECT,
        |j| {
            vec![
                Instruction::LocalGet(PARAM_OPERANDS + j % ROTATING_OPERANDS),
                Instruction::LocalGet(PARAM_CONDS + j % ROTATING_OPERANDS),
                Instruction::Select,
            ]
        },
    ));
    subjects.push(Subject::plain(
        "i32.load",
        Type::I32,
        Chain::Latency,
        saturate::cost::LOAD,
        |_| {
            vec![Instruction::I32Load(MemArg {
                offset: 0,
                align: 2,
                target: MemArgTarget::Memory(0),
                ordering: None,
            })]
        },
    ));
    subjects.push(Subject::plain(
        "i32.store",
        Type::I32,
        Chain::Throughput,
        saturate::cost::STORE,
        |j| {
            vec![
                Instruction::LocalGet(PARAM_ACC),
                Instruction::LocalGet(PARAM_COUNTER),
                Instruction::I32Store(MemArg {
                    offset: STORE_OFFSET + 4 * u64::from(j),
                    align: 2,
                    target: MemArgTarget::Memory(0),
                    ordering: None,
                }),
            ]
        },
    ));
    subjects.push(Subject::plain(
        "global.set",
        Type::I32,
        Chain::Throughput,
        saturate::cost::GLOBAL_SET,
        |j| {
            vec![
                Instruction::LocalGet(PARAM_COUNTER),
                Instruction::GlobalSet(j),
            ]
        },
    ));
    subjects.push(Subject::plain(
        "memory.grow",
        Type::I32,
        Chain::Throughput,
        saturate::cost::MEMORY_GROW,
        |_| {
            vec![
                Instruction::I32Const(0),
                Instruction::MemoryGrow(0),
                Instruction::Drop,
            ]
        },
    ));
    subjects
}

/// The wasm instruction of a numeric operator. `NumOp`'s variants are named as
/// wasm-encoder's, so this is one list, and the compiler checks it is complete.
fn num_instruction(op: NumOp) -> Instruction<'static> {
    macro_rules! same_names {
        ($($name:ident)*) => {
            match op { $(NumOp::$name => Instruction::$name,)* }
        };
    }
    same_names! {
        I32Add I32Sub I32Mul I32DivS I32DivU I32RemS I32RemU I32And I32Or I32Xor I32Shl
        I32ShrS I32ShrU I32Rotl I32Rotr I32Eq I32Ne I32LtS I32LtU I32GtS I32GtU I32LeS
        I32LeU I32GeS I32GeU I32Eqz I32Clz I32Ctz I32Popcnt I32Extend8S I32Extend16S
        I64Add I64Sub I64Mul I64DivS I64DivU I64RemS I64RemU I64And I64Or I64Xor I64Shl
        I64ShrS I64ShrU I64Rotl I64Rotr I64Eq I64Ne I64LtS I64LtU I64GtS I64GtU I64LeS
        I64LeU I64GeS I64GeU I64Eqz I64Clz I64Ctz I64Popcnt I64Extend8S I64Extend16S
        I64Extend32S
        F32Add F32Sub F32Mul F32Div F32Min F32Max F32Copysign F32Eq F32Ne F32Lt F32Gt
        F32Le F32Ge F32Abs F32Neg F32Ceil F32Floor F32Trunc F32Nearest F32Sqrt
        F64Add F64Sub F64Mul F64Div F64Min F64Max F64Copysign F64Eq F64Ne F64Lt F64Gt
        F64Le F64Ge F64Abs F64Neg F64Ceil F64Floor F64Trunc F64Nearest F64Sqrt
        I32WrapI64 I64ExtendI32S I64ExtendI32U I32TruncF32S I32TruncF32U I32TruncF64S
        I32TruncF64U I64TruncF32S I64TruncF32U I64TruncF64S I64TruncF64U I32TruncSatF32S
        I32TruncSatF32U I32TruncSatF64S I32TruncSatF64U I64TruncSatF32S I64TruncSatF32U
        I64TruncSatF64S I64TruncSatF64U F32ConvertI32S F32ConvertI32U F32ConvertI64S
        F32ConvertI64U F32DemoteF64 F64ConvertI32S F64ConvertI32U F64ConvertI64S
        F64ConvertI64U F64PromoteF32 I32ReinterpretF32 I64ReinterpretF64 F32ReinterpretI32
        F64ReinterpretI64
    }
}

/// The figures of one run: per compiler, variant and subject, ns per application with
/// the overheads subtracted.
struct Figures {
    derived: Keyed<Result<f64, String>>,
}

impl Figures {
    /// Subtracts each chain's overheads (and halves an inverse pair) from what was timed.
    fn derive(subjects: &[Subject], raw: &Keyed<Result<f64, String>>) -> Figures {
        let by_name: HashMap<&str, &Subject> =
            subjects.iter().map(|s| (s.name.as_str(), s)).collect();
        let mut derived = HashMap::new();
        for compiler in COMPILERS {
            for subject in subjects {
                for variant in subject.variants() {
                    let figure = derive_one(compiler, variant, subject, &by_name, raw);
                    derived.insert((compiler, variant, subject.name.clone()), figure);
                }
            }
        }
        Figures { derived }
    }

    fn get(&self, compiler: Compiler, variant: Variant, name: &str) -> Result<f64, String> {
        self.derived
            .get(&(compiler, variant, name.to_string()))
            .cloned()
            .unwrap_or_else(|| Err(format!("{name} not measured")))
    }

    fn failures(&self) -> usize {
        self.derived.values().filter(|f| f.is_err()).count()
    }

    /// The Markdown table. Ratios are to the same compiler's `i32.add` latency, the
    /// independent (throughput) figures too, so both columns are in one unit.
    fn report(&self, subjects: &[Subject]) -> String {
        use Variant::{Chained, Independent};
        let reference = |c| {
            self.get(c, Chained, NumOp::I32Add.name())
                .ok()
                .filter(|&add| add > 0.0)
        };
        let ratio = |c, v, name: &str| Some(self.get(c, v, name).ok()? / reference(c)?);
        let cell = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}"));
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| op | chain | subtracted | Cranelift ns | Winch ns | Cranelift ÷ i32.add \
             | Winch ÷ i32.add | unit | model | off by | Cranelift independent \
             | Winch independent |"
        );
        let _ = writeln!(
            out,
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for subject in subjects {
            let name = subject.name.as_str();
            let mut subtracted: Vec<&str> = subject.overhead.iter().map(|o| o.name()).collect();
            if subject.halved {
                subtracted.push("½ (inverse pair)");
            }
            let ns = |c| match self.get(c, Chained, name) {
                Ok(ns) => format!("{ns:.3}"),
                Err(_) => "failed".to_string(),
            };
            let cranelift = ratio(Compiler::Cranelift, Chained, name);
            let unit = cranelift.map_or("-".to_string(), |r| cost_unit(r).to_string());
            let off = match cranelift {
                Some(r) if (r - subject.model as f64).abs() >= MODEL_TOLERANCE => {
                    format!("{:+.1}", r - subject.model as f64)
                }
                _ => String::new(),
            };
            // Only where nothing is subtracted: an overhead measured in independent
            // chains is not what it is inside another operator's chain (a conversion's
            // false dependency, a different value regime), and the differences came out
            // negative for some conversions.
            let independent = |c| {
                if subject.chain == Chain::Latency && subtracted.is_empty() {
                    cell(ratio(c, Independent, name))
                } else {
                    "-".to_string()
                }
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} | {} | {unit} | {} | {off} | {} | {} |",
                match subject.chain {
                    Chain::Latency => "latency",
                    Chain::Throughput => "throughput",
                },
                if subtracted.is_empty() {
                    "-".to_string()
                } else {
                    subtracted.join(", ")
                },
                ns(Compiler::Cranelift),
                ns(Compiler::Winch),
                cell(cranelift),
                cell(ratio(Compiler::Winch, Chained, name)),
                subject.model,
                independent(Compiler::Cranelift),
                independent(Compiler::Winch),
            );
        }
        let mut failed: Vec<String> = self
            .derived
            .iter()
            .filter_map(|((compiler, variant, name), figure)| {
                let e = figure.as_ref().err()?;
                Some(format!("{compiler:?} {variant:?} {name}: {e}"))
            })
            .collect();
        failed.sort();
        for line in failed {
            let _ = writeln!(out, "\n{line}");
        }
        out
    }
}

/// How far (in `i32.add`s) Cranelift's figure may be from the cost model's charge
/// before the table's "off by" column shows it: the model charges groups of operators
/// one rounded unit, so within one is its rounding.
const MODEL_TOLERANCE: f64 = 1.0;

/// The cost unit of a figure `ratio` times `i32.add`'s: rounded, and at least 1, since
/// every operator is an instruction the trace must execute (a free operator would let
/// extraction add them at no cost).
fn cost_unit(ratio: f64) -> u64 {
    ratio.round().max(1.0) as u64
}

fn derive_one(
    compiler: Compiler,
    variant: Variant,
    subject: &Subject,
    by_name: &HashMap<&str, &Subject>,
    raw: &Keyed<Result<f64, String>>,
) -> Result<f64, String> {
    let timed = raw
        .get(&(compiler, variant, subject.name.clone()))
        .cloned()
        .unwrap_or_else(|| Err("not measured".to_string()))?;
    let mut overhead = 0.0;
    for op in &subject.overhead {
        let inner = by_name
            .get(op.name())
            .ok_or_else(|| format!("no subject {}", op.name()))?;
        overhead += derive_one(compiler, variant, inner, by_name, raw)
            .map_err(|e| format!("its overhead {}: {e}", op.name()))?;
    }
    let own = timed - overhead;
    Ok(if subject.halved { own / 2.0 } else { own })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subject_module_validates() {
        let engine = Engine::default();
        let subjects = subjects();
        assert_eq!(subjects.len(), NUM_OPS.len() + 5);
        for subject in subjects.iter().chain([&Subject::empty()]) {
            for variant in subject.variants() {
                wasmtime::Module::validate(&engine, &subject.module(variant.chains()))
                    .unwrap_or_else(|e| panic!("{} {variant:?}: {e:?}", subject.name));
            }
        }
    }

    /// Every overhead a chain subtracts is itself a subject, and no pair subtracts its
    /// own inverse (that would subtract a figure derived from this one).
    #[test]
    fn overheads_are_measured_subjects_without_cycles() {
        let subjects = subjects();
        let names: Vec<&str> = subjects.iter().map(|s| s.name.as_str()).collect();
        for subject in &subjects {
            for op in &subject.overhead {
                assert!(
                    names.contains(&op.name()),
                    "{}: {}",
                    subject.name,
                    op.name()
                );
                assert_ne!(op.name(), subject.name);
                let inner = subjects.iter().find(|s| s.name == op.name()).unwrap();
                assert!(
                    !inner.overhead.iter().any(|o| o.name() == subject.name),
                    "{} and {} subtract each other",
                    subject.name,
                    op.name()
                );
            }
        }
    }

    /// The trapping operators run their whole chain without trapping on both compilers
    /// with the operands the benchmark passes.
    #[test]
    fn trapping_operators_never_trap() {
        for compiler in COMPILERS {
            let engine = compiler.engine().unwrap();
            for info in NUM_OPS.iter().filter(|i| i.can_trap) {
                let subject = Subject::num(info.op);
                for variant in VARIANTS {
                    let mut runner = Runner::new(&engine, &subject, variant).unwrap();
                    runner
                        .run(MAX_ITERATIONS)
                        .unwrap_or_else(|e| panic!("{compiler:?} {variant:?} {}: {e}", info.name));
                }
            }
        }
    }

    /// Overheads are subtracted and an inverse pair is halved.
    #[test]
    fn derivation_subtracts_and_halves() {
        let subjects = subjects();
        let by_name: HashMap<&str, &Subject> =
            subjects.iter().map(|s| (s.name.as_str(), s)).collect();
        let mut raw = HashMap::new();
        for (name, ns) in [
            ("i32.add", 1.0),
            ("i32.xor", 1.0),
            ("i64.xor", 1.0),
            ("i32.rotl", 2.0),
            ("i64.rotl", 2.0),
            ("i32.wrap_i64", 3.0),
            ("i64.extend_i32_s", 5.0),
            ("i32.div_s", 11.0),
        ] {
            raw.insert(
                (Compiler::Cranelift, Variant::Chained, name.to_string()),
                Ok(ns),
            );
        }
        let get = |name: &str| {
            derive_one(
                Compiler::Cranelift,
                Variant::Chained,
                by_name[name],
                &by_name,
                &raw,
            )
        };
        // rotl: 2 - xor = 1; wrap: (3 - i32.rotl) / 2 = 1; extend_s: 5 - wrap - i64.rotl.
        assert_eq!(get("i32.rotl"), Ok(1.0));
        assert_eq!(get("i32.wrap_i64"), Ok(1.0));
        assert_eq!(get("i64.extend_i32_s"), Ok(3.0));
        assert_eq!(get("i32.div_s"), Ok(10.0));
        assert!(get("i32.mul").is_err());
    }

    #[test]
    fn cost_units_round_and_are_at_least_one() {
        assert_eq!(cost_unit(0.2), 1);
        assert_eq!(cost_unit(1.4), 1);
        assert_eq!(cost_unit(2.6), 3);
    }
}
