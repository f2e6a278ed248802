-- Retention: delete up to $3 finished tasks, oldest first, that finished
-- before the cut-off for their status ($1: a JSON object, status → time;
-- $2: the latest of those times, so the index on finished_at bounds the scan).
DELETE FROM tasks
WHERE id IN (
    SELECT id FROM tasks
    WHERE finished_at IS NOT NULL AND finished_at < $2
      AND finished_at < ($1::jsonb ->> status)::timestamptz
    ORDER BY finished_at
    LIMIT $3
)
