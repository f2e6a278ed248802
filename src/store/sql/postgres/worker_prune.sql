-- Forget workers whose heartbeat stopped long ago, and the offers of idle
-- slots that lapsed before then (a worker killed outright leaves its own;
-- they seat nothing, but would pile up). The count is the workers'.
WITH lapsed AS (
    DELETE FROM task_offers WHERE expires_at < $1
)
DELETE FROM workers WHERE heartbeat_at < $1
