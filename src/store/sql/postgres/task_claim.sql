-- Claim up to $3 runnable tasks of queue $1 for worker $4, in one short
-- statement. SKIP LOCKED lets concurrent workers pass over each other's rows
-- instead of queueing behind them; the partial index tasks_runnable serves
-- the WHERE and the ORDER BY. The row, not a held transaction, records the
-- claim: the lease says how long it holds.
--
-- $6, when not NULL, lists the kinds the worker can run (a JSON array):
-- a task of another kind waits for a worker that knows it.
--
-- A queue with a global limit (no more than that many of its tasks running
-- at once across all workers) is claimed after queue_lock.sql and
-- task_running_count.sql, in their transaction, with $3 at most the room
-- left. $3 is the limit itself, not an expression of a count: so Postgres
-- plans this statement once per connection instead of at every claim (its
-- generic plan costs no more than a custom one).
--
-- A paused queue (queues, migration 0013) gives nothing; a task whose
-- start deadline passed before any attempt counted is left to the expirer.
--
-- If this worker offered slots of this queue (task_offers, migration
-- 0012), the tasks it claims now take as many of them: an insert can't
-- seat more tasks on it than it has room for.
WITH picked AS (
    SELECT id FROM tasks
    WHERE status = 'queued' AND queue = $1 AND run_at <= $2
      -- A queued task always has an attempt left; this only keeps a row that
      -- broke that rule from failing every claim of its queue.
      AND attempt < max_attempts
      AND (start_by IS NULL OR start_by > $2 OR attempt > 0)
      AND ($6::jsonb IS NULL OR kind IN (SELECT jsonb_array_elements_text($6::jsonb)))
      AND NOT EXISTS (SELECT FROM queues q WHERE q.name = $1 AND q.paused_at IS NOT NULL)
    ORDER BY priority DESC, run_at, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE tasks t
    SET status = 'running',
        attempt = t.attempt + 1,
        worker_id = $4,
        lease_expires_at = $5,
        started_at = $2,
        progress_fraction = 0,
        progress_message = NULL
    FROM picked
    WHERE t.id = picked.id
    RETURNING t.*
),
taken AS (
    UPDATE task_offers o
    SET slots = greatest(o.slots - c.n, 0)
    FROM (SELECT count(*) AS n FROM claimed) c
    WHERE o.worker_id = $4 AND o.queue = $1 AND c.n > 0
)
SELECT * FROM claimed
