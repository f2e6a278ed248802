//! Postgres's LISTEN/NOTIFY listener, one per process: it turns the
//! migrations' notifications into [`StoreEvent`]s for every waiting loop
//! of this process (a task queued, a cancel asked, a watched task ended),
//! and hands the tasks pushed to this process's workers to them
//! ([`Push`], see `pushes`), and notes the queues that workers offered
//! idle slots for (`pushes::OfferBoard`). It reconnects by itself;
//! whatever was sent while it was not listening is missed, which it says
//! (`Resync`, `Push::Lost` then `Push::Listening`).

use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::dialect::Dialect;
use super::postgres::PgStore;
use super::pushes::{OfferBoard, PushSinks};
use super::{StoreError, StoreEvent};
use crate::pacing::{Retry, pause};

/// Notification channels, fed by the triggers in the migrations.
const CHANNEL_QUEUED: &str = "errand_queued";
const CHANNEL_CANCEL: &str = "errand_cancel";
const CHANNEL_ENDED: &str = "errand_ended";
const CHANNEL_PUSHED: &str = "errand_pushed";
const CHANNEL_OFFERED: &str = "errand_offered";

impl PgStore {
    pub(super) async fn run_listener(
        &self,
        events: &broadcast::Sender<StoreEvent>,
        pushes: &PushSinks,
        offers: &OfferBoard,
        shutdown: CancellationToken,
    ) {
        let mut retry = Retry::default();
        while !shutdown.is_cancelled() {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => break,
                outcome = self.listen(events, pushes, offers, &mut retry) => outcome,
            };
            pushes.listening(None);
            let delay = retry.failed();
            match outcome {
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "notification listener lost the database")
                }
                Ok(()) => {
                    tracing::warn!(retry_in = ?delay, "notification listener lost its connection")
                }
            }
            // Whatever happened while not listening was missed.
            let _ = events.send(StoreEvent::Resync);
            if !pause(delay, &shutdown).await {
                break;
            }
        }
        pushes.listening(None);
    }

    /// Listens until the connection is lost; a connection that listens is
    /// a success for `retry`.
    async fn listen(
        &self,
        events: &broadcast::Sender<StoreEvent>,
        pushes: &PushSinks,
        offers: &OfferBoard,
        retry: &mut Retry,
    ) -> Result<(), StoreError> {
        let pool = self.dialect.direct_pool().unwrap_or(&self.pool);
        let mut listener = PgListener::connect_with(pool).await?;
        // A lost connection ends this listener; the next one is made after
        // saying so (Lost, Resync). sqlx would otherwise LISTEN again on
        // another connection by itself before telling us, and whatever came
        // there before we dropped this listener would reach nobody, or a
        // worker that had not yet handed back what it missed.
        listener.eager_reconnect(false);
        // Offers name this backend: a task is pushed to a worker only while
        // this connection, which would hear of it, is alive. (Asked before
        // LISTEN, so that LISTEN stays what operators see it last ran.)
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut listener)
            .await?;
        listener
            .listen_all([
                CHANNEL_QUEUED,
                CHANNEL_CANCEL,
                CHANNEL_ENDED,
                CHANNEL_PUSHED,
                CHANNEL_OFFERED,
            ])
            .await?;
        retry.succeeded();
        tracing::debug!(backend = pid, "listening for notifications");
        // Anything sent before LISTEN took effect was missed.
        let _ = events.send(StoreEvent::Resync);
        pushes.listening(Some(pid));
        while let Some(n) = listener.try_recv().await? {
            let event = match n.channel() {
                CHANNEL_QUEUED => StoreEvent::Queued {
                    queue: n.payload().to_string(),
                },
                CHANNEL_CANCEL => StoreEvent::CancelRequested {
                    worker: n.payload().to_string(),
                },
                CHANNEL_ENDED => match n.payload().parse() {
                    Ok(token) => StoreEvent::Ended { token },
                    Err(_) => continue,
                },
                CHANNEL_OFFERED => {
                    tracing::debug!(offer = n.payload(), "an offer of idle slots heard");
                    offers.offered(n.payload());
                    continue;
                }
                CHANNEL_PUSHED => {
                    tracing::trace!("a pushed task's notification");
                    pushes.deliver(n.payload());
                    continue;
                }
                _ => continue,
            };
            // No receiver is fine: nobody is waiting.
            let _ = events.send(event);
        }
        Ok(())
    }
}
