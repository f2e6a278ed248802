-- How many of the tasks the caller may see that match the filter (?1, see
-- task_filter.sql: its finished_after bounds the window) ended in each
-- status, per interval of ?2 seconds of their finished_at. `bucket` is the
-- interval's start in seconds since 1970, a multiple of ?2.
SELECT (CAST(strftime('%s', finished_at) AS INTEGER) / ?2) * ?2 AS bucket,
       status, count(*) AS n
FROM tasks
WHERE finished_at IS NOT NULL AND /*task_filter*/
GROUP BY 1, 2
