//! Helpers shared by the corpus tests: distinct valid traces made from a number, and
//! provenance for them.
#![allow(dead_code)]

use std::path::Path;

use corpus::TraceHash;
use ir::{
    AnchorKind, End, Exit, Input, Inst, NumOp, Operand, Provenance, Source, Trace, Type, ValueId,
};

pub use ir::hash::content_hash;

/// A valid trace that differs from `trace(m)` for every `m != n` (`n` is a constant in
/// it): a loop over two i32 slots that adds `n` to slot 0 one to five times, then guards
/// that the sum is below slot 1.
pub fn trace(n: u32) -> Trace {
    let v = |i: u32| Operand::Value(ValueId(i));
    let adds = 1 + n % 5;
    let mut body = Vec::new();
    for i in 0..adds {
        let acc = if i == 0 { 0 } else { 1 + i };
        body.push(Inst::Num {
            dst: ValueId(2 + i),
            op: NumOp::I32Add,
            args: vec![v(acc), Operand::Const(n as u64)],
        });
    }
    let sum = 1 + adds;
    let cond = sum + 1;
    body.push(Inst::Num {
        dst: ValueId(cond),
        op: NumOp::I32LtU,
        args: vec![v(sum), v(1)],
    });
    body.push(Inst::Guard {
        cond: v(cond),
        expect: true,
        exit: Exit {
            id: 0,
            pc: 9,
            offset: 0x21,
            state: vec![(0, v(sum)), (1, v(1))],
            calls: Vec::new(),
        },
    });
    Trace {
        locals: 2,
        inputs: vec![
            Input {
                value: ValueId(0),
                ty: Type::I32,
                source: Source::Slot(0),
            },
            Input {
                value: ValueId(1),
                ty: Type::I32,
                source: Source::Slot(1),
            },
        ],
        body,
        end: End::Loop {
            state: vec![(0, v(sum))],
        },
    }
}

/// The body length of `trace(n)`.
pub fn trace_len(n: u32) -> usize {
    (1 + n % 5) as usize + 2
}

/// A stand-in module hash for an app: 64 hex digits made from its name.
pub fn module_hash(app: &str) -> String {
    let hex: String = app.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:0<64}")[..64].to_string()
}

/// Provenance of `trace(n)` recorded by `app`: its loop at function `n`, offset `4n`.
pub fn prov(app: &str, n: u32, hits: u64) -> Provenance {
    Provenance {
        module_hash: module_hash(app),
        func_index: n,
        anchor_offset: 4 * n,
        kind: AnchorKind::Loop,
        hits,
    }
}

/// `trace(n)` with its provenance for each `n`.
pub fn batch(
    app: &str,
    ns: impl IntoIterator<Item = u32>,
    hits: impl Fn(u32) -> u64,
) -> Vec<(Trace, Provenance)> {
    ns.into_iter()
        .map(|n| (trace(n), prov(app, n, hits(n))))
        .collect()
}

pub fn hash(n: u32) -> TraceHash {
    content_hash(&trace(n))
}

/// The index database of a corpus directory, opened directly, for tests that tamper.
pub fn raw_index(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(corpus::INDEX_FILE)).unwrap()
}

/// The schema version a corpus directory's index records, read directly.
pub fn stored_schema_version(dir: &Path) -> String {
    raw_index(dir)
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}
