-- End running attempts ($1: a JSON array, one object per attempt): each
-- completed, re-queued, failed, cancelled or dropped, as the domain decided.
-- Fenced by status and attempt, so a worker that lost its lease can't
-- overwrite a newer attempt; the rescuer also passes $2, so that it only
-- touches tasks whose lease really expired, never one that just ended or
-- renewed. An attempt that made files brings `outputs`, which become the
-- task's (task_files rows follow in the same transaction). An error joins
-- the history with the attempt's start.
-- Rows are locked in id order first, as task_heartbeat.sql locks them, so
-- that a batch of ends and a heartbeat never deadlock.
WITH e AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb)
         AS e(id bigint, attempt integer, status text, result jsonb, error jsonb,
              run_at timestamptz, finished_at timestamptz,
              progress_fraction double precision, progress_message text, outputs jsonb)
), locked AS (
    SELECT t.id FROM tasks t JOIN e ON t.id = e.id AND t.attempt = e.attempt
    WHERE t.status = 'running'
      AND ($2::timestamptz IS NULL OR t.lease_expires_at < $2)
    ORDER BY t.id
    FOR UPDATE OF t
)
UPDATE tasks t
SET status = e.status,
    result = e.result,
    error = e.error ->> 'message',
    errors = CASE WHEN e.error IS NULL THEN t.errors
                  ELSE t.errors || jsonb_build_array(e.error || jsonb_build_object('started_at', t.started_at)) END,
    run_at = COALESCE(e.run_at, t.run_at),
    finished_at = e.finished_at,
    progress_fraction = COALESCE(e.progress_fraction, t.progress_fraction),
    progress_message = CASE WHEN e.progress_fraction IS NULL THEN t.progress_message
                            ELSE e.progress_message END,
    files = CASE WHEN e.outputs IS NULL THEN t.files
                 ELSE jsonb_set(t.files, '{outputs}', e.outputs) END,
    worker_id = NULL,
    lease_expires_at = NULL
FROM e, locked
-- Locked, the rows are as `locked` found them: found by primary key here.
WHERE t.id = locked.id AND e.id = locked.id
RETURNING t.*
