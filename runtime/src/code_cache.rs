//! The machine's compiled-code cache: wasmtime's native code for the trace modules a
//! cache library gives, kept on disk, so a program's second run loads its cache's code
//! instead of compiling it again.
//!
//! A cache library is portable wasm, and compiling it is most of what a cached run pays
//! before its trace code runs (Cranelift takes about 65 ms for lz77's 112 traces, a third
//! of the interpreter's whole run). wasmtime can write a compiled module out
//! (`Module::serialize`) and map it back in (`Module::deserialize`), which is what its own
//! compilation cache and `wasmtime compile` do; kiln does the same for the modules built
//! from a cache library only (the library itself and the trees grown from its traces),
//! never for what the live JIT records, so live JIT stays what it says. It also keeps
//! records (`CodeCache::remember`): the key of a cache library that passed every check,
//! so the same bytes are not checked again (`cache.rs`).
//!
//! # Keys and files
//!
//! One file per module, named by the SHA-256 of the engine's key (the SHA-256 of its
//! compatibility hash: wasmtime's version, target and compiler settings, so Cranelift and
//! Winch code never share a key; computed once per engine) and the module's wasm bytes. The file is the serialized module followed
//! by the SHA-256 of those bytes, written to a temporary file and renamed into place, so
//! a reader sees a whole file or none.
//!
//! # Trust
//!
//! Loading native code runs whatever it says, so the directory must be as trusted as the
//! kiln binary itself: kiln makes it with mode 0700, and uses a directory (and loads a
//! file) only if it is the user's own, not a symbolic link, and writable by no one else
//! (Unix); any other directory, a shared `/tmp/x` say, is not used at all, since another
//! user could plant code in it. The checks are made on an open handle of the directory
//! and files are opened through it (`openat`, never following a link), so a directory
//! renamed or replaced after its check, in a parent others can write, cannot change what
//! is loaded: the checked directory is the one read, and only its owner can change it.
//! The checksum catches a damaged or truncated file, not a forger; wasmtime refuses a
//! file made by another version or for another configuration. A file that fails a check,
//! or cannot be read, is compiled afresh and replaced: the cache can only save time,
//! never change what runs. Files are written to a fresh temporary file beside their place
//! and renamed over it, so concurrent writers of one key (two processes, or two tiers of
//! one) each leave a whole file.

use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// Set to a directory, the code cache lives there; set to `off`, there is none. Unset:
/// `$XDG_CACHE_HOME/kiln/code`, else `$HOME/.cache/kiln/code`.
pub const CODE_CACHE_ENV: &str = "KILN_CODE_CACHE";

/// Bytes of the checksum that ends every file of code.
const CHECKSUM_BYTES: usize = 32;

/// The file name extensions of compiled code and of records ([`CodeCache::remember`]).
const CODE_EXTENSION: &str = "cwasm";
const RECORD_EXTENSION: &str = "checked";

/// The most the cache's files may take together. Each app version and engine adds a file
/// (the lz77 example's library compiles to about 140 KB), so the directory would grow
/// without end; past this, the least recently used files go first. 256 MiB holds about
/// two thousand libraries of that size, and is small next to a user's cache directory.
pub const MAX_CODE_CACHE_BYTES: u64 = 256 << 20;

/// The most engines a code cache remembers the key of ([`EngineKeys`]): a tier has one
/// engine, and tests that compare the two compilers two; past this, a key is recomputed.
const MAX_REMEMBERED_ENGINES: usize = 4;

/// A directory of compiled trace modules for one engine configuration.
#[derive(Debug, Clone)]
pub struct CodeCache {
    dir: PathBuf,
    max_bytes: u64,
    /// Shared by the clones a tier hands its compile thread.
    engine_keys: Arc<Mutex<EngineKeys>>,
}

/// The digest of each engine's compatibility hash, the part of every file name that
/// says which engine configuration the code is for. Walking an engine's settings into
/// SHA-256 took about 2% of a short run's time (sort at scale 1, `perf record`), once
/// for each of the dozen modules a run looks up.
#[derive(Debug, Default)]
struct EngineKeys(Vec<(wasmtime::Engine, [u8; 32])>);

impl EngineKeys {
    fn key(&mut self, engine: &wasmtime::Engine) -> [u8; 32] {
        if let Some((_, key)) = self
            .0
            .iter()
            .find(|(e, _)| wasmtime::Engine::same(e, engine))
        {
            return *key;
        }
        let mut hasher = Sha256Hasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let key: [u8; 32] = hasher.0.finalize().into();
        if self.0.len() == MAX_REMEMBERED_ENGINES {
            self.0.remove(0);
        }
        self.0.push((engine.clone(), key));
        key
    }
}

