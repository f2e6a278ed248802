-- Forget workers whose heartbeat stopped long ago.
DELETE FROM workers WHERE heartbeat_at < ?1
