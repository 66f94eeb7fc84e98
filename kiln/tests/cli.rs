//! The `kiln` binary, end to end: every test runs the built executable through [`check`].

mod common;

use std::path::Path;
use std::process::Command;

use common::{check, workspace};

/// Writes a module (wat text, or raw bytes) for a test; returns its path.
fn module(name: &str, bytes: impl AsRef<[u8]>) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

fn wat(name: &str, text: &str) -> String {
    module(name, wat::parse_str(text).unwrap())
}

#[test]
fn malformed_module_names_the_file_and_the_offset() {
    let path = module("garbage", b"this is not wasm at all");
    check(
        &["run", &path],
        2,
        &[],
        &[
            "kiln: error: ",
            &path,
            ": invalid module: magic header not detected",
            "(at offset 0x0)",
        ],
    );
    // A good header and a section that runs past the end of the file.
    let path = module("truncated", b"\0asm\x01\0\0\0\x01\x7f\x00");
    check(
        &["run", &path],
        2,
        &[],
        &[
            &path,
            ": invalid module: unexpected end-of-file (at offset 0xa)",
        ],
    );
}

#[test]
fn invalid_module_gives_the_validator_message() {
    let path = wat(
        "type_error",
        r#"(module (func (export "_start") (result i32) i64.const 1))"#,
    );
    check(
        &["run", &path],
        2,
        &[],
        &[
            &path,
            ": invalid module: type mismatch: expected i32, found i64",
            "(at offset 0x",
        ],
    );
}

#[test]
fn missing_file_is_a_clear_error() {
    check(
        &["run", "no/such/program.wasm"],
        2,
        &[],
        &["kiln: error: no/such/program.wasm: cannot read: No such file"],
    );
}

#[test]
fn unknown_import_is_named() {
    let path = wat(
        "unknown_import",
        r#"(module
             (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
             (import "env" "mystery" (func (param i32)))
             (func (export "_start")))"#,
    );
    check(
        &["run", &path],
        2,
        &[],
        &[&path, "`env`.`mystery`", "not provided"],
    );
    check(
        &["run", "--invoke", "_start", &path],
        2,
        &[],
        &["`env`.`mystery`"],
    );
}

#[test]
fn trap_shows_kind_and_backtrace_innermost_first() {
    let path = wat(
        "divide_by_zero",
        r#"(module
             (func $quotient (param i32 i32) (result i32)
               (i32.div_s (local.get 0) (local.get 1)))
             (func $average (param i32) (result i32)
               (call $quotient (local.get 0) (i32.const 0)))
             (func $_start (export "_start")
               (drop (call $average (i32.const 7)))))"#,
    );
    check(
        &["run", &path],
        134,
        &[],
        &[
            "wasm trap: integer divide by zero",
            "backtrace",
            "quotient",
            "average",
            "_start",
        ],
    );
    check(
        &["run", "--invoke", "_start", &path],
        134,
        &[],
        &["integer divide by zero", "quotient", "average"],
    );
}

