-- Something is about to wait for task $1 to end: from now on its end is
-- announced (see migrations/postgres/0011_lighter_writes.sql). Written once per
-- task, and never once it has ended.
UPDATE tasks SET watched = true
WHERE token = $1 AND NOT watched AND finished_at IS NULL
