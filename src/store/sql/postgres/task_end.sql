-- End running attempts: each completed, re-queued, failed, cancelled or
-- dropped, as the domain decided (one row per element of the arrays). Fenced
-- by status and attempt, so a worker that lost its lease can't overwrite a
-- newer attempt; the rescuer also passes $8, so that it only touches tasks
-- whose lease really expired, never one that just ended or renewed.
UPDATE tasks t
SET status = e.status,
    result = e.result,
    error = e.error ->> 'message',
    errors = CASE WHEN e.error IS NULL THEN t.errors ELSE t.errors || jsonb_build_array(e.error) END,
    run_at = COALESCE(e.run_at, t.run_at),
    finished_at = e.finished_at,
    progress_fraction = COALESCE(e.progress_fraction, t.progress_fraction),
    progress_message = CASE WHEN e.progress_fraction IS NULL THEN t.progress_message
                            ELSE e.progress_message END,
    worker_id = NULL,
    lease_expires_at = NULL
FROM UNNEST($1::bigint[], $2::integer[], $3::text[], $4::jsonb[], $5::jsonb[],
            $6::timestamptz[], $7::timestamptz[], $9::float8[], $10::text[])
     AS e(id, attempt, status, result, error, run_at, finished_at,
          progress_fraction, progress_message)
WHERE t.id = e.id AND t.status = 'running' AND t.attempt = e.attempt
  AND ($8::timestamptz IS NULL OR t.lease_expires_at < $8)
RETURNING t.*
