//! The scheduler: on every process that runs workers, a pass at each due
//! tick (and at least every `worker.poll_interval`, to see schedules made
//! or changed meanwhile) fires every schedule's due ticks, one task per
//! tick.
//!
//! Exactly once however many processes run: a pass reads a schedule's next
//! tick, and moves it on in the transaction that inserts the ticks' tasks
//! only if no other pass moved it first (`Store::schedule_fire`); the
//! database's unique key on (schedule, tick) refuses a second task for a
//! tick all the same. A process killed mid-pass leaves its transaction
//! undone, and the next pass (its own after a restart, or another
//! process's) fires the tick.
//!
//! Which ticks were missed (every process down): each pass promises, in
//! the store's clock, to look again within `Scheduler::promise`; a tick
//! after the last promise and before this scheduler started passed with
//! none alive (see `tasks::plan`). A scheduler that stops cleanly promises
//! only up to its stop, so the ticks after it are known missed.
//!
//! A process that does not know a schedule's kind (a rolling deploy that
//! adds it, workers built with other kinds) leaves the schedule's ticks to
//! a process that does, for as long as a promise lasts; then it lets them
//! pass, saying so, rather than let them pile up.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Service;
use crate::kinds::{DraftError, KindError, Registry};
use crate::pacing::pause;
use crate::store::{ScheduleFire, Store, StoreError};
use crate::tasks::{Firing, Liveness, Overlap, ScheduleRecord, plan};

/// Most ticks of one schedule a pass fires; the rest are the next pass's,
/// which follows at once.
const TICKS_PER_PASS: usize = 100;

/// Fires schedules' ticks.
pub struct Scheduler {
    store: Store,
    /// Checks each tick's task as a create is checked.
    registry: Arc<Registry>,
    /// When this scheduler started: every tick since had one alive.
    started: DateTime<Utc>,
    /// Longest between passes.
    interval: Duration,
    /// The soonest next tick the last pass saw.
    next_due: Option<DateTime<Utc>>,
}

impl Scheduler {
    /// A scheduler that looks at least every `interval`.
    pub fn new(store: Store, registry: Arc<Registry>, interval: Duration) -> Scheduler {
        let started = Utc::now();
        tracing::info!(since = %started.to_rfc3339(), "scheduler started");
        Scheduler {
            store,
            registry,
            started,
            interval,
            next_due: None,
        }
    }

    /// How long to wait before the next pass, as of `now`: until the
    /// soonest due tick (none: due now), and never longer than the interval
    /// (with no schedule running, the interval).
    fn until_next_pass(&self, now: DateTime<Utc>) -> Duration {
        match self.next_due {
            Some(due) => (due - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(self.interval),
            None => self.interval,
        }
    }

    /// How far ahead a pass promises to look again: past the next pass,
    /// however late it comes on a loaded machine.
    fn promise(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.interval * 2 + Duration::from_secs(1))
            .unwrap_or(chrono::TimeDelta::MAX)
    }

    /// One pass as of `now`: each schedule's due ticks fired. Whether a
    /// schedule had more due than one pass fires. A schedule that can't be
    /// fired (the database refused its write) is passed over, saying so:
    /// it does not hold up the others.
    pub async fn fire_due(&mut self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let liveness = Liveness {
            started: self.started,
            alive_until: self.store.schedule_clock().await?,
        };
        let schedules = self.store.schedule_list().await?;
        let (mut more, mut soonest) = (false, None::<DateTime<Utc>>);
        for record in schedules.iter().filter(|r| r.paused.is_none()) {
            let next = match plan(
                &record.schedule,
                record.next_tick,
                now,
                liveness,
                TICKS_PER_PASS,
            ) {
                Some(firing) => {
                    more |= firing.ticks.len() >= TICKS_PER_PASS;
                    let next = firing.next_tick;
                    match self.fire(record, firing, now).await {
                        Err(e) if e.is_transient() => return Err(e),
                        Err(e) => tracing::warn!(
                            schedule = record.schedule.name,
                            error = %e,
                            "could not fire the schedule's ticks"
                        ),
                        Ok(()) => {}
                    }
                    next
                }
                None => record.next_tick,
            };
            soonest = Some(soonest.map_or(next, |s| s.min(next)));
        }
        // Only after the pass: the promise before it told which ticks
        // this pass found missed. With no schedule running, no tick needs
        // covering: nothing is written.
        if soonest.is_some() {
            self.store
                .schedule_clock_set(Some(now + self.promise()))
                .await?;
        }
        self.next_due = soonest;
        Ok(more)
    }