impl CodeCache {
    /// The code cache in `dir` (made on first write).
    pub fn new(dir: impl Into<PathBuf>) -> CodeCache {
        CodeCache {
            dir: dir.into(),
            max_bytes: MAX_CODE_CACHE_BYTES,
            engine_keys: Arc::default(),
        }
    }

    /// The cache with its files held to `max_bytes` together instead of
    /// [`MAX_CODE_CACHE_BYTES`].
    pub fn with_max_bytes(mut self, max_bytes: u64) -> CodeCache {
        self.max_bytes = max_bytes;
        self
    }

    /// The code cache the environment names ([`CODE_CACHE_ENV`]); `None` when it is off
    /// or no home directory is known.
    pub fn from_env() -> Option<CodeCache> {
        match std::env::var_os(CODE_CACHE_ENV) {
            Some(v) if v == "off" => None,
            Some(v) if !v.is_empty() => Some(CodeCache::new(v)),
            _ => {
                let base = std::env::var_os("XDG_CACHE_HOME")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME")
                            .filter(|v| !v.is_empty())
                            .map(|h| Path::new(&h).join(".cache"))
                    })?;
                Some(CodeCache::new(base.join("kiln").join("code")))
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `wasm` compiled for `engine`: from the cache if a good copy is there, else compiled
    /// and stored (a store that fails is only a lost saving). `true` with a hit.
    pub fn compile(
        &self,
        engine: &wasmtime::Engine,
        wasm: &[u8],
    ) -> wasmtime::Result<(wasmtime::Module, bool)> {
        let name = self.file_name(engine, wasm);
        let path = self.dir.join(&name);
        let dir = create_private_dir(&self.dir)
            .ok()
            .and_then(|()| PrivateDir::open(&self.dir));
        if let Some(dir) = &dir {
            if let Some(module) = Self::read(engine, dir, &name) {
                return Ok((module, true));
            }
        }
        let module = wasmtime::Module::new(engine, wasm)?;
        if dir.is_some() {
            if let Ok(bytes) = module.serialize() {
                if self.write(&path, &bytes).is_ok() {
                    self.evict(&path);
                }
            }
        }
        Ok((module, false))
    }

    /// Whether the cache has a file for `wasm` compiled for `engine` (not whether it is
    /// whole: `compile` checks that), so a caller can load it now and leave a compile to
    /// another thread.
    pub fn holds(&self, engine: &wasmtime::Engine, wasm: &[u8]) -> bool {
        self.dir.join(self.file_name(engine, wasm)).is_file()
    }

    /// The file a module's code is kept in: its key (module comment) in hex.
    fn file_name(&self, engine: &wasmtime::Engine, wasm: &[u8]) -> String {
        // A poisoned lock only means another thread panicked while keying: the keys it
        // holds are whole (each is pushed complete).
        let engine_key = self
            .engine_keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .key(engine);
        let mut key = Sha256::new();
        key.update(engine_key);
        key.update((wasm.len() as u64).to_le_bytes());
        key.update(wasm);
        let name: String = key.finalize().iter().map(|b| format!("{b:02x}")).collect();
        format!("{name}.{CODE_EXTENSION}")
    }

    /// The module kept in `dir` as `name`, if it is there, private and whole.
    fn read(engine: &wasmtime::Engine, dir: &PrivateDir, name: &str) -> Option<wasmtime::Module> {
        let file = dir.read(name)?;
        let (bytes, checksum) = file.split_at(file.len().checked_sub(CHECKSUM_BYTES)?);
        if Sha256::digest(bytes).as_slice() != checksum {
            return None;
        }
        // SAFETY: the bytes are what `Module::serialize` wrote into the user's own cache
        // directory (module comment, "Trust"), whole (the checksum); wasmtime checks they
        // were made by this version and configuration.
        unsafe { wasmtime::Module::deserialize(engine, bytes) }.ok()
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        self.write_parts(path, &[bytes, &Sha256::digest(bytes)])
    }

    /// Writes `parts` one after the other to a fresh temporary file and renames it to
    /// `path`, so a reader sees a whole file or none.
    fn write_parts(&self, path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir)?;
        for part in parts {
            temp.write_all(part)?;
        }
        temp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Whether the cache holds record `key` ([`CodeCache::remember`]), whole and private.
    pub fn knows(&self, key: &[u8; 32]) -> bool {
        PrivateDir::open(&self.dir)
            .and_then(|dir| dir.read(&Self::record_name(key)))
            .is_some_and(|bytes| bytes == key)
    }

    /// Keeps record `key`: the SHA-256 of everything that decided some check passed, so a
    /// later run that finds it need not check those same bytes again (a cache library
    /// read whole: `cache.rs`). A record is trusted as the code beside it is (module
    /// comment, "Trust"); one that cannot be written is only a lost saving.
    pub fn remember(&self, key: &[u8; 32]) {
        if create_private_dir(&self.dir).is_err() || PrivateDir::open(&self.dir).is_none() {
            return;
        }
        let path = self.dir.join(Self::record_name(key));
        if self.write_parts(&path, &[key]).is_ok() {
            self.evict(&path);
        }
    }

    /// The file record `key` is kept in: the key in hex.
    fn record_name(key: &[u8; 32]) -> String {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}.{RECORD_EXTENSION}")
    }

