-- New tasks in one statement, one array per column ($1 to $19, JSON columns
-- as text): ids are given in the arrays' order. Their input files and
-- dependencies, if any, follow in the same transaction.
INSERT INTO tasks (token, kind, queue, priority, status, payload, max_attempts, timeout_ms,
                   owner, product, created_at, run_at, pending_parents, depends_on,
                   callback_url, files, start_by, schedule, scheduled_for)
SELECT token, kind, queue, priority, status, payload::jsonb, max_attempts, timeout_ms,
       owner, product, created_at, run_at, pending_parents, depends_on::jsonb,
       callback_url, files::jsonb, start_by, schedule, scheduled_for
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::text[],
            $7::integer[], $8::bigint[], $9::text[], $10::text[], $11::timestamptz[],
            $12::timestamptz[], $13::integer[], $14::text[], $15::text[], $16::text[],
            $17::timestamptz[], $18::text[], $19::timestamptz[])
     WITH ORDINALITY
     AS t(token, kind, queue, priority, status, payload, max_attempts, timeout_ms, owner,
          product, created_at, run_at, pending_parents, depends_on, callback_url, files,
          start_by, schedule, scheduled_for, ord)
ORDER BY ord
RETURNING *
