-- How many tasks wait or run in each queue ($1: the statuses, a JSON array).
SELECT queue, status, count(*) AS n FROM tasks
WHERE status IN (SELECT jsonb_array_elements_text($1::jsonb))
GROUP BY queue, status
