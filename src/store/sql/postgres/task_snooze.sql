-- Snooze running attempts ($1: a JSON array, one object per attempt, as
-- task_end.sql takes them): each goes back to `queued` from its `run_at`,
-- its attempt not counted (`attempt - 1`, and no start time when that is
-- 0), one more snooze counted; a task pushed to its worker is a claimed one
-- from then on. As the next claim runs under the same attempt number, the
-- write is fenced by the attempt's start too (`started_at`), so that this
-- end, written again (its answer lost), can't touch the next run. Its last
-- error stays. Rows are locked in id order first, as task_end.sql's.
WITH e AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb)
         AS e(id bigint, attempt integer, run_at timestamptz,
              progress_fraction double precision, progress_message text,
              started_at timestamptz)
), locked AS (
    SELECT t.id FROM tasks t JOIN e ON t.id = e.id AND t.attempt = e.attempt
    WHERE t.status = 'running'
      AND (e.started_at IS NULL OR t.started_at = e.started_at)
    ORDER BY t.id
    FOR UPDATE OF t
)
UPDATE tasks t
SET status = 'queued',
    run_at = e.run_at,
    attempt = t.attempt - 1,
    started_at = CASE WHEN t.attempt = 1 THEN NULL ELSE t.started_at END,
    snoozes = t.snoozes + 1,
    pushed = false,
    progress_fraction = COALESCE(e.progress_fraction, t.progress_fraction),
    progress_message = CASE WHEN e.progress_fraction IS NULL THEN t.progress_message
                            ELSE e.progress_message END,
    worker_id = NULL,
    lease_expires_at = NULL
FROM e, locked
WHERE t.id = locked.id AND e.id = locked.id
RETURNING t.*
