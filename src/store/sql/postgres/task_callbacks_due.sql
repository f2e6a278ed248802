-- Up to $1 ended tasks whose callback has not been queued yet, oldest
-- first, locked so that two nodes never queue one twice.
SELECT * FROM tasks
WHERE callback_url IS NOT NULL AND finished_at IS NOT NULL AND callback_enqueued_at IS NULL
ORDER BY finished_at
LIMIT $1
FOR UPDATE SKIP LOCKED
