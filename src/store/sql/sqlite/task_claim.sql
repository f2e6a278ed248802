-- Claim up to ?3 runnable tasks of queue ?1 for worker ?4, in one short
-- statement. SQLite has one writer at a time, so the sub-select and the
-- update can't interleave with another claim; the partial index
-- tasks_runnable serves the WHERE and the ORDER BY. The row, not a held
-- transaction, records the claim: the lease says how long it holds.
--
-- ?6, when not NULL, lists the kinds the worker can run (a JSON array):
-- a task of another kind waits for a worker that knows it.
--
-- A queue with a global limit (no more than that many of its tasks running
-- at once across all workers) is claimed after task_running_count.sql,
-- inside BEGIN IMMEDIATE, with ?3 at most the room left.
--
-- A paused queue (queues, migration 0013) gives nothing; a task whose
-- start deadline passed before any attempt counted is left to the expirer.
UPDATE tasks
SET status = 'running',
    attempt = attempt + 1,
    worker_id = ?4,
    lease_expires_at = ?5,
    started_at = ?2,
    progress_fraction = 0,
    progress_message = NULL
WHERE id IN (
    SELECT id FROM tasks
    WHERE status = 'queued' AND queue = ?1 AND run_at <= ?2
      -- A queued task always has an attempt left; this only keeps a row that
      -- broke that rule from failing every claim of its queue.
      AND attempt < max_attempts
      AND (start_by IS NULL OR start_by > ?2 OR attempt > 0)
      AND (?6 IS NULL OR kind IN (SELECT value FROM json_each(?6)))
      AND NOT EXISTS (SELECT 1 FROM queues q WHERE q.name = ?1 AND q.paused_at IS NOT NULL)
    ORDER BY priority DESC, run_at, id
    LIMIT ?3
)
RETURNING *
