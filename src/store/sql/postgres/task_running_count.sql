-- How many tasks of queue $1 run now (tasks_running_queue serves it): what
-- a claim of a queue with a global limit may add to, counted after
-- queue_lock.sql in the claim's transaction.
SELECT count(*) AS n FROM tasks WHERE queue = $1 AND status = 'running'
