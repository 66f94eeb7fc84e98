//! Waiting for other writers: SQLite's busy handler first, then starting the whole
//! transaction over after a bounded, jittered backoff.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::ffi::ErrorCode;
use rusqlite::{Connection, TransactionBehavior};

use crate::{Corpus, CorpusError};

/// How long SQLite's busy handler waits for a lock before answering `SQLITE_BUSY`. A
/// writer holds the write lock for one transaction: milliseconds for a run's traces, up
/// to a second or so for a very large batch with its fsync on a slow disk. Five seconds
/// covers that several times over, and still fails in human time when some process holds
/// the lock for good (one stopped in a debugger).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times an operation is tried when SQLite answers `SQLITE_BUSY` in spite of the
/// busy handler. SQLite skips the handler where waiting inside the attempt cannot help (a
/// connection recovering the WAL after a crash, a read snapshot made stale by a
/// concurrent commit), and there starting over is the cure; the handler's timeout running
/// out under heavy contention is cured the same way. Six attempts wait at most about
/// `6 × BUSY_TIMEOUT` plus 0.6 s of backoff (half a minute) before
/// [`CorpusError::Busy`] gives up: a recording run is worth that wait, a stuck lock is
/// not worth more.
pub const MAX_ATTEMPTS: u32 = 6;

/// The pause before the second attempt; each later pause doubles, up to
/// [`BACKOFF_MAX`], and is jittered to between half and all of that so that processes
/// that collided once do not collide again in step. 20 ms is a few small transactions'
/// worth of time.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(20);

/// The longest pause between attempts: long enough for a large transaction to commit.
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);

pub(crate) fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

impl Corpus {
    /// Runs `op` until it succeeds or fails with anything but `SQLITE_BUSY`, at most
    /// [`MAX_ATTEMPTS`] times. `op` must be safe to run again: a transaction that it
    /// began and that failed is rolled back by dropping it.
    pub(crate) fn with_retry<T>(
        &self,
        context: &'static str,
        mut op: impl FnMut(&Connection) -> Result<T, CorpusError>,
    ) -> Result<T, CorpusError> {
        let mut pause = BACKOFF_FIRST;
        for attempt in 1..=MAX_ATTEMPTS {
            match op(&self.conn) {
                Err(CorpusError::Database { source, .. }) if is_busy(&source) => {
                    if attempt == MAX_ATTEMPTS {
                        break;
                    }
                    self.busy_retries.set(self.busy_retries.get() + 1);
                    std::thread::sleep(jitter(pause));
                    pause = (pause * 2).min(BACKOFF_MAX);
                }
                other => return other,
            }
        }
        Err(CorpusError::Busy {
            context,
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Runs `op` in a write transaction (`BEGIN IMMEDIATE`, so the write lock is taken
    /// up front and a busy wait can never deadlock on a read lock being upgraded), commits
    /// it, and starts over on `SQLITE_BUSY`.
    pub(crate) fn write<T>(
        &self,
        context: &'static str,
        mut op: impl FnMut(&Connection) -> Result<T, CorpusError>,
    ) -> Result<T, CorpusError> {
        self.with_retry(context, |conn| {
            let db = |source| CorpusError::Database { context, source };
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
                .map_err(db)?;
            let value = op(&tx)?;
            tx.commit().map_err(db)?;
            Ok(value)
        })
    }

    /// Runs `op` in a read transaction, so that all its queries see one snapshot.
    pub(crate) fn read<T>(
        &self,
        context: &'static str,
        mut op: impl FnMut(&Connection) -> Result<T, CorpusError>,
    ) -> Result<T, CorpusError> {
        self.with_retry(context, |conn| {
            let db = |source| CorpusError::Database { context, source };
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Deferred)
                .map_err(db)?;
            let value = op(&tx)?;
            tx.finish().map_err(db)?;
            Ok(value)
        })
    }
}

/// A pause between half of `d` and `d`, varied by the clock and the process id.
fn jitter(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let noise = (nanos ^ std::process::id().wrapping_mul(0x9e37_79b9)) % 1024;
    d / 2 + d / 2 * noise / 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> CorpusError {
        let source = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        CorpusError::Database {
            context: "test",
            source,
        }
    }

    #[test]
    fn busy_is_retried_until_it_clears() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = Corpus::open(dir.path()).unwrap();
        let mut calls = 0;
        let result = corpus.with_retry("test", |_| {
            calls += 1;
            if calls < 3 {
                Err(busy())
            } else {
                Ok(calls)
            }
        });
        assert_eq!(result.unwrap(), 3);
        assert_eq!(corpus.busy_retries(), 2);
    }

    #[test]
    fn busy_gives_up_after_max_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = Corpus::open(dir.path()).unwrap();
        let mut calls = 0;
        let result: Result<(), _> = corpus.with_retry("testing", |_| {
            calls += 1;
            Err(busy())
        });
        assert!(matches!(
            result,
            Err(CorpusError::Busy {
                attempts: MAX_ATTEMPTS,
                ..
            })
        ));
        assert_eq!(calls, MAX_ATTEMPTS);
    }

    #[test]
    fn other_errors_are_not_retried() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = Corpus::open(dir.path()).unwrap();
        let mut calls = 0;
        let result: Result<(), _> = corpus.with_retry("test", |_| {
            calls += 1;
            Err(CorpusError::UnknownRun(crate::RunId(1)))
        });
        assert!(matches!(result, Err(CorpusError::UnknownRun(_))));
        assert_eq!(calls, 1);
    }

    #[test]
    fn jitter_stays_between_half_and_all() {
        for _ in 0..100 {
            let d = jitter(BACKOFF_FIRST);
            assert!(d >= BACKOFF_FIRST / 2 && d <= BACKOFF_FIRST, "{d:?}");
        }
    }
}
