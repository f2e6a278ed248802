-- Ask the worker running attempt ?2 to stop. Asking twice keeps the first
-- time. (The store then wakes the worker if it runs in this process; one in
-- another process hears of it at its next heartbeat.)
UPDATE tasks
SET cancel_requested_at = COALESCE(cancel_requested_at, ?3)
WHERE id = ?1 AND status = 'running' AND attempt = ?2
RETURNING *
