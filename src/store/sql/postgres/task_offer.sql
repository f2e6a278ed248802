-- Worker $1 takes up to $3 new tasks of queue $2 of kinds $4 now (its
-- queue ran dry), each leased for $5 ms, told through the listener of
-- backend $6; the offer lapses after $7 ms unless renewed
-- (task_offers_renew.sql). An offer replaces the worker's last one for the
-- queue. See migration 0012. Every process hears of it (`errand_offered`,
-- "<ms> <worker> <queue>"), so that inserts of that queue try to seat their
-- tasks for that long (tasks_insert_seated.sql).
WITH offered AS (
    INSERT INTO task_offers (worker_id, queue, slots, kinds, lease_ms, listener_pid, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6, now() + $7 * interval '1 millisecond')
    ON CONFLICT (worker_id, queue) DO UPDATE
    SET slots = EXCLUDED.slots,
        kinds = EXCLUDED.kinds,
        lease_ms = EXCLUDED.lease_ms,
        listener_pid = EXCLUDED.listener_pid,
        expires_at = EXCLUDED.expires_at
    RETURNING worker_id, queue
)
SELECT pg_notify('errand_offered', $7::text || ' ' || worker_id || ' ' || queue) FROM offered
