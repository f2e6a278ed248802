-- tasks_insert.sql, where a worker may have offered idle slots (a process
-- uses it for the queues it has lately heard an offer for: see
-- store::pushes), with $20 and $21 besides.
--
-- $20 is each row's seat: for a task that may start now (queued, due),
-- its place among such tasks of its queue in this batch (1, 2, …), else
-- NULL; $21 lists the queues with seated rows. Seat n of a queue goes to
-- the n-th free slot its live offers have (task_offers, locked with SKIP
-- LOCKED so that concurrent inserts never wait on each other), if that
-- worker runs the task's kind: the task is written running, attempt 1,
-- leased to it, and handed the row (below; migration 0012). A paused
-- queue's offers seat nothing (migration 0013).
-- Every other task is written as given, and wakes the workers of its queue.
-- Each part is named once, so that Postgres streams the rows through
-- rather than keeping each part aside. (Its plan has some twenty more
-- steps than tasks_insert.sql's, each set up at every execution: about
-- 12 % fewer inserts of five tasks a second. Hence two statements.)
WITH offers AS (
    SELECT o.worker_id, o.queue, o.slots, o.kinds, o.lease_ms
    FROM task_offers o
    WHERE o.queue = ANY ($21::text[])
      AND o.slots > 0
      AND o.expires_at > now()
      AND NOT EXISTS (SELECT FROM queues q WHERE q.name = o.queue AND q.paused_at IS NOT NULL)
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
inserted AS (
    INSERT INTO tasks (token, kind, queue, priority, status, payload, max_attempts, timeout_ms,
                       owner, product, created_at, run_at, pending_parents, depends_on,
                       callback_url, files, start_by, schedule, scheduled_for, attempt,
                       worker_id, lease_expires_at, started_at, pushed)
    SELECT n.token, n.kind, n.queue, n.priority,
           CASE WHEN r.worker_id IS NULL THEN n.status ELSE 'running' END,
           n.payload::jsonb, n.max_attempts, n.timeout_ms, n.owner, n.product, n.created_at,
           n.run_at, n.pending_parents, n.depends_on::jsonb, n.callback_url, n.files::jsonb,
           n.start_by, n.schedule, n.scheduled_for,
           CASE WHEN r.worker_id IS NULL THEN 0 ELSE 1 END,
           r.worker_id,
           n.created_at + r.lease_ms * interval '1 millisecond',
           CASE WHEN r.worker_id IS NULL THEN NULL ELSE n.created_at END,
           r.worker_id IS NOT NULL
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::text[],
                $7::integer[], $8::bigint[], $9::text[], $10::text[], $11::timestamptz[],
                $12::timestamptz[], $13::integer[], $14::text[], $15::text[], $16::text[],
                $17::timestamptz[], $18::text[], $19::timestamptz[], $20::integer[])
         WITH ORDINALITY
         AS n(token, kind, queue, priority, status, payload, max_attempts, timeout_ms, owner,
              product, created_at, run_at, pending_parents, depends_on, callback_url, files,
              start_by, schedule, scheduled_for, seat, ord)
    LEFT JOIN ranges r ON r.queue = n.queue
                      AND n.seat > r.upto - r.slots AND n.seat <= r.upto
                      AND n.kind = ANY (r.kinds)
    ORDER BY n.ord
    RETURNING *
),
taken AS (
    UPDATE task_offers o
    SET slots = o.slots - p.n
    FROM (SELECT worker_id, queue, count(*) AS n
          FROM inserted WHERE pushed
          GROUP BY worker_id, queue) p
    WHERE o.worker_id = p.worker_id AND o.queue = p.queue
)
-- A seated task goes to its worker on `errand_pushed` as `<worker id> <row
-- as JSON>`, or as `<worker id> {"id": …}` when the row is too large for a
-- notification (8,000 bytes), for the worker to read. (Sent from here, not
-- from the insert trigger, where every insert would pay for looking.)
SELECT i.*,
       CASE WHEN i.pushed THEN
           (SELECT pg_notify('errand_pushed', i.worker_id || ' ' ||
                             CASE WHEN octet_length(j.row) + octet_length(i.worker_id) < 7900
                                  THEN j.row
                                  ELSE json_build_object('id', i.id)::text END)
            FROM (SELECT row_to_json(i)::text AS row) j)
       END AS told
FROM inserted i
