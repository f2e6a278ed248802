-- New tasks in one statement (?1: a JSON array, one object per task): ids
-- are given in that order. (`->` keeps a JSON value as JSON text, `->>`
-- gives the SQL value.)
INSERT INTO tasks (token, kind, queue, priority, status, payload, max_attempts, timeout_ms,
                   owner, product, created_at, run_at, pending_parents, depends_on,
                   callback_url, files, start_by, schedule, scheduled_for)
SELECT unhex(e.value ->> '$.token'), e.value ->> '$.kind', e.value ->> '$.queue',
       e.value ->> '$.priority', e.value ->> '$.status', e.value -> '$.payload',
       e.value ->> '$.max_attempts', e.value ->> '$.timeout_ms', e.value ->> '$.owner',
       e.value ->> '$.product', e.value ->> '$.created_at', e.value ->> '$.run_at',
       e.value ->> '$.pending_parents', e.value -> '$.depends_on',
       e.value ->> '$.callback_url', e.value -> '$.files', e.value ->> '$.start_by',
       e.value ->> '$.schedule', e.value ->> '$.scheduled_for'
FROM json_each(?1) AS e
ORDER BY e.key
RETURNING *
