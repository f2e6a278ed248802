-- The expirer: up to $2 tasks not started by their deadline (status
-- waiting or queued, no attempt counted, start_by before $1) end `expired`
-- at $1, with error $3. Their waiting children are cancelled by the
-- dependency trigger, as for any bad end.
UPDATE tasks
SET status = 'expired',
    finished_at = $1,
    error = $3,
    errors = errors || jsonb_build_array(jsonb_build_object(
        'attempt', attempt, 'message', $3::text, 'at', $1::timestamptz))
WHERE id IN (
    SELECT id FROM tasks
    WHERE start_by < $1 AND status IN ('waiting', 'queued') AND attempt = 0
    ORDER BY start_by
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
RETURNING *
