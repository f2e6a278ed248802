-- New tasks in one statement, one array per column ($1 to $17, JSON columns
-- as text): ids are given in the arrays' order. Their input files and
-- dependencies, if any, follow in the same transaction.
--
-- $17 is each row's seat: for a task that may start now (queued, due),
-- its place among such tasks of its queue in this batch (1, 2, …), else
-- NULL. Seat n of a queue goes to the n-th free slot its live offers have
-- (task_offers, locked with SKIP LOCKED so that concurrent inserts never
-- wait on each other), if that worker runs the task's kind: the task is written running, attempt 1, leased to it,
-- and the insert trigger hands it the row (migration 0012). Every other
-- task is written as given, and wakes the workers of its queue.
WITH new AS (
    SELECT *
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::text[],
                $7::integer[], $8::bigint[], $9::text[], $10::text[], $11::timestamptz[],
                $12::timestamptz[], $13::integer[], $14::text[], $15::text[], $16::text[],
                $17::integer[])
         WITH ORDINALITY
         AS t(token, kind, queue, priority, status, payload, max_attempts, timeout_ms, owner,
              product, created_at, run_at, pending_parents, depends_on, callback_url, files,
              seat, ord)
),
offers AS (
    SELECT o.worker_id, o.queue, o.slots, o.kinds, o.lease_ms
    FROM task_offers o
    WHERE o.queue IN (SELECT queue FROM new WHERE seat IS NOT NULL)
      AND o.slots > 0
      AND o.expires_at > now()
      -- Its listener is still connected: someone will hear of the task.
      AND EXISTS (SELECT FROM pg_stat_get_activity(o.listener_pid))
    FOR UPDATE SKIP LOCKED
),
-- Each offer holds the seats after those of the offers before it in its
-- queue (the roomiest first): seats (upto - slots, upto].
ranges AS (
    SELECT worker_id, queue, kinds, lease_ms, slots,
           sum(slots) OVER (PARTITION BY queue ORDER BY slots DESC, worker_id) AS upto
    FROM offers
),
placed AS (
    SELECT n.*, r.worker_id AS pushed_to, r.lease_ms
    FROM new n
    LEFT JOIN ranges r ON r.queue = n.queue
                      AND n.seat > r.upto - r.slots AND n.seat <= r.upto
                      AND n.kind = ANY (r.kinds)
),
taken AS (
    UPDATE task_offers o
    SET slots = o.slots - p.n
    FROM (SELECT pushed_to, queue, count(*) AS n
          FROM placed WHERE pushed_to IS NOT NULL
          GROUP BY pushed_to, queue) p
    WHERE o.worker_id = p.pushed_to AND o.queue = p.queue
)
INSERT INTO tasks (token, kind, queue, priority, status, payload, max_attempts, timeout_ms,
                   owner, product, created_at, run_at, pending_parents, depends_on,
                   callback_url, files, attempt, worker_id, lease_expires_at, started_at,
                   pushed)
SELECT token, kind, queue, priority,
       CASE WHEN pushed_to IS NULL THEN status ELSE 'running' END,
       payload::jsonb, max_attempts, timeout_ms, owner, product, created_at, run_at,
       pending_parents, depends_on::jsonb, callback_url, files::jsonb,
       CASE WHEN pushed_to IS NULL THEN 0 ELSE 1 END,
       pushed_to,
       created_at + lease_ms * interval '1 millisecond',
       CASE WHEN pushed_to IS NULL THEN NULL ELSE created_at END,
       pushed_to IS NOT NULL
FROM placed
ORDER BY ord
RETURNING *
