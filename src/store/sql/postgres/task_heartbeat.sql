-- Renew the leases of all of a worker's running attempts ($1 ids, $2 their
-- attempts) in one statement. A row missing from the answer was taken away
-- (rescued, or ended by someone else): its worker must stop it and write
-- nothing more. The same round trip reports cancel requests.
UPDATE tasks t
SET lease_expires_at = $4
FROM UNNEST($1::bigint[], $2::integer[]) AS mine(id, attempt)
WHERE t.id = mine.id
  AND t.attempt = mine.attempt
  AND t.status = 'running'
  AND t.worker_id = $3
RETURNING t.id, t.attempt, t.cancel_requested_at IS NOT NULL AS cancel_requested
