//! One static cost for wasm functions, so kiln's code and wasm-opt's are weighed alike.
//!
//! It is saturate's measured cost model (`saturate::cost`, in units of a Cranelift
//! `i32.add`) read off wasm instructions instead of trace instructions: a numeric
//! operator costs what the model says for it, a load or store what a trace load or store
//! costs, a conditional branch what a guard costs. Locals, constants and structured
//! control cost nothing: Cranelift turns locals into registers and constants into
//! immediates, as the model assumes for trace values. An instruction the model has no
//! entry for costs one ALU operation rather than nothing, so that a new kind of code is
//! never counted as free. The count is static (every instruction once), like trace costs.

use ir::{LoadKind, NumOp, StoreKind};
use saturate::cost;

/// Instructions that cost nothing: they become registers, immediates or layout.
const FREE: &[&str] = &[
    "local.get",
    "local.set",
    "local.tee",
    "global.get",
    "i32.const",
    "i64.const",
    "f32.const",
    "f64.const",
    "block",
    "loop",
    "end",
    "else",
    "br",
    "return",
    "nop",
    "drop",
    "unreachable",
];

/// The cost of one instruction by its mnemonic.
pub fn instruction_cost(mnemonic: &str) -> u64 {
    if FREE.contains(&mnemonic) {
        return 0;
    }
    if let Some(op) = NumOp::from_name(mnemonic) {
        return cost::op_cost(op);
    }
    if LoadKind::from_name(mnemonic).is_some() {
        return cost::LOAD;
    }
    if StoreKind::from_name(mnemonic).is_some() {
        return cost::STORE;
    }
    match mnemonic {
        "select" => cost::SELECT,
        "global.set" => cost::GLOBAL_SET,
        "memory.size" => cost::MEMORY_SIZE,
        "memory.grow" => cost::MEMORY_GROW,
        "if" | "br_if" | "br_table" => cost::GUARD,
        _ => cost::ALU,
    }
}

/// The cost of every function of a module printed as wasm text (one instruction per
/// line, as wasmprinter prints it; lines opening with a parenthesis are declarations).
pub fn cost_of_wat(wat: &str) -> u64 {
    wat.lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| !word.starts_with('(') && !word.starts_with(')') && !word.starts_with(";;"))
        .map(instruction_cost)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(wat: &str, expected: u64) {
        assert_eq!(cost_of_wat(wat), expected, "{wat}");
    }

    #[test]
    fn instructions_cost_what_the_model_says() {
        check(
            "(func\n  local.get 0\n  i32.const 8\n  i32.mul\n)",
            cost::MUL,
        );
        check(
            "(func\n  local.get 0\n  i32.const 3\n  i32.shl\n)",
            cost::ALU,
        );
        check(
            "(func\n  local.get 0\n  i32.load8_u offset=4\n  if\n  end\n)",
            cost::LOAD + cost::GUARD,
        );
        check("(func\n  local.get 0\n  v128.any_true\n)", cost::ALU);
    }
}
