-- How many tasks of queue ?1 run now: what a claim of a queue with a global
-- limit may add to, counted inside the claim's BEGIN IMMEDIATE.
SELECT count(*) AS n FROM tasks WHERE queue = ?1 AND status = 'running'
