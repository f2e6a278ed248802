-- Re-queue an ended task for a new attempt ($5 attempts in all), if it is
-- still as the caller saw it ($2 status, $3 attempt). Its history
-- stays; a start deadline no longer holds (the operator wants it run).
UPDATE tasks
SET status = 'queued', run_at = $4, max_attempts = $5,
    finished_at = NULL, result = NULL, cancel_requested_at = NULL,
    callback_enqueued_at = NULL, start_by = NULL
WHERE id = $1 AND status = $2 AND attempt = $3
RETURNING *
