-- Ask the worker running attempt $2 to stop. Asking twice keeps the first
-- time. The trigger tasks_notify_cancel tells the worker at once.
UPDATE tasks
SET cancel_requested_at = COALESCE(cancel_requested_at, $3)
WHERE id = $1 AND status = 'running' AND attempt = $2
RETURNING *
