-- `errand bench`: $1 completed no-op tasks that finished at $2, the
-- history a busy deployment keeps (retention: 7 days of it).
INSERT INTO tasks (token, kind, queue, status, payload, max_attempts, attempt, owner,
                   created_at, run_at, started_at, finished_at, progress_fraction, result)
SELECT gen_random_uuid(), 'sleep', 'default', 'completed', '{"seconds": 0}', 1, 1, 'bench',
       $2, $2, $2, $2, 1, 'null'
FROM generate_series(1, $1)
