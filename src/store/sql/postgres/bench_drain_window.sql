-- `errand bench`: the tasks that completed since $1, when the first of them
-- started and the last ended, as the database recorded them.
SELECT count(*) AS n, min(started_at) AS first_start, max(finished_at) AS last_end
FROM tasks WHERE finished_at >= $1 AND status = 'completed'