    /// Removes the least recently used files until the cache holds at most its bound,
    /// sparing `keep` (just written). Only this cache's own files (`*.cwasm`, and the
    /// records, `*.checked`) count; temporary files of a writer still at work are left
    /// alone.
    fn evict(&self, keep: &Path) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                let path = e.path();
                let ext = path.extension();
                ext.is_some_and(|x| x == CODE_EXTENSION || x == RECORD_EXTENSION)
            })
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= self.max_bytes {
                break;
            }
            if path != keep && std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

/// The cache directory, opened once and checked through the open handle (module
/// comment, "Trust"); its files are opened relative to that handle.
#[cfg(unix)]
struct PrivateDir(std::fs::File);

#[cfg(unix)]
impl PrivateDir {
    /// `dir` if it is a directory (not a link to one) that may hold code kiln loads.
    fn open(dir: &Path) -> Option<PrivateDir> {
        use std::os::unix::fs::OpenOptionsExt;
        let handle = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(dir)
            .ok()?;
        is_private(&handle.metadata().ok()?, true).then_some(PrivateDir(handle))
    }

    /// The bytes of file `name` in the directory, if it is a file (not a link) that may
    /// hold code kiln loads. Its modification time becomes now: recently used, for
    /// eviction (a time that cannot be set only makes the file go sooner).
    fn read(&self, name: &str) -> Option<Vec<u8>> {
        use std::io::Read;
        use std::os::fd::{AsRawFd, FromRawFd};
        let name = std::ffi::CString::new(name).ok()?;
        // SAFETY: the directory handle is open for the call and `name` is a C string;
        // the descriptor returned (if any) is owned by the `File` made of it below.
        let fd = unsafe {
            libc::openat(
                self.0.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just opened and nothing else owns it.
        let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
        if !is_private(&file.metadata().ok()?, false) {
            return None;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        let _ = file.set_modified(std::time::SystemTime::now());
        Some(bytes)
    }
}

/// Whether what `meta` describes (a directory if `dir`, else a file) may hold code kiln
/// loads: owned by this user and writable by no one else. (`meta` comes from an open
/// handle that did not follow a link.)
#[cfg(unix)]
fn is_private(meta: &std::fs::Metadata, dir: bool) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let kind = if dir { meta.is_dir() } else { meta.is_file() };
    kind && meta.uid() == me && meta.mode() & 0o022 == 0
}

/// Without Unix ownership and modes, the directory is only checked to be one.
#[cfg(not(unix))]
struct PrivateDir(PathBuf);

#[cfg(not(unix))]
impl PrivateDir {
    fn open(dir: &Path) -> Option<PrivateDir> {
        std::fs::symlink_metadata(dir)
            .is_ok_and(|m| m.is_dir())
            .then(|| PrivateDir(dir.to_path_buf()))
    }

    fn read(&self, name: &str) -> Option<Vec<u8>> {
        let path = self.0.join(name);
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return None;
        }
        let bytes = std::fs::read(&path).ok()?;
        let _ = std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Some(bytes)
    }
}

/// Makes `dir` and its parents, `dir` itself readable by its owner only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Feeds what `Hash` writes into SHA-256, so a hash wasmtime computes becomes part of a
/// stable key (std's hashers promise no stability across releases).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        0
    }
}
