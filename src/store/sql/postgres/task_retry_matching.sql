-- Re-queue every task the filter matches ($1, see task_filter.sql) that
-- ended without a result (a status of $3): each gets a new attempt (at
-- least one more than it used), keeps its history, and runs from $2; a
-- start deadline no longer holds, and it may snooze afresh. A task one of
-- whose parents has not completed is left as it is. Returns each
-- re-queued row's queue.
-- Rows are locked in id order first, as every statement that writes many
-- rows locks them (task_end.sql).
WITH locked AS (
    SELECT id FROM tasks
    WHERE /*task_filter*/
      AND status IN (SELECT jsonb_array_elements_text($3::jsonb))
      -- Not while a task it depends on has not completed: it would run before
      -- its parent's result exists (retry the parent first).
      AND NOT EXISTS (SELECT FROM task_dependencies d JOIN tasks p ON p.id = d.parent_id
                      WHERE d.child_id = tasks.id AND p.status <> 'completed')
    ORDER BY id
    FOR UPDATE
)
UPDATE tasks
SET status = 'queued', run_at = $2, max_attempts = GREATEST(max_attempts, attempt + 1),
    finished_at = NULL, result = NULL, cancel_requested_at = NULL,
    callback_enqueued_at = NULL, start_by = NULL, snoozes = 0, pending_parents = 0
FROM locked
WHERE tasks.id = locked.id
  AND status IN (SELECT jsonb_array_elements_text($3::jsonb))
RETURNING queue
