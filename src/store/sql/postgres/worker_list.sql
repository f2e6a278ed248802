-- The workers whose heartbeat is recent enough to be alive.
SELECT * FROM workers WHERE heartbeat_at >= $1 ORDER BY started_at, id
