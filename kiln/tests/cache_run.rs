//! `kiln run --cache`, end to end: every example gives its expected output with its cache
//! library on both wasmtime compilers, and a cache kiln cannot use is one warning naming
//! the problem, after which the run goes on and its results are still right.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::workspace;
use sha2::Digest;

/// Runs `kiln ARGS`; checks the exit code and that stderr holds `stderr`'s pieces in
/// order.
fn check(args: &[&str], code: i32, stderr: &[&str]) -> common::Run {
    common::check(args, code, &[], stderr)
}

/// Recording threshold for the tests: the examples at scale 1 run their loops for
/// thousands of iterations, so 50 records every hot loop.
const THRESHOLD: &str = "50";

/// The example programs' names.
fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".wasm").map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Each example's cache library, built once for all tests: recorded at scale 1 into a
/// corpus, then `kiln cache build`.
fn caches() -> &'static Vec<(String, PathBuf)> {
    static CACHES: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    CACHES.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache-run");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let corpus = dir.join("corpus").display().to_string();
        examples()
            .into_iter()
            .map(|name| {
                let program = format!("examples/{name}.wasm");
                check(
                    &[
                        "record",
                        "--corpus",
                        &corpus,
                        "--threshold",
                        THRESHOLD,
                        &program,
                        "1",
                    ],
                    0,
                    &[],
                );
                let cache = dir.join(format!("{name}.kcache"));
                let out = cache.display().to_string();
                check(
                    &[
                        "cache", "build", "--corpus", &corpus, "--app", &program, "-o", &out,
                    ],
                    0,
                    &[],
                );
                (name, cache)
            })
            .collect()
    })
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(workspace().join(format!("examples/expected/{name}.1.out")))
        .expect("expected output")
}

/// The trace call count `--stats` prints for the trace tier.
fn trace_calls(stderr: &str) -> u64 {
    stderr
        .split("trace tier (")
        .nth(1)
        .and_then(|rest| rest.split("): ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no trace tier line in {stderr}"))
}

