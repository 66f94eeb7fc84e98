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

/// A compile job's number, to match its result to what the tier does with it.
pub(crate) type JobId = u64;

/// What the compile thread made of one job.
pub(crate) struct Compiled {
    pub id: JobId,
    pub module: Result<wasmtime::Module, String>,
    /// How long the compile took on its thread (a tree's next rebuild waits a multiple of
    /// it).
    pub took: Duration,
}

/// The handle of the compile thread: jobs in, modules out, in order.
pub(crate) struct Compiler {
    jobs: Sender<(JobId, Vec<u8>)>,
    done: Receiver<Compiled>,
    next_id: JobId,
}

impl Compiler {
    /// Starts the compile thread for `engine`; it ends when the handle is dropped.
    pub fn start(engine: &wasmtime::Engine) -> std::io::Result<Compiler> {
        let (jobs, queued) = channel::<(JobId, Vec<u8>)>();
        let (finished, done) = channel();
        let engine = engine.clone();
        std::thread::Builder::new()
            .name("kiln-compile".into())
            .spawn(move || {
                for (id, bytes) in queued {
                    let started = Instant::now();
                    let module =
                        wasmtime::Module::new(&engine, &bytes).map_err(|e| format!("{e:#}"));
                    let compiled = Compiled {
                        id,
                        module,
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

    /// Queues `module` (wasm bytes); `None` if the thread is gone.
    pub fn submit(&mut self, module: Vec<u8>) -> Option<JobId> {
        let id = self.next_id;
        self.jobs.send((id, module)).ok()?;
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
