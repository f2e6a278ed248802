-- Re-queue an ended task for a new attempt (?5 attempts in all), if it is
-- still as the caller saw it (?2 status, ?3 attempt). Its history
-- stays; a start deadline no longer holds (the operator wants it run), and
-- it may snooze afresh. Its parents have all completed (it waits for
-- none).
UPDATE tasks
SET status = 'queued', run_at = ?4, max_attempts = ?5,
    finished_at = NULL, result = NULL, cancel_requested_at = NULL,
    callback_enqueued_at = NULL, start_by = NULL, snoozes = 0, pending_parents = 0
WHERE id = ?1 AND status = ?2 AND attempt = ?3
  -- Not while a task it depends on has not completed: it would run before
  -- its parent's result exists (retry the parent first).
  AND NOT EXISTS (SELECT 1 FROM task_dependencies d JOIN tasks p ON p.id = d.parent_id
                  WHERE d.child_id = tasks.id AND p.status <> 'completed')
RETURNING *