#[test]
fn infinite_recursion_exhausts_the_call_stack() {
    let path = wat(
        "recursion",
        r#"(module
             (func $forever (param i64 i64 i64 i64) (result i64)
               (call $forever (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
             (func (export "_start")
               (drop (call $forever (i64.const 1) (i64.const 2) (i64.const 3) (i64.const 4)))))"#,
    );
    let run = check(
        &["run", &path],
        134,
        &[],
        &[
            "wasm trap: call stack exhausted",
            "forever",
            "the frame above",
            "more times",
        ],
    );
    assert!(
        run.stderr.lines().count() < 10,
        "repeats are folded: {}",
        run.stderr
    );

    // Two functions calling each other do not fold; the middle of the backtrace goes.
    let path = wat(
        "ping_pong",
        r#"(module
             (func $ping (export "_start") (call $pong))
             (func $pong (call $ping)))"#,
    );
    let run = check(
        &["run", &path],
        134,
        &[],
        &[
            "call stack exhausted",
            "ping",
            "pong",
            "more lines of backtrace",
            "pong",
            "ping",
        ],
    );
    assert!(run.stderr.lines().count() < 100, "{}", run.stderr);
}

const ARITHMETIC: &str = r#"(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "mul64") (param i64 i64) (result i64) (i64.mul (local.get 0) (local.get 1)))
  (func (export "div32") (param f32 f32) (result f32) (f32.div (local.get 0) (local.get 1)))
  (func (export "sqrt64") (param f64) (result f64) (f64.sqrt (local.get 0)))
  (func (export "divmod") (param i32 i32) (result i32 i32)
    (i32.div_u (local.get 0) (local.get 1))
    (i32.rem_u (local.get 0) (local.get 1)))
  (func (export "widen") (param i32 f32) (result i64 f64 f32 i32)
    (i64.extend_i32_s (local.get 0))
    (f64.promote_f32 (local.get 1))
    (local.get 1)
    (i32.reinterpret_f32 (local.get 1)))
  (func (export "same32") (param f32) (result f32) (local.get 0))
  (func (export "same64") (param f64) (result f64) (local.get 0))
  (func (export "nothing")))"#;

#[test]
fn invoke_parses_arguments_and_prints_results() {
    let path = wat("arithmetic", ARITHMETIC);
    let invoke = |args: &[&str], code, stdout: &str, stderr: &[&str]| {
        let mut all = vec!["run", "--invoke", args[0], &path];
        all.extend(&args[1..]);
        let run = check(&all, code, &[], stderr);
        assert_eq!(run.stdout, stdout, "stdout of kiln {}", all.join(" "));
    };
    invoke(&["add", "40", "2"], 0, "42\n", &[]);
    invoke(&["add", "-5", "3"], 0, "-2\n", &[]);
    invoke(&["add", "0xffffffff", "0x1"], 0, "0\n", &[]);
    invoke(&["mul64", "0x100000000", "-3"], 0, "-12884901888\n", &[]);
    invoke(&["mul64", "9223372036854775807", "2"], 0, "-2\n", &[]);
    invoke(&["div32", "1", "3"], 0, "0.33333334\n", &[]);
    invoke(&["div32", "-1", "0"], 0, "-inf\n", &[]);
    invoke(&["div32", "inf", "2"], 0, "inf\n", &[]);
    invoke(&["sqrt64", "2"], 0, "1.4142135623730951\n", &[]);
    invoke(&["sqrt64", "1e300"], 0, "1e150\n", &[]);
    invoke(&["divmod", "17", "5"], 0, "3\n2\n", &[]);
    invoke(
        &["widen", "-7", "1.5"],
        0,
        "-7\n1.5\n1.5\n1069547520\n",
        &[],
    );
    // NaNs pass through with their bits.
    invoke(
        &["same32", "nan:0x200000"],
        0,
        "nan:0x200000 ;; 0x7fa00000\n",
        &[],
    );
    invoke(&["same32", "-nan"], 0, "-nan ;; 0xffc00000\n", &[]);
    invoke(&["same64", "nan"], 0, "nan ;; 0x7ff8000000000000\n", &[]);
    invoke(&["same64", "-0"], 0, "-0.0\n", &[]);
    invoke(&["nothing"], 0, "", &[]);
    // Mistakes are usage errors.
    invoke(
        &["add", "1"],
        2,
        "",
        &["`add` has type [i32 i32] -> [i32]", "2 arguments, 1 given"],
    );
    invoke(
        &["add", "1", "x"],
        2,
        "",
        &["argument 2 of `add`: `x` is not a valid i32"],
    );
    invoke(
        &["add", "1", "4294967296"],
        2,
        "",
        &["`4294967296` is not a valid i32"],
    );
    invoke(
        &["sub", "1", "2"],
        2,
        "",
        &["no exported function `sub`", "add, mul64"],
    );
}

