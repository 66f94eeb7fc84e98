//! The API's edges: limits, invalid input, and what a verdict carries.

use std::time::Duration;

use verify::{check_equivalent, Limits, Verdict, DEFAULT_TIMEOUT};

fn parse(text: &str) -> ir::Trace {
    ir::text::parse(text).unwrap()
}

#[test]
fn default_timeout_is_two_seconds() {
    assert_eq!(Limits::default().timeout, DEFAULT_TIMEOUT);
    assert_eq!(DEFAULT_TIMEOUT, Duration::from_secs(2));
}

/// 64-bit division and multiplication are hard for bit-blasting: a millisecond is not
/// enough, and the answer is Unknown("timeout"), not a guess.
#[test]
fn running_out_of_time_is_unknown_timeout() {
    let recorded = parse(
        "trace locals=2
           in  v0:i64 = slot 0
           in  v1:i64 = slot 1
           v2:i32 = i64.eqz v1
           guard !v2 else exit 1 pc=2 @0x4 []
           loop [s0=v0]",
    );
    let candidate = parse(
        "trace locals=2
           in  v0:i64 = slot 0
           in  v1:i64 = slot 1
           v2:i32 = i64.eqz v1
           guard !v2 else exit 1 pc=2 @0x4 []
           v3:i64 = i64.div_u v0 v1
           v4:i64 = i64.mul v3 v1
           v5:i64 = i64.rem_u v0 v1
           v6:i64 = i64.add v4 v5
           loop [s0=v6]",
    );
    let limits = Limits {
        timeout: Duration::from_millis(1),
    };
    assert_eq!(
        check_equivalent(&recorded, &candidate, &limits),
        Verdict::Unknown("timeout".into())
    );
}

#[test]
fn an_invalid_trace_is_unknown() {
    let good = parse(
        "trace locals=1
           in  v0:i32 = slot 0
           loop [s0=v0]",
    );
    let mut bad = good.clone();
    bad.end = ir::End::Loop {
        state: vec![(0, ir::Operand::Value(ir::ValueId(7)))],
    };
    match check_equivalent(&good, &bad, &Limits::default()) {
        Verdict::Unknown(why) => assert!(why.starts_with("invalid candidate trace"), "{why}"),
        other => panic!("expected Unknown, got {other}"),
    }
}

#[test]
fn a_refutation_carries_both_outcomes() {
    let recorded = parse(
        "trace locals=1
           in  v0:i32 = slot 0
           v1:i32 = i32.add v0 1
           loop [s0=v1]",
    );
    let candidate = parse(
        "trace locals=1
           in  v0:i32 = slot 0
           v1:i32 = i32.add v0 2
           loop [s0=v1]",
    );
    let Verdict::Refuted(cex) = check_equivalent(&recorded, &candidate, &Limits::default()) else {
        panic!("expected a refutation")
    };
    let x = cex.entry.slots[&0];
    assert_eq!(
        cex.recorded.end,
        ir::eval::Ended::Loop {
            slots: [(0, (x as u32).wrapping_add(1) as u64)].into()
        }
    );
    assert_ne!(cex.recorded, cex.candidate);
}
