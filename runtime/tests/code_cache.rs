//! The machine's code cache: a module compiled once is loaded from disk the next time,
//! runs the same, and a damaged file or another engine's code is never used; a tier
//! keeps its own modules there, never live-JIT code.

mod common;

use runtime::{Backend, CodeCache, TierStats, WasmtimeTier};
use trace_capture::RecordConfig;

/// A module whose export `f` returns 42 from a small loop (enough code to be worth keeping).
const WAT: &str = r#"(module
  (func (export "f") (result i32) (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 6)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 42))))
    (local.get $i)))"#;

fn engine(winch: bool) -> wasmtime::Engine {
    let mut config = wasmtime::Config::new();
    if winch {
        config.strategy(wasmtime::Strategy::Winch);
    }
    wasmtime::Engine::new(&config).unwrap()
}

/// Compiles `wasm` through `cache` on `engine`; checks the module's `f` returns
/// `expected` and returns whether the code came from the cache.
fn check_returning(
    cache: &CodeCache,
    engine: &wasmtime::Engine,
    wasm: &[u8],
    expected: i32,
) -> bool {
    let (module, hit) = cache.compile(engine, wasm).unwrap();
    let mut store = wasmtime::Store::new(engine, ());
    let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
    let f = instance.get_typed_func::<(), i32>(&mut store, "f").unwrap();
    assert_eq!(f.call(&mut store, ()).unwrap(), expected);
    hit
}

/// [`check_returning`] for `WAT`.
fn check(cache: &CodeCache, engine: &wasmtime::Engine, wasm: &[u8]) -> bool {
    check_returning(cache, engine, wasm, 42)
}

fn files(cache: &CodeCache) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(cache.dir())
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn a_module_compiled_once_comes_from_the_cache_after() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CodeCache::new(dir.path().join("code"));
    let wasm = wat::parse_str(WAT).unwrap();
    let cranelift = engine(false);
    assert!(!cache.holds(&cranelift, &wasm));
    assert!(
        !check(&cache, &cranelift, &wasm),
        "an empty cache has nothing"
    );
    assert_eq!(files(&cache).len(), 1);
    // What a tier asks before it loads a module now rather than on the compile thread.
    assert!(cache.holds(&cranelift, &wasm));
    assert!(!cache.holds(&engine(true), &wasm));
    // Another engine of the same configuration (the next run's) finds the same file,
    // more of them than the cache remembers the keys of too.
    for _ in 0..6 {
        assert!(cache.holds(&engine(false), &wasm));
    }
    assert!(
        check(&cache, &cranelift, &wasm),
        "the second compile is a hit"
    );
    // Another module is another file.
    let other = wat::parse_str(WAT.replace("42", "48").replace("6)", "8)")).unwrap();
    assert!(!check_returning(&cache, &cranelift, &other, 48));
    assert_eq!(files(&cache).len(), 2);
    // Winch code is never Cranelift's: its own key, its own file.
    let winch = engine(true);
    assert!(!check(&cache, &winch, &wasm));
    assert!(check(&cache, &winch, &wasm));
    assert_eq!(files(&cache).len(), 3);
}

#[test]
fn a_damaged_file_is_compiled_afresh_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CodeCache::new(dir.path());
    let wasm = wat::parse_str(WAT).unwrap();
    let engine = engine(false);
    check(&cache, &engine, &wasm);
    let file = files(&cache).pop().unwrap();
    let good = std::fs::read(&file).unwrap();
    let damaged: Vec<Vec<u8>> = vec![
        Vec::new(),
        good[..good.len() / 2].to_vec(),
        good[..good.len() - 1].to_vec(),
        {
            let mut flipped = good.clone();
            flipped[good.len() / 3] ^= 0x40;
            flipped
        },
    ];
    for bytes in damaged {
        std::fs::write(&file, &bytes).unwrap();
        assert!(
            !check(&cache, &engine, &wasm),
            "{} bytes were used",
            bytes.len()
        );
        assert_eq!(
            std::fs::read(&file).unwrap(),
            good,
            "the file is written again"
        );
        assert!(check(&cache, &engine, &wasm));
    }
}

#[test]
fn a_cache_that_cannot_be_written_only_costs_the_saving() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the directory should be: nothing can be stored, everything compiles.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"not a directory").unwrap();
    let cache = CodeCache::new(&blocked);
    let wasm = wat::parse_str(WAT).unwrap();
    let engine = engine(false);
    assert!(!check(&cache, &engine, &wasm));
    assert!(!check(&cache, &engine, &wasm));
}

/// A directory others may write to is never used: another user could plant code in it.
#[cfg(unix)]
#[test]
fn a_directory_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let cache = CodeCache::new(&shared);
    let wasm = wat::parse_str(WAT).unwrap();
    let engine = engine(false);
    assert!(!check(&cache, &engine, &wasm));
    assert!(!check(&cache, &engine, &wasm));
    assert!(files(&cache).is_empty(), "nothing written there");
    // Made private again, it is used.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(!check(&cache, &engine, &wasm));
    assert!(check(&cache, &engine, &wasm));
}