#[test]
fn invoke_prints_nan_with_its_bits() {
    let path = wat("nan", ARITHMETIC);
    let run = check(
        &["run", "--invoke", "div32", &path, "0", "0"],
        0,
        &["nan", " ;; 0x"],
        &[],
    );
    let bits = run.stdout.trim().rsplit("0x").next().unwrap();
    let bits = u32::from_str_radix(bits, 16).unwrap();
    assert!(f32::from_bits(bits).is_nan(), "{}", run.stdout);
}

#[test]
fn stats_count_loop_iterations() {
    const N: u32 = 1234;
    let bytes = wat::parse_str(format!(
        r#"(module
             (func $spin (export "_start") (local $i i32)
               (loop $again
                 (local.set $i (i32.add (local.get $i) (i32.const 1)))
                 (br_if $again (i32.lt_u (local.get $i) (i32.const {N}))))))"#
    ))
    .unwrap();
    // The loop opcode (0x03, empty block type 0x40) followed by `local.get 0`.
    let loop_offset = bytes
        .windows(4)
        .position(|w| w == [0x03, 0x40, 0x20, 0x00])
        .expect("the loop is in the code");
    let path = module("loop", &bytes);
    let run = check(
        &["run", "--stats", &path],
        0,
        &[],
        &["function", "kind", "offset", "hits"],
    );
    let rows: Vec<Vec<&str>> = run
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("function"))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec![
                "0",
                "spin",
                "loop",
                &format!("{loop_offset:#x}"),
                &N.to_string()
            ],
            vec!["0", "spin", "entry", rows[1][3], "1"],
        ],
        "{}",
        run.stderr
    );
    // --stats-limit cuts the table.
    let run = check(&["run", "--stats-limit", "1", &path], 0, &[], &["loop"]);
    assert!(!run.stderr.contains("entry"), "{}", run.stderr);
}

