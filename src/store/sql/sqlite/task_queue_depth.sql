-- How many tasks wait or run in each queue (?1: the statuses, a JSON array).
SELECT queue, status, count(*) AS n FROM tasks
WHERE status IN (SELECT value FROM json_each(?1))
GROUP BY queue, status
