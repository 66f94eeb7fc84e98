//! Property-style test: many random small integer traces, each optimized and run against
//! its candidate on edge and random inputs. Not a proof (that is `verify`'s job), but it
//! catches an unsound rule, a misplaced trap or a lowering slip early.

mod common;

use common::Rng;
use ir::{
    End, Exit, Input, Inst, LoadKind, NumOp, Operand, Source, StoreKind, Trace, Type, ValueId,
};
use saturate::{optimize, Limits};

/// Every operator over integers only (trapping ones included).
fn int_ops() -> Vec<NumOp> {
    ir::ops::NUM_OPS
        .iter()
        .map(|e| e.op)
        .filter(|op| !op.result().is_float() && op.params().iter().all(|t| !t.is_float()))
        .collect()
}

const LOADS: [LoadKind; 12] = [
    LoadKind::I32,
    LoadKind::I64,
    LoadKind::I32_8S,
    LoadKind::I32_8U,
    LoadKind::I32_16S,
    LoadKind::I32_16U,
    LoadKind::I64_8S,
    LoadKind::I64_8U,
    LoadKind::I64_16S,
    LoadKind::I64_16U,
    LoadKind::I64_32S,
    LoadKind::I64_32U,
];
const STORES: [StoreKind; 7] = [
    StoreKind::I32,
    StoreKind::I64,
    StoreKind::I32_8,
    StoreKind::I32_16,
    StoreKind::I64_8,
    StoreKind::I64_16,
    StoreKind::I64_32,
];

struct Gen {
    rng: Rng,
    values: Vec<(ValueId, Type)>,
    next: u32,
}

impl Gen {
    fn constant(&mut self, ty: Type) -> u64 {
        let pool = common::edges(ty);
        let bits = if self.rng.below(4) == 0 {
            self.rng.next()
        } else {
            pool[self.rng.below(pool.len() as u64) as usize]
        };
        if ty.bits() == 32 {
            bits & 0xffff_ffff
        } else {
            bits
        }
    }

    fn operand(&mut self, ty: Type) -> Operand {
        let candidates: Vec<ValueId> = self
            .values
            .iter()
            .filter(|(_, t)| *t == ty)
            .map(|(v, _)| *v)
            .collect();
        if candidates.is_empty() || self.rng.below(4) == 0 {
            Operand::Const(self.constant(ty))
        } else {
            // Prefer recent values, so chains form.
            let n = candidates.len() as u64;
            let i = n - 1 - self.rng.below(n.min(4));
            Operand::Value(candidates[i as usize])
        }
    }

    fn fresh(&mut self, ty: Type) -> ValueId {
        let v = ValueId(self.next);
        self.next += 1;
        self.values.push((v, ty));
        v
    }

    fn state(&mut self) -> Vec<(u32, Operand)> {
        let mut state = Vec::new();
        for slot in 4..8 {
            if self.rng.below(2) == 0 {
                let ty = if self.rng.below(2) == 0 {
                    Type::I32
                } else {
                    Type::I64
                };
                state.push((slot, self.operand(ty)));
            }
        }
        state
    }
}

fn random_trace(seed: u64, ops: &[NumOp], max_len: u64) -> Trace {
    let mut g = Gen {
        rng: Rng(seed),
        values: Vec::new(),
        next: 0,
    };
    let mut inputs = Vec::new();
    for (slot, ty) in [
        (0, Type::I32),
        (1, Type::I32),
        (2, Type::I64),
        (3, Type::I64),
    ] {
        let value = g.fresh(ty);
        inputs.push(Input {
            value,
            ty,
            source: Source::Slot(slot),
        });
    }
    let mut body = Vec::new();
    let mut exits = 0;
    let len = 3 + g.rng.below(max_len);
    for _ in 0..len {
        let pick = g.rng.below(100);
        let inst = if pick < 72 {
            let op = ops[g.rng.below(ops.len() as u64) as usize];
            let args = op.params().iter().map(|&t| g.operand(t)).collect();
            Inst::Num {
                dst: g.fresh(op.result()),
                op,
                args,
            }
        } else if pick < 80 {
            let ty = if g.rng.below(2) == 0 {
                Type::I32
            } else {
                Type::I64
            };
            let (a, b, cond) = (g.operand(ty), g.operand(ty), g.operand(Type::I32));
            Inst::Select {
                dst: g.fresh(ty),
                ty,
                cond,
                a,
                b,
            }
        } else if pick < 87 {
            let kind = LOADS[g.rng.below(LOADS.len() as u64) as usize];
            let addr = g.operand(Type::I32);
            let offset = [0, 4, 8, 65532][g.rng.below(4) as usize];
            Inst::Load {
                dst: g.fresh(kind.result()),
                kind,
                offset,
                addr,
            }
        } else if pick < 93 {
            let kind = STORES[g.rng.below(STORES.len() as u64) as usize];
            let addr = g.operand(Type::I32);
            let value = g.operand(kind.operand());
            let offset = [0, 4, 8][g.rng.below(3) as usize];
            Inst::Store {
                kind,
                offset,
                addr,
                value,
            }
        } else {
            let cond = g.operand(Type::I32);
            let state = g.state();
            exits += 1;
            Inst::Guard {
                cond,
                expect: g.rng.below(2) == 0,
                exit: Exit {
                    id: exits,
                    pc: exits * 10,
                    offset: exits * 4,
                    state,
                    calls: Vec::new(),
                },
            }
        };
        body.push(inst);
    }
    let state = g.state();
    let end = if g.rng.below(2) == 0 {
        End::Loop { state }
    } else {
        End::Exit(Exit {
            id: 0,
            pc: 99,
            offset: 0x99,
            state,
            calls: Vec::new(),
        })
    };
    Trace {
        locals: 4,
        inputs,
        body,
        end,
    }
}

#[test]
fn random_traces_keep_their_outcomes() {
    let ops = int_ops();
    let limits = Limits::default();
    let mut improved = 0;
    const TRACES: u64 = 400;
    for seed in 1..=TRACES {
        let trace = random_trace(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), &ops, 20);
        ir::validate::validate(&trace)
            .unwrap_or_else(|e| panic!("seed {seed}: generated an invalid trace: {e}\n{trace}"));
        let out = optimize(&trace, &limits);
        assert_eq!(
            out.fallback, None,
            "seed {seed}: lowering fell back\n{trace}"
        );
        ir::validate::validate(&out.candidate).unwrap();
        assert!(out.cost_after <= out.cost_before, "seed {seed}");
        if out.cost_after < out.cost_before {
            improved += 1;
        }
        common::same_outcomes(&trace, &out.candidate, 60, seed);
    }
    // The generator is rich in constants: most traces have something to simplify.
    assert!(
        improved > TRACES / 2,
        "only {improved} of {TRACES} traces improved"
    );
}

/// Long traces stay within the limits and still give valid, equivalent candidates.
#[test]
fn long_traces() {
    let ops = int_ops();
    for seed in 1..=4u64 {
        let trace = random_trace(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1, &ops, 400);
        let start = std::time::Instant::now();
        let out = optimize(&trace, &Limits::default());
        eprintln!(
            "{} insts: {:?}, {:?}, {} nodes, cost {} -> {}",
            trace.body.len(),
            start.elapsed(),
            out.stop_reason,
            out.egraph_nodes,
            out.cost_before,
            out.cost_after
        );
        assert_eq!(out.fallback, None);
        assert!(out.cost_after <= out.cost_before);
        common::same_outcomes(&trace, &out.candidate, 30, seed);
    }
}
