//! The writes of a task's life that announce what they changed to this
//! process's waiting loops (see `Store::announce`): insert, claim,
//! heartbeat, end, cancel, rescue, expiry, retry (one, or by filter), a
//! resumed queue, a schedule's tick, callback deliveries.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::params::LeaseRenewal;
use super::{
    Backend, CancelCount, ScheduleFire, Store, StoreError, StoreEvent, TaskClaim, TaskEnding,
};
use crate::tasks::{
    AttemptEnd, IdempotencyKey, NewTask, Refused, Scope, Status, Task, TaskFilter, TaskId, WorkerId,
};

impl Store {
    /// Inserts a checked new task, with its dependencies and input files:
    /// every parent must exist, be visible to `creator`, and not have ended
    /// badly, every input file be the creator's and not expired (else the
    /// `Refused`, and nothing is written). `key`, claimed before, names the
    /// new task in the same transaction.
    pub async fn task_insert(
        &self,
        task: &NewTask,
        creator: &Scope,
        key: Option<&IdempotencyKey>,
    ) -> Result<Result<Task, Refused>, StoreError> {
        let inserted = self
            .tasks_insert(std::slice::from_ref(task), creator, key)
            .await?;
        Ok(inserted
            .map(|mut tasks| tasks.remove(0))
            .map_err(|(_, refused)| refused))
    }

    /// [`Store::task_insert`] for a batch, all or none, in one statement:
    /// the tasks in order, or the first refused one's place and why.
    pub async fn tasks_insert(
        &self,
        tasks: &[NewTask],
        creator: &Scope,
        key: Option<&IdempotencyKey>,
    ) -> Result<Result<Vec<Task>, (usize, Refused)>, StoreError> {
        if tasks.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        let seatable = |queue: &str| self.offers.may_seat(queue);
        let inserted = dispatch!(self, b => b.tasks_insert(tasks, creator, key, &seatable).await)?;
        if let Ok(tasks) = &inserted {
            self.announce_changes(tasks);
        }
        Ok(inserted)
    }

    /// Claims up to `limit` runnable tasks of `queue` (of the `kinds` given)
    /// for `worker`: each becomes `running`, its attempt goes up by one, and
    /// it is leased until `lease_until`. With a `global_limit`, never so many
    /// that the queue's running tasks, across all workers, exceed it.
    /// Returned in claim order.
    pub async fn task_claim(&self, claim: &TaskClaim<'_>) -> Result<Vec<Task>, StoreError> {
        let mut tasks = dispatch!(self, b => b.task_claim(claim).await)?;
        // RETURNING keeps no order; run them in the order they were picked.
        tasks.sort_by(|a, b| {
            (b.priority.cmp(&a.priority))
                .then(a.run_at.cmp(&b.run_at))
                .then(a.id.cmp(&b.id))
        });
        Ok(tasks)
    }

    /// Renews the leases of `worker`'s running attempts in one statement and
    /// reports, for each one still held, whether a cancel was requested. An
    /// attempt missing from the answer is no longer the worker's.
    pub async fn task_heartbeat(
        &self,
        worker: &WorkerId,
        attempts: &[(TaskId, i32)],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<LeaseRenewal>, StoreError> {
        if attempts.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self, b => b.task_heartbeat(worker, attempts, lease_until).await)
    }

