-- Running tasks whose lease expired before ?1: their worker is gone. Read
-- inside a BEGIN IMMEDIATE transaction, so no heartbeat can slip in between
-- this and the re-queue.
SELECT * FROM tasks
WHERE status = 'running' AND lease_expires_at < ?1
ORDER BY lease_expires_at
LIMIT ?2
