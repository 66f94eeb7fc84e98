//! `kiln bench --nightly` end to end on one small example: a row per thread count and one
//! for the rerun, the trace count the recording gave, and both of issue 6's bars with a
//! verdict. (Whether the bars pass is a figure for BENCHMARKS.md, not a test's: a test
//! machine's load decides it.)

mod common;

use common::check;

#[test]
fn nightly_bench_times_one_and_two_threads_and_a_rerun() {
    let run = check(
        &["bench", "--nightly", "--runs", "1", "--scale", "1", "sieve"],
        0,
        &[
            "| threads | job time (median) | traces/s | peak memory (largest process) |",
            "| 1 | ",
            "| 2 | ",
            "| 2, rerun on the unchanged corpus | ",
            " traces. Two threads against one: ",
            "x the traces per second (bar: at least 1.7x: ",
            "Rerun: ",
            "% of the first run's time (bar: at most 5%: ",
        ],
        &["bench: ", " traces from 1 programs"],
    );
    // The traces the bench reports are those the recording found, and the job did them.
    let traces: usize = run
        .stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("bench: ")?
                .split(" traces from")
                .next()?
                .parse()
                .ok()
        })
        .expect("a trace count");
    assert!(traces > 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!("\n{traces} traces. ")),
        "{}",
        run.stdout
    );
    for bar in ["at least 1.7x: ", "at most 5%: "] {
        let verdict = run.stdout.split(bar).nth(1).unwrap_or("");
        assert!(
            verdict.starts_with("PASS") || verdict.starts_with("FAIL"),
            "{bar}{verdict}"
        );
    }
}