    /// Ends running attempts in one statement, each as its `end` says: the
    /// tasks that were ended (an attempt no longer running is left out, and
    /// nothing is written for it).
    pub async fn tasks_end(
        &self,
        endings: &[TaskEnding],
        now: DateTime<Utc>,
    ) -> Result<Vec<Task>, StoreError> {
        if endings.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self, b => b.task_end(endings, now).await)
    }

    /// Ends a running attempt as its `end` says. `None`: the attempt was not
    /// running any more, and nothing was written.
    pub async fn task_end(
        &self,
        ending: &TaskEnding,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, StoreError> {
        let ended = dispatch!(self, b => b.task_end(std::slice::from_ref(ending), now).await)?;
        Ok(ended.into_iter().next())
    }

    /// Cancels a task that has not started, if its status is still
    /// `expected` (`waiting` or `queued`). `None`: it moved on meanwhile.
    pub async fn task_cancel_unstarted(
        &self,
        id: TaskId,
        expected: Status,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, StoreError> {
        let task = dispatch!(self, b => b.task_cancel_unstarted(id, expected, now).await)?;
        self.announce_changes(&task);
        Ok(task)
    }

    /// Asks the worker running attempt `attempt` to stop. `None`: that
    /// attempt is not running any more.
    pub async fn task_cancel_request(
        &self,
        id: TaskId,
        attempt: i32,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, StoreError> {
        let task = dispatch!(self, b => b.task_cancel_request(id, attempt, now).await)?;
        if let Some(worker) = task.as_ref().and_then(|t| t.worker_id.clone()) {
            self.announce(StoreEvent::CancelRequested { worker });
        }
        Ok(task)
    }

    /// One rescue pass: finds up to `limit` running tasks whose lease expired
    /// before `now` and ends each as `decide` says (re-queued or dropped).
    /// Returns the rescued tasks. Returns nothing, at once, while another
    /// node does a pass.
    pub async fn task_rescue_expired(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        decide: impl Fn(&Task) -> AttemptEnd + Send,
    ) -> Result<Vec<Task>, StoreError> {
        let rescued = dispatch!(self, b => b.task_rescue_expired(now, limit, decide).await)?;
        self.announce_changes(&rescued);
        Ok(rescued)
    }

    /// The expirer: up to `limit` tasks whose start deadline passed before
    /// `now` with no attempt counted end `expired` (their waiting children
    /// are cancelled). Returns them.
    pub async fn tasks_expire(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Task>, StoreError> {
        let expired = dispatch!(self, b => b.tasks_expire(now, limit).await)?;
        self.announce_changes(&expired);
        Ok(expired)
    }

    /// How many tasks there are in each status (statuses with none are left
    /// out).
    pub async fn task_count_by_status(&self) -> Result<HashMap<Status, i64>, StoreError> {
        let counts = dispatch!(self, b => b.task_count_by_status().await)?;
        Ok(counts.into_iter().collect())
    }

    /// Re-queues `seen` (an ended task, as the caller read it) for a new
    /// attempt, allowing `max_attempts` in all. `None`: it changed meanwhile.
    pub async fn task_retry(
        &self,
        seen: &Task,
        max_attempts: i32,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, StoreError> {
        let task = dispatch!(self, b => b.task_retry(seen, max_attempts, now).await)?;
        self.announce_changes(&task);
        Ok(task)
    }

    /// Re-queues every task in `scope` matching `filter` that ended
    /// without a result (failed, cancelled, dropped, expired) for a new
    /// attempt, from `now`; returns how many.
    pub async fn task_retry_matching(
        &self,
        scope: &Scope,
        filter: &TaskFilter,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut queues = dispatch!(self, b => b.task_retry_matching(scope, filter, now).await)?;
        let count = queues.len() as u64;
        queues.sort();
        queues.dedup();
        for queue in queues {
            self.announce(StoreEvent::Queued { queue });
        }
        Ok(count)
    }

    /// Resumes a paused queue: its waiting tasks start again. False: it was
    /// not paused.
    pub async fn queue_resume(&self, name: &str) -> Result<bool, StoreError> {
        let resumed = dispatch!(self, b => b.queue_resume(name).await)?;
        if resumed {
            self.announce(StoreEvent::Queued {
                queue: name.to_string(),
            });
        }
        Ok(resumed)
    }

    /// Fires a schedule's ticks: moves it on to `next_tick` and inserts
    /// their tasks, in one transaction, unless another pass moved it since
    /// this one read it (or it was paused): then `None`, and nothing is
    /// written. With `unless_running`, the tasks are made only if the
    /// schedule's latest task has ended. Tasks that already exist for a
    /// tick are not made again.
    pub async fn schedule_fire(
        &self,
        fire: &ScheduleFire<'_>,
    ) -> Result<Option<Vec<Task>>, StoreError> {
        let fired = dispatch!(self, b => b.schedule_fire(fire).await)?;
        if let Some(tasks) = &fired {
            self.announce_changes(tasks);
        }
        Ok(fired)
    }

    /// Cancels every task in `scope` matching `filter`: unstarted ones at
    /// once, running ones by asking their workers.
    pub async fn task_cancel_matching(
        &self,
        scope: &Scope,
        filter: &TaskFilter,
        now: DateTime<Utc>,
    ) -> Result<CancelCount, StoreError> {
        let count = dispatch!(self, b => b.task_cancel_matching(scope, filter, now).await)?;
        for worker in &count.workers {
            self.announce(StoreEvent::CancelRequested {
                worker: worker.clone(),
            });
        }
        Ok(count)
    }

    /// Queues the callback deliveries of up to `limit` ended tasks whose
    /// callback has not been queued yet: `delivery` makes each delivery task.
    /// Returns the deliveries.
    pub async fn task_callbacks_enqueue(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        delivery: impl Fn(&Task) -> NewTask + Send,
    ) -> Result<Vec<Task>, StoreError> {
        let queued = dispatch!(self, b => b.task_callbacks_enqueue(now, limit, delivery).await)?;
        self.announce_changes(&queued);
        Ok(queued)
    }
}