/// The side traces a run's tier linked from its cache library, as `--stats` prints them.
fn cached_side_traces(stderr: &str) -> u64 {
    stderr
        .split("side traces: ")
        .nth(1)
        .and_then(|rest| rest.split(" from the cache").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no cached side traces in {stderr}"))
}

/// The regions a run's tier built, as `--stats` prints them.
fn regions_built(stderr: &str) -> u64 {
    stderr
        .split("regions: ")
        .nth(1)
        .and_then(|rest| rest.split(" built").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no regions in {stderr}"))
}

/// `--stats` profiles the trace code: one row per trace that ran, most entries first,
/// and the rows' entries add up to the tier's count of entries (every drive starts at
/// one trace); a trace's hand-overs per entry are fewer than its segments (each trace
/// call is a segment, the first is no hand-over). lz77's cache holds loop and side
/// traces, so both kinds show.
#[test]
fn stats_profile_the_trace_code_by_entries() {
    let (_, cache) = caches().iter().find(|(n, _)| n == "lz77").unwrap();
    let run = check(
        &[
            "run",
            "--cache",
            &cache.display().to_string(),
            "--stats-limit",
            "100000",
            "examples/lz77.wasm",
            "1",
        ],
        0,
        &[],
    );
    let table = run
        .stderr
        .split("kiln: trace code of examples/lz77.wasm by entries from the interpreter (")
        .nth(1)
        .unwrap_or_else(|| panic!("no trace profile in {}", run.stderr));
    let (shown, total) = table
        .split(" that ran):")
        .next()
        .and_then(|counts| counts.split_once(" of "))
        .unwrap();
    assert_eq!(shown, total, "the limit lists every trace: {table}");
    let rows: Vec<&str> = table
        .lines()
        .skip(2)
        .take_while(|l| !l.starts_with("trace tier"))
        .collect();
    assert_eq!(rows.len().to_string(), total, "{table}");
    // "FUNCTION  loop 0x577  ENTRIES SEGMENTS/ENTRY HAND-OVERS/ENTRY PASSES ..." or
    // "FUNCTION  side pc 12  ENTRIES ...": the columns after the start.
    let columns = |row: &str| -> Vec<String> {
        let after = row
            .split_once("  loop 0x")
            .or_else(|| row.split_once("  side pc "))
            .unwrap_or_else(|| panic!("no start in {row:?}"))
            .1;
        after
            .split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    let entries: Vec<u64> = rows
        .iter()
        .map(|row| columns(row)[0].parse().unwrap())
        .collect();
    for row in &rows {
        let c = columns(row);
        if c[1] == "-" {
            assert_eq!((c[0].as_str(), c[2].as_str()), ("0", "-"), "{row}");
            continue;
        }
        let (segments, handovers): (f64, f64) = (c[1].parse().unwrap(), c[2].parse().unwrap());
        assert!(handovers < segments, "{row}");
    }
    assert!(entries.windows(2).all(|w| w[0] >= w[1]), "{table}");
    assert_eq!(
        entries.iter().sum::<u64>(),
        trace_calls(&run.stderr),
        "{table}"
    );
    assert!(rows.iter().any(|r| r.contains("  side pc ")), "{table}");
    assert!(rows.iter().any(|r| r.contains("  loop 0x")), "{table}");
}

#[test]
fn every_example_runs_its_cache_on_both_engines() {
    // The programs whose caches hold side traces (`kiln record` stores the ones the live
    // JIT links), which the runs link from the cache.
    let mut with_sides = std::collections::BTreeSet::new();
    // The programs whose loop nests grew regions (`emit::region`) from their caches.
    let mut with_regions = std::collections::BTreeSet::new();
    for (name, cache) in caches() {
        let program = format!("examples/{name}.wasm");
        let cache = cache.display().to_string();
        for engine in ["cranelift", "winch"] {
            // The cache alone (no live JIT), compiling what it grows on the program's
            // thread, so the same trees and regions are built however loaded the machine
            // is (on the compile thread, a region can still be compiling when a short
            // run ends); then the cache with live JIT behind it, compiling as users do.
            for (jit, compile) in [("off", "foreground"), ("live", "background")] {
                let run = check(
                    &[
                        "run",
                        "--cache",
                        &cache,
                        "--jit",
                        jit,
                        "--compile",
                        compile,
                        "--engine",
                        engine,
                        "--stats-limit",
                        "1",
                        &program,
                        "1",
                    ],
                    0,
                    &[],
                );
                let what =
                    format!("{name} with its cache on {engine}, --jit {jit}, --compile {compile}");
                assert_eq!(run.stdout, expected(name), "{what}");
                assert!(!run.stderr.contains("warning"), "{what}: {}", run.stderr);
                assert!(trace_calls(&run.stderr) > 0, "{what}: trace code never ran");
                if cached_side_traces(&run.stderr) > 0 {
                    with_sides.insert(name.as_str());
                }
                if compile == "foreground" && regions_built(&run.stderr) > 0 {
                    with_regions.insert(name.as_str());
                }
            }
        }
    }
    // A dispatch loop's arms and lz77's inlined memcpy's paths, at least.
    for name in ["bytecode_vm", "lz77"] {
        assert!(with_sides.contains(name), "{name}: {with_sides:?}");
    }
    // Quicksort's partition loops hand over to each other at every step.
    assert!(with_regions.contains("sort"), "{with_regions:?}");
}

/// Runs sieve with `cache`; the run must warn exactly once naming `problem`, then give
/// the expected output.
fn check_refused(cache: &Path, problem: &str) {
    let cache = cache.display().to_string();
    let run = check(
        &["run", "--cache", &cache, "examples/sieve.wasm", "1"],
        0,
        &[problem],
    );
    assert_eq!(run.stdout, expected("sieve"), "sieve with cache {cache}");
    assert_eq!(
        run.stderr.matches("warning").count(),
        1,
        "one warning: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("cache {cache} not used")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("running with live JIT"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_cache_kiln_cannot_use_is_one_warning_and_the_run_goes_on() {
    let sieve = &caches().iter().find(|(n, _)| n == "sieve").unwrap().1;
    let crc32 = &caches().iter().find(|(n, _)| n == "crc32").unwrap().1;
    let bytes = std::fs::read(sieve).unwrap();
    let dir = sieve.parent().unwrap();

    // Another app's cache.
    check_refused(crc32, "built for another app");

    // Truncated: every cut of the file is refused (a few lengths checked here; the
    // reader's own tests try every prefix).
    for len in [0, 8, bytes.len() / 2, bytes.len() - 1] {
        let cut = dir.join(format!("cut-{len}.kcache"));
        std::fs::write(&cut, &bytes[..len]).unwrap();
        check_refused(&cut, "not used: ");
    }

    // Tampered: one byte of the code flipped, then one of the manifest.
    for at in [bytes.len() / 4, bytes.len() - 40] {
        let mut tampered = bytes.clone();
        tampered[at] ^= 0x01;
        let path = dir.join(format!("flip-{at}.kcache"));
        std::fs::write(&path, &tampered).unwrap();
        check_refused(&path, "not used: ");
    }

    // Not a cache at all: the app itself (valid wasm, no manifest).
    check_refused(&workspace().join("examples/sieve.wasm"), "not used: ");

    // No such file.
    check_refused(&dir.join("missing.kcache"), "cannot read");
}

/// The counts `--stats` prints for the machine's code cache: (modules loaded from it,
/// modules compiled into it).
fn code_cache_counts(stderr: &str) -> (u64, u64) {
    let rest = stderr
        .split("code from the machine's code cache: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no code cache counts in {stderr}"));
    let mut numbers = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse::<u64>().unwrap());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

/// A cache library's code is compiled on a machine's first run and loaded from the code
/// cache on the next, with the same output; with the code cache off, it is compiled
/// every time.
#[test]
fn the_second_run_loads_the_cache_code_the_first_compiled() {
    let code = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("code-cache-second-run");
    let _ = std::fs::remove_dir_all(&code);
    let cache = caches().iter().find(|(n, _)| n == "lz77").unwrap();
    let cache = cache.1.display().to_string();
    let run = |code_cache: &std::ffi::OsStr| {
        let run = common::check_with_env(
            &[
                "run",
                "--cache",
                &cache,
                "--jit",
                "off",
                "--stats-limit",
                "0",
                "examples/lz77.wasm",
                "1",
            ],
            &[("KILN_CODE_CACHE", code_cache)],
            0,
            &[],
            &[],
        );
        assert_eq!(run.stdout, expected("lz77"));
        code_cache_counts(&run.stderr)
    };
    let (hits, compiled) = run(code.as_os_str());
    assert_eq!(hits, 0);
    assert!(compiled >= 1, "the library at least");
    // The library is loaded on the second run. What else a run builds (trees and regions,
    // on the compile thread) depends on what it gets to before it ends, and at scale 1 a
    // region submitted near the end may finish in one run and not in another: the second
    // run may compile what the first did not get to store.
    let (hits, _) = run(code.as_os_str());
    assert!(
        hits >= 1,
        "the library comes from the code cache: {hits} loaded"
    );
    assert_eq!(run(std::ffi::OsStr::new("off")), (0, 0));
}

/// How many cache libraries a run took on the code cache's record of an earlier check,
/// as `--stats` prints it.
fn known_libraries(stderr: &str) -> u64 {
    stderr
        .split("taken on its record of an earlier check: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of known libraries in {stderr}"))
}

/// A library read whole and checked once is taken on the code cache's record of it the
/// next time, for those very bytes only: a library changed in its code and resealed with
/// a good checksum is checked whole and refused, and a damaged record is not believed
/// (the library is checked whole again and the record rewritten).
#[test]
fn a_record_of_a_checked_library_vouches_for_those_bytes_only() {
    let code = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("code-cache-records");
    let _ = std::fs::remove_dir_all(&code);
    let sieve = &caches().iter().find(|(n, _)| n == "sieve").unwrap().1;
    let run = |cache: &Path, stderr: &[&str]| {
        let cache = cache.display().to_string();
        let run = common::check_with_env(
            &[
                "run",
                "--cache",
                &cache,
                "--stats-limit",
                "0",
                "examples/sieve.wasm",
                "1",
            ],
            &[("KILN_CODE_CACHE", code.as_os_str())],
            0,
            &[],
            stderr,
        );
        assert_eq!(run.stdout, expected("sieve"));
        run.stderr
    };
    assert_eq!(
        known_libraries(&run(sieve, &[])),
        0,
        "first run: checked whole"
    );
    let records: Vec<PathBuf> = std::fs::read_dir(&code)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "checked"))
        .collect();
    assert_eq!(records.len(), 1, "one record: {records:?}");
    assert_eq!(
        known_libraries(&run(sieve, &[])),
        1,
        "second run: on the record"
    );

    // One byte of a trace's code changed, the module still valid, the checksum made good
    // again: only the whole check (the code against its trace) can refuse it, so the
    // warning must be that check's.
    let original = std::fs::read(sieve).unwrap();
    let app = std::fs::read(workspace().join("examples/sieve.wasm")).unwrap();
    let app_hash: String = sha2::Sha256::digest(&app)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mismatch = "is not what its trace emits";
    let changed = (original.len() / 8..original.len() / 2)
        .find_map(|at| {
            let mut bytes = original.clone();
            bytes[at] ^= 0x01;
            let seal = bytes.len() - 32;
            let checksum = sha2::Sha256::digest(&bytes[..seal]);
            bytes[seal..].copy_from_slice(&checksum);
            match emit::cache::CacheLibrary::read(&bytes, &app_hash) {
                Err(e) if e.to_string().contains(mismatch) => Some(bytes),
                _ => None,
            }
        })
        .expect("a flip that leaves the module valid");
    let resealed = sieve.with_file_name("resealed.kcache");
    std::fs::write(&resealed, &changed).unwrap();
    let stderr = run(
        &resealed,
        &["not used: ", mismatch, "running with live JIT"],
    );
    assert_eq!(known_libraries(&stderr), 0);

    // A damaged record.
    std::fs::write(&records[0], [0u8; 32]).unwrap();
    assert_eq!(
        known_libraries(&run(sieve, &[])),
        0,
        "the record is not believed"
    );
    assert_eq!(
        known_libraries(&run(sieve, &[])),
        1,
        "and was written again"
    );
}

