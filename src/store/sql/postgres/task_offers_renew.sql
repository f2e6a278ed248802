-- Worker $1 is alive: its offers stand for $2 ms more.
UPDATE task_offers
SET expires_at = now() + $2 * interval '1 millisecond'
WHERE worker_id = $1
