//! The WASI preview1 subset the benchmark programs import, for the competitor engines
//! (wasmi and wasmtime). Engine-agnostic: every call works on the guest's memory as a
//! byte slice and on a [`WasiState`]; `wasmi_engine.rs` and `wasmtime_engine.rs` only
//! bind these to their linkers. Kiln's own interpreter uses `trace_capture::wasi`.
//!
//! Stdout and stderr are captured in memory, stdin is absent, and the descriptors are
//! reported the same way kiln's WASI does, so that wasi-libc buffers the output alike on
//! every engine (the same number of `fd_write` calls).

/// The import module name of WASI preview1.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// The functions this shim provides; anything else a program imports is an error
/// raised before the run, naming the import.
pub const PROVIDED: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "fd_close",
    "fd_fdstat_get",
    "fd_seek",
    "fd_write",
    "proc_exit",
];

/// A WASI errno (witx `errno`, a u16 returned as i32).
pub type Errno = i32;
pub const ERRNO_SUCCESS: Errno = 0;
pub const ERRNO_BADF: Errno = 8;
pub const ERRNO_FAULT: Errno = 21;
pub const ERRNO_INVAL: Errno = 28;
pub const ERRNO_SPIPE: Errno = 70;

/// witx `filetype.character_device`.
const FILETYPE_CHARACTER_DEVICE: u8 = 2;
/// witx `rights.fd_read`, `rights.fd_write` and `rights.poll_fd_readwrite`.
const RIGHTS_FD_READ: u64 = 1 << 1;
const RIGHTS_FD_WRITE: u64 = 1 << 6;
const RIGHTS_POLL_FD_READWRITE: u64 = 1 << 27;

/// The `proc_exit` status, carried out of the guest as each engine's host error.
#[derive(Debug, Clone, Copy)]
pub struct Exit(pub i32);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "proc_exit({})", self.0)
    }
}

impl std::error::Error for Exit {}

/// Checks that every WASI import of a program is one this shim provides.
pub fn check_imports<'a>(
    imports: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> anyhow::Result<()> {
    for (module, name) in imports {
        if module == MODULE && !PROVIDED.contains(&name) {
            anyhow::bail!(
                "the program imports `{module}`.`{name}`, which kiln bench's WASI shim for \
                 wasmi and wasmtime does not provide (it has: {})",
                PROVIDED.join(", ")
            );
        }
    }
    Ok(())
}

/// The state of one guest's WASI world: its arguments and environment, and the output
/// it has written so far.
pub struct WasiState {
    args: Vec<String>,
    env: Vec<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Whether stdin, stdout and stderr are still open (`fd_close` closes them).
    open: [bool; 3],
}

impl WasiState {
    /// `args` includes the program name as `argv[0]`.
    pub fn new(args: Vec<String>, env: Vec<(String, String)>) -> WasiState {
        WasiState {
            args,
            env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
            stdout: Vec::new(),
            stderr: Vec::new(),
            open: [true; 3],
        }
    }

    pub fn args_sizes_get(&self, mem: &mut [u8], count_ptr: u32, size_ptr: u32) -> Errno {
        errno(sizes_get(mem, &self.args, count_ptr, size_ptr))
    }

    pub fn args_get(&self, mem: &mut [u8], ptrs: u32, buf: u32) -> Errno {
        errno(strings_get(mem, &self.args, ptrs, buf))
    }

    pub fn environ_sizes_get(&self, mem: &mut [u8], count_ptr: u32, size_ptr: u32) -> Errno {
        errno(sizes_get(mem, &self.env, count_ptr, size_ptr))
    }

    pub fn environ_get(&self, mem: &mut [u8], ptrs: u32, buf: u32) -> Errno {
        errno(strings_get(mem, &self.env, ptrs, buf))
    }

    /// Gathers the `ciovec`s at `iovs` and appends them to stdout or stderr.
    pub fn fd_write(
        &mut self,
        mem: &mut [u8],
        fd: u32,
        iovs: u32,
        iovs_len: u32,
        nwritten_ptr: u32,
    ) -> Errno {
        errno((|| {
            let out = match fd {
                1 if self.open[1] => &mut self.stdout,
                2 if self.open[2] => &mut self.stderr,
                _ => return Err(ERRNO_BADF),
            };
            let mut total: u32 = 0;
            for i in 0..iovs_len {
                let iov = i.checked_mul(8).and_then(|o| iovs.checked_add(o));
                let iov = iov.ok_or(ERRNO_FAULT)?;
                let ptr = read_u32(mem, iov)?;
                let len = read_u32(mem, iov.checked_add(4).ok_or(ERRNO_FAULT)?)?;
                out.extend_from_slice(slice(mem, ptr, len)?);
                total = total.checked_add(len).ok_or(ERRNO_INVAL)?;
            }
            write_bytes(mem, nwritten_ptr, &total.to_le_bytes())
        })())
    }

    pub fn fd_close(&mut self, fd: u32) -> Errno {
        match self.open.get_mut(fd as usize) {
            Some(open @ true) => {
                *open = false;
                ERRNO_SUCCESS
            }
            _ => ERRNO_BADF,
        }
    }

    /// The standard streams are character devices that cannot seek.
    pub fn fd_seek(&self, _mem: &mut [u8], fd: u32, _offset: i64, whence: u32, _ptr: u32) -> Errno {
        if !self.is_open(fd) {
            ERRNO_BADF
        } else if whence > 2 {
            ERRNO_INVAL
        } else {
            ERRNO_SPIPE
        }
    }

