//! The timed trial: does trace code beat the interpreter at this loop?
//!
//! Probation (`wasm_tier.rs`) counts segments per drive, which catches a trace that mostly
//! exits at once. It cannot see a trace whose segments are each slower than interpreting
//! the same path: a dispatch loop linked through one side trace per opcode, where every
//! segment pays a call through the driver, and on Winch runs baseline code besides. There
//! the only honest judge is the clock. So a root trace whose first drives are short or
//! chained (`wasm_tier::needs_trial`) runs a trial at its anchor, while probation goes
//! on: rounds of a window timed with trace code, then a window timed with the
//! interpreter, and the interpreter takes the anchor back only if its best window went
//! round the loop clearly faster ([`INTERPRETER_MARGIN`]) than trace code's best.
//!
//! The unit of work is the anchor's *pass*: its loop header reached, in trace code (a call
//! or a loop iteration of the root, counted by the driver) or by the interpreter. Both
//! windows time passes and whatever the program does between them (the rest of an
//! iteration after an exit, an outer loop). The trace window runs from one arrival of
//! the interpreter at the anchor to a later one, drive by drive; an interval longer than
//! [`GAP`] means the loop was left for something else, and the window starts again, so a
//! phase change in the program is not charged to trace code. The interpreted window is
//! one stretch of as many passes, which the interpreter runs at its full speed without
//! calling the tier (`TierExit::Interpret`); a gap there can only make the interpreter
//! look slower, so it can only keep trace code, which probation already let through.
//! Time the tier spends compiling, and the interpreter recording side traces, is taken
//! out of both.
//!
//! One trial at a time (the tier holds the token): two loops of one program measured at
//! once would each be timed against the other's interpreted window, an inner loop's
//! slowing its outer loop's trace window.

use std::time::{Duration, Instant};

/// Passes a window measures. Enough for the clock's resolution (a 20 ns read against
/// passes of 10 ns and more) and a hundred drives of a short loop, few enough that the
/// interpreted window costs little where trace code is several times faster (512 passes
/// of a 1 µs iteration: half a millisecond).
pub const WINDOW_PASSES: u64 = 512;
/// Rounds of a trial: a trace window then an interpreted one, each side judged by its best
/// window. A window is short (tens of microseconds on a fast loop), and an interrupt or a
/// cache disturbed by other work slows one now and then; the best of several is what
/// each side does undisturbed.
pub const ROUNDS: u32 = 5;
/// A trial window not filled after this long ends the trial, trace code kept: its loop
/// is left and re-entered too often, or runs too long per drive, for a window to fill
/// (long drives are the case trace code wins), or it has gone quiet. Another anchor may
/// take the token from a trial this old.
pub const PATIENCE: Duration = Duration::from_millis(10);
/// A window also ends after this long: a loop with a big body needs no more passes to
/// be measured well, and its interpreted window must not cost much.
pub const WINDOW_TIME: Duration = Duration::from_millis(1);
/// Between two arrivals at the anchor, longer than this: the loop was left (the program
/// did something else meanwhile), and the window starts over. A drive this long (a loop
/// running thousands of iterations in trace code) restarts the trace window too, so such
/// a trace never finishes its trial and stays: it is the case trace code wins anyway.
pub const GAP: Duration = Duration::from_millis(1);

/// What the tier does at an arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Run trace code (the drive's passes are read at the next arrival).
    Trace,
    /// Let the interpreter run this many passes (this iteration first) without calling.
    Interpret(u32),
    /// The trial is over: trace code won (or the trial cannot be run); run it from now on.
    Keep,
    /// The trial is over: the interpreter won; detach the anchor.
    Detach,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Traced,
    /// The interpreter is running this many passes since the last arrival.
    Interpreted {
        passes: u64,
    },
    Done(Step),
}

/// One window being measured.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    passes: u64,
    time: Duration,
    /// The last clock read, the anchor's pass count and the uncharged time then.
    last: Option<(Instant, u64, Duration)>,
}

/// One root trace's trial.
#[derive(Debug, Clone)]
pub struct Trial {
    phase: Phase,
    window: Window,
    /// When the window under way opened.
    opened: Option<Instant>,
    /// Rounds (a trace window, then an interpreted one) done, and each side's best rate.
    rounds: u32,
    best_traced: f64,
    best_interpreted: f64,
}