    /// Fires one schedule's ticks (see `Store::schedule_fire`).
    async fn fire(
        &self,
        record: &ScheduleRecord,
        firing: Firing,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let s = &record.schedule;
        let unknown = |e: &DraftError| matches!(e, DraftError::Kind(KindError::Unknown { .. }));
        let mut tasks = Vec::with_capacity(firing.ticks.len());
        for tick in &firing.ticks {
            match self.registry.schedule_task(s, *tick, now) {
                Ok(task) => tasks.push(task),
                // Another process may know the kind: leave it the ticks
                // while the oldest due one is fresh.
                Err(e) if unknown(&e) && now - record.next_tick < self.promise() => {
                    tracing::debug!(
                        schedule = s.name,
                        "kind unknown here: left to another process"
                    );
                    return Ok(());
                }
                Err(e) => tracing::warn!(
                    schedule = s.name,
                    tick = %tick,
                    error = %e,
                    "the schedule's task can't be made; the tick passes without one"
                ),
            }
        }
        if firing.skipped {
            tracing::info!(
                schedule = s.name,
                missed = ?s.missed,
                "ticks passed while no scheduler was running"
            );
        }
        let fire = ScheduleFire {
            name: &s.name,
            seen_next_tick: record.next_tick,
            next_tick: firing.next_tick,
            tasks: &tasks,
            unless_running: s.overlap == Overlap::Skip,
        };
        let Some(made) = self.store.schedule_fire(&fire).await? else {
            return Ok(()); // another process's pass fired these ticks
        };
        if made.len() < tasks.len() {
            tracing::info!(
                schedule = s.name,
                made = made.len(),
                ticks = tasks.len(),
                "ticks passed without their task: the last one has not ended (overlap = skip), or one existed already"
            );
        }
        for task in &made {
            crate::telemetry::schedule_fired(&s.name);
            crate::telemetry::task_created(&task.kind);
            tracing::info!(
                schedule = s.name,
                task.token = %task.token,
                task.kind = %task.kind,
                scheduled_for = ?task.scheduled_for,
                "schedule fired"
            );
        }
        Ok(())
    }
}

impl Service for Scheduler {
    const NAME: &'static str = "scheduler";
    type Error = StoreError;

    async fn run_once(&mut self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.fire_due(now).await
    }

    async fn next_pass(&mut self, shutdown: &CancellationToken) -> bool {
        pause(self.until_next_pass(Utc::now()), shutdown).await
    }

    /// Says that this scheduler stopped now: the ticks after are missed
    /// unless another one is running.
    async fn stopped(&mut self) {
        if let Err(e) = self.store.schedule_clock_set(Some(Utc::now())).await {
            tracing::warn!(error = %e, "could not record that the scheduler stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pass_waits_for_the_soonest_tick_or_the_interval() {
        let mut settings = crate::config::Settings::defaults();
        settings.database.url = "sqlite::memory:".into();
        let store = Store::connect(&settings.database).unwrap();
        let registry = Arc::new(Registry::with_builtins(&settings).unwrap());
        let mut scheduler = Scheduler::new(store, registry, Duration::from_secs(1));
        let now = Utc::now();
        assert_eq!(
            scheduler.until_next_pass(now),
            Duration::from_secs(1),
            "no schedule: the interval, not at once"
        );
        scheduler.next_due = Some(now + chrono::Duration::milliseconds(300));
        assert_eq!(scheduler.until_next_pass(now), Duration::from_millis(300));
        scheduler.next_due = Some(now - chrono::Duration::seconds(5));
        assert_eq!(scheduler.until_next_pass(now), Duration::ZERO, "overdue");
        scheduler.next_due = Some(now + chrono::Duration::hours(1));
        assert_eq!(scheduler.until_next_pass(now), Duration::from_secs(1));
    }
}
