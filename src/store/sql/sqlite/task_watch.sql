-- Something is about to wait for task ?1 to end (see
-- migrations/sqlite/0011_lighter_writes.sql).
UPDATE tasks SET watched = 1
WHERE token = ?1 AND watched = 0 AND finished_at IS NULL
