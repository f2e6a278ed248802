//! `sleep`: counts to `seconds`, reporting progress and checking for
//! cancellation every tick; `fail: true` makes it fail at the end. The dummy
//! task the tests lean on (CodeChecker's), and a way to try errand out.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Kind, TaskContext, TaskError};

/// The `sleep` payload: `{"seconds": 2.5, "fail": false}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepPayload {
    /// How long to count, 0 to a day.
    pub seconds: f64,
    /// Fail (retryably) at the end.
    #[serde(default)]
    pub fail: bool,
}

/// The `sleep` kind.
pub struct Sleep;

/// Progress is reported (and cancellation checked) at least this often.
const TICK: Duration = Duration::from_millis(100);

/// Longest accepted sleep: a day.
const MAX_SECONDS: f64 = 86_400.0;

impl Kind for Sleep {
    const NAME: &'static str = "sleep";
    type Payload = SleepPayload;

    fn check(&self, p: &SleepPayload) -> Result<(), String> {
        if p.seconds.is_finite() && (0.0..=MAX_SECONDS).contains(&p.seconds) {
            Ok(())
        } else {
            Err(format!("seconds must be between 0 and {MAX_SECONDS}"))
        }
    }

    async fn run(&self, p: SleepPayload, ctx: &TaskContext) -> Result<Value, TaskError> {
        self.check(&p).map_err(TaskError::permanent)?;
        // The start and end lines let tests prove that no two attempts of a
        // task overlap; the span around them names the task and attempt.
        tracing::info!(seconds = p.seconds, "sleep started");
        let total = Duration::from_secs_f64(p.seconds);
        let start = Instant::now();
        loop {
            let elapsed = start.elapsed().min(total);
            let fraction = if total.is_zero() {
                1.0
            } else {
                elapsed.as_secs_f64() / total.as_secs_f64()
            };
            ctx.progress(
                fraction,
                format!("{:.1} of {} s", elapsed.as_secs_f64(), p.seconds),
            );
            if elapsed >= total {
                break;
            }
            tokio::select! {
                _ = ctx.cancelled() => {
                    tracing::info!("sleep stopped: cancelled");
                    return Err(TaskError::cancelled());
                }
                _ = tokio::time::sleep(TICK.min(total - elapsed)) => {}
            }
        }
        tracing::info!("sleep finished");
        if p.fail {
            Err(TaskError::retryable("failed on purpose (fail: true)"))
        } else {
            Ok(json!({ "slept": p.seconds }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::{Progress, TaskToken};
    use tokio::sync::watch;
    use tokio_util::sync::CancellationToken;

    fn ctx() -> (
        TaskContext,
        watch::Receiver<Option<Progress>>,
        CancellationToken,
    ) {
        let (tx, rx) = watch::channel(None);
        let cancel = CancellationToken::new();
        (
            TaskContext::new(
                TaskToken::generate(),
                1,
                cancel.clone(),
                tx,
                Default::default(),
            ),
            rx,
            cancel,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn sleeps_reporting_progress_then_completes() {
        let (ctx, rx, _) = ctx();
        let result = Sleep
            .run(
                SleepPayload {
                    seconds: 0.5,
                    fail: false,
                },
                &ctx,
            )
            .await
            .unwrap();
        assert_eq!(result, json!({"slept": 0.5}));
        let last = rx.borrow().clone().unwrap();
        assert_eq!(last.fraction, 1.0);
        assert_eq!(last.message.as_deref(), Some("0.5 of 0.5 s"));
    }

    #[tokio::test(start_paused = true)]
    async fn fail_flag_fails_retryably_at_the_end() {
        let (ctx, _, _) = ctx();
        let err = Sleep
            .run(
                SleepPayload {
                    seconds: 0.2,
                    fail: true,
                },
                &ctx,
            )
            .await
            .unwrap_err();
        assert!(err.retryable);
    }

    #[tokio::test(start_paused = true)]
    async fn stops_within_a_tick_of_cancel() {
        let (ctx, _, cancel) = ctx();
        let run = Sleep.run(
            SleepPayload {
                seconds: 60.0,
                fail: false,
            },
            &ctx,
        );
        let started = Instant::now();
        let stopper = async {
            tokio::time::sleep(Duration::from_millis(250)).await;
            cancel.cancel();
        };
        let (result, ()) = tokio::join!(run, stopper);
        assert_eq!(result.unwrap_err(), TaskError::cancelled());
        assert!(started.elapsed() <= Duration::from_millis(250) + TICK);
    }
}
