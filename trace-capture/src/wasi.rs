//! A small WASI preview1 host: enough of `wasi_snapshot_preview1` to run command-line
//! programs built with wasi-libc (stdio, arguments, environment, clocks, random, exit).
//!
//! There is no file system: no directory is preopened, so every fd but 0, 1 and 2 is
//! `EBADF`, and wasi-libc's startup (which asks for preopens until it gets `EBADF`) is
//! content with that. Standard streams are whatever the embedder hands [`WasiCtx`]; by
//! default the process's own.
//!
//! The guest's pointers are never trusted: every range is checked against its linear
//! memory before anything is read or written, and a bad one is errno `EFAULT`, never a
//! panic and never a partial effect (a `fd_write` with one bad iovec writes nothing).
//!
//! `proc_exit` is not a failure but it must unwind the guest, so it returns a [`Trap`] of
//! kind [`TrapKind::Exit`]; [`run_command`] turns that back into an exit code.

use std::cell::RefCell;
use std::fmt;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::module::Module;
use crate::store::{Caller, InstantiateError, Linker, Store};
use crate::trap::{Trap, TrapKind};
use crate::types::{Extern, FuncType, InstanceId, ValType, Value};

/// The module name every preview1 import uses.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// A WASI errno (preview1 numbering).
type Errno = i32;
const SUCCESS: Errno = 0;
const EBADF: Errno = 8;
const EFAULT: Errno = 21;
const EINVAL: Errno = 28;
const EIO: Errno = 29;
const EPIPE: Errno = 64;
const ESPIPE: Errno = 70;

/// `filetype::character_device`.
const FILETYPE_CHARACTER_DEVICE: u8 = 2;
/// Rights bits of preview1 that the standard streams have.
const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_WRITE: u64 = 1 << 6;
const RIGHT_POLL_FD_READWRITE: u64 = 1 << 27;

/// `clockid` values.
const CLOCK_REALTIME: i32 = 0;
const CLOCK_MONOTONIC: i32 = 1;

/// Seed of `random_get`'s generator. `random_get` is deterministic on purpose: kiln
/// compares runs of one program across tiers and engines, records traces and benchmarks
/// them, and all of that needs a program to behave the same way every time it runs. Guests
/// use this for hash seeds and the like, not for secrets.
const RANDOM_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// What a WASI program sees of the world: its arguments, environment and standard streams.
pub struct WasiCtx {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Box<dyn Read>,
    stdout: Box<dyn Write>,
    stderr: Box<dyn Write>,
    /// Which of fds 0, 1, 2 the guest has closed.
    closed: [bool; 3],
    /// State of `random_get`'s xorshift64* generator.
    random: u64,
    /// Origin of the monotonic clock.
    start: Instant,
}

impl WasiCtx {
    /// A context with these arguments (`args[0]` is the program name), an empty
    /// environment, and the process's own stdin, stdout and stderr.
    pub fn new(args: Vec<String>) -> WasiCtx {
        WasiCtx {
            args,
            env: Vec::new(),
            stdin: Box::new(std::io::stdin()),
            stdout: Box::new(std::io::stdout()),
            stderr: Box::new(std::io::stderr()),
            closed: [false; 3],
            random: RANDOM_SEED,
            start: Instant::now(),
        }
    }

    /// Sets the environment variables the guest sees (none by default).
    pub fn env(mut self, vars: Vec<(String, String)>) -> WasiCtx {
        self.env = vars;
        self
    }

    pub fn stdin(mut self, r: Box<dyn Read>) -> WasiCtx {
        self.stdin = r;
        self
    }

    pub fn stdout(mut self, w: Box<dyn Write>) -> WasiCtx {
        self.stdout = w;
        self
    }

    pub fn stderr(mut self, w: Box<dyn Write>) -> WasiCtx {
        self.stderr = w;
        self
    }

