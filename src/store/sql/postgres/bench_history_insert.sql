-- `errand bench`: $1 completed no-op tasks that finished at $2, the
-- history a busy deployment keeps (retention: 7 days of it). Their tokens
-- are made as errand makes them (tasks::TaskToken): the time ($2, in
-- milliseconds), then random bits.
INSERT INTO tasks (token, kind, queue, status, payload, max_attempts, attempt, owner,
                   created_at, run_at, started_at, finished_at, progress_fraction, result)
SELECT (lpad(to_hex(floor(extract(epoch FROM $2::timestamptz) * 1000)::bigint), 12, '0')
        || '7' || substr(replace(gen_random_uuid()::text, '-', ''), 14))::uuid,
       'sleep', 'default', 'completed', '{"seconds": 0}', 1, 1, 'bench',
       $2, $2, $2, $2, 1, 'null'
FROM generate_series(1, $1)
