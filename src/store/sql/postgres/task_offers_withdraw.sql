-- Worker $1 takes no more new tasks (it is stopping). Waits for inserts
-- seating tasks on its offers to commit, so that once this returns every
-- task pushed to it is written.
DELETE FROM task_offers WHERE worker_id = $1
