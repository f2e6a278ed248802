-- Worker $1 takes no more new tasks (it is stopping). Waits for inserts
-- seating tasks on its offers to commit, so that once this returns every
-- task pushed to it is written. Every process hears that its offers stand
-- no longer ("0 <worker> <queue>", as task_offer.sql says).
DELETE FROM task_offers WHERE worker_id = $1
RETURNING pg_notify('errand_offered', '0 ' || worker_id || ' ' || queue)
