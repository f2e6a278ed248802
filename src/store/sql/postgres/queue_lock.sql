-- Claims of a queue with a global limit take turns: the lock is held until
-- the claiming transaction ends, so the running count each one sees
-- includes every claim before it.
SELECT pg_advisory_xact_lock(1701, hashtext($1))
