//! What the `kiln` binary's end-to-end tests share: running the built executable from
//! the workspace root and checking what it printed.

#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a run of `kiln` produced.
pub struct Run {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `kiln ARGS` from the workspace root and checks its exit code, and that stdout and
/// stderr contain each of the given pieces, in the order given.
pub fn check(args: &[&str], code: i32, stdout: &[&str], stderr: &[&str]) -> Run {
    let code_cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("code-cache");
    check_with_env(
        args,
        &[("KILN_CODE_CACHE", code_cache.as_os_str())],
        code,
        stdout,
        stderr,
    )
}

/// [`check`] with environment variables for kiln (`check` itself points `KILN_CODE_CACHE`
/// at the test target's directory, never at the user's code cache).
pub fn check_with_env(
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
    code: i32,
    stdout: &[&str],
    stderr: &[&str],
) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace())
        .stdin(Stdio::null())
        .output()
        .expect("kiln runs");
    let run = Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    let context = format!(
        "kiln {}\n--- stdout:\n{}\n--- stderr:\n{}",
        args.join(" "),
        run.stdout,
        run.stderr
    );
    assert_eq!(output.status.code(), Some(code), "exit code of {context}");
    contains_in_order(&run.stdout, stdout, "stdout", &context);
    contains_in_order(&run.stderr, stderr, "stderr", &context);
    run
}

pub fn contains_in_order(text: &str, pieces: &[&str], stream: &str, context: &str) {
    let mut rest = text;
    for piece in pieces {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => panic!("{stream} lacks {piece:?} (in this order) for {context}"),
        }
    }
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The counts of `kiln optimize`'s summary line, by name, and its seconds.
pub struct OptimizeSummary {
    pub traces: u64,
    pub proven: u64,
    pub refuted: u64,
    pub unknown: u64,
    pub failed: u64,
    pub skipped: u64,
    pub seconds: f64,
}

pub fn optimize_summary(stdout: &str) -> OptimizeSummary {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("optimize: ") && l.contains(" traces, "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"));
    let (counts, time) = line["optimize: ".len()..].split_once("; ").expect(line);
    let count = |name: &str| -> u64 {
        counts
            .split(", ")
            .find_map(|part| {
                let (n, rest) = part.split_once(' ')?;
                (rest == name || rest.starts_with(&format!("{name} "))).then(|| n.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no `{name}` in {line}"))
    };
    OptimizeSummary {
        traces: count("traces"),
        proven: count("proven"),
        refuted: count("refuted"),
        unknown: count("unknown"),
        failed: count("failed"),
        skipped: count("skipped"),
        seconds: time.strip_suffix(" s").expect(line).parse().expect(line),
    }
}