    fn is_open(&self, fd: i32) -> bool {
        (0..3).contains(&fd) && !self.closed[fd as usize]
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64* (Vigna): small, fast, and good enough for hash seeds.
        let mut x = self.random;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.random = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A `Write` that appends into a shared buffer, for capturing output in tests and
/// benchmarks.
#[derive(Clone, Default)]
pub struct SharedBuffer(pub Rc<RefCell<Vec<u8>>>);

impl SharedBuffer {
    /// A copy of everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.borrow().clone()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why [`run_command`] failed.
#[derive(Debug)]
pub enum RunError {
    /// The module could not be linked, has no `_start`, or its start function trapped.
    Instantiate(InstantiateError),
    /// `_start` trapped (a real trap: `proc_exit` is an exit code, not an error).
    Trap(Trap),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Instantiate(e) => e.fmt(f),
            RunError::Trap(t) => t.fmt(f),
        }
    }
}

impl std::error::Error for RunError {}

/// Instantiates a WASI command and runs `_start`; returns the instance and the exit code
/// (0 when `_start` returns, the `proc_exit` code otherwise).
pub fn run_command(
    store: &mut Store,
    linker: &Linker,
    module: &Module,
) -> Result<(InstanceId, i32), RunError> {
    let instance = linker
        .instantiate(store, module)
        .map_err(RunError::Instantiate)?;
    let code = start_command(store, instance)?;
    Ok((instance, code))
}

/// Runs `_start` of an instantiated WASI command: the second half of [`run_command`], for
/// embedders that want the instance even when the program traps (to read its anchor
/// counters, say). Returns the exit code.
pub fn start_command(store: &mut Store, instance: InstanceId) -> Result<i32, RunError> {
    let start = match store.export(instance, "_start") {
        Some(Extern::Func(f)) => f,
        _ => {
            return Err(RunError::Instantiate(InstantiateError::Link(
                "not a WASI command: the module exports no function `_start`".into(),
            )))
        }
    };
    let ty = store.func_type(start);
    if !ty.params.is_empty() || !ty.results.is_empty() {
        return Err(RunError::Instantiate(InstantiateError::Link(format!(
            "not a WASI command: `_start` has type {ty}, expected [] -> []"
        ))));
    }
    match store.invoke(start, &[]) {
        Ok(_) => Ok(0),
        Err(Trap {
            kind: TrapKind::Exit(code),
            ..
        }) => Ok(code),
        Err(trap) => Err(RunError::Trap(trap)),
    }
}

/// The guest's linear memory as a host function sees it: every access is bounds-checked
/// and fails with `EFAULT`. A caller without a memory faults on every access.
struct Mem<'a>(Option<&'a mut [u8]>);

