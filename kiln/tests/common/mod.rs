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
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
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