impl Default for Trial {
    fn default() -> Self {
        Trial::new()
    }
}

impl Trial {
    pub fn new() -> Trial {
        Trial {
            phase: Phase::Traced,
            window: Window::default(),
            opened: None,
            rounds: 0,
            best_traced: 0.0,
            best_interpreted: 0.0,
        }
    }

    /// A trial that is over, with trace code kept: for a root that needs none, or one
    /// whose trial went stale.
    pub fn kept() -> Trial {
        Trial {
            phase: Phase::Done(Step::Keep),
            ..Trial::new()
        }
    }

    pub fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Done(_))
    }

    /// Started, not over, and its window younger than [`PATIENCE`]: the token stays
    /// with it. Otherwise another anchor may take the token.
    pub fn holds_token(&self) -> bool {
        !self.is_over() && self.opened.is_some_and(|t| t.elapsed() <= PATIENCE)
    }

    /// The interpreter arrived at the anchor; `passes` is the anchor's pass count in trace
    /// code so far and `uncharged` the time so far the tier keeps out of trials. Says
    /// what to do now.
    pub fn arrive(&mut self, passes: u64, uncharged: Duration) -> Step {
        let now = Instant::now();
        match self.phase {
            Phase::Done(step) => step,
            Phase::Traced => {
                if now.saturating_duration_since(*self.opened.get_or_insert(now)) > PATIENCE {
                    self.phase = Phase::Done(Step::Keep);
                    return Step::Keep;
                }
                self.sample(now, passes, uncharged);
                let Some(rate) = self.full_window_rate() else {
                    return Step::Trace;
                };
                self.best_traced = self.best_traced.max(rate);
                // As many passes for the interpreter, from this arrival on, up to a full
                // window's: one long drive may have filled the trace window many times
                // over, and the rates compare per pass.
                let interpreted = self.window.passes.clamp(1, WINDOW_PASSES);
                self.phase = Phase::Interpreted {
                    passes: interpreted,
                };
                self.window = Window::default();
                self.opened = Some(now);
                self.sample(now, passes, uncharged);
                Step::Interpret(interpreted as u32)
            }
            Phase::Interpreted {
                passes: interpreted,
            } => {
                let (then, _, uncharged_then) = self.window.last.expect("opened at the switch");
                let time = now
                    .saturating_duration_since(then)
                    .saturating_sub(uncharged.saturating_sub(uncharged_then));
                self.best_interpreted = self.best_interpreted.max(rate(interpreted, time));
                self.rounds += 1;
                if self.rounds == ROUNDS {
                    let step = verdict(self.best_traced, self.best_interpreted);
                    self.phase = Phase::Done(step);
                    return step;
                }
                // The next round's trace window opens at this arrival.
                self.phase = Phase::Traced;
                self.window = Window::default();
                self.opened = Some(now);
                self.sample(now, passes, uncharged);
                Step::Trace
            }
        }
    }

    /// Closes the trace window's interval since the last clock read at `now`, with the
    /// anchor's pass count `passes`.
    fn sample(&mut self, now: Instant, passes: u64, uncharged: Duration) {
        let w = &mut self.window;
        if let Some((then, passes_then, uncharged_then)) = w.last {
            let elapsed = now
                .saturating_duration_since(then)
                .saturating_sub(uncharged.saturating_sub(uncharged_then));
            if elapsed > GAP {
                // The loop was left meanwhile: measure afresh from here.
                w.passes = 0;
                w.time = Duration::ZERO;
            } else {
                w.passes += passes.saturating_sub(passes_then);
                w.time += elapsed;
            }
        }
        w.last = Some((now, passes, uncharged));
    }

    /// The window's passes per second, once it has measured enough.
    fn full_window_rate(&self) -> Option<f64> {
        let w = &self.window;
        let enough = w.passes >= WINDOW_PASSES || (w.time >= WINDOW_TIME && w.passes > 0);
        enough.then(|| rate(w.passes, w.time))
    }
}

fn rate(passes: u64, time: Duration) -> f64 {
    // A window measured in no time at all (a coarse clock) ran as fast as can be seen.
    passes as f64 / time.as_secs_f64().max(1e-9)
}

