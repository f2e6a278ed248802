//! A queue's pace in one worker process ([`Pace`]): its slots (handlers
//! running at once), the tasks claimed ahead of a free slot (the backlog),
//! and how many to claim next.
//!
//! Short handlers get tasks claimed ahead: as many as the slots would start
//! within `worker.claim_ahead` going by how long handlers have been taking,
//! so that one claim statement serves many tasks and a slot never waits on
//! a round trip. Long handlers get none, so that no task waits here while
//! another worker could run it. Every claimed task also holds a place until
//! its end is written (`slots + claim_batch + end_batch` places), which
//! bounds what waits to be written.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::config::WorkerSettings;

/// See the module.
pub(super) struct Pace {
    slots: Arc<Semaphore>,
    slot_count: usize,
    places: Arc<Semaphore>,
    /// Claimed tasks waiting for a slot.
    backlog: AtomicUsize,
    /// How long handlers take, a moving average in µs (as f64 bits); 0
    /// until one has run.
    handler_us: AtomicU64,
    /// Tasks pushed to this queue's slots so far (see `push`).
    pushes: AtomicUsize,
    changed: Notify,
    claim_batch: usize,
    claim_ahead: Duration,
}

/// What a claimed task holds until its end is written.
pub(super) struct Place {
    _permit: OwnedSemaphorePermit,
    pace: Arc<Pace>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.pace.changed.notify_one();
    }
}

impl Pace {
    pub(super) fn new(slots: usize, settings: &WorkerSettings) -> Arc<Pace> {
        let places = slots + settings.claim_batch + settings.end_batch;
        Arc::new(Pace {
            slots: Arc::new(Semaphore::new(slots)),
            slot_count: slots,
            places: Arc::new(Semaphore::new(places)),
            backlog: AtomicUsize::new(0),
            handler_us: AtomicU64::new(0),
            pushes: AtomicUsize::new(0),
            changed: Notify::new(),
            claim_batch: settings.claim_batch,
            claim_ahead: settings.claim_ahead,
        })
    }

    /// How many tasks to claim now: 0 when no claim is worth its round
    /// trip yet (see [`Pace::changed`]). A claim is made at once when a slot
    /// is free and nothing waits for one; else only once half the room is
    /// free, so that claims come in batches.
    pub(super) fn wanted(&self) -> usize {
        let free = self.slots.available_permits();
        let backlog = self.backlog.load(Ordering::Relaxed);
        let room = self.slot_count + self.ahead();
        let held = self.slot_count - free + backlog;
        let want = room
            .saturating_sub(held)
            .min(self.claim_batch)
            .min(self.places.available_permits());
        let starving = backlog == 0 && free > 0;
        if starving || want * 2 >= room {
            want
        } else {
            0
        }
    }

    /// Slots free with no task waiting for them: what this queue would
    /// take at once.
    pub(super) fn idle_room(&self) -> usize {
        let free = self.slots.available_permits();
        free.saturating_sub(self.backlog.load(Ordering::Relaxed))
    }

    /// A task was pushed here (it then joins the backlog as a claimed one).
    pub(super) fn pushed(&self) {
        self.pushes.fetch_add(1, Ordering::Relaxed);
    }

    /// Tasks pushed here so far.
    pub(super) fn pushes(&self) -> usize {
        self.pushes.load(Ordering::Relaxed)
    }

    /// Tasks worth claiming ahead of free slots, going by handlers so far.
    fn ahead(&self) -> usize {
        let us = f64::from_bits(self.handler_us.load(Ordering::Relaxed));
        if us <= 0.0 {
            return 0;
        }
        let n = self.slot_count as f64 * self.claim_ahead.as_micros() as f64 / us;
        (n as usize).min(self.claim_batch)
    }

    /// Waits until what [`Pace::wanted`] says may have changed.
    pub(super) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Up to `n` places, without waiting; each claimed task takes one.
    pub(super) fn places(self: &Arc<Pace>, n: usize) -> Vec<Place> {
        let mut places = Vec::with_capacity(n);
        while places.len() < n {
            match self.places.clone().try_acquire_owned() {
                Ok(permit) => places.push(Place {
                    _permit: permit,
                    pace: self.clone(),
                }),
                Err(_) => break,
            }
        }
        places
    }

    /// A place for a pushed task, waiting for one if need be (a push never
    /// takes more than the room its worker offered, so it seldom waits).
    pub(super) async fn place(self: &Arc<Pace>) -> Place {
        let permit = self
            .places
            .clone()
            .acquire_owned()
            .await
            .expect("the places are never closed");
        Place {
            _permit: permit,
            pace: self.clone(),
        }
    }

    /// A claimed task joins the backlog, until it gets a slot.
    pub(super) fn queued(&self) {
        self.backlog.fetch_add(1, Ordering::Relaxed);
    }

    /// Waits for a free slot for a task of the backlog.
    pub(super) async fn slot(&self) -> OwnedSemaphorePermit {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the slots are never closed");
        self.backlog.fetch_sub(1, Ordering::Relaxed);
        self.changed.notify_one();
        slot
    }

    /// A task of the backlog that will not run here (its attempt stopped
    /// before it got a slot).
    pub(super) fn dropped(&self) {
        self.backlog.fetch_sub(1, Ordering::Relaxed);
        self.changed.notify_one();
    }

    /// A handler is done after `took`: its slot takes the next task.
    pub(super) fn finished(&self, slot: OwnedSemaphorePermit, took: Duration) {
        drop(slot);
        let us = took.as_secs_f64() * 1e6;
        let before = f64::from_bits(self.handler_us.load(Ordering::Relaxed));
        let average = if before <= 0.0 {
            us
        } else {
            before * 0.9 + us * 0.1
        };
        self.handler_us
            .store(average.max(0.001).to_bits(), Ordering::Relaxed);
        self.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(slots: usize) -> Arc<Pace> {
        let mut settings = crate::config::Settings::defaults().worker;
        settings.claim_batch = 100;
        settings.claim_ahead = Duration::from_millis(2);
        Pace::new(slots, &settings)
    }

    #[tokio::test]
    async fn long_handlers_get_no_task_claimed_ahead() {
        let pace = pace(4);
        assert_eq!(pace.wanted(), 4, "idle: a claim for every slot");
        let slots: Vec<_> = (0..4)
            .map(|_| pace.slots.clone().try_acquire_owned().unwrap())
            .collect();
        assert_eq!(pace.wanted(), 0, "all busy");
        let mut slots = slots.into_iter();
        pace.finished(slots.next().unwrap(), Duration::from_secs(60));
        assert_eq!(pace.wanted(), 1, "one slot freed: one task, none ahead");
    }

    #[tokio::test]
    async fn short_handlers_get_a_batch_claimed_ahead() {
        let pace = pace(10);
        let slot = pace.slots.clone().try_acquire_owned().unwrap();
        pace.finished(slot, Duration::from_micros(50));
        // 10 slots × 2 ms / 50 µs = 400 ahead, capped at claim_batch.
        assert_eq!(pace.wanted(), 100);
        for _ in 0..80 {
            pace.queued();
        }
        assert_eq!(pace.wanted(), 0, "most of the room is taken: wait");
        for _ in 0..80 {
            drop(pace.slot().await);
        }
        assert_eq!(pace.wanted(), 100);
    }
}