impl Mem<'_> {
    fn range(&self, ptr: i32, len: u64) -> Result<std::ops::Range<usize>, Errno> {
        let size = self.0.as_ref().map_or(0, |m| m.len()) as u64;
        let start = ptr as u32 as u64;
        match start.checked_add(len) {
            Some(end) if end <= size => Ok(start as usize..end as usize),
            _ => Err(EFAULT),
        }
    }

    fn bytes(&self, ptr: i32, len: u64) -> Result<&[u8], Errno> {
        let r = self.range(ptr, len)?;
        Ok(&self.0.as_ref().expect("range checked")[r])
    }

    fn bytes_mut(&mut self, ptr: i32, len: u64) -> Result<&mut [u8], Errno> {
        let r = self.range(ptr, len)?;
        Ok(&mut self.0.as_mut().expect("range checked")[r])
    }

    fn read_u32(&self, ptr: i32) -> Result<u32, Errno> {
        let b = self.bytes(ptr, 4)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn write_u32(&mut self, ptr: i32, v: u32) -> Result<(), Errno> {
        self.bytes_mut(ptr, 4)?.copy_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn write_u64(&mut self, ptr: i32, v: u64) -> Result<(), Errno> {
        self.bytes_mut(ptr, 8)?.copy_from_slice(&v.to_le_bytes());
        Ok(())
    }

    /// Reads an iovec (or ciovec) array: (pointer, length) pairs, each range checked.
    fn iovecs(&self, iovs: i32, count: i32) -> Result<Vec<(i32, u32)>, Errno> {
        let count = count as u32;
        self.range(iovs, count as u64 * 8)?;
        let mut out = Vec::with_capacity(count as usize);
        for i in 0..count {
            let at = (iovs as u32).wrapping_add(i * 8) as i32;
            let buf = self.read_u32(at)? as i32;
            let len = self.read_u32(at.wrapping_add(4))?;
            self.range(buf, len as u64)?;
            out.push((buf, len));
        }
        Ok(out)
    }

    /// Writes a list of strings as C's `argv`/`environ`: `ptrs` receives one pointer per
    /// string into `buf`, which receives the strings, each NUL-terminated.
    fn write_string_list(&mut self, ptrs: i32, buf: i32, list: &[Vec<u8>]) -> Result<(), Errno> {
        let total: u64 = list.iter().map(|s| s.len() as u64 + 1).sum();
        self.range(ptrs, list.len() as u64 * 4)?;
        self.range(buf, total)?;
        let mut at = buf as u32;
        for (i, s) in list.iter().enumerate() {
            self.write_u32((ptrs as u32 + i as u32 * 4) as i32, at)?;
            let dst = self.bytes_mut(at as i32, s.len() as u64 + 1)?;
            dst[..s.len()].copy_from_slice(s);
            dst[s.len()] = 0;
            at += s.len() as u32 + 1;
        }
        Ok(())
    }
}

fn arg_i32(args: &[Value], i: usize) -> i32 {
    match args[i] {
        Value::I32(v) => v,
        other => unreachable!("WASI argument {i} has the wrong type: {other}"),
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => EPIPE,
        _ => EIO,
    }
}

/// A WASI function that returns an errno: gets the context, the caller's memory and its
/// arguments; `Err(errno)` is a failure reported to the guest, not a trap.
type Syscall = fn(&mut WasiCtx, &mut Mem<'_>, &[Value]) -> Result<(), Errno>;

/// Registers every WASI function in `linker` under "wasi_snapshot_preview1", backed by
/// `ctx`.
pub fn define(linker: &mut Linker, store: &mut Store, ctx: WasiCtx) {
    use ValType::{I32, I64};
    let ctx = Rc::new(RefCell::new(ctx));
    let syscalls: &[(&str, &[ValType], Syscall)] = &[
        ("args_get", &[I32, I32], args_get),
        ("args_sizes_get", &[I32, I32], args_sizes_get),
        ("environ_get", &[I32, I32], environ_get),
        ("environ_sizes_get", &[I32, I32], environ_sizes_get),
        ("fd_write", &[I32, I32, I32, I32], fd_write),
        ("fd_read", &[I32, I32, I32, I32], fd_read),
        ("fd_close", &[I32], fd_close),
        ("fd_seek", &[I32, I64, I32, I32], fd_seek),
        ("fd_fdstat_get", &[I32, I32], fd_fdstat_get),
        ("fd_prestat_get", &[I32, I32], fd_prestat_get),
        ("fd_prestat_dir_name", &[I32, I32, I32], fd_prestat_dir_name),
        ("clock_time_get", &[I32, I64, I32], clock_time_get),
        ("random_get", &[I32, I32], random_get),
        ("sched_yield", &[], sched_yield),
    ];
    for &(name, params, f) in syscalls {
        let ctx = ctx.clone();
        let addr = store.host_func(
            FuncType::new(params, [I32]),
            move |caller: &mut Caller<'_>, args: &[Value]| {
                let mut mem = Mem(caller.memory());
                let errno = match f(&mut ctx.borrow_mut(), &mut mem, args) {
                    Ok(()) => SUCCESS,
                    Err(errno) => errno,
                };
                Ok(vec![Value::I32(errno)])
            },
        );
        linker.define(MODULE, name, Extern::Func(addr));
    }
    let addr = store.host_func(FuncType::new([I32], []), |_, args| {
        Err(Trap::new(TrapKind::Exit(arg_i32(args, 0))))
    });
    linker.define(MODULE, "proc_exit", Extern::Func(addr));
}

fn args_get(ctx: &mut WasiCtx, mem: &mut Mem<'_>, a: &[Value]) -> Result<(), Errno> {
    let list: Vec<Vec<u8>> = ctx.args.iter().map(|s| s.as_bytes().to_vec()).collect();
    mem.write_string_list(arg_i32(a, 0), arg_i32(a, 1), &list)
}

fn args_sizes_get(ctx: &mut WasiCtx, mem: &mut Mem<'_>, a: &[Value]) -> Result<(), Errno> {
    let size: usize = ctx.args.iter().map(|s| s.len() + 1).sum();
    sizes(mem, a, ctx.args.len(), size)
}

fn environ_get(ctx: &mut WasiCtx, mem: &mut Mem<'_>, a: &[Value]) -> Result<(), Errno> {
    let list: Vec<Vec<u8>> = ctx
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}").into_bytes())
        .collect();
    mem.write_string_list(arg_i32(a, 0), arg_i32(a, 1), &list)
}

