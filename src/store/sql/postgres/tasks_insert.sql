-- New tasks in one statement ($1: a JSON array, one object per task, each
-- with its place `ord`): ids are given in that order. Their input files
-- and dependencies, if any, follow in the same transaction.
INSERT INTO tasks (token, kind, queue, priority, status, payload, max_attempts, timeout_ms,
                   owner, product, created_at, run_at, pending_parents, depends_on,
                   callback_url, files)
SELECT token, kind, queue, priority, status, payload, max_attempts, timeout_ms,
       owner, product, created_at, run_at, pending_parents, depends_on,
       callback_url, files
FROM jsonb_to_recordset($1::jsonb)
     AS t(ord integer, token uuid, kind text, queue text, priority integer, status text,
          payload jsonb, max_attempts integer, timeout_ms bigint, owner text, product text,
          created_at timestamptz, run_at timestamptz, pending_parents integer,
          depends_on jsonb, callback_url text, files jsonb)
ORDER BY ord
RETURNING *
