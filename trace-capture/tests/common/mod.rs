//! What the trace-capture test binaries share: the bundled examples, and the replay of
//! a recorded trace against the interpreter's states.

#![allow(dead_code)] // each test binary uses part of it

use std::path::PathBuf;

use trace_capture::{Module, RecordedTrace};

/// The bundled example programs, sorted.
pub fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut wasm: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    wasm.sort();
    assert!(!wasm.is_empty(), "no example programs in {}", dir.display());
    wasm
}

/// Replays `recorded` with the reference evaluator from the state the interpreter had at
/// the anchor; returns what differs from the state the interpreter reached.
pub fn replay_differences(module: &Module, recorded: &RecordedTrace) -> (Vec<String>, usize) {
    use ir::eval::{eval, Ended, EntryState};
    let (entry, end) = recorded.states.as_ref().expect("states captured");
    let numbered = |values: &[u64]| -> std::collections::BTreeMap<u32, u64> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as u32, v))
            .collect()
    };
    let state = EntryState {
        slots: numbered(&entry.slots),
        globals: numbered(&entry.globals),
        memory: entry.memory.clone(),
        max_pages: None,
    };
    let outcome = match eval(&recorded.trace, state) {
        Ok(outcome) => outcome,
        Err(e) => return (vec![format!("the evaluator refused the trace: {e:?}")], 0),
    };
    let mut slots = entry.slots.clone();
    let mut problems = Vec::new();
    let (final_exit, end_pc, end_calls) = match &recorded.trace.end {
        ir::End::Exit(exit) => (Some(exit.id), exit.pc, &exit.calls[..]),
        ir::End::Loop { .. } => (None, recorded.anchor_pc, &[][..]),
    };
    let mut dead = 0;
    match &outcome.end {
        Ended::Loop { slots: written } if final_exit.is_none() => {
            for (&s, &v) in written {
                slots[s as usize] = v;
            }
        }
        Ended::Exit {
            id, slots: written, ..
        } if Some(*id) == final_exit => {
            for (&s, &v) in written {
                slots[s as usize] = v;
            }
        }
        other => problems.push(format!(
            "the evaluator ended with {other:?}, not the trace's end"
        )),
    }
    for (i, (got, want)) in slots.iter().zip(&end.slots).enumerate() {
        if got != want
            && !module.slot_read_after_exit(recorded.func_index, end_pc, end_calls, i as u32)
        {
            dead += 1;
        } else if got != want {
            problems.push(format!(
                "slot {i}: evaluator {got:#x}, interpreter {want:#x}"
            ));
        }
    }
    let globals: Vec<u64> = (0..end.globals.len() as u32)
        .map(|g| {
            outcome
                .globals
                .get(&g)
                .copied()
                .unwrap_or(entry.globals[g as usize])
        })
        .collect();
    if globals != end.globals {
        problems.push(format!(
            "globals: evaluator {globals:?}, interpreter {:?}",
            end.globals
        ));
    }
    if outcome.memory != end.memory {
        let first = outcome
            .memory
            .iter()
            .zip(&end.memory)
            .position(|(a, b)| a != b)
            .unwrap_or(outcome.memory.len().min(end.memory.len()));
        problems.push(format!("memory differs first at byte {first}"));
    }
    (problems, dead)
}
