-- Re-queue every task the filter matches ($1, see task_filter.sql) that
-- ended without a result (a status of $3): each gets a new attempt (at
-- least one more than it used), keeps its history, and runs from $2; a
-- start deadline no longer holds. Returns each re-queued row's queue.
-- Rows are locked in id order first, as every statement that writes many
-- rows locks them (task_end.sql).
WITH locked AS (
    SELECT id FROM tasks
    WHERE /*task_filter*/
      AND status IN (SELECT jsonb_array_elements_text($3::jsonb))
    ORDER BY id
    FOR UPDATE
)
UPDATE tasks
SET status = 'queued', run_at = $2, max_attempts = GREATEST(max_attempts, attempt + 1),
    finished_at = NULL, result = NULL, cancel_requested_at = NULL,
    callback_enqueued_at = NULL, start_by = NULL
FROM locked
WHERE tasks.id = locked.id
  AND status IN (SELECT jsonb_array_elements_text($3::jsonb))
RETURNING queue
