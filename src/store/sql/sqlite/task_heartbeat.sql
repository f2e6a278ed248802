-- Renew the leases of all of a worker's running attempts (?1: a JSON array
-- of {"id", "attempt"}) in one statement. A row missing from the answer was
-- taken away (rescued, or ended by someone else): its worker must stop it
-- and write nothing more. The same round trip reports cancel requests.
UPDATE tasks AS t
SET lease_expires_at = ?3
FROM (SELECT value ->> '$.id' AS id, value ->> '$.attempt' AS attempt FROM json_each(?1)) AS mine
WHERE t.id = mine.id
  AND t.attempt = mine.attempt
  AND t.status = 'running'
  AND t.worker_id = ?2
RETURNING id, attempt, cancel_requested_at IS NOT NULL AS cancel_requested
