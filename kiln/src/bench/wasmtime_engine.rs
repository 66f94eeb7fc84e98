//! wasmtime with its default configuration: Cranelift at `opt_level = speed`, bounds
//! checks elided through guard pages and signal handlers.

use std::time::Instant;

use anyhow::anyhow;
use wasmtime::{Caller, Engine, Extern, Linker, Module, Store};

use super::wasi_shim::{self as wasi, Exit, WasiState};
use super::{EngineRun, Outcome};

pub fn run(wasm: &[u8], argv: Vec<String>) -> anyhow::Result<EngineRun> {
    let start = Instant::now();
    // One compile thread, as this bench has always measured it (the workspace builds
    // wasmtime with `parallel-compilation` for the tier's cache libraries).
    let mut config = wasmtime::Config::new();
    config.parallel_compilation(false);
    let engine = Engine::new(&config).map_err(|e| anyhow!("wasmtime: {e:?}"))?;
    let module = Module::new(&engine, wasm).map_err(|e| anyhow!("wasmtime: {e:?}"))?;
    wasi::check_imports(module.imports().map(|i| (i.module(), i.name())))?;
    let load = start.elapsed();

    let start = Instant::now();
    let mut store = Store::new(&engine, WasiState::new(argv, Vec::new()));
    let mut linker = Linker::new(&engine);
    define_wasi(&mut linker).map_err(|e| anyhow!("defining WASI for wasmtime: {e}"))?;
    let result = linker
        .instantiate(&mut store, &module)
        .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
        .and_then(|start| start.call(&mut store, ()));
    let run = start.elapsed();

    let outcome = match result {
        Ok(()) => Outcome::Exit(0),
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(Exit(code)) => Outcome::Exit(*code),
            None => Outcome::Trap(match e.downcast_ref::<wasmtime::Trap>() {
                Some(trap) => trap.to_string(),
                None => format!("{e:#}"),
            }),
        },
    };
    let state = store.into_data();
    Ok(EngineRun {
        load,
        run,
        outcome,
        stdout: state.stdout,
        stderr: state.stderr,
    })
}

/// Calls `f` with the caller's exported memory and the WASI state.
fn with_memory(
    caller: &mut Caller<'_, WasiState>,
    f: impl FnOnce(&mut [u8], &mut WasiState) -> wasi::Errno,
) -> wasmtime::Result<i32> {
    let memory = caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| {
            wasmtime::Error::msg("WASI call from a module without an exported memory")
        })?;
    let (mem, state) = memory.data_and_store_mut(caller);
    Ok(f(mem, state))
}

fn define_wasi(linker: &mut Linker<WasiState>) -> wasmtime::Result<()> {
    type C<'a> = Caller<'a, WasiState>;
    let m = wasi::MODULE;
    linker.func_wrap(m, "args_get", |mut c: C, a: i32, b: i32| {
        with_memory(&mut c, |mem, s| s.args_get(mem, a as u32, b as u32))
    })?;
    linker.func_wrap(m, "args_sizes_get", |mut c: C, a: i32, b: i32| {
        with_memory(&mut c, |mem, s| s.args_sizes_get(mem, a as u32, b as u32))
    })?;
    linker.func_wrap(m, "environ_get", |mut c: C, a: i32, b: i32| {
        with_memory(&mut c, |mem, s| s.environ_get(mem, a as u32, b as u32))
    })?;
    linker.func_wrap(m, "environ_sizes_get", |mut c: C, a: i32, b: i32| {
        with_memory(&mut c, |mem, s| {
            s.environ_sizes_get(mem, a as u32, b as u32)
        })
    })?;
    linker.func_wrap(m, "fd_close", |mut c: C, fd: i32| {
        c.data_mut().fd_close(fd as u32)
    })?;
    linker.func_wrap(m, "fd_fdstat_get", |mut c: C, fd: i32, p: i32| {
        with_memory(&mut c, |mem, s| s.fd_fdstat_get(mem, fd as u32, p as u32))
    })?;
    linker.func_wrap(
        m,
        "fd_seek",
        |mut c: C, fd: i32, off: i64, wh: i32, p: i32| {
            with_memory(&mut c, |mem, s| {
                s.fd_seek(mem, fd as u32, off, wh as u32, p as u32)
            })
        },
    )?;
    linker.func_wrap(
        m,
        "fd_write",
        |mut c: C, fd: i32, iovs: i32, n: i32, p: i32| {
            with_memory(&mut c, |mem, s| {
                s.fd_write(mem, fd as u32, iovs as u32, n as u32, p as u32)
            })
        },
    )?;
    linker.func_wrap(m, "proc_exit", |_: C, code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(Exit(code)))
    })?;
    Ok(())
}
