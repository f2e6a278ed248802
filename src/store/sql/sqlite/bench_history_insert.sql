-- `errand bench`: ?1 completed no-op tasks that finished at ?2, the
-- history a busy deployment keeps (retention: 7 days of it).
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
INSERT INTO tasks (token, kind, queue, status, payload, max_attempts, attempt, owner,
                   created_at, run_at, started_at, finished_at, progress_fraction, result)
SELECT randomblob(16), 'sleep', 'default', 'completed', '{"seconds": 0}', 1, 1, 'bench',
       ?2, ?2, ?2, ?2, 1, 'null'
FROM n
