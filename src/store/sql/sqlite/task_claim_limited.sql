-- task_claim, for a queue whose running tasks across all workers may not
-- exceed ?6. Runs inside BEGIN IMMEDIATE, so the count of running tasks is
-- exact.
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
      AND attempt < max_attempts
    ORDER BY priority DESC, run_at, id
    LIMIT min(?3, max(0, ?6 - (SELECT count(*) FROM tasks
                               WHERE queue = ?1 AND status = 'running')))
)
RETURNING *