#[test]
fn wasi_output_arguments_and_exit_code() {
    let path = wat(
        "hello",
        r#"(module
             (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
             (memory (export "memory") 1)
             (data (i32.const 16) "hello from wasm\n")
             (data (i32.const 48) "argc=?\n")
             ;; Writes `len` bytes at `ptr` to stdout through one iovec at 0.
             (func $print (param $ptr i32) (param $len i32)
               (i32.store (i32.const 0) (local.get $ptr))
               (i32.store (i32.const 4) (local.get $len))
               (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
             (func $_start (export "_start") (local $size i32) (local $i i32)
               (call $print (i32.const 16) (i32.const 16))
               (drop (call $args_sizes_get (i32.const 32) (i32.const 36)))
               (i32.store8 (i32.const 53) (i32.add (i32.const 48) (i32.load (i32.const 32))))
               (call $print (i32.const 48) (i32.const 7))
               (drop (call $args_get (i32.const 64) (i32.const 1024)))
               ;; argv[1] through its pointer: the first line after argv[0].
               (local.set $size (i32.load (i32.const 36)))
               (block $done
                 (loop $each
                   (br_if $done (i32.ge_u (local.get $i) (local.get $size)))
                   (if (i32.eqz (i32.load8_u offset=1024 (local.get $i)))
                     (then (i32.store8 offset=1024 (local.get $i) (i32.const 10))))
                   (local.set $i (i32.add (local.get $i) (i32.const 1)))
                   (br $each)))
               (call $print (i32.const 1024) (local.get $size))
               (call $print (i32.load (i32.const 68)) (i32.const 3))
               (call $proc_exit (i32.const 3))
               unreachable))"#,
    );
    let run = check(&["run", &path, "foo", "--bar", "two words"], 3, &[], &[]);
    assert_eq!(
        run.stdout,
        format!("hello from wasm\nargc=4\n{path}\nfoo\n--bar\ntwo words\nfoo")
    );
}

/// Every bundled example runs to completion at scale 1, and prints exactly its expected
/// output where one is recorded (examples/expected/NAME.1.out).
#[test]
fn examples_run_and_match_expected_output() {
    let examples = workspace().join("examples");
    let mut wasm: Vec<String> = std::fs::read_dir(&examples)
        .expect("examples/ exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wasm"))
        .collect();
    wasm.sort();
    assert!(!wasm.is_empty(), "no examples/*.wasm");
    let mut compared = 0;
    for file in &wasm {
        let name = file.trim_end_matches(".wasm");
        let path = format!("examples/{file}");
        let run = check(&["run", &path, "1"], 0, &[], &[]);
        let expected = examples.join("expected").join(format!("{name}.1.out"));
        if let Ok(expected) = std::fs::read_to_string(&expected) {
            assert_eq!(run.stdout, expected, "stdout of kiln run {path} 1");
            compared += 1;
        } else {
            assert!(!run.stdout.is_empty(), "kiln run {path} 1 printed nothing");
        }
    }
    eprintln!(
        "{} examples ran, {compared} compared with expected output",
        wasm.len()
    );
}

#[test]
fn bench_compares_engines_and_recording_side_by_side() {
    let run = check(
        &["bench", "--runs", "1", "--scale", "1", "sieve"],
        0,
        &["| sieve |"],
        &[],
    );
    for piece in [
        "kiln/wasmi",
        "kiln/wasmtime",
        "geometric mean of kiln/wasmi",
    ] {
        assert!(
            run.stdout.contains(piece),
            "bench output lacks {piece:?}:\n{}",
            run.stdout
        );
    }
    let run = check(
        &[
            "bench",
            "--recording",
            "--runs",
            "1",
            "--scale",
            "1",
            "sieve",
        ],
        0,
        &["| sieve |", "geometric mean of (kiln + recording)/kiln"],
        &[],
    );
    assert!(run.stdout.contains("hot anchors"), "{}", run.stdout);
    check(
        &["bench", "--optimize", "--scale", "1", "crc32"],
        0,
        &[
            "| traces |",
            "| cost above recorded | 0 |",
            "| refuted | 0 (0%) |",
        ],
        &[],
    );
}

#[test]
fn opt_shows_candidate_costs_rules_and_verdict() {
    check(
        &["opt", "saturate/tests/golden/bitops.trace"],
        0,
        &[
            ";; recorded",
            ";; candidate",
            ";; cost 10 -> 0",
            ";; rules fired: ",
            ";; verdict: proven",
        ],
        &[],
    );
    let bad = module("bogus-op", "trace locals=1\n  v0:i32 = i32.bogus 1\n");
    check(
        &["opt", &bad],
        2,
        &[],
        &["bogus-op.wasm:2:12: expected an operator"],
    );
}

/// Live JIT on both wasmtime compilers prints exactly what the interpreter prints, and
/// the trace tier ran.
#[test]
fn live_jit_matches_the_interpreter_on_both_engines() {
    for name in ["sieve", "matmul"] {
        let path = format!("examples/{name}.wasm");
        let expected = std::fs::read_to_string(
            workspace()
                .join("examples/expected")
                .join(format!("{name}.default.out")),
        )
        .expect("expected output");
        for engine in ["cranelift", "winch"] {
            let run = check(
                &[
                    "run",
                    "--jit",
                    "live",
                    "--engine",
                    engine,
                    "--stats-limit",
                    "1",
                    &path,
                ],
                0,
                &[],
                &[&format!("trace tier ({engine}): ")],
            );
            assert_eq!(
                run.stdout, expected,
                "kiln run --jit live --engine {engine} {path}"
            );
            let calls: u64 = run
                .stderr
                .split(&format!("trace tier ({engine}): "))
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
                .expect("a trace call count");
            assert!(calls > 0, "{path} on {engine}: trace code never ran");
        }
    }
}

/// A guest trap inside trace code is the interpreter's trap: same kind, same backtrace
/// functions, same exit code.
#[test]
fn a_trap_in_trace_code_is_the_guests_trap() {
    // Fills memory word by word past its end: the loop turns hot (and is compiled) long
    // before the store that traps.
    let path = wat(
        "fill_past_end",
        r#"(module
             (memory 1)
             (func $fill (param $n i32) (local $i i32)
               (loop $l
                 (i32.store (i32.mul (local.get $i) (i32.const 4)) (local.get $i))
                 (local.set $i (i32.add (local.get $i) (i32.const 1)))
                 (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))
             (func $_start (export "_start") (call $fill (i32.const 100000))))"#,
    );
    check(
        &["run", &path],
        134,
        &[],
        &["wasm trap: out of bounds memory access", "fill", "_start"],
    );
    for engine in ["cranelift", "winch"] {
        // The trace tier counts the trap: it happened in trace code.
        check(
            &[
                "run",
                "--jit",
                "live",
                "--engine",
                engine,
                "--stats-limit",
                "1",
                &path,
            ],
            134,
            &[],
            &[
                "wasm trap: out of bounds memory access",
                "fill",
                "_start",
                &format!("trace tier ({engine}): "),
                " 1 traps",
            ],
        );
    }
}

/// `kiln run --record-traces DIR` leaves the traces of the run in a corpus.
#[test]
fn run_records_traces_into_a_corpus() {
    let dir = std::env::temp_dir().join(format!("kiln-run-record-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.display().to_string();
    check(
        &[
            "run",
            "--jit",
            "live",
            "--record-traces",
            &dir_arg,
            "examples/sieve.wasm",
        ],
        0,
        &["primes:"],
        &["traces of examples/sieve.wasm into", "new, 0 already there"],
    );
    let stats = check(
        &["corpus", "--corpus", &dir_arg, "stats"],
        0,
        &["traces"],
        &[],
    );
    let traces: u64 = stats
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("traces"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a trace count");
    assert!(traces > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `kiln opt --wat` shows the trace functions `emit` makes: the recorded trace's (naive)
/// and, when it is proven and cheaper, the candidate's (optimized).
#[test]
fn opt_wat_shows_the_emitted_functions() {
    let run = check(
        &["opt", "--wat", "saturate/tests/golden/mul_pow2.trace"],
        0,
        &[
            ";; verdict: proven",
            ";; wasm (naive)",
            "(import \"kiln\" \"frame\"",
            "$trace0.naive",
            ";; wasm (optimized)",
            "$trace0.optimized",
        ],
        &[],
    );
    let optimized = run.stdout.split(";; wasm (optimized)").nth(1).unwrap();
    assert!(optimized.contains("i32.shl") || optimized.contains("i64.shl"));
}

/// A guest without a memory: its hot loop's trace needs no memory, but trace modules
/// import one; kiln must still give the interpreter's result (compiling fails and is
/// counted, or the trace runs), never an error.
#[test]
fn live_jit_on_a_guest_without_memory() {
    let path = wat(
        "no_memory",
        r#"(module
             (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
             (global $g (mut i32) (i32.const 0))
             (func $_start (export "_start") (local $i i32) (local $s i32)
               (loop $l
                 (local.set $s (i32.add (local.get $s) (local.get $i)))
                 (global.set $g (i32.xor (global.get $g) (local.get $i)))
                 (local.set $i (i32.add (local.get $i) (i32.const 1)))
                 (br_if $l (i32.lt_u (local.get $i) (i32.const 100000))))
               (call $exit (i32.and (i32.add (local.get $s) (global.get $g)) (i32.const 127)))))"#,
    );
    // sum(0..100000) = 4999950000, low 32 bits 0x2A05F1D0 + xor-fold; the interpreter
    // decides the expected code.
    let plain = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["run", &path])
        .current_dir(workspace())
        .output()
        .unwrap();
    let code = plain.status.code().unwrap();
    for engine in ["cranelift", "winch"] {
        check(
            &[
                "run",
                "--jit",
                "live",
                "--engine",
                engine,
                "--stats-limit",
                "1",
                &path,
            ],
            code,
            &[],
            &[&format!("trace tier ({engine}): ")],
        );
    }
}
