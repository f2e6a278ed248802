//! How errand's loops pace themselves, all the same way: after a failure
//! they back off ([`Retry`], the delays of [`tasks::Backoff`](Backoff)
//! without jitter), and between passes they wait for an event or a deadline
//! ([`wait`], [`pause`]). Used by the worker's loops, maintenance, the
//! store's notification listener, migrations at start, and long polls.
//!
//! Uses `tasks` (the backoff maths) and tokio; nothing else of the crate.

use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::tasks::Backoff;

/// Delays between tries after failures: 100 ms, doubling, at most 5 s.
pub const LOOP_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(100),
    max: Duration::from_secs(5),
};

/// A loop's failures so far, and so how long to wait before trying again.
#[derive(Debug, Clone)]
pub struct Retry {
    backoff: Backoff,
    failures: i32,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry::new(LOOP_BACKOFF)
    }
}

impl Retry {
    pub fn new(backoff: Backoff) -> Retry {
        Retry {
            backoff,
            failures: 0,
        }
    }

    /// One more failure: the delay before the next try.
    pub fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.backoff.delay(self.failures, 1.0)
    }

    /// A success: the next failure starts from the first delay again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

/// Why [`wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// An event the caller wanted, or events may have been missed (the
    /// receiver lagged): look again.
    Event,
    /// The deadline passed.
    Deadline,
    /// `stop` was cancelled.
    Stopped,
}

/// Waits until an event `wanted` accepts arrives, `deadline` passes, or
/// `stop` is cancelled. A receiver that fell behind counts as an event
/// (some may have been missed); once the channel is closed, only the
/// deadline and `stop` are left.
pub async fn wait<E: Clone>(
    events: &mut broadcast::Receiver<E>,
    deadline: Instant,
    stop: &CancellationToken,
    wanted: impl Fn(&E) -> bool,
) -> Woken {
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    let mut open = true;
    loop {
        tokio::select! {
            // A stop wins over whatever else is ready.
            biased;
            () = stop.cancelled() => return Woken::Stopped,
            () = &mut sleep => return Woken::Deadline,
            event = events.recv(), if open => match event {
                Ok(event) if wanted(&event) => return Woken::Event,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => return Woken::Event,
                Err(RecvError::Closed) => open = false,
            },
        }
    }
}

/// Sleeps `delay`, or less if `stop` comes first; false on stop.
pub async fn pause(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_doubling_to_a_cap_and_start_over_after_success() {
        let mut retry = Retry::default();
        let delays: Vec<u128> = (0..8).map(|_| retry.failed().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        retry.succeeded();
        assert_eq!(retry.failed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_returns_on_a_wanted_event_a_lag_the_deadline_or_stop() {
        let (tx, mut rx) = broadcast::channel::<u32>(1);
        let stop = CancellationToken::new();
        let soon = || Instant::now() + Duration::from_secs(1);
        tx.send(1).unwrap();
        assert_eq!(
            wait(&mut rx, soon(), &stop, |e| *e == 2).await,
            Woken::Deadline
        );
        tx.send(2).unwrap();
        assert_eq!(
            wait(&mut rx, soon(), &stop, |e| *e == 2).await,
            Woken::Event
        );
        tx.send(3).unwrap();
        tx.send(4).unwrap();
        assert_eq!(wait(&mut rx, soon(), &stop, |_| false).await, Woken::Event);
        stop.cancel();
        assert_eq!(wait(&mut rx, soon(), &stop, |_| true).await, Woken::Stopped);
        drop(tx);
        let fresh = CancellationToken::new();
        // The one message left is not wanted; then the channel is closed.
        assert_eq!(
            wait(&mut rx, soon(), &fresh, |_| false).await,
            Woken::Deadline
        );
    }
}
