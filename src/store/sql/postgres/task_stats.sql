-- How many of the tasks the caller may see that match the filter ($1, see
-- task_filter.sql) there are of each kind and queue in each status.
SELECT kind, queue, status, count(*) AS n FROM tasks
WHERE /*task_filter*/
GROUP BY kind, queue, status