/// How much faster the interpreter must have gone round the loop to win. The windows are
/// measured one after the other, so on a loop where both sides do the same (an outer
/// loop whose time is in its inner loops, traced either way) their best rates still
/// differ by some percent: such a near tie keeps trace code, as before the trial. The
/// losses the trial is for are larger (dispatch chains on Winch: twice the
/// interpreter's time).
pub const INTERPRETER_MARGIN: f64 = 1.25;

/// Trace code stays unless the interpreter went round the loop clearly faster.
pub fn verdict(trace_rate: f64, interpreted_rate: f64) -> Step {
    if interpreted_rate <= trace_rate * INTERPRETER_MARGIN {
        Step::Keep
    } else {
        Step::Detach
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(trace_rate: f64, interpreted_rate: f64, expected: Step) {
        assert_eq!(verdict(trace_rate, interpreted_rate), expected);
    }

    #[test]
    fn the_interpreter_must_be_clearly_faster_to_win() {
        check(10.0, 1.0, Step::Keep);
        check(1.0, 10.0, Step::Detach);
        check(5.0, 5.0, Step::Keep);
        check(5.0, 6.0, Step::Keep);
        check(5.0, 7.0, Step::Detach);
    }

    /// Runs a trial whose trace code makes `per_arrival` passes in `traced` each arrival,
    /// and whose interpreter spends `interpreted` on its passes; returns the verdict.
    fn trial(per_arrival: u64, traced: Duration, interpreted: Duration) -> Step {
        let mut trial = Trial::new();
        let mut passes = 0;
        let mut arrivals = 0;
        loop {
            match trial.arrive(passes, Duration::ZERO) {
                Step::Trace => {
                    std::thread::sleep(traced);
                    passes += per_arrival;
                }
                Step::Interpret(n) => {
                    assert!(u64::from(n) >= WINDOW_PASSES.min(per_arrival), "{n}");
                    std::thread::sleep(interpreted);
                }
                done => {
                    assert!(trial.is_over());
                    assert_eq!(trial.arrive(passes, Duration::ZERO), done, "decided once");
                    return done;
                }
            }
            arrivals += 1;
            assert!(arrivals < 1_000_000, "the trial never ends");
        }
    }

    /// Trace code that makes 2000 passes in microseconds beats an interpreter that takes
    /// 20 ms for as many; trace code that takes 100 µs per 500 passes loses to one that
    /// takes no time at all.
    #[test]
    fn a_trial_measures_trace_code_then_the_interpreter_then_decides() {
        assert_eq!(
            trial(500, Duration::ZERO, Duration::from_millis(20)),
            Step::Keep
        );
        assert_eq!(
            trial(500, Duration::from_micros(100), Duration::ZERO),
            Step::Detach
        );
    }

    /// Time the tier spent compiling is not charged to the window.
    #[test]
    fn compile_time_is_not_charged() {
        let mut trial = Trial::new();
        trial.arrive(0, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(3));
        // At least 3 ms passed, all of it compiling: no gap, the window goes on. (The
        // tier says it compiled for longer than a loaded machine could have let the sleep
        // overrun, so that the test does not hang on the clock; were `uncharged` not
        // subtracted, the 3 ms would be a gap.)
        let compiling = Duration::from_secs(1);
        assert_eq!(trial.arrive(10, compiling), Step::Trace);
        assert_eq!(trial.window.passes, 10);
        std::thread::sleep(Duration::from_millis(3));
        // At least 3 ms passed, none compiling: a gap, the window starts over.
        trial.arrive(20, compiling);
        assert_eq!(trial.window.passes, 0);
    }

    /// A trial holds the token from its first arrival until it is over or its window
    /// has been open longer than PATIENCE.
    #[test]
    fn a_trial_holds_the_token_while_it_is_under_way() {
        let mut trial = Trial::new();
        assert!(!trial.holds_token(), "not started");
        assert_eq!(trial.arrive(0, Duration::ZERO), Step::Trace);
        assert!(trial.holds_token());
        std::thread::sleep(PATIENCE + Duration::from_millis(2));
        assert!(!trial.holds_token(), "stale");
        assert!(!Trial::kept().holds_token(), "over");
    }

    #[test]
    fn a_kept_trial_is_over() {
        let mut trial = Trial::kept();
        assert!(trial.is_over());
        assert_eq!(trial.arrive(0, Duration::ZERO), Step::Keep);
    }
}
