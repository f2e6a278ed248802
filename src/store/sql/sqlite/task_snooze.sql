-- Snooze running attempts (?1: a JSON array, one object per attempt, as
-- task_end.sql takes them): each goes back to `queued` from its `run_at`,
-- its attempt not counted (`attempt - 1`, and no start time when that is
-- 0), one more snooze counted. As the next claim runs under the same
-- attempt number, the write is fenced by the attempt's start too
-- (`started_at`), so that this end, written again (its answer lost), can't
-- touch the next run. Its last error stays.
UPDATE tasks AS t
SET status = 'queued',
    run_at = e.value ->> '$.run_at',
    attempt = t.attempt - 1,
    started_at = CASE WHEN t.attempt = 1 THEN NULL ELSE t.started_at END,
    snoozes = t.snoozes + 1,
    progress_fraction = COALESCE(e.value ->> '$.progress_fraction', t.progress_fraction),
    progress_message = CASE WHEN e.value ->> '$.progress_fraction' IS NULL THEN t.progress_message
                            ELSE e.value ->> '$.progress_message' END,
    worker_id = NULL,
    lease_expires_at = NULL
FROM json_each(?1) AS e
WHERE t.id = e.value ->> '$.id' AND t.status = 'running' AND t.attempt = e.value ->> '$.attempt'
  AND (e.value ->> '$.started_at' IS NULL OR t.started_at = e.value ->> '$.started_at')
RETURNING *