/// The count `--stats` prints before `label` in the trace tier's line (`"N label"`).
fn tier_count(stderr: &str, label: &str) -> u64 {
    stderr
        .split(label)
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} count in {stderr}"))
}

/// `kiln run --cache --record-traces DIR` writes the side traces the run linked at hot
/// exits itself, with their places, and none of the cache library's: those came from a
/// corpus already, and what a library ships may be the optimized candidate.
#[test]
fn a_cached_run_records_only_the_side_traces_it_linked() {
    let (_, cache) = caches()
        .iter()
        .find(|(name, _)| name == "lz77")
        .expect("lz77's cache");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache-run-record");
    let _ = std::fs::remove_dir_all(&dir);
    let corpus = dir.display().to_string();
    let run = check(
        &[
            "run",
            "--cache",
            &cache.display().to_string(),
            "--record-traces",
            &corpus,
            "--stats-limit",
            "0",
            "examples/lz77.wasm",
        ],
        0,
        &["traces of examples/lz77.wasm into"],
    );
    let cached = cached_side_traces(&run.stderr);
    assert!(cached > 0, "{}", run.stderr);
    let linked = tier_count(&run.stderr, " linked at hot exits");
    let stats = check(&["corpus", "--corpus", &corpus, "stats"], 0, &[]);
    let side_places: u64 = stats
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("side places"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no side places in {}", stats.stdout));
    assert_eq!(
        side_places, linked,
        "{cached} side traces from the cache, {linked} linked at hot exits"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
