-- Running tasks whose lease expired before $1: their worker is gone. Locked
-- so that a heartbeat arriving now waits, then finds the row re-queued.
SELECT * FROM tasks
WHERE status = 'running' AND lease_expires_at < $1
ORDER BY lease_expires_at
LIMIT $2
FOR UPDATE SKIP LOCKED
