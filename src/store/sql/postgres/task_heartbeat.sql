-- Renew the leases of all of a worker's running attempts ($1: a JSON array
-- of {"id", "attempt"}) in one statement. A row missing from the answer was
-- taken away (rescued, or ended by someone else): its worker must stop it
-- and write nothing more. The same round trip reports cancel requests.
-- Rows are locked in id order, as every statement that writes many running
-- rows locks them (task_end.sql), so that two of them never deadlock.
WITH mine AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS mine(id bigint, attempt integer)
), locked AS (
    SELECT t.id FROM tasks t JOIN mine ON t.id = mine.id AND t.attempt = mine.attempt
    WHERE t.status = 'running' AND t.worker_id = $2
    ORDER BY t.id
    FOR UPDATE OF t
)
UPDATE tasks t
SET lease_expires_at = $3
FROM locked
WHERE t.id = locked.id
RETURNING t.id, t.attempt, t.cancel_requested_at IS NOT NULL AS cancel_requested
