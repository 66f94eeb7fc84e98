//! Kiln against a production optimizer: each trace's naive wasm function through
//! Binaryen's `wasm-opt -O3`, and both sides costed by one metric (`wasm_cost.rs`).
//!
//! Trace functions use two memories (the guest's, and the frame kiln shares with them),
//! and Debian's Binaryen (108) has no multi-memory support, so the module wasm-opt sees
//! has the frame folded into memory 0. wasm-opt must then assume frame and guest
//! accesses may alias; they meet only at the trace's entry and exits, outside the loop
//! body where the work is, so this costs wasm-opt little.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use emit::{EmitKind, GlobalInfo, GuestInfo, ModuleBuilder};
use ir::{Inst, Source};

use crate::model::TraceRow;
use crate::wasm_cost::cost_of_wat;

/// The optimizer's executable, looked up on PATH.
pub const WASM_OPT: &str = "wasm-opt";

/// Time allowed for one trace: wasm-opt takes milliseconds on a trace function; a run
/// that takes longer is stuck, and the trace is reported as not compared.
const WASM_OPT_TIMEOUT: Duration = Duration::from_secs(20);

/// How often a running wasm-opt is checked against its timeout.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The most lines of wasm-opt's output shown per trace: enough for a loop body.
const MAX_EXCERPT_LINES: usize = 40;

/// One trace costed three ways, in the units of `wasm_cost.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The naive function (the recorded trace, 1:1).
    pub naive: u64,
    /// What kiln ships: the proven candidate, else the recorded trace.
    pub kiln: u64,
    /// The naive function after `wasm-opt -O3`.
    pub wasm_opt: u64,
    /// wasm-opt's function as text (cut after [`MAX_EXCERPT_LINES`] lines).
    pub wasm_opt_excerpt: String,
}

/// wasm-opt's version line, or why it cannot run.
pub fn version() -> Result<String, String> {
    let output = Command::new(WASM_OPT)
        .arg("--version")
        .output()
        .map_err(|e| format!("`{WASM_OPT}` cannot be run ({e}); install binaryen"))?;
    if !output.status.success() {
        return Err(format!("`{WASM_OPT} --version` failed: {}", output.status));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Costs one trace naive, as kiln ships it, and through wasm-opt.
pub fn compare(row: &TraceRow, guests: &HashMap<String, GuestInfo>) -> Result<Comparison, String> {
    let guest = row
        .module_hashes
        .iter()
        .find_map(|h| guests.get(h).cloned())
        .map_or_else(|| guest_from_trace(&row.recorded), Ok)?;
    let naive = emit_one(&guest, &row.recorded, EmitKind::Naive)?;
    let shipped = match &row.candidate {
        Some(candidate) if row.savings() > 0 => emit_one(&guest, candidate, EmitKind::Optimized)?,
        _ => naive.clone(),
    };
    let optimized = run_wasm_opt(&single_memory(&naive)?, &row.hash.to_string())?;
    Ok(Comparison {
        naive: cost_of_wat(&naive),
        kiln: cost_of_wat(&shipped),
        wasm_opt: cost_of_wat(&optimized),
        wasm_opt_excerpt: optimized
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("(func"))
            .take(MAX_EXCERPT_LINES)
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

/// A guest description from what the trace itself reads, for a trace whose app's module
/// is not at hand: its globals with the types it reads them as, and a memory without
/// limits. A global written but never read has no type the trace tells, so such a trace
/// needs its app's module.
fn guest_from_trace(trace: &ir::Trace) -> Result<GuestInfo, String> {
    let mut globals = std::collections::BTreeMap::new();
    for input in &trace.inputs {
        if let Source::Global(g) = input.source {
            globals.insert(
                g,
                GlobalInfo {
                    ty: input.ty,
                    mutable: true,
                },
            );
        }
    }
    for inst in &trace.body {
        if let Inst::GlobalSet { global, .. } = inst {
            if !globals.contains_key(global) {
                return Err(format!(
                    "the trace writes global {global} without reading it, so its type is \
                     unknown without the app's module (kiln report --apps DIR)"
                ));
            }
        }
    }
    Ok(GuestInfo {
        memory_min_pages: 0,
        memory_max_pages: None,
        globals,
    })
}

/// One trace as a module, in wasm text.
fn emit_one(guest: &GuestInfo, trace: &ir::Trace, kind: EmitKind) -> Result<String, String> {
    let mut builder = ModuleBuilder::new(guest.clone()).map_err(|e| e.to_string())?;
    builder.add(trace, kind).map_err(|e| e.to_string())?;
    let bytes = builder.finish().map_err(|e| e.to_string())?;
    emit::wat(&bytes).map_err(|e| e.to_string())
}

/// The module with its frame memory (memory 1) folded into memory 0: the import goes,
/// and loads and stores naming memory 1 name memory 0 instead.
pub fn single_memory(wat: &str) -> Result<Vec<u8>, String> {
    let mut text = String::with_capacity(wat.len());
    for line in wat.lines() {
        if line.contains("(import \"kiln\" \"frame\"") {
            continue;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        let is_access = first.contains(".load") || first.contains(".store");
        let rest: Vec<&str> = words.collect();
        if is_access && rest.first() == Some(&"1") {
            let indent = &line[..line.len() - line.trim_start().len()];
            text.push_str(indent);
            text.push_str(first);
            for w in &rest[1..] {
                text.push(' ');
                text.push_str(w);
            }
        } else {
            text.push_str(line);
        }
        text.push('\n');
    }
    wat::parse_str(&text).map_err(|e| format!("folding the frame memory: {e}"))
}

/// Runs `wasm-opt -O3` on `module`; returns the result as wasm text.
fn run_wasm_opt(module: &[u8], name: &str) -> Result<String, String> {
    let dir = std::env::temp_dir();
    let stem = format!("kiln-report-{}-{name}", std::process::id());
    let input = dir.join(format!("{stem}.in.wasm"));
    let output = dir.join(format!("{stem}.out.wasm"));
    let _cleanup = RemoveOnDrop(vec![input.clone(), output.clone()]);
    std::fs::write(&input, module).map_err(|e| format!("{}: {e}", input.display()))?;
    let mut child = Command::new(WASM_OPT)
        .arg("-O3")
        .arg("--all-features")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("`{WASM_OPT}` cannot be run: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > WASM_OPT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "wasm-opt took more than {} s",
                    WASM_OPT_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(POLL_INTERVAL),
            Err(e) => return Err(format!("waiting for wasm-opt: {e}")),
        }
    };
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let first = stderr.lines().next().unwrap_or("").to_string();
        return Err(format!("wasm-opt failed ({status}): {first}"));
    }
    let bytes = std::fs::read(&output).map_err(|e| format!("{}: {e}", output.display()))?;
    wasmprinter::print_bytes(&bytes).map_err(|e| format!("printing wasm-opt's output: {e}"))
}

/// Removes temporary files however the comparison ends.
struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
