-- Worker $1 is alive: its offers stand for $2 ms more, which every process
-- hears of (`errand_offered`, as task_offer.sql says).
UPDATE task_offers
SET expires_at = now() + $2 * interval '1 millisecond'
WHERE worker_id = $1
RETURNING pg_notify('errand_offered', $2::text || ' ' || worker_id || ' ' || queue)