    /// Writes the 24-byte `fdstat` of a standard stream: a character device without seek
    /// or tell rights (wasi-libc's `isatty` then says yes, as it does for kiln's WASI).
    pub fn fd_fdstat_get(&self, mem: &mut [u8], fd: u32, ptr: u32) -> Errno {
        if !self.is_open(fd) {
            return ERRNO_BADF;
        }
        let rights = RIGHTS_POLL_FD_READWRITE
            | if fd == 0 {
                RIGHTS_FD_READ
            } else {
                RIGHTS_FD_WRITE
            };
        let mut stat = [0u8; 24];
        stat[0] = FILETYPE_CHARACTER_DEVICE;
        stat[8..16].copy_from_slice(&rights.to_le_bytes());
        errno(write_bytes(mem, ptr, &stat))
    }

    fn is_open(&self, fd: u32) -> bool {
        self.open.get(fd as usize).copied().unwrap_or(false)
    }
}

fn errno(result: Result<(), Errno>) -> Errno {
    result.err().unwrap_or(ERRNO_SUCCESS)
}

/// `*_sizes_get`: the number of strings and the bytes they take with their NULs.
fn sizes_get(
    mem: &mut [u8],
    strings: &[String],
    count_ptr: u32,
    size_ptr: u32,
) -> Result<(), Errno> {
    let size: usize = strings.iter().map(|s| s.len() + 1).sum();
    write_bytes(mem, count_ptr, &(strings.len() as u32).to_le_bytes())?;
    write_bytes(mem, size_ptr, &(size as u32).to_le_bytes())
}

/// `*_get`: a pointer per string at `ptrs`, the NUL-terminated strings at `buf`.
fn strings_get(mem: &mut [u8], strings: &[String], ptrs: u32, buf: u32) -> Result<(), Errno> {
    let mut at = buf;
    for (i, s) in strings.iter().enumerate() {
        write_bytes(mem, ptrs.wrapping_add(4 * i as u32), &at.to_le_bytes())?;
        write_bytes(mem, at, s.as_bytes())?;
        write_bytes(mem, at.wrapping_add(s.len() as u32), &[0])?;
        at = at.wrapping_add(s.len() as u32 + 1);
    }
    Ok(())
}

fn slice(mem: &[u8], ptr: u32, len: u32) -> Result<&[u8], Errno> {
    let end = (ptr as usize)
        .checked_add(len as usize)
        .ok_or(ERRNO_FAULT)?;
    mem.get(ptr as usize..end).ok_or(ERRNO_FAULT)
}

fn read_u32(mem: &[u8], ptr: u32) -> Result<u32, Errno> {
    let bytes = slice(mem, ptr, 4)?;
    Ok(u32::from_le_bytes(bytes.try_into().expect("four bytes")))
}

fn write_bytes(mem: &mut [u8], ptr: u32, bytes: &[u8]) -> Result<(), Errno> {
    let end = (ptr as usize).checked_add(bytes.len()).ok_or(ERRNO_FAULT)?;
    mem.get_mut(ptr as usize..end)
        .ok_or(ERRNO_FAULT)?
        .copy_from_slice(bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip_through_guest_memory() {
        let state = WasiState::new(vec!["prog.wasm".into(), "64".into()], vec![]);
        let mut mem = vec![0u8; 256];
        assert_eq!(state.args_sizes_get(&mut mem, 0, 4), ERRNO_SUCCESS);
        assert_eq!(read_u32(&mem, 0), Ok(2));
        assert_eq!(read_u32(&mem, 4), Ok(13));
        assert_eq!(state.args_get(&mut mem, 16, 64), ERRNO_SUCCESS);
        assert_eq!(read_u32(&mem, 16), Ok(64));
        assert_eq!(read_u32(&mem, 20), Ok(74));
        assert_eq!(&mem[64..77], b"prog.wasm\x0064\x00");
    }

    #[test]
    fn fd_write_gathers_iovecs() {
        let mut state = WasiState::new(vec![], vec![]);
        let mut mem = vec![0u8; 128];
        mem[64..69].copy_from_slice(b"hello");
        mem[72..74].copy_from_slice(b"!\n");
        for (at, v) in [(0, 64u32), (4, 5), (8, 72), (12, 2)] {
            mem[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        assert_eq!(state.fd_write(&mut mem, 1, 0, 2, 32), ERRNO_SUCCESS);
        assert_eq!(state.stdout, b"hello!\n");
        assert_eq!(read_u32(&mem, 32), Ok(7));
        assert_eq!(state.fd_write(&mut mem, 5, 0, 2, 32), ERRNO_BADF);
        assert_eq!(state.fd_write(&mut mem, 1, 120, 2, 32), ERRNO_FAULT);
    }

    #[test]
    fn closed_streams_are_bad_descriptors() {
        let mut state = WasiState::new(vec![], vec![]);
        let mut mem = vec![0u8; 64];
        assert_eq!(state.fd_close(1), ERRNO_SUCCESS);
        assert_eq!(state.fd_close(1), ERRNO_BADF);
        assert_eq!(state.fd_write(&mut mem, 1, 0, 0, 0), ERRNO_BADF);
        assert_eq!(state.fd_seek(&mut mem, 2, 0, 0, 0), ERRNO_SPIPE);
    }
}
