//! Kiln's own interpreter, as `kiln run` runs a program: anchor hit counters on, and
//! trace recording when asked.

use std::time::Instant;

use anyhow::anyhow;
use trace_capture::wasi::{self, RunError, SharedBuffer, WasiCtx};
use trace_capture::{Linker, Module, RecordConfig, Store};

use super::{EngineRun, Outcome};

pub fn run(wasm: &[u8], argv: Vec<String>, record: bool) -> anyhow::Result<EngineRun> {
    let start = Instant::now();
    let module = Module::new(wasm).map_err(|e| anyhow!("kiln: {e}"))?;
    let load = start.elapsed();

    let start = Instant::now();
    let (stdout, stderr) = (SharedBuffer::default(), SharedBuffer::default());
    let ctx = WasiCtx::new(argv)
        .stdout(Box::new(stdout.clone()))
        .stderr(Box::new(stderr.clone()));
    let mut store = Store::new();
    if record {
        store.enable_recording(RecordConfig::default());
    }
    let mut linker = Linker::new();
    wasi::define(&mut linker, &mut store, ctx);
    let result = wasi::run_command(&mut store, &linker, &module);
    let run = start.elapsed();

    let outcome = match result {
        Ok((_, code)) => Outcome::Exit(code),
        Err(RunError::Trap(trap)) => Outcome::Trap(trap.to_string()),
        Err(RunError::Instantiate(e)) => return Err(anyhow!("kiln: {e}")),
    };
    Ok(EngineRun {
        load,
        run,
        outcome,
        stdout: stdout.contents(),
        stderr: stderr.contents(),
    })
}