fn environ_sizes_get(ctx: &mut WasiCtx, mem: &mut Mem<'_>, a: &[Value]) -> Result<(), Errno> {
    let size: usize = ctx.env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    sizes(mem, a, ctx.env.len(), size)
}

/// Writes a count and a byte size to the pointers in `a[0]` and `a[1]`.
fn sizes(mem: &mut Mem<'_>, a: &[Value], count: usize, size: usize) -> Result<(), Errno> {
    let (count_ptr, size_ptr) = (arg_i32(a, 0), arg_i32(a, 1));
    mem.range(count_ptr, 4)?;
    mem.range(size_ptr, 4)?;
    mem.write_u32(count_ptr, count as u32)?;
    mem.write_u32(size_ptr, size as u32)
}

fn fd_write(ctx: &mut WasiCtx, mem: &mut Mem<'_>, a: &[Value]) -> Result<(), Errno> {
    let (fd, iovs, count, nwritten) = (arg_i32(a, 0), arg_i32(a, 1), arg_i32(a, 2), arg_i32(a, 3));
    if !ctx.is_open(fd) || fd == 0 {
        return Err(EBADF);
    }
    // Check every pointer before writing anything, so a fault has no effect.
    let iovecs = mem.iovecs(iovs, count)?;
    mem.range(nwritten, 4)?;
    let out: &mut dyn Write = if fd == 1 {
        &mut *ctx.stdout
    } else {
        &mut *ctx.stderr
    };
    let mut total: u32 = 0;
    for (buf, len) in iovecs {
        out.write_all(mem.bytes(buf, len as u64)?)
            .map_err(|e| io_errno(&e))?;
        total = total.wrapping_add(len);
    }
    // wasi-libc buffers stdio itself; what reaches us is meant to be seen now, and
    // flushing keeps stdout and stderr in the order the guest wrote them.
    out.flush().map_err(|e| io_errno(&e))?;
    mem.write_u32(nwritten, total)
}

fn fd_read(ctx: &mut WasiCtx, mem: &mut Mem<'_>, a: &[Value]) -> Result<(), Errno> {
    let (fd, iovs, count, nread) = (arg_i32(a, 0), arg_i32(a, 1), arg_i32(a, 2), arg_i32(a, 3));
    if fd != 0 || !ctx.is_open(fd) {
        return Err(EBADF);
    }
    let iovecs = mem.iovecs(iovs, count)?;
    mem.range(nread, 4)?;
    let mut total: u32 = 0;
    for (buf, len) in iovecs {
        let dst = mem.bytes_mut(buf, len as u64)?;
        let n = loop {
            match ctx.stdin.read(dst) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_errno(&e)),
            }
        };
        total = total.wrapping_add(n as u32);
        // A short read (end of input, or a pipe with no more data yet) ends the call, as
        // POSIX `readv` does.
        if n < len as usize {
            break;
        }
    }
    mem.write_u32(nread, total)
}

fn fd_close(ctx: &mut WasiCtx, _mem: &mut Mem<'_>, a: &[Value]) -> Result<(), Errno> {
    let fd = arg_i32(a, 0);
    if !ctx.is_open(fd) {
        return Err(EBADF);
    }
    // The host's streams stay open; the guest just loses its handle.
    ctx.closed[fd as usize] = true;
    Ok(())
}

fn fd_seek(ctx: &mut WasiCtx, _mem: &mut Mem<'_>, a: &[Value]) -> Result<(), Errno> {
    if ctx.is_open(arg_i32(a, 0)) {
        // Standard streams are character devices: not seekable.
        Err(ESPIPE)
    } else {
        Err(EBADF)
    }
}

fn fd_fdstat_get(ctx: &mut WasiCtx, mem: &mut Mem<'_>, a: &[Value]) -> Result<(), Errno> {
    let (fd, ptr) = (arg_i32(a, 0), arg_i32(a, 1));
    if !ctx.is_open(fd) {
        return Err(EBADF);
    }
    let rights = RIGHT_POLL_FD_READWRITE
        | if fd == 0 {
            RIGHT_FD_READ
        } else {
            RIGHT_FD_WRITE
        };
    // struct fdstat { u8 filetype; u16 flags at 2; u64 rights_base at 8;
    //                 u64 rights_inheriting at 16 }: 24 bytes.
    let stat = mem.bytes_mut(ptr, 24)?;
    stat.fill(0);
    stat[0] = FILETYPE_CHARACTER_DEVICE;
    stat[8..16].copy_from_slice(&rights.to_le_bytes());
    Ok(())
}