/// Neither the directory nor a file in it is loaded through a symbolic link: a link could
/// point where another user writes. A file replaced by a link to a good copy is compiled
/// afresh and stored as a file again; a cache directory that is a link is not used.
#[test]
fn links_are_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CodeCache::new(dir.path().join("code"));
    let wasm = wat::parse_str(WAT).unwrap();
    let engine = engine(false);
    assert!(!check(&cache, &engine, &wasm));
    let file = files(&cache).pop().unwrap();
    let copy = dir.path().join("copy.cwasm");
    std::fs::rename(&file, &copy).unwrap();
    std::os::unix::fs::symlink(&copy, &file).unwrap();
    assert!(!check(&cache, &engine, &wasm), "the link was followed");
    assert!(
        !std::fs::symlink_metadata(&file).unwrap().is_symlink(),
        "the link is replaced by a file"
    );
    assert!(check(&cache, &engine, &wasm));

    let linked = CodeCache::new(dir.path().join("linked"));
    std::os::unix::fs::symlink(cache.dir(), linked.dir()).unwrap();
    assert!(
        !check(&linked, &engine, &wasm),
        "a linked directory was used"
    );
    assert!(!check(&linked, &engine, &wasm));
}

/// Past its bound the cache drops the least recently used files: a hit counts as a use.
#[test]
fn past_its_bound_the_least_recently_used_file_goes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(false);
    let module = |bound: i32| wat::parse_str(WAT.replace("42", &bound.to_string())).unwrap();
    let (a, b, c) = (module(42), module(48), module(54));

    let probe = CodeCache::new(dir.path().join("probe"));
    assert!(!check(&probe, &engine, &a));
    let one_file = std::fs::metadata(&files(&probe)[0]).unwrap().len();
    // Room for two files, not three.
    let cache = CodeCache::new(dir.path().join("code")).with_max_bytes(one_file * 5 / 2);

    assert!(!check_returning(&cache, &engine, &a, 42));
    assert!(!check_returning(&cache, &engine, &b, 48));
    assert!(check_returning(&cache, &engine, &a, 42), "a is used again");
    assert_eq!(files(&cache).len(), 2);
    assert!(!check_returning(&cache, &engine, &c, 54));
    assert_eq!(files(&cache).len(), 2, "one file went");
    assert!(
        check_returning(&cache, &engine, &a, 42),
        "a was used last but c"
    );
    assert!(check_returning(&cache, &engine, &c, 54));
    assert!(!check_returning(&cache, &engine, &b, 48), "b went");
}

/// A guest with a memory and a hot loop: the live JIT records and compiles its trace.
const HOT_LOOP: &str = r#"(module
  (memory 1)
  (func (export "run") (result i32) (local $i i32) (local $acc i32)
    (loop $l
      (local.set $acc
        (i32.add (local.get $acc) (i32.load (i32.and (local.get $i) (i32.const 0xffc)))))
      (i32.store (i32.and (local.get $i) (i32.const 0xffc)) (local.get $i))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 100000))))
    (local.get $acc)))"#;

/// Runs `HOT_LOOP`'s `run` with live JIT on a tier made with `cache`; checks the result
/// is the interpreter's and returns the tier's counters.
fn run_live(cache: &CodeCache) -> TierStats {
    let threshold = RecordConfig::default().hot_threshold;
    common::run_live_with(
        HOT_LOOP,
        threshold,
        "cranelift",
        |store, instance, module| {
            let cache = Some(cache.clone());
            WasmtimeTier::with_code_cache(Backend::Cranelift, store, instance, module, cache)
                .unwrap()
        },
    )
}

/// A tier keeps its own three modules in the code cache (the driver, and the modules that
/// define the guest's memory and the frame memory, a view of the interpreter's stack, for
/// wasmtime: most of a tier's set-up), and never the
/// traces its live JIT compiles: live JIT stays live. A second tier loads both (a hit
/// refreshes a file's time) and adds nothing.
#[test]
fn a_tier_keeps_its_own_modules_there_and_never_live_jit_code() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CodeCache::new(dir.path().join("code"));
    let first = run_live(&cache);
    assert!(
        first.live_traces >= 1,
        "the loop ran as trace code: {first:?}"
    );
    let kept = files(&cache);
    assert_eq!(
        kept.len(),
        3,
        "the driver and the two memories' modules only: {kept:?}"
    );
    let long_ago = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(86_400);
    for file in &kept {
        let f = std::fs::File::options().write(true).open(file).unwrap();
        f.set_modified(long_ago).unwrap();
    }
    let second = run_live(&cache);
    assert!(second.live_traces >= 1, "{second:?}");
    assert_eq!(files(&cache), kept, "nothing added");
    for file in &kept {
        let modified = std::fs::metadata(file).unwrap().modified().unwrap();
        assert!(modified > long_ago, "{} was not loaded", file.display());
    }
}
