-- Hands back the tasks pushed to worker $1 that it does not hold (not
-- among $2): their notifications were lost (its listener reconnected), or
-- came while it was stopping. Each is still on the first attempt that its
-- insert gave it, which never started: it goes back to `queued` as if it
-- had never been seated (attempt 0, no error), and wakes the workers of
-- its queue. Fenced like every write about a running task: a task that
-- moved on (ended, rescued, claimed again) is left alone.
UPDATE tasks
SET status = 'queued',
    attempt = 0,
    worker_id = NULL,
    lease_expires_at = NULL,
    started_at = NULL,
    pushed = false
WHERE status = 'running' AND worker_id = $1 AND pushed AND attempt = 1
  AND id <> ALL ($2::bigint[])
RETURNING id