fn fd_prestat_get(_ctx: &mut WasiCtx, _mem: &mut Mem<'_>, _a: &[Value]) -> Result<(), Errno> {
    // No preopened directories: wasi-libc probes fds from 3 up until it sees EBADF.
    Err(EBADF)
}

fn fd_prestat_dir_name(_ctx: &mut WasiCtx, _mem: &mut Mem<'_>, _a: &[Value]) -> Result<(), Errno> {
    Err(EBADF)
}

fn clock_time_get(ctx: &mut WasiCtx, mem: &mut Mem<'_>, a: &[Value]) -> Result<(), Errno> {
    let (id, ptr) = (arg_i32(a, 0), arg_i32(a, 2));
    let nanos = match id {
        CLOCK_REALTIME => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        CLOCK_MONOTONIC => ctx.start.elapsed().as_nanos() as u64,
        // The CPU-time clocks are not provided.
        _ => return Err(EINVAL),
    };
    mem.write_u64(ptr, nanos)
}

fn random_get(ctx: &mut WasiCtx, mem: &mut Mem<'_>, a: &[Value]) -> Result<(), Errno> {
    let (ptr, len) = (arg_i32(a, 0), arg_i32(a, 1));
    mem.range(ptr, len as u32 as u64)?;
    let buf = mem.bytes_mut(ptr, len as u32 as u64)?;
    for chunk in buf.chunks_mut(8) {
        let r = ctx.next_random().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    Ok(())
}

fn sched_yield(_ctx: &mut WasiCtx, _mem: &mut Mem<'_>, _a: &[Value]) -> Result<(), Errno> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module importing `fd_write`, `fd_read`, `args_*`, `environ_*`, `random_get` and
    /// `proc_exit`, re-exporting each as a plain function, with one page of memory and
    /// `data` at address 0. Returns the store, the instance and the captured stdout.
    fn setup(data: &str, ctx: WasiCtx) -> (Store, InstanceId, SharedBuffer, SharedBuffer) {
        let wat = format!(
            r#"(module
              (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fd_fdstat_get (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "fd_seek" (func $fd_seek (param i32 i64 i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
              (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
              (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
              (memory (export "memory") 1)
              (data (i32.const 0) "{data}")
              (func (export "fd_write") (param i32 i32 i32 i32) (result i32)
                (call $fd_write (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
              (func (export "fd_read") (param i32 i32 i32 i32) (result i32)
                (call $fd_read (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
              (func (export "args_sizes_get") (param i32 i32) (result i32)
                (call $args_sizes_get (local.get 0) (local.get 1)))
              (func (export "args_get") (param i32 i32) (result i32)
                (call $args_get (local.get 0) (local.get 1)))
              (func (export "environ_sizes_get") (param i32 i32) (result i32)
                (call $environ_sizes_get (local.get 0) (local.get 1)))
              (func (export "environ_get") (param i32 i32) (result i32)
                (call $environ_get (local.get 0) (local.get 1)))
              (func (export "fd_fdstat_get") (param i32 i32) (result i32)
                (call $fd_fdstat_get (local.get 0) (local.get 1)))
              (func (export "fd_seek") (param i32 i64 i32 i32) (result i32)
                (call $fd_seek (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
              (func (export "fd_close") (param i32) (result i32)
                (call $fd_close (local.get 0)))
              (func (export "fd_prestat_get") (param i32 i32) (result i32)
                (call $fd_prestat_get (local.get 0) (local.get 1)))
              (func (export "random_get") (param i32 i32) (result i32)
                (call $random_get (local.get 0) (local.get 1)))
              (func (export "clock_time_get") (param i32 i64 i32) (result i32)
                (call $clock_time_get (local.get 0) (local.get 1) (local.get 2)))
              (func $exit_from_here (export "exit") (param i32)
                (call $proc_exit (local.get 0))
                unreachable))"#
        );
        let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
        let (out, err) = (SharedBuffer::default(), SharedBuffer::default());
        let ctx = ctx
            .stdout(Box::new(out.clone()))
            .stderr(Box::new(err.clone()));
        let mut store = Store::new();
        let mut linker = Linker::new();
        define(&mut linker, &mut store, ctx);
        let instance = linker.instantiate(&mut store, &module).unwrap();
        (store, instance, out, err)
    }

    fn call(store: &mut Store, instance: InstanceId, name: &str, args: &[i32]) -> i32 {
        let args: Vec<Value> = args.iter().map(|&a| Value::I32(a)).collect();
        match store.call_export(instance, name, &args).unwrap()[..] {
            [Value::I32(errno)] => errno,
            ref other => panic!("unexpected results {other:?}"),
        }
    }

    fn mem(store: &Store, instance: InstanceId) -> &[u8] {
        match store.export(instance, "memory") {
            Some(Extern::Memory(m)) => store.memory(m),
            _ => panic!("no memory"),
        }
    }

    fn read_u32(store: &Store, instance: InstanceId, at: usize) -> u32 {
        u32::from_le_bytes(mem(store, instance)[at..at + 4].try_into().unwrap())
    }

    fn ctx() -> WasiCtx {
        WasiCtx::new(vec!["prog".into()])
    }

    // Memory layout of the iovec tests: "hello, " at 0, "world\n" at 7, two iovecs at 16.
    const IOVECS: &str = "hello, world\\0a\\00\\00\\00\
                          \\00\\00\\00\\00\\07\\00\\00\\00\
                          \\07\\00\\00\\00\\06\\00\\00\\00";

    #[test]
    fn fd_write_gathers_iovecs_in_order() {
        let (mut store, inst, out, err) = setup(IOVECS, ctx());
        assert_eq!(
            call(&mut store, inst, "fd_write", &[1, 16, 2, 100]),
            SUCCESS
        );
        assert_eq!(out.contents(), b"hello, world\n");
        assert_eq!(read_u32(&store, inst, 100), 13);
        // The same iovecs to stderr, and a zero-length write.
        assert_eq!(
            call(&mut store, inst, "fd_write", &[2, 24, 1, 100]),
            SUCCESS
        );
        assert_eq!(err.contents(), b"world\n");
        assert_eq!(
            call(&mut store, inst, "fd_write", &[1, 16, 0, 100]),
            SUCCESS
        );
        assert_eq!(read_u32(&store, inst, 100), 0);
        assert_eq!(out.contents(), b"hello, world\n");
    }

    #[test]
    fn bad_pointers_are_efault_and_write_nothing() {
        let (mut store, inst, out, _) = setup(IOVECS, ctx());
        let end = 65536;
        // The iovec array itself past the end of memory, or wrapping around 2^32.
        assert_eq!(
            call(&mut store, inst, "fd_write", &[1, end - 8, 2, 100]),
            EFAULT
        );
        assert_eq!(call(&mut store, inst, "fd_write", &[1, -4, 1, 100]), EFAULT);
        assert_eq!(
            call(&mut store, inst, "fd_write", &[1, 16, i32::MAX, 100]),
            EFAULT
        );
        // `nwritten` out of bounds.
        assert_eq!(
            call(&mut store, inst, "fd_write", &[1, 16, 2, end - 3]),
            EFAULT
        );
        assert_eq!(out.contents(), b"");
        // Two iovecs at 32: the first good, the second running past the end of memory.
        // Nothing is written, not even the good one.
        let mut bad = IOVECS.to_string();
        bad.push_str("\\00\\00\\00\\00\\07\\00\\00\\00\\f0\\ff\\00\\00\\20\\00\\00\\00");
        let (mut store, inst, out, _) = setup(&bad, ctx());
        assert_eq!(call(&mut store, inst, "fd_write", &[1, 32, 2, 100]), EFAULT);
        assert_eq!(out.contents(), b"");
        // The other calls with pointers check them too.
        assert_eq!(call(&mut store, inst, "args_sizes_get", &[end, 0]), EFAULT);
        assert_eq!(
            call(&mut store, inst, "args_sizes_get", &[0, end - 2]),
            EFAULT
        );
        assert_eq!(call(&mut store, inst, "args_get", &[end - 2, 0]), EFAULT);
        assert_eq!(call(&mut store, inst, "args_get", &[0, end - 2]), EFAULT);
        assert_eq!(
            call(&mut store, inst, "environ_sizes_get", &[-1, 0]),
            EFAULT
        );
        assert_eq!(
            call(&mut store, inst, "fd_fdstat_get", &[1, end - 8]),
            EFAULT
        );
        assert_eq!(call(&mut store, inst, "random_get", &[end - 4, 8]), EFAULT);
        assert_eq!(call(&mut store, inst, "random_get", &[0, -1]), EFAULT);
        assert_eq!(call(&mut store, inst, "fd_read", &[0, end, 1, 0]), EFAULT);
    }

    #[test]
    fn args_and_environ_are_c_string_lists() {
        let ctx = WasiCtx::new(vec!["prog".into(), "a b".into(), "".into()])
            .env(vec![("K".into(), "v=1".into())]);
        let (mut store, inst, _, _) = setup("", ctx);
        assert_eq!(call(&mut store, inst, "args_sizes_get", &[0, 4]), SUCCESS);
        assert_eq!(read_u32(&store, inst, 0), 3);
        assert_eq!(read_u32(&store, inst, 4), 10);
        assert_eq!(call(&mut store, inst, "args_get", &[100, 200]), SUCCESS);
        assert_eq!(read_u32(&store, inst, 100), 200);
        assert_eq!(read_u32(&store, inst, 104), 205);
        assert_eq!(read_u32(&store, inst, 108), 209);
        assert_eq!(&mem(&store, inst)[200..210], b"prog\0a b\0\0");
        assert_eq!(
            call(&mut store, inst, "environ_sizes_get", &[0, 4]),
            SUCCESS
        );
        assert_eq!(
            (read_u32(&store, inst, 0), read_u32(&store, inst, 4)),
            (1, 6)
        );
        assert_eq!(call(&mut store, inst, "environ_get", &[300, 400]), SUCCESS);
        assert_eq!(read_u32(&store, inst, 300), 400);
        assert_eq!(&mem(&store, inst)[400..406], b"K=v=1\0");
    }

    #[test]
    fn fd_read_fills_iovecs_until_a_short_read() {
        // Two iovecs of 4 bytes at 100 and 200, array at 16.
        let data = "\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\
                    \\64\\00\\00\\00\\04\\00\\00\\00\\c8\\00\\00\\00\\04\\00\\00\\00";
        let stdin = std::io::Cursor::new(b"abcdef".to_vec());
        let (mut store, inst, _, _) = setup(data, ctx().stdin(Box::new(stdin)));
        assert_eq!(call(&mut store, inst, "fd_read", &[0, 16, 2, 0]), SUCCESS);
        assert_eq!(read_u32(&store, inst, 0), 6);
        assert_eq!(&mem(&store, inst)[100..104], b"abcd");
        assert_eq!(&mem(&store, inst)[200..202], b"ef");
        assert_eq!(call(&mut store, inst, "fd_read", &[0, 16, 2, 0]), SUCCESS);
        assert_eq!(read_u32(&store, inst, 0), 0, "end of input");
        assert_eq!(call(&mut store, inst, "fd_read", &[1, 16, 2, 0]), EBADF);
    }

    #[test]
    fn stdio_is_a_character_device_and_nothing_else_exists() {
        let (mut store, inst, _, _) = setup("", ctx());
        assert_eq!(call(&mut store, inst, "fd_fdstat_get", &[1, 8]), SUCCESS);
        assert_eq!(mem(&store, inst)[8], FILETYPE_CHARACTER_DEVICE);
        assert_eq!(call(&mut store, inst, "fd_fdstat_get", &[3, 8]), EBADF);
        assert_eq!(call(&mut store, inst, "fd_prestat_get", &[3, 8]), EBADF);
        assert_eq!(call(&mut store, inst, "fd_write", &[0, 0, 0, 0]), EBADF);
        assert_eq!(call(&mut store, inst, "fd_write", &[7, 0, 0, 0]), EBADF);
        let seek = |store: &mut Store, fd| {
            let args = [Value::I32(fd), Value::I64(0), Value::I32(0), Value::I32(0)];
            store.call_export(inst, "fd_seek", &args).unwrap()
        };
        assert_eq!(seek(&mut store, 1), [Value::I32(ESPIPE)]);
        assert_eq!(seek(&mut store, 9), [Value::I32(EBADF)]);
        assert_eq!(call(&mut store, inst, "fd_close", &[1]), SUCCESS);
        assert_eq!(call(&mut store, inst, "fd_close", &[1]), EBADF);
        assert_eq!(call(&mut store, inst, "fd_write", &[1, 0, 0, 0]), EBADF);
        assert_eq!(seek(&mut store, 1), [Value::I32(EBADF)]);
    }

    #[test]
    fn clocks_and_random() {
        let (mut store, inst, _, _) = setup("", ctx());
        let clock = |store: &mut Store, id| {
            let args = [Value::I32(id), Value::I64(1), Value::I32(0)];
            let r = store.call_export(inst, "clock_time_get", &args).unwrap();
            (
                r,
                u64::from_le_bytes(mem(store, inst)[0..8].try_into().unwrap()),
            )
        };
        let (r, now) = clock(&mut store, CLOCK_REALTIME);
        assert_eq!(r, [Value::I32(SUCCESS)]);
        assert!(
            now > 1_600_000_000 * 1_000_000_000,
            "realtime is since 1970"
        );
        let (_, t0) = clock(&mut store, CLOCK_MONOTONIC);
        let (_, t1) = clock(&mut store, CLOCK_MONOTONIC);
        assert!(t1 >= t0);
        assert_eq!(clock(&mut store, 7).0, [Value::I32(EINVAL)]);

        assert_eq!(call(&mut store, inst, "random_get", &[16, 13]), SUCCESS);
        let first = mem(&store, inst)[16..29].to_vec();
        assert_ne!(first, [0; 13]);
        assert_eq!(
            mem(&store, inst)[29],
            0,
            "writes exactly the length asked for"
        );
        // A fresh context gives the same bytes: runs are reproducible.
        let (mut store2, inst2, _, _) = setup("", ctx());
        assert_eq!(call(&mut store2, inst2, "random_get", &[16, 13]), SUCCESS);
        assert_eq!(mem(&store2, inst2)[16..29], first[..]);
    }

    #[test]
    fn proc_exit_unwinds_with_the_code() {
        let (mut store, inst, _, _) = setup("", ctx());
        let trap = store
            .call_export(inst, "exit", &[Value::I32(3)])
            .unwrap_err();
        assert_eq!(trap.kind, TrapKind::Exit(3));
    }

    fn command(wat: &str, out: &SharedBuffer) -> Result<(InstanceId, i32), RunError> {
        let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
        let mut store = Store::new();
        let mut linker = Linker::new();
        let ctx = WasiCtx::new(vec!["prog".into()]).stdout(Box::new(out.clone()));
        define(&mut linker, &mut store, ctx);
        run_command(&mut store, &linker, &module)
    }

    #[test]
    fn run_command_reports_exit_codes_traps_and_link_errors() {
        let out = SharedBuffer::default();
        let hello = r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (data (i32.const 8) "\00\00\00\00\02\00\00\00hi")
          (global $code (mut i32) (i32.const 0))
          (func (export "_start")
            (i32.store (i32.const 8) (i32.const 16))
            (drop (call $w (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 0)))
            (call $exit (i32.const 7))))"#;
        assert_eq!(command(hello, &out).unwrap().1, 7);
        assert_eq!(out.contents(), b"hi");

        let returns = r#"(module (func (export "_start")))"#;
        assert_eq!(command(returns, &out).unwrap().1, 0);

        let traps = r#"(module (func (export "_start") unreachable))"#;
        match command(traps, &out) {
            Err(RunError::Trap(t)) => assert_eq!(t.kind, TrapKind::Unreachable),
            other => panic!("{other:?}"),
        }

        let unknown = r#"(module (import "wasi_snapshot_preview1" "path_open"
            (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
            (func (export "_start")))"#;
        let err = command(unknown, &out).unwrap_err();
        assert!(matches!(
            err,
            RunError::Instantiate(InstantiateError::Link(_))
        ));
        assert!(
            err.to_string()
                .contains("`wasi_snapshot_preview1`.`path_open`"),
            "{err}"
        );

        let no_start = r#"(module (func (export "main")))"#;
        let err = command(no_start, &out).unwrap_err();
        assert!(err.to_string().contains("`_start`"), "{err}");
    }
}
