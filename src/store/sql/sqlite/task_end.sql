-- End running attempts (?1: a JSON array, one object per attempt): each
-- completed, re-queued, failed, cancelled or dropped, as the domain decided.
-- Fenced by status and attempt, so a worker that lost its lease can't
-- overwrite a newer attempt; the rescuer also passes ?2, so that it only
-- touches tasks whose lease really expired, never one that just ended or
-- renewed. An attempt that made files brings `outputs`, which become the
-- task's (task_files rows follow in the same transaction). An error joins
-- the history with the attempt's start. (`->>` yields SQL NULL for a JSON null; `->` yields JSON text.)
UPDATE tasks AS t
SET status = e.value ->> '$.status',
    result = CASE WHEN e.value ->> '$.result' IS NULL THEN NULL ELSE e.value -> '$.result' END,
    error = e.value ->> '$.error.message',
    errors = CASE WHEN e.value ->> '$.error' IS NULL THEN t.errors
                  ELSE json_insert(t.errors, '$[#]',
                                   json_set(json(e.value -> '$.error'), '$.started_at', t.started_at)) END,
    run_at = COALESCE(e.value ->> '$.run_at', t.run_at),
    finished_at = e.value ->> '$.finished_at',
    progress_fraction = COALESCE(e.value ->> '$.progress_fraction', t.progress_fraction),
    progress_message = CASE WHEN e.value ->> '$.progress_fraction' IS NULL THEN t.progress_message
                            ELSE e.value ->> '$.progress_message' END,
    files = CASE WHEN e.value ->> '$.outputs' IS NULL THEN t.files
                 ELSE json_set(t.files, '$.outputs', json(e.value -> '$.outputs')) END,
    worker_id = NULL,
    lease_expires_at = NULL
FROM json_each(?1) AS e
WHERE t.id = e.value ->> '$.id' AND t.status = 'running' AND t.attempt = e.value ->> '$.attempt'
  AND (?2 IS NULL OR t.lease_expires_at < ?2)
RETURNING *
