//! Limits: a run cut short still gives a valid candidate, and says which limit it hit.

mod common;

use std::time::Duration;

use saturate::{optimize, Limits, StopReason};

const CHAIN: &str = "
trace locals=1
  in  v0:i32 = slot 0
  v1:i32 = i32.add v0 1
  v2:i32 = i32.add v1 2
  v3:i32 = i32.add v2 3
  v4:i32 = i32.add v3 4
  v5:i32 = i32.add v4 5
  v6:i32 = i32.mul v5 1
  v7:i32 = i32.xor v6 0
  v8:i32 = i32.sub v7 v7
  v9:i32 = i32.add v6 v8
  loop [s0=v9]
";

fn run(limits: Limits) -> saturate::Optimized {
    let trace = ir::text::parse(CHAIN).unwrap();
    let out = optimize(&trace, &limits);
    assert_eq!(out.fallback, None);
    ir::validate::validate(&out.candidate).unwrap();
    assert!(out.cost_after <= out.cost_before);
    common::same_outcomes(&trace, &out.candidate, 100, 7);
    out
}

#[test]
fn defaults_saturate() {
    let out = run(Limits::default());
    assert_eq!(out.stop_reason, StopReason::Saturated);
    assert!(!out.stop_reason.hit_limit());
    assert_eq!(out.cost_after, 1, "{}", out.candidate);
}

#[test]
fn iteration_limit() {
    let out = run(Limits {
        iterations: 1,
        ..Limits::default()
    });
    assert_eq!(out.stop_reason, StopReason::IterationLimit);
    assert!(out.stop_reason.hit_limit());
}

#[test]
fn node_limit() {
    let out = run(Limits {
        nodes: 25,
        ..Limits::default()
    });
    assert_eq!(out.stop_reason, StopReason::NodeLimit);
}

#[test]
fn time_limit() {
    let out = run(Limits {
        time: Duration::ZERO,
        ..Limits::default()
    });
    assert_eq!(out.stop_reason, StopReason::TimeLimit);
}
