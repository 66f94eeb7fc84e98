//! Trace modules compiled on a thread of their own.
//!
//! A side trace or a trace tree is compiled while the program runs, and Cranelift takes
//! about a millisecond for a small module (lz77 links over a hundred side traces, most of
//! its run at the default scale). Compiled on the interpreter's thread, that time is
//! the program's; on a second core it is not: the interpreter goes on (the exit that
//! asked for the side trace returns to it until the code is there) and the tier
//! instantiates and links the module at its next turn. wasmtime's `Module` is built from
//! an `Engine`, which is shared across threads; instantiation needs the `Store`, which is
//! not, so it stays with the tier.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

use crate::code_cache::CodeCache;

/// A compile job's number, to match its result to what the tier does with it.
pub(crate) type JobId = u64;

/// What the compile thread made of one job.
pub(crate) struct Compiled {
    pub id: JobId,
    pub module: Result<wasmtime::Module, String>,
    /// The code came from the machine's code cache.
    pub cache_hit: bool,
    /// How long the compile took on its thread (a tree's next rebuild waits a multiple of
    /// it).
    pub took: Duration,
}

/// The handle of the compile thread: jobs in, modules out, in order.
pub(crate) struct Compiler {
    jobs: Sender<(JobId, Vec<u8>, Option<CodeCache>)>,
    done: Receiver<Compiled>,
    next_id: JobId,
}

impl Compiler {
    /// Starts the compile thread for `engine`; it ends when the handle is dropped.
    pub fn start(engine: &wasmtime::Engine) -> std::io::Result<Compiler> {
        let (jobs, queued) = channel::<(JobId, Vec<u8>, Option<CodeCache>)>();
        let (finished, done) = channel();
        let engine = engine.clone();
        std::thread::Builder::new()
            .name("kiln-compile".into())
            .spawn(move || {
                for (id, bytes, code_cache) in queued {
                    let started = Instant::now();
                    let (module, cache_hit) = match compile(&engine, &bytes, code_cache.as_ref()) {
                        Ok((module, hit)) => (Ok(module), hit),
                        Err(e) => (Err(format!("{e:#}")), false),
                    };
                    let compiled = Compiled {
                        id,
                        module,
                        cache_hit,
                        took: started.elapsed(),
                    };
                    if finished.send(compiled).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Compiler {
            jobs,
            done,
            next_id: 0,
        })
    }

    /// Queues `module` (wasm bytes), looked up in and stored to `code_cache` if given;
    /// `None` if the thread is gone.
    pub fn submit(&mut self, module: Vec<u8>, code_cache: Option<CodeCache>) -> Option<JobId> {
        let id = self.next_id;
        self.jobs.send((id, module, code_cache)).ok()?;
        self.next_id += 1;
        Some(id)
    }

    /// The jobs finished since the last call, without waiting.
    pub fn finished(&self) -> Vec<Compiled> {
        self.done.try_iter().collect()
    }

    /// Waits for the next finished job; `None` if the thread is gone.
    pub fn wait(&self) -> Option<Compiled> {
        self.done.recv().ok()
    }
}

/// `wasm` compiled for `engine`, through `code_cache` if given; `true` when the code came
/// from it.
pub(crate) fn compile(
    engine: &wasmtime::Engine,
    wasm: &[u8],
    code_cache: Option<&CodeCache>,
) -> wasmtime::Result<(wasmtime::Module, bool)> {
    match code_cache {
        Some(cache) => cache.compile(engine, wasm),
        None => Ok((wasmtime::Module::new(engine, wasm)?, false)),
    }
}
